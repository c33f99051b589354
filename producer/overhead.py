"""``jobbench overhead``: what the machinery around a job costs, measured without the job.

Where ``jobbench bench`` compares execution models on the seed's work, this measures the parts of
the Celery path that are not the work, each against a reference, so a slow Celery row can be
explained rather than guessed at:

* ``redis``: one ``PING`` round trip (the floor under every broker and timing-store operation);
* ``enqueue``: the producer's publishing rate into a queue nobody consumes: the naive way (one
  ``send_task`` per job, each its own round trip), one job per message pipelined (the IO path)
  and automatic batches (the CPU path);
* ``noop``: end-to-end throughput of each pool on jobs that do nothing (``noop``, a task-level
  mode, never a bench workload): one job per message (messages/s) and automatic batches (jobs/s),
  plus the cost of task events (``-E``) on one-job messages;
* ``capture``: the cost of the timing records on a sample of the seed's CPU jobs, run in this
  process: the worker's steps (attempt counting, ``timed_job``, saving) and the producer's
  (fetching, parsing) against the bare job function, paired job by job; and per record, the old
  against the new encoding and attempt counting;
* ``memory``: peak RSS of a producer process that enqueues N noop jobs to a real worker and
  waits for them, for N from 10,000 to 1,000,000 (streamed: no per-job list in the producer).

Every figure is the median of ``--repeat`` repeats (pyperf-style summaries with the spread), and
``targets`` states each goal with the measured figure and whether it is met. The document goes to
``OUT/overhead/<run_id>/overhead.json`` (and ``OUT/overhead/latest``); a table goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import redis
from celery import Celery
from rich.console import Console
from rich.table import Table

from producer import goals
from producer.cli.options import bounded, option, out_option, repeat_option, warmup_option
from producer.console import StatusFn, make_console
from producer.results import atomic_write, update_latest
from producer.runners import JobBatch, RunnerOptions
from producer.runners.base import usable_cpus
from producer.runners.celery import publish as celery_run
from producer.runners.celery import workers
from producer.runners.celery.models import CeleryRunner, celery_runner
from producer.services import ResolvedRedis, resolve_redis
from producer.stats import summarize
from producer.versions import package_versions
from shared import keys
from shared.keys import new_run_id
from shared.settings import Settings, redact_url
from shared.timings import NOOP, JobRecord, TimingStore, timed_job
from shared.workloads import DEFAULT_CPU_JOBS, cpu_arg, run_cpu_job
from worker.app import RUN_JOBS_TASK

#: overhead.json schema version.
SCHEMA = 1
#: Subdirectory of ``--out`` for overhead documents (``jobbench history`` ignores it: no
#: results.json inside).
OVERHEAD_DIR = "overhead"
OVERHEAD_FILE = "overhead.json"
#: The pools measured by default, as ``workers.start_worker`` names them.
DEFAULT_POOLS: tuple[workers.PoolName, ...] = workers.POOLS
#: Noop jobs per batched throughput repeat: ~0.1-0.5 s a repeat, long enough to swamp the poll
#: interval (10 ms).
DEFAULT_NOOP_JOBS = 20_000
#: One-job messages per messages/s repeat (and per naive-enqueue repeat).
DEFAULT_NOOP_MESSAGES = 1_000
#: Jobs per enqueue-rate repeat at the automatic batch size.
DEFAULT_ENQUEUE_JOBS = 100_000
#: Seed CPU jobs in the capture-cost sample: every (15,000 / N)-th job of the seed, so the sample
#: has the seed's mean job size: one message of the seed's 1,875 jobs, ~1.2 s of sieving.
DEFAULT_CAPTURE_JOBS = 1_875
#: Producer memory probes (noop jobs each).
DEFAULT_MEMORY_JOBS = (10_000, 1_000_000)
#: PINGs per Redis round-trip repeat.
REDIS_PINGS = 2_000
#: Records per per-record cost repeat.
RECORD_SAMPLE = 2_000
#: Jobs of the per-message attempt-counting comparison: the seed's CPU message size.
ATTEMPTS_MESSAGE_JOBS = 1_875
#: Seconds a noop run may take before its missing jobs are named.
NOOP_TIMEOUT_S = 300.0
#: Seconds a memory probe subprocess may take (a million noop jobs take ~10-20 s here).
MEMORY_PROBE_TIMEOUT_S = 600.0


def pool_list(text: str) -> tuple[workers.PoolName, ...]:
    """``--pools``: some of the Celery pools, in ``workers.POOLS`` order."""
    items = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [s for s in items if s not in workers.POOLS]
    if not items or unknown:
        raise argparse.ArgumentTypeError(
            f"pools must be some of {', '.join(workers.POOLS)}: got {text!r}"
        )
    return tuple(p for p in workers.POOLS if p in items)


def count_list(text: str) -> tuple[int, ...]:
    """``--memory-jobs``: job counts, or ``none`` for no memory probe."""
    if text.strip().lower() in ("", "none", "0"):
        return ()
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of job counts: {text!r}") from None
    if any(not 1 <= v <= 10_000_000 for v in values):
        raise argparse.ArgumentTypeError(f"job counts must be between 1 and 10000000: {text!r}")
    return values


@dataclass(frozen=True)
class OverheadConfig:
    """One overhead run's configuration; each field is also its ``jobbench overhead`` option."""

    pools: tuple[workers.PoolName, ...] = option(
        DEFAULT_POOLS, "comma-separated Celery pools for the noop throughput",
        env="JOBBENCH_OVERHEAD_POOLS", type=pool_list,
    )  # fmt: skip
    repeat: int = repeat_option(5, "measured repeats of every figure")
    warmup: int = warmup_option("untimed warm-up runs before each figure")
    noop_jobs: int = option(DEFAULT_NOOP_JOBS, "noop jobs per batched throughput run",
                            env="JOBBENCH_NOOP_JOBS", type=bounded(int, 1, 10_000_000))  # fmt: skip
    noop_messages: int = option(
        DEFAULT_NOOP_MESSAGES, "one-job messages per messages/s run (and per naive enqueue run)",
        env="JOBBENCH_NOOP_MESSAGES", type=bounded(int, 1, 1_000_000),
    )  # fmt: skip
    enqueue_jobs: int = option(
        DEFAULT_ENQUEUE_JOBS, "jobs per enqueue-rate run at the automatic batch size",
        env="JOBBENCH_ENQUEUE_JOBS", type=bounded(int, 1, 10_000_000),
    )  # fmt: skip
    capture_jobs: int = option(
        DEFAULT_CAPTURE_JOBS, "seed CPU jobs sampled for the timing-capture cost",
        env="JOBBENCH_CAPTURE_JOBS", type=bounded(int, 1, DEFAULT_CPU_JOBS),
    )  # fmt: skip
    memory_jobs: tuple[int, ...] = option(
        DEFAULT_MEMORY_JOBS, "noop job counts of the producer memory probes ('none' to skip)",
        env="JOBBENCH_MEMORY_JOBS", type=count_list,
    )  # fmt: skip
    #: Also measure one-job noop messages with task events on (threads pool).
    events: bool = option(True, "skip the task-events (-E) comparison on the threads pool",
                          flag="--no-events", kind="negated")  # fmt: skip
    out_dir: Path = out_option("results directory: writes OUT/overhead/<run_id>/overhead.json")


