"""``multiprocessing_pool`` with a factoring schedule: the jobs cut into chunks that shrink as the
run goes on (``producer.schedule``), one chunk per ``Pool.map`` task, so the expensive end of a
rising-cost job list is split finely and the processes finish together. A named variant (tuned):
the default row stays what ``Pool().map`` gives a user."""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable
from typing import Any

from producer.references import WARM_JOBS, timed
from producer.runners.base import (
    CostShape,
    JobBatch,
    LibraryCall,
    Reference,
    RunResult,
    library_cpu_count,
)
from producer.runners.jobs import job_args, run_chunk, shipped
from producer.runners.multiprocessing_pool import MAP, POOL, MultiprocessingPool
from producer.schedule import factoring_ranges
from shared.workloads import Workload

#: What the variant passes ``Pool.map`` instead of its chunk rule: each schedule chunk is a task.
FACTORING = "factoring schedule: one task per chunk, chunks shrinking (producer.schedule)"


def run_all(job: Callable[[Any], str], chunk: list[Any]) -> list[str]:
    return [job(a) for a in chunk]


def bare(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """``Pool()`` with the schedule's chunks as tasks, the way a user would hand them over."""
    with multiprocessing.Pool() as pool:
        pool.map(abs, range(WARM_JOBS))
        chunks = [(job, args[r.start : r.stop]) for r in factoring_ranges(len(args), pool_size())]
        return timed(lambda: pool.starmap(run_all, chunks, chunksize=1), repeat)


def pool_size() -> int:
    return library_cpu_count()


class MultiprocessingPoolFactoring(MultiprocessingPool):
    name = "multiprocessing_pool_factoring"
    order = 51
    default = True  # the table shows what scheduling buys beside Pool.map's rule
    tuned = True

    @classmethod
    def reference(cls) -> Reference:
        return bare

    settings = (
        LibraryCall(POOL, {"processes": None}, frozenset({"processes"})),
        LibraryCall(MAP, {"chunksize": FACTORING}),
    )

    def run(self, batch: JobBatch) -> RunResult:
        assert self._pool is not None, "start() first"
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        chunks = [jobs[r.start : r.stop] for r in factoring_ranges(len(jobs), self.processes)]
        records = [rec for chunk in self._pool.map(run_chunk, chunks, chunksize=1) for rec in chunk]
        params = {"concurrency": self.processes, "schedule": "factoring", "chunks": len(chunks)}
        return RunResult(records=shipped(records), params=params)

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        shape = super().cost_shape(workload, n_jobs, cores)
        return dataclasses.replace(shape, schedule="factoring")
