"""``celery_threads_2x50``: two threads-pool worker nodes of 50 threads each on one queue
(issue 18: parallel fetch).

One worker has one consumer thread, which fetches one message per broker round trip while its
request threads compete with it for the GIL. Two nodes fetch in parallel, each with its own GIL
and half the request threads, for the same 100 requests in flight. The price: a second process
(memory, start-up) and two consumers polling the broker.
"""

from __future__ import annotations

from producer.runners.celery.models import IO_THREADS, CeleryThreads
from shared.workloads import Workload

#: Worker nodes on the queue; each gets an equal share of ``IO_THREADS``.
NODES = 2


class CeleryThreadsTwoNodes(CeleryThreads):
    """``celery_threads`` split over two nodes of 50 threads."""

    name = "celery_threads_2x50"
    order = 114
    default = False
    workloads = frozenset({"io"})

    def nodes(self, workload: Workload) -> int:
        return NODES

    def worker_concurrency(self, workload: Workload) -> int:
        return max(1, IO_THREADS // NODES)
