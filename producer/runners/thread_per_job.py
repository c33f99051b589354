"""The ``threading`` model: one ``threading.Thread`` per job, started together and joined, as
the seed does."""

from __future__ import annotations

import threading

from producer.runners.base import JobBatch, LibraryCall, Runner, RunResult
from producer.runners.jobs import job_args, run_job
from shared.timings import JobRecord
from shared.workloads import Workload


class Threads(Runner):
    name = "threading"
    order = 20
    default = True
    settings = (LibraryCall("threading:Thread"),)

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return n_jobs

    def run(self, batch: JobBatch) -> RunResult:
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        records: list[JobRecord | None] = [None] * len(jobs)

        def work(i: int) -> None:
            records[i] = run_job(jobs[i])

        kwargs = self.kwargs_for("threading:Thread")
        threads = [threading.Thread(target=work, args=(i,), **kwargs) for i in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done = [r for r in records if r is not None]
        return RunResult(records=done, params={"concurrency": len(threads)})
