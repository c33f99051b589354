"""Celery workers fed through Redis: the prefork, threads and solo pools.

``start`` launches one worker subprocess on a queue of its own (untimed); ``run`` publishes the
jobs, waits for every job's record in Redis and loads them (timed by the harness, so broker and
record round trips are part of what Celery costs); ``stop`` shuts the worker down.

With ``external_workers`` the runner starts nothing: ``start`` waits for workers someone else
started (docker compose services, other machines) consuming ``<queue_prefix>.<pool>``, sums
their concurrency, and ``stop`` leaves them and their queue alone. The broker is an option too
(Redis or RabbitMQ); timings always go to the run's Redis.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from celery import Celery

from producer import celery_run, workers
from producer.runners.base import JobBatch, Runner, RunResult, register
from producer.services import ServiceError
from producer.workers import PoolName, WorkerProcess
from shared.settings import REDIS_SCHEMES, Settings, redact_url
from shared.timings import TimingStore
from shared.workloads import Workload
from worker.app import pool_name

#: Threads of the threads pool for IO: like ``threading`` in the seed, enough that the seed's
#: 100 requests all wait on the network at once.
IO_THREADS = 100
#: Seconds one ``inspect`` broadcast collects replies. An idle node answers within milliseconds
#: (a solo worker only between two tasks); the broadcast always waits this long for stragglers.
INSPECT_TIMEOUT_S = 1.0


#: Seconds the ping that wakes a stopping worker waits for its reply (it only has to arrive).
WAKE_PING_TIMEOUT_S = 0.05
#: Seconds a broker may take to accept the connection of ``check_broker``.
BROKER_CHECK_TIMEOUT_S = 5.0


def check_broker(url: str, timeout_s: float = BROKER_CHECK_TIMEOUT_S) -> None:
    """Connect once, before anything is measured: a broker that is down or refuses the login is a
    one-line ``ServiceError`` (password redacted), not a traceback from the first publish."""
    try:
        app = workers.producer_app(url)
        with app.connection_for_write(connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception as exc:  # kombu, amqp and socket errors alike
        password = urlsplit(url).password
        why = " ".join(str(exc).split()) or type(exc).__name__
        if password:
            why = why.replace(password, "***")
        raise ServiceError(f"cannot reach the broker {redact_url(url)}: {why}") from None


def _wake_for_shutdown(worker: WorkerProcess) -> None:
    """SIGTERM, then a control ping. On RabbitMQ an idle worker's event loop sleeps up to 10 s
    (kombu's longest poll when no timer is due) before it sees the signal; the ping's message
    wakes it, so its warm shutdown starts at once (measured: 10 s -> 0.2 s)."""
    with contextlib.suppress(Exception):
        worker.proc.send_signal(signal.SIGTERM)
        app = workers.producer_app(worker.broker_url)
        app.control.ping(destination=[worker.nodename], timeout=WAKE_PING_TIMEOUT_S)


@dataclass
class ExternalWorkers:
    """Workers this process did not start, consuming ``queue``: the facts ``run`` needs, under
    the same names as a ``WorkerProcess``."""

    queue: str
    pool: PoolName
    broker_url: str
    #: Node name -> its pool's ``max-concurrency`` (``inspect stats``).
    nodes: dict[str, int]
    prefetch_multiplier: int
    #: Seconds until a consuming node was found and sized.
    startup_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def concurrency(self) -> int:
        return sum(self.nodes.values())

    @property
    def nodename(self) -> str:
        return ",".join(sorted(self.nodes))

    def alive(self) -> bool:
        # Not ours to watch: a node that disappears shows up as jobs missing at the timeout.
        return True


def find_consumers(
    app: Celery,
    queue: str,
    pool: PoolName,
    *,
    broker_url: str,
    wait_s: float,
    inspect_timeout_s: float = INSPECT_TIMEOUT_S,
) -> ExternalWorkers:
    """Wait (at most ``wait_s``) until some node consumes ``queue``; size every such node.

    Raises ``ServiceError`` (one line) when none shows up in time, none answers ``stats``, or a
    node runs another pool than the queue's name promises (its records would be mislabelled).
    """
    started = time.perf_counter()
    deadline = time.monotonic() + wait_s
    consumers: list[str] = []
    while True:
        replies = app.control.inspect(timeout=inspect_timeout_s).active_queues() or {}
        found = sorted(
            node for node, queues in replies.items()
            if any(q.get("name") == queue for q in queues or [])
        )  # fmt: skip
        # Done when two broadcasts in a row agree: a node that has just started consumes before
        # it listens to broadcasts (~0.5 s later), so one round could miss it.
        stable = bool(found) and found == consumers
        consumers = found or consumers
        if stable or time.monotonic() >= deadline:
            break
    if not consumers:
        raise ServiceError(
            f"no Celery worker consumes queue {queue!r} on {redact_url(broker_url)} after "
            f"{wait_s:g} s (start one: celery -A worker.app worker --pool={pool} -Q {queue})"
        )
    stats = app.control.inspect(
        destination=consumers, timeout=inspect_timeout_s, limit=len(consumers)
    ).stats() or {}  # fmt: skip
    nodes: dict[str, int] = {}
    prefetch = 0
    for node in consumers:
        info = stats.get(node)
        if not info:
            continue  # went away between the two broadcasts
        running = pool_name(info["pool"]["implementation"])
        if running != pool:
            raise ServiceError(
                f"worker {node} consumes {queue!r} but runs the {running} pool, not {pool}"
            )
        nodes[node] = int(info["pool"]["max-concurrency"])
        prefetch += int(info.get("prefetch_count") or 0)
    if not nodes:
        raise ServiceError(f"no worker consuming {queue!r} answered inspect stats")
    total = sum(nodes.values())
    return ExternalWorkers(
        queue=queue,
        pool=pool,
        broker_url=broker_url,
        nodes=nodes,
        prefetch_multiplier=max(1, round(prefetch / total)) if prefetch else 1,
        startup_s=time.perf_counter() - started,
    )


class CeleryRunner(Runner):
    """One Celery pool; subclasses only name the pool and size it."""

    family = "celery"
    pool: ClassVar[PoolName]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._worker: WorkerProcess | ExternalWorkers | None = None
        self._workload: Workload | None = None
        self._store: TimingStore | None = None

    # --- sizing -----------------------------------------------------------------------------

    def worker_concurrency(self, workload: Workload) -> int:
        return self.options.cpu_count

    def prefetch_multiplier(self, workload: Workload) -> int:
        """Messages each slot may reserve ahead (Celery's ``--prefetch-multiplier``)."""
        return 1

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        if isinstance(self._worker, ExternalWorkers) and self._workload == workload:
            return self._worker.concurrency  # what the running nodes offer together
        return self.worker_concurrency(workload)

    def batch_size(self, workload: Workload, n_jobs: int) -> int:
        if self.options.batch_size is not None:
            return self.options.batch_size
        return celery_run.auto_batch_size(
            n_jobs, self.concurrency(workload, n_jobs), workload=workload, pool=self.pool
        )

    # --- connections --------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return self.options.redis_url or Settings.from_env().redis_url

    @property
    def broker_url(self) -> str:
        if self.options.broker_url:
            return self.options.broker_url
        settings = Settings.from_env()
        return settings.broker_url or self.redis_url

    @property
    def store(self) -> TimingStore:
        if self._store is None:
            self._store = TimingStore.from_url(self.redis_url)
        return self._store

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, workload: Workload) -> dict[str, Any]:
        if self.options.external_workers:
            return self._start_external(workload)
        worker = self._worker
        if worker is not None and worker.alive() and self._workload == workload:
            return {**self._facts(worker), "reused": True}
        self.stop()
        # A queue of its own per start: runs and tests sharing a Redis never consume each
        # other's messages, and a stopped worker's leftovers are dropped with its queue.
        run_id = str(self.options.extra.get("run_id") or uuid.uuid4().hex[:12])
        queue = workers.queue_name(f"{self.model}.{workload}", f"{run_id}.{uuid.uuid4().hex[:6]}")
        self._worker = workers.start_worker(
            pool=self.pool,
            concurrency=self.worker_concurrency(workload),
            queue=queue,
            broker_url=self.broker_url,
            redis_url=self.redis_url,
            prefetch_multiplier=self.prefetch_multiplier(workload),
            heartbeat=self.options.flower,
            # Task events only when Flower is up to show them (they cost ~20 % on small tasks).
            events=self.options.flower,
            name=self.name,
        )
        self._workload = workload
        # Open the producer's broker connection now so the first timed enqueue does not pay it.
        app = workers.producer_app(self.broker_url)
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=3)
        self.store.client.ping()
        return {**self._facts(self._worker), "reused": False}

    def _start_external(self, workload: Workload) -> dict[str, Any]:
        """Find the workers consuming ``<queue_prefix>.<pool>`` (bounded wait) and size them."""
        self.stop()
        app = workers.producer_app(self.broker_url)
        found = find_consumers(
            app,
            f"{self.options.queue_prefix}.{self.pool}",
            self.pool,
            broker_url=self.broker_url,
            wait_s=self.options.external_wait_s,
        )
        self._worker, self._workload = found, workload
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=3)
        self.store.client.ping()
        return {**self._facts(found), "reused": False, "external": True, "nodes": found.nodes}

    def _facts(self, worker: WorkerProcess | ExternalWorkers) -> dict[str, Any]:
        return {
            "startup_s": worker.startup_s,
            "concurrency": worker.concurrency,
            "prefetch_multiplier": worker.prefetch_multiplier,
            "pool": worker.pool,
            "queue": worker.queue,
            "node": worker.nodename,
            "broker": redact_url(worker.broker_url),
        }

    def stop(self) -> None:
        worker, self._worker, self._workload = self._worker, None, None
        if worker is None or isinstance(worker, ExternalWorkers):
            return  # external workers and their queue belong to whoever started them
        try:
            if urlsplit(worker.broker_url).scheme not in REDIS_SCHEMES:
                _wake_for_shutdown(worker)
            workers.stop_worker(worker)
        finally:
            # Drop the queue (and any message nobody consumed) so Redis keeps no leftovers.
            workers.delete_queue(worker.broker_url, worker.queue)

    def run(self, batch: JobBatch) -> RunResult:
        worker = self._worker
        if worker is None or self._workload != batch.workload:
            raise RuntimeError(f"{self.model}: start({batch.workload!r}) first")
        batch_size = self.batch_size(batch.workload, batch.n_jobs)
        app = workers.producer_app(worker.broker_url)
        enqueued = celery_run.enqueue(
            batch,
            app=app,
            store=self.store,
            queue=worker.queue,
            model=self.model,
            batch_size=batch_size,
            meta={
                "pool": worker.pool,
                "concurrency": worker.concurrency,
                "prefetch_multiplier": worker.prefetch_multiplier,
                "node": worker.nodename,
            },
        )
        collector = celery_run.RecordCollector(self.store, enqueued.scope_key, enqueued.ranges)
        wait_s = celery_run.wait_complete(
            self.store,
            enqueued.scope_key,
            batch.n_jobs,
            model=self.model,
            timeout_s=self.options.completion_timeout_s,
            alive=worker.alive,
            collector=collector,
        )
        load_started = time.perf_counter()
        records = collector.result()
        if len(records) != batch.n_jobs:  # cannot happen with one HSET per message; be sure
            records = self.store.load(enqueued.scope_key)
        load_s = time.perf_counter() - load_started
        return RunResult(
            records=records,
            params={
                "concurrency": worker.concurrency,
                "batch_size": batch_size,
                "prefetch_multiplier": worker.prefetch_multiplier,
                "pool": worker.pool,
            },
            extra={
                "enqueue_s": enqueued.enqueue_s,
                "enqueue_jobs_per_s": enqueued.jobs_per_s,
                "n_messages": enqueued.n_messages,
                "wait_s": wait_s,
                # Fetching the records still missing after the last job (the rest were
                # collected while the run went on).
                "load_s": load_s,
                "scope": enqueued.scope_key,
                "queue": worker.queue,
                "node": worker.nodename,
                "batch_size_auto": self.options.batch_size is None,
            },
        )


