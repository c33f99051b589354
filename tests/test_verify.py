"""``jobbench verify``: the reconciliation on hand-made scopes (every category, exactly), the
command line (run resolution, table, JSON, exit codes) and a real tiny run end to end."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from producer.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from producer.errors import ResultsError, RunNotFound
from producer.history import resolve_run_id
from producer.verify import check_run
from shared import keys
from shared.timings import TimingStore, timed_job

pytestmark = pytest.mark.integration

MODEL = "celery_solo"


@pytest.fixture
def store(redis_url: str) -> Iterator[TimingStore]:
    s = TimingStore.from_url(redis_url)
    yield s
    s.client.close()


def make_scope(
    store: TimingStore,
    run_id: str,
    n_jobs: int,
    *,
    finished: dict[int, int],
    errors: dict[int, str] | None = None,
    started_only: tuple[int, ...] = (),
    model: str = MODEL,
    celery: bool = True,
    meta: dict[str, object] | None = None,
) -> str:
    """A scope as a run leaves it: ``finished`` maps job id -> times its body started."""
    scope_key = keys.scope(run_id, model, "cpu", 0)
    scope_meta: dict[str, object] = {"model": model, "workload": "cpu", "repeat": 0}
    scope_meta["n_jobs"] = n_jobs
    if celery:
        scope_meta["queue"] = f"jobbench.test.{model}"
        store.mark_enqueued(scope_key, dict.fromkeys(range(n_jobs), time.time_ns()))
    store.register_scope(run_id, scope_key, {**scope_meta, **(meta or {})})
    records = []
    for job_id, starts in finished.items():
        record = timed_job(job_id, "cpu", 100, model=model, pool="solo", attempt=starts)
        if errors and job_id in errors:
            record = dataclasses.replace(record, outcome="error", error=errors[job_id])
        records.append(record)
        if celery:
            for _ in range(starts):
                store.start_attempts(scope_key, [job_id])
    for job_id in started_only:
        store.start_attempts(scope_key, [job_id])
    store.save(scope_key, records)
    return scope_key


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_job_accounted(store: TimingStore, run_id: str) -> None:
    make_scope(store, run_id, 5, finished=dict.fromkeys(range(5), 1))
    check = check_run(store.client, run_id)
    [scope] = check.scopes
    assert (scope.n_jobs, scope.enqueued, scope.finished) == (5, 5, 5)
    assert scope.missing == [] and scope.failed == {} and scope.redelivered == {}
    assert scope.accounted and check.accounted and scope.status == "ok"
    assert check.totals() == {
        "n_jobs": 5, "enqueued": 5, "finished": 5, "failed": 0, "redelivered": 0,
        "republished": 0, "missing": 0,
    }  # fmt: skip


def test_failed_and_redelivered_jobs_are_accounted_and_named(
    store: TimingStore, run_id: str, capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    why = "RequestFailed: 3 tries, last: HTTPError: 500 Server Error"
    make_scope(store, run_id, 4, finished={0: 1, 1: 1, 2: 1, 3: 2}, errors={2: why})
    [scope] = check_run(store.client, run_id).scopes
    assert scope.accounted and scope.finished == 4
    assert scope.failed == {2: why}
    assert scope.redelivered == {3: 2}

    code, out, _ = run_cli(["verify", run_id, "--redis-url", redis_url], capsys)
    assert code == EXIT_OK
    assert f"job 2: {why}" in out
    assert "delivered more than once: 3×2" in out
    assert "OK: every job accounted for. 4 jobs: 4 finished (1 failed), 1 delivered" in out


def test_missing_jobs_are_named_started_or_not(
    store: TimingStore, run_id: str, capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    make_scope(store, run_id, 6, finished={0: 1, 1: 1, 3: 1, 5: 1}, started_only=(2,))
    [scope] = check_run(store.client, run_id).scopes
    assert scope.missing == [2, 4]
    assert scope.missing_started == [2]
    assert not scope.accounted and scope.status == "MISSING"

    code, out, _ = run_cli(["verify", run_id, "--redis-url", redis_url], capsys)
    assert code == EXIT_FAILURE
    assert "2 missing: 2, 4 (started, never finished: 2; never started: 4)" in out
    assert (
        "MISSING: 6 jobs: 4 finished (0 failed), 0 delivered more than once, 0 republished, "
        "2 missing" in out
    )

    code, out, _ = run_cli(["verify", run_id, "--redis-url", redis_url, "--format", "json"], capsys)
    assert code == EXIT_FAILURE
    doc = json.loads(out)
    assert doc["run_id"] == run_id and doc["accounted"] is False
    assert doc["totals"]["missing"] == 2
    assert doc["scopes"][0]["missing"] == [2, 4]
    assert doc["scopes"][0]["missing_started"] == [2]


def test_in_process_scopes_and_unexpected_records(store: TimingStore, run_id: str) -> None:
    make_scope(store, run_id, 3, finished=dict.fromkeys(range(3), 1), celery=False)
    [scope] = check_run(store.client, run_id).scopes
    assert scope.enqueued is None and scope.accounted  # nothing enqueued: nothing to compare

    # A record for a job the scope never had: not silently counted as one of its jobs.
    other = f"{run_id}-x"
    try:
        make_scope(store, other, 2, finished={0: 1, 1: 1, 7: 1})
        [scope] = check_run(store.client, other).scopes
        assert scope.unexpected == [7] and scope.finished == 2 and not scope.accounted
    finally:
        for key in store.client.scan_iter(match=f"jobbench:{other}:*"):
            store.client.delete(key)


def test_recovery_is_measured_from_the_fault(store: TimingStore, run_id: str) -> None:
    fault_at_ns = time.time_ns() - 2_000_000_000  # two seconds before the redelivered job ended
    make_scope(
        store, run_id, 3, finished={0: 1, 1: 2, 2: 1},
        meta={"fault": "worker SIGKILL", "fault_at_ns": fault_at_ns},
    )  # fmt: skip
    [scope] = check_run(store.client, run_id).scopes
    assert scope.fault == "worker SIGKILL" and scope.fault_at_ns == fault_at_ns
    assert scope.recovery_s is not None and 1.9 < scope.recovery_s < 10


def test_run_resolution(tmp_path: Path) -> None:
    run_dir = tmp_path / "20260101T000000Z-abc123"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps({"run_id": "20260101T000000Z-abc123"}))
    (tmp_path / "latest").symlink_to(run_dir.name)
    assert resolve_run_id("latest", tmp_path) == "20260101T000000Z-abc123"
    assert resolve_run_id(str(run_dir), tmp_path) == "20260101T000000Z-abc123"
    assert resolve_run_id(str(run_dir / "results.json"), tmp_path) == "20260101T000000Z-abc123"
    assert resolve_run_id("20260101T000000Z-abc123", tmp_path) == "20260101T000000Z-abc123"
    assert resolve_run_id("test-0123abcd", tmp_path) == "test-0123abcd"  # looked up in Redis
    for bad in ("../etc", "a b", "*", "run\x1b[31m"):
        with pytest.raises(RunNotFound):
            resolve_run_id(bad, tmp_path)
    with pytest.raises(RunNotFound, match="latest"):
        resolve_run_id("latest", tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    with pytest.raises(ResultsError, match="cannot read the run id"):
        resolve_run_id(str(tmp_path / "broken"), tmp_path)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["verify", "no-such-run-0000"], "no scopes of run 'no-such-run-0000'"),
        (["verify", "../../etc/passwd"], "not a run directory"),
        (["verify", "x", "--redis-url", "http://nope"], "--redis-url must use"),
        (["verify", "x", "--redis-url", "redis://:s3cret@127.0.0.1:1/0"], "cannot read Redis"),
        (["verify", "x", "--format", "xml"], "invalid choice"),
        (["verify", ""], "not a run id"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], expected: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--redis-url" not in argv:
        argv = [*argv, "--redis-url", redis_url]
    code, out, err = run_cli(argv, capsys)
    assert code == EXIT_USAGE, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], err
    assert "s3cret" not in err and "Traceback" not in err and not out


def test_verify_a_real_run_end_to_end(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tiny bench through an in-process model and a Celery worker, then verify latest."""
    out = tmp_path / "results"
    code = main(
        [
            "bench", "--models", "sequential,celery_solo", "--workloads", "cpu",
            "--cpu-jobs", "20", "--repeat", "1", "--warmup", "0", "--out", str(out), "--quiet",
        ]
    )  # fmt: skip
    assert code == EXIT_OK
    run_id = json.loads((out / "latest" / "results.json").read_text())["run_id"]
    capsys.readouterr()
    try:
        code, text, _ = run_cli(
            ["verify", "latest", "--out", str(out), "--redis-url", redis_url, "--format", "json"],
            capsys,
        )
        assert code == EXIT_OK
        doc = json.loads(text)
        assert doc["run_id"] == run_id and doc["accounted"] is True
        by_model = {s["model"]: s for s in doc["scopes"]}
        assert set(by_model) == {"sequential", "celery_solo"}
        assert (
            by_model["celery_solo"]["enqueued"] == 20 and by_model["sequential"]["enqueued"] is None
        )
        assert all(s["finished"] == 20 and not s["missing"] for s in doc["scopes"])
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"jobbench:{run_id}:*", count=1000):
            client.delete(key)
        client.delete(keys.run_summary(run_id))
        client.zrem(keys.RUNS_INDEX, run_id)
        client.close()


def test_a_run_with_missing_jobs_is_exit_1_naming_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``jobbench bench`` raises RunIncomplete when a repeat misses jobs: one line, exit 1."""
    from producer.bench import Bench
    from producer.runners.base import RunIncomplete

    def incomplete(self: Bench) -> dict[str, object]:
        raise RunIncomplete("celery_solo (timeout 5 s)", [3, 7], 10)

    monkeypatch.setattr(Bench, "run", incomplete)
    argv = ["bench", "--models", "celery_solo", "--workloads", "cpu", "--out", str(tmp_path), "-q"]
    code, out, err = run_cli(argv, capsys)
    assert code == EXIT_FAILURE and not out
    first, last = err.splitlines()  # the run id first (its evidence), then what is missing
    assert first.startswith("jobbench: run ") and " failed: evidence in " in first
    assert last == "jobbench: jobs missing: celery_solo (timeout 5 s): 2 of 10 jobs missing: 3, 7"
