"""The one small interface every execution model implements, and the hooks through which a model
tells the rest of jobbench everything that is particular to it.

A runner is started (untimed: pools, worker processes), then ``run`` is called once per repeat and
timed by the harness, then stopped. ``run`` must return exactly one ``JobRecord`` per job it was
given (a failed job is an ``error`` record) or raise ``RunIncomplete`` naming the missing ones.

Adding a model is adding one module under ``producer/runners/`` that defines a ``Runner``
subclass with a ``name``: ``producer.runners.registry`` finds it without importing it, and the
bench, the table, the report, the charts and the goals read what they need from the class hooks
below (or from the result rows the bench writes with them). Nothing outside a model branches on
its name or its family.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

from shared.settings import Settings, SettingsError
from shared.timings import JobRecord
from shared.workloads import WORKLOADS, ResultMode, Workload


def usable_cpus() -> int:
    """Cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def library_cpu_count() -> int:
    """The worker count ``multiprocessing.Pool()`` and ``ProcessPoolExecutor()`` pick when given
    none: ``os.process_cpu_count()`` from Python 3.13, ``os.cpu_count()`` before."""
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    return max(1, count or 1)


def cores_here(cores: int | None = None) -> int:
    """``cores`` when the cost model asks about another machine, else this machine's."""
    return cores or usable_cpus()


#: Between a model's name and its variant label in a row's model name: ``celery_prefork@amqp``.
VARIANT_SEP = "@"


def base_name(model: str) -> str:
    """``celery_prefork@amqp`` -> ``celery_prefork``: the model a variant row belongs to."""
    return model.partition(VARIANT_SEP)[0]


@dataclass(frozen=True)
class JobBatch:
    """The jobs of one measured repeat: job ``i`` runs ``workload`` on ``args[i]``."""

    run_id: str
    workload: Workload
    #: One argument per job: a sieve size (seed CPU), a URL (seed IO), or a user job's JSON array
    #: (positional) or object (keyword arguments).
    args: Sequence[Any]
    repeat: int
    mode: ResultMode = "digest"

    @property
    def n_jobs(self) -> int:
        return len(self.args)


@dataclass(frozen=True)
class RunnerOptions:
    """What the bench tells every model. A model's own options are a dataclass of its own, read
    from the run's configuration with ``options_for`` (the Celery models' ``CeleryOptions``)."""

    #: Workers of the in-process pools; None keeps the library's default (``os.cpu_count()``
    #: for ``Pool()`` and ``ProcessPoolExecutor()``).
    cpu_count: int | None = None
    #: ThreadPoolExecutor's max_workers; None keeps Python's default (min(32, cpus + 4)).
    thread_pool_workers: int | None = None
    #: Pool.map / ProcessPoolExecutor.map chunksize; None keeps each model's own default.
    chunksize: int | None = None
    #: The run's Redis: where every job record ends up.
    redis_url: str = ""


T = TypeVar("T")


def options_for(config: object, kind: type[T], **overrides: Any) -> T:
    """The options dataclass ``kind`` of a model, built from the same-named fields of the run's
    configuration (``producer.bench.BenchConfig``): an option is named once, and a model reads
    only its own options. Fields the configuration lacks keep their default."""
    if not dataclasses.is_dataclass(kind):
        raise TypeError(f"{kind!r} is not a dataclass")
    names = {f.name for f in dataclasses.fields(kind)}
    values = {n: getattr(config, n) for n in names if hasattr(config, n)}
    return kind(**{**values, **overrides})


@dataclass
class RunResult:
    """What one timed ``run`` produced."""

    #: One per job; an in-process model passes ``jobs.shipped(...)`` (built after the window).
    records: Sequence[JobRecord]
    params: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    #: Durations (s) the model measured per message or job beside the records, by stage (the
    #: Celery fetch path); the row gets their percentiles over every repeat as ``stages_s``.
    stages_s: dict[str, list[float]] = field(default_factory=dict)


#: How a model cuts the jobs into tasks (``CostShape.schedule``): one job per task; Pool.map's
#: contiguous chunks for the shape's lanes; the factoring schedule; or fixed chunks of ``chunk``.
ScheduleKind = Literal["each", "pool_map", "factoring", "fixed"]


