"""``celery_solo_asyncio``: batched IO messages whose requests a solo worker runs at once on an
event loop (issue 18's new model).

Celery has no native asyncio tasks; what people write instead is a synchronous task that calls
``asyncio.run`` on a coroutine gathering the message's requests. Here a message carries up to
100 IO jobs (``httpx.AsyncClient()``'s default connection cap, so a bigger message would only
queue its requests inside the client) and the task ``jobbench.run_io_jobs_gathered`` runs them
with ``asyncio.gather`` on one client with the library's defaults, as the in-process ``asyncio``
model does, recording each job on its own. The worker is a solo pool: one message at a time, no
thread pool, so the consumer's fetch is paid once per 100 requests instead of once per request.

The trade-off, stated in the caveat: a message is the unit of delivery, so a worker lost while a
batch runs takes the whole batch with it; late acks bring the message back (at-least-once holds
per message) and every job of it runs again (one record per job, ``attempt`` 2).
"""

from __future__ import annotations

import dataclasses

from producer.runners.base import CostShape
from producer.runners.celery.models import CelerySolo
from shared.workloads import Workload
from worker.app import RUN_IO_GATHERED_TASK

#: Jobs per message when the batch size is automatic: httpx.AsyncClient()'s default
#: ``max_connections``, the most requests one client has in flight.
GATHER_BATCH_SIZE = 100


class CelerySoloAsyncio(CelerySolo):
    """A solo worker whose task gathers its message's requests on an event loop."""

    name = "celery_solo_asyncio"
    order = 125
    #: A row of every plain run since issue 18 measured it the best Celery configuration on IO
    #: (docs/performance.md): beside ``celery_threads``, not instead of it, because a lost worker
    #: takes a whole batch with it, which a user choosing a pool must see.
    default = True
    workloads = frozenset({"io"})
    task_name = RUN_IO_GATHERED_TASK
    caveat = (
        "**`celery_solo_asyncio` batches requests per message**: up to "
        f"{GATHER_BATCH_SIZE} IO jobs run at once in one task, so a worker lost mid-message "
        "loses the whole batch in flight; late acks redeliver the message (at-least-once per "
        "message) and all its jobs run again (one record per job, attempt 2). A solo worker "
        "also answers no control command while a batch runs."
    )

    def batch_size(self, workload: Workload, n_jobs: int) -> int:
        if self.celery.batch_size is not None:
            return self.celery.batch_size
        return max(1, min(n_jobs, GATHER_BATCH_SIZE))

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        """Requests in flight: a message's jobs at once, one message at a time per worker."""
        return max(1, min(n_jobs, self.batch_size(workload, n_jobs)))

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        # A message's requests at once on one event loop, as the in-process ``asyncio`` model
        # runs them: the lanes are the requests in flight, each costing what an
        # httpx.AsyncClient() request measures here (not the probe's ``requests`` GET); the
        # per-message cost is paid once per ``batch_size`` requests and left out (the seed's
        # 100 requests are one message), the run's round trip once.
        shape = super().cost_shape(workload, n_jobs, cores)
        lanes = max(1, self.concurrency(workload, n_jobs))
        return dataclasses.replace(shape, kind="coroutine", lanes=lanes, schedule="each",
                                   dispatch="", per_job="async_request",
                                   per_job_replaces_cpu=True)  # fmt: skip