def rate(count: int, wall: dict[str, Any]) -> float:
    """count / median seconds (0 for an empty measurement; JSON has no inf)."""
    median = float(wall["median"])
    return count / median if median > 0 else 0.0


#: Runs of a single noop message per pool (its round trip: small and steady, the median of a few).
ONE_MESSAGE_REPEAT = 7


def timed_repeats(fn: Callable[[int], float], repeat: int, warmup: int = 0) -> dict[str, Any]:
    """Call ``fn(i)`` (which returns the seconds it measured) ``warmup`` then ``repeat`` times;
    the summary of the measured ones."""
    for i in range(warmup):
        fn(-1 - i)
    return summarize([fn(i) for i in range(repeat)])


# --- Redis ------------------------------------------------------------------------------------


def measure_redis(client: redis.Redis, repeat: int, pings: int = REDIS_PINGS) -> dict[str, Any]:
    def once(_: int) -> float:
        started = time.perf_counter()
        for _ in range(pings):
            client.ping()
        return (time.perf_counter() - started) / pings

    rtt = timed_repeats(once, repeat, warmup=1)
    return {"pings": pings, "round_trip_s": rtt, "round_trip_us": float(rtt["median"]) * 1e6}


# --- producer enqueue ---------------------------------------------------------------------------


def noop_batch(run_id: str, n_jobs: int, repeat: int) -> JobBatch:
    """``n_jobs`` noop jobs; the arguments are a ``range`` (no per-job list, whatever ``n``)."""
    return JobBatch(run_id=run_id, workload="cpu", args=range(n_jobs), repeat=repeat)


