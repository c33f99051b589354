"""The per-job timing record, how a job is run and timed, and its store in Redis.

Timestamps are wall-clock nanoseconds (``time.time_ns``) so records written by different
processes on one host share a time axis; durations derived from them are what the report shows.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import redis
import requests
from redis.typing import EncodableT, FieldT

from shared import keys
from shared.workloads import ResultMode, Workload, run_cpu_job, run_io_job

Outcome = Literal["ok", "error"]

#: The host name recorded with every job (read once: it does not change within a process).
HOSTNAME = socket.gethostname()


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Who ran one job, when, and how it ended."""

    job_id: int
    workload: str
    model: str
    pool: str
    enqueued_at_ns: int
    started_at_ns: int
    finished_at_ns: int
    host: str
    pid: int
    process: str
    thread: str
    attempt: int
    outcome: Outcome
    error: str | None = None
    output: str | None = None

    @property
    def run_s(self) -> float:
        return (self.finished_at_ns - self.started_at_ns) / 1e9

    @property
    def queue_wait_s(self) -> float:
        return (self.started_at_ns - self.enqueued_at_ns) / 1e9

    @property
    def end_to_end_s(self) -> float:
        return (self.finished_at_ns - self.enqueued_at_ns) / 1e9

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> JobRecord:
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def run_workload(
    workload: Workload, arg: int | str, mode: ResultMode, session: requests.Session | None = None
) -> str:
    """Run one job of ``workload`` and return its output (digest or full)."""
    if workload == "cpu":
        return run_cpu_job(int(arg), mode)
    return run_io_job(str(arg), mode, session)


def timed_job(
    job_id: int,
    workload: Workload,
    arg: int | str,
    *,
    model: str,
    pool: str,
    mode: ResultMode = "digest",
    enqueued_at_ns: int | None = None,
    attempt: int = 1,
    session: requests.Session | None = None,
) -> JobRecord:
    """Run one job and time it; an exception becomes an ``error`` record, never a lost job."""
    started = time.time_ns()
    output: str | None = None
    error: str | None = None
    try:
        output = run_workload(workload, arg, mode, session)
    except Exception as exc:  # a failing job is data, not a crash of the harness
        error = f"{type(exc).__name__}: {exc}"[:500]
    finished = time.time_ns()
    return JobRecord(
        job_id=job_id,
        workload=workload,
        model=model,
        pool=pool,
        enqueued_at_ns=started if enqueued_at_ns is None else enqueued_at_ns,
        started_at_ns=started,
        finished_at_ns=finished,
        host=HOSTNAME,
        pid=os.getpid(),
        process=multiprocessing.current_process().name,
        thread=threading.current_thread().name,
        attempt=attempt,
        outcome="ok" if error is None else "error",
        error=error,
        output=output,
    )


class TimingStore:
    """Job records in Redis. Writes are pipelined and idempotent (one hash field per job)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str) -> TimingStore:
        return cls(redis.Redis.from_url(url))

    def register_scope(self, run_id: str, scope_key: str, meta: Mapping[str, Any]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.sadd(keys.scopes_index(run_id), scope_key)
        pipe.hset(keys.meta(scope_key), mapping={k: json.dumps(v) for k, v in meta.items()})
        pipe.execute()

    def scope_meta(self, scope_key: str) -> dict[str, Any]:
        raw: dict[bytes, bytes] = self.client.hgetall(keys.meta(scope_key))  # type: ignore[assignment]
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def mark_enqueued(self, scope_key: str, enqueued_at_ns: Mapping[int, int]) -> None:
        if enqueued_at_ns:
            mapping: dict[FieldT, EncodableT] = {str(k): v for k, v in enqueued_at_ns.items()}
            self.client.hset(keys.enqueued(scope_key), mapping=mapping)

    def start_attempts(self, scope_key: str, job_ids: Sequence[int]) -> list[int]:
        """Count one more delivery of each job; returns each job's attempt number (1 = first)."""
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hincrby(keys.attempts(scope_key), str(job_id), 1)
        return [int(n) for n in pipe.execute()]

    def save(self, scope_key: str, records: Iterable[JobRecord]) -> None:
        mapping: dict[FieldT, EncodableT] = {str(r.job_id): r.to_json() for r in records}
        if mapping:
            self.client.hset(keys.records(scope_key), mapping=mapping)

    def count(self, scope_key: str) -> int:
        return int(self.client.hlen(keys.records(scope_key)))

    def load(self, scope_key: str) -> list[JobRecord]:
        raw: dict[bytes, bytes] = self.client.hgetall(keys.records(scope_key))  # type: ignore[assignment]
        return sorted((JobRecord.from_json(v) for v in raw.values()), key=lambda r: r.job_id)

    def attempts(self, scope_key: str) -> dict[int, int]:
        raw: dict[bytes, bytes] = self.client.hgetall(keys.attempts(scope_key))  # type: ignore[assignment]
        return {int(k): int(v) for k, v in raw.items()}

    def missing(self, scope_key: str, n_jobs: int) -> list[int]:
        """Job ids in range(n_jobs) that have no record (HEXISTS-free: one HKEYS)."""
        present = {int(k) for k in self.client.hkeys(keys.records(scope_key))}
        return [i for i in range(n_jobs) if i not in present]
