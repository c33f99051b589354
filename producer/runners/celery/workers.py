"""Start and stop Celery worker subprocesses the Celery way (``celery -A worker.app worker``).

Every worker runs in its own session (its own process group), so a stop can kill the whole
group and no prefork child survives its parent. Three layers make sure no worker outlives the
process that started it:

1. ``running_worker`` (a context manager) stops its worker on exit, error or Ctrl-C;
2. a registry of live workers is stopped by ``atexit`` and, if nobody else handles it, by a
   SIGTERM/SIGHUP handler that turns the signal into ``SystemExit`` after stopping them;
3. the worker watches its parent pid (``worker.app``) and shuts down if it is orphaned, which
   covers even a SIGKILL of the producer.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import FrameType
from typing import Any, Literal
from urllib.parse import urlsplit

import redis
from celery import Celery

from producer import processes
from producer.services import ServiceError
from shared import keys
from shared.settings import REDIS_SCHEMES, redact_url
from shared.timings import TimingStore
from worker.app import PARENT_PID_ENV, RUN_JOBS_TASK, create_app

PoolName = Literal["prefork", "threads", "solo"]
POOLS: tuple[PoolName, ...] = ("prefork", "threads", "solo")

#: Seconds a worker may take to run its start-up probe. It needs ~0.5 s here; a loaded CI box
#: or a slow broker connection can take several.
WORKER_START_TIMEOUT_S = 30.0
#: Seconds one ``ping`` waits for its reply.
PING_TIMEOUT_S = 0.25
#: The model name of start-up probe records (they live in a scope of their own, deleted after).
PROBE_MODEL = "worker-probe"
#: The probe job: the sieve up to 2, so the probe measures start-up, not work.
PROBE_ARG = 2
#: Seconds between two checks for the probe's record.
PROBE_POLL_S = 0.01
#: Seconds a warm shutdown (SIGTERM: finish running tasks, then exit) may take before the whole
#: process group is killed. An idle worker needs 0.5-2 s (prefork is the slowest).
WARM_SHUTDOWN_S = 10.0
#: The same for emergency stops (signal, interpreter exit): the user is waiting for the prompt.
EMERGENCY_SHUTDOWN_S = 2.0
#: A warnings filter (``PYTHONWARNINGS`` syntax) for Celery's "running as root" SecurityWarning,
#: printed by every worker started in a container. Its danger is a root worker unpickling
#: messages; ours accept JSON only (Celery refuses to start as root with pickle enabled).
ROOT_WARNING_FILTER = "ignore:You're running the worker with superuser privileges"


@dataclass
class WorkerProcess:
    """A running worker subprocess and the facts about it a report needs."""

    proc: subprocess.Popen[bytes]
    nodename: str
    queue: str
    pool: PoolName
    concurrency: int
    prefetch_multiplier: int
    broker_url: str
    redis_url: str
    startup_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


@lru_cache(maxsize=8)
def producer_app(broker_url: str) -> Celery:
    """The app the producer publishes and pings through: same config, the resolved broker.

    Cached per URL so its producer and connection pools stay warm across repeats.
    """
    return create_app(broker_url)


def queue_name(model: str, token: str | None = None) -> str:
    """A queue no other run uses: concurrent runs sharing a Redis never eat each other's tasks."""
    return f"jobbench.{token or uuid.uuid4().hex[:12]}.{model}"