def drop_scope(store: TimingStore, scope_key: str) -> None:
    stems = (keys.records, keys.attempts, keys.enqueued, keys.meta, keys.fetch_path)
    store.client.delete(*(stem(scope_key) for stem in stems))


def naive_publish(app: Celery, queue: str, scope_key: str, n_jobs: int) -> float:
    """The naive producer of the issue: one ``send_task`` per job, no shared producer, Celery's
    default publish retry; returns the seconds it took."""
    started = time.perf_counter()
    for job_id in range(n_jobs):
        app.send_task(
            RUN_JOBS_TASK,
            args=(scope_key, NOOP, "overhead-naive", "digest", [[job_id, job_id, time.time_ns()]]),
            queue=queue,
            ignore_result=True,
        )
    return time.perf_counter() - started


def measure_enqueue(
    app: Celery, store: TimingStore, run_id: str, config: OverheadConfig, cpus: int
) -> dict[str, Any]:
    """Publishing rates into a queue nobody consumes (emptied after every repeat)."""
    queue = workers.queue_name("overhead.enqueue", run_id)
    out: dict[str, Any] = {"queue": queue}
    try:
        n_msg = config.noop_messages
        naive_scope = keys.scope(run_id, "overhead-naive", NOOP, 0)

        def naive(_: int) -> float:
            try:
                return naive_publish(app, queue, naive_scope, n_msg)
            finally:
                store.client.delete(queue)

        wall = timed_repeats(naive, config.repeat, config.warmup)
        out["naive_one_job_per_message"] = _enqueue_figures(n_msg, n_msg, 1, wall)

        def piped(size: int, n_jobs: int, pipeline: int) -> Callable[[int], float]:
            def once(rep: int) -> float:
                enq = celery_run.enqueue(
                    noop_batch(run_id, n_jobs, rep), app=app, store=store, queue=queue,
                    model="overhead-enqueue", batch_size=size, workload=NOOP,
                    pipeline_size=pipeline,
                )  # fmt: skip
                store.client.delete(queue)
                drop_scope(store, enq.scope_key)
                return enq.enqueue_s

            return once

        wall = timed_repeats(piped(1, n_msg, 1), config.repeat, config.warmup)
        out["one_job_per_message_shared_producer"] = _enqueue_figures(n_msg, n_msg, 1, wall)
        size = celery_run.PUBLISH_PIPELINE_SIZE
        wall = timed_repeats(piped(1, n_msg, size), config.repeat, config.warmup)
        out["one_job_per_message_pipelined"] = _enqueue_figures(n_msg, n_msg, 1, wall)
        n_jobs = config.enqueue_jobs
        auto = celery_run.auto_batch_size(n_jobs, cpus, workload="cpu", pool="prefork")
        wall = timed_repeats(piped(auto, n_jobs, size), config.repeat, config.warmup)
        n_messages = len(celery_run.MessageRanges(n_jobs, auto))
        out["auto_batches_pipelined"] = _enqueue_figures(n_jobs, n_messages, auto, wall)
    finally:
        workers.delete_queue(app.conf.broker_url, queue)
    return out


def _enqueue_figures(
    n_jobs: int, n_messages: int, batch_size: int, wall: dict[str, Any]
) -> dict[str, Any]:
    return {
        "n_jobs": n_jobs,
        "n_messages": n_messages,
        "batch_size": batch_size,
        "enqueue_s": wall,
        "jobs_per_s": rate(n_jobs, wall),
        "messages_per_s": rate(n_messages, wall),
        "us_per_message": float(wall["median"]) / n_messages * 1e6 if n_messages else 0.0,
    }


# --- noop throughput per pool ---------------------------------------------------------------------


def run_noop(
    app: Celery,
    store: TimingStore,
    worker: workers.WorkerProcess,
    batch: JobBatch,
    batch_size: int,
    model: str,
) -> tuple[float, int]:
    """One timed noop run, exactly as ``CeleryRunner.run`` does it (enqueue, collect while
    waiting, load the rest); returns (seconds, messages)."""
    started = time.perf_counter()
    enq = celery_run.enqueue(
        batch, app=app, store=store, queue=worker.queue, model=model, batch_size=batch_size,
        workload=NOOP,
    )  # fmt: skip
    collector = celery_run.RecordCollector(store, enq.scope_key, enq.ranges)
    celery_run.wait_complete(
        store, enq.scope_key, batch.n_jobs, model=model, timeout_s=NOOP_TIMEOUT_S,
        alive=worker.alive, collector=collector,
    )  # fmt: skip
    records = collector.result()
    wall = time.perf_counter() - started
    if len(records) != batch.n_jobs:
        raise RuntimeError(f"{model}: {len(records)} records for {batch.n_jobs} noop jobs")
    drop_scope(store, enq.scope_key)
    return wall, enq.n_messages


