"""The worker's tasks: thin wrappers around ``shared.timings`` (``timed_job`` one job after the
other, ``gather_io_jobs`` every IO job of the message at once on an event loop).

A message carries a batch of jobs (enqueueing one message per job costs ~1 ms each, which would
dominate 15,000 millisecond-sized CPU jobs), but every job keeps its own timing record. Per
message the task makes exactly two Redis round trips: one Lua call counting the delivery of every
job (``HINCRBY`` each, so a redelivered job shows ``attempt`` > 1) and one ``HSET`` of all its
records (idempotent: a redelivery overwrites the job's one field, it never adds a row). The task
returns nothing: the records are the result, so no result payload ever travels back. With the
fetch-path trace on (``worker.fetch_trace``), the message's trace rides in that same round trip.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import redis
from celery.exceptions import Reject
from celery.worker.control import inspect_command

from shared import fetch_path, jobspec
from shared.settings import Settings
from shared.timings import (
    HOSTNAME,
    TASK_WORKLOADS,
    JobRecord,
    TimingStore,
    gather_io_jobs,
    timed_job,
)
from shared.workloads import RESULT_MODES, ResultMode
from worker import fetch_trace
from worker.app import RUN_IO_GATHERED_TASK, RUN_JOBS_TASK, app, running_pool

#: One job as it travels in a message: ``[job_id, arg, enqueued_at_ns]`` (JSON has no tuples).
JobSpec = Sequence[int | str]

#: One timing store (and so one redis-py connection pool) per process and URL, created on first
#: use: nothing connects at import, and prefork children never share a parent's sockets because
#: the parent never runs a task.
_stores: dict[str, TimingStore] = {}
_stores_lock = threading.Lock()


def timing_store() -> TimingStore:
    """The store at ``REDIS_URL`` (same resolution as the app), shared by the process's threads."""
    url = Settings.from_env().redis_url
    store = _stores.get(url)
    if store is None:
        with _stores_lock:
            store = _stores.get(url)
            if store is None:
                store = _stores[url] = TimingStore.from_url(url)
    return store


def _checked(workload: str, mode: str) -> tuple[str, ResultMode]:
    # A user's module:function is resolved job by job (``timed_job``): one that does not import
    # here becomes each job's error record, never a lost message.
    if workload not in TASK_WORKLOADS and not jobspec.is_user_job(workload):
        raise ValueError(f"unknown workload {workload!r}")
    if mode not in RESULT_MODES:
        raise ValueError(f"unknown result mode {mode!r}")
    return workload, mode  # narrowed to the Literal types by the checks above


def run_jobs_body(
    scope_key: str, workload: str, model: str, mode: str, jobs: list[list[int | str]]
) -> None:
    """Run and record every job of one message (the task; its records are its result)."""
    _run_task(scope_key, workload, model, mode, jobs, gathered=False)


def run_io_jobs_gathered_body(
    scope_key: str, workload: str, model: str, mode: str, jobs: list[list[int | str]]
) -> None:
    """Run every IO job of one message at once on an event loop (``gather_io_jobs``), and
    record each (the task; its records are its result)."""
    _run_task(scope_key, workload, model, mode, jobs, gathered=True)


def _run_task(
    scope_key: str,
    workload: str,
    model: str,
    mode: str,
    jobs: list[list[int | str]],
    *,
    gathered: bool,
) -> None:
    # First: the stamps belong to this task, whatever happens next.
    stamps = fetch_trace.take()
    try:
        run_message(
            timing_store(), scope_key, workload, model, mode, jobs,
            pool=running_pool(), gathered=gathered, stamps=stamps,
        )  # fmt: skip
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        # The timing Redis is gone (a restart): the jobs' records are not saved. Failing would
        # let late acks acknowledge the message and lose its jobs; give it back instead. If the
        # broker is down too, the reject fails and the visibility timeout brings it back.
        raise Reject(exc, requeue=True) from exc


def run_message(
    store: TimingStore,
    scope_key: str,
    workload: str,
    model: str,
    mode: str,
    jobs: Sequence[JobSpec],
    *,
    pool: str,
    gathered: bool = False,
    stamps: fetch_trace.Stamps | None = None,
) -> int:
    """Count the deliveries, run and time each job, save every record; returns how many.

    ``gathered``: the IO jobs run at once on an event loop instead of one after the other.
    ``stamps``: the message's fetch path, saved with the records (``shared.fetch_path``).
    Everything timing capture costs a worker is here (``jobbench overhead`` times these steps
    against the bare jobs, job by job).
    """
    workload_, mode_ = _checked(workload, mode)
    if gathered and workload_ != "io":
        raise ValueError(f"only IO jobs can be gathered on an event loop: got {workload_!r}")
    job_ids = [int(job[0]) for job in jobs]
    attempts = store.start_attempts(scope_key, job_ids)
    records: list[JobRecord]
    if gathered:
        records = gather_io_jobs(
            [(job_id, str(job[1]), int(job[2]), attempt)
             for job_id, job, attempt in zip(job_ids, jobs, attempts, strict=True)],
            model=model, pool=pool, mode=mode_,
        )  # fmt: skip
    else:
        records = [
            timed_job(
                job_id,
                workload_,
                job[1],
                model=model,
                pool=pool,
                mode=mode_,
                enqueued_at_ns=int(job[2]),
                attempt=attempt,
            )
            for job_id, job, attempt in zip(job_ids, jobs, attempts, strict=True)
        ]
    if stamps is None or not job_ids:
        store.save(scope_key, records)
    else:
        trace = fetch_path.MessageTrace(
            first_job_id=job_ids[0],
            n_jobs=len(job_ids),
            published_at_ns=int(jobs[0][2]),
            received_at_ns=stamps.received_at_ns,
            prerun_at_ns=stamps.prerun_at_ns,
            consumer_cpu_ns=stamps.consumer_cpu_ns,
            consumer_pid=stamps.consumer_pid,
            host=HOSTNAME,
        )
        fetch_path.save(store, scope_key, records, trace)
    return len(records)


#: The tasks (``jobbench.run_jobs``, ``jobbench.run_io_jobs_gathered``). Registered by call
#: rather than decorator so the typed bodies above stay visible to mypy (Celery ships no type
#: information).
run_jobs = app.task(name=RUN_JOBS_TASK)(run_jobs_body)
run_io_jobs_gathered = app.task(name=RUN_IO_GATHERED_TASK)(run_io_jobs_gathered_body)


#: The remote-control command that asks a node whether it can import a user's job (the producer
#: probes external workers with it before a ``--job`` run: ``consumers.probe_job``).
IMPORT_JOB_COMMAND = "jobbench_import_job"


def import_job(state: object, job: str) -> dict[str, str]:
    """Resolve ``job`` (``module:function``) here: ``{"ok": kind}`` or ``{"error": why}``."""
    try:
        return {"ok": jobspec.resolve(job).kind}
    except jobspec.JobSpecError as exc:
        return {"error": str(exc)}


inspect_command(name=IMPORT_JOB_COMMAND, args=[("job", str)], signature="<module:function>")(
    import_job
)