@dataclass(frozen=True)
class CostShape:
    """How a model executes a job list, in the cost model's terms (``producer.costmodel``): the
    model's own knowledge, never inferred from its name.

    ``lanes`` jobs (or tasks) run at once, of which ``cpu_lanes`` can execute Python at the same
    time (1 under one GIL, up to the cores for processes); the jobs are cut into tasks by
    ``schedule``; every task pays ``dispatch`` once, serially, before it can start (a thread
    start, a pool's inter-process hand-over, a Celery message), every job ``per_job`` inside its
    lane; ``transfer``: the arguments and results are pickled between processes. ``dispatch``
    and ``per_job`` name machine costs (``producer.machine_costs``); "" is free.
    """

    #: What the lanes are, for the explanation: "thread", "process", "coroutine", "worker slot".
    kind: str
    lanes: int
    cpu_lanes: int
    schedule: ScheduleKind = "each"
    #: Jobs per task with ``schedule="fixed"``.
    chunk: int = 1
    dispatch: str = ""
    per_job: str = ""
    transfer: bool = False
    #: The broker the ``dispatch`` and ``per_job`` costs are measured against (Celery), else "".
    broker_url: str = ""
    #: Whether the ``dispatch`` runs on the lanes' GILs: threads of the dispatcher's own process
    #: (a thread start, an executor hand-over) or a Celery threads/solo node, whose consumer
    #: shares its process with the pool's threads. The GIL bound then counts the dispatch beside
    #: the jobs' CPU, spread over the ``cpu_lanes`` GILs (one per node); a process pool's
    #: dispatcher has a GIL of its own and overlaps its children.
    dispatch_on_lanes: bool = False
    #: A machine cost: the CPU time one ``dispatch`` costs the machine's cores, every process
    #: counted (a process pool's hand-over runs in the producer's threads and in the children).
    #: The cores bound counts it beside the jobs' CPU, spread over ``cores``.
    dispatch_cpu: str = ""
    #: The machine's cores, for the cores bound (0: ``cpu_lanes``).
    cores: int = 0
    #: Whether ``per_job`` *is* each job's CPU in this model, replacing the probe's (asyncio runs
    #: the job through another client, httpx's, whose measured cost per request stands for it).
    per_job_replaces_cpu: bool = False
    #: Whether ``lanes`` follows the core count (library defaults: ``Pool()``, ``-c`` unset), so
    #: the advice can ask what another machine would do.
    follows_cores: bool = False
    #: A machine cost paid once per run, outside the lanes (a Celery run's first message's trip
    #: to a worker and its last result's back to the producer's poll), or "".
    latency: str = ""
    #: Start-up outside the timed window (named in the advice, never added to the prediction):
    #: a machine cost name ("process_pool_start", "celery_start:prefork") or "".
    untimed_start: str = ""


class RunIncomplete(RuntimeError):
    """Some jobs have no record after the deadline; ``missing`` lists their ids."""

    def __init__(self, model: str, missing: Sequence[int], n_jobs: int) -> None:
        self.missing = list(missing)
        shown = ", ".join(map(str, self.missing[:20]))
        more = f" (+{len(self.missing) - 20} more)" if len(self.missing) > 20 else ""
        super().__init__(f"{model}: {len(self.missing)} of {n_jobs} jobs missing: {shown}{more}")


class ModelUnavailable(SettingsError):
    """A model that cannot run here was asked for (bad input: one line, exit 2)."""


@dataclass(frozen=True)
class LibraryCall:
    """A library callable a model configures, and the keyword arguments the model passes it.

    A baseline must be what a user writes: the library's defaults. ``tests/test_model_settings``
    compares ``kwargs`` with the callable's signature; a model passing anything else must say
    ``tuned = True`` (and is then a named variant shown beside the default model).
    """

    #: ``module:qualname`` of the callable, e.g. ``httpx:AsyncClient``.
    target: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: Arguments whose value comes from the command line (``--chunksize``): a user's explicit
    #: choice, not the model's. The default (unset) must still be the library's.
    from_options: frozenset[str] = frozenset()


#: A model's bare reference (``jobbench calibrate``): the few lines a user writes for it, with the
#: library's defaults. Given the workload's job function, the jobs' arguments and a repeat count, it
#: returns each repeat's wall time (s), timing the same window as the harness (pools warmed first).
Reference = Callable[[Callable[[Any], str], list[Any], int], list[float]]


