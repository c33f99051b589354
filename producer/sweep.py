"""``jobbench sweep``: one bench option varied over a list of values, the chosen models measured
by the bench at every value, and the curves that answer the general questions a single table
cannot ("how big must a job be before Celery stops costing me?", "how many threads before IO
stops scaling?", "do more processes help on this box?").

A sweep is a parameter (``Param``), its values, and groups of models (``Group``), each group
with options of its own fixed (``celery_prefork`` once with automatic batches and once with one
job per message). A *point run* is one ``Bench`` run: one value, the models of every group whose
configuration is the same. Each point run is written as an ordinary run directory under
``<out>/<sweep_id>/points/`` with what identifies it (a fingerprint of its whole configuration),
so a sweep started again measures only what is missing: resumable after Ctrl-C, a failure or a
longer list of values. ``sweep.json``, ``sweep.csv`` and ``sweep.md`` are rewritten after every
point run, the charts at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer.bench import Bench, BenchConfig
from producer.cli.options import Option, bounded, option, options_of
from producer.errors import BadInput
from producer.results import RESULTS_FILE, atomic_write, load_results, write_run
from producer.runners import registry
from producer.runners.base import usable_cpus
from producer.sweep_charts import draw_sweep_charts
from producer.sweep_results import (
    ParamKind,
    build_series,
    findings,
    fmt_value,
    write_csv,
    write_markdown,
)
from shared.settings import Settings, redact_url
from shared.workloads import Workload

#: The sweep.json schema this code writes (and reads back when it resumes).
SCHEMA = 1
SWEEP_FILE = "sweep.json"
CSV_FILE = "sweep.csv"
MD_FILE = "sweep.md"
#: Where a sweep keeps its point runs: ordinary run directories (``jobbench report`` reads them).
POINTS_DIR = "points"
#: Where sweeps go by default: beside the runs of ``jobbench bench``, in a folder of their own.
DEFAULT_SWEEPS_DIR = Path("results") / "sweeps"
#: The total work of a job-size sweep (``cpu_n``): the sum of n over a point's jobs. Four sieves
#: of 1,000,000 (~0.5-0.8 s sequential here), so the largest jobs still split evenly over two
#: cores, and 40,000 jobs at n = 100. Celery's fixed cost per run (publishing, waiting for the
#: last record) is a share of this: more work moves the crossover down, and costs time.
DEFAULT_CPU_WORK = 4_000_000
#: The job sizes of ``jobbench sweep granularity``: ~10 µs to ~0.2 s per job here, each size
#: dividing ``DEFAULT_CPU_WORK`` (every point has exactly the same work).
GRANULARITY_SIZES = (100, 250, 1_000, 2_500, 10_000, 25_000, 100_000, 250_000, 1_000_000)
#: A sweep id: a directory name that needs no quoting anywhere.
_SWEEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

#: Progress of a sweep: (what is happening, point runs done, point runs in all).
Progress = Callable[[str, int, int], None]


# --- parameters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """What ``--vary NAME=...`` varies: how a value is parsed (with its bounds) and which bench
    options one value sets."""

    name: str
    help: str
    parse: Callable[[str], Any]
    #: ``job_size``: curves get the crossover; ``concurrency``: where scaling stops.
    kind: ParamKind
    #: The x axis label of the charts.
    axis: str
    #: value, total CPU work -> the ``BenchConfig`` fields it sets.
    apply: Callable[[Any, int], dict[str, Any]]
    #: The fields ``apply`` sets (an option the user gives explicitly must not be one of them).
    sets: tuple[str, ...]
    #: The workloads it means something for (the sweep runs only those unless told otherwise).
    workloads: tuple[Workload, ...] | None = None


def _bench_options() -> dict[str, Option]:
    return {name: opt for name, opt, _default in options_of(BenchConfig)}


def _field_param(
    name: str, kind: ParamKind, axis: str, workloads: tuple[Workload, ...] | None = None
) -> Param:
    """A parameter that is one bench option, parsed and bounded as that option is."""
    opt = _bench_options()[name]
    assert opt.type is not None, name
    return Param(
        name, opt.help, opt.type, kind, axis, lambda v, _work: {name: v}, (name,), workloads
    )


def _cpu_n(n: int, cpu_work: int) -> dict[str, Any]:
    """Jobs of size n, as many as keep jobs x n at the sweep's total work."""
    return {"cpu_n": n, "cpu_jobs": max(1, round(cpu_work / n))}


