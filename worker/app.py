"""The Celery app, configured from the environment (``celery -A worker.app worker --pool=...``).

Broker: ``CELERY_BROKER_URL``, else ``REDIS_URL``, else the default local Redis (the same
resolution as :class:`shared.settings.Settings`). The pool is chosen on the command line, never
here (Celery's own eventlet example warns that ``worker_pool`` in config is easy to override by
accident). Building the app opens no connection: Celery connects lazily.

The worker also learns here which pool it is actually running (``running_pool``), from the
``worker_init`` signal, so every timing record names the real pool rather than what a producer
believes it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any

from celery import Celery, concurrency, signals

from shared.settings import Settings, SettingsError

#: The one task's registered name (the producer sends by name, so it never imports the worker).
RUN_JOBS_TASK = "jobbench.run_jobs"

#: Environment variable: seconds an unacknowledged message may stay with a worker before the
#: Redis transport hands it to another consumer.
VISIBILITY_TIMEOUT_ENV = "JOBBENCH_VISIBILITY_TIMEOUT_S"
#: Default visibility timeout (s): kombu's own default, one hour. With late acks the clock starts
#: when a worker *reserves* a message (prefetch), not when it starts running it, so the value must
#: exceed the longest time a message can sit in a prefetch buffer plus its run. A 15,000-job CPU
#: repeat takes tens of seconds, so an hour never redelivers a healthy message (a duplicate would
#: show up as ``attempt`` 2); the price is that a message held by a killed worker comes back only
#: after this long, which a benchmark run never waits for.
DEFAULT_VISIBILITY_TIMEOUT_S = 3600
#: kombu looks for messages past the visibility timeout only every ``unacked_restore_interval``
#: (10 s) x ``unacked_restore_throttle`` (10) = 100 s, whatever the timeout. A timeout shorter
#: than the default (the fault suite uses 3 s) gets a sweep every this fraction of it, at least
#: every second, so a killed worker's messages come back within ~1.25x the timeout.
RESTORE_SWEEPS_PER_TIMEOUT = 4

#: Environment variable, test-only (the fault suite's negative control): ``0`` turns late acks
#: off, i.e. Celery's default early ack, so a killed worker loses the jobs it was running and the
#: reconciliation (``jobbench verify``) must report them. Unset or ``1``: late acks. Never set it
#: for a benchmark.
ACKS_LATE_ENV = "JOBBENCH_ACKS_LATE"

#: Environment variable set by ``producer.runners.celery.workers``: the pid of the process that
#: owns this worker. When that process disappears (even by SIGKILL) the worker shuts itself down.
PARENT_PID_ENV = "JOBBENCH_PARENT_PID"
#: How often (s) the orphan watchdog checks the parent pid; a leaked worker lives at most this
#: long plus its warm shutdown.
ORPHAN_CHECK_INTERVAL_S = 0.5
#: Seconds a warm shutdown started by the watchdog may take before it escalates to a cold one.
ORPHAN_WARM_SHUTDOWN_S = 10.0


def visibility_timeout_s(env: dict[str, str] | None = None) -> int:
    """``JOBBENCH_VISIBILITY_TIMEOUT_S`` as a positive integer, else the default."""
    raw = (os.environ if env is None else env).get(VISIBILITY_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_VISIBILITY_TIMEOUT_S
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{VISIBILITY_TIMEOUT_ENV} must be an integer: got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{VISIBILITY_TIMEOUT_ENV} must be positive: got {value}")
    return value


def transport_options(visibility_s: int) -> dict[str, int]:
    """Redis transport options: the visibility timeout and, when it is short, a sweep to match."""
    options = {"visibility_timeout": visibility_s}
    if visibility_s < DEFAULT_VISIBILITY_TIMEOUT_S:
        options["unacked_restore_interval"] = max(1, visibility_s // RESTORE_SWEEPS_PER_TIMEOUT)
        options["unacked_restore_throttle"] = 1
    return options


def acks_late(env: dict[str, str] | None = None) -> bool:
    """``JOBBENCH_ACKS_LATE``: unset or ``1`` (late acks), ``0`` (early acks, tests only)."""
    raw = (os.environ if env is None else env).get(ACKS_LATE_ENV, "").strip()
    if raw not in ("", "0", "1"):
        raise SettingsError(f"{ACKS_LATE_ENV} must be 0 or 1: got {raw!r}")
    return raw != "0"


def create_app(broker_url: str | None = None) -> Celery:
    """A configured app; ``broker_url`` overrides the environment (the producer passes the URL
    it resolved, which may be an embedded Redis the environment knows nothing about)."""
    broker = broker_url or Settings.from_env().effective_broker_url
    # worker.clock publishes the host's clock offset at worker start (multi-host timings).
    app = Celery(
        "jobbench", broker=broker, include=["worker.tasks", "worker.clock"], set_as_current=False
    )
    app.conf.update(
        # JSON only: messages stay readable in Redis and no pickle ever crosses the broker.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # No result backend: the timing records in Redis are the completion signal, so results
        # are never shipped back through Celery.
        result_backend=None,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        # Task events only feed monitors, and cost ~3 event messages per task (measured ~20 %
        # on 100 one-job IO messages): off unless asked for. ``-E`` / ``--task-events`` turns
        # them on (producer.runners.celery.workers passes it with --flower; the compose workers
        # always do).
        worker_send_task_events=False,
        task_send_sent_event=False,
        # At-least-once: ack after the task body ran, and requeue (not ack) a message whose
        # prefork child died mid-task. Redeliveries are harmless: records are one hash field per
        # job and ``attempt`` counts them.
        task_acks_late=acks_late(),
        task_reject_on_worker_lost=True,
        broker_transport_options=transport_options(visibility_timeout_s()),
        broker_connection_retry_on_startup=True,
        # Celery prefers CELERY_BROKER_URL from the environment to the broker given above; pin
        # the one resolved here, or a producer comparing brokers (--brokers) would publish every
        # message to the environment's broker.
        broker_read_url=broker,
        broker_write_url=broker,
        # Keep the worker's log quiet and out of the root logger (--loglevel=WARNING does the rest).
        worker_hijack_root_logger=False,
        worker_redirect_stdouts_level="WARNING",
        enable_utc=True,
    )
    return app


#: The app ``celery -A worker.app`` finds. The broker comes from the worker's environment.
app = create_app()

#: The pool the current process runs tasks in ("prefork", "threads", "solo", ...), set by the
#: ``worker_init`` signal in the worker's main process; prefork children inherit it at fork.
#: "direct" means the task body was called outside a worker (tests).
_running_pool = "direct"


def running_pool() -> str:
    return _running_pool


def pool_name(pool_cls: object) -> str:
    """The command-line alias of a worker's pool class (or ``module:Class`` for custom ones)."""
    cls = concurrency.get_implementation(pool_cls) if isinstance(pool_cls, str) else pool_cls
    target = f"{getattr(cls, '__module__', '?')}:{getattr(cls, '__qualname__', repr(cls))}"
    # ALIASES lists "prefork" before its compat alias "processes", so the first match wins.
    for alias, path in concurrency.ALIASES.items():
        if path == target:
            return str(alias)
    return target


