"""The embedded Redis store for real: started on demand, found again, a stale record replaced, two
commands sharing one server, every bad input one line and exit 2, ``jobbench redis status|stop``.

The store's functions run here against private data directories; the commands run as a user
runs them, in a network namespace with only loopback (nothing answers at 127.0.0.1:6379 there,
so ``jobbench`` resolves to the embedded store as on a fresh machine)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from producer import embedded_redis as er
from producer.cli import EXIT_OK, EXIT_USAGE, main
from producer.errors import JobbenchError
from producer.services import embedded_redis, embedded_redis_binary
from tests.conftest import need

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
JOBBENCH = [sys.executable, "-m", "producer.cli"]


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    """A private store directory; whatever server works in it is stopped at the end."""
    directory = tmp_path / "data" / "redis"
    yield directory
    for pid in er.servers_on(directory):
        os.kill(pid, signal.SIGCONT)  # a test may leave it stopped (SIGSTOP)
    with contextlib.suppress(er.StoreError):  # not reachable from here: another namespace's
        er.stop(directory)
    for pid in er.servers_on(directory):
        os.kill(pid, signal.SIGTERM)  # Redis's own clean shutdown
        wait_gone(pid)


def start(directory: Path) -> er.Store:
    return er.ensure_store(embedded_redis_binary(), directory)


def client(store: er.Store) -> redis.Redis:
    return redis.Redis.from_url(store.url, socket_timeout=5)


def wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while er.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not er.alive(pid)


# --- where the store lives -------------------------------------------------------------------


def test_store_dir_follows_jobbench_data_dir_then_xdg_then_home() -> None:
    assert er.store_dir({"JOBBENCH_DATA_DIR": "/d", "XDG_DATA_HOME": "/x"}) == Path("/d/redis")
    assert er.store_dir({"XDG_DATA_HOME": "/x", "HOME": "/h"}) == Path("/x/jobbench/redis")
    home = Path("/h/.local/share/jobbench/redis")
    assert er.store_dir({"HOME": "/h"}) == home
    assert er.store_dir({"XDG_DATA_HOME": "relative", "HOME": "/h"}) == home  # the XDG rule
    with pytest.raises(er.StoreError, match="must be an absolute path"):
        er.store_dir({"JOBBENCH_DATA_DIR": "results/data"})
    with pytest.raises(er.StoreError, match="JOBBENCH_REDIS_PORT must be a port"):
        er.configured_port({"JOBBENCH_REDIS_PORT": "70000"})


# --- start, find again, persist --------------------------------------------------------------


def test_started_once_found_again_and_its_data_survives_stop_and_restart(store_dir: Path) -> None:
    first = start(store_dir)
    assert first.started and first.record.dir == str(store_dir)
    again = start(store_dir)
    assert not again.started and again.record == first.record
    assert er.read_record(store_dir) == first.record
    c = client(first)
    c.set("jobbench:probe", "kept")
    c.close()
    record, stopped = er.stop(store_dir)
    assert stopped and record == first.record and er.read_record(store_dir) is None
    wait_gone(first.record.pid)
    restarted = start(store_dir)
    assert restarted.started and restarted.record.pid != first.record.pid
    c = client(restarted)
    assert c.get("jobbench:probe") == b"kept"  # from the append-only file
    assert c.config_get("appendonly")["appendonly"] == "yes"
    assert c.config_get("appendfsync")["appendfsync"] == "everysec"
    c.close()


def test_a_killed_server_leaves_a_stale_record_that_is_replaced_with_the_data_kept(
    store_dir: Path,
) -> None:
    first = start(store_dir)
    c = client(first)
    c.set("jobbench:before-the-kill", "1")
    c.close()
    os.kill(first.record.pid, signal.SIGKILL)
    wait_gone(first.record.pid)
    assert isinstance(er.status(store_dir), str)  # stale, and said so
    second = start(store_dir)
    assert second.started and second.record.pid != first.record.pid
    assert second.record.port == first.record.port  # the same URL while the port is free
    assert er.read_record(store_dir) == second.record
    c = client(second)
    assert c.get("jobbench:before-the-kill") == b"1"  # written to the file before the kill
    c.close()


def test_a_record_pointing_at_another_redis_is_never_used(store_dir: Path) -> None:
    """The record's port now answers, but as another server (a reused port): replaced."""
    with embedded_redis() as other_url:
        other = redis.Redis.from_url(other_url)
        other_pid = int(other.info("server")["process_id"])
        other.close()
        port = int(other_url.rsplit(":", 1)[1].split("/")[0])
        store_dir.mkdir(parents=True)
        fake = er.ServerRecord(
            pid=other_pid, port=port, run_id="0" * 40, dir=str(store_dir),
            started_at="2026-01-01T00:00:00+00:00", redis_version="6.2.14",
        )  # fmt: skip
        (store_dir / er.RECORD_FILE).write_text(json.dumps(fake.__dict__))
        store = start(store_dir)
        assert store.started and store.url != other_url
        assert client(store).config_get("dir")["dir"] == str(store_dir)


