"""Celery workers fed through Redis: the prefork, threads and solo pools.

``start`` launches one worker subprocess on a queue of its own (untimed); ``run`` publishes the
jobs, waits for every job's record in Redis and loads them (timed by the harness, so broker and
record round trips are part of what Celery costs); ``stop`` shuts the worker down.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, ClassVar

from producer import celery_run, workers
from producer.runners.base import JobBatch, Runner, RunResult, register
from producer.workers import PoolName, WorkerProcess
from shared.settings import Settings
from shared.timings import TimingStore
from shared.workloads import Workload

#: Threads of the threads pool for IO: like ``threading`` in the seed, enough that the seed's
#: 100 requests all wait on the network at once.
IO_THREADS = 100


class CeleryRunner(Runner):
    """One Celery pool; subclasses only name the pool and size it."""

    family = "celery"
    pool: ClassVar[PoolName]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._worker: WorkerProcess | None = None
        self._workload: Workload | None = None
        self._store: TimingStore | None = None

    # --- sizing -----------------------------------------------------------------------------

    def worker_concurrency(self, workload: Workload) -> int:
        return self.options.cpu_count

    def prefetch_multiplier(self, workload: Workload) -> int:
        """Messages each slot may reserve ahead (Celery's ``--prefetch-multiplier``)."""
        return 1

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return self.worker_concurrency(workload)

    def batch_size(self, workload: Workload, n_jobs: int) -> int:
        if self.options.batch_size is not None:
            return self.options.batch_size
        return celery_run.auto_batch_size(
            n_jobs, self.worker_concurrency(workload), workload=workload, pool=self.pool
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
        worker = self._worker
        if worker is not None and worker.alive() and self._workload == workload:
            return {**self._facts(worker), "reused": True}
        self.stop()
        # A queue of its own per start: runs and tests sharing a Redis never consume each
        # other's messages, and a stopped worker's leftovers are dropped with its queue.
        run_id = str(self.options.extra.get("run_id") or uuid.uuid4().hex[:12])
        queue = workers.queue_name(f"{self.name}.{workload}", f"{run_id}.{uuid.uuid4().hex[:6]}")
        self._worker = workers.start_worker(
            pool=self.pool,
            concurrency=self.worker_concurrency(workload),
            queue=queue,
            broker_url=self.broker_url,
            redis_url=self.redis_url,
            prefetch_multiplier=self.prefetch_multiplier(workload),
            heartbeat=self.options.flower,
            name=self.name,
        )
        self._workload = workload
        # Open the producer's broker connection now so the first timed enqueue does not pay it.
        app = workers.producer_app(self.broker_url)
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=3)
        self.store.client.ping()
        return {**self._facts(self._worker), "reused": False}

    def _facts(self, worker: WorkerProcess) -> dict[str, Any]:
        return {
            "startup_s": worker.startup_s,
            "concurrency": worker.concurrency,
            "prefetch_multiplier": worker.prefetch_multiplier,
            "pool": worker.pool,
            "queue": worker.queue,
            "node": worker.nodename,
        }

    def stop(self) -> None:
        worker, self._worker, self._workload = self._worker, None, None
        if worker is None:
            return
        try:
            workers.stop_worker(worker)
        finally:
            # Drop the queue (and any message nobody consumed) so Redis keeps no leftovers.
            workers.delete_queue(worker.broker_url, worker.queue)

    def run(self, batch: JobBatch) -> RunResult:
        worker = self._worker
        if worker is None or self._workload != batch.workload:
            raise RuntimeError(f"{self.name}: start({batch.workload!r}) first")
        batch_size = self.batch_size(batch.workload, batch.n_jobs)
        app = workers.producer_app(worker.broker_url)
        enqueued = celery_run.enqueue(
            batch,
            app=app,
            store=self.store,
            queue=worker.queue,
            model=self.name,
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
            model=self.name,
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
