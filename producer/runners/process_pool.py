"""``concurrent.futures.ProcessPoolExecutor``: one ``submit`` per job as the seed does
(``process_pool``), and ``map`` with a chunksize (``process_pool_map``)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

from producer.runners.base import JobBatch, Runner, RunResult, register
from producer.runners.jobs import job_args, pool_map_chunksize, run_job
from shared.workloads import Workload


@register
class ProcessPoolSubmit(Runner):
    name = "process_pool"
    _executor: ProcessPoolExecutor | None = None

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return self.options.cpu_count

    def start(self, workload: Workload) -> dict[str, Any]:
        self.stop()
        self._executor = ProcessPoolExecutor(max_workers=self.options.cpu_count)
        # Spawn the workers now so process start-up stays out of the timed window.
        list(self._executor.map(abs, range(self.options.cpu_count)))
        return {"processes": self.options.cpu_count}

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
            records=records, params={"concurrency": self.options.cpu_count, "chunksize": 1}
        )


@register
class ProcessPoolMap(ProcessPoolSubmit):
    name = "process_pool_map"

    def run(self, batch: JobBatch) -> RunResult:
        assert self._executor is not None, "start() first"
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        chunksize = self.options.chunksize or pool_map_chunksize(len(jobs), self.options.cpu_count)
        records = list(self._executor.map(run_job, jobs, chunksize=chunksize))
        params = {"concurrency": self.options.cpu_count, "chunksize": chunksize}
        return RunResult(records=records, params=params)
