"""``concurrent.futures.ThreadPoolExecutor`` with one ``submit`` per job (then every
``result()`` in order), the way ``process_pool`` drives processes: library defaults throughout."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
from producer.runners.thread_pool import default_thread_workers, executor_shape
from shared.workloads import Workload

EXECUTOR = "concurrent.futures:ThreadPoolExecutor"


def bare(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """What a user writes: ``ThreadPoolExecutor()``, a ``submit`` per job, every result."""

    def run_all() -> list[str]:
        with ThreadPoolExecutor() as executor:
            return [f.result() for f in [executor.submit(job, a) for a in args]]

    return timed(run_all, repeat)


class ThreadPoolSubmit(Runner):
    name = "thread_pool_submit"
    order = 35

    @classmethod
    def reference(cls) -> Reference:
        return bare

    settings = (LibraryCall(EXECUTOR, {"max_workers": None}, frozenset({"max_workers"})),)

    @property
    def workers(self) -> int:
        return self.options.thread_pool_workers or default_thread_workers()

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return min(self.workers, n_jobs)

    def run(self, batch: JobBatch) -> RunResult:
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        kwargs = self.kwargs_for(EXECUTOR, max_workers=self.options.thread_pool_workers)
        with ThreadPoolExecutor(**kwargs) as executor:
            futures = [executor.submit(run_job, job) for job in jobs]
            records = [f.result() for f in futures]
        return RunResult(records=shipped(records), params={"concurrency": self.workers})

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        return executor_shape(self.options.thread_pool_workers, n_jobs, cores)
