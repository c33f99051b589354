"""``multiprocessing.Pool.map`` with one process per usable core; reports the chunksize."""

from __future__ import annotations

import multiprocessing
from multiprocessing.pool import Pool
from typing import Any

from producer.runners.base import JobBatch, Runner, RunResult, register
from producer.runners.jobs import job_args, pool_map_chunksize, run_job
from shared.workloads import Workload


@register
class MultiprocessingPool(Runner):
    name = "multiprocessing_pool"
    _pool: Pool | None = None

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return self.options.cpu_count

    def start(self, workload: Workload) -> dict[str, Any]:
        self.stop()
        self._pool = multiprocessing.Pool(self.options.cpu_count)
        return {"processes": self.options.cpu_count}

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def run(self, batch: JobBatch) -> RunResult:
        assert self._pool is not None, "start() first"
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        chunksize = self.options.chunksize or pool_map_chunksize(len(jobs), self.options.cpu_count)
        records = self._pool.map(run_job, jobs, chunksize=chunksize)
        params = {"concurrency": self.options.cpu_count, "chunksize": chunksize}
        return RunResult(records=records, params=params)
