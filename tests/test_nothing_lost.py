"""Issue 15, "nothing lost, nothing silent": every reproduction of the issue, against a real
``jobbench`` subprocess, real Redis (a private one where it gets killed), real workers and the real
target. Each test names the reproduction it holds.

Signals go to the process group of a ``jobbench`` started in a session of its own, the way a
terminal's Ctrl-C reaches a foreground job: every process of the group gets it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from producer.cli import main
from producer.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from producer.history import verdicts
from producer.processes import spawn, stop_process, wait_until
from producer.results import LATEST, ResultsError, latest_is_ours, load_results
from producer.runners.celery.workers import KOMBU_UNACKED
from producer.services import embedded_redis, embedded_redis_binary, free_port, redis_reachable
from producer.untrusted import MAX_JSON_DEPTH, printable
from shared.workloads import RequestFailed, fetch, fetch_async
from tests.conftest import need
from tests.faults_support import PrivateRedis, target_process

pytestmark = pytest.mark.integration

JOBBENCH = [sys.executable, "-m", "producer.cli"]
#: Any wait here gives up after this long (s).
DEADLINE_S = 60.0
#: Exit codes of the three handled signals (128 + n).
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Jobbench:
    """A ``jobbench`` subprocess in a session of its own, its descendants watched while it runs."""

    def __init__(self, argv: list[str], tmp: Path, env: dict[str, str] | None = None) -> None:
        self.stderr_path = tmp / "stderr.txt"
        self.stdout_path = tmp / "stdout.txt"
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                [*JOBBENCH, *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,
            )  # fmt: skip
        self.seen: dict[int, psutil.Process] = {}

    def descendants(self) -> list[psutil.Process]:
        """Every process started below jobbench so far (remembered, even once gone)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                self.seen.setdefault(child.pid, child)
        return list(self.seen.values())

    def wait_for(self, what: Callable[[str], bool], label: str) -> psutil.Process:
        """Wait until a descendant's command line satisfies ``what``."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"jobbench ended early: {self.stderr()}"
            for child in self.descendants():
                with contextlib.suppress(psutil.Error):
                    if what(" ".join(child.cmdline())):
                        return child
            time.sleep(0.05)
        pytest.fail(f"no {label} started: {self.stderr()}")

    def signal_group(self, signum: int) -> None:
        self.descendants()
        os.killpg(self.proc.pid, signum)

    def wait(self, timeout_s: float = DEADLINE_S) -> int:
        return self.proc.wait(timeout_s)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_all_stopped(procs: list[psutil.Process], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(alive(p) for p in procs):
        time.sleep(0.05)
    left = [" ".join(p.cmdline()[:6]) for p in procs if alive(p)]
    assert not left, f"still running: {left}"


def run_dirs(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.is_dir() and p.name != LATEST and not p.is_symlink()]


def only_run(out: Path) -> tuple[Path, dict[str, Any]]:
    (run_dir,) = run_dirs(out)
    return run_dir, json.loads((run_dir / "results.json").read_text())


def assert_keys_expire(client: redis.Redis, run_id: str, *, some: bool = True) -> None:
    """Every job key of the run carries a TTL (warm-ups and interrupted repeats included)."""
    found = list(client.scan_iter(match=f"jobbench:{run_id}:*", count=1000))
    job_keys = [k for k in found if not k.endswith(b":summary")]
    assert job_keys or not some, "the run wrote no key at all?"
    without = [k for k in job_keys if client.ttl(k) < 0]
    assert not without, f"keys that never expire: {without[:5]}"


def own_lines(stderr: str) -> list[str]:
    """jobbench's own stderr lines: not the Flower URL ``--flower`` announces at the start, nor
    the log lines of the Celery workers (which share the terminal)."""
    return [
        line for line in stderr.splitlines()
        if not line.startswith(("flower: ", "[20")) and line.strip()
    ]  # fmt: skip


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors (exit 2, one line)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# --- 1. jobbench never deletes what it did not create -------------------------------------


def test_a_user_directory_named_latest_is_never_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reproduction: ``mkdir -p D/latest && echo x > D/latest/keep.txt; jobbench bench --out D``
    removed D/latest and its contents."""
    out = tmp_path / "D"
    (out / LATEST).mkdir(parents=True)
    (out / LATEST / "keep.txt").write_text("x\n")
    argv = ["bench", "--models", "sequential", "--workloads", "cpu", "--cpu-jobs", "200",
            "--repeat", "1", "--out", str(out), "-q"]  # fmt: skip
    code, _, err = cli(argv, capsys)
    assert code == EXIT_USAGE and len(err.splitlines()) == 1, err
    assert "is not a link jobbench made" in err and "never deletes" in err
    assert (out / LATEST / "keep.txt").read_text() == "x\n"
    assert run_dirs(out) == [out / LATEST] or not run_dirs(out)  # nothing measured, nothing kept
    # A foreign symlink is the user's too; jobbench's own link and marked copy are replaced.
    (out / LATEST / "keep.txt").unlink()
    (out / LATEST).rmdir()
    (out / LATEST).symlink_to("/etc")
    assert main(argv) == EXIT_USAGE and (out / LATEST).readlink() == Path("/etc")
    (out / LATEST).unlink()
    assert main(argv) == EXIT_OK and latest_is_ours(out / LATEST)
    assert main(argv) == EXIT_OK and latest_is_ours(out / LATEST)


