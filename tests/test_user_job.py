"""``jobbench bench --job MODULE:FUNCTION``: a user's function through every model (issue 16).

Real runs with tiny sizes: the in-process models, Celery threads and prefork with real workers,
an ``async def`` job, a job failing on some inputs, and every bad input as a subprocess run (one
line on stderr, exit 2). The job modules are written into the test's own directory, which is the
run's working directory: that is where jobbench imports them from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from producer.runners.celery import workers
from producer.runners.celery.consumers import probe_job
from shared import jobspec
from shared.timings import timed_job

JOBBENCH = [sys.executable, "-m", "producer.cli"]
EXIT_USAGE = 2

#: The jobs these tests run, as a user writes them.
JOBS = """
import asyncio
import time


def square(x, offset=0):
    return {"x": x, "square": x * x + offset}


def fails_on_odd(x):
    if x % 2:
        raise ValueError(f"odd input {x}")
    return x


def returns_a_set(x):
    return {x}


def hangs(x):
    if x == 1:
        time.sleep(30)
    return x


async def slow_square(x):
    await asyncio.sleep(0.01)
    return x * x


def numbers():
    return iter(range(1000))


def bad_items():
    return [1, object()]


NOT_CALLABLE = 42
"""


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    """A directory holding a job module of a name no other test imports, and an args file."""
    (tmp_path / "userjobs.py").write_text(textwrap.dedent(JOBS))
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    (tmp_path / "args.jsonl").write_text('[1]\n{"x": 2, "offset": 1}\n\n[3]\n[4]\n')
    return tmp_path


def bench(
    cwd: Path, redis_url: str, *argv: str, timeout_s: float = 170
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    return subprocess.run(
        [*JOBBENCH, "bench", "--repeat", "1", "--warmup", "0", "--out", str(cwd / "results"),
         "--quiet", *argv],
        cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
        env={**env, "REDIS_URL": redis_url},
    )  # fmt: skip


def results(cwd: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((cwd / "results" / "latest" / "results.json").read_text())
    return doc


def last_results(cwd: Path) -> dict[str, Any]:
    """The last run's document, written even when the run failed (``latest`` is not moved)."""
    runs = sorted((cwd / "results").glob("*/results.json"))
    doc: dict[str, Any] = json.loads(runs[-1].read_text())
    return doc


# --- units: the job spec ----------------------------------------------------------------------


def test_a_job_is_called_with_positional_or_keyword_arguments() -> None:
    assert jobspec.call(lambda a, b=0: a - b, [5, 2]) == 3
    assert jobspec.call(lambda a, b=0: a - b, {"a": 5, "b": 1}) == 4
    assert jobspec.call(lambda a: a * 2, 7) == 14


def test_a_return_is_digested_by_its_json_form() -> None:
    assert jobspec.digest_result({"b": 1, "a": [1, 2]}, "full") == '{"a":[1,2],"b":1}'
    same = jobspec.digest_result({"a": [1, 2], "b": 1}, "digest")
    assert same == jobspec.digest_result({"b": 1, "a": [1, 2]}, "digest")
    assert same.startswith("json:17:") and same != jobspec.digest_result({"a": [2, 1]}, "digest")
    with pytest.raises(jobspec.ResultNotSerialisable, match="returned a set"):
        jobspec.digest_result({1}, "digest")


