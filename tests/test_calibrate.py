"""``jobbench calibrate`` (issue 14): each in-process model against its bare reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producer.calibrate import CalibrationSpec, calibrate, calibrated_models, calibration_lines
from producer.cli import main
from producer.errors import EXIT_OK
from producer.runners import registry


def test_every_calibrated_model_is_in_process_and_available() -> None:
    models = calibrated_models()
    assert {"sequential", "threading", "thread_pool", "asyncio", "multiprocessing_pool",
            "process_pool", "process_pool_map"} <= set(models)  # fmt: skip
    for name in models:
        cls = registry.load(name)
        assert cls.available() is None and not cls.stores_own_records


@pytest.mark.integration
def test_calibration_pairs_harness_and_reference_per_model_and_workload() -> None:
    spec = CalibrationSpec(
        models=("sequential", "asyncio", "multiprocessing_pool"), workloads=("io", "cpu"),
        io_jobs=6, cpu_jobs=60, latency_ms=10.0, repeat=3,
    )  # fmt: skip
    doc = calibrate(spec)
    pairs = {(r["model"], r["workload"]) for r in doc["results"]}
    # asyncio runs IO only: never asked for a CPU reference.
    assert pairs == {("sequential", "io"), ("asyncio", "io"), ("multiprocessing_pool", "io"),
                     ("sequential", "cpu"), ("multiprocessing_pool", "cpu")}  # fmt: skip
    for r in doc["results"]:
        assert len(r["harness_s"]["values"]) == len(r["reference_s"]["values"]) == 3
        assert r["ratio"]["low"] <= r["ratio"]["point"] <= r["ratio"]["high"]
        assert r["verdict"] in {"met", "missed", "undecided"}
    seq_io = next(r for r in doc["results"] if r["model"] == "sequential" and r["workload"] == "io")
    assert seq_io["reference_s"]["min"] >= 6 * 0.010  # the reference really made the requests
    assert len(calibration_lines(doc)) == len(doc["results"])


@pytest.mark.integration
def test_calibrate_command_writes_its_document(tmp_path: Path) -> None:
    code = main(["calibrate", "--models", "thread_pool", "--workloads", "cpu", "--cpu-jobs", "40",
                 "--repeat", "1", "--out", str(tmp_path), "-q"])  # fmt: skip
    assert code == EXIT_OK
    (path,) = tmp_path.glob("calibrate-*.json")
    doc = json.loads(path.read_text())
    assert doc["kind"] == "calibration" and doc["results"][0]["verdict"] == "undecided"


@pytest.mark.integration
@pytest.mark.slow
def test_perf_judges_the_goals_over_independent_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "perf", "--runs", "2", "--repeat", "3", "--cpu-jobs", "200", "--io-jobs", "6",
        "--cpu-models", "sequential,multiprocessing_pool,celery_prefork",
        "--io-models", "threading,celery_threads,celery_solo_asyncio", "--out", str(tmp_path),
    ])  # fmt: skip
    assert code == EXIT_OK
    out = capsys.readouterr().out
    (path,) = tmp_path.glob("perf-*.json")
    doc = json.loads(path.read_text())
    assert len(doc["runs"]) == 4  # 2 runs x (cpu, io), each a run directory of its own
    for r in doc["runs"]:
        assert (tmp_path / r["run_id"] / "results.json").is_file()
    for key in ("cpu_celery_vs_in_process", "io_celery_vs_in_process", "cpu_best_efficiency"):
        summary = doc["goals"][key]
        assert summary["runs"] == 2 and summary["min"] <= summary["median"] <= summary["max"]
    # Each Celery configuration against the best in-process model of its run, not only the best.
    for model in ("celery_threads", "celery_solo_asyncio"):
        summary = doc["configurations"][f"io_celery_vs_in_process:{model}"]
        assert summary["runs"] == 2 and summary["limit"] == 1.3
        assert f"  {model} (io_celery_vs_in_process, limit 1.3):" in out
    assert "cpu_celery_vs_in_process:celery_prefork" in doc["configurations"]
    best = min(
        doc["configurations"][f"io_celery_vs_in_process:{m}"]["values"][0]
        for m in ("celery_threads", "celery_solo_asyncio")
    )
    assert doc["runs"][1]["targets"]["io_celery_vs_in_process"]["value"] == best


@pytest.mark.integration
def test_bench_calibrate_stores_the_calibration_of_its_in_process_models(tmp_path: Path) -> None:
    code = main([
        "bench", "--models", "sequential,celery_solo", "--workloads", "cpu", "--cpu-jobs", "30",
        "--repeat", "1", "--warmup", "0", "--calibrate", "--out", str(tmp_path), "-q",
    ])  # fmt: skip
    assert code == EXIT_OK
    doc = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert [r["model"] for r in doc["calibration"]["results"]] == ["sequential"]  # no Celery