def measure_pool(
    pool: workers.PoolName,
    *,
    app: Celery,
    store: TimingStore,
    redis_url: str,
    broker_url: str,
    run_id: str,
    config: OverheadConfig,
    events: bool = False,
    batched: bool = True,
) -> dict[str, Any]:
    """Start a worker of ``pool`` sized as the bench sizes it for CPU, and measure noop
    throughput: one job per message, then automatic batches."""
    # The runner's own sizing for short jobs, so the figures match what the bench runs.
    runner = celery_runner(pool, RunnerOptions(redis_url=redis_url))
    assert isinstance(runner, CeleryRunner)
    concurrency = runner.worker_concurrency("cpu")
    prefetch = runner.prefetch_multiplier("cpu")
    model = f"overhead-{pool}{'-events' if events else ''}"
    queue = workers.queue_name(model, run_id)
    out: dict[str, Any] = {"pool": pool, "concurrency": concurrency, "events": events}
    try:
        with workers.running_worker(
            pool=pool, concurrency=concurrency, queue=queue, broker_url=broker_url,
            redis_url=redis_url, prefetch_multiplier=prefetch, events=events,
        ) as worker:  # fmt: skip
            out["startup_s"] = worker.startup_s
            out["prefetch_multiplier"] = prefetch
            n_msg = config.noop_messages

            def one_job(rep: int) -> float:
                return run_noop(app, store, worker, noop_batch(run_id, n_msg, rep), 1, model)[0]

            wall = timed_repeats(one_job, config.repeat, config.warmup)
            out["one_job_per_message"] = {
                "n_messages": n_msg,
                "wall_s": wall,
                "messages_per_s": rate(n_msg, wall),
            }

            def one_message(rep: int) -> float:
                return run_noop(app, store, worker, noop_batch(run_id, 1, rep), 1, model)[0]

            # A run of one message: the trip to the worker and the result's back to the
            # producer's poll, which every run pays once whatever its size.
            out["one_message"] = {"wall_s": timed_repeats(one_message, ONE_MESSAGE_REPEAT, 1)}
            if batched:
                n_jobs = config.noop_jobs
                size = celery_run.auto_batch_size(n_jobs, concurrency, workload="cpu", pool=pool)
                n_messages = len(celery_run.MessageRanges(n_jobs, size))

                def batch_run(rep: int) -> float:
                    return run_noop(
                        app, store, worker, noop_batch(run_id, n_jobs, rep), size, model
                    )[0]

                wall = timed_repeats(batch_run, config.repeat, config.warmup)
                out["auto_batches"] = {
                    "n_jobs": n_jobs,
                    "batch_size": size,
                    "n_messages": n_messages,
                    "wall_s": wall,
                    "jobs_per_s": rate(n_jobs, wall),
                    "messages_per_s": rate(n_messages, wall),
                }
    finally:
        with contextlib.suppress(Exception):
            workers.delete_queue(broker_url, queue)
    return out


# --- timing capture -----------------------------------------------------------------------------


