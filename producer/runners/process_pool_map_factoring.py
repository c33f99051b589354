"""``process_pool_map`` with a factoring schedule (``producer.schedule``): one chunk of shrinking
size per ``ProcessPoolExecutor.map`` task, so the processes finish together on rising-cost jobs.
A named variant (tuned) shown beside ``process_pool_map``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from producer.references import WARM_JOBS, timed
from producer.runners.base import (
    CostShape,
    JobBatch,
    LibraryCall,
    Reference,
    RunResult,
    library_cpu_count,
)
from producer.runners.jobs import job_args, run_chunk, shipped
from producer.runners.multiprocessing_pool_factoring import FACTORING, run_all
from producer.runners.process_pool import EXECUTOR, MAP, ProcessPoolSubmit
from producer.schedule import factoring_ranges
from shared.workloads import Workload


def bare(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """``ProcessPoolExecutor()`` with the schedule's chunks as tasks."""
    with ProcessPoolExecutor() as executor:
        list(executor.map(abs, range(WARM_JOBS)))
        ranges = factoring_ranges(len(args), library_cpu_count())
        jobs = [job] * len(ranges)
        chunks = [args[r.start : r.stop] for r in ranges]
        return timed(lambda: list(executor.map(run_all, jobs, chunks)), repeat)


class ProcessPoolMapFactoring(ProcessPoolSubmit):
    name = "process_pool_map_factoring"
    order = 71
    default = False
    tuned = True

    @classmethod
    def reference(cls) -> Reference:
        return bare

    settings = (
        LibraryCall(EXECUTOR, {"max_workers": None}, frozenset({"max_workers"})),
        LibraryCall(MAP, {"chunksize": FACTORING}),
    )

    def run(self, batch: JobBatch) -> RunResult:
        assert self._executor is not None, "start() first"
        jobs = job_args(self.name, batch.workload, list(batch.args), batch.mode)
        chunks = [jobs[r.start : r.stop] for r in factoring_ranges(len(jobs), self.workers)]
        records = [rec for chunk in self._executor.map(run_chunk, chunks) for rec in chunk]
        params = {"concurrency": self.workers, "schedule": "factoring", "chunks": len(chunks)}
        return RunResult(records=shipped(records), params=params)

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        shape = super().cost_shape(workload, n_jobs, cores)
        return dataclasses.replace(shape, schedule="factoring")
