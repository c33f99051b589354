"""``jobbench target``: serve the local HTTP target on its own (the compose ``target`` service,
another machine's IO jobs)."""

from __future__ import annotations

import argparse

from producer.cli.options import Subparsers, add_command, add_options, config_from
from producer.errors import EXIT_OK
from producer.services import TargetConfig
from producer.target_server import serve

EPILOG = """examples:
  jobbench target --port 8080 --latency-ms 160     # GET http://127.0.0.1:8080/ip after 160 ms
  jobbench target --host 10.0.0.5 --jitter-ms 20   # for workers on other machines
"""


def register(sub: Subparsers) -> None:
    p = add_command(sub, "target", "serve the local HTTP target (GET /ip after a latency)", EPILOG)
    add_options(p, TargetConfig)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    serve(config_from(TargetConfig, args))
    return EXIT_OK