def worker_command(
    *,
    pool: PoolName,
    concurrency: int,
    nodename: str,
    queue: str,
    prefetch_multiplier: int,
    heartbeat: bool = False,
    events: bool = False,
    disable_prefetch: bool = False,
) -> list[str]:
    """The one Celery worker command line: the bench's workers, and the simulated hosts' (which
    run it behind their ``ip netns exec`` prefix). ``nodename`` may hold ``%h``."""
    cmd = [
        sys.executable, "-m", "celery", "-A", "worker.app", "worker",
        f"--pool={pool}", "-c", str(concurrency), "-n", nodename, "-Q", queue,
        "--prefetch-multiplier", str(prefetch_multiplier),
        "--without-mingle", "--without-gossip", "--loglevel=WARNING",
    ]  # fmt: skip
    if events:
        # Task events (received/started/succeeded per task) only feed monitors (Flower); off,
        # they cost nothing (measured: ~20 % of 100 one-job IO messages when on).
        cmd.append("-E")
    if not heartbeat:
        # Heartbeats only feed monitors (Flower): without one, skip their periodic event traffic.
        cmd.append("--without-heartbeat")
    if disable_prefetch:
        # Celery >= 5.6, Redis brokers only: reserve a message only when a pool slot is free.
        cmd.append("--disable-prefetch")
    return cmd


def ping(app: Celery, nodename: str, timeout_s: float = PING_TIMEOUT_S) -> bool:
    """Whether ``nodename`` answers a control ping (its mailbox works; Flower relies on it)."""
    replies = app.control.ping(destination=[nodename], timeout=timeout_s)
    return any(nodename in reply for reply in replies or [])


# --- the registry of live workers -------------------------------------------------------------

_live: dict[int, WorkerProcess] = {}
_handlers_installed = False
#: The process that installed the hooks. A process forked from it (a multiprocessing pool
#: child) inherits the handlers and a copy of ``_live``; it must neither stop its parent's
#: workers nor turn SIGTERM (how ``Pool.terminate`` stops it) into a slow ``SystemExit``.
_owner_pid = 0
#: Signals whose default action (die without cleanup) would leave workers behind.
_FATAL_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def live_workers() -> list[WorkerProcess]:
    return list(_live.values())


def _stop_all_now() -> None:
    if os.getpid() != _owner_pid:
        return
    for worker in list(_live.values()):
        stop_worker(worker, grace_s=EMERGENCY_SHUTDOWN_S)


def _on_fatal_signal(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _owner_pid:  # a forked child: die the default way, at once
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _stop_all_now()
    # SystemExit unwinds the caller too, so its other services (HTTP target, embedded Redis)
    # are stopped by their own ``finally`` blocks; 128 + n is the shell's convention.
    raise SystemExit(128 + signum)


def _forget_in_child() -> None:
    """After a fork: the child owns none of the parent's workers, and keeps default signals."""
    _live.clear()
    for signum in _FATAL_SIGNALS:
        with contextlib.suppress(ValueError):  # only the main thread may set handlers
            if signal.getsignal(signum) is _on_fatal_signal:
                signal.signal(signum, signal.SIG_DFL)


def _install_cleanup() -> None:
    """Register the exit hooks once, on the first worker start (never at import)."""
    global _handlers_installed, _owner_pid
    if _handlers_installed:
        return
    _handlers_installed = True
    _owner_pid = os.getpid()
    os.register_at_fork(after_in_child=_forget_in_child)
    atexit.register(_stop_all_now)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; atexit still applies
    for signum in _FATAL_SIGNALS:
        # Leave a handler someone else installed alone (the CLI may have its own).
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _on_fatal_signal)


# --- start / stop --------------------------------------------------------------------------------


