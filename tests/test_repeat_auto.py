"""``--repeat auto`` (issue 14): repeat each model until its median is known, not a fixed count."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from producer.bench import (
    CONTENTION_FACTOR,
    Bench,
    BenchConfig,
    GoalState,
    ModelRun,
    out_of_contention,
    outranked,
    warmup_jobs,
)
from producer.cli import build_parser, main
from producer.errors import EXIT_OK
from producer.runners import registry
from shared.settings import Settings


def run_of(model: str, walls: list[float]) -> ModelRun:
    cls = registry.load(model)
    return ModelRun(
        model=model, runner=cls, workload="cpu", n_jobs=1, concurrency=1, wall_s=list(walls)
    )


def test_a_model_far_behind_the_best_of_its_group_is_out_of_contention() -> None:
    best = run_of("multiprocessing_pool", [5.0, 5.1, 5.0])
    slow = run_of("thread_pool", [5.0 * CONTENTION_FACTOR * 1.01])
    close = run_of("process_pool", [5.0 * CONTENTION_FACTOR * 0.99])
    celery = run_of("celery_threads", [20.0])  # the only Celery row: the best of its group
    runs = [best, slow, close, celery]
    assert out_of_contention(slow, runs, keep_baseline=False)
    assert not out_of_contention(close, runs, keep_baseline=False)
    assert not out_of_contention(celery, runs, keep_baseline=False)
    seq = run_of("sequential", [11.0])
    assert out_of_contention(seq, [*runs, seq], keep_baseline=False)
    assert not out_of_contention(seq, [*runs, seq], keep_baseline=True)  # the CPU ideal needs it


def test_a_model_known_slower_than_its_leader_is_outranked() -> None:
    leader = run_of("multiprocessing_pool_factoring", [4.90, 4.92, 4.89, 4.91])
    behind = run_of("multiprocessing_pool", [5.30, 5.35, 5.32])  # interval wholly above
    overlap = run_of("process_pool_map", [4.88, 5.40, 4.95])  # interval reaches the leader's
    two = run_of("process_pool", [5.6, 5.7])  # no interval from two repeats
    celery = run_of("celery_prefork", [5.30, 5.35, 5.32])  # its own group's only row
    runs = [leader, behind, overlap, two, celery]
    assert outranked(behind, runs, keep_baseline=False)
    assert not outranked(overlap, runs, keep_baseline=False)
    assert not outranked(two, runs, keep_baseline=False)
    assert not outranked(leader, runs, keep_baseline=False)
    assert not outranked(celery, runs, keep_baseline=False)
    seq = run_of("sequential", [9.8, 9.9, 9.85])
    assert outranked(seq, [*runs, seq], keep_baseline=False)
    assert not outranked(seq, [*runs, seq], keep_baseline=True)  # the CPU ideal needs it


SEQ = [10.00, 10.02, 10.01]
POOL = [5.30, 5.31, 5.29]


def decided(workload: str, runs: list[ModelRun], cores: int) -> bool:
    """Whether every goal of ``workload`` has its verdict on these rows."""
    return GoalState.of(workload, runs, cores).decided


def test_the_cpu_goals_decided_either_way_stop_the_rounds() -> None:
    met = [run_of("sequential", SEQ), run_of("multiprocessing_pool", POOL),
           run_of("celery_prefork", [5.35, 5.36, 5.34])]  # fmt: skip
    assert decided("cpu", met, cores=2)  # ratio 1.01 met, efficiency 94 % met
    missed = [*met[:2], run_of("celery_prefork", [7.00, 7.10, 7.05])]
    assert decided("cpu", missed, cores=2)  # ratio 1.33: missed is a verdict too
    wide = [*met[:2], run_of("celery_prefork", [5.0, 5.9, 5.5])]
    assert not decided("cpu", wide, cores=2)  # the ratio's interval straddles 1.05
    assert not decided("cpu", met[:2], cores=2)  # no Celery row: the ratio has no verdict
    assert not decided("io", met, cores=2)  # no IO row


def goals_of(runs: dict[str, ModelRun]) -> GoalState:
    return GoalState.of("cpu", runs.values(), cores=2)


def auto_bench(budget_s: float) -> Bench:
    models = ("sequential", "multiprocessing_pool", "celery_prefork")
    return Bench(BenchConfig(models=models, repeat="auto", budget_s=budget_s), Settings())


def test_a_spent_budget_stops_the_rows_after_their_first_repeats() -> None:
    bench = auto_bench(budget_s=60.0)
    leader = run_of("multiprocessing_pool", [5.0, 5.6, 5.3])  # a goal compares it: keeps 5
    behind = run_of("process_pool", [6.0, 6.5, 6.2])  # compared by no goal: 3 are enough
    young = run_of("celery_prefork", [5.0, 5.9])
    for run in (leader, behind, young):
        run.repeat_cost_s = 4.0
    runs = {r.model: r for r in (leader, behind, young)}
    soon = time.perf_counter() + 10.0  # the next round costs 12 s
    assert bench._cut([leader, behind, young], goals_of(runs), deadline=soon)
    assert [r.stop_reason for r in (leader, behind, young)] == ["", "budget", ""]
    leader.wall_s += [5.2, 5.4]
    soon = time.perf_counter() + 6.0  # the next round (two rows) costs 8 s
    assert bench._cut([leader, young], goals_of(runs), deadline=soon)
    assert leader.stop_reason == "budget"
    assert not bench._cut([young], goals_of(runs), deadline=soon)  # nothing left to stop
    later = run_of("process_pool", [6.0, 6.5, 6.2])
    later.repeat_cost_s = 4.0
    assert not bench._cut([later], goals_of({"p": later}), deadline=time.perf_counter() + 30.0)
    assert later.stop_reason == ""


def test_decided_goals_stop_every_row_still_repeating() -> None:
    bench = auto_bench(budget_s=3600.0)
    rows = [run_of("sequential", SEQ), run_of("multiprocessing_pool", POOL),
            run_of("celery_prefork", [5.35, 5.36, 5.34])]  # fmt: skip
    runs = {r.model: r for r in rows}
    far = time.perf_counter() + 3600.0
    assert not bench._cut(rows, goals_of(runs), deadline=far)  # decided, but on 3 repeats
    for run, more in zip(rows, ([10.01, 10.0], [5.30, 5.31], [5.35, 5.35]), strict=True):
        run.wall_s += more
    assert bench._cut(rows, goals_of(runs), deadline=far)
    assert [r.stop_reason for r in rows] == ["decided"] * 3


def test_a_row_a_goal_compares_settles_only_on_its_five_repeats() -> None:
    bench = auto_bench(budget_s=3600.0)
    rows = [run_of("sequential", SEQ), run_of("multiprocessing_pool", POOL),
            run_of("process_pool", [6.00, 6.01, 6.02]),
            run_of("celery_prefork", [5.35, 5.9])]  # fmt: skip
    runs = {r.model: r for r in rows}
    goals = bench._goals("cpu", runs)
    assert goals is not None and goals.deciders >= {"sequential", "multiprocessing_pool"}
    tight_but_compared, tight = rows[1], rows[2]  # both within ±3 % on 3 repeats
    assert not bench._enough("cpu", tight_but_compared, runs, goals)
    assert bench._enough("cpu", tight, runs, goals) and tight.stop_reason == "settled"
    tight_but_compared.wall_s += [5.30, 5.31]
    assert bench._enough("cpu", tight_but_compared, runs, bench._goals("cpu", runs))


def test_a_fixed_repeat_count_is_never_cut() -> None:
    bench = Bench(BenchConfig(models=("sequential",), repeat=3, budget_s=1.0), Settings())
    run = run_of("sequential", [10.0, 10.0, 10.0])
    assert bench._goals("cpu", {"s": run}) is None  # no goal state: the rounds are never cut
    assert bench._enough("cpu", run, {"s": run}) and run.stop_reason == "fixed"


def test_a_warm_up_reaches_every_worker_twice_within_bounds() -> None:
    assert warmup_jobs(concurrency=1, n_jobs=100) == 8  # sequential IO: 8 waits, not 50
    assert warmup_jobs(concurrency=2, n_jobs=15_000) == 8
    assert warmup_jobs(concurrency=10, n_jobs=100) == 20
    assert warmup_jobs(concurrency=100, n_jobs=100) == 50  # capped
    assert warmup_jobs(concurrency=100, n_jobs=5) == 5  # never more than the run has


def test_repeat_takes_a_count_or_auto() -> None:
    parser = build_parser()
    assert parser.parse_args(["bench", "--repeat", "auto"]).repeat == "auto"
    assert parser.parse_args(["bench", "--repeat", "4"]).repeat == 4


def test_repeat_rejects_anything_else(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["bench", "--repeat", "often"])
    assert exc.value.code == 2
    assert "not a number" in capsys.readouterr().err


@pytest.mark.integration
def test_auto_stops_each_model_for_its_own_reason(tmp_path: Path, redis_url: str) -> None:
    code = main([
        "bench", "--workloads", "cpu", "--cpu-jobs", "300", "--warmup", "0", "--repeat", "auto",
        "--models", "sequential,thread_pool,multiprocessing_pool", "--out", str(tmp_path), "-q",
    ])  # fmt: skip
    assert code == EXIT_OK
    rows = json.loads((tmp_path / "latest" / "results.json").read_text())["results"]
    for row in rows:
        assert 1 <= row["repeats"] <= 10
        assert row["repeats_stop"] in {"settled", "cap", "out of contention", "outranked",
                                       "decided", "budget"}  # fmt: skip
        if row["repeats_stop"] == "settled":
            assert row["repeats"] >= 3
        if row["repeats_stop"] == "out of contention":  # only when clearly behind its group
            peers = [r["wall_s"]["median"] for r in rows if r["family"] == row["family"]]
            assert row["wall_s"]["min"] > CONTENTION_FACTOR * min(peers)
            assert row["repeats"] < 10


@pytest.mark.integration
def test_a_tiny_budget_ends_the_run_after_the_first_rounds(tmp_path: Path, redis_url: str) -> None:
    code = main([
        "bench", "--workloads", "cpu", "--cpu-jobs", "300", "--warmup", "0", "--repeat", "auto",
        "--budget-s", "0", "--models", "sequential,thread_pool,multiprocessing_pool",
        "--out", str(tmp_path), "-q",
    ])  # fmt: skip
    assert code == EXIT_OK
    rows = json.loads((tmp_path / "latest" / "results.json").read_text())["results"]
    for row in rows:  # none past its first repeats: 5 for a row a goal compares, else 3
        assert row["repeats"] <= 5, row
        assert row["repeats_stop"] in {"settled", "out of contention", "outranked", "budget"}
