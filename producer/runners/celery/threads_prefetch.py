"""``celery_threads_prefetch8``: the threads pool reserving 8 messages per thread (issue 18).

``celery_threads`` reserves one message per thread (100 for the IO seed's 100 threads). Here
each thread may hold 8 (``--prefetch-multiplier 8``: 800 in all). On Redis the consumer still
fetches one message per ``BRPOP``, so this only matters when more messages than threads are
queued; on RabbitMQ (``--brokers redis,amqp://...`` adds ``celery_threads_prefetch8@amqp``) the
broker pushes up to that many unacknowledged messages without being asked: push delivery with a
large prefetch, the lever the issue names.
"""

from __future__ import annotations

from producer.runners.celery.models import CeleryThreads
from shared.workloads import Workload

#: Messages each thread may reserve ahead (Celery's default is 4; ``celery_threads`` uses 1).
PREFETCH_MULTIPLIER = 8


class CeleryThreadsPrefetch(CeleryThreads):
    """``celery_threads`` with a large prefetch (8 per thread)."""

    name = "celery_threads_prefetch8"
    order = 112
    default = False
    workloads = frozenset({"io"})

    def prefetch_multiplier(self, workload: Workload) -> int:
        return PREFETCH_MULTIPLIER
