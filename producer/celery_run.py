"""The producer side of a Celery run: split a ``JobBatch`` into messages, publish them over one
connection, then wait until every job has a timing record in Redis.

Completion is read from the timing store (``HLEN`` of the scope's records), not from Celery
results: there is no result backend, and a record per job is what the report needs anyway.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery

from producer.runners.base import JobBatch, RunIncomplete
from shared import keys
from shared.timings import JobRecord, TimingStore
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
#: How often (every N polls) ``wait_complete`` asks whether the worker is still alive.
ALIVE_CHECK_EVERY = 10


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


def message_ranges(n_jobs: int, batch_size: int) -> list[range]:
    """The job ids of each message: consecutive slices of ``batch_size`` (the last may be short)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1: got {batch_size}")
    return [range(lo, min(lo + batch_size, n_jobs)) for lo in range(0, n_jobs, batch_size)]


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` published, and how long publishing took."""

    scope_key: str
    queue: str
    #: The job ids of each message, in publishing order.
    ranges: list[range]
    n_jobs: int
    batch_size: int
    n_messages: int
    #: perf_counter seconds spent publishing (message building included, registration excluded).
    enqueue_s: float
    first_enqueued_at_ns: int
    last_enqueued_at_ns: int

    @property
    def jobs_per_s(self) -> float:
        return self.n_jobs / self.enqueue_s if self.enqueue_s > 0 else 0.0  # JSON has no inf


def scope_key_for(batch: JobBatch, model: str) -> str:
    return keys.scope(batch.run_id, model, batch.workload, batch.repeat)


def enqueue(
    batch: JobBatch,
    *,
    app: Celery,
    store: TimingStore,
    queue: str,
    model: str,
    batch_size: int,
    meta: Mapping[str, Any] | None = None,
) -> Enqueued:
    """Publish ``batch`` as messages of ``batch_size`` jobs to ``queue``.

    Before publishing, the scope's old records are dropped (so completion counts only this
    enqueue) and the scope is registered; after publishing, the enqueue timestamps are written.
    Both extra round trips stay outside ``enqueue_s``.
    """
    scope_key = scope_key_for(batch, model)
    ranges = message_ranges(batch.n_jobs, batch_size)
    store.client.delete(keys.records(scope_key), keys.attempts(scope_key), keys.enqueued(scope_key))
    scope_meta: dict[str, Any] = {
        "model": model,
        "workload": batch.workload,
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
    enqueued_at: dict[int, int] = {}
    first_ns = last_ns = time.time_ns()
    started = time.perf_counter()
    # One producer (one connection, one channel) for every message: acquiring a connection per
    # apply_async is most of its ~1 ms cost.
    with app.producer_or_acquire() as producer:
        for i, ids in enumerate(ranges):
            now_ns = time.time_ns()
            if i == 0:
                first_ns = now_ns
            last_ns = now_ns
            jobs = [[job_id, args[job_id], now_ns] for job_id in ids]
            app.send_task(
                RUN_JOBS_TASK,
                args=(scope_key, batch.workload, model, batch.mode, jobs),
                queue=queue,
                producer=producer,
                ignore_result=True,
                # Celery would otherwise build a repr of the whole job list for every message.
                argsrepr=f"<{len(jobs)} {batch.workload} jobs {ids.start}..{ids.stop - 1}>",
            )
            enqueued_at.update(dict.fromkeys(ids, now_ns))
    enqueue_s = time.perf_counter() - started

    # Written while the workers are already busy, so it costs the run ~nothing.
    store.mark_enqueued(scope_key, enqueued_at)
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
    )


class RecordCollector:
    """Fetches each message's records as soon as the message is done.

    ``multiprocessing.Pool.map`` receives finished chunks while later ones still run; this gives
    the Celery runners the same overlap, instead of parsing all 15,000 records (~0.2 s here)
    after the last job. A task saves its whole message in one ``HSET``, so the presence of a
    message's first job id means all of its records are there.
    """

    def __init__(self, store: TimingStore, scope_key: str, ranges: Sequence[range]) -> None:
        self.store = store
        self.key = keys.records(scope_key)
        self.pending: list[range] = [r for r in ranges if len(r)]
        self.records: dict[int, JobRecord] = {}

    def collect(self) -> int:
        """Fetch the records of every message finished since the last call; returns how many."""
        if not self.pending:
            return 0
        client = self.store.client
        pipe = client.pipeline(transaction=False)
        for ids in self.pending:
            pipe.hexists(self.key, str(ids.start))
        finished = [ids for ids, done in zip(self.pending, pipe.execute(), strict=True) if done]
        if not finished:
            return 0
        pipe = client.pipeline(transaction=False)
        for ids in finished:
            pipe.hmget(self.key, [str(i) for i in ids])
        before = len(self.records)
        still_pending: list[range] = []
        for ids, values in zip(finished, pipe.execute(), strict=True):
            missing = [i for i, raw in zip(ids, values, strict=True) if raw is None]
            for raw in values:
                if raw is not None:
                    record = JobRecord.from_json(raw)
                    self.records[record.job_id] = record
            # Not expected (one HSET per message), but never lose a job: look again later.
            still_pending.extend(range(i, i + 1) for i in missing)
        finished_starts = {ids.start for ids in finished}
        self.pending = [ids for ids in self.pending if ids.start not in finished_starts]
        self.pending.extend(still_pending)
        return len(self.records) - before

    def result(self) -> list[JobRecord]:
        """Every record collected, fetching what is left; ordered by job id."""
        self.collect()
        return [self.records[i] for i in sorted(self.records)]


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
) -> float:
    """Poll until every job of the scope has a record; return the seconds waited.

    Past ``timeout_s``, or as soon as ``alive()`` says no worker is left to finish the jobs,
    raise ``RunIncomplete`` naming exactly the jobs without a record. Never hangs. With a
    ``collector``, finished messages' records are fetched whenever the count moved.
    """
    started = time.perf_counter()
    deadline = started + timeout_s
    polls = 0
    last_count = 0
    while True:
        count = store.count(scope_key)
        if count >= n_jobs:
            return time.perf_counter() - started
        if collector is not None and count > last_count:
            collector.collect()
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