def _io_concurrency(t: int, _work: int) -> dict[str, Any]:
    """T requests in flight: T jobs, T pool threads, T Celery threads (threading starts one
    thread per job and asyncio gathers them all, so they have T too)."""
    return {"io_jobs": t, "thread_pool_workers": t, "celery_concurrency": t}


def params() -> dict[str, Param]:
    """Every parameter ``--vary`` accepts, by name."""
    found = [
        Param(
            "cpu_n",
            "CPU job size: every job sieves up to n; jobs = round(cpu_work / n), so "
            "the total work (jobs x n) is the same at every point",
            bounded(int, 2, 10_000_000),
            "job_size",
            "sieve size n of every CPU job",
            _cpu_n,
            ("cpu_n", "cpu_jobs"),
            ("cpu",),
        ),
        _field_param("latency_ms", "job_size", "target latency per request (ms)", ("io",)),
        _field_param("batch_size", "other", "Celery jobs per message"),
        _field_param("chunksize", "other", "Pool.map / ProcessPoolExecutor.map chunksize"),
        _field_param("thread_pool_workers", "concurrency", "ThreadPoolExecutor max_workers"),
        _field_param("processes", "concurrency", "processes (workers of the CPU models)"),
        _field_param("celery_concurrency", "concurrency", "Celery -c per worker node"),
        _field_param("celery_nodes", "concurrency", "Celery worker nodes per pool"),
        Param(
            "io_concurrency",
            "IO requests in flight T: T jobs, T ThreadPoolExecutor workers, "
            "T Celery threads (threading and asyncio run all T at once)",
            bounded(int, 1, 10_000),
            "concurrency",
            "IO requests in flight (threads)",
            _io_concurrency,
            ("io_jobs", "thread_pool_workers", "celery_concurrency"),
            ("io",),
        ),
        _field_param("io_jobs", "other", "IO jobs per run", ("io",)),
        _field_param("cpu_jobs", "other", "CPU jobs per run", ("cpu",)),
        _field_param("jitter_ms", "other", "target latency jitter (ms)", ("io",)),
    ]
    return {p.name: p for p in found}


@dataclass(frozen=True)
class Vary:
    """A parsed ``--vary PARAM=V1,V2,...``: the parameter and its values, ascending."""

    param: Param
    values: tuple[Any, ...]


class VaryError(ValueError):
    """``--vary`` cannot be used as given (the one-line reason)."""


def parse_vary(text: str) -> Vary:
    """``PARAM=V1,V2,...``: each value parsed and bounded as the parameter's option is;
    duplicates dropped, ascending (the curves are drawn in that order)."""
    name, sep, raw = text.partition("=")
    name = name.strip().replace("-", "_")
    known = params()
    if not sep or not name:
        raise VaryError(f"expected PARAM=V1,V2,... (PARAM one of {', '.join(known)}), got {text!r}")
    if name not in known:
        raise VaryError(f"unknown sweep parameter {name!r} (choose from {', '.join(known)})")
    param = known[name]
    items = [s.strip() for s in raw.split(",") if s.strip()]
    if not items:
        raise VaryError(f"no values given for {name}")
    values = []
    for item in items:
        try:
            values.append(param.parse(item))
        except Exception as exc:  # argparse.ArgumentTypeError from the option's own parser
            raise VaryError(f"{name}: {exc}") from None
    return Vary(param, tuple(sorted(set(values))))