def test_the_seed_jobs_are_built_in_specs() -> None:
    assert jobspec.resolve("seed:cpu") is jobspec.for_workload("cpu")
    assert jobspec.for_workload("cpu").label == "cpu" and jobspec.label("seed:io") == "io"
    record = timed_job(0, "cpu", 1000, model="m", pool="p")
    assert record.output == "primes:168:997" and record.workload == "cpu"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nocolon", "expected MODULE:FUNCTION"),
        ("no_such_module_xyz:f", "cannot import no_such_module_xyz: ModuleNotFoundError"),
        ("json:no_such_function", "json has no attribute 'no_such_function'"),
        ("json:__name__", "__name__ is a str, not callable"),
    ],
)
def test_a_job_that_cannot_be_resolved_is_one_line(name: str, expected: str) -> None:
    with pytest.raises(jobspec.JobSpecError) as err:
        jobspec.resolve(name)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_timeout_ends_a_sync_and_an_async_job(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import time

    async def forever() -> None:
        await asyncio.sleep(60)

    monkeypatch.setenv(jobspec.JOB_TIMEOUT_ENV, "0.05")
    sync = jobspec.JobSpec("t:sleep", "t:sleep", "sync", lambda: time.sleep(1))
    with pytest.raises(jobspec.JobTimeout, match=r"within 0\.05 s"):
        sync.run([], "digest")
    spec = jobspec.JobSpec("t:forever", "t:forever", "async", forever)
    with pytest.raises(jobspec.JobTimeout, match="cancelled"):
        spec.run([], "digest")
    monkeypatch.setenv(jobspec.JOB_TIMEOUT_ENV, "5")
    assert sync.run([], "digest").startswith("json:4:")  # None's JSON form: null


def test_an_async_job_keeps_one_loop_per_thread() -> None:
    async def loop_id() -> int:
        return id(asyncio.get_running_loop())

    import asyncio

    spec = jobspec.JobSpec("t:loop", "t:loop", "async", loop_id)
    assert spec.run([], "full") == spec.run([], "full")


# --- real runs ---------------------------------------------------------------------------------

IN_PROCESS = "sequential,threading,thread_pool,process_pool,multiprocessing_pool"


@pytest.mark.integration
def test_a_user_job_runs_through_every_model_with_the_same_results(
    job_dir: Path, redis_url: str
) -> None:
    models = f"{IN_PROCESS},celery_threads,celery_prefork"
    proc = bench(job_dir, redis_url, "--job", "userjobs:square", "--args", "args.jsonl",
                 "--models", models, "--result", "full")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = results(job_dir)
    rows = doc["results"]
    assert {r["model"] for r in rows} == set(models.split(","))
    assert {r["workload"] for r in rows} == {"userjobs:square"}
    assert all(r["n_jobs"] == 4 and r["n_ok"] == 4 for r in rows)
    assert doc["metadata"]["config"]["job"] == "userjobs:square"
    # The table names the job; verify reconciles its jobs like the seed's.
    assert "userjobs:square" in proc.stdout
    check = subprocess.run(
        [*JOBBENCH, "verify", "--out", str(job_dir / "results")],
        cwd=job_dir, capture_output=True, text=True, timeout=60,
        env={**os.environ, "REDIS_URL": redis_url},
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.integration
def test_every_model_returns_the_same_outputs(job_dir: Path, redis_url: str) -> None:
    """Outputs are compared through the records in Redis, model by model."""
    import redis as redis_lib

    from shared import keys
    from shared.timings import TimingStore

    models = "sequential,thread_pool,process_pool,celery_prefork"
    proc = bench(job_dir, redis_url, "--job", "userjobs:square", "--args", "args.jsonl",
                 "--models", models, "--result", "full")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_id = results(job_dir)["run_id"]
    store = TimingStore(redis_lib.Redis.from_url(redis_url))
    seen = {}
    for model in models.split(","):
        records = store.load(keys.scope(run_id, model, "userjobs:square", 0))
        seen[model] = [r.output for r in records]
    expected = [
        '{"square":1,"x":1}', '{"square":5,"x":2}', '{"square":9,"x":3}', '{"square":16,"x":4}'
    ]  # fmt: skip
    assert all(out == expected for out in seen.values()), seen


@pytest.mark.integration
def test_an_async_job_is_gathered_by_asyncio_and_looped_elsewhere(
    job_dir: Path, redis_url: str
) -> None:
    models = "sequential,thread_pool,process_pool,asyncio,celery_threads"
    proc = bench(job_dir, redis_url, "--job", "userjobs:slow_square", "--args-from",
                 "userjobs:numbers", "--jobs", "6", "--models", models)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {r["model"]: r for r in results(job_dir)["results"]}
    assert set(rows) == set(models.split(",")) and all(r["n_ok"] == 6 for r in rows.values())
    note = "async job: one event loop per worker thread"
    assert note not in rows["asyncio"]["notes"]
    assert all(note in r["notes"] for m, r in rows.items() if m != "asyncio")
    assert rows["asyncio"]["params"]["concurrency"] == 6


@pytest.mark.integration
def test_a_sync_job_names_the_models_that_do_not_run_it(job_dir: Path, redis_url: str) -> None:
    proc = bench(job_dir, redis_url, "--job", "userjobs:square", "--args", "args.jsonl",
                 "--models", "sequential,asyncio")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "userjobs:square is a sync job; not run by asyncio" in proc.stderr
    alone = bench(job_dir, redis_url, "--job", "userjobs:square", "--args", "args.jsonl",
                  "--models", "asyncio")  # fmt: skip
    assert alone.returncode == EXIT_USAGE and "no model of --models runs" in alone.stderr


@pytest.mark.integration
def test_jobs_that_raise_are_error_records_and_the_run_goes_on(
    job_dir: Path, redis_url: str
) -> None:
    models = "sequential,process_pool,celery_threads"
    proc = bench(job_dir, redis_url, "--job", "userjobs:fails_on_odd", "--args-from",
                 "userjobs:numbers", "--jobs", "4", "--models", models)  # fmt: skip
    # 0 and 2 pass, 1 and 3 fail, in every model; the run is measured.
    assert proc.returncode == 1, proc.stderr
    assert "jobs failed" in proc.stderr.splitlines()[-1]
    rows = last_results(job_dir)["results"]
    assert {r["model"] for r in rows} == set(models.split(","))
    for row in rows:
        assert (row["n_ok"], row["n_error"]) == (2, 2)
        assert row["errors"] == ["ValueError: odd input 1", "ValueError: odd input 3"]


@pytest.mark.integration
def test_a_result_with_no_json_form_is_each_jobs_error_naming_the_type(
    job_dir: Path, redis_url: str
) -> None:
    proc = bench(job_dir, redis_url, "--job", "userjobs:returns_a_set", "--args-from",
                 "userjobs:numbers", "--jobs", "4", "--models", "sequential,thread_pool",
                 "--allow-failures")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for row in results(job_dir)["results"]:
        assert row["n_error"] == 4
        assert all("returned a set, which has no JSON form" in e for e in row["errors"])


@pytest.mark.integration
def test_a_hanging_job_is_an_error_after_the_job_timeout(job_dir: Path, redis_url: str) -> None:
    proc = bench(job_dir, redis_url, "--job", "userjobs:hangs", "--args-from",
                 "userjobs:numbers", "--jobs", "4", "--models",
                 "sequential,process_pool,celery_prefork", "--job-timeout-s", "0.5",
                 "--allow-failures")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for row in results(job_dir)["results"]:
        assert (row["n_ok"], row["n_error"]) == (3, 1), row["model"]
        assert row["errors"][0].startswith("JobTimeout: job did not finish within 0.5 s")


@pytest.mark.integration
def test_the_seed_jobs_run_through_the_same_mechanism(job_dir: Path, redis_url: str) -> None:
    import redis as redis_lib

    from shared import keys
    from shared.timings import TimingStore

    store = TimingStore(redis_lib.Redis.from_url(redis_url))
    got = {}
    for argv in (("--job", "seed:cpu"), ("--workloads", "cpu")):
        proc = bench(job_dir, redis_url, *argv, "--cpu-jobs", "5", "--models", "sequential")
        assert proc.returncode == 0, proc.stderr
        doc = results(job_dir)
        assert [r["workload"] for r in doc["results"]] == ["cpu"]
        got[argv[0]] = [
            r.output for r in store.load(keys.scope(doc["run_id"], "sequential", "cpu", 0))
        ]
    # n = 1000..1004: the primes up to 1000 each time (the next prime is 1009).
    assert got["--job"] == got["--workloads"] == ["primes:168:997"] * 5


# --- bad input: one line, exit 2, nothing measured -----------------------------------------------

BAD_INPUT = [
    (["--job", "broken:f", "--args", "args.jsonl"],
     "job broken:f: cannot import broken: ModuleNotFoundError: No module named "
     "'no_such_module_here'"),
    (["--job", "userjobs:nope", "--args", "args.jsonl"], "userjobs has no attribute 'nope'"),
    (["--job", "userjobs:NOT_CALLABLE", "--args", "args.jsonl"], "is a int, not callable"),
    (["--job", "userjobs:square", "--args", "bad.jsonl"], "--args bad.jsonl: line 3: not JSON"),
    (["--job", "userjobs:square", "--args", "scalar.jsonl"],
     "line 2: expected a JSON array (positional arguments) or object"),
    (["--job", "userjobs:square", "--args", "missing.jsonl"], "--args missing.jsonl: cannot read"),
    (["--job", "userjobs:square", "--args", "empty.jsonl"], "no jobs"),
    (["--job", "userjobs:square"], "give its arguments with --args FILE or --args-from"),
    (["--job", "userjobs:square", "--args-from", "userjobs:bad_items"],
     "item 1 is a object, which has no JSON form"),
    (["--job", "userjobs:square", "--args-from", "userjobs:NOT_CALLABLE"], "not callable"),
    (["--job", "seed:cpu", "--args", "args.jsonl"], "seed:cpu takes its jobs from --io-jobs"),
    (["--job", "userjobs:square", "--args", "args.jsonl", "--job-timeout-s", "0"],
     "--job-timeout-s"),
    (["--job", "userjobs:square", "--args", "args.jsonl", "--calibrate"],
     "--calibrate holds the seed's workloads only"),
]  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize(("argv", "expected"), BAD_INPUT)
def test_bad_job_input_is_one_line_and_exit_2(
    argv: list[str], expected: str, job_dir: Path, redis_url: str
) -> None:
    (job_dir / "bad.jsonl").write_text("[1]\n[2]\n{not json\n[4]\n")
    (job_dir / "scalar.jsonl").write_text("[1]\n7\n")
    (job_dir / "empty.jsonl").write_text("\n\n")
    proc = bench(job_dir, redis_url, *argv, "--models", "sequential", timeout_s=60)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (job_dir / "results" / "latest").exists()


@pytest.mark.integration
def test_an_external_worker_that_cannot_import_the_job_is_named(
    job_dir: Path, redis_url: str
) -> None:
    """The worker runs from this process's directory, where the test's job module is not."""
    queue = f"jbtest-{uuid.uuid4().hex[:10]}"
    worker = workers.start_worker(
        pool="threads", concurrency=1, queue=f"{queue}.threads", broker_url=redis_url,
        redis_url=redis_url, name="external",
    )  # fmt: skip
    try:
        app = workers.producer_app(redis_url)
        probe_job(app, [worker.nodename], "json:dumps")  # importable there: no error
        proc = bench(job_dir, redis_url, "--job", "userjobs:square", "--args", "args.jsonl",
                     "--models", "celery_threads", "--external-workers", "--queue", queue,
                     "--external-wait-s", "20", timeout_s=120)  # fmt: skip
    finally:
        workers.stop_worker(worker)
        workers.delete_queue(redis_url, f"{queue}.threads")
    assert proc.returncode == EXIT_USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"worker {worker.nodename} cannot run the job" in lines[0]
    assert "cannot import userjobs" in lines[0]


def test_a_thread_per_job_leaves_no_event_loop_open() -> None:
    """``threading`` runs each job on a thread of its own: its loop closes with the thread."""
    import threading

    async def nothing() -> int:
        return 1

    spec = jobspec.JobSpec("t:nothing", "t:nothing", "async", nothing)
    loops = []

    def one_job() -> None:
        spec.run([], "digest")
        loops.append(jobspec.thread_loop())

    for _ in range(3):
        thread = threading.Thread(target=one_job)
        thread.start()
        thread.join()
    assert len({id(loop) for loop in loops}) == 3
    assert all(loop.is_closed() for loop in loops)
