"""``--repeat auto`` (issue 14): repeat each model until its median is known, not a fixed count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producer.bench import (
    CONTENTION_FACTOR,
    ModelRun,
    out_of_contention,
    outranked,
    warmup_jobs,
)
from producer.cli import build_parser, main
from producer.errors import EXIT_OK
from producer.runners import registry


def run_of(model: str, walls: list[float]) -> ModelRun:
    cls = registry.load(model)
    return ModelRun(model=model, runner=cls, workload="cpu", n_jobs=1, concurrency=1, wall_s=walls)


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
        assert row["repeats_stop"] in {"settled", "cap", "out of contention", "outranked"}
        if row["repeats_stop"] == "settled":
            assert row["repeats"] >= 3
        if row["repeats_stop"] == "out of contention":  # only when clearly behind its group
            peers = [r["wall_s"]["median"] for r in rows if r["family"] == row["family"]]
            assert row["wall_s"]["min"] > CONTENTION_FACTOR * min(peers)
            assert row["repeats"] < 10
