"""Fault injection: real Celery workers, a real redis-server, real faults, and afterwards every
job accounted for (``producer.verify``): finished and timed exactly once, a redelivery visible as
attempt > 1, or the jobs that failed named with why. Never silently missing.

Each test runs on a private redis-server of its own (appendonly, fsync always): a 3 s visibility
timeout must never redeliver another test's messages, and Redis must be killable. Faults land
mid-job (half a target latency after the jobs started), as a crash at a random moment mostly
does; see README "Nothing lost" for the one window that timing avoids.

``JOBBENCH_FAULTS_REPORT=path`` appends each fault's figures to ``path`` as a JSON line
(``make test-faults`` writes ``results/faults.jsonl``); ``-s`` prints them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import psutil
import pytest
import redis
from celery.exceptions import Reject

from producer.cli import EXIT_FAILURE, main
from producer.runners.celery import workers
from producer.runners.celery.publish import REDIS_RETRY_INTERVAL_S, wait_complete
from producer.runners.celery.workers import PoolName
from producer.services import free_port
from producer.verify import ScopeCheck, check_scope
from shared.timings import TimingStore
from shared.workloads import REQUEST_TRIES, RequestFailed, fetch, fetch_async, retry_delay_s
from tests.faults_support import (
    DEADLINE_S,
    LATENCY_MS,
    POOLS,
    REQUEST_TIMEOUT_S,
    VISIBILITY_TIMEOUT_S,
    Fleet,
    PrivateRedis,
    counts,
    in_flight,
    start_run,
    target_process,
)
from worker.app import (
    ACKS_LATE_ENV,
    DEFAULT_VISIBILITY_TIMEOUT_S,
    VISIBILITY_TIMEOUT_ENV,
    transport_options,
)
from worker.tasks import run_jobs_body

pytestmark = [pytest.mark.integration, pytest.mark.faults]

#: Environment variable naming a file that receives each fault's figures as a JSON line.
REPORT_ENV = "JOBBENCH_FAULTS_REPORT"


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(private_redis: PrivateRedis) -> Iterator[TimingStore]:
    s = TimingStore.from_url(private_redis.url)
    yield s
    s.client.close()


@pytest.fixture(autouse=True)
def fault_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """What every worker started here inherits: the short timeouts of fault runs, late acks."""
    monkeypatch.setenv(VISIBILITY_TIMEOUT_ENV, str(VISIBILITY_TIMEOUT_S))
    monkeypatch.setenv("JOBBENCH_REQUEST_TIMEOUT_S", str(REQUEST_TIMEOUT_S))
    monkeypatch.delenv(ACKS_LATE_ENV, raising=False)


@pytest.fixture(scope="module")
def slow_target() -> Iterator[str]:
    with target_process() as url:
        yield url


# --- workers and runs ---------------------------------------------------------------------


class MakeFleet(Protocol):
    def __call__(self, pool: PoolName, concurrency: int | None = None) -> Fleet: ...


@pytest.fixture
def fleet_for(private_redis: PrivateRedis) -> Iterator[MakeFleet]:
    fleets: list[Fleet] = []

    def make(pool: PoolName, concurrency: int | None = None) -> Fleet:
        queue = workers.queue_name(f"faults.{pool}", uuid.uuid4().hex[:12])
        fleets.append(Fleet(private_redis.url, queue, pool, concurrency or POOLS[pool][0]))
        return fleets[-1]

    try:
        yield make
    finally:
        for fleet in fleets:
            fleet.stop_all()


def wait_mid_job(store: TimingStore, scope_key: str, busy: int) -> None:
    """Return half a job into a moment when ``busy`` jobs run at once: every worker slot is
    mid-job, none is between two messages."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        started, finished = counts(store, scope_key)
        if started - finished >= busy:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"never {busy} jobs running at once (started {started}, done {finished})")
        time.sleep(0.005)
    time.sleep(LATENCY_MS / 2000)


def mark_fault(store: TimingStore, run_id: str, scope_key: str, fault: str) -> int:
    """Write the fault and its time into the scope's meta (verify reports the recovery)."""
    at_ns = time.time_ns()
    store.register_scope(run_id, scope_key, {"fault": fault, "fault_at_ns": at_ns})
    return at_ns


