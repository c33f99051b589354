"""The command line as a user meets it: bad input is one line and exit 2, a tiny run writes a
measured results.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from producer.cli import EXIT_USAGE, main
from producer.services import Target, free_port

pytestmark = pytest.mark.integration

JOBBENCH = [sys.executable, "-m", "producer.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JOBBENCH, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


BAD_INPUT = [
    (["bench", "--models", "sequential,gevent"], {}, "unknown model gevent"),
    (["bench", "--workloads", "disk"], {}, "unknown workload disk"),
    (["bench", "--io-jobs", "0"], {}, "between 1 and"),
    (["bench", "--cpu-jobs", "-5"], {}, "between 1 and"),
    (["bench", "--cpu-jobs", "10000000000"], {}, "between 1 and"),
    (["bench", "--repeat", "many"], {}, "not a number"),
    (["bench", "--latency-ms", "nan"], {}, "between"),
    (["bench", "--url", "not a url"], {}, "--url"),
    (["bench", "--url", "ftp://example.com/x"], {}, "--url"),
    (["bench"], {"JOBBENCH_IO_JOBS": "-1"}, "between 1 and"),
    (["bench"], {"REDIS_URL": "http://nope"}, "REDIS_URL"),
    (["bench"], {"REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"}, "cannot reach Redis"),
    (["bench", "--out", "/proc/jobbench-results"], {}, "cannot write results"),
    (["nonsense"], {}, "invalid choice"),
]


@pytest.mark.parametrize(("argv", "env", "expected"), BAD_INPUT)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    argv: list[str], env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    out = tmp_path / "results"
    if "--out" not in argv and argv[0] == "bench":
        argv = [*argv, "--out", str(out)]
    proc = run_cli(*argv, env=env)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "s3cret" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_tiny_bench_writes_measured_results(tmp_path: Path, redis_url: str) -> None:
    latency_ms = 40.0
    out = tmp_path / "results"
    code = main(
        [
            "bench", "--models", "sequential,asyncio,thread_pool,multiprocessing_pool",
            "--io-jobs", "10", "--cpu-jobs", "60", "--latency-ms", str(latency_ms),
            "--repeat", "2", "--out", str(out), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    doc = json.loads((out / "latest" / "results.json").read_text())
    assert doc["schema"] == 1 and doc["metadata"]["cpu_count"] >= 1
    rows = {(r["workload"], r["model"]): r for r in doc["results"]}
    assert set(rows) == {
        ("io", "sequential"), ("io", "asyncio"), ("io", "thread_pool"),
        ("io", "multiprocessing_pool"), ("cpu", "sequential"), ("cpu", "thread_pool"),
        ("cpu", "multiprocessing_pool"),
    }  # fmt: skip
    seq, aio = rows["io", "sequential"], rows["io", "asyncio"]
    # Measured, not made up: sequential IO waits every latency in turn, asyncio about one.
    assert seq["wall_s"]["median"] >= 10 * latency_ms / 1000
    assert aio["wall_s"]["median"] < seq["wall_s"]["median"] / 2
    assert seq["ideal_s"] == pytest.approx(10 * latency_ms / 1000)
    for r in doc["results"]:
        assert len(r["wall_s"]["values"]) == 2 and r["n_ok"] == 2 * r["n_jobs"]
        assert r["efficiency"] == pytest.approx(r["ideal_s"] / r["wall_s"]["median"])
    assert rows["cpu", "multiprocessing_pool"]["params"]["chunksize"] >= 1
    jobs_csv = (out / "latest" / "jobs.csv").read_text().splitlines()
    assert len(jobs_csv) == 1 + 4 * 10 + 3 * 60


def test_explicit_url_replaces_the_local_target(tmp_path: Path, target: Target) -> None:
    proc = run_cli(
        "bench", "--models", "sequential", "--workloads", "io", "--io-jobs", "3",
        "--url", target.url, "--repeat", "1", "--out", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert doc["metadata"]["target"] == {
        "url": target.url,
        "local": False,
        "latency_ms": None,
        "ideal_latency_source": "sequential median / n_jobs",
    }


def test_unreachable_url_jobs_are_reported_failed_not_lost(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/ip"
    proc = run_cli(
        "bench", "--models", "sequential", "--workloads", "io", "--io-jobs", "2",
        "--url", url, "--repeat", "1", "--warmup", "0", "--out", str(tmp_path), "--quiet",
        "--allow-failures",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = json.loads((tmp_path / "latest" / "results.json").read_text())["results"][0]
    assert (row["n_ok"], row["n_error"]) == (0, 2)
    assert "ConnectionError" in row["errors"][0]
