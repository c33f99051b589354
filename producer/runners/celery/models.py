"""The Celery models: workers fed through a broker (Redis or RabbitMQ), one per pool (prefork,
threads, solo), each run once per broker of the run (``celery_prefork``, ``celery_prefork@amqp``).

``start`` launches one worker subprocess on a queue of its own (untimed); ``run`` publishes the
jobs, waits for every job's record in Redis and loads them (timed by the harness, so broker and
record round trips are part of what Celery costs); ``stop`` shuts the worker down.

A model may run several worker nodes on its one queue (``nodes``: parallel fetch), pass its
workers a switch interval (``switch_interval_s``), turn Celery's prefetch off
(``disable_prefetch``) or call another task (``task_name``): the levers of issue 18, each a
model of its own in a file of this package. With ``fetch_trace`` on, every message's fetch path
(``shared.fetch_path``) is recorded and broken down in the row.

With ``external_workers`` the runner starts nothing: ``start`` waits for workers someone else
started (docker compose services, other machines) consuming ``<queue_prefix>.<pool>``, sums
their concurrency, and ``stop`` leaves them and their queue alone. Timings always go to the
run's Redis, whatever the broker.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

from producer import cleanup
from producer.runners.base import (
    VARIANT_SEP,
    CostShape,
    JobBatch,
    Runner,
    RunnerOptions,
    RunResult,
    cores_here,
    options_for,
    usable_cpus,
)
from producer.runners.celery import publish, workers
from producer.runners.celery.consumers import (
    ExternalWorkers,
    find_consumers,
    probe_job,
    wait_for_consumers,
)
from producer.runners.celery.redrive import Redrive
from producer.runners.celery.workers import PoolName, WorkerProcess
from producer.services import ServiceError
from shared import fetch_path, jobspec
from shared.fetch_path import FETCH_TRACE_ENV
from shared.settings import REDIS_SCHEMES, Settings, redact_url
from shared.timings import JobRecord, TimingStore
from shared.workloads import Workload
from worker.app import (
    DEFAULT_SWITCH_INTERVAL_S,
    RUN_JOBS_TASK,
    SWITCH_INTERVAL_ENV,
    switch_interval_s,
)

#: Threads of the threads pool for IO: like ``threading`` in the seed, enough that the seed's
#: 100 requests all wait on the network at once.
IO_THREADS = 100
#: Seconds the ping that wakes a stopping worker waits for its reply (it only has to arrive).
WAKE_PING_TIMEOUT_S = 0.05
#: Seconds a broker may take to accept the connection of ``check_broker``.
BROKER_CHECK_TIMEOUT_S = 5.0
#: The label of a broker in model names, by URL scheme (``celery_prefork@amqp``).
BROKER_LABELS = {"amqp": "amqp", "amqps": "amqp", "pyamqp": "amqp",
                 "redis": "redis", "rediss": "redis", "unix": "redis"}  # fmt: skip


@dataclass(frozen=True)
class CeleryOptions:
    """The Celery models' own options. Read from the run's configuration by field name
    (``options_for``); ``broker_url`` and ``broker_label`` are set per broker variant."""

    #: Celery brokers to compare, each "redis" (the run's Redis) or a URL; empty: the one broker
    #: (CELERY_BROKER_URL, else the run's Redis). Every Celery model runs once per broker.
    brokers: tuple[str, ...] = ()
    #: The broker of this runner; empty: CELERY_BROKER_URL, else the run's Redis.
    broker_url: str = ""
    #: The broker's label in model names (``celery_prefork@amqp``); empty for the run's own
    #: Redis, so those rows keep the plain name older results use.
    broker_label: str = ""
    #: Jobs per message; None picks from the job count and the worker concurrency.
    batch_size: int | None = None
    #: Seconds to wait for every job's record before naming the missing ones.
    completion_timeout_s: float = 600.0
    #: Keep task events on (Flower) and do not disable worker heartbeats.
    flower: bool = False
    #: Start no worker; publish to ``<queue_prefix>.<pool>`` and measure the workers that
    #: consume it (docker compose services, other machines).
    external_workers: bool = False
    #: External workers: the queue of pool P is ``<queue_prefix>.<P>``.
    queue_prefix: str = "jobbench"
    #: External workers: seconds ``start`` waits for a worker consuming the queue.
    external_wait_s: float = 60.0
    #: ``-c`` of every worker; None: the pool's own choice (``worker_concurrency``).
    celery_concurrency: int | None = None
    #: Worker processes (nodes) started per pool, all consuming the pool's one queue.
    celery_nodes: int = 1
    #: Record every message's fetch path (``shared.fetch_path``) and break it down per row.
    fetch_trace: bool = False


def broker_labels(brokers: Sequence[str], settings: Settings) -> dict[str, str | None]:
    """Label -> broker URL for the Celery models; the label "" (plain model names, comparable with
    older runs) and the URL None stand for the run's own Redis."""
    wanted = brokers or (settings.broker_url or "redis",)
    out: dict[str, str | None] = {}
    for raw in wanted:
        if raw == "redis" or raw == settings.redis_url:
            out[""] = None
            continue
        base = BROKER_LABELS.get(raw.partition("://")[0], "broker")
        label, n = base, 1
        while label in out and out[label] != raw:
            n += 1
            label = f"{base}{n}"
        out[label] = raw
    return out


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


