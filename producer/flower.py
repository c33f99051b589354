"""Flower, the Celery monitor, as a child process on loopback: ``jobbench bench --flower`` and
``jobbench flower`` (``make flower``).

Flower is started the Celery way, ``python -m celery -A worker.app flower --address=127.0.0.1
--port=N``, so it watches the project's app on the broker the workers use. Basic auth comes from
``FLOWER_BASIC_AUTH`` (``user:password``, several separated by commas), which Flower reads from
its own environment: the password never appears on a command line (``ps`` shows those).

Flower sees what workers *send*: task events and heartbeats. ``worker.app`` leaves task
events off (they cost ~20 % on small tasks); the Celery runners start their workers with ``-E``
and heartbeats only when ``--flower`` is given, and the compose workers always pass ``-E``. So
Flower must be up before the workers start. Without basic auth Flower's REST API answers 401
unless the user opts in with ``FLOWER_UNAUTHENTICATED_API=true``; this module never sets that for
them, because an unauthenticated API also allows cross-origin requests from any web page the
browser opens.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from producer.errors import ServiceError
from producer.processes import free_port, stop_process, wait_until
from shared.settings import SettingsError, env_value, redact_url

#: Environment variable holding ``user:password`` pairs, comma-separated (Flower's own name).
BASIC_AUTH_ENV = "FLOWER_BASIC_AUTH"
#: Environment variable naming the port (Flower's own name, also ``make flower FLOWER_PORT=N``).
PORT_ENV = "FLOWER_PORT"
#: Flower's default port; ``--flower`` falls back to a free port when it is taken.
DEFAULT_PORT = 5555
#: Flower binds here only: it can shut workers down, so it is never exposed beyond this host.
LOOPBACK = "127.0.0.1"
#: Seconds Flower may take to answer ``/healthcheck``: it imports Celery and the app (~1-2 s),
#: more on a loaded CI machine.
START_TIMEOUT_S = 30.0
#: Seconds Flower gets after SIGTERM (it exits at once; its broker connection is the slow part).
STOP_GRACE_S = 5.0
#: Lines of Flower's log quoted when it fails to start.
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class Flower:
    """A running Flower: where to point a browser, and the credentials it asks for."""

    url: str
    port: int
    #: The first ``(user, password)`` of ``FLOWER_BASIC_AUTH``, or None when auth is off.
    auth: tuple[str, str] | None
    #: Where Flower's output goes; None when it shares the caller's terminal.
    log_path: Path | None
    proc: subprocess.Popen[bytes] = field(repr=False, compare=False)

    @property
    def api_url(self) -> str:
        return f"{self.url}api/"

    def alive(self) -> bool:
        return self.proc.poll() is None


def parse_basic_auth(raw: str | None) -> tuple[tuple[str, str], ...]:
    """``user:password[,user2:password2]`` as pairs; empty or unset means no auth.

    Flower itself would treat an empty ``FLOWER_BASIC_AUTH`` as one empty credential and lock
    everybody out, so an empty value is dropped before Flower sees it.
    """
    pairs: list[tuple[str, str]] = []
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        user, sep, password = item.partition(":")
        if not sep or not user or not password:
            raise SettingsError(f"{BASIC_AUTH_ENV} must be user:password[,user:password]")
        pairs.append((user, password))
    return tuple(pairs)


def port_from_env(env: Mapping[str, str] | None = None) -> int | None:
    """``FLOWER_PORT`` as a port number, or None when unset."""
    raw = env_value(PORT_ENV, env)
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SettingsError(f"{PORT_ENV} must be a port number (1-65535): got {raw!r}")
    return int(raw)


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def flower_command(port: int, address: str = LOOPBACK) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "worker.app", "flower",
        f"--address={address}", f"--port={port}",
    ]  # fmt: skip


def flower_env(broker_url: str | None, basic_auth: str | None) -> dict[str, str]:
    """The child's environment: the broker the workers use, and basic auth only when set."""
    env = dict(os.environ)
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    env.pop(BASIC_AUTH_ENV, None)
    if basic_auth:
        env[BASIC_AUTH_ENV] = basic_auth
    # Flower reads every FLOWER_* variable as an option; the command line sets the port.
    env.pop(PORT_ENV, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])


@contextlib.contextmanager
def running_flower(
    broker_url: str | None = None,
    *,
    port: int | None = None,
    basic_auth: str | None = None,
    log_to_terminal: bool = False,
    start_timeout_s: float = START_TIMEOUT_S,
) -> Iterator[Flower]:
    """Start Flower on 127.0.0.1 and yield it once ``/healthcheck`` answers; stop it on exit.

    ``port`` None means ``FLOWER_PORT``, else 5555, else (taken) a free port. ``basic_auth``
    None means ``FLOWER_BASIC_AUTH`` from the environment. Flower's log goes to a temporary
    file, quoted if it fails to start and deleted after a clean stop, unless
    ``log_to_terminal``.
    """
    raw_auth = env_value(BASIC_AUTH_ENV) if basic_auth is None else basic_auth
    pairs = parse_basic_auth(raw_auth)
    auth_value = ",".join(f"{u}:{p}" for u, p in pairs) or None
    if port is None:
        port = port_from_env()
        if port is None:
            port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()
    if not port_is_free(port):
        raise ServiceError(f"cannot start Flower: port {port} on {LOOPBACK} is in use")
    log_path: Path | None = None
    if not log_to_terminal:
        fd, name = tempfile.mkstemp(prefix="jobbench-flower-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    url = f"http://{LOOPBACK}:{port}/"
    with contextlib.ExitStack() as files:
        log = files.enter_context(open(log_path, "ab")) if log_path else None
        proc = subprocess.Popen(
            flower_command(port),
            env=flower_env(broker_url, auth_value),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            start_new_session=True,  # the terminal's Ctrl-C goes to jobbench, which stops it
        )
    failed = True
    try:
        try:
            # /healthcheck is the one page Flower serves without auth.
            wait_until(
                lambda: httpx.get(f"{url}healthcheck", timeout=1).text == "OK",
                start_timeout_s, "Flower", proc,
            )  # fmt: skip
        except ServiceError as exc:
            tail = f"; its log:\n{_log_tail(log_path)}" if log_path else ""
            raise ServiceError(f"{exc}{tail}") from None
        auth = pairs[0] if pairs else None
        yield Flower(url=url, port=port, auth=auth, log_path=log_path, proc=proc)
        failed = False
    finally:
        stop_process(proc, STOP_GRACE_S)
        if log_path is not None and not failed:
            log_path.unlink(missing_ok=True)


def announce(flower: Flower, broker_url: str | None) -> None:
    auth = "basic auth on" if flower.auth else f"no auth: set {BASIC_AUTH_ENV}=user:password"
    broker = f", broker {redact_url(broker_url)}" if broker_url else ""
    sys.stderr.write(f"flower: {flower.url} ({auth}{broker})\n")
    sys.stderr.flush()


@contextlib.contextmanager
def flower_during_run(enabled: bool, broker_url: str) -> Iterator[Flower | None]:
    """``jobbench bench --flower``: Flower up for the whole run, its URL printed on stderr."""
    if not enabled:
        yield None
        return
    with running_flower(broker_url) as flower:
        announce(flower, broker_url)
        yield flower
