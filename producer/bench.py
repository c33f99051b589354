"""Orchestration of one benchmark run: every selected model on every selected workload, in the
same process and on the same machine, with warm-up, repeats in shuffled order and statistics.

The timed window of a repeat is exactly ``runner.run(batch)``; start-up (pools, Celery workers)
is measured separately and reported, never mixed into the wall time.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from producer import cleanup, userjob
from producer.cli.options import (
    AUTO,
    bounded,
    brokers_option,
    choice_list,
    cpu_jobs_option,
    http_url,
    io_jobs_option,
    jitter_ms_option,
    latency_ms_option,
    option,
    out_option,
    queue_prefix,
    repeat_or_auto_option,
    warmup_option,
    workloads_option,
)
from producer.errors import BadInput
from producer.failures import flag_failures, retry_counts
from producer.flower import flower_during_run
from producer.goals import EFFICIENCY_GOALS, bench_goals, run_goals
from producer.goals import MIN_REPEATS as GOAL_MIN_REPEATS
from producer.predict import Predictor, job_calls
from producer.references import freeze_heap
from producer.results import SCHEMA, STATUS_COMPLETE
from producer.runners import registry
from producer.runners.base import (
    JobBatch,
    RunIncomplete,
    Runner,
    RunnerOptions,
    RunResult,
    usable_cpus,
)
from producer.runners.facts import row_facts
from producer.runners.registry import runner_class
from producer.services import (
    DEFAULT_LATENCY_MS,
    ResolvedRedis,
    Target,
    resolve_redis,
    run_target,
)
from producer.stats import (
    AUTO_MAX_REPEATS,
    AUTO_MIN_REPEATS,
    imbalance,
    median_ci,
    percentiles,
    settled,
    summarize,
)
from producer.versions import package_versions
from shared import jobspec, keys
from shared.keys import new_run_id
from shared.settings import Settings, redact_url
from shared.timings import HOSTNAME, JobRecord, TimingStore
from shared.workloads import (
    DEFAULT_CPU_JOBS,
    DEFAULT_IO_JOBS,
    RESULT_MODES,
    WORKLOADS,
    ResultMode,
    Workload,
    cpu_arg,
)
from worker import clock

#: Jobs in a warm-up run (untimed): enough to fault in code paths and connections...
WARMUP_JOBS = 50
#: ...but no more than two per worker (thread, process, Celery slot), and at least this many.
#: A warm-up only has to reach every worker: 50 sequential IO jobs cost 8 s of waiting at the
#: seed's 160 ms, two per worker of a 2-process pool 0.3 s.
WARMUP_MIN_JOBS = 8


def warmup_jobs(concurrency: int, n_jobs: int) -> int:
    """Jobs of one warm-up run of a model with ``concurrency`` workers."""
    return min(n_jobs, WARMUP_JOBS, max(WARMUP_MIN_JOBS, 2 * concurrency))


#: How long job records stay in Redis after a run (s): a week, then Redis reclaims them.
RECORD_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class BenchConfig:
    """One run's configuration; each field is also its ``jobbench bench`` option."""

    #: Default: every model whose ``default`` hook says so, in display order.
    models: tuple[str, ...] = option(
        registry.default_models(), f"comma-separated models ({', '.join(registry.names())})",
        env="JOBBENCH_MODELS", type=choice_list(registry.names(), "model"),
    )  # fmt: skip
    workloads: tuple[Workload, ...] = workloads_option(WORKLOADS, WORKLOADS)
    io_jobs: int = io_jobs_option(DEFAULT_IO_JOBS)
    cpu_jobs: int = cpu_jobs_option(DEFAULT_CPU_JOBS)
    #: One job size for every CPU job (``jobbench sweep`` varies it at constant total work).
    cpu_n: int | None = option(
        None, "CPU jobs all of one size: every job sieves up to N (unset: the seed's "
        "n = 1000 + job index)", env="JOBBENCH_CPU_N", type=bounded(int, 2, 10_000_000),
    )  # fmt: skip
    latency_ms: float = latency_ms_option(
        DEFAULT_LATENCY_MS, "latency of the local HTTP target per request"
    )
    jitter_ms: float = jitter_ms_option("uniform ± jitter of the target")
    url: str | None = option(
        None, "IO target URL instead of the local target (e.g. https://httpbin.org/ip)",
        env="JOBBENCH_URL", type=http_url,
    )  # fmt: skip
    #: A fixed count, or "auto": each model until its median's 95 % interval is within ±3 %
    #: (at least 3, at most 10 repeats), one repeat for a model clearly out of the running, all
    #: stopped once the workload's goals are decided or the budget is spent.
    repeat: int | str = repeat_or_auto_option(
        3, "measured repeats per model and workload, or 'auto': until each median's 95%% "
        "interval is within ±3%% (3-10 repeats; one for a model >= 1.5x the best of its group; "
        "all stop once the workload's goals are decided or --budget-s is spent)",
    )  # fmt: skip
    #: ``--repeat auto``: no round of repeats starts that would end the run's measuring after
    #: this many seconds from its start (every row keeps its first repeats: ``AUTO_MIN_REPEATS``,
    #: ``goals.MIN_REPEATS`` for a row a goal compares); the verdicts then say how many repeats
    #: would decide.
    budget_s: float = option(
        300.0, "with --repeat auto: the run's time budget (s); once a further round of repeats "
        "would overrun it, rows stop (reason 'budget') after their first 3 repeats, 5 for a row a "
        "goal compares (0: at once)",
        env="JOBBENCH_BUDGET_S", type=bounded(float, 0.0, 7 * 86_400.0),
    )  # fmt: skip
    warmup: int = warmup_option("untimed warm-up runs (of a few jobs) per model")
    shuffle: bool = option(
        True, "run models in the given order in every repeat (default: shuffled)",
        flag="--no-shuffle", kind="negated",
    )  # fmt: skip
    seed: int | None = option(None, "seed of the model-order shuffle", env="JOBBENCH_SEED",
                              type=bounded(int, 0, 2**32 - 1))  # fmt: skip
    mode: ResultMode = option(
        "digest", "what each job hands back: a digest, or the full result (primes list, body)",
        flag="--result", env="JOBBENCH_RESULT", choices=RESULT_MODES,
    )  # fmt: skip
    out_dir: Path = out_option("results directory: writes OUT/<run_id>/results.json and OUT/latest")
    thread_pool_workers: int | None = option(
        None, "ThreadPoolExecutor max_workers (unset: Python's default)",
        env="JOBBENCH_THREAD_POOL_WORKERS", type=bounded(int, 1, 10_000),
    )  # fmt: skip
    chunksize: int | None = option(
        None, "Pool.map / ProcessPoolExecutor.map chunksize (unset: Pool.map's heuristic)",
        env="JOBBENCH_CHUNKSIZE", type=bounded(int, 1, 1_000_000),
    )  # fmt: skip
    processes: int | None = option(
        None, "workers of the CPU-parallel models: Pool, ProcessPoolExecutor, "
        "InterpreterPoolExecutor and the CPU Celery workers (unset: the libraries' default, "
        "one per core)", env="JOBBENCH_PROCESSES", type=bounded(int, 1, 1024),
    )  # fmt: skip
    celery_concurrency: int | None = option(
        None, "Celery: -c of every worker (unset: one per core, 100 threads for IO; solo "
        "is always 1)", env="JOBBENCH_CELERY_CONCURRENCY", type=bounded(int, 1, 10_000),
    )  # fmt: skip
    celery_nodes: int = option(
        1, "Celery: worker processes (nodes) per pool, all consuming the pool's one queue",
        env="JOBBENCH_CELERY_NODES", type=bounded(int, 1, 64),
    )  # fmt: skip
    batch_size: int | None = option(
        None, "Celery: jobs per message (unset: chosen from jobs and concurrency)",
        env="JOBBENCH_BATCH_SIZE", type=bounded(int, 1, 100_000),
    )  # fmt: skip
    completion_timeout_s: float = option(
        600.0, "Celery: seconds to wait for every job before naming the missing ones",
        flag="--timeout-s", env="JOBBENCH_TIMEOUT_S", type=bounded(float, 0.1, 86_400.0),
    )  # fmt: skip
    flower: bool = option(False, "keep Flower up during the run and print its URL", kind="flag")
    #: Celery brokers to compare, each "redis" (the run's Redis) or a URL; empty: the one broker
    #: (CELERY_BROKER_URL, else the run's Redis). Every Celery model runs once per broker.
    brokers: tuple[str, ...] = brokers_option(
        (), "compare brokers: each Celery model runs once per entry, 'redis' (the run's Redis) "
        "or a URL; rows are named celery_<pool>@amqp etc.",
    )  # fmt: skip
    #: Celery: measure workers started elsewhere, on queues ``<queue_prefix>.<pool>``.
    external_workers: bool = option(
        False, "Celery: start no worker; publish to QUEUE.<pool> and measure the workers "
        "consuming it (docker compose services, other machines)",
        env="JOBBENCH_EXTERNAL_WORKERS", kind="flag",
    )  # fmt: skip
    queue_prefix: str = option(
        "jobbench", "with --external-workers: queue prefix, pool P is consumed from QUEUE.P",
        flag="--queue", env="JOBBENCH_QUEUE", type=queue_prefix,
    )  # fmt: skip
    external_wait_s: float = option(
        60.0, "with --external-workers: seconds to wait for a worker on each queue",
        env="JOBBENCH_EXTERNAL_WAIT_S", type=bounded(float, 0.1, 3600.0),
    )  # fmt: skip
    allow_failures: bool = option(
        False, "a run whose jobs failed (error records) still exits 0 and becomes latest",
        env="JOBBENCH_ALLOW_FAILURES", kind="flag",
    )  # fmt: skip
    fetch_trace: bool = option(
        False, "Celery: record every message's fetch path (published, received by the worker, "
        "started by its pool) in Redis and show its breakdown per row; off, it costs nothing",
        env="JOBBENCH_FETCH_TRACE", kind="flag",
    )  # fmt: skip
    #: Your job instead of the seed's workloads (``producer.userjob``, ``shared.jobspec``).
    job: str | None = option(
        None, "run your job through every model: MODULE:FUNCTION (imported from the working "
        "directory or PYTHONPATH; seed:io and seed:cpu are the seed's jobs)", env="JOBBENCH_JOB",
    )  # fmt: skip
    args_file: Path | None = option(
        None, "with --job: JSON lines, one job per line: an array of positional arguments or an "
        "object of keyword arguments", flag="--args", env="JOBBENCH_ARGS", type=Path,
    )  # fmt: skip
    args_from: str | None = option(
        None, "with --job: MODULE:FUNCTION returning an iterable of jobs' arguments (bounded by "
        "--jobs)", env="JOBBENCH_ARGS_FROM",
    )  # fmt: skip
    n_jobs: int | None = option(
        None, "with --job: at most N jobs (--args-from takes 10000 when unset)", flag="--jobs",
        env="JOBBENCH_JOBS", type=bounded(int, 1, 1_000_000),
    )  # fmt: skip
    job_timeout_s: float | None = option(
        None, "with --job: seconds one job may take before it is an error record (a thread "
        "that hangs is left running: threads cannot be killed; unset: no limit)",
        env=jobspec.JOB_TIMEOUT_ENV, type=bounded(float, 0.001, 86_400.0),
    )  # fmt: skip
    with_target: bool = option(
        False, "with --job: start the local HTTP target too; its URL is in JOBBENCH_TARGET_URL "
        "for the job (the seed's IO job always starts it)", env="JOBBENCH_WITH_TARGET",
        kind="flag",
    )  # fmt: skip
    no_predict: bool = option(
        False, "skip the probe and the predictions (the cost model, docs/predictions.md)",
        env="JOBBENCH_NO_PREDICT", kind="flag",
    )  # fmt: skip
    remeasure_costs: bool = option(
        False, "measure the machine costs the predictions use again instead of reusing the "
        "cached ones (Redis jobbench:machine_costs, OUT/machine_costs.json; a week)",
        env="JOBBENCH_REMEASURE_COSTS", kind="flag",
    )  # fmt: skip