def _detect_pool(sender: Any = None, **_: Any) -> None:
    global _running_pool
    if sender is not None and getattr(sender, "pool_cls", None) is not None:
        _running_pool = pool_name(sender.pool_cls)


def _watch_parent(**_: Any) -> None:
    """Exit when the owning producer is gone, so no worker outlives a killed benchmark.

    Started at ``worker_ready`` (after prefork children are forked: forking a process with a
    running thread is unsafe). ``start_new_session`` keeps the terminal's Ctrl-C away from the
    worker, so this watchdog is what covers a producer that dies without cleaning up.
    """
    raw = os.environ.get(PARENT_PID_ENV, "").strip()
    if not raw.isdigit():
        return
    parent_pid = int(raw)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(ORPHAN_CHECK_INTERVAL_S)
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signal.SIGTERM)  # warm shutdown
        time.sleep(ORPHAN_WARM_SHUTDOWN_S)
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signal.SIGQUIT)  # cold shutdown

    threading.Thread(target=watch, name="jobbench-orphan-watchdog", daemon=True).start()


# Connected by call (Celery's decorators are untyped); strong references, as the handlers are
# module-level functions that must live as long as the worker.
signals.worker_init.connect(_detect_pool, weak=False)
signals.worker_ready.connect(_watch_parent, weak=False)