def wait_records(
    store: TimingStore,
    scope_key: str,
    n: int,
    fleet: Fleet | None = None,
    timeout_s: float = DEADLINE_S,
) -> int:
    """Wait for ``n`` records, riding out Redis being away; with a ``fleet``, start a fresh
    worker whenever its current one died (what a supervisor does). Returns the restarts."""
    restarts = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            if store.count(scope_key) >= n:
                return restarts
            if fleet is not None and fleet.replace_if_dead():
                restarts += 1
        time.sleep(0.05)
    return restarts


def report(fault: str, check: ScopeCheck, **extra: Any) -> dict[str, Any]:
    """The figures the issue asks for, per fault; appended to ``$JOBBENCH_FAULTS_REPORT``."""
    figures = {
        "fault": fault,
        "enqueued": check.enqueued,
        "finished": check.finished,
        "failed": len(check.failed),
        "delivered_more_than_once": len(check.redelivered),
        "lost": len(check.missing),
        "lost_ids": check.missing,
        "recovery_s": None if check.recovery_s is None else round(check.recovery_s, 2),
        "visibility_timeout_s": VISIBILITY_TIMEOUT_S,
        **extra,
    }
    line = json.dumps(figures)
    print(f"\nfault figures: {line}")
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    return figures


def assert_all_accounted(check: ScopeCheck, n_jobs: int) -> None:
    assert check.n_jobs == n_jobs and check.enqueued == n_jobs
    assert check.missing == [] and check.unexpected == [], f"lost: {check.missing}"
    assert check.finished == n_jobs  # one record per job, however often it ran


# --- the faults -------------------------------------------------------------------------------


def test_prefork_child_killed_mid_run(
    store: TimingStore, fleet_for: MakeFleet, slow_target: str
) -> None:
    """SIGKILL of one prefork child: its message is requeued at once (reject_on_worker_lost)."""
    n_jobs = 12
    fleet = fleet_for("prefork")
    worker = fleet.start()
    run_id, scope_key = start_run(store, fleet, slow_target, n_jobs)
    wait_mid_job(store, scope_key, busy=POOLS["prefork"][0])  # every child is running a job
    running = in_flight(store, scope_key)
    child = psutil.Process(worker.pid).children()[0]
    mark_fault(store, run_id, scope_key, "prefork child SIGKILL")
    child.kill()
    wait_records(store, scope_key, n_jobs)
    assert worker.alive(), "the worker survives the loss of a child"

    check = check_scope(store.client, scope_key)
    report("prefork child SIGKILL", check, pool="prefork", in_flight_at_fault=len(running))
    assert_all_accounted(check, n_jobs)
    assert not check.failed
    assert len(check.redelivered) == 1  # the killed child's job, and only it
    assert set(check.redelivered) <= set(running) and set(check.redelivered.values()) == {2}
    assert check.recovery_s is not None


@pytest.mark.parametrize("pool", ["threads", "solo", "prefork"])
def test_whole_worker_killed_then_fresh_worker(
    pool: PoolName, store: TimingStore, fleet_for: MakeFleet, slow_target: str
) -> None:
    """SIGKILL of the whole worker (process group): the messages it held come back after the
    visibility timeout to a fresh worker; the jobs that were running show attempt 2."""
    n_jobs = 12
    fleet = fleet_for(pool)
    worker = fleet.start()
    run_id, scope_key = start_run(store, fleet, slow_target, n_jobs)
    wait_mid_job(store, scope_key, busy=POOLS[pool][0])
    mark_fault(store, run_id, scope_key, f"worker SIGKILL ({pool})")
    os.killpg(worker.pid, signal.SIGKILL)
    workers.stop_worker(worker, grace_s=0.1)  # reap it
    running = in_flight(store, scope_key)  # final now: nobody runs anything
    assert running, "the kill landed mid-job"

    fleet.start()
    wait_records(store, scope_key, n_jobs, fleet)

    check = check_scope(store.client, scope_key)
    report(f"worker SIGKILL ({pool})", check, pool=pool, in_flight_at_fault=len(running))
    assert_all_accounted(check, n_jobs)
    assert not check.failed
    assert set(running) <= set(check.redelivered), "every job the kill interrupted ran again"
    assert all(n == 2 for n in check.redelivered.values())
    assert check.recovery_s is not None and check.recovery_s >= VISIBILITY_TIMEOUT_S - 1