def capture_sample(n_jobs: int) -> list[int]:
    """Every k-th job of the seed's CPU workload: the seed's mean job size in ``n_jobs`` jobs."""
    stride = max(1, DEFAULT_CPU_JOBS // max(1, n_jobs))
    return [cpu_arg(i) for i in range(0, DEFAULT_CPU_JOBS, stride)][:n_jobs]


def measure_capture(
    store: TimingStore, run_id: str, config: OverheadConfig, cpus: int
) -> dict[str, Any]:
    """The seed's CPU jobs (a sample) bare, and with everything timing capture adds: the
    worker's attempt counting, ``timed_job``, the ``HSET`` of the records, and the producer's
    ``HMGET`` and parsing. The cost is the throughput lost.

    Paired job by job, because two runs of a second on a shared machine differ by more than the
    few percent being measured: every job runs bare and timed back to back (alternating which
    goes first), and the per-message Redis steps are timed around them, at the seed's message
    size (1,875 jobs on 2 cores).
    """
    args = capture_sample(config.capture_jobs)
    size = celery_run.auto_batch_size(DEFAULT_CPU_JOBS, cpus, workload="cpu", pool="prefork")
    ranges = celery_run.MessageRanges(len(args), size)
    scope_key = keys.scope(run_id, "overhead-capture", "cpu", 0)
    clock = time.perf_counter

    def one_repeat(rep: int) -> tuple[float, float, list[float], float]:
        """(bare s, captured s, per-job captured - bare s, per-message steps s)."""
        bare_s = captured_s = steps_s = 0.0
        diffs: list[float] = []
        for ids in ranges:
            now_ns = time.time_ns()
            started = clock()
            attempts = store.start_attempts(scope_key, ids)
            steps_s += clock() - started
            records = []
            for k, job_id in enumerate(ids):
                arg = args[job_id]
                if (rep + k) % 2:
                    t0 = clock()
                    records.append(
                        timed_job(job_id, "cpu", arg, model="overhead-capture", pool="direct",
                                  enqueued_at_ns=now_ns, attempt=attempts[k])
                    )  # fmt: skip
                    t1 = clock()
                    run_cpu_job(arg, "digest")
                    t2 = clock()
                    timed, bare = t1 - t0, t2 - t1
                else:
                    t0 = clock()
                    run_cpu_job(arg, "digest")
                    t1 = clock()
                    records.append(
                        timed_job(job_id, "cpu", arg, model="overhead-capture", pool="direct",
                                  enqueued_at_ns=now_ns, attempt=attempts[k])
                    )  # fmt: skip
                    t2 = clock()
                    bare, timed = t1 - t0, t2 - t1
                bare_s += bare
                captured_s += timed
                diffs.append(timed - bare)
            started = clock()
            store.save(scope_key, records)  # the worker's write
            raws: list[bytes] = store.client.hmget(  # type: ignore[assignment]
                keys.records(scope_key), [str(i) for i in ids]
            )  # the producer's read
            parsed = [JobRecord.from_json(raw) for raw in raws]
            steps_s += clock() - started
            assert len(parsed) == len(ids)
        drop_scope(store, scope_key)
        return bare_s, captured_s + steps_s, diffs, steps_s

    for w in range(config.warmup):
        one_repeat(-1 - w)
    bare_runs: list[float] = []
    captured_runs: list[float] = []
    steps_runs: list[float] = []
    diffs: list[float] = []
    for rep in range(config.repeat):
        bare_s, captured_s, job_diffs, steps_s = one_repeat(rep)
        bare_runs.append(bare_s)
        captured_runs.append(captured_s)
        steps_runs.append(steps_s)
        diffs.extend(job_diffs)
    n = len(args)
    wo, wi = summarize(bare_runs), summarize(captured_runs)
    bare_us = float(wo["median"]) / n * 1e6
    # Robust to the load spikes of a shared machine: the median per-job difference (the same
    # job, back to back) plus the median per-message steps, against the median bare job.
    job_us = float(summarize(diffs)["median"]) * 1e6
    steps_us = float(summarize(steps_runs)["median"]) / n * 1e6
    added = (job_us + steps_us) / bare_us if bare_us > 0 else 0.0
    sums = [1 - b / c for b, c in zip(bare_runs, captured_runs, strict=True) if c > 0]
    return {
        "n_jobs": n,
        "n_messages": len(ranges),
        "batch_size": size,
        "without_s": wo,
        "with_s": wi,
        "jobs_per_s_without": rate(n, wo),
        "jobs_per_s_with": rate(n, wi),
        "bare_us_per_job": bare_us,
        "timed_job_added_us_per_job": job_us,
        "message_steps_us_per_job": steps_us,
        # Throughput lost to the records: 1 - (jobs/s with) / (jobs/s without).
        "throughput_cost_fraction": added / (1 + added),
        # The same from each repeat's sums (every spike included): a noisier cross-check.
        "throughput_cost_from_sums": summarize(sums or [0.0]),
        "per_record_us": measure_record_costs(store, run_id, config.repeat),
    }


def _old_to_json(record: JobRecord) -> str:
    """The record encoding before this change: ``dataclasses.asdict`` to a JSON object."""
    return json.dumps(dataclasses.asdict(record), separators=(",", ":"))


def _old_from_json(raw: str | bytes) -> JobRecord:
    data = json.loads(raw)
    known = {f.name for f in dataclasses.fields(JobRecord)}
    return JobRecord(**{k: v for k, v in data.items() if k in known})


def _old_start_attempts(store: TimingStore, scope_key: str, job_ids: Sequence[int]) -> list[int]:
    """Attempt counting before this change: one pipelined ``HINCRBY`` per job."""
    pipe = store.client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hincrby(keys.attempts(scope_key), str(job_id), 1)
    return [int(n) for n in pipe.execute()]


def measure_record_costs(store: TimingStore, run_id: str, repeat: int) -> dict[str, Any]:
    """Microseconds per record of each step of timing capture, before and after."""
    records = [
        timed_job(
            i, "cpu", 2, model="celery_prefork", pool="prefork", enqueued_at_ns=time.time_ns()
        )
        for i in range(RECORD_SAMPLE)
    ]
    new_raw = [r.to_json() for r in records]
    old_raw = [_old_to_json(r) for r in records]
    assert [JobRecord.from_json(r) for r in old_raw] == records  # older records still decode
    n = len(records)

    def per_record(fn: Callable[[], object], count: int = n) -> float:
        def once(_: int) -> float:
            started = time.perf_counter()
            fn()
            return (time.perf_counter() - started) / count * 1e6

        return float(timed_repeats(once, repeat, warmup=1)["median"])

    scope_key = keys.scope(run_id, "overhead-attempts", "cpu", 0)
    ids = list(range(ATTEMPTS_MESSAGE_JOBS))
    try:
        costs = {
            "timed_job_noop": per_record(
                lambda: [timed_job(i, NOOP, 0, model="m", pool="p") for i in range(n)]
            ),
            "encode_before": per_record(lambda: [_old_to_json(r) for r in records]),
            "encode_after": per_record(lambda: [r.to_json() for r in records]),
            "decode_before": per_record(lambda: [_old_from_json(r) for r in old_raw]),
            "decode_after": per_record(lambda: [JobRecord.from_json(r) for r in new_raw]),
            "attempts_before": per_record(
                lambda: _old_start_attempts(store, scope_key, ids), len(ids)
            ),
            "attempts_after": per_record(lambda: store.start_attempts(scope_key, ids), len(ids)),
        }
    finally:
        drop_scope(store, scope_key)
    costs["record_bytes_before"] = sum(map(len, old_raw)) / n
    costs["record_bytes_after"] = sum(map(len, new_raw)) / n
    return costs


# --- producer memory ----------------------------------------------------------------------------


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def peak_rss_mb() -> float:
    """This process's peak RSS. On Linux ``VmHWM``: ``ru_maxrss`` would carry over the peak of
    the process that forked this one (it survives ``exec``), here the whole bench."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)  # bytes on macOS, else KiB


@dataclass(frozen=True)
class MemoryProbe:
    """One producer memory probe: ``n_jobs`` noop jobs in ``batch_size`` batches to ``queue``."""

    n_jobs: int
    broker_url: str
    redis_url: str
    queue: str
    run_id: str
    batch_size: int
    repeat: int = 0


def memory_probe(probe: MemoryProbe) -> dict[str, Any]:
    """Enqueue ``probe.n_jobs`` noop jobs to its queue (a worker consumes it) and wait, by count
    only, until every job has its record. Meant to run in a fresh process
    (``probe_in_subprocess``), so its peak RSS is this run's alone."""
    n_jobs, run_id, repeat, queue = probe.n_jobs, probe.run_id, probe.repeat, probe.queue
    app = workers.producer_app(probe.broker_url)
    store = TimingStore.from_url(probe.redis_url)
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=3)
    # A one-job run first: what the first publish imports and caches is not per-job memory.
    warm = celery_run.enqueue(
        noop_batch(run_id, 1, -1 - repeat), app=app, store=store, queue=queue,
        model=f"overhead-memory-{n_jobs}", batch_size=1, workload=NOOP,
    )  # fmt: skip
    celery_run.wait_complete(store, warm.scope_key, 1, model="overhead-memory", timeout_s=60.0)
    drop_scope(store, warm.scope_key)
    before = rss_mb()
    started = time.perf_counter()
    enq = celery_run.enqueue(
        noop_batch(run_id, n_jobs, repeat), app=app, store=store, queue=queue,
        model=f"overhead-memory-{n_jobs}", batch_size=probe.batch_size, workload=NOOP,
    )  # fmt: skip
    celery_run.wait_complete(
        store, enq.scope_key, n_jobs, model="overhead-memory", timeout_s=MEMORY_PROBE_TIMEOUT_S
    )
    wall = time.perf_counter() - started
    drop_scope(store, enq.scope_key)
    return {
        "n_jobs": n_jobs,
        "n_messages": enq.n_messages,
        "batch_size": probe.batch_size,
        "enqueue_s": enq.enqueue_s,
        "wall_s": wall,
        "rss_before_mb": before,
        "rss_peak_mb": peak_rss_mb(),
    }


