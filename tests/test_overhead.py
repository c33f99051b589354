"""The fast Celery path and ``jobbench overhead``: record encoding, streamed enqueue, attempt
counting, the targets, and a tiny overhead run end to end.

No speed assertions: the targets live in the benchmark output (``targets`` in overhead.json and
results.json), where they are judged on medians of repeats, not in a test on a shared machine.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producer.cli import EXIT_OK, EXIT_USAGE, main
from producer.goals import (
    CPU_MAX_RATIO,
    IO_MAX_RATIO,
    bench_goals,
    goal_lines,
    overhead_goals,
)
from producer.overhead import OVERHEAD_DIR, OVERHEAD_FILE, count_list, pool_list
from producer.runners import JobBatch
from producer.runners.celery import publish as celery_run
from producer.runners.celery import workers
from producer.runners.celery.publish import MessageRanges, enqueue, message_ranges, wait_complete
from shared import keys
from shared.timings import NOOP, NOOP_OUTPUT, RECORD_FIELDS, JobRecord, TimingStore, timed_job
from worker.app import RUN_JOBS_TASK

# --- units: no services -----------------------------------------------------------------------


def _record(job_id: int = 7) -> JobRecord:
    return timed_job(job_id, "cpu", 30, model="celery_prefork", pool="prefork", enqueued_at_ns=1)


def test_record_round_trips_as_a_json_array() -> None:
    record = _record()
    raw = record.to_json()
    assert json.loads(raw)[:3] == [7, "cpu", "celery_prefork"]
    assert len(json.loads(raw)) == len(RECORD_FIELDS)
    assert JobRecord.from_json(raw) == record
    assert JobRecord.from_json(raw.encode()) == record


def test_records_written_as_json_objects_still_decode() -> None:
    """Records kept in Redis by older jobbench (a week's TTL) are JSON objects."""
    record = _record()
    old = json.dumps({**dataclasses.asdict(record), "unknown_later_field": 1})
    assert JobRecord.from_json(old) == record


def test_record_field_order_is_pinned() -> None:
    """The array encoding is positional: new fields go at the end, never in between."""
    assert RECORD_FIELDS[:15] == (
        "job_id", "workload", "model", "pool", "enqueued_at_ns", "started_at_ns",
        "finished_at_ns", "host", "pid", "process", "thread", "attempt", "outcome", "error",
        "output",
    )  # fmt: skip


def test_noop_job_does_nothing_but_is_recorded() -> None:
    record = timed_job(3, NOOP, 0, model="m", pool="p")
    assert record.outcome == "ok" and record.output == NOOP_OUTPUT
    assert record.started_at_ns <= record.finished_at_ns


def test_message_ranges_are_lazy_and_cover_every_job_once() -> None:
    huge = MessageRanges(10**12, 7)  # constant memory: nothing is built up front
    assert len(huge) == -(-(10**12) // 7)
    assert huge[0] == range(0, 7) and huge[-1] == range(10**12 - 10**12 % 7, 10**12)
    for n, size in ((10, 4), (12, 4), (0, 3), (1, 1), (5, 100)):
        ranges = MessageRanges(n, size)
        assert list(ranges) == message_ranges(n, size) == [ranges[i] for i in range(len(ranges))]
        assert [i for r in ranges for i in r] == list(range(n))
    assert list(MessageRanges(10, 4)[1:]) == [range(4, 8), range(8, 10)]
    with pytest.raises(ValueError):
        MessageRanges(10, 0)


def _row(workload: str, model: str, family: str, median: float, repeats: int = 5) -> dict[str, Any]:
    wall = {"median": median, "noisy": False, "values": [median] * repeats}
    return {"workload": workload, "model": model, "family": family, "wall_s": wall,
            "repeats": repeats}  # fmt: skip


def test_bench_targets_compare_within_one_run() -> None:
    rows = [
        _row("cpu", "sequential", "in-process", 11.0),
        _row("cpu", "multiprocessing_pool", "in-process", 5.5),
        _row("cpu", "process_pool_map", "in-process", 5.7),
        _row("cpu", "celery_prefork", "celery", 5.9),
        _row("cpu", "celery_solo", "celery", 10.5),
        _row("io", "asyncio", "in-process", 0.40),
        _row("io", "celery_threads", "celery", 0.60, repeats=3),
    ]
    t = bench_goals(rows, cores=2)
    cpu, io = t["cpu_celery_vs_in_process"], t["io_celery_vs_in_process"]
    assert cpu["numerator"]["model"] == "celery_prefork"  # the best Celery pool
    assert cpu["denominator"]["model"] == "multiprocessing_pool"  # sequential is not parallel
    assert cpu["value"] == pytest.approx(5.9 / 5.5) and cpu["met"] is (CPU_MAX_RATIO >= 5.9 / 5.5)
    # Identical repeats: the interval is the point, so the verdict is decided.
    assert cpu["ci"]["low"] == pytest.approx(5.9 / 5.5) and cpu["verdict"] == "missed"
    assert io["value"] == pytest.approx(1.5) and io["met"] is False and IO_MAX_RATIO < 1.5
    assert io["enough_repeats"] is False and io["verdict"] == "missed"
    eff = t["cpu_best_efficiency"]
    assert eff["efficiency"] == pytest.approx((11.0 / 2) / 5.5) and eff["verdict"] == "met"
    lines = goal_lines(t)
    assert any("MISSED" in line and "only 3 repeats" in line for line in lines)
    assert bench_goals(rows[:4])["io_celery_vs_in_process"]["met"] is None  # unmeasured


def test_overhead_targets_judge_each_section() -> None:
    wall = {"median": 0.1, "values": [0.1] * 5}
    doc = {
        "enqueue": {"auto_batches_pipelined": {"jobs_per_s": 250_000.0, "enqueue_s": wall}},
        "capture": {"throughput_cost_fraction": 0.05, "with_s": wall},
        "memory": {"peak_ratio": 1.05, "from_jobs": 10, "to_jobs": 100,
                   "probes": {"100": {"rss_peak_mb": wall}}},
    }  # fmt: skip
    t = overhead_goals(doc)
    assert t["enqueue_jobs_per_s"]["met"] is True
    assert t["timing_capture_fraction"]["met"] is False
    assert t["producer_memory_ratio"]["met"] is True
    assert all(v["met"] is None for v in overhead_goals({}).values())


def test_option_parsers() -> None:
    assert count_list("none") == () and count_list("10,1000") == (10, 1000)
    assert pool_list("solo,prefork") == ("prefork", "solo")
    for bad in ("x", "0,5", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            count_list(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        pool_list("gevent")


def test_bad_overhead_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["overhead", "--pools", "eventlet"])
    assert info.value.code == EXIT_USAGE
    assert "pools must be some of" in capsys.readouterr().err


# --- integration: real Redis, real workers ------------------------------------------------------


@pytest.fixture
def store(redis_url: str) -> Iterator[TimingStore]:
    s = TimingStore.from_url(redis_url)
    yield s
    s.client.close()


@pytest.mark.integration
def test_attempts_are_counted_per_job_in_one_call(store: TimingStore, run_id: str) -> None:
    scope = keys.scope(run_id, "celery_solo", "cpu", 0)
    assert store.start_attempts(scope, [0, 1, 5]) == [1, 1, 1]
    assert store.start_attempts(scope, [5, 1]) == [2, 2]
    assert store.start_attempts(scope, []) == []
    assert store.attempts(scope) == {0: 1, 1: 2, 5: 2}


@pytest.mark.integration
def test_enqueue_times_are_written_streamed(store: TimingStore, run_id: str) -> None:
    scope = keys.scope(run_id, "celery_solo", "cpu", 0)
    ranges = MessageRanges(7, 3)
    store.mark_enqueued_ranges(scope, zip(ranges, [10, 20, 30], strict=True), chunk=2)
    raw = store.client.hgetall(keys.enqueued(scope))
    assert {int(k): int(v) for k, v in raw.items()} == {
        0: 10, 1: 10, 2: 10, 3: 20, 4: 20, 5: 20, 6: 30
    }  # fmt: skip


@pytest.mark.integration
def test_pipelined_messages_are_ordinary_celery_messages(
    redis_url: str, store: TimingStore, run_id: str
) -> None:
    """Published through kombu's pipeline, read back as Celery task messages, then run by a
    real worker: every job recorded once, with its enqueue time."""
    queue = workers.queue_name("pipelined", run_id)
    app = workers.producer_app(redis_url)
    batch = JobBatch(run_id=run_id, workload="cpu", args=range(1000, 1250), repeat=0)
    try:
        enq = enqueue(
            batch, app=app, store=store, queue=queue, model="celery_solo", batch_size=1,
            pipeline_size=100,
        )  # fmt: skip
        assert enq.n_messages == 250 and store.client.llen(queue) == 250
        envelope = json.loads(store.client.lindex(queue, -1))  # the first published
        assert envelope["headers"]["task"] == RUN_JOBS_TASK
        assert envelope["properties"]["body_encoding"] == "base64"  # kombu's Redis envelope
        body = json.loads(base64.b64decode(envelope["body"]))
        scope_key, workload, model, mode, jobs = body[0]
        assert (scope_key, workload, model, mode) == (enq.scope_key, "cpu", "celery_solo", "digest")
        assert jobs[0][:2] == [0, 1000]
        with workers.running_worker(
            pool="solo", concurrency=1, queue=queue, broker_url=redis_url, redis_url=redis_url,
            prefetch_multiplier=4,
        ):  # fmt: skip
            wait_complete(store, enq.scope_key, 250, model="celery_solo", timeout_s=60)
        records = store.load(enq.scope_key)
        assert [r.job_id for r in records] == list(range(250))
        assert all(r.attempt == 1 and r.output and r.output.startswith("primes:") for r in records)
        enqueued = store.client.hgetall(keys.enqueued(enq.scope_key))
        assert len(enqueued) == 250
        assert all(int(enqueued[str(r.job_id).encode()]) == r.enqueued_at_ns for r in records)
    finally:
        workers.delete_queue(redis_url, queue)


@pytest.mark.integration
def test_noop_jobs_run_through_a_worker(redis_url: str, store: TimingStore, run_id: str) -> None:
    queue = workers.queue_name("noop", run_id)
    app = workers.producer_app(redis_url)
    batch = JobBatch(run_id=run_id, workload="cpu", args=range(40), repeat=0)
    try:
        with workers.running_worker(
            pool="threads", concurrency=2, queue=queue, broker_url=redis_url, redis_url=redis_url
        ):
            enq = enqueue(
                batch, app=app, store=store, queue=queue, model="overhead", batch_size=6,
                workload=NOOP,
            )  # fmt: skip
            assert enq.scope_key == keys.scope(run_id, "overhead", NOOP, 0)
            collector = celery_run.RecordCollector(store, enq.scope_key, enq.ranges)
            wait_complete(
                store, enq.scope_key, 40, model="overhead", timeout_s=60, collector=collector
            )
            records = collector.result()
        assert [r.job_id for r in records] == list(range(40))
        assert {r.workload for r in records} == {NOOP} and {r.pool for r in records} == {"threads"}
    finally:
        workers.delete_queue(redis_url, queue)


@pytest.mark.integration
def test_overhead_command_tiny_run(redis_url: str, tmp_path: Path) -> None:
    """``jobbench overhead`` with tiny sizes: every section measured, JSON written, targets
    judged (met or not: no speed assertion here)."""
    started = time.monotonic()
    code = main([
        "overhead", "--pools", "solo", "--repeat", "1", "--warmup", "0", "--noop-jobs", "30",
        "--noop-messages", "5", "--enqueue-jobs", "200", "--capture-jobs", "5",
        "--memory-jobs", "20,60", "--out", str(tmp_path), "-q",
    ])  # fmt: skip
    assert code == EXIT_OK
    path = tmp_path / OVERHEAD_DIR / "latest" / OVERHEAD_FILE
    doc = json.loads(path.read_text())
    o = doc["overhead"]
    assert doc["kind"] == "overhead" and doc["schema"] == 1
    assert o["redis"]["round_trip_us"] > 0
    assert set(o["enqueue"]) >= {"naive_one_job_per_message", "one_job_per_message_pipelined",
                                 "auto_batches_pipelined"}  # fmt: skip
    assert set(o["noop"]) == {"solo", "threads+events"}
    assert o["noop"]["solo"]["auto_batches"]["n_jobs"] == 30
    assert o["capture"]["n_jobs"] == 5 and "encode_after" in o["capture"]["per_record_us"]
    assert set(o["memory"]["probes"]) == {"20", "60"} and o["memory"]["peak_ratio"] > 0
    assert set(doc["targets"]) == {
        "enqueue_jobs_per_s", "timing_capture_fraction", "producer_memory_ratio"
    }  # fmt: skip
    assert all(t["met"] in (True, False) for t in doc["targets"].values())
    assert time.monotonic() - started < 170  # a hang guard, not a speed target
    # Nothing left behind: no queue, no scope of this run.
    client = TimingStore.from_url(redis_url).client
    assert not list(client.scan_iter(match=f"jobbench:{doc['run_id']}*"))
    assert not list(client.scan_iter(match=f"jobbench.{doc['run_id']}*"))
    assert not workers.live_workers()


@pytest.mark.integration
def test_bench_results_carry_the_targets(tmp_path: Path) -> None:
    code = main([
        "bench", "--workloads", "io", "--models", "asyncio,celery_threads", "--io-jobs", "4",
        "--latency-ms", "10", "--repeat", "1", "--warmup", "0", "--out", str(tmp_path), "-q",
    ])  # fmt: skip
    assert code == EXIT_OK
    doc = json.loads((tmp_path / "latest" / "results.json").read_text())
    io = doc["targets"]["io_celery_vs_in_process"]
    assert io["met"] in (True, False) and io["enough_repeats"] is False
    assert doc["targets"]["cpu_celery_vs_in_process"]["met"] is None  # no CPU models ran


def test_a_ratio_within_the_noise_is_undecided_and_names_the_repeats_to_decide() -> None:
    rows = [
        _row("cpu", "sequential", "in-process", 11.0),
        _row("cpu", "multiprocessing_pool", "in-process", 5.5),
        _row("cpu", "celery_prefork", "celery", 5.6),
    ]
    # Interleaved repeats whose ratio swings around the limit: no verdict yet.
    rows[1]["wall_s"]["values"] = [5.5, 5.0, 6.0, 5.2, 5.8]
    rows[2]["wall_s"]["values"] = [5.6, 5.6, 5.5, 5.9, 5.4]
    rows[2]["wall_s"]["median"] = 5.6
    cpu = bench_goals(rows, cores=2)["cpu_celery_vs_in_process"]
    assert cpu["verdict"] == "undecided"
    assert cpu["ci"]["low"] < CPU_MAX_RATIO < cpu["ci"]["high"]
    assert any("undecided" in line and "95% CI" in line for line in goal_lines({"cpu": cpu}))
