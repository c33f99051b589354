"""``concurrent.futures.ThreadPoolExecutor.map`` with Python's default worker count or an
explicit one (``--thread-pool-workers``)."""

from __future__ import annotations

import os
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
from shared.workloads import Workload

EXECUTOR = "concurrent.futures:ThreadPoolExecutor"


def default_thread_workers() -> int:
    """ThreadPoolExecutor's own default since Python 3.8."""
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    return min(32, (count or 1) + 4)


def bare(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """What a user writes: ``ThreadPoolExecutor()`` and ``map``."""

    def run_all() -> list[str]:
        with ThreadPoolExecutor() as executor:
            return list(executor.map(job, args))

    return timed(run_all, repeat)


def executor_shape(own: int | None, n_jobs: int, cores: int | None = None) -> CostShape:
    """A ``ThreadPoolExecutor``'s cost shape (``map`` or a ``submit`` per job alike): its
    workers under one GIL, each job handed over by a submit."""
    # ThreadPoolExecutor's default, min(32, cpus + 4), for the machine asked about.
    workers = own or (min(32, cores + 4) if cores else default_thread_workers())
    return CostShape(
        kind="thread", lanes=max(1, min(workers, n_jobs)), cpu_lanes=1,
        dispatch="thread_submit", dispatch_on_lanes=True, follows_cores=own is None,
    )  # fmt: skip


class ThreadPool(Runner):
    name = "thread_pool"
    order = 30
    default = True
    settings = (LibraryCall(EXECUTOR, {"max_workers": None}, frozenset({"max_workers"})),)

    @classmethod
    def reference(cls) -> Reference:
        return bare

    @property
    def workers(self) -> int:
        return self.options.thread_pool_workers or default_thread_workers()

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return min(self.workers, n_jobs)

    def run(self, batch: JobBatch) -> RunResult:
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        kwargs = self.kwargs_for(EXECUTOR, max_workers=self.options.thread_pool_workers)
        with ThreadPoolExecutor(**kwargs) as executor:
            records = list(executor.map(run_job, jobs))
        params = {
            "concurrency": self.workers,
            "max_workers": "default" if self.options.thread_pool_workers is None else self.workers,
        }
        return RunResult(records=shipped(records), params=params)

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        return executor_shape(self.options.thread_pool_workers, n_jobs, cores)
