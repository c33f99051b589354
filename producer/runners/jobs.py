"""Picklable job entry points shared by the in-process runners (process pools need top-level
functions), all delegating to ``shared.timings.timed_job_fields``: a job hands back its record's
field values, and the runner wraps them in ``ShippedRecords``, built after the timed window."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.timings import RecordFields, ShippedRecords, timed_job_fields
from shared.workloads import ResultMode, Workload

#: (job_id, workload, arg, model, mode): one job as a process pool ships it. The workload is a
#: label (``io``, ``cpu``, ``module:function``): the child resolves and caches its job by name.
JobArgs = tuple[int, Workload, Any, str, ResultMode]


def run_job(job: JobArgs) -> RecordFields:
    job_id, workload, arg, model, mode = job
    return timed_job_fields(job_id, workload, arg, model=model, pool=model, mode=mode)


def job_args(model: str, workload: Workload, args: list[Any], mode: ResultMode) -> list[JobArgs]:
    return [(i, workload, arg, model, mode) for i, arg in enumerate(args)]


def run_chunk(jobs: list[JobArgs]) -> list[RecordFields]:
    """A chunk of jobs as one pool task: what a scheduled (``*_factoring``) pool model ships, one
    chunk of the schedule per task."""
    return [run_job(job) for job in jobs]


def shipped(values: Iterable[RecordFields]) -> ShippedRecords:
    """The records of a repeat from what its jobs handed back (built lazily, after the window)."""
    return ShippedRecords(values)