def test_an_empty_out_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reproduction: ``--out ''`` silently meant the current directory."""
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["bench", "--models", "sequential", "--out", ""], capsys)
    assert code == EXIT_USAGE and "--out: empty" in err and len(err.splitlines()) == 1
    code, _, err = cli(["bench", "--models", "sequential", "--out", "r\x1b[2J"], capsys)
    assert code == EXIT_USAGE and "\x1b" not in err
    assert not list(tmp_path.iterdir()), "nothing written in the current directory"


# --- 2. a failed run keeps its evidence ----------------------------------------------------


def test_a_worker_killed_mid_run_leaves_evidence_verify_reports_on(
    tmp_path: Path,
    private_redis: PrivateRedis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reproduction: kill the worker of ``bench --models celery_threads --workloads io --io-jobs
    1000 --latency-ms 1000`` mid-run: exit 1 with no run id, no run directory, not in history,
    ``verify latest`` vouching for the previous run, 100 unacknowledged messages left in Redis."""
    redis_url = private_redis.url  # every key in it is this test's
    monkeypatch.setenv("REDIS_URL", redis_url)
    out = tmp_path / "results"
    good = ["bench", "--models", "sequential", "--workloads", "cpu", "--cpu-jobs", "50",
            "--repeat", "1", "--out", str(out), "-q"]  # fmt: skip
    assert main(good) == EXIT_OK
    capsys.readouterr()
    previous = (out / LATEST).resolve().name
    # --no-predict: the worker killed must be the run's, not the one measuring machine costs.
    argv = ["bench", "--models", "celery_threads", "--workloads", "io", "--io-jobs", "300",
            "--latency-ms", "1000", "--repeat", "1", "--warmup", "0", "--no-predict",
            "--out", str(out), "-q"]  # fmt: skip
    run = Jobbench(argv, tmp_path, {"REDIS_URL": redis_url})
    worker = run.wait_for(lambda c: "celery" in c and " worker" in c, "celery worker")
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not client.keys("jobbench:*:celery_threads:io:0:attempts"):
            assert time.monotonic() < deadline, run.stderr()
            time.sleep(0.05)
        time.sleep(0.5)  # mid-request: every thread holds a job
        os.killpg(worker.pid, signal.SIGKILL)
        started = time.monotonic()
        code = run.wait()
        assert time.monotonic() - started < 15
        err = run.stderr().splitlines()
        assert code == EXIT_FAILURE, err
        assert err[0].startswith("jobbench: run ") and " failed: evidence in " in err[0]
        assert "jobs missing: celery_threads (the worker exited)" in err[-1]
        assert "Traceback" not in run.stderr()
        run_dir = next(p for p in run_dirs(out) if p.name != previous)
        doc = json.loads((run_dir / "results.json").read_text())
        assert err[0].startswith(f"jobbench: run {doc['run_id']} failed")
        failure = doc["failure"]
        assert doc["status"] == "failed" and failure["why"].startswith("jobs missing")
        assert failure["missing_job_ids"] and failure["incomplete"] == {
            "io/celery_threads": "0 of 1 repeats"
        }
        # The messages the dead worker held were dropped (and said so), not left for good.
        assert any("unacknowledged messages a dead worker held" in n for n in failure["cleanup"])
        queue = next(iter(failure["cleanup"])).rsplit(" ", 1)[-1]
        held = [v for v in client.hvals(KOMBU_UNACKED) if queue.encode() in v]
        assert not held and not client.exists(queue)
        assert (out / LATEST).resolve().name == previous, "latest still the last complete run"
        # history lists it as failed; verify names the missing jobs, exit 1.
        code, text, _ = cli(["history", "--out", str(out), "--source", "disk",
                             "--format", "json"], capsys)  # fmt: skip
        listed = {d["run_id"]: d["status"] for d in json.loads(text)}
        assert listed[doc["run_id"]] == "failed" and listed[previous] == "complete"
        code, text, _ = cli(["verify", str(run_dir), "--format", "json"], capsys)
        check = json.loads(text)
        assert code == EXIT_FAILURE and check["totals"]["missing"] > 0
        assert set(failure["missing_job_ids"]) == set(check["scopes"][0]["missing"])
        assert_keys_expire(client, doc["run_id"])
        assert_all_stopped(run.descendants())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.proc.pid, signal.SIGKILL)
        client.close()


