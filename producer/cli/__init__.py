"""The ``jobbench`` command line: one entry point, one module per subcommand, one-line errors and
named exit codes (``producer.errors``).

This module only assembles: ``COMMANDS`` maps each subcommand to the module that declares it
(its ``register(sub)`` adds the subparser and the function that runs it). A module is imported
by name, only when its command is asked for, so ``jobbench verify --help`` never imports Celery,
the runners or matplotlib; ``jobbench --help`` loads them all to list them. Nothing imports this
module: shared options and validators live in ``producer.cli.options``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from producer import cleanup
from producer.cli.options import Parser, Subparsers
from producer.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    JobbenchError,
)
from producer.untrusted import printable
from shared.settings import SettingsError

# Re-exported for callers of ``main`` (tests, scripts) that check its exit code.
__all__ = ["COMMANDS", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

#: Subcommand -> the module that declares it, in ``jobbench --help`` order.
COMMANDS = {
    "bench": "producer.cli.bench",
    "calibrate": "producer.cli.calibrate",
    "perf": "producer.cli.perf",
    "report": "producer.cli.report",
    "history": "producer.cli.history",
    "compare": "producer.cli.compare",
    "verify": "producer.cli.verify",
    "sweep": "producer.cli.sweep",
    "overhead": "producer.cli.overhead",
    "hosts": "producer.cli.hosts",
    "target": "producer.cli.target",
    "flower": "producer.cli.flower",
    "redis": "producer.cli.redis",
}

EPILOG = """examples:
  jobbench bench                                   # the default run: every model, both workloads
  jobbench bench --workloads io --io-jobs 500 --latency-ms 50
  jobbench bench --models sequential,multiprocessing_pool,celery_prefork --cpu-jobs 2000
  jobbench calibrate                               # harness cost: each model vs bare code
  jobbench verify latest                           # every job of the last run accounted for?
  jobbench history                                 # stored runs; jobbench compare A B judges two
  jobbench sweep granularity                       # job size vs Celery's overhead: the crossover
  jobbench hosts                                   # simulated hosts, one cut mid-run (root)
  jobbench target --port 8080 --latency-ms 160     # the local HTTP target alone
  jobbench flower --port 5555                      # Flower for the Celery app, until Ctrl-C
  jobbench redis status                            # the embedded Redis store, if one runs
run 'jobbench COMMAND --help' for a command's options and examples
"""


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (the first word, the top-level parser having no options of
    its own besides ``--help``), or None."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def build_parser(command: str | None = None) -> Parser:
    """The parser with ``command``'s subparser only, or (None) with every subcommand."""
    parser = Parser(
        prog="jobbench",
        description="Which execution model fits this job? Measure the seed IO and CPU workloads "
        "through in-process models and Celery pools, side by side.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub: Subparsers = parser.add_subparsers(
        dest="command", required=True, parser_class=Parser, metavar="COMMAND"
    )
    for name in [command] if command is not None else COMMANDS:
        register: Callable[[Subparsers], None] = importlib.import_module(COMMANDS[name]).register
        register(sub)
    return parser


def _error(text: str) -> None:
    """One line on stderr, control characters escaped (the text may quote user input)."""
    sys.stderr.write(f"jobbench: {printable(text)}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    # Before anything starts: SIGINT, SIGTERM and SIGHUP unwind through every clean-up.
    cleanup.install()
    try:
        # Loading a command's module reads the environment (option defaults, the Celery app):
        # a malformed variable must already be a one-line error.
        parser = build_parser(_command_of(args_in))
        args = parser.parse_args(args_in)
        code: int = args.handler(args)
        return code
    except cleanup.Interrupted as exc:
        generic = f"interrupted by {exc.signal_name}; every process it started was stopped"
        _error(exc.message or generic)
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted; every process it started was stopped")
        return EXIT_INTERRUPTED
    except JobbenchError as exc:
        _error(f"{exc.label}{exc}")
        return exc.exit_code
    except SettingsError as exc:
        _error(f"error: {exc}")
        return EXIT_USAGE
    finally:
        cleanup.uninstall()