def probe_in_subprocess(probe: MemoryProbe) -> dict[str, Any]:
    """``memory_probe`` in a fresh interpreter (``python -m producer.overhead``)."""
    done = subprocess.run(
        [sys.executable, "-m", "producer.overhead"], input=json.dumps(dataclasses.asdict(probe)),
        capture_output=True, text=True, timeout=MEMORY_PROBE_TIMEOUT_S, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"memory probe ({probe.n_jobs} jobs) failed: {done.stderr[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_memory(
    *, redis_url: str, broker_url: str, run_id: str, config: OverheadConfig, cpus: int
) -> dict[str, Any]:
    """Each job count in a fresh producer process, repeated, against one prefork worker."""
    queue = workers.queue_name("overhead.memory", run_id)
    sizes = sorted(set(config.memory_jobs))
    out: dict[str, Any] = {"probes": {}}
    try:
        with workers.running_worker(
            pool="prefork", concurrency=cpus, queue=queue, broker_url=broker_url,
            redis_url=redis_url, prefetch_multiplier=2,
        ):  # fmt: skip
            runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
            for rep in range(config.repeat):
                for n in sizes:
                    size = celery_run.auto_batch_size(n, cpus, workload="cpu", pool="prefork")
                    probe = MemoryProbe(n, broker_url, redis_url, queue, run_id, size, rep)
                    runs[n].append(probe_in_subprocess(probe))
    finally:
        with contextlib.suppress(Exception):
            workers.delete_queue(broker_url, queue)
    for n in sizes:
        probes = runs[n]
        peak = summarize([p["rss_peak_mb"] for p in probes])
        growth = summarize([p["rss_peak_mb"] - p["rss_before_mb"] for p in probes])
        out["probes"][str(n)] = {
            "n_jobs": n,
            "batch_size": probes[0]["batch_size"],
            "n_messages": probes[0]["n_messages"],
            "rss_peak_mb": peak,
            "rss_growth_mb": growth,
            "wall_s": summarize([p["wall_s"] for p in probes]),
            "enqueue_jobs_per_s": n / summarize([p["enqueue_s"] for p in probes])["median"],
        }
    if len(sizes) >= 2:
        lo, hi = out["probes"][str(sizes[0])], out["probes"][str(sizes[-1])]
        out["peak_ratio"] = float(hi["rss_peak_mb"]["median"]) / float(lo["rss_peak_mb"]["median"])
        out["from_jobs"], out["to_jobs"] = sizes[0], sizes[-1]
    return out


