"""Every job one after the other in the calling thread: the baseline."""

from __future__ import annotations

from producer.runners.base import JobBatch, Runner, RunResult
from producer.runners.jobs import job_args, run_job
from shared.workloads import Workload


class Sequential(Runner):
    name = "sequential"
    order = 10
    default = True
    baseline = True
    in_timeline = False

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return 1

    def run(self, batch: JobBatch) -> RunResult:
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        return RunResult(records=[run_job(j) for j in jobs], params={"concurrency": 1})