def worker_env(*, broker_url: str, redis_url: str) -> dict[str, str]:
    """The environment of a worker this process starts: its broker, the run's Redis for the
    timings, this process as the parent it watches, and quiet start-up output."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url,
        PARENT_PID_ENV: str(os.getpid()),
        # Celery's banner goes to stdout (discarded); warnings and errors reach stderr.
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": ",".join(
            w for w in (os.environ.get("PYTHONWARNINGS"), ROOT_WARNING_FILTER) if w
        ),
    }


def start_worker(
    *,
    pool: PoolName,
    concurrency: int,
    queue: str,
    broker_url: str,
    redis_url: str,
    prefetch_multiplier: int = 1,
    heartbeat: bool = False,
    events: bool = False,
    name: str = "jobbench",
    start_timeout_s: float = WORKER_START_TIMEOUT_S,
    disable_prefetch: bool = False,
    env: Mapping[str, str] | None = None,
) -> WorkerProcess:
    """Start a worker consuming ``queue`` and wait until it has run a probe job.

    ``env``: extra environment variables of the worker (its switch interval, the fetch trace).
    ``startup_s`` is the time from spawn to the probe's record in Redis. Raises ``ServiceError``
    if the worker exits or stays silent past ``start_timeout_s`` (and then leaves nothing
    running). Another worker already consuming ``queue`` may run the probe instead: a caller
    starting several nodes on one queue waits for each to consume it (``consumers``).
    """
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}: choose one of {', '.join(POOLS)}")
    if concurrency < 1 or prefetch_multiplier < 1:
        raise ValueError("concurrency and prefetch_multiplier must be at least 1")
    _install_cleanup()
    # A unique node name: two workers of one host must not answer each other's pings.
    nodename = f"{name}-{pool}-{uuid.uuid4().hex[:8]}@%h"
    cmd = worker_command(
        pool=pool, concurrency=concurrency, nodename=nodename, queue=queue,
        prefetch_multiplier=prefetch_multiplier, heartbeat=heartbeat, events=events,
        disable_prefetch=disable_prefetch,
    )  # fmt: skip
    full_env = {**worker_env(broker_url=broker_url, redis_url=redis_url), **(env or {})}
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    worker = WorkerProcess(
        proc=proc,
        # %h is expanded by the worker to the host name; ping needs the expanded form.
        nodename=nodename.replace("%h", socket.gethostname()),
        queue=queue,
        pool=pool,
        concurrency=concurrency,
        prefetch_multiplier=prefetch_multiplier,
        broker_url=broker_url,
        redis_url=redis_url,
    )
    _live[proc.pid] = worker
    try:
        _wait_ready(worker, start_timeout_s)
    except BaseException:
        stop_worker(worker, grace_s=EMERGENCY_SHUTDOWN_S)
        with contextlib.suppress(Exception):  # the probe may still sit in the queue
            delete_queue(broker_url, queue)
        raise
    worker.startup_s = time.perf_counter() - started
    return worker


def _wait_ready(worker: WorkerProcess, timeout_s: float) -> None:
    """Wait until the worker has run a probe job from its queue and recorded it in Redis.

    A probe, not ``control.ping``: measured here, a worker consumes its queue ~0.45 s after
    spawn but answers its first ping only at ~1.0 s (the pidbox subscription comes up later),
    so a ping would overstate start-up. The probe also proves the whole path the benchmark uses
    (broker -> worker -> timing Redis at the worker's REDIS_URL) and that the worker detected the
    pool it was asked for.
    """
    app = producer_app(worker.broker_url)
    store = TimingStore.from_url(worker.redis_url)
    scope_key = keys.scope(f"probe-{uuid.uuid4().hex[:12]}", PROBE_MODEL, "cpu", 0)
    try:
        # Published before the worker is up: the message waits in the queue (a Redis list).
        with app.producer_or_acquire() as producer:
            app.send_task(
                RUN_JOBS_TASK,
                args=(scope_key, "cpu", PROBE_MODEL, "digest", [[0, PROBE_ARG, time.time_ns()]]),
                queue=worker.queue,
                producer=producer,
                ignore_result=True,
                argsrepr="<start-up probe>",
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not worker.alive():
                raise ServiceError(
                    f"celery worker ({worker.pool}) exited with code {worker.proc.returncode} "
                    "during start-up (its stderr is above)"
                )
            if store.count(scope_key):
                record = store.load(scope_key)[0]
                if record.pool != worker.pool:
                    raise ServiceError(
                        f"celery worker asked for pool {worker.pool!r} reports {record.pool!r}"
                    )
                worker.extra["probe_pid"] = record.pid
                return
            time.sleep(PROBE_POLL_S)
        raise ServiceError(
            f"celery worker ({worker.pool}) ran no probe job within {timeout_s:.0f} s "
            f"(is the worker's REDIS_URL {redact_url(worker.redis_url)} reachable?)"
        )
    finally:
        with contextlib.suppress(Exception):
            store.client.delete(
                keys.records(scope_key), keys.attempts(scope_key), keys.fetch_path(scope_key)
            )
        store.client.close()


def stop_worker(worker: WorkerProcess, grace_s: float = WARM_SHUTDOWN_S) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL of the whole process group (the worker leads its
    own: a prefork child or a main process that ignored SIGTERM dies with it). Safe to call
    twice; every wait is bounded, so a signal handler re-entering it cannot deadlock."""
    try:
        processes.stop_process(worker.proc, grace_s, group=True)
    finally:
        _live.pop(worker.proc.pid, None)


@contextlib.contextmanager
def running_worker(
    *,
    pool: PoolName,
    concurrency: int,
    queue: str,
    broker_url: str,
    redis_url: str,
    prefetch_multiplier: int = 1,
    heartbeat: bool = False,
    events: bool = False,
) -> Iterator[WorkerProcess]:
    """A started worker, stopped on exit however the block ends."""
    worker = start_worker(
        pool=pool, concurrency=concurrency, queue=queue, broker_url=broker_url,
        redis_url=redis_url, prefetch_multiplier=prefetch_multiplier, heartbeat=heartbeat,
        events=events,
    )  # fmt: skip
    try:
        yield worker
    finally:
        stop_worker(worker)


#: kombu's Redis transport keeps every message a consumer reserved and has not acknowledged in
#: this hash (delivery tag -> JSON [message, exchange, routing key]), its reservation time in the
#: sorted set: a worker killed while holding messages leaves them there, and any consumer's sweep
#: would put them back in the queue after the visibility timeout, for good.
KOMBU_UNACKED = "unacked"
KOMBU_UNACKED_INDEX = "unacked_index"
#: Seconds a clean-up command to the broker may take (it runs on the way out, maybe after a fault).
CLEANUP_TIMEOUT_S = 5.0


def drop_unacked(broker_url: str, queue: str) -> int:
    """Remove the reserved, unacknowledged messages of ``queue`` from a Redis broker (those a
    dead worker held); returns how many. Other brokers (RabbitMQ requeues on its own) and other
    queues' messages are left alone."""
    if urlsplit(broker_url).scheme not in REDIS_SCHEMES:
        return 0
    client = redis.Redis.from_url(
        broker_url, socket_timeout=CLEANUP_TIMEOUT_S, socket_connect_timeout=CLEANUP_TIMEOUT_S
    )
    try:
        tags = []
        for tag, raw in client.hscan_iter(KOMBU_UNACKED):
            try:
                _, exchange, routing_key = json.loads(raw)
            except (ValueError, TypeError):
                continue  # not kombu's: not ours to judge
            if queue in (exchange, routing_key):
                tags.append(tag)
        if tags:
            pipe = client.pipeline(transaction=False)
            pipe.hdel(KOMBU_UNACKED, *tags)
            pipe.zrem(KOMBU_UNACKED_INDEX, *tags)
            pipe.execute()
        return len(tags)
    finally:
        client.close()


def delete_queue(broker_url: str, queue: str) -> int:
    """Drop a run's queue and whatever is left in it (messages nobody consumed, its binding, the
    messages a dead worker held unacknowledged); returns how many of the last were dropped."""
    app = producer_app(broker_url)
    with app.connection_for_write() as conn:
        # Declare first: kombu's virtual transports delete only the bindings the channel knows,
        # and a fresh channel knows none (the Redis binding set would otherwise stay behind).
        declared = app.amqp.queues[queue].bind(conn.default_channel)
        declared.declare()
        declared.delete()
    return drop_unacked(broker_url, queue)
