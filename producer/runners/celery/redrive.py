"""Redrive: publish again the messages kombu's Redis transport lost between its pop and its
bookkeeping.

kombu's Redis transport takes a message off the queue with ``BRPOP`` and records it as
unacknowledged (``ZADD unacked_index`` + ``HSET unacked``) in a second round trip, once the
worker has read the reply. Redis removes the message when it serves the ``BRPOP`` (the
append-only file has the ``RPOP`` before the worker has the reply), and the reply can wait in the
worker's socket (kombu reads it at its next event-loop turn, later still while it has no
prefetch credit). A message popped whose worker is killed, or whose Redis is killed, before the
second step exists nowhere: not in the queue, not in ``unacked``, and no visibility timeout brings
it back (celery/kombu#305, celery/celery#4354; docs/faults.md "The chaos soak" shows it in the
append-only file). kombu has no option closing the window (no ``BLMOVE`` to a processing list).

The producer knows every message it published, so it can see one vanish and publish it again:
an at-least-once redrive. A job is redriven when, for ``REDRIVE_QUIET_S`` on end, at every check:

- it has no record and its body never started (no ``attempts`` entry): a started job is never
  published again (a job lost mid-run is reported, as the early-ack negative control needs);
- its queue is empty (every priority sub-list) and no message of that queue is held
  unacknowledged: no worker has it queued, prefetched, or waiting behind full prefetch credit;
- the scope's records and starts did not move.

Its message (the same job ids, arguments and enqueue times) is then published again, and each
republished job is counted in the scope's meta (``republished``: job id -> times), which
``jobbench verify``, the report and the chaos soak show. Nothing runs twice silently: if a
message thought lost were only slow, its jobs would start twice and count as redelivered
(``attempts`` 2), and each still has exactly one record (one hash field per job).

Only for a Redis broker: RabbitMQ keeps an unacknowledged message on the broker until its channel
closes, so there is no such window (and no ``unacked`` hash to read).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery

from producer.runners.celery.publish import Enqueued, send_jobs
from producer.runners.celery.workers import KOMBU_UNACKED
from shared import keys
from shared.settings import REDIS_SCHEMES
from shared.timings import TimingStore

#: Seconds a never-started job must stay unaccounted for (and its queue empty, nothing of it held
#: unacknowledged, the scope still) before its message is declared lost and published again.
#: Longer than a message legitimately spends between its pop and its ``unacked`` entry: a worker
#: reading its reply across a Redis restart retries that write for a few seconds (redis-py's
#: retries, Celery's reconnect every 2 s). A redrive costs the run this long once, at its end.
REDRIVE_QUIET_S = 10.0
#: Seconds between two checks (one ``LLEN`` per priority sub-list and one ``HSCAN`` of the
#: ``unacked`` hash, plus two ``HLEN``; the per-job reads only once the queue is idle).
CHECK_INTERVAL_S = 1.0
#: kombu's Redis transport keeps a queue's priorities in sub-lists named queue + SEP + priority
#: (``PRIORITY_STEPS``; priority 0 is the queue's own key): a message can wait in any of them.
KOMBU_PRIORITY_SEP = "\x06\x16"
KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)
#: Seconds one broker command of a check may take (a check must not hang a wait).
BROKER_TIMEOUT_S = 5.0


def priority_lists(queue: str) -> list[str]:
    """Every Redis list a message of ``queue`` can wait in (kombu's ``_q_for_pri``)."""
    return [
        queue if pri == 0 else f"{queue}{KOMBU_PRIORITY_SEP}{pri}" for pri in KOMBU_PRIORITY_STEPS
    ]


class Redrive:
    """Watches one enqueued scope for messages lost between pop and bookkeeping; republishes them.

    ``check`` is cheap and safe to call on every poll (it acts at most every
    ``check_interval_s``); it raises ``redis.ConnectionError`` while Redis restarts, like any poll.
    """

    def __init__(
        self,
        app: Celery,
        store: TimingStore,
        enqueued: Enqueued,
        broker: redis.Redis,
        *,
        quiet_s: float = REDRIVE_QUIET_S,
        check_interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self.app = app
        self.store = store
        self.enqueued = enqueued
        self.broker = broker
        self.quiet_s = quiet_s
        self.check_interval_s = check_interval_s
        #: Job id -> times its message was published again.
        self.republished: dict[int, int] = {}
        self._quiet_since: float | None = None
        self._last_check = -float("inf")
        self._progress: tuple[int, int] | None = None

    @classmethod
    def for_broker(
        cls, app: Celery, store: TimingStore, enqueued: Enqueued, broker_url: str, **kw: Any
    ) -> Redrive | None:
        """A ``Redrive`` for a Redis broker at ``broker_url``; None for any other broker."""
        if urlsplit(broker_url).scheme not in REDIS_SCHEMES:
            return None
        broker = redis.Redis.from_url(
            broker_url, socket_timeout=BROKER_TIMEOUT_S, socket_connect_timeout=BROKER_TIMEOUT_S
        )
        return cls(app, store, enqueued, broker, **kw)

    def close(self) -> None:
        self.broker.close()

    # --- what the check reads ---

    def queue_idle(self) -> bool:
        """The queue is empty and no message of it is held unacknowledged, in one snapshot."""
        queue = self.enqueued.queue
        pipe = self.broker.pipeline(transaction=True)  # MULTI: lists and hash seen at one instant
        for name in priority_lists(queue):
            pipe.llen(name)
        pipe.hvals(KOMBU_UNACKED)
        *lengths, held = pipe.execute()
        if any(int(n) for n in lengths):
            return False
        for raw in held:
            try:
                _, exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue  # not kombu's
            if queue in (exchange, routing_key):
                return False
        return True

    def progress(self) -> tuple[int, int]:
        """(records, started jobs) of the scope."""
        pipe = self.store.client.pipeline(transaction=False)
        pipe.hlen(keys.records(self.enqueued.scope_key))
        pipe.hlen(keys.attempts(self.enqueued.scope_key))
        n_records, n_started = pipe.execute()
        return int(n_records), int(n_started)

    def unstarted_missing(self) -> list[int]:
        """Jobs with no record whose body never started."""
        client = self.store.client
        scope = self.enqueued.scope_key
        pipe = client.pipeline(transaction=False)
        pipe.hkeys(keys.records(scope))
        pipe.hkeys(keys.attempts(scope))
        recorded, started = pipe.execute()
        seen = {int(k) for k in recorded} | {int(k) for k in started}
        return [i for i in range(self.enqueued.n_jobs) if i not in seen]

    # --- the check ---

    def check(self) -> int:
        """Republish the messages lost for ``quiet_s``; returns how many jobs it republished."""
        now = time.monotonic()
        if now - self._last_check < self.check_interval_s:
            return 0
        self._last_check = now
        progress = self.progress()
        if progress[0] >= self.enqueued.n_jobs:
            return 0
        if progress != self._progress or not self.queue_idle():
            self._progress, self._quiet_since = progress, now
            return 0
        if self._quiet_since is None or now - self._quiet_since < self.quiet_s:
            return 0
        lost = self.unstarted_missing()
        self._quiet_since = now  # a second redrive of the same job needs another quiet period
        if not lost:
            return 0
        return self.republish(lost)

    def republish(self, job_ids: Sequence[int]) -> int:
        """Publish the messages of ``job_ids`` again (each message with only its lost jobs, at
        their first enqueue times) and count them in the scope's meta; returns how many jobs."""
        enq = self.enqueued
        lost = set(job_ids)
        messages = [[i for i in ids if i in lost] for ids in enq.ranges]
        messages = [m for m in messages if m]
        stamps_raw: list[bytes | None] = self.store.client.hmget(  # type: ignore[assignment]
            keys.enqueued(enq.scope_key), [str(i) for i in sorted(lost)]
        )
        now_ns = time.time_ns()
        stamps = {
            i: int(raw) if raw else now_ns for i, raw in zip(sorted(lost), stamps_raw, strict=True)
        }
        with self.app.producer_or_acquire() as producer:
            for ids in messages:
                send_jobs(
                    self.app, producer, [[i, enq.args[i], stamps[i]] for i in ids],
                    task=enq.task, queue=enq.queue, scope_key=enq.scope_key,
                    workload=enq.workload, model=enq.model, mode=enq.mode,
                    label=f"{ids[0]}..{ids[-1]} republished",
                )  # fmt: skip
        for i in lost:
            self.republished[i] = self.republished.get(i, 0) + 1
        self.store.client.hset(
            keys.meta(enq.scope_key),
            "republished",
            json.dumps({str(i): n for i, n in sorted(self.republished.items())}),
        )
        return len(lost)
