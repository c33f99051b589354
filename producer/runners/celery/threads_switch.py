"""``celery_threads_switch_1ms``: the threads pool with a 1 ms switch interval in the worker
(issue 18's first lever).

The threads pool's one consumer thread fetches every message and competes for the GIL with the
request threads. ``sys.setswitchinterval`` bounds how long another thread may hold the GIL once
the consumer asks for it (Python's default: 5 ms). A shorter interval lets a fetched message
reach the pool sooner, at the price of more GIL hand-overs for everyone. Any other value can be
tried on any Celery model with ``JOBBENCH_WORKER_SWITCH_INTERVAL_S``; this model pins 1 ms.
"""

from __future__ import annotations

from producer.runners.celery.models import CeleryThreads
from shared.workloads import Workload

#: The worker's switch interval (s): a fifth of Python's 5 ms default.
SWITCH_INTERVAL_S = 0.001


class CeleryThreadsSwitch(CeleryThreads):
    """``celery_threads`` whose worker runs with a 1 ms switch interval."""

    name = "celery_threads_switch_1ms"
    order = 111
    default = False
    workloads = frozenset({"io"})

    def switch_interval_s(self, workload: Workload) -> float:
        return SWITCH_INTERVAL_S
