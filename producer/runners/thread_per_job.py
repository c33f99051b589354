"""The ``threading`` model: one ``threading.Thread`` per job, started together and joined, as
the seed does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from producer.references import timed
from producer.runners.base import (
    CostShape,
    JobBatch,
    LibraryCall,
    Reference,
    Runner,
    RunResult,
)
from producer.runners.jobs import job_args, run_job, shipped
from shared.timings import RecordFields
from shared.workloads import Workload


def bare(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """What a user writes: a Thread per job, started, then joined."""

    def run_all() -> None:
        threads = [threading.Thread(target=job, args=(a,)) for a in args]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    return timed(run_all, repeat)


class Threads(Runner):
    name = "threading"
    order = 20
    default = True
    settings = (LibraryCall("threading:Thread"),)

    @classmethod
    def reference(cls) -> Reference:
        return bare

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return n_jobs

    def run(self, batch: JobBatch) -> RunResult:
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        records: list[RecordFields | None] = [None] * len(jobs)

        def work(i: int) -> None:
            records[i] = run_job(jobs[i])

        kwargs = self.kwargs_for("threading:Thread")
        threads = [threading.Thread(target=work, args=(i,), **kwargs) for i in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done = [r for r in records if r is not None]
        return RunResult(records=shipped(done), params={"concurrency": len(threads)})

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        # One thread started per job, serially by the caller; every thread under the one GIL.
        return CostShape(
            kind="thread", lanes=max(1, n_jobs), cpu_lanes=1, dispatch="thread_start",
            dispatch_on_lanes=True,
        )  # fmt: skip
