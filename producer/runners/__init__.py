"""The execution models. Importing this package registers every runner in ``RUNNERS``."""

from producer.runners import (  # noqa: F401  (imported for registration)
    asyncio_gather,
    celery_pools,
    multiprocessing_pool,
    process_pool,
    sequential,
    thread_pool,
    threads,
)
from producer.runners.base import RUNNERS, JobBatch, Runner, RunnerOptions, RunResult

__all__ = ["RUNNERS", "JobBatch", "RunResult", "Runner", "RunnerOptions"]
