"""Every command-line option, declared once: flag, environment variable, parser type (with its
bounds), default and help. A leaf module (the standard library and ``shared.settings`` only):
command modules and the config dataclasses they fill import it, it imports none of them.

An option lives on the field of the frozen config dataclass it fills (arq's ``WorkerSettings``
idea): ``add_options(parser, Config)`` generates the parser from the fields, ``config_from(Config,
args)`` builds the config from the parsed arguments, and the field's default is the only place the
default is written. An environment variable gives the default (checked by the same parser type),
the flag overrides it.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeAlias, TypeVar

from producer.errors import EXIT_USAGE
from shared.settings import (
    BROKER_SCHEMES,
    DEFAULT_REDIS_URL,
    REDIS_SCHEMES,
    SettingsError,
    env_flag,
    env_value,
    validate_http_url,
    validate_url,
)

T = TypeVar("T", int, float)
C = TypeVar("C")

#: The key of an ``Option`` in a dataclass field's metadata.
OPTION = "jobbench.option"
#: The results directory every command reads or writes by default.
DEFAULT_OUT = Path("results")
#: Output formats of the commands that print a table (or JSON for machines).
FORMATS = ("table", "json")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[Parser]
else:  # not subscriptable at run time
    Subparsers = argparse._SubParsersAction


def add_command(sub: Subparsers, name: str, help: str, epilog: str, **kw: Any) -> Parser:
    """A subcommand with its examples epilog kept as written."""
    return sub.add_parser(
        name, help=help, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter, **kw
    )


# --- parser types: each turns one string (flag or variable) into a value, or one line why not ---


def _shown(text: str) -> str:
    return text if text.isprintable() else repr(text)  # one line, no terminal escapes


def bounded(kind: Callable[[str], T], lo: T, hi: T) -> Callable[[str], T]:
    def parse(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not lo <= value <= hi:  # also rejects NaN
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {_shown(text)}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _items(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))


def choice_list(allowed: Sequence[str], what: str) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        items = _items(text)
        if not items:
            raise argparse.ArgumentTypeError(f"no {what} given")
        unknown = [_shown(s) for s in items if s not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown)} (choose from {', '.join(allowed)})"
            )
        return items

    return parse


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """A settings validator as a parser type (its one-line message kept)."""

    def parse(text: str) -> str:
        try:
            return check(text)
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


http_url = _checked(validate_http_url)
broker_url = _checked(lambda text: validate_url(text.strip(), BROKER_SCHEMES, "--broker"))
redis_url = _checked(lambda text: validate_url(text, REDIS_SCHEMES, "--redis-url"))


def broker_list(text: str) -> tuple[str, ...]:
    """``redis`` (the run's Redis) or broker URLs, comma-separated."""
    items = _items(text)
    if not items:
        raise argparse.ArgumentTypeError("no broker given")
    return tuple(item if item == "redis" else broker_url(item) for item in items)


#: A queue name prefix: what Celery, Redis keys and RabbitMQ all accept without quoting.
_QUEUE_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


def queue_prefix(text: str) -> str:
    if not _QUEUE_PREFIX.match(text):
        raise argparse.ArgumentTypeError(
            f"queue prefix must be 1-100 of A-Z a-z 0-9 . _ : - (starting alphanumeric): {text!r}"
        )
    return text


def run_ref(text: str) -> str:
    """RUN as given: a run id, a run directory, a results.json or ``latest`` (resolved later)."""
    if not text.strip() or not text.isprintable():
        raise argparse.ArgumentTypeError(f"not a run id or run directory: {text!r}")
    return text


# --- options ---------------------------------------------------------------------------------

Kind = Literal["value", "flag", "negated"]


def _show_default(value: Any) -> str:
    if value is None or value == ():
        return "unset"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


@dataclass(frozen=True)
class Option:
    """One option. ``kind``: ``value`` takes an argument; ``flag`` is ``store_true`` (its variable
    takes 1/0, true/false, ...); ``negated`` is a ``--no-...`` flag that sets its field false."""

    flag: str
    help: str
    env: str | None = None
    type: Callable[[str], Any] | None = None
    choices: Sequence[str] | None = None
    metavar: str | None = None
    kind: Kind = "value"

    def from_env(self, default: Any) -> Any:
        """The value of this option's variable, parsed and checked like the flag's (argparse
        checks flags only, never a default), else ``default``."""
        raw = env_value(self.env) if self.env else None
        if raw is None:
            return default
        try:
            if self.choices is not None and raw not in self.choices:
                raise argparse.ArgumentTypeError(
                    f"invalid choice: {_shown(raw)} (choose from {', '.join(self.choices)})"
                )
            return raw if self.type is None else self.type(raw)
        except argparse.ArgumentTypeError as exc:
            assert self.env is not None
            reason = str(exc).replace(self.flag, self.env)
            where = "" if self.env in reason else f" (from {self.env})"
            raise SettingsError(f"{self.flag}: {reason}{where}") from None

    def add_to(self, parser: argparse.ArgumentParser, dest: str, default: Any) -> None:
        """Add this option to ``parser``, its default taken from the variable when set."""
        if self.kind == "negated":
            parser.add_argument(self.flag, dest=dest, action="store_false", help=self.help)
            return
        if self.kind == "flag":
            on = env_flag(self.env) if self.env else None
            parser.add_argument(
                self.flag, dest=dest, action="store_true",
                default=bool(default) if on is None else on,
                help=f"{self.help} [env {self.env}=1]" if self.env else self.help,
            )  # fmt: skip
            return
        value = default if self.env is None else self.from_env(default)
        note = f"env {self.env}; default {_show_default(default)}" if self.env else None
        note = note or f"default {_show_default(default)}"
        metavar = self.metavar or (None if self.choices else self.flag.lstrip("-").upper())
        typed: dict[str, Any] = {} if self.type is None else {"type": self.type}
        parser.add_argument(
            self.flag, dest=dest, default=value, choices=self.choices,
            metavar=metavar and metavar.replace("-", "_"), help=f"{self.help} [{note}]", **typed,
        )  # fmt: skip


def option(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    env: str | None = None,
    type: Callable[[str], Any] | None = None,
    choices: Sequence[str] | None = None,
    metavar: str | None = None,
    kind: Kind = "value",
) -> Any:
    """A config dataclass field that is also a command-line option (``--field-name`` unless
    ``flag`` says otherwise)."""
    spec = {"flag": flag, "help": help, "env": env, "type": type, "choices": choices,
            "metavar": metavar, "kind": kind}  # fmt: skip
    return dataclasses.field(default=default, metadata={OPTION: spec})


def options_of(config_cls: type[Any]) -> list[tuple[str, Option, Any]]:
    """(field name, option, default) of every option field of ``config_cls``, in field order."""
    out = []
    for f in dataclasses.fields(config_cls):
        spec = f.metadata.get(OPTION)
        if spec is not None:
            flag = spec["flag"] or "--" + f.name.replace("_", "-")
            out.append((f.name, Option(**{**spec, "flag": flag}), f.default))
    return out


def add_options(parser: argparse.ArgumentParser, config_cls: type[Any]) -> None:
    """Add every option field of ``config_cls`` to ``parser``."""
    for name, opt, default in options_of(config_cls):
        opt.add_to(parser, name, default)


def config_from(config_cls: type[C], args: argparse.Namespace, **given: Any) -> C:
    """``config_cls`` from the parsed options (its option fields), plus ``given`` fields."""
    values = {name: getattr(args, name) for name, _opt, _default in options_of(config_cls)}
    return config_cls(**values, **given)


# --- options several commands share: declared here once -----------------------------------------


def results_dir(text: str) -> Path:
    """A results directory: an empty one would silently mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: name a results directory (default: results)")
    if not text.isprintable():
        raise argparse.ArgumentTypeError(f"holds a control character: {text!r}")
    return Path(text)


def out_option(help: str = "results directory holding the <run_id>/ run directories") -> Any:
    return option(DEFAULT_OUT, help, flag="--out", env="JOBBENCH_OUT", type=results_dir)


#: What an unset ``--redis-url``/``REDIS_URL`` means to a command reading runs: the Redis ``bench``
#: would use (``producer.services.resolved_redis_url``), resolved when the command runs.
REDIS_URL_UNSET = f"unset: {DEFAULT_REDIS_URL} if it answers, else jobbench's embedded Redis store"


def redis_url_option(help: str) -> Any:
    """``--redis-url``: None unless given, then resolved at run time as ``bench`` resolves it (no
    default to write here: which Redis that is depends on what answers when the command runs)."""
    return option(None, f"{help} ({REDIS_URL_UNSET})", env="REDIS_URL", type=redis_url)


def format_option() -> Any:
    return option("table", "output: a table or JSON", env="JOBBENCH_FORMAT", choices=FORMATS)


def workloads_option(default: tuple[str, ...], allowed: Sequence[str]) -> Any:
    return option(default, "comma-separated workloads", env="JOBBENCH_WORKLOADS",
                  type=choice_list(allowed, "workload"))  # fmt: skip


def io_jobs_option(default: int) -> Any:
    return option(default, "HTTP requests per IO run", env="JOBBENCH_IO_JOBS",
                  type=bounded(int, 1, 100_000))  # fmt: skip


def cpu_jobs_option(default: int) -> Any:
    return option(default, "CPU jobs: get_prime_numbers(n) for n in range(1000, 1000+N)",
                  env="JOBBENCH_CPU_JOBS", type=bounded(int, 1, 1_000_000))  # fmt: skip


def latency_ms_option(default: float, help: str) -> Any:
    return option(default, help, env="JOBBENCH_LATENCY_MS", type=bounded(float, 0.0, 60_000.0))


def jitter_ms_option(help: str) -> Any:
    return option(0.0, help, env="JOBBENCH_JITTER_MS", type=bounded(float, 0.0, 60_000.0))


def brokers_option(default: tuple[str, ...] | None, help: str) -> Any:
    return option(default, help, env="JOBBENCH_BROKERS", type=broker_list)


def repeat_option(default: int, help: str) -> Any:
    return option(default, help, env="JOBBENCH_REPEAT", type=bounded(int, 1, 100))


#: ``--repeat auto``: repeat each model until its median is known (``producer.stats.settled``).
AUTO = "auto"


def repeat_count(text: str) -> int | str:
    """A repeat count (1-100), or ``auto``."""
    if text.strip().lower() == AUTO:
        return AUTO
    return bounded(int, 1, 100)(text)


def repeat_or_auto_option(default: int | str, help: str) -> Any:
    return option(default, help, env="JOBBENCH_REPEAT", type=repeat_count)


def warmup_option(help: str) -> Any:
    return option(1, help, env="JOBBENCH_WARMUP", type=bounded(int, 0, 10))


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``-q``: no progress display (never a config field: it changes nothing measured)."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
