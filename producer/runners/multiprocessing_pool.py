"""``multiprocessing.Pool().map`` with the library's defaults: one process per core
(``Pool()``), Pool.map's own chunksize rule; reports the chunksize it used."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.pool import Pool
from typing import Any

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

POOL = "multiprocessing.pool:Pool"
MAP = "multiprocessing.pool:Pool.map"


def bare(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """What a user writes: ``Pool()`` and ``map``, the pool's processes up before the clock."""
    with multiprocessing.Pool() as pool:
        pool.map(abs, range(WARM_JOBS))
        return timed(lambda: pool.map(job, args), repeat)


class MultiprocessingPool(Runner):
    name = "multiprocessing_pool"
    order = 50
    default = True
    settings = (
        LibraryCall(POOL, {"processes": None}, frozenset({"processes"})),
        LibraryCall(MAP, {"chunksize": None}, frozenset({"chunksize"})),
    )

    @classmethod
    def reference(cls) -> Reference:
        return bare

    _pool: Pool | None = None

    @property
    def processes(self) -> int:
        return self.options.cpu_count or library_cpu_count()

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return self.processes

    def start(self, workload: Workload) -> dict[str, Any]:
        self.stop()
        self._pool = multiprocessing.Pool(**self.kwargs_for(POOL, processes=self.options.cpu_count))
        return {"processes": self.processes}

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def run(self, batch: JobBatch) -> RunResult:
        assert self._pool is not None, "start() first"
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        kwargs = self.kwargs_for(MAP, chunksize=self.options.chunksize)
        records = self._pool.map(run_job, jobs, **kwargs)
        # What Pool.map chose when left to itself (its rule, recomputed), for the report.
        chunksize = kwargs.get("chunksize") or pool_map_chunksize(len(jobs), self.processes)
        params = {"concurrency": self.processes, "chunksize": chunksize}
        return RunResult(records=shipped(records), params=params)

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        own = self.options.cpu_count
        processes = own or (cores or library_cpu_count())
        chunk = self.options.chunksize
        return CostShape(
            kind="process", lanes=processes, cpu_lanes=min(processes, cores_here(cores)),
            schedule="fixed" if chunk else "pool_map", chunk=chunk or 1,
            dispatch="pool_task", transfer=True, follows_cores=own is None,
            untimed_start="process_pool_start",
        )  # fmt: skip
