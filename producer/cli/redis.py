"""``jobbench redis status|stop``: the embedded Redis store (``producer.embedded_redis``), the
Redis every command falls back to when ``REDIS_URL`` is unset and nothing answers at the default."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from producer import embedded_redis
from producer.cli.options import Subparsers, add_command
from producer.errors import EXIT_OK
from producer.services import redis_reachable
from shared.settings import DEFAULT_REDIS_URL, Settings, redact_url

EPILOG = """examples:
  jobbench redis status      # the embedded Redis: URL, pid, data dir, memory, keys
  jobbench redis stop        # shut it down (its data stays; the next command starts it again)
"""

#: What ``jobbench redis ACTION`` does.
ACTIONS = ("status", "stop")


def register(sub: Subparsers) -> None:
    p = add_command(
        sub, "redis", "the embedded Redis store: status, stop", EPILOG,
        description="jobbench's own Redis, used when REDIS_URL is unset and nothing answers at "
        f"{DEFAULT_REDIS_URL}. Data: ${embedded_redis.DATA_DIR_ENV}/redis, else "
        "$XDG_DATA_HOME/jobbench/redis, else ~/.local/share/jobbench/redis (append-only).",
    )  # fmt: skip
    p.add_argument(
        "action", choices=ACTIONS,
        help="status: URL, pid, data dir, memory, keys; stop: shut it down (its data stays)",
    )  # fmt: skip
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0, also when no embedded Redis runs; a store that cannot be used is a one-line
    ``StoreError`` (exit 2)."""
    action: Callable[[Path, IO[str]], None] = {
        "status": _print_status, "stop": _print_stop,
    }[args.action]  # fmt: skip
    action(embedded_redis.store_dir(), sys.stdout)
    return EXIT_OK


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


def _elsewhere() -> str | None:
    """Why commands would not use the store right now, if they would not (judged the way
    ``producer.services.resolve_redis`` judges it)."""
    settings = Settings.from_env()
    if settings.redis_url_explicit:
        return f"REDIS_URL is set: jobbench uses {redact_url(settings.redis_url)}, not this store"
    if redis_reachable(DEFAULT_REDIS_URL, embedded_redis.PROBE_TIMEOUT_S):
        return f"a Redis answers at {DEFAULT_REDIS_URL}: jobbench uses it, not this store"
    return None


def _print_status(directory: Path, out: IO[str]) -> None:
    found = embedded_redis.status(directory)
    if found is None:
        out.write(f"no embedded Redis running (data dir {directory})\n")
    elif isinstance(found, str):
        out.write(f"no embedded Redis running: {found}; the next command replaces it\n")
    else:
        r = found.record
        out.write(
            f"embedded Redis {r.redis_version} at {r.url}: pid {r.pid}, up {found.uptime_s} s\n"
            f"data dir: {directory} (append-only file {_human_bytes(found.aof_bytes)})\n"
            f"memory: {found.used_memory}, keys: {found.n_keys}\n"
        )
    elsewhere = _elsewhere()
    if elsewhere:
        out.write(f"note: {elsewhere}\n")


def _print_stop(directory: Path, out: IO[str]) -> None:
    record, stopped = embedded_redis.stop(directory)
    if stopped and record is not None:
        out.write(f"stopped the embedded Redis (pid {record.pid}); its data stays in {directory}\n")
    elif record is not None:
        out.write(f"no embedded Redis running; removed the stale record of pid {record.pid}\n")
    else:
        out.write(f"no embedded Redis running (data dir {directory})\n")
