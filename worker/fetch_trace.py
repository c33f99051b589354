"""The worker's half of the fetch-path trace (``shared.fetch_path``): two Celery signal handlers,
connected only when ``JOBBENCH_FETCH_TRACE`` is on (``worker.app`` calls ``enable`` at
``worker_init``), so a worker without the trace runs no code of this module per message.

``task_received`` runs in the consumer thread once the message is decoded: it stamps the wall
clock, the consumer thread's CPU clock and the consumer's pid into the request's dict, which
Celery hands to the pool with the message (pickled to a prefork child, the same dict for threads
and solo) and turns into ``task.request``. ``task_prerun`` runs in the thread that is about to
run the task: it stamps the wall clock again and leaves all four values to the task body in a
thread-local, which ``take`` hands over once.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, NamedTuple

from celery import signals

#: Keys of the request dict (and so attributes of ``task.request``) the consumer stamps.
RECEIVED_AT_NS = "jobbench_received_at_ns"
CONSUMER_CPU_NS = "jobbench_consumer_cpu_ns"
CONSUMER_PID = "jobbench_consumer_pid"


class Stamps(NamedTuple):
    """What the signals measured for the message the current thread is about to run."""

    received_at_ns: int
    consumer_cpu_ns: int
    consumer_pid: int
    prerun_at_ns: int


_local = threading.local()
_enabled = False


def _on_received(request: Any = None, **_: Any) -> None:
    if request is None:
        return
    stamps = request.request_dict
    stamps[RECEIVED_AT_NS] = time.time_ns()
    stamps[CONSUMER_CPU_NS] = time.thread_time_ns()
    stamps[CONSUMER_PID] = os.getpid()


def _on_prerun(task: Any = None, **_: Any) -> None:
    now_ns = time.time_ns()
    request = getattr(task, "request", None)
    received = getattr(request, RECEIVED_AT_NS, None)
    _local.stamps = (
        None
        if received is None
        else Stamps(
            int(received),
            int(getattr(request, CONSUMER_CPU_NS, 0)),
            int(getattr(request, CONSUMER_PID, 0)),
            now_ns,
        )
    )


def enable() -> None:
    """Connect the handlers (once). Called in the worker's main process before the pool starts,
    so prefork children inherit them."""
    global _enabled
    if _enabled:
        return
    _enabled = True
    # Strong references: the handlers are module-level functions that live as long as the worker.
    signals.task_received.connect(_on_received, weak=False)
    signals.task_prerun.connect(_on_prerun, weak=False)


def enabled() -> bool:
    return _enabled


def take() -> Stamps | None:
    """The stamps of the task this thread runs now (once: a second call returns None), or None
    when the trace is off or the task was called outside a worker."""
    stamps: Stamps | None = getattr(_local, "stamps", None)
    _local.stamps = None
    return stamps
