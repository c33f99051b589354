"""``concurrent.futures.ThreadPoolExecutor`` with Python's default worker count or an explicit
one (``--thread-pool-workers``)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from producer.runners.base import JobBatch, Runner, RunResult, register
from producer.runners.jobs import job_args, run_job
from shared.workloads import Workload


def default_thread_workers() -> int:
    """ThreadPoolExecutor's own default since Python 3.8."""
    return min(32, (os.cpu_count() or 1) + 4)


@register
class ThreadPool(Runner):
    name = "thread_pool"

    @property
    def workers(self) -> int:
        return self.options.thread_pool_workers or default_thread_workers()

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return min(self.workers, n_jobs)

    def run(self, batch: JobBatch) -> RunResult:
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        with ThreadPoolExecutor(max_workers=self.workers) as executor:
            records = list(executor.map(run_job, jobs))
        params = {
            "concurrency": self.workers,
            "max_workers": "default" if self.options.thread_pool_workers is None else self.workers,
        }
        return RunResult(records=records, params=params)
