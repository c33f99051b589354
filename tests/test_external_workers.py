"""``--external-workers``: the Celery runners measure workers they did not start (compose services,
other machines), found on ``<queue prefix>.<pool>`` through ``inspect``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer.cli import EXIT_USAGE
from producer.runners import RUNNERS, JobBatch, RunnerOptions
from producer.runners.celery import workers
from producer.runners.celery.models import CeleryOptions
from producer.runners.celery.workers import PoolName, WorkerProcess
from producer.services import ServiceError, Target

pytestmark = pytest.mark.integration

JOBBENCH = [sys.executable, "-m", "producer.cli"]


def prefix() -> str:
    """A queue prefix no other test (or concurrent run) uses."""
    return f"jbtest-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def consumers(
    redis_url: str, queue: str, pool: PoolName, sizes: tuple[int, ...]
) -> Iterator[list[WorkerProcess]]:
    """Workers on ``queue``, started the way an operator would (not by the runner)."""
    started: list[WorkerProcess] = []
    try:
        for size in sizes:
            worker = workers.start_worker(
                pool=pool, concurrency=size, queue=queue, broker_url=redis_url,
                redis_url=redis_url, name="external",
            )  # fmt: skip
            started.append(worker)
        yield started
    finally:
        for worker in started:
            workers.stop_worker(worker)
        with contextlib.suppress(Exception):
            workers.delete_queue(redis_url, queue)


def options(
    redis_url: str, queue_prefix: str, wait_s: float = 10.0
) -> tuple[RunnerOptions, CeleryOptions]:
    return RunnerOptions(cpu_count=2, redis_url=redis_url), CeleryOptions(
        broker_url=redis_url, completion_timeout_s=30.0,
        external_workers=True, queue_prefix=queue_prefix, external_wait_s=wait_s,
    )  # fmt: skip


def test_runner_measures_every_node_on_the_queue_and_leaves_them_running(
    redis_url: str, run_id: str, target: Target
) -> None:
    qp = prefix()
    with consumers(redis_url, f"{qp}.threads", "threads", (2, 3)) as nodes:
        runner = RUNNERS["celery_threads"](*options(redis_url, qp))
        facts = runner.start("io")
        assert facts["external"] is True and facts["queue"] == f"{qp}.threads"
        assert facts["nodes"] == {w.nodename: w.concurrency for w in nodes}
        assert facts["concurrency"] == 5 == runner.concurrency("io", 30)
        result = runner.run(JobBatch(run_id, "io", [target.url] * 30, repeat=0))
        assert [r.job_id for r in result.records] == list(range(30))
        assert {r.outcome for r in result.records} == {"ok"}
        # Both nodes took jobs: 30 requests of 20 ms never fit in one node's 2-3 threads.
        assert {r.pid for r in result.records} == {w.pid for w in nodes}
        assert result.params["concurrency"] == 5
        runner.stop()
        runner.stop()  # twice is fine
        # Not ours: still running, and their queue still serves a second runner.
        assert all(w.alive() for w in nodes)
        again = RUNNERS["celery_threads"](*options(redis_url, qp))
        again.start("io")
        more = again.run(JobBatch(run_id, "io", [target.url] * 3, repeat=1))
        assert len(more.records) == 3
        again.stop()


def test_no_consumer_is_a_bounded_one_line_error(redis_url: str) -> None:
    qp = prefix()
    runner = RUNNERS["celery_solo"](*options(redis_url, qp, wait_s=1.5))
    started = time.monotonic()
    with pytest.raises(ServiceError) as err:
        runner.start("cpu")
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert "\n" not in message and f"{qp}.solo" in message and "--pool=solo" in message


def test_a_node_running_another_pool_is_refused(redis_url: str) -> None:
    qp = prefix()
    with consumers(redis_url, f"{qp}.prefork", "threads", (1,)):
        runner = RUNNERS["celery_prefork"](*options(redis_url, qp))
        with pytest.raises(ServiceError, match="runs the threads pool, not prefork"):
            runner.start("cpu")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JOBBENCH, *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_cli_bench_against_external_workers(redis_url: str, tmp_path: Path) -> None:
    """The compose producer's command line, with the options from the environment."""
    qp = prefix()
    with consumers(redis_url, f"{qp}.solo", "solo", (1,)) as [node]:
        env = {
            "REDIS_URL": redis_url, "JOBBENCH_EXTERNAL_WORKERS": "1", "JOBBENCH_QUEUE": qp,
            "JOBBENCH_MODELS": "celery_solo", "JOBBENCH_WORKLOADS": "cpu",
            "JOBBENCH_CPU_JOBS": "30", "JOBBENCH_REPEAT": "1", "JOBBENCH_WARMUP": "0",
        }  # fmt: skip
        proc = run_cli("bench", "--out", str(tmp_path), "-q", env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert node.alive()
    [result] = json.loads((tmp_path / "latest" / "results.json").read_text())["results"]
    assert result["model"] == "celery_solo" and result["n_ok"] == 30
    assert result["startup"]["nodes"] == {node.nodename: 1}
    assert set(result["jobs_per_process"]) == {f"{node.nodename.split('@')[1]}:{node.pid}"}


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--external-workers", "--external-wait-s", "0.5"], {}, "no Celery worker consumes"),
        ([], {"JOBBENCH_EXTERNAL_WORKERS": "perhaps"}, "JOBBENCH_EXTERNAL_WORKERS must be"),
        (["--external-workers", "--queue", "bad queue"], {}, "queue prefix must be"),
    ],
)
def test_cli_errors_are_one_line(
    argv: list[str], env: dict[str, str], expected: str, redis_url: str, tmp_path: Path
) -> None:
    argv = [*argv, "--queue", prefix()] if "--queue" not in argv else argv
    proc = run_cli(
        "bench", "--models", "celery_threads", "--workloads", "io", "--io-jobs", "2",
        "--out", str(tmp_path), *argv, env={"REDIS_URL": redis_url, **env},
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