class CeleryRunner(Runner):
    """One Celery pool; subclasses only name the pool and size it."""

    family = "celery"
    default = True
    stores_own_records = True
    caveat = (
        "**Celery wall time includes the broker**: publishing the jobs, the workers fetching "
        "them and the results coming back through Redis are part of what Celery costs."
    )
    pool: ClassVar[PoolName]
    #: The task every message calls (they all take the same arguments).
    task_name: ClassVar[str] = RUN_JOBS_TASK

    def __init__(self, options: RunnerOptions, celery: CeleryOptions | None = None) -> None:
        super().__init__(options)
        self.celery = celery or CeleryOptions()
        self._worker: WorkerProcess | ExternalWorkers | None = None
        #: The nodes beyond the first when ``nodes`` > 1, on the same queue.
        self._more: list[WorkerProcess] = []
        self._workload: Workload | None = None
        self._store: TimingStore | None = None

    # --- the model's hooks -----------------------------------------------------------------

    @classmethod
    def variants(cls, config: object, settings: Settings) -> list[str]:
        """One row per broker: the plain name for the run's Redis, ``name@label`` for others."""
        brokers = options_for(config, CeleryOptions).brokers
        return [f"{cls.name}{VARIANT_SEP}{b}" if b else cls.name
                for b in broker_labels(brokers, settings)]  # fmt: skip

    @classmethod
    def check(cls, config: object, settings: Settings) -> None:
        switch_interval_s()  # a malformed JOBBENCH_WORKER_SWITCH_INTERVAL_S: one line, exit 2
        for url in broker_labels(options_for(config, CeleryOptions).brokers, settings).values():
            if url:
                check_broker(url)

    @classmethod
    def create(
        cls, model: str, options: RunnerOptions, config: object, settings: Settings
    ) -> Runner:
        celery = options_for(config, CeleryOptions)
        label = model.partition(VARIANT_SEP)[2]
        url = broker_labels(celery.brokers, settings)[label]
        # The run's own Redis (label "") is the resolved one, which may be an embedded server.
        broker = url or options.redis_url
        return cls(options, replace(celery, broker_url=broker, broker_label=label))

    @classmethod
    def run_metadata(cls, config: object, settings: Settings, redis_url: str) -> dict[str, Any]:
        labels = broker_labels(options_for(config, CeleryOptions).brokers, settings)
        brokers = {label or "redis": redact_url(url or redis_url) for label, url in labels.items()}
        return {"brokers": brokers}

    @classmethod
    def notes(cls, row: Mapping[str, Any]) -> list[str]:
        out = []
        enq = row.get("extra", {}).get("enqueue_s")
        if isinstance(enq, dict):
            out.append(f"enqueue {enq['median']:.2f}s")
        bs = row.get("params", {}).get("batch_size")
        if bs:
            out.append(f"batch {bs}")
        fetch = fetch_path.summary_note(row.get("stages_s") or {})
        if fetch:
            out.append(fetch)
        return out

    @property
    def model(self) -> str:
        """The row name: the pool's, with the broker label when there is one."""
        label = self.celery.broker_label
        return f"{self.name}{VARIANT_SEP}{label}" if label else self.name

    # --- sizing -----------------------------------------------------------------------------

    def worker_concurrency(self, workload: Workload) -> int:
        """``-c`` of each worker node."""
        return self.celery.celery_concurrency or self.options.cpu_count or usable_cpus()

    def prefetch_multiplier(self, workload: Workload) -> int:
        """Messages each slot may reserve ahead (Celery's ``--prefetch-multiplier``)."""
        return 1

    def nodes(self, workload: Workload) -> int:
        """Worker processes started on the one queue, each of ``worker_concurrency``
        (``--celery-nodes``, 1 unless a sweep or a model says otherwise)."""
        return self.celery.celery_nodes

    def disable_prefetch(self, workload: Workload) -> bool:
        """Celery's ``--disable-prefetch`` (Redis brokers): reserve only for a free slot."""
        return False

    def switch_interval_s(self, workload: Workload) -> float:
        """The workers' ``sys.setswitchinterval``: ``JOBBENCH_WORKER_SWITCH_INTERVAL_S``, else
        Python's default."""
        return switch_interval_s()

    def worker_env(self, workload: Workload) -> dict[str, str]:
        """What the workers this runner starts are told through their environment."""
        return {
            SWITCH_INTERVAL_ENV: repr(self.switch_interval_s(workload)),
            FETCH_TRACE_ENV: "1" if self.celery.fetch_trace else "0",
        }

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        if isinstance(self._worker, ExternalWorkers) and self._workload == workload:
            return self._worker.concurrency  # what the running nodes offer together
        return self.worker_concurrency(workload) * self.nodes(workload)

    def batch_size(self, workload: Workload, n_jobs: int) -> int:
        if self.celery.batch_size is not None:
            return self.celery.batch_size
        return publish.auto_batch_size(
            n_jobs, self.concurrency(workload, n_jobs), workload=workload, pool=self.pool
        )

    def message_ranges(self, workload: Workload, n_jobs: int) -> Sequence[range] | None:
        """The job ids of each message when the model schedules its own (a ``*_factoring``
        variant); None: equal messages of ``batch_size``."""
        return None

    # --- connections --------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return self.options.redis_url or Settings.from_env().redis_url

    @property
    def broker_url(self) -> str:
        if self.celery.broker_url:
            return self.celery.broker_url
        settings = Settings.from_env()
        return settings.broker_url or self.redis_url

    @property
    def store(self) -> TimingStore:
        if self._store is None:
            self._store = TimingStore.from_url(self.redis_url)
        return self._store

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, workload: Workload) -> dict[str, Any]:
        if self.celery.external_workers:
            return self._start_external(workload)
        worker = self._worker
        if worker is not None and self._alive() and self._workload == workload:
            return {**self._facts(worker), "reused": True}
        self.stop()
        # A queue of its own per start: runs and tests sharing a Redis never consume each
        # other's messages, and a stopped worker's leftovers are dropped with its queue.
        queue = workers.queue_name(f"{self.model}.{workload}")
        started = time.perf_counter()
        self._worker = self._start_node(workload, queue)
        self._workload = workload
        if self.nodes(workload) > 1:
            for _ in range(self.nodes(workload) - 1):
                # One at a time into ``_more``: a failed start still stops the nodes before it.
                self._more.append(self._start_node(workload, queue))
            self._wait_all_consume(queue)
            self._worker.startup_s = time.perf_counter() - started
        # Open the producer's broker connection now so the first timed enqueue does not pay it.
        app = workers.producer_app(self.broker_url)
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=3)
        self.store.client.ping()
        return {**self._facts(self._worker), "reused": False}

    def _start_node(self, workload: Workload, queue: str) -> WorkerProcess:
        return workers.start_worker(
            pool=self.pool,
            concurrency=self.worker_concurrency(workload),
            queue=queue,
            broker_url=self.broker_url,
            redis_url=self.redis_url,
            prefetch_multiplier=self.prefetch_multiplier(workload),
            heartbeat=self.celery.flower,
            # Task events only when Flower is up to show them (they cost ~20 % on small tasks).
            events=self.celery.flower,
            name=self.name,
            disable_prefetch=self.disable_prefetch(workload),
            env=self.worker_env(workload),
        )

    def _nodes(self) -> list[WorkerProcess]:
        first = self._worker
        return ([first] if isinstance(first, WorkerProcess) else []) + self._more

    def _alive(self) -> bool:
        """Every node still runs (a dead one holds reserved messages for the visibility
        timeout: the run is incomplete, and ``wait_complete`` says so at once)."""
        worker = self._worker
        if isinstance(worker, ExternalWorkers):
            return worker.alive()
        return worker is not None and all(node.alive() for node in self._nodes())

    def _wait_all_consume(self, queue: str) -> None:
        """A node's start-up probe may have been run by a node started before it: wait until
        every node consumes the queue, so the first timed repeat has all of them."""
        nodes = self._nodes()
        expected = {node.nodename for node in nodes}

        def check() -> None:
            for node in nodes:
                if not node.alive():
                    raise ServiceError(f"celery worker {node.nodename} exited during start-up")

        app = workers.producer_app(self.broker_url)
        seen = wait_for_consumers(
            app, queue, wait_s=workers.WORKER_START_TIMEOUT_S, expected=expected, check=check
        )
        if not expected <= seen:
            missing = ", ".join(sorted(expected - seen))
            raise ServiceError(f"celery workers not consuming {queue!r} in time: {missing}")

    def _start_external(self, workload: Workload) -> dict[str, Any]:
        """Find the workers consuming ``<queue_prefix>.<pool>`` (bounded wait) and size them."""
        self.stop()
        app = workers.producer_app(self.broker_url)
        found = find_consumers(
            app,
            f"{self.celery.queue_prefix}.{self.pool}",
            self.pool,
            broker_url=self.broker_url,
            wait_s=self.celery.external_wait_s,
        )
        self._worker, self._workload = found, workload
        if jobspec.is_user_job(workload):
            probe_job(app, sorted(found.nodes), workload)
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=3)
        self.store.client.ping()
        return {**self._facts(found), "reused": False, "external": True, "nodes": found.nodes}

    def _facts(self, worker: WorkerProcess | ExternalWorkers) -> dict[str, Any]:
        facts = {
            "startup_s": worker.startup_s,
            "concurrency": self._total_concurrency(worker),
            "prefetch_multiplier": worker.prefetch_multiplier,
            "pool": worker.pool,
            "queue": worker.queue,
            "node": ",".join(n.nodename for n in self._nodes()) or worker.nodename,
            "broker": redact_url(worker.broker_url),
            "fetch_trace": self.celery.fetch_trace,
        }
        return {**facts, **self._levers()}

    def _total_concurrency(self, worker: WorkerProcess | ExternalWorkers) -> int:
        if isinstance(worker, ExternalWorkers):
            return worker.concurrency
        return sum(node.concurrency for node in self._nodes())

    def _levers(self) -> dict[str, Any]:
        """The settings this model departs from Celery's and Python's defaults with (what the
        row's params show; empty for the plain pools)."""
        workload = self._workload
        if workload is None or isinstance(self._worker, ExternalWorkers):
            return {}
        out: dict[str, Any] = {}
        if self.nodes(workload) > 1:
            out["nodes"] = self.nodes(workload)
        if self.disable_prefetch(workload):
            out["disable_prefetch"] = True
        if self.switch_interval_s(workload) != DEFAULT_SWITCH_INTERVAL_S:
            out["switch_interval_s"] = self.switch_interval_s(workload)
        return out

    def stop(self) -> None:
        worker, self._worker, self._workload = self._worker, None, None
        more, self._more = self._more, []
        if worker is None or isinstance(worker, ExternalWorkers):
            return  # external workers and their queue belong to whoever started them
        try:
            for node in [*more, worker]:
                if urlsplit(node.broker_url).scheme not in REDIS_SCHEMES:
                    _wake_for_shutdown(node)
                workers.stop_worker(node)
        finally:
            # Drop the queue (and any message nobody consumed, or a dead worker held) so the
            # broker keeps no leftovers; what could not be dropped is reported, not raised.
            try:
                held = workers.delete_queue(worker.broker_url, worker.queue)
                if held:
                    cleanup.note(
                        f"{self.model}: dropped {held} unacknowledged messages a dead worker "
                        f"held on queue {worker.queue}"
                    )
            except Exception as exc:
                cleanup.note(
                    f"{self.model}: could not drop queue {worker.queue} on "
                    f"{redact_url(worker.broker_url)}: {type(exc).__name__}: {exc}"
                )

    def run(self, batch: JobBatch) -> RunResult:
        worker = self._worker
        if worker is None or self._workload != batch.workload:
            raise RuntimeError(f"{self.model}: start({batch.workload!r}) first")
        ranges = self.message_ranges(batch.workload, batch.n_jobs)
        batch_size = (
            max(map(len, ranges), default=1)
            if ranges is not None
            else self.batch_size(batch.workload, batch.n_jobs)
        )
        app = workers.producer_app(worker.broker_url)
        concurrency = self._total_concurrency(worker)
        enqueued = publish.enqueue(
            batch,
            app=app,
            store=self.store,
            queue=worker.queue,
            model=self.model,
            batch_size=batch_size,
            ranges=ranges,
            meta={
                "pool": worker.pool,
                "concurrency": concurrency,
                "prefetch_multiplier": worker.prefetch_multiplier,
                "node": worker.nodename,
                **self._levers(),
            },
            task=self.task_name,
        )
        collector = publish.RecordCollector(self.store, enqueued.scope_key, enqueued.ranges)
        redrive = Redrive.for_broker(app, self.store, enqueued, worker.broker_url)
        try:
            wait_s = publish.wait_complete(
                self.store,
                enqueued.scope_key,
                batch.n_jobs,
                model=self.model,
                timeout_s=self.celery.completion_timeout_s,
                alive=self._alive,
                collector=collector,
                redrive=None if redrive is None else redrive.check,
            )
        finally:
            if redrive is not None:
                redrive.close()
        load_started = time.perf_counter()
        records = collector.result()
        if len(records) != batch.n_jobs:  # cannot happen with one HSET per message; be sure
            records = self.store.load(enqueued.scope_key)
        load_s = time.perf_counter() - load_started
        # Inside the timed window (one HGETALL after the last record) but only with the trace on,
        # which is why the figures come from a run without it (``make bench-celery-io``).
        stages, consumer = self._fetch_breakdown(enqueued.scope_key, records)
        return RunResult(
            records=records,
            params={
                "concurrency": concurrency,
                "batch_size": batch_size,
                "prefetch_multiplier": worker.prefetch_multiplier,
                "pool": worker.pool,
                **self._levers(),
            },
            extra={
                "enqueue_s": enqueued.enqueue_s,
                "enqueue_jobs_per_s": enqueued.jobs_per_s,
                "n_messages": enqueued.n_messages,
                "wait_s": wait_s,
                # Jobs whose message the broker lost between a pop and its bookkeeping, published
                # again (docs/faults.md "The chaos soak"); 0 on a run without faults.
                "republished": 0 if redrive is None else len(redrive.republished),
                # Fetching the records still missing after the last job (the rest were
                # collected while the run went on).
                "load_s": load_s,
                "scope": enqueued.scope_key,
                "queue": worker.queue,
                "node": worker.nodename,
                "batch_size_auto": self.celery.batch_size is None,
                **{f"fetch_{k}": v for k, v in consumer.items()},
            },
            stages_s=stages,
        )

    def _fetch_breakdown(
        self, scope_key: str, records: Sequence[JobRecord]
    ) -> tuple[dict[str, list[float]], dict[str, float]]:
        """The fetch path's stages and the consumer's CPU, when the trace is on (nothing else is
        read: off, the key does not exist)."""
        if not self.celery.fetch_trace:
            return {}, {}
        traces = fetch_path.load(self.store, scope_key)
        if not traces:  # external workers without JOBBENCH_FETCH_TRACE
            return {}, {}
        return fetch_path.breakdown(traces, records)

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        # Messages of ``batch_size`` jobs (or the model's own schedule), each paying the pool's
        # measured per-message cost on the consumer and its per-job cost in a slot; a prefork
        # child per slot runs Python in parallel, a threads or solo node under its one GIL.
        explicit = self.celery.celery_concurrency or self.options.cpu_count
        per_node = self.worker_concurrency(workload)
        follows = explicit is None and per_node == usable_cpus() and self.pool != "solo"
        if cores and follows:
            per_node = cores
        nodes = self.nodes(workload)
        lanes = max(1, per_node * nodes)
        cpus = cores_here(cores)
        cpu_lanes = min(lanes if self.pool == "prefork" else nodes, cpus)
        own_ranges = self.message_ranges(workload, n_jobs) is not None
        chunk = self.celery.batch_size or publish.auto_batch_size(
            n_jobs, lanes, workload=workload, pool=self.pool
        )
        return CostShape(
            kind={"prefork": "prefork child", "threads": "worker thread"}.get(
                self.pool, f"{self.pool} worker"
            ),
            lanes=lanes, cpu_lanes=max(1, cpu_lanes),
            schedule="factoring" if own_ranges else "fixed", chunk=chunk,
            dispatch=f"celery_message:{self.pool}", per_job=f"celery_job:{self.pool}",
            # A threads or solo node's consumer runs under the GIL of its pool's threads (one
            # GIL per node); prefork's consumer is the parent, beside its children.
            dispatch_on_lanes=self.pool != "prefork",
            broker_url=self.broker_url, follows_cores=follows,
            latency=f"celery_latency:{self.pool}", untimed_start=f"celery_start:{self.pool}",
        )  # fmt: skip


