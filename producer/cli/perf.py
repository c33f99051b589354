"""``jobbench perf``: the performance goals over K independent runs (``make bench-perf``)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from producer.bench import BenchConfig
from producer.cli.options import (
    Subparsers,
    add_command,
    add_options,
    add_quiet,
    bounded,
    choice_list,
    config_from,
    option,
    out_option,
)
from producer.console import live_progress, make_console
from producer.errors import EXIT_OK
from producer.perf import PerfPlan, perf_lines, run_perf
from producer.results import atomic_write, check_writable
from producer.runners import registry
from shared.settings import Settings
from shared.workloads import DEFAULT_CPU_JOBS, DEFAULT_IO_JOBS

EPILOG = """examples:
  jobbench perf                                    # 3 runs x (CPU, IO), 5 repeats each
  jobbench perf --runs 5 --repeat 7
"""

#: The CPU goal's candidates: the baseline (the ideal), the best in-process models (defaults and
#: tuned variants) and the prefork pool with both schedules. The GIL-bound models cannot win CPU.
CPU_MODELS = (*filter(None, [registry.baseline()]), "multiprocessing_pool",
              "multiprocessing_pool_factoring", "process_pool_map", "celery_prefork",
              "celery_prefork_factoring")  # fmt: skip
#: The IO goal's candidates: the in-process models that run every request at once, and every
#: Celery configuration of issue 18 (each judged against the best in-process model).
IO_MODELS = ("threading", "asyncio", "celery_threads", "celery_threads_switch_1ms",
             "celery_threads_prefetch8", "celery_threads_noprefetch", "celery_threads_2x50",
             "celery_solo_asyncio")  # fmt: skip


@dataclass(frozen=True)
class PerfOptions:
    runs: int = option(3, "independent runs (each a bench of its own per workload)",
                       env="JOBBENCH_PERF_RUNS", type=bounded(int, 1, 20))  # fmt: skip
    repeat: int = option(5, "measured repeats per model in each run",
                         env="JOBBENCH_PERF_REPEAT", type=bounded(int, 1, 100))  # fmt: skip
    cpu_models: tuple[str, ...] = option(
        CPU_MODELS, "models of the CPU runs", env="JOBBENCH_PERF_CPU_MODELS",
        type=choice_list(registry.names(), "model"),
    )  # fmt: skip
    io_models: tuple[str, ...] = option(
        IO_MODELS, "models of the IO runs", env="JOBBENCH_PERF_IO_MODELS",
        type=choice_list(registry.names(), "model"),
    )  # fmt: skip
    cpu_jobs: int = option(DEFAULT_CPU_JOBS, "CPU jobs per run", env="JOBBENCH_PERF_CPU_JOBS",
                           type=bounded(int, 1, 1_000_000))  # fmt: skip
    io_jobs: int = option(DEFAULT_IO_JOBS, "IO jobs per run", env="JOBBENCH_PERF_IO_JOBS",
                          type=bounded(int, 1, 100_000))  # fmt: skip
    out_dir: Path = out_option("results directory: every run, and perf-<id>.json")


def register(sub: Subparsers) -> None:
    p = add_command(sub, "perf", "the performance goals judged over K independent runs", EPILOG)
    add_options(p, PerfOptions)
    add_quiet(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    opts = config_from(PerfOptions, args)
    check_writable(opts.out_dir)
    base = BenchConfig(repeat=opts.repeat, cpu_jobs=opts.cpu_jobs, io_jobs=opts.io_jobs,
                       out_dir=opts.out_dir)  # fmt: skip
    plan = PerfPlan(opts.runs, (("cpu", opts.cpu_models), ("io", opts.io_models)), base)
    err = make_console(stderr=True)
    with live_progress(err, enabled=not args.quiet and err.is_terminal) as progress:
        doc = run_perf(plan, Settings.from_env(), progress)
    path = opts.out_dir / f"perf-{doc['perf_id']}.json"
    atomic_write(path, json.dumps(doc, indent=2))
    for line in perf_lines(doc):
        print(line)
    print(f"perf: {path}")
    return EXIT_OK