def test_redis_killed_mid_run_is_one_line_and_a_failed_run(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    """Reproduction: Redis killed mid-run gave an uncaught Redis error, exit 1, every measurement
    of the run lost."""
    out = tmp_path / "results"
    with target_process() as url:  # 300 ms per request: 2 repeats of 8 jobs, ~2.4 s each
        argv = ["bench", "--models", "sequential", "--workloads", "io", "--io-jobs", "8",
                "--url", url, "--repeat", "2", "--warmup", "0", "--no-shuffle",
                "--out", str(out), "-q"]  # fmt: skip
        run = Jobbench(argv, tmp_path, {"REDIS_URL": private_redis.url})
        client = redis.Redis.from_url(private_redis.url)
        deadline = time.monotonic() + DEADLINE_S
        while not client.keys("jobbench:*:sequential:io:0:records"):  # repeat 1 stored
            assert time.monotonic() < deadline and run.proc.poll() is None, run.stderr()
            time.sleep(0.05)
        client.close()
        private_redis.kill()
        code = run.wait()
    err = run.stderr().splitlines()
    assert code == EXIT_FAILURE and len(err) == 2, err
    assert err[0].startswith("jobbench: run ") and " failed: evidence in " in err[0]
    assert err[1].startswith("jobbench: lost Redis at redis://127.0.0.1:") and "mid-run" in err[1]
    _, doc = only_run(out)
    assert doc["status"] == "failed" and doc["failure"]["why"].startswith("lost Redis")
    (row,) = doc["results"]
    assert row["repeats"] >= 1 and row["n_ok"] == 8 * row["repeats"], "completed repeats kept"
    assert not (out / LATEST).exists()
    assert_all_stopped(run.descendants())


# --- 3. failures are results ------------------------------------------------------------


def test_every_job_failing_is_flagged_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reproduction: every job failing (``--url http://127.0.0.1:1/ip``) still printed
    speedups, "100 % efficiency" and exited 0."""
    monkeypatch.setenv("JOBBENCH_REQUEST_TIMEOUT_S", "0.5")
    out = tmp_path / "results"
    argv = ["bench", "--models", "sequential,thread_pool", "--workloads", "io", "--io-jobs", "3",
            "--url", f"http://127.0.0.1:{free_port()}/ip", "--repeat", "1", "--warmup", "0",
            "--out", str(out)]  # fmt: skip
    code, table, err = cli(argv, capsys)
    assert code == EXIT_FAILURE
    assert err.startswith("jobbench: run ") and "jobs failed" in err and "--allow-failures" in err
    assert "FAILED" in table and "100%" not in table and "×" not in table
    run_dir, doc = only_run(out)
    assert doc["status"] == "failed" and not (out / LATEST).exists()
    for row in doc["results"]:
        assert row["failed"] and row["n_error"] == 3
        assert row["speedup_vs_sequential"] is None and row["efficiency"] is None
    assert verdicts(doc) == []
    report = (run_dir / "report.md").read_text()
    assert "there is no winner" in report and "**FAILED**" in report
    assert "of the ideal" not in report and "| 100% |" not in report
    # Asked for: accepted, exit 0, latest.
    code, _, _ = cli([*argv, "--allow-failures", "-q"], capsys)
    assert code == EXIT_OK and load_results(out / LATEST)["status"] == "complete"


def test_retries_are_counted_per_model_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reproduction: 249 of 300 asyncio jobs needed 2-3 tries and the table, report and CSV
    never said so, while the goal verdict printed "met"."""
    monkeypatch.setenv("JOBBENCH_REQUEST_TIMEOUT_S", "0.5")
    out = tmp_path / "results"
    with target_process(fail_rate=0.4) as url:
        argv = ["bench", "--models", "sequential,asyncio", "--workloads", "io", "--io-jobs",
                "20", "--url", url, "--repeat", "1", "--warmup", "0", "--out", str(out),
                "--allow-failures"]  # fmt: skip
        code, table, _ = cli(argv, capsys)
    assert code == EXIT_OK
    doc = load_results(out / LATEST)
    for row in doc["results"]:
        assert row["retried"] > 0 and row["retries"] >= row["retried"], row["model"]
        assert f"{row['retried']} retried" in table
    report = (out / LATEST / "report.md").read_text()
    assert "**Retried requests**" in report
    rows = (out / LATEST / "jobs.csv").read_text().splitlines()
    assert rows[0].endswith(",tries") and any(not r.endswith(",1") for r in rows[1:])


def test_tls_errors_fail_at_once_in_every_model() -> None:
    """Reproduction: only asyncio retried TLS errors (httpx's ConnectError wrapping
    ``SSL: WRONG_VERSION_NUMBER`` counted as a network error)."""
    with target_process() as url:
        tls = url.replace("http://", "https://")
        with pytest.raises(RequestFailed, match=r"^1 try, last: SSLError") as sync_info:
            fetch(tls)

        async def once() -> None:
            import httpx

            async with httpx.AsyncClient() as client:
                await fetch_async(client, tls)

        import asyncio

        with pytest.raises(RequestFailed, match=r"^1 try, last: ConnectError: \[SSL") as info:
            asyncio.run(once())
    assert sync_info.value.tries == info.value.tries == 1


def test_a_nan_median_never_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reproduction: a NaN median "won" the verdict."""
    doc = stored_doc("nan-run")
    doc["results"][0]["wall_s"]["median"] = float("nan")
    assert [v.winner["model"] for v in verdicts(doc)] == ["thread_pool"]
    path = tmp_path / "nan-run" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))  # Python writes NaN; it is not JSON
    with pytest.raises(ResultsError, match="holds NaN, which is not JSON"):
        load_results(path)
    code, _, err = cli(["report", str(path.parent)], capsys)
    assert code == EXIT_USAGE and len(err.splitlines()) == 1


# --- 4. signals and faults end cleanly ---------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "moment"),
    [
        (signal.SIGTERM, "sequential"),  # before the first Celery worker: Flower, target up
        (signal.SIGHUP, "celery"),  # mid-Celery run
        (signal.SIGINT, "celery"),  # Ctrl-C (three times) mid-Celery run
    ],
)
def test_a_signal_at_any_moment_stops_everything_and_keeps_the_evidence(
    signum: int, moment: str, tmp_path: Path, private_redis: PrivateRedis
) -> None:
    """Reproduction: SIGTERM/SIGHUP before the first Celery worker left Flower, the target and
    the embedded Redis running; a triple Ctrl-C left the run's queue with its messages; an
    interrupted run's keys never expired."""
    out = tmp_path / "results"
    models = "sequential,celery_threads" if moment == "sequential" else "celery_threads"
    argv = ["bench", "--models", models, "--workloads", "io",
            "--io-jobs", "30", "--latency-ms", "300", "--repeat", "1", "--warmup", "1",
            "--no-shuffle", "--flower", "--out", str(out), "-q"]  # fmt: skip
    run = Jobbench(argv, tmp_path, {"REDIS_URL": private_redis.url})
    run.wait_for(lambda c: "producer.cli target" in c, "target")
    run.wait_for(lambda c: " flower " in c, "flower")
    if moment == "celery":
        run.wait_for(lambda c: "celery" in c and " worker" in c, "celery worker")
        client = redis.Redis.from_url(private_redis.url)
        deadline = time.monotonic() + DEADLINE_S
        while not client.keys("jobbench:*:celery_threads:io:0:attempts"):
            assert time.monotonic() < deadline, run.stderr()
            time.sleep(0.05)
        client.close()
    else:
        time.sleep(1.5)  # mid sequential repeat (30 x 300 ms)
    procs = run.descendants()
    for _ in range(3 if signum == signal.SIGINT else 1):
        run.signal_group(signum)
        time.sleep(0.05)
    code = run.wait()
    err = run.stderr()
    assert code == SIGNAL_EXIT[signum], err
    assert "Traceback" not in err, err
    (err,) = own_lines(err)
    name = signal.Signals(signum).name
    assert err.startswith("jobbench: run ") and f"interrupted by {name}" in err
    assert "every process it started was stopped" in err
    assert_all_stopped(procs)
    _, doc = only_run(out)
    assert err.startswith(f"jobbench: run {doc['run_id']} interrupted")
    assert doc["status"] == "interrupted" and not (out / LATEST).exists()
    client = redis.Redis.from_url(private_redis.url)
    try:
        assert_keys_expire(client, doc["run_id"], some=moment == "celery")
        assert not client.keys("jobbench.*"), "the run's queue was dropped"
        assert not client.hlen(KOMBU_UNACKED), "no message left held"
    finally:
        client.close()


def test_ctrl_c_during_the_process_pools_prints_one_line(tmp_path: Path, redis_url: str) -> None:
    """Reproduction: Ctrl-C during the process pools printed ~94 lines of child tracebacks."""
    out = tmp_path / "results"
    argv = ["bench", "--models", "multiprocessing_pool,process_pool", "--workloads", "cpu",
            "--cpu-jobs", "15000", "--repeat", "3", "--warmup", "0", "--out", str(out),
            "-q"]  # fmt: skip
    run = Jobbench(argv, tmp_path)
    run.wait_for(lambda c: True, "pool child")  # forked: the same command line
    time.sleep(1.0)
    procs = run.descendants()
    run.signal_group(signal.SIGINT)
    assert run.wait() == 130
    err = run.stderr()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert_all_stopped(procs)
    _, doc = only_run(out)
    assert doc["status"] == "interrupted"
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"jobbench:{doc['run_id']}:*", count=1000):
        client.delete(key)
    client.close()


def test_sigkill_of_jobbench_takes_the_target_and_flower_along(tmp_path: Path) -> None:
    """Reproduction: SIGKILL of jobbench left the target running."""
    argv = ["bench", "--models", "sequential", "--workloads", "io", "--io-jobs", "100",
            "--latency-ms", "300", "--repeat", "1", "--flower", "--out", str(tmp_path / "r"),
            "-q"]  # fmt: skip
    run = Jobbench(argv, tmp_path)
    target = run.wait_for(lambda c: "producer.cli target" in c, "target")
    flower = run.wait_for(lambda c: " flower " in c, "flower")
    run.proc.kill()
    run.wait()
    assert_all_stopped([target, flower])


def test_the_embedded_redis_runs_in_a_session_of_its_own() -> None:
    """Reproduction: Ctrl-C on the quick-start path (embedded Redis) killed the embedded server
    along with jobbench (one process group), and stopping the workers then raised a kombu
    traceback."""
    me = psutil.Process()
    with embedded_redis() as url:
        (server,) = [p for p in me.children() if "redis-server" in " ".join(p.cmdline())]
        assert os.getsid(server.pid) == server.pid != os.getsid(0)
        assert redis.Redis.from_url(url).ping()
    assert_all_stopped([server])


def test_sigterm_while_the_report_is_written_leaves_latest_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reproduction: SIGTERM while the report was written: exit 143, no message, ``latest``
    pointing at a half-written run. (The signal is raised from inside the report writer, the
    moment it would land; the handler is the real one.)"""
    import producer.cli.bench as bench_cli

    def sigterm_now(run_dir: Path) -> list[Path]:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        raise AssertionError("SIGTERM did not interrupt")

    out = tmp_path / "results"
    argv = ["bench", "--models", "sequential", "--workloads", "cpu", "--cpu-jobs", "50",
            "--repeat", "1", "--out", str(out), "-q"]  # fmt: skip
    assert main(argv) == EXIT_OK
    previous = (out / LATEST).resolve()
    real_report = bench_cli.build_report
    calls = iter([sigterm_now])
    monkeypatch.setattr(bench_cli, "build_report", lambda d: next(calls, real_report)(d))
    code, _, err = cli(argv, capsys)
    assert code == 143 and len(err.splitlines()) == 1 and "interrupted by SIGTERM" in err
    assert (out / LATEST).resolve() == previous
    interrupted = next(p for p in run_dirs(out) if p != previous)
    assert load_results(interrupted)["status"] == "interrupted"


# --- 5. hostile files and terminals ------------------------------------------------------


def stored_doc(run_id: str) -> dict[str, Any]:
    def row(model: str, median: float) -> dict[str, Any]:
        wall = {"median": median, "min": median, "max": median, "values": [median]}
        return {"workload": "cpu", "model": model, "n_jobs": 10, "wall_s": wall, "repeats": 1}

    return {"schema": 1, "run_id": run_id, "started_at": "2026-01-01T00:00:00+00:00",
            "results": [row("sequential", 1.0), row("thread_pool", 2.0)]}  # fmt: skip


def test_a_deeply_nested_results_json_is_one_line_and_skipped_by_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reproduction: a deeply nested results.json raised RecursionError in report, compare and
    verify, and one such directory broke ``history`` for every run."""
    good = tmp_path / "good-run"
    good.mkdir()
    (good / "results.json").write_text(json.dumps(stored_doc("good-run")))
    for depth, name in ((100_000, "deep"), (MAX_JSON_DEPTH + 5, "deepish")):
        bad = tmp_path / name
        bad.mkdir()
        (bad / "results.json").write_text(
            '{"schema": 1, "run_id": "x", "results": [], "m": ' + "[" * depth + "]" * depth + "}"
        )
        for argv in (["report", str(bad)], ["compare", str(good), str(bad)],
                     ["verify", str(bad)]):  # fmt: skip
            code, _, err = cli([*argv, "--out", str(tmp_path)], capsys)
            assert code == EXIT_USAGE and len(err.splitlines()) == 1, (argv, err)
            assert "nested deeper than" in err and "Recursion" not in err
    code, text, err = cli(["history", "--out", str(tmp_path), "--source", "disk",
                           "--format", "json"], capsys)  # fmt: skip
    assert code == EXIT_OK and [d["run_id"] for d in json.loads(text)] == ["good-run"]
    assert err.count("note: skipped") == 2


def test_control_characters_are_refused_or_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reproduction: escape characters in ``--url`` (and in a crafted results.json) reached
    report.md and the terminal."""
    code, _, err = cli(["bench", "--url", "http://h/\x1b[31mred", "--out", str(tmp_path)], capsys)
    assert code == EXIT_USAGE and "control character" in err and "\x1b" not in err
    doc = stored_doc("crafted")
    doc["results"][1]["model"] = "thread\x1b]0;owned\x07_pool"
    doc["metadata"] = {"hostname": "h\x1b[2J", "target": {"url": "http://x/\x1b[5m"}}
    run_dir = tmp_path / "crafted"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps(doc))
    assert main(["report", str(run_dir)]) == EXIT_OK
    report = (run_dir / "report.md").read_text()
    assert "\x1b" not in report and "\x07" not in report and "\\x1b" in report
    for argv in (["history", "--out", str(tmp_path), "--source", "disk"],
                 ["compare", str(run_dir), str(run_dir)]):  # fmt: skip
        code, text, err = cli(argv, capsys)
        assert code == EXIT_OK and "\x1b" not in text + err and "\x07" not in text + err
    assert printable("a\x1bb\u2028c\td") == "a\\x1bb\\u2028c\td"


def test_a_wrong_redis_password_is_not_called_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reproduction: a wrong Redis password was reported as "cannot reach Redis"."""
    port = free_port()
    server = spawn([str(embedded_redis_binary()), "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--requirepass", "right-one"])  # fmt: skip
    try:
        right = f"redis://:right-one@127.0.0.1:{port}/0"
        wait_until(lambda: redis_reachable(right), 20.0, "Redis", server)
        monkeypatch.setenv("REDIS_URL", f"redis://:wrong-one@127.0.0.1:{port}/0")
        code, _, err = cli(["bench", "--models", "sequential", "--out", str(tmp_path / "r")],
                           capsys)  # fmt: skip
    finally:
        stop_process(server)
    assert code == EXIT_USAGE and len(err.splitlines()) == 1, err
    assert "refused the credentials" in err and "cannot reach" not in err
    assert "wrong-one" not in err


def test_the_target_on_a_busy_port_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Reproduction: ``jobbench target`` on a busy port exited 3 (undocumented)."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = cli(["target", "--port", str(port)], capsys)
    assert code == EXIT_USAGE and len(err.splitlines()) == 1
    assert f"cannot serve the target on 127.0.0.1:{port}" in err


def test_flower_port_out_of_range_from_make_is_one_line(tmp_path: Path) -> None:
    """Reproduction: ``make flower FLOWER_PORT=70000`` raised OverflowError."""
    # What the make target runs (make exports the command-line variable, and passes it on).
    proc = subprocess.run(
        [*JOBBENCH, "flower", "--port", "70000"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "FLOWER_PORT": "70000"},
    )  # fmt: skip
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("jobbench")]
    assert lines == ["jobbench: error: --port: must be between 1 and 65535, got 70000 (from "
                     "FLOWER_PORT)"], proc.stderr  # fmt: skip
    assert "Traceback" not in proc.stderr and "OverflowError" not in proc.stderr


def test_disk_full_after_measuring_names_the_file_and_is_not_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reproduction: disk full after measuring: ``[Errno 28] No space left on device`` with no
    path, exit 2 ("bad input"), results half written."""
    need(os.geteuid() == 0, "mounting a small tmpfs needs root")
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)],
                             capture_output=True)  # fmt: skip
    need(mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr!r}")
    try:
        with contextlib.suppress(OSError), open(small / "filler", "wb") as fh:
            fh.write(b"\0" * 1024 * 1024)  # fills it: the probe file (empty) still fits
        argv = ["bench", "--models", "sequential", "--workloads", "cpu", "--cpu-jobs", "50",
                "--repeat", "1", "--out", str(small), "-q"]  # fmt: skip
        code, _, err = cli(argv, capsys)
        lines = err.splitlines()
        assert code == EXIT_FAILURE, err
        assert lines[0].startswith("jobbench: run ") and "could not be written" in lines[0]
        assert lines[-1].startswith(f"jobbench: error: cannot write {small}/") and (
            "No space left on device" in lines[-1]
        )
        assert not (small / LATEST).exists()
        assert not list(small.glob("*/results.json")), "nothing half-written"
    finally:
        subprocess.run(["umount", str(small)], check=False)
