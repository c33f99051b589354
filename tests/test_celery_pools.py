"""Celery runners end to end: real Redis, real worker subprocesses, the local HTTP target.

No timed assertions: deadlines below only keep a broken run from hanging the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import psutil
import pytest
import redis

from producer.runners import RUNNERS, JobBatch, RunnerOptions
from producer.runners.base import RunIncomplete, usable_cpus
from producer.runners.celery import workers
from producer.runners.celery.models import CeleryOptions, CeleryRunner
from producer.runners.celery.publish import enqueue, wait_complete
from producer.services import Target, free_port
from shared import keys
from shared.timings import JobRecord, TimingStore, timed_job
from shared.workloads import Workload, cpu_arg
from worker.tasks import run_jobs

pytestmark = pytest.mark.integration

EXPECTED_POOL = {"celery_prefork": "prefork", "celery_threads": "threads", "celery_solo": "solo"}
#: Seconds any polling loop in this file may wait before the test fails (never reached when
#: things work; it only turns a hang into a failure).
DEADLINE_S = 30.0


@pytest.fixture
def options(redis_url: str) -> tuple[RunnerOptions, CeleryOptions]:
    return (
        RunnerOptions(cpu_count=min(2, usable_cpus()), redis_url=redis_url),
        CeleryOptions(broker_url=redis_url, completion_timeout_s=60.0),
    )


@pytest.fixture
def store(redis_url: str) -> Iterator[TimingStore]:
    s = TimingStore.from_url(redis_url)
    yield s
    s.client.close()


def check_records(records: list[JobRecord], n_jobs: int, workload: Workload, model: str) -> None:
    assert [r.job_id for r in records] == list(range(n_jobs))  # exactly one record per job
    for r in records:
        assert r.workload == workload
        assert r.model == model
        assert r.pool == EXPECTED_POOL[model]  # what the worker runs, detected in the worker
        assert 0 < r.enqueued_at_ns <= r.started_at_ns <= r.finished_at_ns
        assert r.host and r.thread and r.process
        assert r.pid > 0 and r.pid != os.getpid()
        assert r.attempt == 1
        assert r.outcome in {"ok", "error"}


@pytest.mark.parametrize("model", sorted(EXPECTED_POOL))
def test_pool_runs_io_and_cpu(
    model: str, options: tuple[RunnerOptions, CeleryOptions], run_id: str, target: Target
) -> None:
    closed_port_url = f"http://127.0.0.1:{free_port()}/ip"
    not_found_url = f"{target.base_url}/no-such-page"
    runner = RUNNERS[model](*options)
    assert runner.family == "celery"
    with runner:
        facts = runner.start("io")
        assert facts["pool"] == EXPECTED_POOL[model]
        assert facts["startup_s"] > 0 and facts["reused"] is False

        io_args: list[int | str] = [target.url] * 10
        io_args[3] = closed_port_url
        io_args[7] = not_found_url
        io = runner.run(JobBatch(run_id=run_id, workload="io", args=io_args, repeat=0))
        check_records(io.records, 10, "io", model)
        failed = {r.job_id: r for r in io.records if r.outcome == "error"}
        assert sorted(failed) == [3, 7]  # recorded with their message, not lost, no hang
        assert "ConnectionError" in (failed[3].error or "")
        assert "404" in (failed[7].error or "")
        assert all(
            r.output and r.output.startswith("http:200:")
            for r in io.records
            if r.job_id not in failed
        )
        assert io.params["pool"] == EXPECTED_POOL[model]
        assert io.params["batch_size"] >= 1 and io.extra["n_messages"] >= 1

        assert runner.start("cpu")["reused"] is False  # a worker sized for CPU replaces it
        cpu_args: list[int | str] = [cpu_arg(i) for i in range(20)]
        cpu = runner.run(JobBatch(run_id=run_id, workload="cpu", args=cpu_args, repeat=0))
        check_records(cpu.records, 20, "cpu", model)
        assert all(r.outcome == "ok" and r.output == "primes:168:997" for r in cpu.records[:1])
        assert runner.start("cpu")["reused"] is True  # same workload: the worker is kept
        assert isinstance(runner, CeleryRunner) and runner._worker is not None
        worker_pid = runner._worker.pid
    assert not _alive(worker_pid)  # stop() on leaving the block


def test_redelivered_job_keeps_one_record(
    redis_url: str, run_id: str, store: TimingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task body run twice for the same jobs (what a redelivery does): one row each."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    scope_key = keys.scope(run_id, "celery_solo", "cpu", 0)
    jobs: list[list[int | str]] = [[0, 100, time.time_ns()], [1, 200, time.time_ns()]]
    run_jobs(scope_key, "cpu", "celery_solo", "digest", jobs)
    run_jobs(scope_key, "cpu", "celery_solo", "digest", jobs)
    records = store.load(scope_key)
    assert [(r.job_id, r.attempt) for r in records] == [(0, 2), (1, 2)]
    assert store.attempts(scope_key) == {0: 2, 1: 2}


def test_killed_prefork_child_redelivers_its_message(
    redis_url: str, run_id: str, store: TimingStore
) -> None:
    """acks_late + reject_on_worker_lost: a message whose child dies runs again (attempt 2)."""
    queue = workers.queue_name("redelivery", run_id)
    app = workers.producer_app(redis_url)
    # One job long enough to be caught mid-run (a sieve of a few million: about a second).
    batch = JobBatch(run_id=run_id, workload="cpu", args=[2_000_000], repeat=0)
    with workers.running_worker(
        pool="prefork", concurrency=1, queue=queue, broker_url=redis_url, redis_url=redis_url
    ) as worker:
        enqueued = enqueue(
            batch, app=app, store=store, queue=queue, model="celery_prefork", batch_size=1
        )
        scope_key = enqueued.scope_key
        _poll(lambda: store.attempts(scope_key).get(0) == 1, "the job to start")
        assert store.count(scope_key) == 0
        for child in psutil.Process(worker.pid).children():
            child.kill()
        wait_complete(store, scope_key, 1, model="celery_prefork", timeout_s=DEADLINE_S)
    [record] = store.load(scope_key)
    assert record.attempt == 2 and record.outcome == "ok"
    workers.delete_queue(redis_url, queue)


def test_missing_jobs_are_named(redis_url: str, run_id: str, store: TimingStore) -> None:
    queue = workers.queue_name("nobody-consumes", run_id)
    app = workers.producer_app(redis_url)
    batch = JobBatch(run_id=run_id, workload="cpu", args=[cpu_arg(i) for i in range(5)], repeat=0)
    try:
        enqueued = enqueue(
            batch, app=app, store=store, queue=queue, model="celery_solo", batch_size=2
        )
        assert enqueued.n_messages == 3 and enqueued.batch_size == 2
        # Pretend job 1 was done by someone: only the others may be named.
        store.save(enqueued.scope_key, [timed_job(1, "cpu", 10, model="celery_solo", pool="solo")])
        with pytest.raises(RunIncomplete) as info:
            wait_complete(store, enqueued.scope_key, 5, model="celery_solo", timeout_s=0.3)
        assert info.value.missing == [0, 2, 3, 4]
        assert "4 of 5 jobs missing: 0, 2, 3, 4" in str(info.value)
        # A dead worker is noticed without waiting for the timeout.
        with pytest.raises(RunIncomplete, match="worker exited"):
            wait_complete(
                store, enqueued.scope_key, 5, model="celery_solo", timeout_s=DEADLINE_S,
                alive=lambda: False,
            )  # fmt: skip
    finally:
        workers.delete_queue(redis_url, queue)
    client: redis.Redis = store.client
    assert not client.exists(queue)


OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from producer.runners.celery.workers import running_worker

    queue, url = sys.argv[1], sys.argv[2]
    with running_worker(
        pool="prefork", concurrency=2, queue=queue, broker_url=url, redis_url=url
    ) as w:
        print(w.pid, flush=True)
        time.sleep(120)
    """
)


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name
)
def test_signal_to_owner_leaves_no_worker(
    signum: signal.Signals, redis_url: str, run_id: str
) -> None:
    """Ctrl-C, a kill, even a SIGKILL of the process that started a worker: nothing survives."""
    queue = workers.queue_name("owner", f"{run_id}-{signum.name.lower()}")
    with subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, queue, redis_url], stdout=subprocess.PIPE
    ) as owner:
        try:
            assert owner.stdout is not None
            line = owner.stdout.readline()
            assert line.strip(), "the owner process died before its worker was up"
            worker_pid = int(line)
            worker = psutil.Process(worker_pid)
            group = [worker_pid, *(c.pid for c in worker.children(recursive=True))]
            assert len(group) >= 3  # the prefork parent and its two children
            owner.send_signal(signum)
            owner.wait(DEADLINE_S)
            _poll(lambda: not any(_alive(pid) for pid in group), "every worker process to exit")
            assert not _processes_mentioning(queue)
        finally:
            if owner.poll() is None:
                owner.kill()
                owner.wait()
            workers.delete_queue(redis_url, queue)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if any(text in part for part in cmdline) and _alive(proc.pid):
            found.append(proc.pid)
    return found


def _poll(condition: object, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def test_a_process_pool_forked_beside_a_worker_stops_fast_and_spares_it(
    redis_url: str, run_id: str
) -> None:
    """The bench starts Celery workers and in-process pools side by side: a pool child inherits
    the producer's cleanup hooks, and ``Pool.terminate`` must neither hang on them nor make the
    child stop the parent's Celery worker."""
    from producer.runners import RUNNERS, JobBatch, RunnerOptions
    from shared.workloads import cpu_arg

    queue = workers.queue_name("celery_solo", run_id)
    with workers.running_worker(
        pool="solo", concurrency=1, queue=queue, broker_url=redis_url, redis_url=redis_url
    ) as worker:
        runner = RUNNERS["multiprocessing_pool"](RunnerOptions(cpu_count=2))
        with runner:
            runner.start("cpu")
            result = runner.run(JobBatch(run_id, "cpu", [cpu_arg(i) for i in range(20)], 0))
            children = {r.pid for r in result.records}
        # terminate() sent SIGTERM to the children: they are gone, the worker is not.
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                       for pid in children)  # fmt: skip
        assert worker.alive()