# --- the run ------------------------------------------------------------------------------------


class Overhead:
    def __init__(self, config: OverheadConfig, settings: Settings, progress: StatusFn) -> None:
        self.config = config
        self.settings = settings
        self.progress = progress
        self.run_id = new_run_id()

    def run(self) -> dict[str, Any]:
        started_at = datetime.now(UTC).isoformat()
        with resolve_redis(self.settings) as resolved:
            doc = self._run(resolved)
        doc["started_at"] = started_at
        doc["finished_at"] = datetime.now(UTC).isoformat()
        return doc

    def _run(self, resolved: ResolvedRedis) -> dict[str, Any]:
        config, cpus = self.config, usable_cpus()
        redis_url = resolved.url
        broker_url = self.settings.broker_url or redis_url
        store = TimingStore.from_url(redis_url)
        app = workers.producer_app(broker_url)
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=3)
        out: dict[str, Any] = {}
        try:
            self.progress("redis round trip")
            out["redis"] = measure_redis(store.client, config.repeat)
            self.progress("producer enqueue rate")
            out["enqueue"] = measure_enqueue(app, store, self.run_id, config, cpus)
            out["noop"] = {}
            for pool in config.pools:
                self.progress(f"noop throughput: {pool}")
                out["noop"][pool] = measure_pool(
                    pool, app=app, store=store, redis_url=redis_url, broker_url=broker_url,
                    run_id=self.run_id, config=config,
                )  # fmt: skip
            if config.events:
                self.progress("noop throughput: threads with task events")
                out["noop"]["threads+events"] = measure_pool(
                    "threads", app=app, store=store, redis_url=redis_url,
                    broker_url=broker_url, run_id=self.run_id, config=config, events=True,
                    batched=False,
                )  # fmt: skip
            self.progress("timing capture cost")
            out["capture"] = measure_capture(store, self.run_id, config, cpus)
            if config.memory_jobs:
                self.progress("producer memory")
                out["memory"] = measure_memory(
                    redis_url=redis_url, broker_url=broker_url, run_id=self.run_id,
                    config=config, cpus=cpus,
                )  # fmt: skip
        finally:
            store.client.delete(keys.scopes_index(self.run_id))
            store.client.close()
        cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in
               dataclasses.asdict(config).items()}  # fmt: skip
        return {
            "schema": SCHEMA,
            "kind": "overhead",
            "run_id": self.run_id,
            "metadata": {
                "python": sys.version.split()[0],
                "hostname": os.uname().nodename,
                "cpu_count": cpus,
                "packages": package_versions(),
                "redis": redact_url(redis_url),
                "redis_source": resolved.source,
                "broker": redact_url(broker_url),
                "config": cfg,
                "load_avg": list(os.getloadavg()),
            },
            "overhead": out,
            "targets": goals.overhead_goals(out),
        }


