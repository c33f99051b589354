"""``concurrent.futures.ThreadPoolExecutor`` with one ``submit`` per job (then every
``result()`` in order), the way ``process_pool`` drives processes: library defaults throughout."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from producer.runners.base import JobBatch, LibraryCall, Runner, RunResult
from producer.runners.jobs import job_args, run_job
from producer.runners.thread_pool import default_thread_workers
from shared.workloads import Workload

EXECUTOR = "concurrent.futures:ThreadPoolExecutor"


class ThreadPoolSubmit(Runner):
    name = "thread_pool_submit"
    order = 35
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
        return RunResult(records=records, params={"concurrency": self.workers})