# --- sweeps -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Models measured together at every point, with some options fixed for them; ``label``
    tells their curves apart from the same models in another group (``batch 1``)."""

    models: tuple[str, ...]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    #: Measured only at values from this one up (None: at every value).
    min_value: float | None = None


@dataclass(frozen=True)
class SweepSpec:
    name: str
    question: str
    vary: Vary
    groups: tuple[Group, ...]
    #: Bench options the sweep fixes (the user's explicit options replace them).
    base: Mapping[str, Any] = field(default_factory=dict)


def baseline_models() -> tuple[str, ...]:
    """The baseline (``Runner.baseline``): a CPU sweep measures it for the ideal and for the time
    one job takes alone."""
    return tuple(n for n in registry.names() if registry.load(n).baseline)


def _granularity(cpus: int) -> SweepSpec:
    return SweepSpec(
        "granularity",
        "How big must a CPU job be before a task queue stops costing more than the best "
        "in-process pool? The same total work cut into jobs from ~10 µs to ~0.2 s.",
        # Steps of x2.5 and x4 (~half a decade), every one dividing the total work exactly.
        Vary(params()["cpu_n"], GRANULARITY_SIZES),
        (
            # The baseline (sequential) gives the ideal and the time of one job alone.
            Group((*baseline_models(), "multiprocessing_pool", "process_pool_map")),
            Group(("celery_prefork",), {"batch_size": None}, "auto batches"),
            # From n = 1,000 up: below, one message per ~10 µs job costs minutes (40,000
            # messages a repeat at n = 100) to show what 1,000 already shows, and the crossover
            # of one job per message lies far above.
            Group(("celery_prefork",), {"batch_size": 1}, "batch 1", min_value=1_000),
        ),
        {"workloads": ("cpu",)},
    )


def _io_concurrency_sweep(cpus: int) -> SweepSpec:
    return SweepSpec(
        "io-concurrency",
        "How many concurrent requests before IO stops scaling? T requests of the target's "
        "latency, all in flight at once: the ideal is one latency whatever T.",
        Vary(params()["io_concurrency"], (1, 2, 5, 10, 20, 50, 100, 200)),
        (Group(("threading", "thread_pool", "asyncio", "celery_threads")),),
        # A point costs ~1 latency per model and repeat: 5 repeats fit the time easily.
        {"workloads": ("io",), "repeat": 5},
    )


def _cpu_workers(cpus: int) -> SweepSpec:
    return SweepSpec(
        "cpu-workers",
        f"Do more worker processes help on this box ({cpus} cores)? The seed's CPU jobs "
        f"(fewer of them) with 1 to {2 * cpus} processes.",
        Vary(params()["processes"], tuple(range(1, 2 * cpus + 1))),
        (
            Group(
                (
                    *baseline_models(),
                    "multiprocessing_pool",
                    "process_pool",
                    "process_pool_map",
                    "celery_prefork",
                )
            ),
        ),
        # The seed's job shape (n = 1000 + i), 3,000 of them: ~1 s sequential here.
        {"workloads": ("cpu",), "cpu_jobs": 3_000},
    )


#: The sweeps a user runs by name: name -> the spec for this machine's usable cores.
BUILTINS: dict[str, Callable[[int], SweepSpec]] = {
    "granularity": _granularity,
    "io-concurrency": _io_concurrency_sweep,
    "cpu-workers": _cpu_workers,
}


def make_spec(
    name: str | None, vary: Vary | None, explicit: Mapping[str, Any], cpus: int
) -> SweepSpec:
    """The sweep to run: a built-in by ``name`` (``vary`` replacing its values or parameter),
    or ``vary`` over ``--models`` (the bench's default models without them). ``BadInput`` for
    a combination that cannot be run."""
    if name is None and vary is None:
        raise BadInput(f"name a sweep ({', '.join(BUILTINS)}) or give --vary PARAM=V1,V2,...")
    if name is not None and name not in BUILTINS:
        raise BadInput(f"unknown sweep {name!r} (choose from {', '.join(BUILTINS)})")
    if name is not None:
        spec = BUILTINS[name](cpus)
        if vary is not None and vary.param.name != spec.vary.param.name:
            # Another parameter: a group's lower bound was a value of the sweep's own one.
            groups = tuple(replace(g, min_value=None) for g in spec.groups)
            spec = replace(spec, vary=vary, groups=groups)
        elif vary is not None:
            spec = replace(spec, vary=vary)
        if "models" in explicit:
            wanted = set(explicit["models"])
            kept = [
                replace(g, models=tuple(m for m in g.models if m in wanted)) for g in spec.groups
            ]
            spec = replace(spec, groups=tuple(g for g in kept if g.models))
            if not spec.groups:
                raise BadInput(
                    f"none of --models is measured by sweep {name}: "
                    f"{', '.join(m for g in BUILTINS[name](cpus).groups for m in g.models)}"
                )
    else:
        assert vary is not None
        models = tuple(explicit.get("models") or BenchConfig().models)
        spec = SweepSpec(f"vary-{vary.param.name}", "", vary, (Group(models),))
    param = spec.vary.param
    flags = {n: o.flag for n, o in _bench_options().items()}
    for fixed in (param.sets, *(tuple(g.overrides) for g in spec.groups)):
        clash = [flags[f] for f in fixed if f in explicit]
        if clash:
            raise BadInput(
                f"{', '.join(clash)}: set by the sweep at every point "
                f"(--vary {param.name} or the sweep's groups); leave it out"
            )
    workloads = explicit.get("workloads") or spec.base.get("workloads") or param.workloads
    if param.workloads and workloads and not set(param.workloads) & set(workloads):
        raise BadInput(
            f"{param.name} varies {'/'.join(param.workloads)} jobs: --workloads must include it"
        )
    return spec


# --- point runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointRun:
    """One bench run of a sweep: one value, the models of the groups sharing a configuration."""

    value: Any
    key: str
    config: BenchConfig
    #: model -> its group label ("" for none).
    labels: Mapping[str, str]
    fingerprint: str


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _shown(field_name: str, value: Any) -> str:
    if field_name == "url" and value:
        return redact_url(str(value))
    if field_name == "brokers":
        return ",".join(redact_url(b) for b in value)
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "auto" if value is None else str(value)


def fingerprint(config: BenchConfig, key: str, settings: Settings) -> str:
    """What makes two point runs the same measurement: the whole configuration (but where the
    sweep lives) and the services. Hashed: the URLs may hold passwords."""
    cfg = {k: _jsonable(v) for k, v in asdict(config).items() if k != "out_dir"}
    ident = {
        "key": key,
        "config": cfg,
        "broker": settings.broker_url or "",
        "redis": settings.redis_url,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Sweep:
    """Runs a ``SweepSpec`` under ``<out_dir>/<sweep_id>``, resuming what is there."""

    def __init__(
        self,
        spec: SweepSpec,
        *,
        explicit: Mapping[str, Any],
        out_dir: Path,
        sweep_id: str | None,
        cpu_work: int,
        settings: Settings,
        progress: Progress | None = None,
    ) -> None:
        self.spec = spec
        self.explicit = dict(explicit)
        self.sweep_id = sweep_id or spec.name
        self.dir = out_dir / self.sweep_id
        self.cpu_work = cpu_work
        self.settings = settings
        self._progress = progress
        if spec.vary.param.name == "cpu_n":
            small = [v for v in spec.vary.values if v > cpu_work]
            if small:
                raise BadInput(
                    f"cpu_n {fmt_value(small[0])} is more than --cpu-work "
                    f"{cpu_work:,}: a point would be less than one job"
                )
        registry.require_available(tuple(m for g in spec.groups for m in g.models))
        self.plan = self._plan()

    # --- what to measure -----------------------------------------------------------------

    def base_config(self) -> BenchConfig:
        param = self.spec.vary.param
        # No probe and no predictions at the points: a sweep compares measured curves, and a
        # probe per point run (up to ~1.5 s a workload) would lengthen every built-in sweep.
        base = {"no_predict": True, **self.spec.base, **self.explicit}
        if "workloads" not in base and param.workloads:
            base["workloads"] = param.workloads
        return replace(BenchConfig(), **base, out_dir=self.dir / POINTS_DIR)

    def _plan(self) -> list[PointRun]:
        """Every point run, value by value; groups whose configurations agree share a run."""
        base = self.base_config()
        param = self.spec.vary.param
        runs: list[PointRun] = []
        for value in self.spec.vary.values:
            by_config: dict[str, tuple[BenchConfig, dict[str, str], dict[str, Any]]] = {}
            for group in self.spec.groups:
                if group.min_value is not None and value < group.min_value:
                    continue
                config = replace(base, **{**group.overrides, **param.apply(value, self.cpu_work)})
                ident = json.dumps(
                    {k: _jsonable(v) for k, v in asdict(config).items() if k != "models"},
                    sort_keys=True,
                    default=str,
                )
                entry = by_config.setdefault(ident, (config, {}, {}))
                for model in group.models:
                    if model in entry[1]:
                        raise BadInput(f"model {model} is in two groups with the same options")
                    entry[1][model] = group.label
                entry[2].update(group.overrides)
            for config, labels, overrides in by_config.values():
                config = replace(config, models=tuple(labels))
                key = ",".join(
                    [
                        f"{param.name}={fmt_value(value)}",
                        *(f"{k}={_shown(k, v)}" for k, v in sorted(overrides.items())),
                    ]
                )
                runs.append(
                    PointRun(value, key, config, labels, fingerprint(config, key, self.settings))
                )
        return runs

    # --- resuming ------------------------------------------------------------------------

    def measured(self) -> dict[str, tuple[dict[str, Any], Path]]:
        """fingerprint -> (results, its file) of every point run already in the sweep
        directory (the newest one when a point was measured twice); unreadable ones skipped."""
        found: dict[str, tuple[dict[str, Any], Path]] = {}
        points = self.dir / POINTS_DIR
        if not points.is_dir():
            return found
        for path in sorted(points.glob(f"*/{RESULTS_FILE}")):
            if path.parent.is_symlink():
                continue  # points/latest: the same run twice
            try:
                doc = load_results(path)
            except BadInput:
                continue  # half-written by a killed writer, or foreign: measured again
            fp = doc.get("sweep", {}).get("fingerprint")
            if isinstance(fp, str):
                old = found.get(fp)
                if old is None or str(doc.get("finished_at")) > str(old[0].get("finished_at")):
                    found[fp] = (doc, path)
        return found

    # --- running -------------------------------------------------------------------------

    def progress(self, message: str, done: int) -> None:
        if self._progress is not None:
            self._progress(message, done, len(self.plan))

    def run(self) -> dict[str, Any]:
        """Measure every point run not measured yet; write sweep.json/.csv/.md after each and
        the charts at the end. Returns the sweep document."""
        started = time.perf_counter()
        started_at = datetime.now(UTC).isoformat()
        self.dir.mkdir(parents=True, exist_ok=True)
        have = self.measured()
        docs: list[tuple[PointRun, dict[str, Any]]] = []
        resumed = 0
        for i, point in enumerate(self.plan):
            if point.fingerprint in have:
                docs.append((point, have[point.fingerprint][0]))
                resumed += 1
                self.progress(f"{point.key}: measured before", i + 1)
                continue
            self.progress(point.key, i)
            docs.append((point, self._measure(point, i)))
            self.write(docs, started_at, time.perf_counter() - started, resumed, charts=False)
            self.progress(point.key, i + 1)
        return self.write(docs, started_at, time.perf_counter() - started, resumed, charts=True)

    def _measure(self, point: PointRun, index: int) -> dict[str, Any]:
        def inner(message: str, _done: int, _total: int) -> None:
            self.progress(f"{point.key}: {message}", index)

        t0 = time.perf_counter()
        bench = Bench(point.config, self.settings, inner)
        doc = bench.run()
        doc["sweep"] = {
            "id": self.sweep_id,
            "key": point.key,
            "param": self.spec.vary.param.name,
            "value": point.value,
            "labels": dict(point.labels),
            "fingerprint": point.fingerprint,
            "elapsed_s": time.perf_counter() - t0,
        }
        write_run(self.dir / POINTS_DIR, doc)
        return doc

    # --- outputs -------------------------------------------------------------------------

    def fixed_text(self) -> str:
        fixed = {**self.spec.base, **self.explicit}
        if self.spec.vary.param.name == "cpu_n":
            fixed["cpu_work"] = self.cpu_work
        return ", ".join(f"{k}={_shown(k, v)}" for k, v in fixed.items()) or "bench defaults"

    def document(
        self,
        docs: Sequence[tuple[PointRun, dict[str, Any]]],
        started_at: str,
        elapsed_s: float,
        resumed: int,
    ) -> dict[str, Any]:
        points = [
            {
                "value": p.value,
                "key": p.key,
                "run_id": d["run_id"],
                "labels": dict(p.labels),
                "elapsed_s": d.get("sweep", {}).get("elapsed_s"),
                "results": d["results"],
            }
            for p, d in docs
        ]
        meta = dict(docs[0][1].get("metadata", {})) if docs else {}
        meta.pop("config", None)  # each point's own lives in its run directory
        cpus = int(meta.get("cpu_count") or usable_cpus())
        series = build_series(points, cpus)
        param = self.spec.vary.param
        return {
            "schema": SCHEMA,
            "kind": "jobbench-sweep",
            "sweep_id": self.sweep_id,
            "name": self.spec.name,
            "question": self.spec.question,
            "param": {
                "name": param.name,
                "help": param.help,
                "kind": param.kind,
                "axis": param.axis,
                "sets": list(param.sets),
            },
            "values": list(self.spec.vary.values),
            "groups": [
                {
                    "models": list(g.models),
                    "label": g.label,
                    "min_value": g.min_value,
                    "overrides": {k: _jsonable(v) for k, v in g.overrides.items()},
                }
                for g in self.spec.groups
            ],
            "cpu_work": self.cpu_work if param.name == "cpu_n" else None,
            "fixed_text": self.fixed_text(),
            "started_at": started_at,
            "finished_at": datetime.now(UTC).isoformat(),
            "elapsed_s": elapsed_s,
            "measure_s": sum(float(p["elapsed_s"] or 0.0) for p in points),
            "n_points_planned": len(self.plan),
            "n_points_measured": len(docs) - resumed,
            "n_points_resumed": resumed,
            "metadata": meta,
            "points": points,
            "series": [asdict(s) for s in series],
            "findings": findings(series, param.kind).as_json(),
        }

    def write(
        self,
        docs: Sequence[tuple[PointRun, dict[str, Any]]],
        started_at: str,
        elapsed_s: float,
        resumed: int,
        *,
        charts: bool,
    ) -> dict[str, Any]:
        doc = self.document(docs, started_at, elapsed_s, resumed)
        drawn = [p.name for p in draw_sweep_charts(doc, self.dir)] if charts else []
        doc["charts"] = drawn
        atomic_write(self.dir / SWEEP_FILE, json.dumps(doc, indent=1) + "\n")
        write_csv(doc, self.dir / CSV_FILE)
        write_markdown(doc, self.dir / MD_FILE, drawn)
        return doc


# --- the sweep's own options --------------------------------------------------------------------


def _vary_option(text: str) -> Vary:
    try:
        return parse_vary(text)
    except VaryError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sweep_id_option(text: str) -> str:
    if not _SWEEP_ID.match(text):
        raise argparse.ArgumentTypeError(
            f"sweep id must be 1-100 of A-Z a-z 0-9 . _ - (starting alphanumeric): {text!r}"
        )
    return text


@dataclass(frozen=True)
class SweepOptions:
    """What ``jobbench sweep`` adds to the bench's options (each field is also its option)."""

    vary: Vary | None = option(
        None,
        "the bench option to vary and its values, e.g. cpu_n=100,1000,10000 or "
        "processes=1,2,4 (with a sweep name: replaces its values)",
        env="JOBBENCH_SWEEP_VARY",
        metavar="PARAM=V1,V2,…",
        type=_vary_option,
    )
    sweep_id: str | None = option(
        None,
        "the sweep's directory under --out; an existing one is resumed (default: the "
        "sweep's name, or vary-PARAM)",
        flag="--id",
        env="JOBBENCH_SWEEP_ID",
        type=_sweep_id_option,
    )
    cpu_work: int = option(
        DEFAULT_CPU_WORK,
        "with --vary cpu_n: the total work of a point, jobs x n",
        env="JOBBENCH_CPU_WORK",
        type=bounded(int, 100, 10_000_000_000),
    )
    out_dir: Path = option(
        DEFAULT_SWEEPS_DIR,
        "sweeps directory: OUT/<sweep_id>/ gets sweep.json, sweep.csv, "
        "sweep.md, the charts and points/ (one run directory per point run)",
        flag="--out",
        env="JOBBENCH_SWEEP_OUT",
        type=Path,
    )
