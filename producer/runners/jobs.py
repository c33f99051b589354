"""Picklable job entry points shared by the in-process runners (process pools need top-level
functions), all delegating to ``shared.timings.timed_job``."""

from __future__ import annotations

from shared.timings import JobRecord, timed_job
from shared.workloads import ResultMode, Workload

#: (job_id, workload, arg, model, mode): one job as a process pool ships it.
JobArgs = tuple[int, Workload, int | str, str, ResultMode]


def run_job(job: JobArgs) -> JobRecord:
    job_id, workload, arg, model, mode = job
    return timed_job(job_id, workload, arg, model=model, pool=model, mode=mode)


def job_args(
    model: str, workload: Workload, args: list[int | str], mode: ResultMode
) -> list[JobArgs]:
    return [(i, workload, arg, model, mode) for i, arg in enumerate(args)]


def pool_map_chunksize(n_jobs: int, n_workers: int) -> int:
    """multiprocessing.Pool.map's own default: about 4 chunks per worker."""
    chunksize, extra = divmod(n_jobs, n_workers * 4)
    return chunksize + 1 if extra else max(chunksize, 1)
