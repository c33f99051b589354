"""The producer side of a Celery run: split a ``JobBatch`` into messages, publish them over one
connection, then wait until every job has a timing record in Redis.

Completion is read from the timing store (``HLEN`` of the scope's records), not from Celery
results: there is no result backend, and a record per job is what the report needs anyway.

Publishing is streamed: messages are built one at a time from the job arguments (any
``Sequence``, a ``range`` included) and pipelined to the broker in groups of
``PUBLISH_PIPELINE_SIZE`` (kombu's ``Producer.batch``, where the transport supports it), so a
million jobs never become a million-entry list in the producer.
"""

from __future__ import annotations

import contextlib
import math
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import redis
from celery import Celery

from producer.runners.base import JobBatch, RunIncomplete
from shared import keys
from shared.timings import JobRecord, TaskWorkload, TimingStore, stored_records
from shared.workloads import Workload
from worker.app import RUN_JOBS_TASK

#: Messages per worker slot when the batch size is automatic: multiprocessing.Pool.map's own
#: chunksize rule (about 4 chunks per worker), so the Celery pools are compared with the same
#: amortisation of per-message cost and the same tail imbalance as Pool.map.
MESSAGES_PER_SLOT = 4
#: Most jobs one automatic message carries. A CPU job is ~30 bytes of JSON (an IO job with its
#: URL ~60), so a message stays under ~120 KB, and a redelivery repeats at most this much work.
MAX_AUTO_BATCH_SIZE = 2000
#: Seconds between two completion polls (one ``HLEN`` each): 10 ms adds at most that much to a
#: measured run while costing Redis ~100 trivial commands a second.
POLL_INTERVAL_S = 0.01
#: Seconds between two polls while Redis is unreachable (restarting); a poll's own connect
#: attempt fails at once, so a short pause keeps it from spinning.
REDIS_RETRY_INTERVAL_S = 0.2
#: How often (every N polls) ``wait_complete`` asks whether the worker is still alive.
ALIVE_CHECK_EVERY = 10
#: Messages per broker round trip when publishing (kombu ``Producer.batch``: one Redis pipeline
#: of LPUSHes): 100 one-job messages (the IO seed) go out in one round trip...
PUBLISH_PIPELINE_SIZE = 100
#: ...but a pipeline buffers whole message bodies, so it holds at most this many jobs (~60 bytes
#: each in JSON: ~0.6 MB), and big CPU messages go out a few per round trip.
PUBLISH_PIPELINE_MAX_JOBS = 10_000


def auto_batch_size(n_jobs: int, concurrency: int, *, workload: Workload, pool: str) -> int:
    """Jobs per message when the user did not choose: Pool.map's chunksize heuristic, capped.

    IO on the threads pool gets one job per message, so every request gets a thread of its own
    instead of waiting behind the other requests of its message.
    """
    if n_jobs <= 0:
        return 1
    if workload == "io" and pool == "threads":
        return 1
    size = math.ceil(n_jobs / (max(concurrency, 1) * MESSAGES_PER_SLOT))
    return max(1, min(size, MAX_AUTO_BATCH_SIZE))


