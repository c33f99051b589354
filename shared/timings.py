"""The per-job timing record, how a job is run and timed, and its store in Redis.

Timestamps are wall-clock nanoseconds (``time.time_ns``) so records written by different
processes on one host share a time axis; durations derived from them are what the report shows.

Capturing a record must cost the measured jobs next to nothing (``jobbench overhead`` measures
it): a record travels as a JSON *array* of its fields in declaration order, written and read with
orjson (~0.6 µs to encode and ~2.5 µs to decode here, against ~17 and ~9 µs for ``asdict`` and a
JSON object with the stdlib), and a message's deliveries are counted with one Lua call instead
of one ``HINCRBY`` per job.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, Final, Generic, Literal, TypeVar, overload

import httpx
import orjson
import redis
import requests
from redis.typing import EncodableT, FieldT

from shared import jobspec, keys
from shared.workloads import ResultMode, Workload, run_io_job_async

Outcome = Literal["ok", "error"]

#: What a task can be asked to run: a seed workload, a user's ``module:function`` (any label
#: ``shared.jobspec.is_user_job`` accepts), or ``noop`` (no work at all: what ``jobbench
#: overhead`` uses to measure the cost of the machinery around a job). ``noop`` is not a bench
#: workload.
NOOP: Final = "noop"
TaskWorkload = Workload | Literal["noop"]
TASK_WORKLOADS: tuple[TaskWorkload, ...] = ("io", "cpu", NOOP)
#: What a noop job hands back.
NOOP_OUTPUT = "noop"

T = TypeVar("T")

#: The host name recorded with every job (read once: it does not change within a process).
HOSTNAME = socket.gethostname()


@dataclass(frozen=True, slots=True)
class JobRecord:
    """Who ran one job, when, and how it ended.

    The field order is the wire format (``to_json`` writes a JSON array): add new fields at the
    end, with a default, so records written before still decode.
    """

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
        return orjson.dumps(_values(self)).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> JobRecord:
        """A record from ``to_json`` (an array), or from older jobbench (a JSON object)."""
        data = orjson.loads(raw)
        if isinstance(data, list):
            return cls(*data) if len(data) == _N_FIELDS else cls(*data[:_N_FIELDS])
        return cls(**{k: v for k, v in data.items() if k in _FIELD_SET})


#: The record's field names in wire order.
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(JobRecord))
_N_FIELDS = len(RECORD_FIELDS)
_FIELD_SET = frozenset(RECORD_FIELDS)
_values = attrgetter(*RECORD_FIELDS)
#: A record's values in ``RECORD_FIELDS`` order: what an in-process job hands back.
RecordFields = tuple[Any, ...]

#: Counts one more delivery of each job in the hash KEYS[1] and returns the new counts: one
#: round trip and one command for a whole message (a pipelined ``HINCRBY`` per job cost ~11 µs a
#: job on the Python side: ~21 ms for a 1,875-job message). ARGV is ``r, first, stop`` for the
#: contiguous ids first..stop-1 (a message's usual shape: O(1) to send), else the ids. The reply
#: is one count when every job has the same one (the usual case: all 1), else one per job.
_START_ATTEMPTS_LUA = """
local ids = ARGV
if ARGV[1] == 'r' then
    ids = {}
    for id = tonumber(ARGV[2]), tonumber(ARGV[3]) - 1 do
        ids[#ids + 1] = string.format('%d', id)
    end
end
local out = {}
local same = true
for i, job_id in ipairs(ids) do
    out[i] = redis.call('HINCRBY', KEYS[1], job_id, 1)
    if out[i] ~= out[1] then
        same = false
    end
end
if same and #out > 1 then
    return {out[1]}
end
return out
"""


def run_workload(
    workload: str,
    arg: Any,
    mode: ResultMode,
    session: requests.Session | None = None,
) -> str:
    """Run one job of ``workload`` and return its output (digest or full): the one path every
    model's job takes, through the workload's ``JobSpec`` (the seed's are built in)."""
    if workload == NOOP:
        return NOOP_OUTPUT
    return jobspec.for_workload(workload).run(arg, mode, session)


def timed_job(
    job_id: int,
    workload: str,
    arg: Any,
    *,
    model: str,
    pool: str,
    mode: ResultMode = "digest",
    enqueued_at_ns: int | None = None,
    attempt: int = 1,
    session: requests.Session | None = None,
) -> JobRecord:
    """Run one job and time it; an exception becomes an ``error`` record, never a lost job."""
    return JobRecord(
        *timed_job_fields(
            job_id, workload, arg, model=model, pool=pool, mode=mode,
            enqueued_at_ns=enqueued_at_ns, attempt=attempt, session=session,
        )
    )  # fmt: skip


def timed_job_fields(
    job_id: int,
    workload: str,
    arg: Any,
    *,
    model: str,
    pool: str,
    mode: ResultMode = "digest",
    enqueued_at_ns: int | None = None,
    attempt: int = 1,
    session: requests.Session | None = None,
) -> RecordFields:
    """``timed_job`` as the record's field values: what an in-process model's job hands back,
    so the record itself is built after the timed window (``ShippedRecords``)."""
    started = time.time_ns()
    output: str | None = None
    error: str | None = None
    try:
        output = run_workload(workload, arg, mode, session)
    except Exception as exc:  # a failing job is data, not a crash of the harness
        error = describe_error(exc)
    return record_fields(
        job_id, workload, model=model, pool=pool, started_at_ns=started,
        enqueued_at_ns=enqueued_at_ns, attempt=attempt, output=output, error=error,
    )  # fmt: skip


async def timed_io_job_async(
    client: httpx.AsyncClient,
    job_id: int,
    url: str,
    *,
    model: str,
    pool: str,
    mode: ResultMode = "digest",
    enqueued_at_ns: int | None = None,
    attempt: int = 1,
) -> JobRecord:
    """``timed_job`` for one IO job on an event loop: the same retries, the same record."""
    return await _timed_coroutine(
        run_io_job_async(client, url, mode), job_id, "io", model=model, pool=pool,
        enqueued_at_ns=enqueued_at_ns, attempt=attempt,
    )  # fmt: skip


async def timed_job_async(
    spec: jobspec.JobSpec,
    job_id: int,
    arg: Any,
    *,
    model: str,
    pool: str,
    mode: ResultMode = "digest",
    enqueued_at_ns: int | None = None,
    attempt: int = 1,
) -> JobRecord:
    """``timed_job`` for one ``async def`` user job on the running event loop."""
    return await _timed_coroutine(
        spec.run_async(arg, mode), job_id, spec.label, model=model, pool=pool,
        enqueued_at_ns=enqueued_at_ns, attempt=attempt,
    )  # fmt: skip


async def _timed_coroutine(
    job: Coroutine[Any, Any, str],
    job_id: int,
    workload: str,
    *,
    model: str,
    pool: str,
    enqueued_at_ns: int | None,
    attempt: int,
) -> JobRecord:
    """Await one job's coroutine (created, not started) and time it; an exception becomes an
    ``error`` record, never a lost job."""
    started = time.time_ns()
    output: str | None = None
    error: str | None = None
    try:
        output = await job
    except Exception as exc:  # a failing job is data, not a crash of the harness
        error = describe_error(exc)
    return job_record(
        job_id, workload, model=model, pool=pool, started_at_ns=started,
        enqueued_at_ns=enqueued_at_ns, attempt=attempt, output=output, error=error,
    )  # fmt: skip


#: One IO job to gather: (job id, URL, enqueued_at_ns, attempt).
GatheredJob = tuple[int, str, int, int]


def gather_io_jobs(
    jobs: Sequence[GatheredJob], *, model: str, pool: str, mode: ResultMode = "digest"
) -> list[JobRecord]:
    """Run IO jobs concurrently on a new event loop, one ``httpx.AsyncClient()`` with the
    library's defaults (at most 100 connections) for all of them, as a user calls
    ``asyncio.run`` from a synchronous task. One record per job, in the order given."""

    async def gather() -> list[JobRecord]:
        async with httpx.AsyncClient() as client:
            return list(
                await asyncio.gather(*(
                    timed_io_job_async(
                        client, job_id, url, model=model, pool=pool, mode=mode,
                        enqueued_at_ns=enqueued_at_ns, attempt=attempt,
                    )
                    for job_id, url, enqueued_at_ns, attempt in jobs
                ))
            )  # fmt: skip

    return asyncio.run(gather())


#: Longest error message kept in a record (characters): enough for the cause, not a page.
MAX_ERROR_CHARS = 500


def describe_error(exc: BaseException) -> str:
    """The one-line error a failed job's record keeps."""
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def job_record(
    job_id: int,
    workload: str,
    *,
    model: str,
    pool: str,
    started_at_ns: int,
    enqueued_at_ns: int | None = None,
    attempt: int = 1,
    output: str | None = None,
    error: str | None = None,
) -> JobRecord:
    """The record of a job that just finished, in this process and thread (finished = now)."""
    return JobRecord(
        *record_fields(
            job_id, workload, model=model, pool=pool, started_at_ns=started_at_ns,
            enqueued_at_ns=enqueued_at_ns, attempt=attempt, output=output, error=error,
        )
    )  # fmt: skip


def record_fields(
    job_id: int,
    workload: str,
    *,
    model: str,
    pool: str,
    started_at_ns: int,
    enqueued_at_ns: int | None = None,
    attempt: int = 1,
    output: str | None = None,
    error: str | None = None,
) -> RecordFields:
    """``job_record``'s field values in wire order (``RECORD_FIELDS``), without the record."""
    return (
        job_id, workload, model, pool,
        started_at_ns if enqueued_at_ns is None else enqueued_at_ns,
        started_at_ns, time.time_ns(), HOSTNAME, os.getpid(),
        multiprocessing.current_process().name, threading.current_thread().name,
        attempt, "ok" if error is None else "error", error, output,
    )  # fmt: skip


class LazyRecords(Sequence[JobRecord], Generic[T]):
    """A repeat's records, each built from what its job handed back (``build``) on first use:
    after the timed window, not inside it. The window keeps what a user's code also pays (the
    results crossing to the caller); building the harness's own records is left out of it."""

    def __init__(self, items: Iterable[T], build: Callable[[T], JobRecord]) -> None:
        self._items: list[T] | None = list(items)
        self._build = build
        self._records: list[JobRecord] = []

    def _built(self) -> list[JobRecord]:
        if self._items is not None:
            self._records = [self._build(item) for item in self._items]
            self._items = None
        return self._records

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else len(self._records)

    @overload
    def __getitem__(self, index: int) -> JobRecord: ...
    @overload
    def __getitem__(self, index: slice) -> list[JobRecord]: ...
    def __getitem__(self, index: int | slice) -> JobRecord | list[JobRecord]:
        return self._built()[index]

    def __iter__(self) -> Iterator[JobRecord]:
        return iter(self._built())


def _from_fields(values: RecordFields) -> JobRecord:
    return JobRecord(*values)


class ShippedRecords(LazyRecords[RecordFields]):
    """The records of an in-process repeat, from the field values its jobs handed back
    (``timed_job_fields``).

    Measured here: a ``JobRecord`` costs ~30 µs to pickle and unpickle and ~5 µs to build,
    its field tuple ~3 µs to pickle and unpickle. On the seed's sub-millisecond CPU jobs a
    process pool paid ~8 % of its wall time shipping records (``jobbench calibrate``); the
    bare code a user writes ships a short string per job, and so, now, does the harness.
    """

    def __init__(self, shipped: Iterable[RecordFields]) -> None:
        super().__init__(shipped, _from_fields)


def stored_records(raw: Iterable[str | bytes]) -> LazyRecords[str | bytes]:
    """The records of a Celery repeat from their stored JSON, parsed on first use (after the
    window: the producer fetches the bytes while the workers run, as ``Pool.map`` receives
    results, and parsing them is the harness's bookkeeping)."""
    return LazyRecords(raw, JobRecord.from_json)


class TimingStore:
    """Job records in Redis. Writes are pipelined and idempotent (one hash field per job)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._start_attempts = client.register_script(_START_ATTEMPTS_LUA)

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

    def mark_enqueued_ranges(
        self, scope_key: str, stamped: Iterable[tuple[range, int]], chunk: int = 10_000
    ) -> None:
        """``mark_enqueued`` for (job ids, enqueue time) pairs, streamed: at most ``chunk`` fields
        are held and sent at a time, so a million jobs never build a million-entry dict."""
        key = keys.enqueued(scope_key)
        mapping: dict[FieldT, EncodableT] = {}
        for ids, at_ns in stamped:
            for job_id in ids:
                mapping[str(job_id)] = at_ns
                if len(mapping) >= chunk:
                    self.client.hset(key, mapping=mapping)
                    mapping = {}
        if mapping:
            self.client.hset(key, mapping=mapping)

    def start_attempts(self, scope_key: str, job_ids: Sequence[int]) -> list[int]:
        """Count one more delivery of each job; returns each job's attempt number (1 = first)."""
        n = len(job_ids)
        if not n:
            return []
        first = int(job_ids[0])
        contiguous = int(job_ids[-1]) == first + n - 1 and (
            isinstance(job_ids, range) or list(job_ids) == list(range(first, first + n))
        )
        args: list[str | int] = ["r", first, first + n] if contiguous else [*map(int, job_ids)]
        counts = self._start_attempts(keys=[keys.attempts(scope_key)], args=args)
        if len(counts) == 1:
            return [int(counts[0])] * n
        return [int(c) for c in counts]

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
