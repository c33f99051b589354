"""``jobbench verify RUN``: reconcile every job of a run against its records in Redis."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from producer.cli.options import (
    Subparsers,
    add_command,
    add_options,
    config_from,
    format_option,
    out_option,
    redis_url_option,
    run_ref,
)
from producer.console import make_console
from producer.errors import EXIT_FAILURE, EXIT_OK
from producer.history import resolve_run_id
from producer.results import LATEST
from producer.services import resolved_redis_url
from producer.verify import print_table, verify_run

EPILOG = """examples:
  jobbench verify latest                           # the run in results/latest
  jobbench verify 20260101T120000Z-ab12cd          # a run id (its scopes are read from Redis)
  jobbench verify results/20260101T120000Z-ab12cd --format json
exit codes: 0 every job accounted for, 1 jobs missing, 2 bad input or Redis unreachable
"""


@dataclass(frozen=True)
class VerifyOptions:
    out_dir: Path = out_option("results directory holding the <run_id>/ run directories and latest")
    redis_url: str | None = redis_url_option("Redis holding the run's job records")
    format: str = format_option()


def register(sub: Subparsers) -> None:
    p = add_command(
        sub, "verify",
        "reconcile a run: enqueued, finished, failed, delivered more than once, missing", EPILOG,
        description="Reconcile every job of a run against its timing records in Redis.\n"
        "Exit 0 when every job is accounted for (failed jobs are named, with why),\n"
        "1 when any is missing, 2 on bad input.",
    )  # fmt: skip
    p.add_argument(
        "run", nargs="?", default=LATEST, type=run_ref,
        help="run id, run directory, results.json or 'latest' (default: latest)",
    )  # fmt: skip
    add_options(p, VerifyOptions)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    opts = config_from(VerifyOptions, args)
    run_id = resolve_run_id(args.run, opts.out_dir)  # bad input first: no Redis started for it
    check = verify_run(opts.redis_url or resolved_redis_url(), run_id)
    if opts.format == "json":
        print(json.dumps(check.to_json(), indent=2))
    else:
        print_table(check, make_console())
    return EXIT_OK if check.accounted else EXIT_FAILURE
