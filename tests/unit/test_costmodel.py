"""The cost model, the probe's sampling and the advice as pure functions: made-up job costs and
machine costs in, predictions and sentences out (no clock, no services)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from producer import costmodel, machine_costs
from producer.advice import Entry, WhatIfs, advise
from producer.costmodel import JobCosts, predict
from producer.machine_costs import Figure, MachineCosts, celery_figures
from producer.predict import gil_share_to_match
from producer.probe import (
    Probe,
    ProbeSample,
    _longest_idle,
    probe,
    stratified_order,
    traced_split,
    warm,
)
from producer.runners.base import CostShape


def costs(**values: float) -> MachineCosts:
    return MachineCosts(
        {k: Figure(v, "test", "2026-01-01T00:00:00+00:00") for k, v in values.items()}
    )


def even(n: int, wall_s: float, cpu_share: float) -> JobCosts:
    return JobCosts(wall_s=[wall_s] * n, cpu_s=[wall_s * cpu_share] * n)


def rising(n: int, first_s: float, last_s: float) -> JobCosts:
    walls = [first_s + (last_s - first_s) * i / (n - 1) for i in range(n)]
    return JobCosts(wall_s=walls, cpu_s=walls)


SEQUENTIAL = CostShape(kind="sequential", lanes=1, cpu_lanes=1)
THREADS = CostShape(kind="thread", lanes=100, cpu_lanes=1, dispatch="thread_start",
                    dispatch_on_lanes=True)  # fmt: skip
PROCESSES = CostShape(kind="process", lanes=2, cpu_lanes=2, schedule="pool_map",
                      dispatch="pool_task", transfer=True)  # fmt: skip


def test_sequential_is_the_sum_of_the_jobs() -> None:
    p = predict(even(100, 0.01, 1.0), SEQUENTIAL, costs())
    assert p.predicted_s == pytest.approx(1.0)
    assert "100 jobs one after another" in p.explanation and "1.00 s" in p.explanation


def test_threads_gain_nothing_on_cpu_jobs_and_the_sentence_says_the_share() -> None:
    jobs = even(1000, 0.001, 0.97)
    p = predict(jobs, THREADS, costs(thread_start=20e-6))
    # The CPU share runs on one core: ~0.97 s plus the serial thread starts, not 1 s / 100.
    assert p.predicted_s == pytest.approx(0.97 + 1000 * 20e-6 + 0.00003, rel=0.01)
    assert "threads gain nothing: 97% of this job holds the GIL" in p.explanation
    # Change the probe, the text changes with it.
    other = predict(even(1000, 0.001, 0.80), THREADS, costs(thread_start=20e-6))
    assert "80% of this job holds the GIL" in other.explanation


def test_celery_threads_nodes_pay_their_consumers_on_their_own_gils() -> None:
    # 100 IO jobs of 160 ms holding the GIL 1.6 ms each, a 1.3 ms message each: one threads node
    # runs messages and CPU under one GIL; two nodes split both over two GILs (two cores), which
    # the schedule alone (messages released one after another) would under-state.
    jobs = even(100, 0.16, 0.01)
    machine = costs(**{"celery_message:threads@redis": 0.0013, "parallel_slowdown": 1.0})
    one = CostShape(kind="worker thread", lanes=100, cpu_lanes=1, schedule="fixed", chunk=1,
                    dispatch="celery_message:threads", dispatch_on_lanes=True)  # fmt: skip
    two = CostShape(**{**one.__dict__, "cpu_lanes": 2})
    one_node = predict(jobs, one, machine).predicted_s
    assert one_node == pytest.approx(0.16 + 0.13 + 0.1584, rel=0.01)
    p2 = predict(jobs, two, machine)
    assert p2.terms["gil_s"] == pytest.approx((0.16 + 0.13) / 2 + 0.1584, rel=0.01)
    assert p2.terms["gil_s"] > p2.terms["makespan_s"]
    assert p2.predicted_s == pytest.approx(p2.terms["gil_s"])
    # A dispatcher with a GIL of its own (a prefork parent) is not in the GIL bound.
    apart = predict(jobs, CostShape(**{**two.__dict__, "dispatch_on_lanes": False}), machine)
    assert apart.terms["gil_s"] == pytest.approx(0.16 / 2 + 0.1584, rel=0.01)


def test_threads_overlap_waiting_jobs_up_to_their_number() -> None:
    jobs = even(100, 0.1, 0.0001)
    p = predict(jobs, THREADS, costs(thread_start=50e-6))
    # One round of 0.1 s (100 lanes) after 100 serial thread starts; the GIL share is tiny.
    assert p.predicted_s == pytest.approx(0.1 + 100 * 50e-6, rel=0.05)
    assert "overlap the waiting share (100% of a job)" in p.explanation
    # A GIL share of 1 %: 100 jobs x 1 ms of CPU on one core, then the last one's wait.
    gil = predict(even(100, 0.1, 0.01), THREADS, costs(thread_start=50e-6))
    assert gil.predicted_s == pytest.approx(0.1 + 0.005 + 0.099, rel=0.01)
    assert "held back by the GIL: 1% of this job" in gil.explanation
    assert "then the last job waits 99.0 ms" in gil.explanation
    half = predict(jobs, CostShape(kind="thread", lanes=10, cpu_lanes=1), costs())
    assert half.predicted_s == pytest.approx(1.0, rel=0.01)  # 10 rounds of 0.1 s
    assert "in 10 rounds" in half.explanation


def test_waits_overlap_the_serial_cpu_but_for_one_jobs_when_the_split_is_known() -> None:
    # 100 jobs of 0.1 s holding the GIL 1 ms each, half of it before the wait: the first jobs'
    # waits end while the rest still start, so only one wait is not overlapped.
    jobs = dataclasses.replace(even(100, 0.1, 0.01), cpu_before_wait=0.5)
    p = predict(jobs, THREADS, costs(thread_start=50e-6))
    before = 0.05 + 0.005  # every job's CPU before its wait, and the thread starts
    assert p.predicted_s == pytest.approx(before + 0.099 + 0.0005, rel=0.01)
    assert (
        p.predicted_s
        < predict(even(100, 0.1, 0.01), THREADS, costs(thread_start=50e-6)).predicted_s
    )
    assert "the waits (99.0 ms) overlap it but for one job's, 50% of a job's CPU" in p.explanation
    # Measured warmer with many in flight: the serial CPU shrinks by that factor, and only for
    # lanes sharing a GIL (one thread's jobs alone are as cold as the probe's).
    warm = predict(
        dataclasses.replace(jobs, overlapped_cpu=0.6), THREADS, costs(thread_start=50e-6)
    )
    assert warm.terms["overlapped_cpu"] == 0.6
    assert warm.predicted_s == pytest.approx(0.03 + 0.005 + 0.099 + 0.0003, rel=0.01)
    alone = predict(dataclasses.replace(jobs, overlapped_cpu=0.6), SEQUENTIAL, costs())
    assert alone.predicted_s == pytest.approx(10.0, rel=0.01)
    # CPU-heavy jobs: the serial CPU bounds it, whatever the split.
    heavy = dataclasses.replace(even(100, 0.01, 0.9), cpu_before_wait=0.5)
    assert predict(heavy, THREADS, costs()).predicted_s == pytest.approx(0.9, rel=0.01)


def test_the_trace_finds_the_cpu_before_and_after_a_jobs_wait() -> None:
    def job() -> None:
        for spent in (0.01, 0.03):  # 10 ms of CPU, a 60 ms wait, 30 ms of CPU
            started = time.thread_time()
            while time.thread_time() - started < spent:
                pass
            if spent == 0.01:
                time.sleep(0.06)

    split = traced_split(job, ())
    assert split is not None and split == pytest.approx(0.25, abs=0.08)
    assert traced_split(lambda: sum(range(200_000)), ()) is None  # never waited
    # (time, cpu) points: busy, then 3 idle intervals, busy: the idle run is points 1..4.
    points = [(0.0, 0.0), (1.0, 1.0), (2.0, 1.0), (3.0, 1.05), (4.0, 1.05), (5.0, 2.0)]
    assert _longest_idle(points) == (1, 4)
    assert _longest_idle([(0.0, 0.0), (1.0, 1.0)]) is None


def test_contiguous_chunks_of_rising_cost_leave_a_tail_factoring_does_not() -> None:
    jobs = rising(15_000, 0.0001, 0.002)
    pool_map = predict(jobs, PROCESSES, costs())
    factoring = predict(jobs, CostShape(kind="process", lanes=2, cpu_lanes=2,
                                        schedule="factoring"), costs())  # fmt: skip
    assert pool_map.terms["tail_s"] > 5 * factoring.terms["tail_s"]
    assert pool_map.predicted_s > factoring.predicted_s >= jobs.work_s / 2
    assert "after the first process idles" in pool_map.explanation
    assert pool_map.terms["n_tasks"] == 8  # Pool.map's rule: 4 chunks per worker


def test_per_task_cost_dominates_short_jobs_one_per_task() -> None:
    jobs = even(10_000, 20e-6, 1.0)
    shape = CostShape(kind="process", lanes=2, cpu_lanes=2, dispatch="process_task")
    p = predict(jobs, shape, costs(process_task=100e-6))
    assert p.predicted_s == pytest.approx(10_000 * 100e-6, rel=0.01)
    assert p.explanation.startswith("the per-task cost dominates: 10,000 tasks × 100 µs")


def test_a_process_pools_hand_over_cpu_comes_out_of_the_busy_cores() -> None:
    jobs = even(10_000, 1e-3, 1.0)  # 10 s of CPU work for 2 processes on 2 cores
    shape = CostShape(kind="process", lanes=2, cpu_lanes=2, dispatch="process_task",
                      dispatch_cpu="process_task_cpu", cores=2)  # fmt: skip
    free = predict(jobs, shape, costs(process_task=100e-6))
    assert free.predicted_s == pytest.approx(5.0, rel=0.02)  # the hand-over overlaps the work
    paid = predict(jobs, shape, costs(process_task=100e-6, process_task_cpu=300e-6))
    assert paid.predicted_s == pytest.approx((10.0 + 3.0) / 2, rel=0.02)
    assert paid.explanation.startswith("2 processes share 2 cores with their hand-over")
    spare = dataclasses.replace(shape, lanes=1, cpu_lanes=1, cores=2)  # a core left for it
    alone = predict(jobs, spare, costs(process_task=100e-6, process_task_cpu=300e-6))
    assert alone.predicted_s == pytest.approx(10.0 + 100e-6, rel=0.02)


def test_parallel_lanes_pay_the_measured_slowdown_and_transfer() -> None:
    jobs = JobCosts(wall_s=[0.01] * 100, cpu_s=[0.01] * 100, transfer_bytes=1000)
    quiet = predict(jobs, PROCESSES, costs())
    busy = predict(jobs, PROCESSES, costs(parallel_slowdown=1.5, pickle_byte=1e-6))
    assert quiet.predicted_s == pytest.approx(0.5, rel=0.05)
    assert busy.predicted_s > 1.4 * quiet.predicted_s
    assert "1.50× slower each than alone" in busy.explanation


def test_celery_messages_pay_the_per_message_and_per_job_costs() -> None:
    shape = CostShape(kind="prefork child", lanes=2, cpu_lanes=2, schedule="fixed", chunk=1,
                      dispatch="celery_message:prefork", per_job="celery_job:prefork",
                      broker_url="redis://h:1/0")  # fmt: skip
    figures = costs(**{"celery_message:prefork@redis": 0.002, "celery_job:prefork@redis": 1e-4})
    p = predict(even(1000, 0.0005, 1.0), shape, figures)
    assert p.predicted_s == pytest.approx(1000 * 0.002, rel=0.02)  # the consumer is the limit
    batched = predict(even(1000, 0.0005, 1.0), CostShape(**{**shape.__dict__, "chunk": 125}),
                      figures)  # fmt: skip
    assert batched.predicted_s == pytest.approx(1000 * 0.0006 / 2, rel=0.05)
    # A run's round trip is paid once, beside the lanes; in a short run it is what decides.
    tripped = CostShape(**{**shape.__dict__, "latency": "celery_latency:prefork"})
    figures = costs(**{"celery_message:prefork@redis": 0.002, "celery_latency:prefork@redis": 0.01})
    short = predict(even(4, 0.0005, 1.0), tripped, figures)
    assert short.predicted_s == pytest.approx(
        predict(even(4, 0.0005, 1.0), shape, figures).predicted_s + 0.01
    )
    assert short.explanation.startswith("the round trip dominates: ")
    assert "take 10.0 ms once" in short.explanation


def test_error_and_what_ifs() -> None:
    assert costmodel.error_pct(1.2, 1.0) == pytest.approx(20.0)
    assert costmodel.error_pct(1.0, 0.0) is None
    jobs = even(100, 0.01, 0.9)
    # Threads (one GIL) would match 0.5 s only if under about half the job held the GIL.
    share = gil_share_to_match(jobs, CostShape(kind="thread", lanes=100, cpu_lanes=1),
                               costs(), 0.5)  # fmt: skip
    assert share is not None and 0.45 < share < 0.5
    assert gil_share_to_match(jobs, SEQUENTIAL, costs(), 0.5) is None


def test_probe_samples_across_the_list_and_interpolates() -> None:
    order = list(stratified_order(16))
    assert sorted(order) == list(range(16)) and order[:4] == [0, 8, 4, 12]
    calls = [(i,) for i in range(1000)]
    p = probe(lambda i: [0] * i, calls, budget_s=10.0, max_jobs=9)
    assert p.n_sampled == 9 and p.n_jobs == 1000
    indices = sorted(s.index for s in p.samples)
    assert indices[0] == 0 and indices[-1] >= 875  # not the first nine jobs
    assert p.bytes_median("arg_pickle_bytes") and p.bytes_median("result_json_bytes")
    made_up = Probe(n_jobs=11, budget_s=1.0, took_s=0.1, samples=(
        ProbeSample(0, 1.0, 1.0, 10, 10, 5, 5), ProbeSample(10, 3.0, 1.0, 10, 10, 5, 5),
    ))  # fmt: skip
    assert made_up.cost_at(5) == pytest.approx((2.0, 1.0))
    walls, _ = made_up.costs()
    assert sum(walls) == pytest.approx(22.0)
    assert made_up.cpu_share == pytest.approx(0.5)


def test_the_probe_warms_up_then_spends_its_budget_not_a_job_cap() -> None:
    ran: list[int] = []
    calls = [(i,) for i in range(3000)]
    p = probe(ran.append, calls, budget_s=5.0, warmup_s=0.0)
    # Fast jobs: the budget is far away, so every job is sampled (a cap of 400 stopped here).
    assert p.n_sampled == 3000
    assert len(ran) == 1 + 3000  # at least one warm-up job, even with no warm-up time
    ran.clear()
    warm(ran.append, calls, 0.02)
    assert len(ran) > 1 and ran[:4] == [0, 1500, 750, 2250]  # the sample's own order


def test_celery_figures_from_a_measure_pool_document() -> None:
    doc = {
        "concurrency": 1, "startup_s": 1.5,
        "one_job_per_message": {"messages_per_s": 500.0},
        "auto_batches": {"wall_s": {"median": 0.3}, "n_messages": 50, "n_jobs": 2000},
        "one_message": {"wall_s": {"median": 0.012}},
    }  # fmt: skip
    figures = celery_figures("solo", doc)
    assert figures["celery_message:solo"] == pytest.approx(0.002)
    assert figures["celery_job:solo"] == pytest.approx((0.3 - 50 * 0.002) / 2000)
    assert figures["celery_start:solo"] == 1.5
    assert figures["celery_latency:solo"] == pytest.approx(0.010)  # beyond its message's cost
    older = {k: v for k, v in doc.items() if k != "one_message"}
    assert "celery_latency:solo" not in celery_figures("solo", older)  # measured again instead


def entry(model: str, measured: float, brokered: bool = False, **terms: float) -> Entry:
    return Entry(model=model, predicted_s=measured, measured_s=measured, min_s=measured * 0.98,
                 max_s=measured * 1.02, repeats=3, brokered=brokered, terms=terms,
                 chunk=250)  # fmt: skip


def test_advice_names_the_winner_celery_cost_and_what_would_change_it() -> None:
    entries = [
        entry("multiprocessing_pool", 1.0, cpu_share=0.99),
        entry("thread_pool", 2.0),
        entry("celery_prefork", 1.4, brokered=True, n_tasks=8, dispatch_each_s=0.003,
              dispatch_s=0.024, per_job_s=0.2, tail_s=0.0, cpu_lanes=2),
    ]  # fmt: skip
    what = WhatIfs(
        at_cores={4: {"multiprocessing_pool": 0.5, "celery_prefork": 0.7},
                  8: {"multiprocessing_pool": 0.25, "celery_prefork": 0.26}},
        gil_share_to_match=0.4, thread_model="thread_pool",
    )  # fmt: skip
    out = advise("cpu", entries, what)
    text = "\n".join(out["lines"])
    assert out["best"] == "multiprocessing_pool"
    assert "**Use `multiprocessing_pool`**" in text and "1.40× faster than `celery_prefork`" in text
    assert "sure: every repeat of multiprocessing_pool beat" in text
    assert "`celery_prefork`, costs 400.0 ms (1.40×)" in text and "8 messages of 250 jobs" in text
    assert "Below ~6.0 ms per job Celery's per-message cost dominates" in text
    assert "with ≥ 8 cores Celery celery_prefork would match multiprocessing_pool" in text
    assert "thread_pool would match multiprocessing_pool only if under 40%" in text
    # Other figures, other sentences: nothing is fixed text.
    slower = advise("cpu", [entries[0], entries[1]], WhatIfs())
    assert "Celery" not in "\n".join(slower["lines"]) and "2.00×" in slower["lines"][0]


def test_cached_figures_measured_on_a_busier_machine_are_measured_again(tmp_path: Path) -> None:
    now = machine_costs.load_per_core()
    when = machine_costs._now()
    figures = {
        "pool_task": Figure(1e-4, "test", when, now),
        "thread_submit": Figure(2e-5, "test", when, now + 5.0),  # measured under a heavy load
        "parallel_slowdown": Figure(1.2, "test", when, now),  # per run: never cached
    }
    machine_costs.save_cache(tmp_path, figures)
    loaded = machine_costs.load_cache(tmp_path)
    assert set(loaded) == {"pool_task"} and loaded["pool_task"].value_s == 1e-4
    assert MachineCosts(loaded).missing([("thread_submit", ""), ("pool_task", "")]) == [
        "thread_submit"
    ]