def test_redis_restarted_mid_run(
    private_redis: PrivateRedis,
    store: TimingStore,
    fleet_for: MakeFleet,
    slow_target: str,
) -> None:
    """Redis (broker and timing store) crashes mid-run and comes back 0.5 s later with its
    append-only file. Workers reconnect; jobs whose ack or record write hit the gap are
    redelivered after the visibility timeout."""
    n_jobs = 12
    fleet = fleet_for("threads")
    fleet.start()
    run_id, scope_key = start_run(store, fleet, slow_target, n_jobs)
    wait_mid_job(store, scope_key, busy=POOLS["threads"][0])
    running = in_flight(store, scope_key)
    mark_fault(store, run_id, scope_key, "Redis SIGKILL + restart")
    down_at = time.monotonic()
    private_redis.kill()
    time.sleep(0.5)
    private_redis.start()
    down_s = time.monotonic() - down_at
    restarts = wait_records(store, scope_key, n_jobs, fleet)

    check = check_scope(store.client, scope_key)
    report(
        "Redis SIGKILL + restart", check, pool="threads", in_flight_at_fault=len(running),
        redis_down_s=round(down_s, 2), worker_restarts=restarts,
    )  # fmt: skip
    assert_all_accounted(check, n_jobs)
    assert not check.failed
    assert all(n >= 2 for n in check.redelivered.values())


def test_failing_target_retries_then_records_failures(
    store: TimingStore, fleet_for: MakeFleet
) -> None:
    """A target answering 500 (30 %) or never (20 %): each request is tried REQUEST_TRIES times
    with backoff; a job whose every try failed is recorded as failed, named, with its reason."""
    n_jobs = 40
    with target_process(fail_rate=0.3, hang_rate=0.2) as url:
        fleet = fleet_for("threads", concurrency=20)  # a wave of jobs waits its timeouts at once
        fleet.start()
        _, scope_key = start_run(store, fleet, url, n_jobs)
        wait_records(store, scope_key, n_jobs)

    check = check_scope(store.client, scope_key)
    records = store.load(scope_key)
    retried_ok = [r for r in records if r.outcome == "ok" and ":tries=" in (r.output or "")]
    report(
        "target 500 (30 %) / hang (20 %)", check, pool="threads",
        succeeded_after_retry=len(retried_ok), request_tries=REQUEST_TRIES,
        request_timeout_s=REQUEST_TIMEOUT_S,
    )  # fmt: skip
    assert_all_accounted(check, n_jobs)
    assert not check.redelivered  # the retries happen inside the job, not by redelivery
    assert check.failed, "with 40 jobs and 3 tries at 50 % faults, some job fails every try"
    assert retried_ok, "and some job succeeds on a later try"
    for job_id, why in check.failed.items():
        assert why.startswith(f"RequestFailed: {REQUEST_TRIES} tries, last: "), (job_id, why)
        assert "500" in why or "Timeout" in why
    assert {r.job_id for r in records if r.outcome == "error"} == set(check.failed)


