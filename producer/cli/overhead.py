"""``jobbench overhead`` (``make bench-overhead``): Celery's machinery measured without the work."""

from __future__ import annotations

import argparse

from producer.cli.options import Subparsers, add_command, add_options, add_quiet, config_from
from producer.console import live_status, make_console
from producer.errors import EXIT_FAILURE, EXIT_OK
from producer.overhead import Overhead, OverheadConfig, print_overhead, write_overhead
from producer.results import check_writable
from shared.settings import Settings

EPILOG = """examples:
  jobbench overhead                                # every section, medians of 5 (~3-4 min)
  jobbench overhead --pools prefork --memory-jobs none --repeat 3
  jobbench overhead --noop-jobs 2000 --noop-messages 100 --memory-jobs 1000,10000
"""


def register(sub: Subparsers) -> None:
    p = add_command(
        sub, "overhead",
        "measure Celery's machinery without the work: enqueue rate, noop throughput per pool, "
        "timing-capture cost, producer memory, Redis round trip", EPILOG,
    )  # fmt: skip
    add_options(p, OverheadConfig)
    p.add_argument(
        "--check", action="store_true",
        help="exit 1 when a target is missed (default: report it, exit 0)",
    )  # fmt: skip
    add_quiet(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    config = config_from(OverheadConfig, args)
    check_writable(config.out_dir)
    err = make_console(stderr=True)
    with live_status(err, enabled=not args.quiet and err.is_terminal) as progress:
        doc = Overhead(config, settings, progress).run()
    path = write_overhead(config.out_dir, doc)
    print_overhead(doc)
    print(f"results: {path}")
    missed = [name for name, t in doc["targets"].items() if t.get("met") is False]
    return EXIT_FAILURE if args.check and missed else EXIT_OK
