"""``make bench-hosts`` / ``jobbench hosts``: simulated hosts as network namespaces, one Redis for
all, a worker per host, one host's link cut mid-run, and nothing lost or left behind.

The integration tests need root (network namespaces): a skip elsewhere, a failure under CI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from producer import hosts
from producer.cli import EXIT_USAGE, main
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[1]
JOBBENCH = [sys.executable, "-m", "producer.cli"]


# --- units -------------------------------------------------------------------------------------


def test_names_fit_the_kernel_and_carry_the_owner_pid() -> None:
    bridge, host_ids = hosts.names(4_194_303, 17, 20)  # the largest pid Linux hands out
    for link in [bridge, *(link for _, link in host_ids)]:
        assert len(link) <= 15, link  # IFNAMSIZ - 1
        m = hosts.LINK_RE.match(link)
        assert m and int(m["pid"], 16) == 4_194_303
    for netns, _ in host_ids:
        m = hosts.NETNS_RE.match(netns)
        assert m and int(m["pid"]) == 4_194_303


def test_subnet_is_one_nobody_uses() -> None:
    assert hosts.pick_subnet(set(range(1, 254))) == 254
    with pytest.raises(hosts.ServiceError, match="in use"):
        hosts.pick_subnet(set(range(1, 255)))


def test_relayed_url_keeps_the_credentials() -> None:
    class Relay:
        host, port = "10.250.9.1", 40000

    url = hosts.relayed_url("amqp://guest:s3cret@127.0.0.1:5672//", Relay())  # type: ignore[arg-type]
    assert url == "amqp://guest:s3cret@10.250.9.1:40000//"
    assert hosts.relayed_url("amqp://rabbit//", Relay()) == "amqp://10.250.9.1:40000//"  # type: ignore[arg-type]


def test_worker_runs_in_the_namespace_under_the_host_name() -> None:
    host = hosts.SimHost(2, "host2", "jobbench-1-0-h2", "jb1n0h2", "10.250.9.12")
    argv = hosts.worker_argv(
        host, pool="threads", concurrency=4, queue="q.threads", prefetch=1, node="threads"
    )
    assert argv[:8] == ["ip", "netns", "exec", "jobbench-1-0-h2", "unshare", "--uts", "--",
                        sys.executable]  # fmt: skip
    assert argv[argv.index(hosts._AS_HOST) + 1] == "host2"
    assert "--pool=threads" in argv and argv[argv.index("-n") + 1] == "threads@%h"
    assert argv[argv.index("-Q") + 1] == "q.threads"


def synthetic_doc() -> dict[str, Any]:
    return {
        "results": [
            {"workload": "io", "model": "celery_threads@amqp",
             "jobs_per_host": {"host1": 5, "host2": 5}},
            {"workload": "io", "model": "celery_threads",
             "jobs_per_host": {"host1": 7, "host2": 3}},
        ],
        "metadata": {"clocks": {"hosts": {"host1": {"offset_us": 1.5, "error_us": 30.0}}}},
        "hosts": {
            "subnet": "10.250.9.0/24", "visibility_timeout_s": 4, "notes": [],
            "hosts": {"host1": {"address": "10.250.9.11"}, "host2": {"address": "10.250.9.12"}},
            "cut": {"host": "host2", "at_s": 0.4, "jobs_done_at_cut": 3, "workload": "io",
                    "model": "celery_threads", "repeat": 1, "redelivered": 2,
                    "redelivered_to": {"host1": 2}, "first_redelivery_after_cut_s": 4.1,
                    "recovery_s": 4.2, "lost": 0, "n_jobs": 10},
        },
    }  # fmt: skip


def test_report_shows_jobs_per_host_and_the_cut() -> None:
    doc = synthetic_doc()
    header, rows = hosts.hosts_rows(doc)
    assert header == ["host", "address", "io celery_threads@amqp", "io celery_threads", "status"]
    assert rows[0] == ["host1", "10.250.9.11", "5", "7", "up"]
    assert rows[1][:4] == ["host2", "10.250.9.12", "5", "3"] and "cut at 0.40 s" in rows[1][4]
    summary = hosts.cut_summary(doc)
    assert "2 jobs redelivered (host1 2)" in summary and "0 lost of 10" in summary
    markdown = "\n".join(hosts.hosts_markdown(doc))
    assert "| host2 | 10.250.9.12 | 5 | 3 |" in markdown and "host1 +1.5 ± 30.0 µs" in markdown


def test_without_root_it_skips_with_a_reason_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    assert main(["hosts"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "skipped" in err[0] and "need root" in err[0]
    monkeypatch.setenv("CI", "true")
    assert main(["hosts"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0] and "need root" in err[0]


# --- integration: real namespaces ------------------------------------------------------------


def can_build_hosts() -> tuple[bool, str]:
    try:
        hosts.preflight()
    except hosts.ServiceError as exc:
        return False, str(exc)
    return True, ""


@pytest.fixture
def root_ok() -> None:
    ok, why = can_build_hosts()
    need(ok, why)


def ours() -> dict[str, set[str]]:
    """The namespaces, links and processes any jobbench hosts run has right now."""
    netns = {line.split()[0] for line in hosts.ip("netns", "list").splitlines() if line.strip()}
    links = {m[1] for m in re.finditer(r"^\d+: ([^:@]+)", hosts.ip("-o", "link", "show"), re.M)}
    procs = set()
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "-Q jobbench-hosts-" in cmd or "--bind 10.250." in cmd:
            procs.add(f"{p.info['pid']}: {cmd[:80]}")
    return {
        "netns": {n for n in netns if hosts.NETNS_RE.match(n)},
        "links": {n for n in links if hosts.LINK_RE.match(n)},
        "procs": procs,
    }


def assert_nothing_left(before: dict[str, set[str]]) -> None:
    deadline = time.monotonic() + 10  # killed process groups take a moment to be reaped
    while True:
        after = ours()
        new = {k: after[k] - before[k] for k in after}
        if not any(new.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not any(new.values()), new


@pytest.mark.integration
@pytest.mark.slow
def test_make_bench_hosts_spreads_jobs_and_survives_a_cut_host(
    root_ok: None, tmp_path: Path
) -> None:
    before = ours()
    venv = Path(sys.executable).parent.parent
    args = "--io-jobs 120 --latency-ms 40 --repeat 2 --warmup 0 --visibility-timeout-s 2 -q"
    proc = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "-o", f"{venv}/bin/jobbench", f"VENV={venv}",
         "bench-hosts", f"ARGS={args} --out {tmp_path}"],
        capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert_nothing_left(before)
    doc = json.loads((tmp_path / "latest" / "results.json").read_text())
    section = doc["hosts"]
    assert set(section["hosts"]) == {"host1", "host2", "host3"}
    rows = {r["model"]: r for r in doc["results"]}
    redis_row = rows["celery_threads"]
    # Every host ran jobs; every job of both repeats has exactly one record, none failed.
    assert set(redis_row["jobs_per_host"]) == {"host1", "host2", "host3"}
    assert redis_row["n_ok"] == 2 * 120 and redis_row["n_error"] == 0
    assert redis_row["params"]["concurrency"] == 3 * 4
    cut = section["cut"]
    assert cut["host"] == "host3" and cut["lost"] == 0 and cut["n_jobs"] == 120
    # host3's unacknowledged jobs went to the others once the visibility timeout passed, never
    # back to host3. (Cut between two messages, host3 holds none: then nothing is redelivered.)
    assert set(cut["redelivered_to"]) <= {"host1", "host2"}
    assert sum(cut["redelivered_to"].values()) == cut["redelivered"]
    assert redis_row["redelivered"] == cut["redelivered"]
    if cut["redelivered"]:
        assert cut["first_redelivery_after_cut_s"] >= 1.0
        assert cut["recovery_s"] >= cut["first_redelivery_after_cut_s"]
    # Clocks: every host published its offset, with a bound of half a (veth) round trip.
    clocks = doc["metadata"]["clocks"]["hosts"]
    assert {"host1", "host2", "host3"} <= set(clocks)
    assert all(abs(c["offset_us"]) <= 1000 and c["error_us"] < 5000 for c in clocks.values())
    if "celery_threads@amqp" in rows:  # RabbitMQ answered: the same table compares the brokers
        amqp = rows["celery_threads@amqp"]
        assert set(amqp["jobs_per_host"]) == {"host1", "host2", "host3"}
        assert amqp["n_ok"] == 2 * 120
        assert "guest:guest" not in json.dumps(doc)
    assert "jobs per host" in proc.stdout and "redelivered" in proc.stdout
    assert "## Hosts" in (tmp_path / "latest" / "report.md").read_text()


@pytest.mark.integration
def test_sigterm_mid_run_leaves_nothing_behind(root_ok: None, tmp_path: Path) -> None:
    before = ours()
    log = tmp_path / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [*JOBBENCH, "hosts", "--brokers", "redis", "--io-jobs", "2000", "--latency-ms", "100",
             "--repeat", "5", "--out", str(tmp_path), "-q"],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ours()["procs"] - before["procs"]:  # workers are up: mid-run
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 128 + signal.SIGTERM, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_nothing_left(before)
    assert not (tmp_path / "latest").exists()  # nothing half-written


@pytest.mark.integration
def test_cleanup_removes_what_a_killed_run_left(root_ok: None) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    bridge, [(netns, _link)] = hosts.names(dead.pid, 0, 1)
    hosts.ip("netns", "add", netns)
    hosts.ip("link", "add", bridge, "type", "bridge")
    try:
        proc = subprocess.run([*JOBBENCH, "hosts", "--cleanup"], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        left = ours()
        assert netns not in left["netns"] and bridge not in left["links"]
    finally:
        hosts.ip("netns", "del", netns, check=False)
        hosts.ip("link", "del", bridge, check=False)
