"""``concurrent.futures.ProcessPoolExecutor``: one ``submit`` per job with the library's defaults,
as the seed does (``process_pool``), and ``map`` with Pool.map's chunksize rule
(``process_pool_map``, a tuned variant: ``ProcessPoolExecutor.map`` defaults to chunksize 1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, ClassVar

from producer.references import WARM_JOBS, timed
from producer.runners.base import (
    CostShape,
    JobBatch,
    LibraryCall,
    Reference,
    Runner,
    RunResult,
    cores_here,
    library_cpu_count,
)
from producer.runners.jobs import job_args, run_job, shipped
from producer.schedule import pool_map_chunksize
from shared.workloads import Workload

EXECUTOR = "concurrent.futures:ProcessPoolExecutor"
MAP = "concurrent.futures:ProcessPoolExecutor.map"
#: What ``process_pool_map`` passes as ``chunksize`` unless ``--chunksize`` says otherwise.
POOL_MAP_RULE = "multiprocessing.Pool.map's rule: ceil(n_jobs / (4 x workers))"


def bare(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """What a user writes: ``ProcessPoolExecutor()`` and a ``submit`` per job."""
    with ProcessPoolExecutor() as executor:
        list(executor.map(abs, range(WARM_JOBS)))
        return timed(lambda: [f.result() for f in [executor.submit(job, a) for a in args]], repeat)


def bare_map(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """``ProcessPoolExecutor().map`` with Pool.map's chunksize rule, as the tuned model passes."""
    with ProcessPoolExecutor() as executor:
        list(executor.map(abs, range(WARM_JOBS)))
        size = pool_map_chunksize(len(args), library_cpu_count())
        return timed(lambda: list(executor.map(job, args, chunksize=size)), repeat)


class ProcessPoolSubmit(Runner):
    name = "process_pool"
    order = 60
    default = True
    settings: ClassVar[tuple[LibraryCall, ...]] = (
        LibraryCall(EXECUTOR, {"max_workers": None}, frozenset({"max_workers"})),
    )

    @classmethod
    def reference(cls) -> Reference:
        return bare

    _executor: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self.options.cpu_count or library_cpu_count()

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return self.workers

    def start(self, workload: Workload) -> dict[str, Any]:
        self.stop()
        kwargs = self.kwargs_for(EXECUTOR, max_workers=self.options.cpu_count)
        self._executor = ProcessPoolExecutor(**kwargs)
        # Spawn the workers now so process start-up stays out of the timed window.
        list(self._executor.map(abs, range(self.workers)))
        return {"processes": self.workers}

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def run(self, batch: JobBatch) -> RunResult:
        assert self._executor is not None, "start() first"
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        futures = [self._executor.submit(run_job, job) for job in jobs]
        records = [f.result() for f in futures]
        return RunResult(
            records=shipped(records), params={"concurrency": self.workers, "chunksize": 1}
        )

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        own = self.options.cpu_count
        workers = own or (cores or library_cpu_count())
        return CostShape(
            kind="process", lanes=workers, cpu_lanes=min(workers, cores_here(cores)),
            dispatch="process_task", transfer=True, follows_cores=own is None,
            untimed_start="process_pool_start", dispatch_cpu="process_task_cpu",
            cores=cores_here(cores),
        )  # fmt: skip


class ProcessPoolMap(ProcessPoolSubmit):
    name = "process_pool_map"
    order = 70
    tuned = True
    settings = (
        *ProcessPoolSubmit.settings,
        LibraryCall(MAP, {"chunksize": POOL_MAP_RULE}, frozenset({"chunksize"})),
    )

    @classmethod
    def reference(cls) -> Reference:
        return bare_map

    def run(self, batch: JobBatch) -> RunResult:
        assert self._executor is not None, "start() first"
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        chunksize = self.options.chunksize or pool_map_chunksize(len(jobs), self.workers)
        records = list(self._executor.map(run_job, jobs, chunksize=chunksize))
        params = {"concurrency": self.workers, "chunksize": chunksize}
        return RunResult(records=shipped(records), params=params)

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        chunk = self.options.chunksize
        shape = super().cost_shape(workload, n_jobs, cores)
        return dataclasses.replace(
            shape, schedule="fixed" if chunk else "pool_map", chunk=chunk or 1
        )
