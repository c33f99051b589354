"""``jobbench flower`` (``make flower``): Flower for jobbench's Celery app on 127.0.0.1, in the
foreground with its log on the terminal, until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass

from producer.cli.options import Subparsers, add_command, add_options, bounded, config_from, option
from producer.errors import EXIT_FAILURE, EXIT_OK
from producer.flower import BASIC_AUTH_ENV, DEFAULT_PORT, PORT_ENV, announce, running_flower
from producer.services import resolved_redis_url
from shared.settings import Settings

EPILOG = f"""examples:
  jobbench flower                                  # http://127.0.0.1:{DEFAULT_PORT}/
  {BASIC_AUTH_ENV}=watch:change-me jobbench flower --port 5566
The broker comes from CELERY_BROKER_URL, else REDIS_URL, else redis://127.0.0.1:6379/0 if it
answers, else the embedded Redis store (jobbench redis status).
"""

#: Seconds between two liveness checks of the foreground Flower.
ALIVE_CHECK_INTERVAL_S = 1.0


@dataclass(frozen=True)
class FlowerOptions:
    port: int = option(DEFAULT_PORT, "port on 127.0.0.1", env=PORT_ENV,
                       type=bounded(int, 1, 65535))  # fmt: skip


def register(sub: Subparsers) -> None:
    p = add_command(
        sub, "flower",
        f"run Flower for the Celery app on 127.0.0.1 until Ctrl-C (auth: {BASIC_AUTH_ENV})",
        EPILOG,
    )  # fmt: skip
    add_options(p, FlowerOptions)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    opts = config_from(FlowerOptions, args)
    settings = Settings.from_env()
    # The Redis bench and the workers use, resolved the same way (the embedded store included).
    broker = settings.broker_url or resolved_redis_url(settings)
    with running_flower(broker, port=opts.port, log_to_terminal=True) as flower:
        announce(flower, broker)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it is meant to end
            while flower.alive():
                time.sleep(ALIVE_CHECK_INTERVAL_S)
            sys.stderr.write(f"flower: exited with code {flower.proc.returncode}\n")
            return EXIT_FAILURE
    return EXIT_OK