def write_overhead(out_dir: Path, doc: dict[str, Any]) -> Path:
    base = out_dir / OVERHEAD_DIR
    run_dir = base / str(doc["run_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / OVERHEAD_FILE
    atomic_write(path, json.dumps(doc, indent=2) + "\n")
    update_latest(base, run_dir)
    return path


# --- output -------------------------------------------------------------------------------------


def overhead_table(doc: dict[str, Any]) -> Table:
    o = doc["overhead"]
    table = Table(title=f"jobbench overhead {doc['run_id']}  ·  medians of "
                  f"{doc['metadata']['config']['repeat']}")  # fmt: skip
    table.add_column("what")
    table.add_column("figure", justify="right")
    table.add_column("notes")
    if "redis" in o:
        table.add_row("redis PING round trip", f"{o['redis']['round_trip_us']:.0f} µs", "")
    for key, label in (
        ("naive_one_job_per_message", "enqueue, naive send_task per job"),
        ("one_job_per_message_shared_producer", "enqueue, 1 job/msg, one producer"),
        ("one_job_per_message_pipelined", "enqueue, 1 job/msg, pipelined"),
        ("auto_batches_pipelined", "enqueue, automatic batches"),
    ):
        e = o.get("enqueue", {}).get(key)
        if e:
            table.add_row(
                label,
                f"{e['jobs_per_s']:,.0f} jobs/s",
                f"{e['messages_per_s']:,.0f} msg/s, {e['us_per_message']:.0f} µs/msg, "
                f"batch {e['batch_size']}",
            )
    for pool, p in o.get("noop", {}).items():
        one = p["one_job_per_message"]
        table.add_row(f"noop {pool}, 1 job/msg", f"{one['messages_per_s']:,.0f} msg/s",
                      f"c={p['concurrency']}, start-up {p['startup_s']:.2f} s")  # fmt: skip
        if "one_message" in p:
            trip = p["one_message"]["wall_s"]["median"]
            table.add_row(f"noop {pool}, a run of 1 message", f"{trip * 1e3:.1f} ms",
                          "enqueue to the result seen by the producer")  # fmt: skip
        if "auto_batches" in p:
            b = p["auto_batches"]
            table.add_row(f"noop {pool}, batches", f"{b['jobs_per_s']:,.0f} jobs/s",
                          f"batch {b['batch_size']}, {b['messages_per_s']:,.0f} msg/s")  # fmt: skip
    if "capture" in o:
        c = o["capture"]
        us = c["per_record_us"]
        table.add_row(
            "timing capture (CPU seed sample)",
            f"{c['throughput_cost_fraction']:.1%}",
            f"{c['n_jobs']} jobs; per record: encode {us['encode_before']:.1f}→"
            f"{us['encode_after']:.1f} µs, decode {us['decode_before']:.1f}→"
            f"{us['decode_after']:.1f} µs, attempts {us['attempts_before']:.1f}→"
            f"{us['attempts_after']:.1f} µs",
        )
    mem = o.get("memory", {})
    for n, probe in mem.get("probes", {}).items():
        table.add_row(
            f"producer peak RSS, {int(n):,} noop jobs",
            f"{probe['rss_peak_mb']['median']:.1f} MB",
            f"growth {probe['rss_growth_mb']['median']:.1f} MB, {probe['wall_s']['median']:.1f} s",
        )
    return table


def print_overhead(doc: dict[str, Any], console: Console | None = None) -> None:
    console = console or make_console()
    console.print(overhead_table(doc))
    goals.print_goals(doc.get("targets", {}), console)


if __name__ == "__main__":
    # The memory probe's child process (``probe_in_subprocess``): a ``MemoryProbe`` as JSON on
    # stdin (named fields; no broker password on a command line), its figures as JSON on stdout.
    print(json.dumps(memory_probe(MemoryProbe(**json.load(sys.stdin)))))
