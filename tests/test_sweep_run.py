"""``jobbench sweep`` for real: tiny sweeps end to end against real Redis, real Celery workers and
the real HTTP target; the outputs, and a second run that measures nothing already measured."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from producer.cli import EXIT_OK, main
from producer.sweep import POINTS_DIR

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n"


def run_dirs(sweep_dir: Path) -> set[str]:
    points = sweep_dir / POINTS_DIR
    return {p.name for p in points.iterdir() if p.is_dir() and not p.is_symlink()}


@pytest.mark.slow
def test_tiny_granularity_sweep_writes_everything_and_resumes(
    tmp_path: Path, redis_url: str
) -> None:
    out = tmp_path / "sweeps"
    argv = [
        "sweep", "granularity", "--vary", "cpu_n=1000,5000", "--cpu-work", "20000",
        "--repeat", "2", "--warmup", "0", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(argv) == EXIT_OK
    sweep_dir = out / "granularity"
    doc = json.loads((sweep_dir / "sweep.json").read_text())
    assert doc["schema"] == 1 and doc["kind"] == "jobbench-sweep"
    assert doc["values"] == [1000, 5000] and doc["param"]["name"] == "cpu_n"
    assert (doc["n_points_measured"], doc["n_points_resumed"]) == (4, 0)
    # Every point: the same total work, measured with the bench's repeats.
    for point in doc["points"]:
        for row in point["results"]:
            assert row["n_jobs"] * point["value"] == 20_000
            assert row["repeats"] == 2 and row["n_ok"] == 2 * row["n_jobs"]
    names = [s["name"] for s in doc["series"]]
    assert names == [
        "sequential", "multiprocessing_pool", "process_pool_map",
        "celery_prefork (auto batches)", "celery_prefork (batch 1)",
    ]  # fmt: skip
    by_name = {s["name"]: s for s in doc["series"]}
    one = by_name["celery_prefork (batch 1)"]["points"]
    assert [p["n_jobs"] for p in one] == [20, 4]
    for p in one:  # the batch-1 run has no baseline of its own: the point's other run gives it
        assert p["efficiency"] is not None and 0 < p["efficiency"] <= 1.5
        assert p["overhead"] is not None and p["job_s"] is not None
    # Measured, not made up: the sequential median is the per-job time x the jobs.
    seq = by_name["sequential"]["points"]
    assert seq[0]["job_s"] == pytest.approx(seq[0]["median_s"] / 20)
    shares = {(c["series"], c["share"]) for c in doc["findings"]["crossovers"]}
    assert len(shares) == 4
    assert doc["charts"] == ["wall_time.png", "efficiency.png", "overhead.png"]
    for chart in doc["charts"]:
        assert (sweep_dir / chart).read_bytes()[:8] == PNG
    with (sweep_dir / "sweep.csv").open() as fh:
        lines = list(csv.DictReader(fh))
    assert len(lines) == 2 * 4 + 2  # four series at both values, batch 1 at both too
    md = (sweep_dir / "sweep.md").read_text()
    assert "## What the curves say" in md and "best in-process model" in md
    # Each point run is an ordinary run directory.
    measured = run_dirs(sweep_dir)
    assert len(measured) == 4

    # Again, with one more value: only the new value's two point runs are measured.
    argv[3] = "cpu_n=1000,2000,5000"
    assert main(argv) == EXIT_OK
    again = json.loads((sweep_dir / "sweep.json").read_text())
    assert (again["n_points_measured"], again["n_points_resumed"]) == (2, 4)
    assert len(run_dirs(sweep_dir) - measured) == 2
    kept = {p["run_id"] for p in again["points"] if p["value"] != 2000}
    assert kept == measured


@pytest.mark.slow
def test_io_concurrency_and_celery_nodes_reach_the_models(tmp_path: Path, redis_url: str) -> None:
    out = tmp_path / "sweeps"
    argv = [
        "sweep", "io-concurrency", "--vary", "io_concurrency=1,4",
        "--models", "threading,thread_pool,asyncio,celery_threads",
        "--latency-ms", "30", "--repeat", "1", "--warmup", "0", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(argv) == EXIT_OK
    doc = json.loads((out / "io-concurrency" / "sweep.json").read_text())
    for point in doc["points"]:
        t = point["value"]
        for row in point["results"]:
            # T requests, T in flight for every model, the ideal one latency.
            assert row["n_jobs"] == t and row["params"]["concurrency"] == t
            assert row["ideal_s"] == pytest.approx(0.030)
            assert row["wall_s"]["median"] >= 0.030
    assert {s["series"] for s in doc["findings"]["scaling"]} == {
        "threading", "thread_pool", "asyncio", "celery_threads"
    }  # fmt: skip

    nodes = [
        "sweep", "--vary", "celery_nodes=1,2", "--models", "celery_threads", "--workloads", "io",
        "--io-jobs", "8", "--celery-concurrency", "2", "--latency-ms", "30",
        "--repeat", "1", "--warmup", "0", "--out", str(out), "--quiet",
    ]  # fmt: skip
    assert main(nodes) == EXIT_OK
    doc = json.loads((out / "vary-celery_nodes" / "sweep.json").read_text())
    for point in doc["points"]:
        (row,) = point["results"]
        n = point["value"]
        assert row["params"]["concurrency"] == 2 * n
        assert len(row["startup"]["node"].split(",")) == n
        # Both nodes ran jobs of the 8 (one job per message: each node takes its share).
        assert len(row["jobs_per_process"]) == n