def test_a_malformed_record_is_replaced(store_dir: Path) -> None:
    store_dir.mkdir(parents=True)
    (store_dir / er.RECORD_FILE).write_text("{not json")
    assert "malformed" in str(er.status(store_dir))
    store = start(store_dir)
    assert store.started and er.read_record(store_dir) == store.record


def test_two_commands_at_once_share_one_server(store_dir: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from producer import embedded_redis as er; "
        "from producer.services import embedded_redis_binary; "
        "s = er.ensure_store(embedded_redis_binary(), Path(sys.argv[1])); "
        "print(s.url, s.record.pid, s.started)"
    )
    argv = [sys.executable, "-c", script, str(store_dir)]
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({(url, pid) for url, pid, _ in outs}) == 1, outs
    assert sorted(started for _, _, started in outs) == ["False", "False", "False", "True"]
    assert len(er.servers_on(store_dir)) == 1


def test_ctrl_c_of_the_command_that_started_it_does_not_stop_it(store_dir: Path) -> None:
    script = (
        "import sys, time; from pathlib import Path; from producer import embedded_redis as er; "
        "from producer.services import embedded_redis_binary; "
        "s = er.ensure_store(embedded_redis_binary(), Path(sys.argv[1])); "
        "print(s.record.pid, flush=True); time.sleep(60)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(store_dir)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal's whole process group
        proc.wait(10)
    assert proc.returncode != 0 and er.alive(pid)
    record = er.read_record(store_dir)
    assert record is not None and record.pid == pid
    assert redis.Redis.from_url(record.url).ping()


# --- bad input: one line naming the path, never another store --------------------------------


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_an_unwritable_data_dir_is_one_line_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(er.StoreError) as info:
        start(blocker / "redis")
    message = one_line(info)
    assert "not writable" in message and str(blocker / "redis") in message
    assert isinstance(info.value, JobbenchError)  # every jobbench command: one line, exit 2
    assert info.value.exit_code == EXIT_USAGE


def test_a_corrupted_append_only_file_is_one_line_naming_it(store_dir: Path) -> None:
    store_dir.mkdir(parents=True)
    aof = store_dir / er.AOF_FILE
    aof.write_bytes(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\ngarbage\r\n*1\r\n$4\r\nPING\r\n")
    with pytest.raises(er.StoreError) as info:
        start(store_dir)
    message = one_line(info)
    assert str(aof) in message and "append only file" in message.lower()
    assert er.read_record(store_dir) is None and not er.servers_on(store_dir)
    assert aof.read_bytes().startswith(b"*2\r\n$6\r\nSELECT")  # left as it was, for repair


def test_a_configured_port_taken_by_something_else_is_one_line(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        monkeypatch.setenv(er.PORT_ENV, str(port))
        with pytest.raises(er.StoreError) as info:
            start(store_dir)
    message = one_line(info)
    assert f"127.0.0.1:{port}" in message and "taken by another process" in message
    assert str(store_dir) in message and not er.servers_on(store_dir)


def test_a_live_server_that_stopped_answering_gets_no_second_server(store_dir: Path) -> None:
    """Its record is stale in appearance, but a redis-server still works on the same file: a
    second one would corrupt it. One line naming it, until the user stops it."""
    first = start(store_dir)
    os.kill(first.record.pid, signal.SIGSTOP)
    try:
        with pytest.raises(er.StoreError) as info:
            start(store_dir)
        message = one_line(info)
        assert f"pid {first.record.pid}" in message and str(store_dir) in message
        assert er.servers_on(store_dir) == [first.record.pid]
        for look in (er.status, er.stop):  # neither calls it stale nor forgets its record
            with pytest.raises(er.StoreError, match=f"pid {first.record.pid}"):
                look(store_dir)
        assert er.read_record(store_dir) == first.record
    finally:
        os.kill(first.record.pid, signal.SIGCONT)


# --- ``jobbench redis status|stop`` ------------------------------------------------------------


def test_redis_status_and_stop(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(er.DATA_DIR_ENV, str(store_dir.parent))
    monkeypatch.setenv("REDIS_URL", "redis://:s3cret@10.0.0.5:6379/0")
    for action in ("status", "stop"):
        assert main(["redis", action]) == EXIT_OK
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == f"no embedded Redis running (data dir {store_dir})"
    assert lines[1:] == []  # stop says nothing about other servers
    assert main(["redis", "status"]) == EXIT_OK
    note = capsys.readouterr().out.splitlines()[1]
    assert "REDIS_URL is set" in note and "s3cret" not in note and "10.0.0.5" in note
    monkeypatch.delenv("REDIS_URL")
    store = start(store_dir)
    client(store).set("jobbench:k", "v")
    assert main(["redis", "status"]) == EXIT_OK
    out = capsys.readouterr().out
    assert store.url in out and f"pid {store.record.pid}" in out and str(store_dir) in out
    assert "keys: 1" in out and "memory:" in out
    assert main(["redis", "stop"]) == EXIT_OK
    assert f"stopped the embedded Redis (pid {store.record.pid})" in capsys.readouterr().out
    wait_gone(store.record.pid)
    assert er.read_record(store_dir) is None and (store_dir / er.AOF_FILE).stat().st_size > 0
    again = start(store_dir)
    os.kill(again.record.pid, signal.SIGKILL)
    wait_gone(again.record.pid)
    assert main(["redis", "status"]) == EXIT_OK
    assert "stale" in capsys.readouterr().out
    assert main(["redis", "stop"]) == EXIT_OK
    assert "removed the stale record" in capsys.readouterr().out
    assert er.read_record(store_dir) is None


# --- the commands on a fresh machine: a loopback-only network namespace ----------------------


@pytest.fixture
def loopback_only() -> Iterator[list[str]]:
    """``ip netns exec NS`` for a new namespace with only loopback: nothing answers at
    127.0.0.1:6379 or :5672 there, as on a fresh machine."""
    need(
        os.geteuid() == 0 and shutil.which("ip") is not None,
        "a loopback-only network namespace needs root and iproute2 (run the suite as root)",
    )
    name = f"jobbench-t-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def jobbench(
    prefix: list[str], data_dir: Path, *argv: str, read_only: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``jobbench ARGV`` in the namespace of ``prefix`` with the store in ``data_dir``;
    ``read_only``: a directory made read-only for this command alone (root included: a
    read-only mount in a mount namespace of its own)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env[er.DATA_DIR_ENV] = str(data_dir)
    mount = []
    if read_only is not None:
        mount = ["unshare", "--mount", "sh", "-c",
                 'mount -t tmpfs -o ro jobbench-ro "$0" && exec "$@"', str(read_only)]  # fmt: skip
    return subprocess.run(
        [*prefix, *mount, *JOBBENCH, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def test_bench_then_verify_history_and_a_restart_on_a_fresh_machine(
    loopback_only: list[str], store_dir: Path, tmp_path: Path
) -> None:
    data, out = store_dir.parent, tmp_path / "results"
    tiny = ["--models", "sequential", "--workloads", "cpu", "--cpu-jobs", "20", "--repeat", "1"]
    bench = jobbench(loopback_only, data, "bench", *tiny, "--warmup", "0", "--quiet",
                     "--out", str(out))  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    run_id = json.loads((out / "latest" / "results.json").read_text())["run_id"]
    doc = json.loads((out / "latest" / "results.json").read_text())
    assert doc["metadata"]["settings"]["redis_source"] == "embedded"
    verify = jobbench(loopback_only, data, "verify", "latest", "--out", str(out))
    assert verify.returncode == 0 and "every job accounted for" in verify.stdout, verify.stderr
    assert jobbench(loopback_only, data, "redis", "stop").returncode == 0
    # The next command starts it again from its append-only file: the run is still there.
    history = jobbench(loopback_only, data, "history", "--source", "redis", "--format", "json")
    assert history.returncode == 0, history.stderr
    assert run_id in [d["run_id"] for d in json.loads(history.stdout)]
    assert jobbench(loopback_only, data, "verify", run_id, "--out", str(out)).returncode == 0
    stop = jobbench(loopback_only, data, "redis", "stop")
    assert stop.returncode == 0 and "stopped the embedded Redis" in stop.stdout
    assert not er.servers_on(store_dir)


def test_two_commands_at_once_on_a_fresh_machine_share_one_server(
    loopback_only: list[str], store_dir: Path
) -> None:
    env = {**os.environ, er.DATA_DIR_ENV: str(store_dir.parent)}
    env.pop("REDIS_URL", None)
    argv = [*loopback_only, *JOBBENCH, "history", "--source", "redis", "--format", "json"]
    procs = [
        subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert len(er.servers_on(store_dir)) == 1 and er.read_record(store_dir) is not None
    # From outside the namespace it is a server on the data that does not answer: no second.
    with pytest.raises(er.StoreError, match="does not answer"):
        start(store_dir)
    stop = jobbench(loopback_only, store_dir.parent, "redis", "stop")
    assert stop.returncode == 0 and "stopped the embedded Redis" in stop.stdout
    assert not er.servers_on(store_dir)


def test_bad_store_input_is_one_line_and_exit_2_from_a_command(
    loopback_only: list[str], store_dir: Path, tmp_path: Path
) -> None:
    store_dir.mkdir(parents=True)
    aof = store_dir / er.AOF_FILE
    aof.write_bytes(b"*1\r\n$4\r\nPING\r\nnot redis protocol\r\n")
    proc = jobbench(loopback_only, store_dir.parent, "history", "--source", "redis")
    assert proc.returncode == EXIT_USAGE and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and str(aof) in proc.stderr, proc.stderr
    # Not writable: as root, only another user is refused (root writes anywhere).
    locked = tmp_path / "locked"
    locked.mkdir()
    proc = jobbench(loopback_only, locked, "history", "--source", "redis", read_only=locked)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "not writable" in proc.stderr
    assert str(locked / "redis") in proc.stderr and not (locked / "redis").exists()
