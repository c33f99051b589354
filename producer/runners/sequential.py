"""Every job one after the other in the calling thread: the baseline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from producer.references import timed
from producer.runners.base import CostShape, JobBatch, Reference, Runner, RunResult
from producer.runners.jobs import job_args, run_job, shipped
from shared.workloads import Workload


def bare(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """What a user writes: a loop."""
    return timed(lambda: [job(a) for a in args], repeat)


class Sequential(Runner):
    name = "sequential"
    order = 10
    default = True
    baseline = True
    in_timeline = False

    @classmethod
    def reference(cls) -> Reference:
        return bare

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return 1

    def run(self, batch: JobBatch) -> RunResult:
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        return RunResult(records=shipped([run_job(j) for j in jobs]), params={"concurrency": 1})

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        return CostShape(kind="sequential", lanes=1, cpu_lanes=1)
