"""``jobbench target``: serve the local HTTP target on its own (the compose ``target`` service,
another machine's IO jobs)."""

from __future__ import annotations

import argparse
import socket

from producer.cli.options import Subparsers, add_command, add_options, config_from
from producer.errors import EXIT_OK, ServiceError
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
    config = config_from(TargetConfig, args)
    # uvicorn would log the bind error and exit 3: a taken port (or an address this machine does
    # not have) is the user's to change, one line and exit 2.
    with socket.socket() as probe:
        try:
            probe.bind((config.host, config.port))
        except OSError as exc:
            where = f"{config.host}:{config.port}"
            raise ServiceError(f"cannot serve the target on {where}: {exc.strerror}") from None
    serve(config)
    return EXIT_OK
