"""``concurrent.futures.InterpreterPoolExecutor().map`` (Python 3.14+): a sub-interpreter per
worker, each with its own GIL, so pure-Python CPU jobs run in parallel inside one process.

Library defaults throughout. On an older Python the model reports itself unavailable (with the
reason) instead of failing: ``jobbench bench --models interpreter_pool`` is then a one-line error.
"""

from __future__ import annotations

import concurrent.futures
import sys
from concurrent.futures import Executor
from typing import Any

from producer.runners.base import (
    CostShape,
    JobBatch,
    LibraryCall,
    Runner,
    RunResult,
    cores_here,
)
from producer.runners.jobs import job_args, run_job, shipped
from producer.runners.thread_pool import default_thread_workers
from shared.workloads import Workload

EXECUTOR = "concurrent.futures:InterpreterPoolExecutor"


class InterpreterPool(Runner):
    name = "interpreter_pool"
    order = 80
    settings = (LibraryCall(EXECUTOR, {"max_workers": None}, frozenset({"max_workers"})),)
    _executor: Executor | None = None

    @classmethod
    def available(cls) -> str | None:
        if hasattr(concurrent.futures, "InterpreterPoolExecutor"):
            return None
        return (
            "needs concurrent.futures.InterpreterPoolExecutor (Python 3.14+); "
            f"this is Python {sys.version.split()[0]}"
        )

    @property
    def workers(self) -> int:
        # InterpreterPoolExecutor sizes itself as ThreadPoolExecutor does.
        return self.options.cpu_count or default_thread_workers()

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return min(self.workers, n_jobs)

    def start(self, workload: Workload) -> dict[str, Any]:
        self.stop()
        executor_class = getattr(concurrent.futures, "InterpreterPoolExecutor")  # noqa: B009
        self._executor = executor_class(
            **self.kwargs_for(EXECUTOR, max_workers=self.options.cpu_count)
        )
        return {"interpreters": self.workers}

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def run(self, batch: JobBatch) -> RunResult:
        assert self._executor is not None, "start() first"
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        records = list(self._executor.map(run_job, jobs))
        return RunResult(records=shipped(records), params={"concurrency": self.workers})

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        # A GIL per interpreter: parallel up to the cores; each task crosses interpreters, costed
        # as a process pool's hand-over (not measured separately).
        own = self.options.cpu_count
        workers = max(1, min(own or (min(32, cores + 4) if cores else self.workers), n_jobs))
        return CostShape(
            kind="interpreter", lanes=workers, cpu_lanes=min(workers, cores_here(cores)),
            dispatch="process_task", transfer=True, follows_cores=own is None,
        )  # fmt: skip
