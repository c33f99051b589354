"""``celery_prefork`` with a factoring schedule: messages that shrink as the run goes on
(``producer.schedule``) instead of equal batches, so the children finish together on rising-cost
jobs. A named variant (tuned) shown beside ``celery_prefork``, whose automatic batches copy
Pool.map's rule and so its tail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from producer.runners.base import LibraryCall
from producer.runners.celery.models import CeleryPrefork
from producer.schedule import factoring_ranges
from shared.workloads import Workload


class CeleryPreforkFactoring(CeleryPrefork):
    name = "celery_prefork_factoring"
    order = 101
    default = True  # the table shows what scheduling buys beside the automatic batches
    tuned = True
    #: The schedule departs from ``enqueue``'s default (equal messages of ``batch_size``).
    settings = (LibraryCall("producer.runners.celery.publish:enqueue", {"ranges": "factoring"}),)

    def message_ranges(self, workload: Workload, n_jobs: int) -> Sequence[range] | None:
        if self.celery.batch_size is not None:
            return None  # an explicit --batch-size is the user's schedule
        return factoring_ranges(n_jobs, self.concurrency(workload, n_jobs))

    @classmethod
    def notes(cls, row: Mapping[str, Any]) -> list[str]:
        return [*super().notes(row), "factoring"]