class CeleryPrefork(CeleryRunner):
    """One child process per core: true parallelism for CPU jobs."""

    name = "celery_prefork"
    order = 100
    pool = "prefork"

    def prefetch_multiplier(self, workload: Workload) -> int:
        # The parent process holds reserved messages and hands each to whichever child is free,
        # so reserving a second message per child costs no balance within this one worker and
        # hides the broker round trip between two messages.
        return 2


class CeleryThreads(CeleryRunner):
    """A thread pool in one process: concurrency for IO, the GIL for CPU."""

    name = "celery_threads"
    order = 110
    pool = "threads"

    def worker_concurrency(self, workload: Workload) -> int:
        if workload == "io" and self.celery.celery_concurrency is None:
            return IO_THREADS
        return super().worker_concurrency(workload)

    def prefetch_multiplier(self, workload: Workload) -> int:
        # IO sends one job per message to 100 threads: reserving 100 in flight is already the
        # whole seed workload, more would only park messages in the executor's queue. CPU
        # messages are few and large; a second one per thread hides the fetch gap.
        return 1 if workload == "io" else 2


class CelerySolo(CeleryRunner):
    """The task runs in the worker's own loop: one job at a time, no pool at all."""

    name = "celery_solo"
    order = 120
    pool = "solo"

    def worker_concurrency(self, workload: Workload) -> int:
        return 1

    def prefetch_multiplier(self, workload: Workload) -> int:
        # Solo blocks its consumer loop while a task runs, so the next message can only be
        # fetched in between; a few reserved ones keep the loop from idling on the broker.
        return 4


#: The Celery model of each pool.
POOL_MODELS: dict[str, type[CeleryRunner]] = {
    cls.pool: cls for cls in (CeleryPrefork, CeleryThreads, CelerySolo)
}


def celery_runner(pool: str, options: RunnerOptions | None = None) -> CeleryRunner:
    """The model of ``pool``, for the commands that size their own workers the way the bench
    does (``jobbench overhead``, ``jobbench hosts``): ``worker_concurrency``,
    ``prefetch_multiplier``."""
    return POOL_MODELS[pool](options or RunnerOptions())
