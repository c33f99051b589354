"""The cost model inside a real bench: the probe runs before the models, every row is predicted
before its model runs, and the sentences come from the figures measured (real Redis, the real
target, real pools and a real Celery worker; no timed assertions)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from producer.bench import Bench, BenchConfig
from producer.costmodel import fmt_s
from producer.predict import Predictor, prediction_errors
from producer.report import build_report
from producer.runners.base import RunnerOptions
from producer.runners.thread_pool import ThreadPool
from producer.table import probe_lines, results_table
from shared.settings import Settings

pytestmark = pytest.mark.integration

MODELS = ("sequential", "thread_pool", "multiprocessing_pool", "celery_solo")


def test_a_tiny_bench_predicts_every_row_before_it_runs(tmp_path: Path, redis_url: str) -> None:
    config = BenchConfig(
        models=MODELS, cpu_jobs=200, io_jobs=6, latency_ms=20.0, repeat=1, warmup=0,
        out_dir=tmp_path,
    )  # fmt: skip
    bench = Bench(config, Settings(redis_url=redis_url))
    doc = bench.run()
    rows = doc["results"]
    assert {(r["workload"], r["model"]) for r in rows} == {
        (w, m) for w in ("io", "cpu") for m in MODELS
    }
    for run in bench.runs:  # predicted before the first job of the model started
        row = next(r for r in rows if (r["workload"], r["model"]) == (run.workload, run.model))
        first_job_ns = min(rec.started_at_ns for res in run.results for rec in res.records)
        assert row["prediction"]["predicted_at_ns"] < first_job_ns
        assert row["prediction"]["predicted_s"] > 0
        measured = row["wall_s"]["median"]
        expected = (row["prediction"]["predicted_s"] - measured) / measured * 100
        assert row["prediction"]["error_pct"] == pytest.approx(expected)
    probe = doc["probe"]["cpu"]
    assert probe["n_jobs"] == 200 and 3 <= probe["n_sampled"] <= 200
    assert 0 < probe["cpu_share"] <= 1 and probe["arg_bytes"]["pickle"] > 0
    # The CPU job's own slowdown with both cores running it; the IO job's CPU around its wait.
    slowdown = probe["parallel_slowdown"]
    assert slowdown["processes"] == 2 and 1.0 <= slowdown["value"] <= 2.0
    assert slowdown["alone_s"] > 0 and slowdown["together_s"] > 0
    cpu_pool = next(
        r for r in rows if (r["workload"], r["model"]) == ("cpu", "multiprocessing_pool")
    )
    assert cpu_pool["prediction"]["terms"]["parallel_slowdown"] == slowdown["value"]
    assert doc["probe"]["io"]["parallel_slowdown"] is None
    assert 0.0 <= doc["probe"]["io"]["cpu_before_wait"] <= 1.0
    assert doc["probe"]["io"]["overlapped_cpu"] > 0
    # The sentence is made of the probe's figures.
    seq = next(r for r in rows if (r["workload"], r["model"]) == ("cpu", "sequential"))
    walls = [s[1] for s in probe["samples"]]
    assert "200 jobs one after another" in seq["prediction"]["explanation"]
    assert fmt_s(seq["prediction"]["terms"]["work_s"]) in seq["prediction"]["explanation"]
    assert min(walls) * 200 <= seq["prediction"]["terms"]["work_s"] <= max(walls) * 200
    # Every figure the predictions used says where it came from, and when.
    for key in ("pickle_byte", "thread_submit", "pool_task", "celery_message:solo@redis"):
        assert doc["machine_costs"][key]["source"] and doc["machine_costs"][key]["measured_at"]
    assert set(doc["advice"]) == {"io", "cpu"}
    assert any("Celery's best, `celery_solo`" in line for line in doc["advice"]["cpu"]["lines"])
    # The table, report.md and the coordinator's error list show them.
    assert "predicted s" in [c.header for c in results_table(doc).columns]
    assert probe_lines(doc)[0].startswith("probe io:")
    assert len(prediction_errors(doc)) == len(rows)
    run_dir = tmp_path / "latest"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps(doc))
    build_report(run_dir)
    report = (run_dir / "report.md").read_text()
    assert "## Predicted vs measured" in report and "## Advice" in report
    assert seq["prediction"]["explanation"] in report


def test_the_probe_decides_the_sentence(tmp_path: Path, redis_url: str) -> None:
    """Any job as (callable, calls): a job that spins and one that sleeps get opposite verdicts
    for the same thread pool, from what the probe measured."""

    def spin(n: int) -> int:
        return sum(i & 3 for i in range(n))

    def nap(s: float) -> float:
        time.sleep(s)
        return s

    runner = ThreadPool(RunnerOptions(thread_pool_workers=8))
    predictor = Predictor(tmp_path, redis_url, budget_s=0.3)
    predictor.probe("spin", spin, [(20_000,)] * 40)
    predictor.probe("nap", nap, [(0.005,)] * 40)
    busy = predictor.predict("spin", "thread_pool", runner, 40)
    idle = predictor.predict("nap", "thread_pool", runner, 40)
    share = predictor.probes["spin"].cpu_share
    assert f"{share:.0%} of this job holds the GIL" in busy.explanation
    assert "overlap the waiting share" in idle.explanation and "in 5 rounds" in idle.explanation
    assert idle.predicted_s < predictor.probes["nap"].wall_mean_s * 40