class MessageRanges(Sequence[range]):
    """The job ids of each message, computed on demand: consecutive slices of ``batch_size``
    (the last may be short). Constant memory, whatever the number of messages."""

    def __init__(self, n_jobs: int, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1: got {batch_size}")
        self.n_jobs = max(n_jobs, 0)
        self.batch_size = batch_size
        self._starts = range(0, self.n_jobs, batch_size)

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> range: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[range]: ...
    def __getitem__(self, index: int | slice) -> range | Sequence[range]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        lo = self._starts[index]
        return range(lo, min(lo + self.batch_size, self.n_jobs))

    def __iter__(self) -> Iterator[range]:
        for lo in self._starts:
            yield range(lo, min(lo + self.batch_size, self.n_jobs))


def message_ranges(n_jobs: int, batch_size: int) -> list[range]:
    """The job ids of each message, as a list (``MessageRanges`` is the lazy form)."""
    return list(MessageRanges(n_jobs, batch_size))


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` published, and how long publishing took."""

    scope_key: str
    queue: str
    #: The job ids of each message, in publishing order.
    ranges: Sequence[range]
    n_jobs: int
    batch_size: int
    n_messages: int
    #: perf_counter seconds spent publishing (message building included, registration excluded).
    enqueue_s: float
    first_enqueued_at_ns: int
    last_enqueued_at_ns: int
    #: What the messages carry, so that a lost one can be published again (``redrive``).
    task: str
    workload: TaskWorkload
    model: str
    mode: str
    args: Sequence[int | str]

    @property
    def jobs_per_s(self) -> float:
        return self.n_jobs / self.enqueue_s if self.enqueue_s > 0 else 0.0  # JSON has no inf


def scope_key_for(batch: JobBatch, model: str, workload: TaskWorkload | None = None) -> str:
    return keys.scope(batch.run_id, model, workload or batch.workload, batch.repeat)


def enqueue(
    batch: JobBatch,
    *,
    app: Celery,
    store: TimingStore,
    queue: str,
    model: str,
    batch_size: int,
    meta: Mapping[str, Any] | None = None,
    workload: TaskWorkload | None = None,
    pipeline_size: int = PUBLISH_PIPELINE_SIZE,
    ranges: Sequence[range] | None = None,
    task: str = RUN_JOBS_TASK,
) -> Enqueued:
    """Publish ``batch`` as messages of ``batch_size`` jobs to ``queue`` (or, given ``ranges``,
    one message per range of job ids: a schedule's chunks, ``batch_size`` then their largest).

    ``workload`` overrides what the tasks run (``noop`` for the overhead benchmark).
    ``pipeline_size`` messages share one broker round trip (1: one round trip per message, the
    naive way, kept for the overhead benchmark's before/after).

    Before publishing, the scope's old records are dropped (so completion counts only this
    enqueue) and the scope is registered; after publishing, the enqueue timestamps are written.
    Both extra round trips stay outside ``enqueue_s``.
    """
    task_workload: TaskWorkload = workload or batch.workload
    scope_key = scope_key_for(batch, model, task_workload)
    if ranges is None:
        ranges = MessageRanges(batch.n_jobs, batch_size)
    store.client.delete(
        keys.records(scope_key),
        keys.attempts(scope_key),
        keys.enqueued(scope_key),
        keys.fetch_path(scope_key),
    )
    scope_meta: dict[str, Any] = {
        "model": model,
        "workload": task_workload,
        "mode": batch.mode,
        "repeat": batch.repeat,
        "n_jobs": batch.n_jobs,
        "batch_size": batch_size,
        "n_messages": len(ranges),
        "queue": queue,
        **(meta or {}),
    }
    store.register_scope(batch.run_id, scope_key, scope_meta)

    args: Sequence[int | str] = batch.args
    # One enqueue time per message (8 bytes each), not a dict entry per job.
    stamps = array("q")
    first_ns = last_ns = time.time_ns()
    started = time.perf_counter()
    # One producer (one connection, one channel) for every message: acquiring a connection per
    # apply_async is most of its ~1 ms cost.
    per_trip = max(1, min(pipeline_size, PUBLISH_PIPELINE_MAX_JOBS // batch_size))
    with app.producer_or_acquire() as producer, _publish_batch(producer, per_trip):
        for i, ids in enumerate(ranges):
            now_ns = time.time_ns()
            if i == 0:
                first_ns = now_ns
            last_ns = now_ns
            jobs = [[job_id, args[job_id], now_ns] for job_id in ids]
            send_jobs(
                app, producer, jobs, task=task, queue=queue, scope_key=scope_key,
                workload=task_workload, model=model, mode=batch.mode,
                label=f"{ids.start}..{ids.stop - 1}",
            )  # fmt: skip
            stamps.append(now_ns)
    enqueue_s = time.perf_counter() - started

    # Written while the workers are already busy, so it costs the run ~nothing.
    store.mark_enqueued_ranges(scope_key, zip(ranges, stamps, strict=True))
    store.register_scope(
        batch.run_id,
        scope_key,
        {"enqueue_s": enqueue_s, "first_enqueued_at_ns": first_ns, "last_enqueued_at_ns": last_ns},
    )
    return Enqueued(
        scope_key=scope_key,
        queue=queue,
        ranges=ranges,
        n_jobs=batch.n_jobs,
        batch_size=batch_size,
        n_messages=len(ranges),
        enqueue_s=enqueue_s,
        first_enqueued_at_ns=first_ns,
        last_enqueued_at_ns=last_ns,
        task=task,
        workload=task_workload,
        model=model,
        mode=batch.mode,
        args=args,
    )


def send_jobs(
    app: Celery,
    producer: Any,
    jobs: list[list[int | str]],
    *,
    task: str,
    queue: str,
    scope_key: str,
    workload: TaskWorkload,
    model: str,
    mode: str,
    label: str,
) -> None:
    """Publish one message of ``jobs`` (``[job_id, arg, enqueued_at_ns]`` each) for the task."""
    app.send_task(
        task,
        args=(scope_key, workload, model, mode, jobs),
        queue=queue,
        producer=producer,
        ignore_result=True,
        # A lost connection surfaces as an error (the run is then incomplete, and says so)
        # instead of kombu's silent reconnect-and-retry wrapper around every publish.
        retry=False,
        # Celery would otherwise build a repr of the whole job list for every message.
        argsrepr=f"<{len(jobs)} {workload} jobs {label}>",
    )


def _publish_batch(producer: Any, size: int) -> Any:
    """kombu's pipelined publishing (``Producer.batch``, kombu >= 5.7) for ``size`` > 1, else a
    no-op context: older kombu and transports without it publish one message per round trip."""
    batch = getattr(producer, "batch", None)
    if size <= 1 or batch is None:
        return contextlib.nullcontext()
    return batch(max_size=size)


class RecordCollector:
    """Fetches each message's records as soon as the message is done.

    ``multiprocessing.Pool.map`` receives finished chunks while later ones still run; this gives
    the Celery runners the same overlap, instead of fetching all 15,000 records after the last
    job. It keeps their stored bytes: parsing them (~0.2 s of CPU for 15,000 here, on the cores
    the workers use) is the harness's bookkeeping, done after the timed window
    (``stored_records``), as the in-process models build their records after theirs. A task
    saves its whole message in one ``HSET``, so the presence of a message's first job id means
    all of its records are there.
    """

    def __init__(self, store: TimingStore, scope_key: str, ranges: Sequence[range]) -> None:
        self.store = store
        self.key = keys.records(scope_key)
        self.pending: list[range] = [r for r in ranges if len(r)]
        #: Each finished job's stored record (JSON bytes), parsed only after the window.
        self.raw: dict[int, bytes] = {}

    def collect(self) -> int:
        """Fetch the records of every message finished since the last call; returns how many."""
        if not self.pending:
            return 0
        client = self.store.client
        # One HMGET of every pending message's first job id (not one HEXISTS per message).
        firsts: list[bytes | None] = client.hmget(  # type: ignore[assignment]
            self.key, [str(ids.start) for ids in self.pending]
        )
        finished = [ids for ids, raw in zip(self.pending, firsts, strict=True) if raw is not None]
        if not finished:
            return 0
        pipe = client.pipeline(transaction=False)
        for ids in finished:
            pipe.hmget(self.key, [str(i) for i in ids])
        before = len(self.raw)
        still_pending: list[range] = []
        for ids, values in zip(finished, pipe.execute(), strict=True):
            missing = []
            for job_id, raw in zip(ids, values, strict=True):
                if raw is None:
                    missing.append(job_id)
                else:
                    self.raw[job_id] = raw
            # Not expected (one HSET per message), but never lose a job: look again later.
            still_pending.extend(range(i, i + 1) for i in missing)
        finished_starts = {ids.start for ids in finished}
        self.pending = [ids for ids in self.pending if ids.start not in finished_starts]
        self.pending.extend(still_pending)
        return len(self.raw) - before

    def result(self) -> Sequence[JobRecord]:
        """Every record collected, fetching what is left; ordered by job id, parsed on first
        use (after the timed window)."""
        self.collect()
        return stored_records([self.raw[i] for i in sorted(self.raw)])


def wait_complete(
    store: TimingStore,
    scope_key: str,
    n_jobs: int,
    *,
    model: str,
    timeout_s: float,
    poll_interval_s: float = POLL_INTERVAL_S,
    alive: Callable[[], bool] | None = None,
    collector: RecordCollector | None = None,
    redrive: Callable[[], int] | None = None,
) -> float:
    """Poll until every job of the scope has a record; return the seconds waited.

    Past ``timeout_s``, or as soon as ``alive()`` says no worker is left to finish the jobs,
    raise ``RunIncomplete`` naming exactly the jobs without a record. Never hangs. With a
    ``collector``, finished messages' records are fetched whenever the count moved. With a
    ``redrive`` (``Redrive.check``), each poll also lets it republish the messages the broker
    lost between a worker's pop and its bookkeeping (``producer.runners.celery.redrive``).
    """
    started = time.perf_counter()
    deadline = started + timeout_s
    polls = 0
    last_count = 0
    while True:
        try:
            count = store.count(scope_key)
            if count >= n_jobs:
                return time.perf_counter() - started
            if collector is not None and count > last_count:
                collector.collect()
            if redrive is not None:
                redrive()
        except (redis.ConnectionError, redis.TimeoutError):
            # Redis restarting (docker compose restart redis): it comes back with its data (the
            # append-only file) and the workers reconnect, so poll on until the deadline.
            if time.perf_counter() >= deadline:
                raise
            time.sleep(REDIS_RETRY_INTERVAL_S)
            continue
        last_count = count
        polls += 1
        worker_gone = alive is not None and polls % ALIVE_CHECK_EVERY == 0 and not alive()
        if worker_gone or time.perf_counter() >= deadline:
            missing = store.missing(scope_key, n_jobs)
            if not missing:  # finished between the last poll and now
                return time.perf_counter() - started
            why = "the worker exited" if worker_gone else f"timeout {timeout_s:g} s"
            raise RunIncomplete(f"{model} ({why})", missing, n_jobs)
        time.sleep(poll_interval_s)
