"""The fetch path of a Celery message, measured per message (issue 18): when it was published,
when the worker's consumer received it (Celery's ``task_received`` signal), when the pool picked
it up (``task_prerun``), and when each of its jobs started (``started_at_ns`` of the records).

Opt-in: workers record it only when ``JOBBENCH_FETCH_TRACE`` is on (``jobbench bench
--fetch-trace`` sets it for the workers it starts). Off, no signal handler is connected and no
key is written, so the trace costs nothing; on, it costs the consumer thread two clock reads per
message and the task one more field in the pipeline that saves its records.

Beside the stages, the consumer thread's CPU clock (``time.thread_time_ns``, read in the
consumer when a message arrives) gives the consumer loop's CPU time per message and its share
of the wall time between the first and the last message: the part of the GIL the fetch path
holds while request threads want it.
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any

import orjson
from redis.typing import EncodableT, FieldT

from shared import keys
from shared.timings import JobRecord, TimingStore

#: Environment variable (on/off): record the fetch path of every message. Read by workers.
FETCH_TRACE_ENV = "JOBBENCH_FETCH_TRACE"

#: The stages of the breakdown, in path order, as named in a result row's ``stages_s``.
PUBLISH_TO_RECEIVED = "publish_to_received"
RECEIVED_TO_PRERUN = "received_to_prerun"
PRERUN_TO_JOB_START = "prerun_to_job_start"
JOB_RUN = "job_run"
STAGES = (PUBLISH_TO_RECEIVED, RECEIVED_TO_PRERUN, PRERUN_TO_JOB_START, JOB_RUN)


@dataclass(frozen=True, slots=True)
class MessageTrace:
    """One message's way from the producer to its pool. Travels as a JSON array in field order
    (add fields at the end)."""

    #: The message's first job id (its field in ``keys.fetch_path``) and its job count.
    first_job_id: int
    n_jobs: int
    #: When the producer published it (the jobs' ``enqueued_at_ns``), wall-clock ns.
    published_at_ns: int
    #: When the worker's consumer had decoded it (``task_received``), wall-clock ns.
    received_at_ns: int
    #: When the pool started the task (``task_prerun``), wall-clock ns.
    prerun_at_ns: int
    #: CPU time the consumer thread had used when the message arrived (``thread_time_ns``).
    consumer_cpu_ns: int
    #: The process whose consumer received it (the worker's main process, also under prefork).
    consumer_pid: int
    host: str

    def to_json(self) -> str:
        return orjson.dumps(astuple(self)).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> MessageTrace:
        return cls(*orjson.loads(raw))


def save(
    store: TimingStore, scope_key: str, records: Sequence[JobRecord], trace: MessageTrace
) -> None:
    """Save a message's records and its trace in one round trip. The trace goes first: a
    connection's commands run in order, so whoever sees the records also finds the trace."""
    mapping: dict[FieldT, EncodableT] = {str(r.job_id): r.to_json() for r in records}
    pipe = store.client.pipeline(transaction=False)
    pipe.hset(keys.fetch_path(scope_key), str(trace.first_job_id), trace.to_json())
    if mapping:
        pipe.hset(keys.records(scope_key), mapping=mapping)
    pipe.execute()


def load(store: TimingStore, scope_key: str) -> list[MessageTrace]:
    """Every message trace of a scope, by first job id (none when the trace was off)."""
    raw: dict[bytes, bytes] = store.client.hgetall(keys.fetch_path(scope_key))  # type: ignore[assignment]
    return sorted((MessageTrace.from_json(v) for v in raw.values()), key=lambda t: t.first_job_id)


def _s(ns: int) -> float:
    return ns / 1e9


def breakdown(
    traces: Iterable[MessageTrace], records: Sequence[JobRecord]
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per-stage durations in seconds (messages for the first two stages, jobs for the last
    two) and the consumer's CPU figures, from one repeat's traces and records.

    ``prerun_to_job_start`` is per job: in a message of several jobs run one after the other it
    includes the jobs before it. Consumer CPU is taken per consumer process (several nodes each
    have their own) and summed: ``consumer_cpu_per_message_us`` is the consumer thread's CPU
    between two messages, ``consumer_cpu_share`` its CPU over the wall time from the first
    message received to the last (both left out when no consumer received two messages).
    """
    by_first = {t.first_job_id: t for t in traces}
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    for t in by_first.values():
        stages[PUBLISH_TO_RECEIVED].append(_s(t.received_at_ns - t.published_at_ns))
        stages[RECEIVED_TO_PRERUN].append(_s(t.prerun_at_ns - t.received_at_ns))
    starts = sorted(by_first)
    for r in records:
        stages[JOB_RUN].append(r.run_s)
        trace = _message_of(r.job_id, starts, by_first)
        if trace is not None:
            stages[PRERUN_TO_JOB_START].append(_s(r.started_at_ns - trace.prerun_at_ns))
    return stages, consumer_cpu(by_first.values())


def _message_of(
    job_id: int, starts: Sequence[int], by_first: Mapping[int, MessageTrace]
) -> MessageTrace | None:
    """The trace of the message holding ``job_id`` (messages are consecutive id ranges)."""
    i = bisect.bisect_right(starts, job_id) - 1
    if i < 0:
        return None
    trace = by_first[starts[i]]
    return trace if job_id < trace.first_job_id + trace.n_jobs else None


def consumer_cpu(traces: Iterable[MessageTrace]) -> dict[str, float]:
    """The consumer threads' CPU per message and share of the wall time (see ``breakdown``)."""
    per_consumer: dict[tuple[str, int], list[MessageTrace]] = collections.defaultdict(list)
    for t in traces:
        per_consumer[(t.host, t.consumer_pid)].append(t)
    cpu_ns = wall_ns = gaps = 0
    for group in per_consumer.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda t: t.received_at_ns)
        cpu_ns += group[-1].consumer_cpu_ns - group[0].consumer_cpu_ns
        wall_ns += group[-1].received_at_ns - group[0].received_at_ns
        gaps += len(group) - 1
    if not gaps or wall_ns <= 0:
        return {}
    return {
        "consumer_cpu_per_message_us": cpu_ns / gaps / 1e3,
        "consumer_cpu_share": cpu_ns / wall_ns,
        "consumer_nodes": float(len(per_consumer)),
    }


def summary_note(stages_s: Mapping[str, Mapping[str, Any]]) -> str | None:
    """``fetch p50 12/3/0.1 ms`` for the table: publish→received / received→prerun /
    prerun→job start medians, in ms; None without a breakdown."""
    parts: list[float] = []
    for stage in STAGES[:3]:
        p50 = stages_s.get(stage, {}).get("p50")
        if not isinstance(p50, int | float):
            return None
        parts.append(float(p50))
    return "fetch p50 " + "/".join(f"{p * 1e3:.3g}" for p in parts) + " ms"
