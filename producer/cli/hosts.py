"""``jobbench hosts`` (``make bench-hosts``): several simulated hosts, one cut mid-run."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from producer.cli.options import Subparsers, add_command, add_options, add_quiet, config_from
from producer.console import live_progress, make_console
from producer.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from producer.hosts import (
    HostsConfig,
    HostsUnavailable,
    preflight,
    print_hosts,
    remove_leftovers,
    run_hosts,
)
from producer.results import check_writable
from producer.runners.base import RunIncomplete
from producer.table import print_table
from shared.settings import env_value

EPILOG = """examples:
  jobbench hosts                                   # 3 hosts, host3 cut mid-run, Redis + RabbitMQ
  jobbench hosts --hosts 4 --io-jobs 1000 --cut 2 --out /tmp/hosts
  jobbench hosts --brokers redis --cut 0           # no cut, Redis only
  jobbench hosts --cleanup                         # remove what a killed run left behind
  make bench-hosts ARGS="--out /tmp/hosts"
"""


def register(sub: Subparsers) -> None:
    p = add_command(
        sub, "hosts",
        "simulate several hosts (network namespaces) and cut one mid-run (needs root)", EPILOG,
    )  # fmt: skip
    add_options(p, HostsConfig)
    p.add_argument("--cleanup", action="store_true",
                   help="only remove namespaces and links left by killed runs")  # fmt: skip
    add_quiet(p)
    p.set_defaults(handler=run)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every ``finally``: nothing is left behind


def run(args: argparse.Namespace) -> int:
    config = config_from(HostsConfig, args)
    try:
        preflight()
    except HostsUnavailable as exc:
        if (env_value("CI") or "").lower() in {"1", "true", "yes"}:  # under CI: a failure
            raise
        sys.stderr.write(f"jobbench hosts: skipped: {exc}\n")
        return EXIT_OK
    removed = remove_leftovers()
    if removed:
        sys.stderr.write(f"jobbench hosts: removed leftovers of killed runs: {len(removed)}\n")
    if args.cleanup:
        return EXIT_OK
    if config.cut_host > config.n_hosts:
        sys.stderr.write(
            f"jobbench hosts: error: --cut {config.cut_host} > --hosts {config.n_hosts}\n"
        )
        return EXIT_USAGE
    check_writable(config.out_dir)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    for signum, handler in previous.items():
        if handler is signal.SIG_DFL:
            signal.signal(signum, _on_signal)
    err = make_console(stderr=True)
    try:
        with live_progress(err, enabled=not args.quiet and err.is_terminal) as progress:
            doc = run_hosts(config, progress)
    except RunIncomplete as exc:
        sys.stderr.write(f"jobbench hosts: jobs lost: {exc}\n")
        return EXIT_FAILURE
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print_table(doc)
    print_hosts(doc)
    print(f"results: {config.out_dir / str(doc['run_id']) / 'results.json'}")
    return EXIT_OK
