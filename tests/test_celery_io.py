"""Celery on IO (issue 18): the fetch-path trace, the worker's switch interval, and the levers,
each a model of its own (one file under ``producer/runners/celery/`` and this test):
``celery_threads_switch_1ms``, ``celery_threads_prefetch8``, ``celery_threads_noprefetch``,
``celery_threads_2x50`` and ``celery_solo_asyncio``.

Every model runs the IO workload end to end against real Redis, real workers and the local
target; no timed assertion (the figures are ``make bench-celery-io``'s, on a quiet machine).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producer.bench import BenchConfig
from producer.cli import EXIT_OK, EXIT_USAGE, main
from producer.goals import bench_goals
from producer.runners import JobBatch, RunnerOptions, registry
from producer.runners.base import usable_cpus
from producer.runners.celery.models import CeleryOptions, CeleryRunner
from producer.runners.celery.solo_asyncio import GATHER_BATCH_SIZE
from producer.runners.facts import facts
from producer.services import Target, free_port
from shared import fetch_path, keys
from shared.fetch_path import MessageTrace, breakdown, consumer_cpu, summary_note
from shared.settings import Settings, SettingsError
from shared.timings import JobRecord, TimingStore, job_record
from tests.conftest import need
from worker import app as worker_app
from worker import fetch_trace
from worker.tasks import run_io_jobs_gathered_body

ROOT = Path(__file__).resolve().parent.parent

#: The lever models and the pool each must really run.
LEVERS = {
    "celery_threads_switch_1ms": "threads",
    "celery_threads_prefetch8": "threads",
    "celery_threads_noprefetch": "threads",
    "celery_threads_2x50": "threads",
    "celery_solo_asyncio": "solo",
}
#: Seconds a polling loop may wait before the test fails (never reached when things work).
DEADLINE_S = 30.0


@pytest.fixture
def store(redis_url: str) -> Iterator[TimingStore]:
    s = TimingStore.from_url(redis_url)
    yield s
    s.client.close()


def _runner(model: str, redis_url: str, **celery: Any) -> CeleryRunner:
    cls = registry.load(model)
    assert issubclass(cls, CeleryRunner)
    options = RunnerOptions(cpu_count=min(2, usable_cpus()), redis_url=redis_url)
    return cls(options, CeleryOptions(broker_url=redis_url, completion_timeout_s=60.0, **celery))


# --- units: no services ------------------------------------------------------------------------


def test_levers_are_found_named_and_only_the_best_is_a_default() -> None:
    defaults = registry.default_models()
    for model in LEVERS:
        cls = registry.load(model)
        assert cls.family == "celery" and cls.workloads == frozenset({"io"})
        # The measured best (batched, gathered) is a row of every plain run, beside
        # celery_threads; the worker-setting levers stay named variants.
        assert (model in defaults) == (model == "celery_solo_asyncio")
    assert "celery_threads" in defaults
    make = subprocess.run(
        ["make", "-n", "bench-celery-io"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert make.returncode == 0, make.stderr
    for model in (*LEVERS, "celery_threads", "asyncio", "threading"):
        assert model in make.stdout  # the lead's one command tries every configuration
    assert "--fetch-trace" in make.stdout and "amqp://" in make.stdout


def test_a_message_trace_breaks_down_into_the_stages() -> None:
    ms = 1_000_000
    traces = [
        # message of jobs 0-1: published at 0, received at 10 ms, started by the pool at 12 ms
        MessageTrace(0, 2, 0, 10 * ms, 12 * ms, 100 * ms, 7, "h"),
        # message of job 2: received 20 ms after the first by the same consumer, 1 ms more CPU
        MessageTrace(2, 1, 0, 30 * ms, 31 * ms, 101 * ms, 7, "h"),
    ]
    assert MessageTrace.from_json(traces[0].to_json()) == traces[0]

    def rec(job_id: int, start_ms: int, run_ms: int) -> JobRecord:
        r = job_record(job_id, "io", model="m", pool="threads", started_at_ns=start_ms * ms)
        return dataclasses.replace(r, finished_at_ns=(start_ms + run_ms) * ms)

    records = [rec(0, 12, 160), rec(1, 172, 160), rec(2, 31, 165), rec(9, 0, 1)]
    stages, consumer = breakdown(traces, records)
    assert stages["publish_to_received"] == pytest.approx([0.010, 0.030])
    assert stages["received_to_prerun"] == pytest.approx([0.002, 0.001])
    # per job: the second job of a message waits for the first; job 9 has no message
    assert stages["prerun_to_job_start"] == pytest.approx([0.0, 0.160, 0.0])
    assert stages["job_run"] == pytest.approx([0.160, 0.160, 0.165, 0.001])
    assert consumer["consumer_cpu_per_message_us"] == pytest.approx(1000.0)
    assert consumer["consumer_cpu_share"] == pytest.approx(0.05)
    assert consumer_cpu(traces[:1]) == {}  # one message: no interval to measure
    assert summary_note({s: {"p50": 0.002} for s in fetch_path.STAGES}) == "fetch p50 2/2/2 ms"
    assert summary_note({}) is None


def test_switch_interval_is_a_validated_worker_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    env = worker_app.SWITCH_INTERVAL_ENV
    assert worker_app.switch_interval_s({}) == worker_app.DEFAULT_SWITCH_INTERVAL_S
    assert sys.getswitchinterval() == pytest.approx(worker_app.DEFAULT_SWITCH_INTERVAL_S)
    assert worker_app.switch_interval_s({env: "0.001"}) == 0.001
    for bad in ("x", "0", "-1", "2", "nan"):
        with pytest.raises(SettingsError, match=env):
            worker_app.switch_interval_s({env: bad})
    # What a worker does at worker_init, in this process (restored after).
    before = sys.getswitchinterval()
    monkeypatch.setenv(env, "0.002")
    monkeypatch.delenv(fetch_path.FETCH_TRACE_ENV, raising=False)
    try:
        worker_app._tune_worker()
        assert sys.getswitchinterval() == pytest.approx(0.002)
        assert not fetch_trace.enabled()  # off: no signal handler connected
    finally:
        sys.setswitchinterval(before)


def test_a_malformed_switch_interval_is_bad_input(tmp_path: Path) -> None:
    env = {**os.environ, worker_app.SWITCH_INTERVAL_ENV: "fast"}
    proc = subprocess.run(
        [sys.executable, "-m", "producer.cli", "bench", "--models", "celery_threads",
         "--workloads", "io", "--io-jobs", "2", "--repeat", "1", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "JOBBENCH_WORKER_SWITCH_INTERVAL_S" in proc.stderr and "Traceback" not in proc.stderr


def test_disable_prefetch_runs_on_redis_brokers_only() -> None:
    cls = registry.load("celery_threads_noprefetch")
    settings = Settings()
    amqp = "amqp://guest:guest@127.0.0.1:5672//"
    both = BenchConfig(brokers=("redis", amqp))
    assert cls.variants(both, settings) == ["celery_threads_noprefetch"]
    assert registry.load("celery_threads").variants(both, settings) == [
        "celery_threads", "celery_threads@amqp"
    ]  # fmt: skip
    with pytest.raises(SettingsError, match="needs a Redis broker"):
        cls.check(BenchConfig(brokers=(amqp,)), settings)


def test_the_io_goal_takes_the_best_celery_configuration() -> None:
    def row(model: str, family: str, median: float) -> dict[str, object]:
        wall = {"median": median, "noisy": False, "values": [median] * 5}
        return {"workload": "io", "model": model, "family": family, "wall_s": wall,
                "repeats": 5, "baseline": False, "in_timeline": True, "notes": [],
                "caveat": None}  # fmt: skip

    rows = [
        row("asyncio", "in-process", 0.40),
        row("threading", "in-process", 0.35),
        row("celery_threads", "celery", 0.60),
        row("celery_solo_asyncio", "celery", 0.42),
    ]
    goal = next(iter(g for k, g in bench_goals(rows).items() if k.startswith("io_")))
    assert goal["numerator"]["model"] == "celery_solo_asyncio"
    assert goal["denominator"]["model"] == "threading"
    assert goal["value"] == pytest.approx(0.42 / 0.35)


# --- integration: real Redis, workers and target ---------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("model", sorted(LEVERS))
def test_each_lever_runs_the_io_workload_one_record_per_job(
    model: str, redis_url: str, run_id: str, target: Target, store: TimingStore, tmp_path: Path
) -> None:
    n_jobs = 12
    runner = _runner(model, redis_url)
    with runner:
        started = runner.start("io")
        assert started["pool"] == LEVERS[model]
        result = runner.run(JobBatch(run_id, "io", [target.url] * n_jobs, 0))
        nodes = {r.pid for r in result.records}
        assert runner._worker is not None
        queue = runner._worker.queue
    assert [r.job_id for r in result.records] == list(range(n_jobs))  # one record per job
    assert all(r.outcome == "ok" and r.output and r.output.startswith("http:200:")
               for r in result.records)  # fmt: skip
    assert all(r.model == model and r.pool == LEVERS[model] and r.attempt == 1
               for r in result.records)  # fmt: skip
    assert result.params["pool"] == LEVERS[model]
    assert not store.client.exists(keys.fetch_path(result.extra["scope"]))  # trace off: no key
    assert not result.stages_s
    if model == "celery_threads_2x50":
        assert started["nodes"] == 2 and started["concurrency"] == 100
        assert result.params["nodes"] == 2
        assert len(started["node"].split(",")) == 2
    if model == "celery_threads_noprefetch":
        assert result.params["disable_prefetch"] is True
    if model == "celery_threads_switch_1ms":
        assert result.params["switch_interval_s"] == 0.001
    if model == "celery_threads_prefetch8":
        assert result.params["prefetch_multiplier"] == 8
    if model == "celery_solo_asyncio":
        assert result.extra["n_messages"] == 1 and result.params["batch_size"] == n_jobs
        assert len(nodes) == 1
        assert {r.thread for r in result.records} == {"MainThread"}  # one loop, no pool
        assert runner.concurrency("io", 1000) == GATHER_BATCH_SIZE
    # stopped: no worker process and no queue left
    assert not store.client.exists(queue)
    if model == "celery_threads_2x50":
        del runner
        _a_forked_pool_still_starts(tmp_path)


def _a_forked_pool_still_starts(out: Path) -> None:
    """Waiting for both nodes uses broadcasts (``inspect``); a broadcast's connection left in the
    app's pool made processes forked later hang in kombu's after-fork clean-up, reading a reply
    on the socket they share with this process: this bench (``test_cli``'s tiny run) hung in its
    ``multiprocessing_pool`` every time before the fix."""
    gc.collect()  # what ending the test does: the runner's connections go back to their pools
    argv = ["bench", "--models", "sequential,asyncio,thread_pool,multiprocessing_pool",
            "--io-jobs", "10", "--cpu-jobs", "60", "--latency-ms", "40", "--repeat", "2",
            "-q", "--out", str(out)]  # fmt: skip
    assert main(argv) == EXIT_OK


@pytest.mark.integration
def test_solo_asyncio_on_rabbitmq(redis_url: str, run_id: str, target: Target) -> None:
    from tests.test_brokers import AMQP_URL, amqp_reachable

    need(amqp_reachable(), "no RabbitMQ")
    runner = registry.load("celery_solo_asyncio").create(
        "celery_solo_asyncio@amqp",
        RunnerOptions(redis_url=redis_url),
        BenchConfig(brokers=("redis", AMQP_URL), completion_timeout_s=60.0),
        Settings(redis_url=redis_url),
    )
    with runner:
        runner.start("io")
        result = runner.run(JobBatch(run_id, "io", [target.url] * 5, 0))
    assert [r.job_id for r in result.records] == list(range(5))
    assert {r.model for r in result.records} == {"celery_solo_asyncio@amqp"}


@pytest.mark.integration
def test_fetch_trace_breaks_down_every_message(
    redis_url: str, run_id: str, target: Target, store: TimingStore
) -> None:
    n_jobs = 8
    runner = _runner("celery_threads", redis_url, fetch_trace=True)
    with runner:
        assert runner.start("io")["fetch_trace"] is True
        result = runner.run(JobBatch(run_id, "io", [target.url] * n_jobs, 0))
    traces = fetch_path.load(store, result.extra["scope"])
    assert [t.first_job_id for t in traces] == list(range(n_jobs))  # one per message
    by_id = {r.job_id: r for r in result.records}
    for t in traces:
        record = by_id[t.first_job_id]
        assert t.published_at_ns == record.enqueued_at_ns
        assert t.published_at_ns <= t.received_at_ns <= t.prerun_at_ns <= record.started_at_ns
        assert t.consumer_pid != record.pid or record.thread != "MainThread"
    assert set(result.stages_s) == set(fetch_path.STAGES)
    assert all(len(v) == n_jobs and min(v) >= 0 for v in result.stages_s.values())
    assert result.extra["fetch_consumer_cpu_per_message_us"] > 0
    assert 0 < result.extra["fetch_consumer_cpu_share"] <= 1.0


@pytest.mark.integration
def test_fetch_trace_in_a_prefork_child(
    redis_url: str, run_id: str, target: Target, store: TimingStore
) -> None:
    """The consumer's stamps travel with the request to a prefork child."""
    runner = _runner("celery_prefork", redis_url, fetch_trace=True, batch_size=2)
    with runner:
        runner.start("io")
        result = runner.run(JobBatch(run_id, "io", [target.url] * 4, 0))
    traces = fetch_path.load(store, result.extra["scope"])
    assert [(t.first_job_id, t.n_jobs) for t in traces] == [(0, 2), (2, 2)]
    assert all(t.consumer_pid not in {r.pid for r in result.records} for t in traces)
    assert len(result.stages_s["prerun_to_job_start"]) == 4


@pytest.mark.integration
def test_bench_rows_show_the_breakdown_only_when_asked(tmp_path: Path) -> None:
    argv = ["bench", "--workloads", "io", "--models", "celery_threads", "--io-jobs", "4",
            "--latency-ms", "10", "--repeat", "2", "--warmup", "0", "-q"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "on"), "--fetch-trace"]) == EXIT_OK
    assert main([*argv, "--out", str(tmp_path / "off")]) == EXIT_OK
    on = json.loads((tmp_path / "on" / "latest" / "results.json").read_text())["results"][0]
    off = json.loads((tmp_path / "off" / "latest" / "results.json").read_text())["results"][0]
    assert set(on["stages_s"]) == set(fetch_path.STAGES)
    assert set(on["stages_s"]["publish_to_received"]) == {"p50", "p95"}
    assert any(n.startswith("fetch p50 ") for n in facts(on).notes)
    assert on["extra"]["fetch_consumer_cpu_share"]["median"] > 0
    assert "stages_s" not in off and not any("fetch" in n for n in facts(off).notes)
    assert not any(k.startswith("fetch_") for k in off["extra"])
    report_on = (tmp_path / "on" / "latest" / "report.md").read_text()
    report_off = (tmp_path / "off" / "latest" / "report.md").read_text()
    assert "fetch trace" in report_on and "publish → received p50 / p95" in report_on
    assert "fetch trace" not in report_off


@pytest.mark.integration
def test_gathered_task_records_each_job_and_counts_redeliveries(
    redis_url: str, run_id: str, store: TimingStore, target: Target,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    scope_key = keys.scope(run_id, "celery_solo_asyncio", "io", 0)
    bad = f"http://127.0.0.1:{free_port()}/ip"
    jobs: list[list[int | str]] = [[i, target.url, time.time_ns()] for i in range(5)]
    jobs[2][1] = bad
    run_io_jobs_gathered_body(scope_key, "io", "celery_solo_asyncio", "digest", jobs)
    run_io_jobs_gathered_body(scope_key, "io", "celery_solo_asyncio", "digest", jobs)
    records = store.load(scope_key)
    assert [(r.job_id, r.attempt) for r in records] == [(i, 2) for i in range(5)]
    assert [r.outcome for r in records] == ["ok", "ok", "error", "ok", "ok"]
    assert "ConnectError" in (records[2].error or "")
    assert not store.client.exists(keys.fetch_path(scope_key))  # no worker, no trace
    with pytest.raises(ValueError, match="only IO jobs"):
        run_io_jobs_gathered_body(scope_key, "cpu", "m", "digest", [[0, 10, 1]])
