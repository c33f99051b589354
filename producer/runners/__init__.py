"""The execution models: one module per model, found by name (``producer.runners.registry``).

Importing this package imports no model: a process-pool child importing ``producer.runners.jobs``
gets the job path alone (``shared.timings``, ``shared.workloads``), never Celery.
"""

from producer.runners.base import JobBatch, Runner, RunnerOptions, RunResult
from producer.runners.registry import RUNNERS

__all__ = ["RUNNERS", "JobBatch", "RunResult", "Runner", "RunnerOptions"]
