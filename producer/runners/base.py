"""The one small interface every execution model implements.

A runner is started (untimed: pools, worker processes), then ``run`` is called once per repeat and
timed by the harness, then stopped. ``run`` must return exactly one ``JobRecord`` per job it was
given (a failed job is an ``error`` record) or raise ``RunIncomplete`` naming the missing ones.
Adding a model is adding one module that defines a ``Runner`` subclass decorated with
``@register``.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared.timings import JobRecord
from shared.workloads import WORKLOADS, ResultMode, Workload


def usable_cpus() -> int:
    """Cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class JobBatch:
    """The jobs of one measured repeat: job ``i`` runs ``workload`` on ``args[i]``."""

    run_id: str
    workload: Workload
    args: Sequence[int | str]
    repeat: int
    mode: ResultMode = "digest"

    @property
    def n_jobs(self) -> int:
        return len(self.args)


@dataclass(frozen=True)
class RunnerOptions:
    """What the command line tells every runner; each runner reads the fields it needs."""

    cpu_count: int = field(default_factory=usable_cpus)
    #: ThreadPoolExecutor's max_workers; None keeps Python's default (min(32, cpus + 4)).
    thread_pool_workers: int | None = None
    #: Pool.map / ProcessPoolExecutor.map chunksize; None picks the Pool.map heuristic.
    chunksize: int | None = None
    #: Where Celery runners find Redis for timings, and their broker.
    redis_url: str = ""
    broker_url: str = ""
    #: Celery: jobs per message; None picks from the job count and the worker concurrency.
    batch_size: int | None = None
    #: Celery: seconds to wait for every job's record before naming the missing ones.
    completion_timeout_s: float = 600.0
    #: Celery: keep task events on (Flower) and do not disable worker heartbeats.
    flower: bool = False
    #: Celery: start no worker; publish to ``<queue_prefix>.<pool>`` and measure the workers that
    #: consume it (docker compose services, other machines).
    external_workers: bool = False
    #: Celery, external workers: the queue of pool P is ``<queue_prefix>.<P>``.
    queue_prefix: str = "jobbench"
    #: Celery, external workers: seconds ``start`` waits for a worker consuming the queue.
    external_wait_s: float = 60.0
    #: Celery: the broker's label in model names (``celery_prefork@amqp``); empty for the run's
    #: own Redis, so those rows keep the plain name older results use.
    broker_label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """What one timed ``run`` produced."""

    records: list[JobRecord]
    params: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


class RunIncomplete(RuntimeError):
    """Some jobs have no record after the deadline; ``missing`` lists their ids."""

    def __init__(self, model: str, missing: Sequence[int], n_jobs: int) -> None:
        self.missing = list(missing)
        shown = ", ".join(map(str, self.missing[:20]))
        more = f" (+{len(self.missing) - 20} more)" if len(self.missing) > 20 else ""
        super().__init__(f"{model}: {len(self.missing)} of {n_jobs} jobs missing: {shown}{more}")


class Runner(abc.ABC):
    """One execution model."""

    name: ClassVar[str]
    #: "in-process" or "celery": only used for grouping in reports.
    family: ClassVar[str] = "in-process"
    workloads: ClassVar[frozenset[Workload]] = frozenset(WORKLOADS)

    def __init__(self, options: RunnerOptions) -> None:
        self.options = options

    @property
    def model(self) -> str:
        """The name results carry: the runner's, with the broker label when there is one."""
        label = self.options.broker_label
        return f"{self.name}{BROKER_SEP}{label}" if label else self.name

    def start(self, workload: Workload) -> dict[str, Any]:
        """Untimed set-up before the repeats of ``workload``; returns facts to report."""
        return {}

    def stop(self) -> None:
        """Release whatever ``start`` acquired. Must be safe to call twice."""

    @abc.abstractmethod
    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        """How many jobs this model can run at once (for the ideal time)."""

    @abc.abstractmethod
    def run(self, batch: JobBatch) -> RunResult:
        """Run every job of ``batch``; timed by the caller."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


RUNNERS: dict[str, type[Runner]] = {}

#: Between a runner's name and its broker label in a model name: ``celery_prefork@amqp``.
BROKER_SEP = "@"


def runner_class(model: str) -> type[Runner]:
    """The runner of a model name, with or without a broker label."""
    return RUNNERS[model.partition(BROKER_SEP)[0]]


def register(cls: type[Runner]) -> type[Runner]:
    if cls.name in RUNNERS:
        raise ValueError(f"duplicate runner name {cls.name!r}")
    RUNNERS[cls.name] = cls
    return cls
