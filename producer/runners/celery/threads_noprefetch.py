"""``celery_threads_noprefetch``: the threads pool with Celery's ``--disable-prefetch``
(Celery >= 5.6, Redis brokers only; issue 18).

Without it the consumer reserves up to ``prefetch multiplier x threads`` messages whether or
not a thread is free; with it, a message is fetched only while fewer requests than threads are
reserved. For the IO seed (100 one-job messages, 100 threads) the two should fetch the same
messages; the difference is the consumer's bookkeeping per fetch, which is what this measures.

Celery ignores the flag on RabbitMQ (with a warning), so this model runs on Redis brokers only:
a ``--brokers`` entry that is not Redis gets no row of this model, and a run with no Redis
broker at all is refused (one line, exit 2) instead of measuring something else.
"""

from __future__ import annotations

from producer.runners.base import VARIANT_SEP, options_for
from producer.runners.celery.models import CeleryOptions, CeleryThreads, broker_labels
from shared.settings import REDIS_SCHEMES, Settings, SettingsError
from shared.workloads import Workload


def _redis_labels(config: object, settings: Settings) -> list[str]:
    """The broker labels of the run whose broker is a Redis ("" is the run's own Redis)."""
    labels = broker_labels(options_for(config, CeleryOptions).brokers, settings)
    return [
        label
        for label, url in labels.items()
        if url is None or url.partition("://")[0] in REDIS_SCHEMES
    ]


class CeleryThreadsNoPrefetch(CeleryThreads):
    """``celery_threads`` with ``--disable-prefetch``."""

    name = "celery_threads_noprefetch"
    order = 113
    default = False
    workloads = frozenset({"io"})

    @classmethod
    def variants(cls, config: object, settings: Settings) -> list[str]:
        return [f"{cls.name}{VARIANT_SEP}{b}" if b else cls.name
                for b in _redis_labels(config, settings)]  # fmt: skip

    @classmethod
    def check(cls, config: object, settings: Settings) -> None:
        if not _redis_labels(config, settings):
            raise SettingsError(
                f"{cls.name} needs a Redis broker: Celery ignores --disable-prefetch on others"
            )
        super().check(config, settings)

    def disable_prefetch(self, workload: Workload) -> bool:
        return True