#: Progress callback: (what is happening, measured repeats done, measured repeats in all).
Progress = Callable[[str, int, int], None]


def collect_metadata(
    config: BenchConfig, settings: Settings, redis: ResolvedRedis | None
) -> dict[str, Any]:
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    if cfg.get("url"):
        cfg["url"] = redact_url(str(cfg["url"]))
    cfg["brokers"] = [redact_url(b) for b in config.brokers]
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "cpu_count": usable_cpus(),
        "packages": package_versions(),
        "settings": {**settings.redacted(),
                     "redis_resolved": redact_url(redis.url) if redis else None,
                     "redis_source": redis.source if redis else None},
        "config": cfg,
        "result_mode": config.mode,
    }  # fmt: skip


def job_args(
    workload: Workload, n_jobs: int, url: str, cpu_n: int | None = None
) -> list[int | str]:
    if workload == "cpu":
        return [cpu_n or cpu_arg(i) for i in range(n_jobs)]
    return [url] * n_jobs


def balance(results: Sequence[RunResult]) -> dict[str, Any]:
    """How evenly each repeat's work spread over its lanes (a lane: one thread of one process on
    one host, so a process of a pool, or a thread of a thread pool): per repeat the tail (first
    lane idle to last job done) and its share of the jobs' window, and the median repeat's busy
    time per lane."""
    per_repeat = []
    for res in results:
        lanes: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
        for r in res.records:
            lanes[f"{r.host}:{r.pid}:{r.thread}"].append((r.started_at_ns, r.finished_at_ns))
        per_repeat.append(imbalance(lanes))
    if not per_repeat:
        return {}
    shares = [b["tail_share"] for b in per_repeat]
    middle = per_repeat[sorted(range(len(shares)), key=shares.__getitem__)[(len(shares) - 1) // 2]]
    busy = list(middle["busy_s"].values())
    return {
        "lanes": middle["lanes"],
        "tail_s": summarize([b["tail_s"] for b in per_repeat]),
        "tail_share": summarize(shares),
        "busy_s_min": min(busy, default=0.0),
        "busy_s_max": max(busy, default=0.0),
    }


def record_stats(
    records: Sequence[JobRecord], clock_shift_ns: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Latency percentiles and how the work spread over hosts, processes and threads.

    ``clock_shift_ns`` (host -> ns, ``worker.clock.relative_offsets_ns``) puts the timestamps of
    other hosts on the producer's clock before a queue wait (enqueued on the producer, started on
    the worker) is taken; durations measured on one host need no shift.
    """
    shift = clock_shift_ns or {}
    per_process: collections.Counter[str] = collections.Counter()
    per_thread: collections.Counter[str] = collections.Counter()
    per_host: collections.Counter[str] = collections.Counter()
    for r in records:
        per_process[f"{r.host}:{r.pid}"] += 1
        per_thread[f"{r.host}:{r.pid}:{r.thread}"] += 1
        per_host[r.host] += 1
    shifted = {h: s for h, s in shift.items() if h in per_host}
    pairs = [(r, shift.get(r.host, 0) / 1e9) for r in records]
    return {
        "queue_wait_s": percentiles([r.queue_wait_s + d for r, d in pairs]),
        "run_s": percentiles([r.run_s for r in records]),
        "end_to_end_s": percentiles([r.end_to_end_s + d for r, d in pairs]),
        "clock_shift_us": {h: round(s / 1000, 1) for h, s in sorted(shifted.items())},
        "jobs_per_process": dict(per_process.most_common()),
        "jobs_per_thread": dict(per_thread.most_common()),
        "jobs_per_host": dict(per_host.most_common()),
        "n_processes": len(per_process),
        "n_threads": len(per_thread),
        "redelivered": sum(1 for r in records if r.attempt > 1),
    }


@dataclass
class ModelRun:
    """Everything measured for one (model, workload)."""

    model: str
    runner: type[Runner]
    workload: Workload
    n_jobs: int
    concurrency: int
    start_info: dict[str, Any] = field(default_factory=dict)
    wall_s: list[float] = field(default_factory=list)
    results: list[RunResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Why it stopped repeating: "fixed" (--repeat N), or with --repeat auto "settled" (its
    #: median's interval is narrow enough), "cap", "out of contention", "outranked", "decided"
    #: (its workload's goals have their verdicts) or "budget".
    stop_reason: str = ""
    #: What its last repeat cost the run (s): the timed window plus checking and storing.
    repeat_cost_s: float = 0.0

    @property
    def family(self) -> str:
        return self.runner.family

    def median_index(self) -> int:
        order = sorted(range(len(self.wall_s)), key=lambda i: self.wall_s[i])
        return order[(len(order) - 1) // 2]


#: ``--repeat auto``: a model whose fastest repeat is slower than this many times the best
#: median of its group (in-process, Celery) cannot be the best of it: one repeat is enough to
#: say so, and more would only lengthen the run.
CONTENTION_FACTOR = 1.5
#: Workloads where the baseline's median is part of a goal (the CPU ideal): it is never cut short.
BASELINE_NEEDED = frozenset(goal.workload for goal in EFFICIENCY_GOALS)


def out_of_contention(run: ModelRun, runs: Iterable[ModelRun], *, keep_baseline: bool) -> bool:
    """Whether ``run`` (measured at least once) is clearly slower than the best of its group."""
    if not run.wall_s or (keep_baseline and run.runner.baseline):
        return False
    best_of_group: dict[str, float] = {}
    for r in runs:
        if r.wall_s:
            median = statistics.median(r.wall_s)
            best_of_group[r.family] = min(median, best_of_group.get(r.family, median))
    return min(run.wall_s) > CONTENTION_FACTOR * best_of_group[run.family]


def outranked(run: ModelRun, runs: Iterable[ModelRun], *, keep_baseline: bool) -> bool:
    """Whether ``run``'s median is known to be slower than its group's leader: after
    ``AUTO_MIN_REPEATS`` each, its median's 95 % interval lies wholly above the leader's.

    A verdict compares the best of each group (the goals: best Celery against best in-process);
    a model that is known not to be the best of its group decides nothing by being known to
    ±3 %, so its repeats stop ("outranked") and the run's time goes to the leaders."""
    if len(run.wall_s) < AUTO_MIN_REPEATS or (keep_baseline and run.runner.baseline):
        return False
    groups: dict[str, list[ModelRun]] = {}
    for r in runs:
        groups.setdefault(r.family, []).append(r)
    peers = [
        r for r in groups.get(run.family, []) if r is not run and len(r.wall_s) >= AUTO_MIN_REPEATS
    ]
    if not peers:
        return False
    leader = min(peers, key=lambda r: statistics.median(r.wall_s))
    mine, best = median_ci(run.wall_s), median_ci(leader.wall_s)
    return mine.low is not None and best.high is not None and mine.low > best.high


def progress_row(run: ModelRun) -> dict[str, Any]:
    """What the goals read of a row still being measured (its repeats so far)."""
    row: dict[str, Any] = {
        "workload": run.workload,
        "model": run.model,
        "family": run.family,
        "repeats": len(run.wall_s),
        "wall_s": {"median": statistics.median(run.wall_s), "values": list(run.wall_s)},
    }
    row.update(row_facts(run.runner, row))
    return row


@dataclass(frozen=True)
class GoalState:
    """The goals judged on one workload from the repeats so far (``--repeat auto``)."""

    targets: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(cls, workload: Workload, runs: Iterable[ModelRun], cores: int) -> GoalState:
        rows = [progress_row(r) for r in runs if r.workload == workload and r.wall_s]
        return cls(bench_goals(rows, cores, workload=workload))

    @property
    def deciders(self) -> frozenset[str]:
        """The rows the goals compare now (the best of each group, the baseline): a verdict
        rests on ``GOAL_MIN_REPEATS`` of each (the goals' own ``MIN_REPEATS``)."""
        return frozenset(
            t[side]["model"]
            for t in self.targets.values()
            for side in ("numerator", "denominator")
            if side in t
        )

    @property
    def decided(self) -> bool:
        """Whether every goal has its verdict, met or missed: more repeats would only narrow
        intervals the verdicts no longer depend on."""
        return bool(self.targets) and all(
            t.get("verdict") in ("met", "missed") for t in self.targets.values()
        )

    def least(self, run: ModelRun) -> int:
        """The repeats ``run`` keeps whatever the budget: more for a row a goal compares."""
        return GOAL_MIN_REPEATS if run.model in self.deciders else AUTO_MIN_REPEATS

    def ripe(self, run: ModelRun) -> bool:
        """Whether ``run`` has the repeats it must keep whatever the budget."""
        return len(run.wall_s) >= self.least(run)


def _ideal_s(
    run: ModelRun, seq_median: float | None, latency_s: float | None, cpus: int
) -> float | None:
    if run.workload == "cpu":
        if seq_median is None:
            return None
        return seq_median / max(1, min(cpus, run.concurrency))
    if latency_s is None:
        return None
    return latency_s * math.ceil(run.n_jobs / max(1, run.concurrency))


def summarize_runs(
    runs: Sequence[ModelRun],
    latency_s: dict[Workload, float | None],
    cpus: int,
    mode: ResultMode,
    clock_shift_ns: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    seq = {
        r.workload: summarize(r.wall_s)["median"] for r in runs if r.runner.baseline and r.wall_s
    }
    out = []
    for run in runs:
        if not run.wall_s:
            continue
        wall = summarize(run.wall_s)
        median = wall["median"]
        rep = run.results[run.median_index()]
        records = [rec for res in run.results for rec in res.records]
        seq_median = seq.get(run.workload)
        ideal = _ideal_s(run, seq_median, latency_s.get(run.workload), cpus)
        extras: dict[str, list[Any]] = collections.defaultdict(list)
        for res in run.results:
            for k, v in res.extra.items():
                extras[k].append(v)
        stages: dict[str, list[float]] = collections.defaultdict(list)
        for res in run.results:
            for k, durations in res.stages_s.items():
                stages[k].extend(durations)
        row: dict[str, Any] = {
            "workload": run.workload,
            "model": run.model,
            "family": run.family,
            "params": {**rep.params, "concurrency": run.concurrency, "result_mode": mode},
            "n_jobs": run.n_jobs,
            "repeats": len(run.wall_s),
            "repeats_stop": run.stop_reason,
            "wall_s": wall,
            "jobs_per_s": run.n_jobs / median if median > 0 else None,
            "speedup_vs_sequential": (seq_median / median) if seq_median and median > 0 else None,
            "ideal_s": ideal,
            "efficiency": (ideal / median) if ideal is not None and median > 0 else None,
            "startup": run.start_info,
            "n_ok": sum(1 for r in records if r.outcome == "ok"),
            "n_error": sum(1 for r in records if r.outcome == "error"),
            "errors": sorted({r.error for r in records if r.error})[:10],
            **retry_counts(records),
            "extra": {k: (summarize(v) if all(isinstance(x, int | float) for x in v) else v)
                      for k, v in extras.items()},
            **record_stats(records, clock_shift_ns),
            "balance": balance(run.results),
        }  # fmt: skip
        if stages:
            row["stages_s"] = {k: percentiles(v, (50, 95)) for k, v in stages.items() if v}
        # What the table, report, charts and goals need to know about the model, stored so a
        # results.json renders on its own.
        row.update(row_facts(run.runner, row))
        out.append(row)
    flag_failures(out)
    return out


class Bench:
    """Runs a ``BenchConfig``; ``progress`` hears what runs now and how many timed repeats of
    all (model, workload) pairs are done."""

    def __init__(self, config: BenchConfig, settings: Settings, progress: Progress | None = None):
        self.config = config
        self.settings = settings
        self._progress = progress
        self.steps_done = 0
        self.run_id = new_run_id()
        self.rng = random.Random(config.seed)
        registry.require_available(config.models)
        #: A user job's arguments (``--job`` with ``--args``/``--args-from``), checked now: bad
        #: input is one line before anything starts.
        self.user_args: list[Any] = []
        if config.job is not None:
            spec = userjob.resolve(config.job)
            if spec.func is None and (config.args_file or config.args_from):
                raise BadInput(f"{config.job} takes its jobs from --io-jobs/--cpu-jobs")
            self.config = config = replace(config, workloads=(spec.label,))
            if spec.func is not None:
                self.user_args = userjob.load_args(
                    spec, config.args_file, config.args_from, config.n_jobs
                )
        self.started_at = datetime.now(UTC).isoformat()
        #: The run's start on ``perf_counter`` (``--budget-s`` counts from it).
        self.clock0 = time.perf_counter()
        #: Every (model, workload) measured so far, in the order started: a failed or interrupted
        #: run's evidence is made of them.
        self.runs: list[ModelRun] = []
        #: True once the services are up and the first model starts: a failure from then on is
        #: a failed run with its evidence, not bad input.
        self.measuring = False
        #: What runs now (the last progress message), for a failed run's evidence.
        self.step = "starting"
        #: The finished run's document, once ``run`` returns it.
        self.doc: dict[str, Any] | None = None
        self._redis: ResolvedRedis | None = None
        self._target_info: Target | None = None
        self._url = ""
        #: The probe and the predictions (``--no-predict``: None).
        self.predictor: Predictor | None = None

    @contextlib.contextmanager
    def _target(self) -> Iterator[Target | None]:
        user = any(jobspec.is_user_job(w) for w in self.config.workloads)
        wanted = "io" in self.config.workloads or (user and self.config.with_target)
        if not wanted or self.config.url:
            yield None
            return
        with run_target(self.config.latency_ms, self.config.jitter_ms) as target:
            yield target

    def run(self) -> dict[str, Any]:
        self.clock0 = time.perf_counter()
        with (
            contextlib.ExitStack() as stack,
            resolve_redis(self.settings) as redis,
            self._target() as target,
            # --flower: up before any worker starts (Flower only sees events sent after it).
            flower_during_run(self.config.flower, self.settings.broker_url or redis.url),
        ):
            self._redis, self._target_info = redis, target
            # What a user job's processes and workers (started from here on) inherit.
            stack.enter_context(userjob.job_environment(self.config, target))
            store = TimingStore.from_url(redis.url)
            self._check_models()
            self._url = url = self.config.url or (target.url if target else "")
            options = RunnerOptions(
                cpu_count=self.config.processes,
                thread_pool_workers=self.config.thread_pool_workers,
                chunksize=self.config.chunksize,
                redis_url=redis.url,
            )
            if not self.config.no_predict:
                self.predictor = Predictor(
                    self.config.out_dir, redis.url, remeasure=self.config.remeasure_costs
                )
            self.measuring = True
            try:
                self._publish_own_clock(store)
                for workload in self.config.workloads:
                    self._run_workload(workload, url, options, store)
                doc = self.document(store)
                if self.predictor is not None:
                    self.predictor.annotate(doc)
                # The performance targets (README "Why Celery is slow by default"), judged
                # within this one run.
                doc["targets"] = run_goals(doc)
                self._keep_summary(store, doc)
            finally:
                self._expire_run_keys(store)
            self.doc = doc
            return doc

    def document(self, store: TimingStore | None) -> dict[str, Any]:
        """The run's results.json document from what was measured so far (``store`` None: Redis
        is gone, the clock facts are left out)."""
        runs, target = self.runs, self._target_info
        latency: dict[Workload, float | None] = {"cpu": None, "io": None}
        if target is not None:
            latency["io"] = target.latency_ms / 1000
        else:
            seq = [r for r in runs if r.workload == "io" and r.runner.baseline and r.wall_s]
            latency["io"] = summarize(seq[0].wall_s)["median"] / seq[0].n_jobs if seq else None
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "status": STATUS_COMPLETE,
            "started_at": self.started_at,
            "finished_at": datetime.now(UTC).isoformat(),
            "metadata": {
                **collect_metadata(self.config, self.settings, self._redis),
                "target": {
                    "url": redact_url(self._url),
                    "local": target is not None,
                    "latency_ms": self.config.latency_ms if target else None,
                    "ideal_latency_source": (
                        "configured" if target else "sequential median / n_jobs"
                    ),
                },
                **self._models_metadata(self.redis_url),
                "clocks": self._clocks_metadata(store, runs) if store else {},
            },
            "results": summarize_runs(
                runs,
                latency,
                usable_cpus(),
                self.config.mode,
                self._clock_shift(store) if store else None,
            ),
        }

    @property
    def redis_url(self) -> str:
        """The run's Redis: the resolved one, else (not resolved yet) the configured one."""
        return self._redis.url if self._redis else self.settings.redis_url

    def evidence(self, status: str, why: str, missing: Sequence[int] = ()) -> dict[str, Any]:
        """The document of a run that did not complete: what was measured (every repeat that
        finished), what is missing and why. Readable by report, history, compare and verify."""
        if self.doc is not None:  # measured to the end (jobs failed, or the writing interrupted)
            doc = dict(self.doc)
        else:
            doc = self.document(None)
            doc["targets"] = {}  # judged on a partial run, a goal would mislead
        doc["status"] = status
        doc["failure"] = {
            "why": why,
            "during": self.step,
            "missing_job_ids": list(missing),
            "incomplete": self._incomplete(),
            "cleanup": list(cleanup.notes),
        }
        return doc

    def _incomplete(self) -> dict[str, str]:
        """``workload/model`` -> how far it got, for every model that did not finish its
        repeats (with ``--repeat auto``: that had not stopped for a reason yet)."""
        runs = {(r.workload, r.model): r for r in self.runs}
        out = {}
        for w in self.config.workloads:
            for n in self.model_names(w):
                run = runs.get((w, n))
                done = len(run.wall_s) if run else 0
                if self.config.repeat == AUTO:
                    if run is None or not run.stop_reason:
                        out[f"{w}/{n}"] = f"{done} repeats, still repeating (auto)"
                elif done < int(self.config.repeat):
                    out[f"{w}/{n}"] = f"{done} of {self.config.repeat} repeats"
        return out

    @property
    def steps_total(self) -> int:
        c = self.config
        pairs = sum(len(self.model_names(w)) for w in c.workloads)
        return pairs * (AUTO_MAX_REPEATS if c.repeat == AUTO else int(c.repeat))

    def model_names(self, workload: Workload) -> list[str]:
        """The rows run on ``workload``, in ``--models`` order, each model expanded into its
        variants (a Celery model once per broker: ``celery_prefork``, ``celery_prefork@amqp``)."""
        names = []
        for model in self.config.models:
            cls = runner_class(model)
            if jobspec.kind(workload) in cls.workloads:
                names.extend(cls.variants(self.config, self.settings))
        return names

    def _runner(self, model: str, options: RunnerOptions) -> Runner:
        return runner_class(model).create(model, options, self.config, self.settings)

    def _check_models(self) -> None:
        """Each model's ``check`` before anything is measured; a check several models inherit
        (the Celery pools' broker check) runs once."""
        checks: dict[object, type[Runner]] = {}
        for model in self.config.models:
            cls = runner_class(model)
            checks.setdefault(getattr(cls.check, "__func__", cls.check), cls)
        for cls in checks.values():
            cls.check(self.config, self.settings)

    def _models_metadata(self, redis_url: str) -> dict[str, Any]:
        """What the models of this run add to its metadata (the Celery brokers)."""
        out: dict[str, Any] = {}
        for cls in dict.fromkeys(runner_class(m) for m in self.config.models):
            out.update(cls.run_metadata(self.config, self.settings, redis_url))
        return out

    # --- clocks (worker.clock) ------------------------------------------------------------------

    def _publish_own_clock(self, store: TimingStore) -> None:
        """Measure and publish the producer's own offset against the run's Redis TIME."""
        clock.publish(store.client, clock.measure_offset(store.client))

    def _clock_shift(self, store: TimingStore) -> dict[str, int]:
        return clock.relative_offsets_ns(clock.load_offsets(store.client), HOSTNAME)

    def _clocks_metadata(self, store: TimingStore, runs: Sequence[ModelRun]) -> dict[str, Any]:
        """Each host's offset and error bound, for the hosts that ran a job of this run."""
        hosts = {HOSTNAME} | {
            rec.host for run in runs for res in run.results for rec in res.records
        }
        offsets = clock.load_offsets(store.client)
        return {
            "producer": HOSTNAME,
            "method": "offset = Redis TIME - local midpoint, fastest of "
            f"{clock.CLOCK_SAMPLES} round trips; error <= RTT/2 + 1 us",
            "hosts": {h: offsets[h].summary() for h in sorted(hosts) if h in offsets},
        }

    def progress(self, message: str) -> None:
        self.step = message
        if self._progress is not None:
            self._progress(message, self.steps_done, self.steps_total)

    def job_rows(self) -> Iterator[tuple[int, JobRecord]]:
        """(repeat, record) for every job of each model's median repeat: the representative run
        that jobs.csv and the timeline chart show."""
        for run in self.runs:
            if run.results:
                i = run.median_index()
                for record in run.results[i].records:
                    yield i, record

    def _keep_summary(self, store: TimingStore, doc: dict[str, Any]) -> None:
        pipe = store.client.pipeline(transaction=False)
        pipe.set(keys.run_summary(self.run_id), json.dumps(doc))
        pipe.zadd(keys.RUNS_INDEX, {self.run_id: time.time()})
        pipe.execute()

    def _run_workload(
        self, workload: Workload, url: str, options: RunnerOptions, store: TimingStore
    ) -> list[ModelRun]:
        if jobspec.is_user_job(workload):
            args: list[Any] = self.user_args
        else:
            n_jobs = self.config.io_jobs if workload == "io" else self.config.cpu_jobs
            args = job_args(workload, n_jobs, url, self.config.cpu_n)
        n_jobs = len(args)
        names = self.model_names(workload)
        if self.predictor is not None:
            self.progress(f"{workload}: probing the jobs")
            self.predictor.probe(workload, *job_calls(workload, args, self.config.mode))
        runners: dict[str, Runner] = {}
        runs: dict[str, ModelRun] = {}
        try:
            for name in names:
                runner = self._runner(name, options)
                runners[name] = runner
                if self.predictor is not None:  # before the model runs: never fitted to it
                    self.progress(f"{workload}: predicting {name}")
                    self.predictor.predict(workload, name, runner, n_jobs)
                self.progress(f"{workload}: starting {name}")
                t0 = time.perf_counter()
                info = runner.start(workload)
                info.setdefault("startup_s", time.perf_counter() - t0)
                runs[name] = ModelRun(
                    model=name, runner=type(runner), workload=workload, n_jobs=n_jobs,
                    concurrency=runner.concurrency(workload, n_jobs), start_info=info,
                )  # fmt: skip
                self.runs.append(runs[name])
                n_warm = warmup_jobs(runs[name].concurrency, n_jobs)
                for w in range(self.config.warmup):
                    warm = JobBatch(self.run_id, workload, args[:n_warm], -1 - w, self.config.mode)
                    runner.run(warm)
            deadline = self._deadline(workload)
            while True:
                goals = self._goals(workload, runs)
                active = [n for n in names if not self._enough(workload, runs[n], runs, goals)]
                if not active:
                    break
                if goals is not None and self._cut([runs[n] for n in active], goals, deadline):
                    continue
                order = list(active)
                if self.config.shuffle:
                    self.rng.shuffle(order)
                for name in order:
                    rep = len(runs[name].wall_s)
                    self.progress(f"{workload}: {name} repeat {rep + 1}")
                    batch = JobBatch(self.run_id, workload, args, rep, self.config.mode)
                    freeze_heap()
                    t0 = time.perf_counter()
                    result = runners[name].run(batch)
                    wall = time.perf_counter() - t0
                    self._check(name, batch, result)
                    runs[name].wall_s.append(wall)
                    self.steps_done += 1
                    runs[name].results.append(result)
                    self._store_records(store, name, batch, result)
                    runs[name].repeat_cost_s = time.perf_counter() - t0
        finally:
            for name, runner in runners.items():
                # One runner that cannot stop cleanly (its broker gone) must not leave the
                # others running: note it for the run's evidence and go on.
                try:
                    runner.stop()
                except Exception as exc:
                    cleanup.note(f"{name}: stop failed: {type(exc).__name__}: {exc}")
        return [runs[n] for n in names if n in runs]

    def _goals(self, workload: Workload, runs: Mapping[str, ModelRun]) -> GoalState | None:
        """The goals of ``workload`` on the repeats so far (``--repeat auto`` only)."""
        if self.config.repeat != AUTO:
            return None
        return GoalState.of(workload, runs.values(), usable_cpus())

    def _enough(
        self,
        workload: Workload,
        run: ModelRun,
        runs: Mapping[str, ModelRun],
        goals: GoalState | None = None,
    ) -> bool:
        """Whether ``run`` needs no more repeats; sets its ``stop_reason``. With ``--repeat
        auto`` a row a goal compares settles only on ``GOAL_MIN_REPEATS`` (``goals``)."""
        if self.config.repeat != AUTO:
            if len(run.wall_s) >= int(self.config.repeat):
                run.stop_reason = "fixed"
            return bool(run.stop_reason)
        if run.stop_reason:  # stopped with the others of its workload ("decided", "budget")
            return True
        if settled(run.wall_s, min_repeats=goals.least(run) if goals else AUTO_MIN_REPEATS):
            run.stop_reason = "cap" if len(run.wall_s) >= AUTO_MAX_REPEATS else "settled"
            return True
        keep_baseline = workload in BASELINE_NEEDED
        if out_of_contention(run, runs.values(), keep_baseline=keep_baseline):
            run.stop_reason = "out of contention"
            return True
        if outranked(run, runs.values(), keep_baseline=keep_baseline):
            run.stop_reason = "outranked"
            return True
        return False

    def _deadline(self, workload: Workload) -> float:
        """When ``workload``'s repeat rounds must end (``perf_counter``) under ``--budget-s``:
        its even share of what is left of the budget, so a workload that ends early (IO) leaves
        its time to the next."""
        later = self.config.workloads[self.config.workloads.index(workload) :]
        left = self.config.budget_s - (time.perf_counter() - self.clock0)
        return time.perf_counter() + max(0.0, left) / len(later)

    @staticmethod
    def _cut(active: Sequence[ModelRun], goals: GoalState, deadline: float) -> bool:
        """``--repeat auto`` between rounds: stop the rows of a workload still repeating
        (``active``) once its ``goals`` are decided ("decided") or the next round would end after
        ``deadline`` ("budget"). A row keeps its first ``AUTO_MIN_REPEATS``, a row a goal compares
        now its first ``GOAL_MIN_REPEATS``. Whether any row stopped."""
        ripe = [r for r in active if goals.ripe(r)]
        if not ripe:
            return False
        if len(ripe) == len(active) and goals.decided:
            reason = "decided"
        elif time.perf_counter() + sum(r.repeat_cost_s for r in active) > deadline:
            reason = "budget"
        else:
            return False
        for run in ripe:
            run.stop_reason = reason
        return True

    def _check(self, name: str, batch: JobBatch, result: RunResult) -> None:
        ids = sorted(r.job_id for r in result.records)
        if ids != list(range(batch.n_jobs)):
            missing = sorted(set(range(batch.n_jobs)) - set(ids))
            raise RunIncomplete(name, missing, batch.n_jobs)

    def _store_records(
        self, store: TimingStore, model: str, batch: JobBatch, result: RunResult
    ) -> None:
        """In-process records go to Redis too (after the timed window), so every model's job
        timings live in one place; models whose workers store their own already wrote them."""
        scope = keys.scope(self.run_id, model, batch.workload, batch.repeat)
        if not runner_class(model).stores_own_records:
            meta = {"n_jobs": batch.n_jobs, "model": model, "workload": batch.workload}
            store.register_scope(self.run_id, scope, meta)
            for i in range(0, len(result.records), 5000):
                store.save(scope, result.records[i : i + 5000])
        expire_scopes(store, self.run_id, [scope])

    def _expire_run_keys(self, store: TimingStore) -> None:
        """Every key of the run (warm-ups and an interrupted run's included) gets the run's TTL;
        best effort, on the way out of a run that may have lost its Redis."""
        with contextlib.suppress(Exception):
            expire_scopes(store, self.run_id)


def expire_scopes(store: TimingStore, run_id: str, scopes: Sequence[str] | None = None) -> None:
    """Give ``RECORD_TTL_S`` to the job keys of ``scopes`` (None: every scope ``run_id``
    registered) and to the run's scope index."""
    if scopes is None:
        members: set[bytes] = store.client.smembers(keys.scopes_index(run_id))  # type: ignore[assignment]
        scopes = [m.decode() for m in members]
    pipe = store.client.pipeline(transaction=False)
    stems = (keys.records, keys.attempts, keys.enqueued, keys.meta, keys.fetch_path)
    for key in (*(stem(s) for s in scopes for stem in stems), keys.scopes_index(run_id)):
        pipe.expire(key, RECORD_TTL_S)
    pipe.execute()
