"""``jobbench sweep``: vary one bench option over values, measure the models at each, draw the
curves (``producer.sweep``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.table import Table

from producer.bench import BenchConfig
from producer.cli.options import (
    Subparsers,
    add_command,
    add_options,
    add_quiet,
    config_from,
    options_of,
)
from producer.console import fmt_s, live_progress, make_console
from producer.errors import EXIT_FAILURE, EXIT_OK
from producer.results import check_writable
from producer.runners.base import RunIncomplete, usable_cpus
from producer.sweep import (
    BUILTINS,
    CSV_FILE,
    MD_FILE,
    SWEEP_FILE,
    Sweep,
    SweepOptions,
    make_spec,
    params,
)
from producer.sweep_results import finding_sentences, fmt_value, series_from_doc
from shared.settings import Settings, env_value
from shared.workloads import request_timeout_s

EPILOG = """examples:
  jobbench sweep granularity            # CPU job size 100 .. 1,000,000 at constant work:
                                        # where Celery prefork comes within 10 % / 5 % of Pool
  jobbench sweep io-concurrency         # 1 .. 200 requests in flight: where IO stops scaling
  jobbench sweep cpu-workers            # 1 .. 2 x cores processes for the pools and prefork
  jobbench sweep granularity --vary cpu_n=1000,100000 --repeat 5
  jobbench sweep --vary batch_size=1,4,16,64 --models celery_prefork --cpu-n 20000 --cpu-jobs 200
  jobbench sweep --vary latency_ms=5,20,80 --models thread_pool,celery_threads --io-jobs 200
  jobbench sweep --vary celery_nodes=1,2,4 --models celery_threads --workloads io

Every bench option is accepted and fixed for every point (a built-in sweep sets some of its own,
see docs/sweeps.md). Run again, a sweep measures only the points missing from OUT/<id>/.
"""

#: The default of a bench option the user left alone: the sweep's own then applies.
UNSET: Any = object()
#: Bench options a sweep does not take: it has its own ``--out``.
NOT_FOR_SWEEPS = frozenset({"out_dir"})


def register(sub: Subparsers) -> None:
    p = add_command(sub, "sweep", "vary one bench option over values and draw the curves", EPILOG)
    p.add_argument(
        "name", nargs="?", metavar="SWEEP", choices=tuple(BUILTINS),
        help=f"a built-in sweep: {', '.join(BUILTINS)} (else give --vary)",
    )  # fmt: skip
    add_options(p, SweepOptions)
    for name, opt, default in options_of(BenchConfig):
        if name in NOT_FOR_SWEEPS:
            continue
        opt.add_to(p, name, default)
        if opt.env is None or env_value(opt.env) is None:
            p.set_defaults(**{name: UNSET})  # only what the user gives replaces the sweep's
    add_quiet(p)
    p.epilog = f"{EPILOG}\nparameters of --vary: {', '.join(params())}\n"
    p.set_defaults(handler=run)


def explicit_bench_options(args: argparse.Namespace) -> dict[str, Any]:
    """The bench options given on the command line or by their variables."""
    return {
        name: getattr(args, name)
        for name, _opt, _default in options_of(BenchConfig)
        if name not in NOT_FOR_SWEEPS and getattr(args, name) is not UNSET
    }


def print_summary(doc: dict[str, Any]) -> None:
    """Median wall time and efficiency per series and value, then the findings in words."""
    console = make_console()
    series = series_from_doc(doc)
    values = sorted({p.value for s in series for p in s.points})
    table = Table(title=f"jobbench sweep {doc['sweep_id']}: median wall time · efficiency")
    table.add_column(f"series \\ {doc['param']['name']}")
    for v in values:
        table.add_column(fmt_value(v), justify="right")
    for s in series:
        by_value = {p.value: p for p in s.points}
        cells = []
        for v in values:
            p = by_value.get(v)
            eff = "" if p is None or p.efficiency is None else f" · {p.efficiency:.0%}"
            cells.append("–" if p is None else f"{fmt_s(p.median_s)}{eff}")
        table.add_row(s.name, *cells)
    console.print(table)
    for sentence in finding_sentences(doc):
        console.print(f"- {sentence.replace('**', '')}", highlight=False)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    request_timeout_s()  # a malformed JOBBENCH_REQUEST_TIMEOUT_S is exit 2 before anything runs
    options = config_from(SweepOptions, args)
    explicit = explicit_bench_options(args)
    spec = make_spec(args.name, options.vary, explicit, usable_cpus())
    check_writable(options.out_dir)
    err = make_console(stderr=True)
    with live_progress(err, enabled=not args.quiet and err.is_terminal, unit="point runs") as bar:
        sweep = Sweep(
            spec, explicit=explicit, out_dir=options.out_dir, sweep_id=options.sweep_id,
            cpu_work=options.cpu_work, settings=settings, progress=bar,
        )  # fmt: skip
        try:
            doc = sweep.run()
        except RunIncomplete as exc:
            sys.stderr.write(
                f"jobbench: jobs missing: {exc} (points measured so far are kept in "
                f"{sweep.dir}; run the sweep again to resume)\n"
            )
            return EXIT_FAILURE
    print_summary(doc)
    for name in (SWEEP_FILE, CSV_FILE, MD_FILE, *doc["charts"]):
        print(f"{name}: {sweep.dir / name}")
    return EXIT_OK
