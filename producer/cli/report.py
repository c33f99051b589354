"""``jobbench report [RUN]``: redraw report.md and the charts of a stored run (no re-run)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from producer.cli.options import (
    Subparsers,
    add_command,
    add_options,
    config_from,
    out_option,
    redis_url_option,
)
from producer.errors import EXIT_OK
from producer.history import materialize, resolve_run
from producer.results import check_writable
from producer.services import resolved_redis_url

EPILOG = """examples:
  jobbench report                                  # redraw report.md and charts of results/latest
  jobbench report 20260101T120000Z-ab12cd          # a run id (results/<id>/, else from Redis)
"""


@dataclass(frozen=True)
class ReportOptions:
    out_dir: Path = out_option()
    redis_url: str | None = redis_url_option(
        "Redis keeping every run's summary (a second source besides --out)"
    )


def register(sub: Subparsers) -> None:
    p = add_command(
        sub, "report", "rebuild report.md and the charts of a stored run (no re-run)", EPILOG
    )
    p.add_argument(
        "run", nargs="?", default="latest",
        help="run directory, results.json, run id or 'latest' (default: latest)",
    )  # fmt: skip
    add_options(p, ReportOptions)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # The report draws charts: matplotlib is imported when one is drawn, not for --help.
    from producer.report import build_report

    opts = config_from(ReportOptions, args)
    # A run on disk needs no Redis: only a run id that is not there resolves (and may start) it.
    stored = resolve_run(args.run, opts.out_dir, opts.redis_url or resolved_redis_url)
    run_dir = stored.run_dir
    if run_dir is None:
        check_writable(opts.out_dir)
        redis_url = opts.redis_url or resolved_redis_url()
        run_dir, n_rows = materialize(stored.run_id, opts.out_dir, redis_url)
        gone = "" if n_rows else "; its job records have expired, so no timeline"
        print(f"restored {stored.run_id} from Redis into {run_dir}{gone}", file=sys.stderr)
    check_writable(run_dir)  # the report is written beside the results.json the user named
    for path in build_report(run_dir):
        print(path)
    return EXIT_OK