def test_negative_control_early_ack_loses_the_running_jobs(
    private_redis: PrivateRedis,
    store: TimingStore,
    fleet_for: MakeFleet,
    slow_target: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same worker kill with Celery's default early ack: the running jobs' messages were
    acknowledged when they started, so nothing brings them back. The reconciliation must name
    exactly those jobs, and ``jobbench verify`` must exit 1: proof the check can see a loss."""
    monkeypatch.setenv(ACKS_LATE_ENV, "0")
    n_jobs = 12
    fleet = fleet_for("threads")
    worker = fleet.start()
    run_id, scope_key = start_run(store, fleet, slow_target, n_jobs)
    wait_mid_job(store, scope_key, busy=POOLS["threads"][0])
    mark_fault(store, run_id, scope_key, "worker SIGKILL, early ack (negative control)")
    os.killpg(worker.pid, signal.SIGKILL)
    workers.stop_worker(worker, grace_s=0.1)
    running = in_flight(store, scope_key)
    assert running

    fleet.start()
    wait_records(store, scope_key, n_jobs - len(running), fleet)
    # Nothing left anywhere in the broker: no queued message, none held unacknowledged (kombu's
    # "unacked" hash), so the missing jobs can never come back.
    client = store.client
    deadline = time.monotonic() + DEADLINE_S
    while client.llen(fleet.queue) or client.hlen("unacked"):
        assert time.monotonic() < deadline, "the broker still holds messages"
        time.sleep(0.05)

    check = check_scope(store.client, scope_key)
    assert check.missing == running, "exactly the jobs running at the kill are lost"
    assert check.missing_started == running
    assert not check.accounted
    assert check.finished == n_jobs - len(running)

    monkeypatch.setenv("REDIS_URL", private_redis.url)
    capsys.readouterr()
    assert main(["verify", run_id, "--format", "json"]) == EXIT_FAILURE
    doc = json.loads(capsys.readouterr().out)
    assert doc["accounted"] is False and doc["totals"]["missing"] == len(running)
    assert doc["scopes"][0]["missing"] == running
    assert main(["verify", run_id]) == EXIT_FAILURE
    table = capsys.readouterr().out
    assert f"{len(running)} missing: {', '.join(map(str, running))}" in table
    report(
        "worker SIGKILL, early ack (negative control)", check, pool="threads",
        in_flight_at_fault=len(running),
    )  # fmt: skip


# --- the retry policy itself, in process ----------------------------------------------------


def test_request_retries_5xx_with_backoff_then_fails() -> None:
    with target_process(fail_rate=1.0) as url:
        started = time.perf_counter()
        with pytest.raises(RequestFailed) as info:
            fetch(url)
        elapsed = time.perf_counter() - started
    assert info.value.tries == REQUEST_TRIES
    assert "HTTPError: 500" in str(info.value)
    assert elapsed >= sum(retry_delay_s(r) for r in range(1, REQUEST_TRIES))


def test_request_retries_a_hanging_target_after_its_timeout() -> None:
    with target_process(hang_rate=1.0) as url:
        started = time.perf_counter()
        with pytest.raises(RequestFailed, match="Timeout"):
            fetch(url)
        assert time.perf_counter() - started >= REQUEST_TRIES * REQUEST_TIMEOUT_S

        async def fetch_once() -> None:
            async with httpx.AsyncClient() as client:
                await fetch_async(client, url)

        with pytest.raises(RequestFailed, match=f"{REQUEST_TRIES} tries, last: ReadTimeout"):
            asyncio.run(fetch_once())


def test_client_errors_are_not_retried(slow_target: str) -> None:
    base = slow_target.rsplit("/", 1)[0]
    started = time.perf_counter()
    with pytest.raises(RequestFailed, match=r"^1 try, last: HTTPError: 404") as info:
        fetch(f"{base}/no-such-page")
    assert info.value.tries == 1
    assert time.perf_counter() - started < retry_delay_s(1) + LATENCY_MS / 1000
    response, tries = fetch(slow_target)
    assert response.status_code == 200 and tries == 1


# --- the settings the recovery depends on ---------------------------------------------------


def test_a_short_visibility_timeout_gets_a_sweep_to_match() -> None:
    # kombu's own cadence (10 s x 10 = 100 s) would make a 3 s timeout wait up to 100 s.
    assert transport_options(3) == {
        "visibility_timeout": 3, "unacked_restore_interval": 1, "unacked_restore_throttle": 1,
    }  # fmt: skip
    assert transport_options(40)["unacked_restore_interval"] == 10
    assert transport_options(DEFAULT_VISIBILITY_TIMEOUT_S) == {
        "visibility_timeout": DEFAULT_VISIBILITY_TIMEOUT_S  # a benchmark keeps kombu's defaults
    }


def test_a_task_that_cannot_record_gives_its_message_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Timing Redis unreachable: the task rejects with requeue rather than failing, which late
    acks would acknowledge, losing its jobs."""
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(Reject) as info:
        run_jobs_body("jobbench:x:celery_solo:cpu:0", "cpu", "celery_solo", "digest", [[0, 10, 1]])
    assert info.value.requeue is True


def test_the_completion_wait_rides_out_redis_restarting() -> None:
    """The producer polls Redis for records; Redis restarting mid-run (``docker compose restart
    redis``) must not end the run while the deadline is ahead, and must once it is past."""

    class Restarting:
        """A store whose Redis answers after ``down`` refused connections."""

        def __init__(self, down: int) -> None:
            self.down = down

        def count(self, scope_key: str) -> int:
            if self.down:
                self.down -= 1
                raise redis.ConnectionError("Connection refused")
            return 3

    waited = wait_complete(Restarting(down=3), "s", 3, model="m", timeout_s=30)  # type: ignore[arg-type]
    assert waited >= 3 * REDIS_RETRY_INTERVAL_S
    with pytest.raises(redis.ConnectionError):
        wait_complete(Restarting(down=10**6), "s", 3, model="m", timeout_s=0.5)  # type: ignore[arg-type]