class Runner(abc.ABC):
    """One execution model, and everything jobbench needs to know about it."""

    name: ClassVar[str]
    #: The group label shown in the report's "family" column and used to colour the charts.
    #: Only ever displayed: nothing branches on it.
    family: ClassVar[str] = "in-process"
    #: The kinds of job it runs (``shared.jobspec.JobKind``): the seed's ``io``/``cpu``, a user's
    #: ``sync`` function, an ``async def`` one (on an event loop per worker thread or process).
    workloads: ClassVar[frozenset[str]] = frozenset({*WORKLOADS, "sync", "async"})
    #: Whether it runs an ``async def`` job natively (gathered on its own loop) rather than on an
    #: event loop per worker thread or process.
    native_async: ClassVar[bool] = False
    #: Position in tables and in the default ``--models`` list (lower first).
    order: ClassVar[int] = 1000
    #: Whether a plain ``jobbench bench`` runs it.
    default: ClassVar[bool] = False
    #: The baseline: its median is what speedups are relative to and what the CPU ideal divides
    #: (at most one model should set it).
    baseline: ClassVar[bool] = False
    #: Whether its jobs write their own records to Redis (workers elsewhere); otherwise the bench
    #: stores the records ``run`` returned, after the timed window.
    stores_own_records: ClassVar[bool] = False
    #: Whether the job timeline shows it (one lane of back-to-back jobs says nothing).
    in_timeline: ClassVar[bool] = True
    #: One line for the report's "how much to trust this" when a run has this model; None: none.
    caveat: ClassVar[str | None] = None
    #: The library calls this model makes and the arguments it passes (see ``LibraryCall``).
    settings: ClassVar[tuple[LibraryCall, ...]] = ()
    #: Whether ``settings`` departs from the library defaults on purpose (a named variant).
    tuned: ClassVar[bool] = False

    def __init__(self, options: RunnerOptions) -> None:
        self.options = options

    # --- class hooks: what the rest of jobbench asks a model ---------------------------------

    @classmethod
    def reference(cls) -> Reference | None:
        """Its bare reference, for ``jobbench calibrate``; None: it has none (Celery pools)."""
        return None

    @classmethod
    def available(cls) -> str | None:
        """None when the model can run on this Python and machine, else the reason it cannot."""
        return None

    @classmethod
    def variants(cls, config: object, settings: Settings) -> list[str]:
        """The row names this model runs under for ``config`` (``producer.bench.BenchConfig``):
        itself, or one per variant (``celery_prefork``, ``celery_prefork@amqp``)."""
        return [cls.name]

    @classmethod
    def check(cls, config: object, settings: Settings) -> None:
        """Called once before anything is measured; raise a one-line error for a configuration
        this model cannot run with (an unreachable broker)."""

    @classmethod
    def create(
        cls, model: str, options: RunnerOptions, config: object, settings: Settings
    ) -> Runner:
        """The runner for row ``model`` (one of ``variants``)."""
        return cls(options)

    @classmethod
    def run_metadata(cls, config: object, settings: Settings, redis_url: str) -> dict[str, Any]:
        """Entries this model adds to a run's metadata (``redis_url``: the run's resolved Redis).
        Several models may return the same entry; they must agree on its value."""
        return {}

    @classmethod
    def notes(cls, row: Mapping[str, Any]) -> list[str]:
        """Short notes for the results table, from a summarized result row (the bench stores
        them in the row as ``notes``): what the reader needs beside the wall time."""
        params = row.get("params", {})
        out = [f"chunk {params['chunksize']}"] if params.get("chunksize") else []
        if params.get("schedule"):
            out.append(f"{params['schedule']}: {params.get('chunks', '?')} chunks")
        return out

    @classmethod
    def kwargs_for(cls, target: str, **chosen: Any) -> dict[str, Any]:
        """The keyword arguments the model passes ``target``: its declared ``settings``, with
        the user's explicit choices (values not None) for the arguments taken from options."""
        for call in cls.settings:
            if call.target == target:
                picked = {k: v for k, v in chosen.items() if v is not None}
                unknown = picked.keys() - call.from_options
                if unknown:
                    raise TypeError(f"{cls.name}: {sorted(unknown)} are not options of {target}")
                return {**call.kwargs, **picked}
        raise KeyError(f"{cls.name} declares no settings for {target}")

    # --- the runner ---------------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The name records and rows carry."""
        return self.name

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

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        """How this model would run ``n_jobs`` jobs of ``workload`` (``cores``: on a machine with
        that many cores instead of this one), for the cost model. This default knows only
        ``concurrency``: that many lanes under one GIL, a job per task, no machinery cost."""
        lanes = max(1, self.concurrency(workload, n_jobs))
        return CostShape(kind="lane", lanes=lanes, cpu_lanes=1)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