@register
class CeleryPrefork(CeleryRunner):
    """One child process per core: true parallelism for CPU jobs."""

    name = "celery_prefork"
    pool = "prefork"

    def prefetch_multiplier(self, workload: Workload) -> int:
        # The parent process holds reserved messages and hands each to whichever child is free,
        # so reserving a second message per child costs no balance within this one worker and
        # hides the broker round trip between two messages.
        return 2


@register
class CeleryThreads(CeleryRunner):
    """A thread pool in one process: concurrency for IO, the GIL for CPU."""

    name = "celery_threads"
    pool = "threads"

    def worker_concurrency(self, workload: Workload) -> int:
        return IO_THREADS if workload == "io" else self.options.cpu_count

    def prefetch_multiplier(self, workload: Workload) -> int:
        # IO sends one job per message to 100 threads: reserving 100 in flight is already the
        # whole seed workload, more would only park messages in the executor's queue. CPU
        # messages are few and large; a second one per thread hides the fetch gap.
        return 1 if workload == "io" else 2


@register
class CelerySolo(CeleryRunner):
    """The task runs in the worker's own loop: one job at a time, no pool at all."""

    name = "celery_solo"
    pool = "solo"

    def worker_concurrency(self, workload: Workload) -> int:
        return 1

    def prefetch_multiplier(self, workload: Workload) -> int:
        # Solo blocks its consumer loop while a task runs, so the next message can only be
        # fetched in between; a few reserved ones keep the loop from idling on the broker.
        return 4
