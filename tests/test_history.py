"""History and compare: the significance test, the comparison of two runs, the CLI's exit codes,
and (integration) two real tiny runs kept on disk and in Redis."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from producer.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, build_parser, main
from producer.history import (
    compare_docs,
    list_runs,
    median_repeat,
    significance,
    t_two_sided_p,
)
from producer.report import REPORT_FILE, TIMELINE_CHART, WALL_CHART
from producer.results import JOBS_FILE, RESULTS_FILE, load_results
from shared import keys

DATA = Path(__file__).parent / "data"
SCHEMA1 = DATA / "results_schema1.json"


def scaled(doc: dict[str, Any], factor: float, run_id: str) -> dict[str, Any]:
    """``doc`` with every wall time multiplied by ``factor``: a synthetic slowdown."""
    out = copy.deepcopy(doc)
    out["run_id"] = run_id
    for r in out["results"]:
        wall = r["wall_s"]
        for key in ("median", "min", "max", "q1", "q3", "iqr"):
            wall[key] *= factor
        wall["values"] = [v * factor for v in wall["values"]]
    return out


def shifted(doc: dict[str, Any], medians: float, run_id: str) -> dict[str, Any]:
    """``doc`` with ``medians`` times its median added to every wall time: a slowdown that keeps
    the absolute noise, so it stands out of it."""
    out = copy.deepcopy(doc)
    out["run_id"] = run_id
    for r in out["results"]:
        wall = r["wall_s"]
        shift = wall["median"] * medians
        for key in ("median", "min", "max", "q1", "q3"):
            wall[key] += shift
        wall["values"] = [v + shift for v in wall["values"]]
    return out


def write_doc(out_dir: Path, doc: dict[str, Any]) -> Path:
    run_dir = out_dir / str(doc["run_id"])
    run_dir.mkdir(parents=True)
    (run_dir / RESULTS_FILE).write_text(json.dumps(doc))
    return run_dir


@pytest.fixture
def base() -> dict[str, Any]:
    return load_results(SCHEMA1)


# --- the test ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "df", "p"), [(2.776445, 4, 0.05), (12.7062, 1, 0.05), (2.228139, 10, 0.05), (0.0, 3, 1.0)]
)
def test_t_distribution_matches_the_tables(t: float, df: float, p: float) -> None:
    assert t_two_sided_p(t, df) == pytest.approx(p, abs=1e-5)


def test_significance_separates_shifts_from_noise() -> None:
    assert significance([1.0, 1.01, 1.02], [1.2, 1.21, 1.22]).significant
    assert not significance([1.0, 1.3, 0.9], [1.05, 1.2, 1.0]).significant
    same = significance([1.0, 1.0], [1.0, 1.0])
    assert not same.significant and same.p_value == 1.0
    single = significance([1.0], [2.0])
    assert single.significant and single.p_value is None and single.method == "ranges"
    assert not significance([1.0], [1.0]).significant


def test_median_repeat_matches_the_bench_choice() -> None:
    assert median_repeat({"wall_s": {"median": 2.0, "values": [3.0, 1.0, 2.0]}}) == 2
    assert median_repeat({"wall_s": {"median": 1.0, "values": [1.0]}}) == 0


# --- comparing two documents ------------------------------------------------------------------


def test_compare_finds_a_real_slowdown(base: dict[str, Any]) -> None:
    cmp = compare_docs(base, scaled(base, 2.0, "slow"))
    assert len(cmp.changes) == len(base["results"])
    assert all(c.ratio == pytest.approx(2.0) for c in cmp.changes)
    steady = [c for c in cmp.changes if c.a["wall_s"]["spread_rel"] < 0.2]
    assert steady and all(c.verdict == "slower" for c in steady)
    assert cmp.geometric_mean("io") == pytest.approx(2.0)
    assert set(map(id, steady)) <= set(map(id, cmp.slowdowns(50.0)))
    assert cmp.slowdowns(150.0) == []


def test_doubling_a_very_noisy_model_is_not_called_a_slowdown(base: dict[str, Any]) -> None:
    """cpu/multiprocessing_pool spreads ±48 % over 3 repeats: twice as slow is within reach of
    that noise at 95 %, so the gate must not fire on it (pyperf would say "not significant")."""
    cmp = compare_docs(base, scaled(base, 2.0, "slow"))
    noisy = next(c for c in cmp.changes if (c.workload, c.model) == ("cpu", "multiprocessing_pool"))
    assert noisy.a["wall_s"]["spread_rel"] > 0.4
    assert noisy.verdict == "same (within noise)" and noisy not in cmp.slowdowns(50.0)
    assert cmp.caveats == []


def test_compare_of_a_run_with_itself_is_all_noise(base: dict[str, Any]) -> None:
    cmp = compare_docs(base, base)
    assert all(c.verdict == "same (within noise)" for c in cmp.changes)
    assert cmp.slowdowns(0.0) == []


def test_compare_flags_what_is_not_like_for_like(base: dict[str, Any]) -> None:
    other = scaled(base, 1.0, "other")
    other["metadata"]["cpu_count"] = 8
    other["results"][0]["n_jobs"] = 999
    dropped = other["results"].pop()
    cmp = compare_docs(base, other)
    assert any("cores differs: 2 → 8" in c for c in cmp.caveats)
    assert cmp.changes[0].differences == [f"n_jobs {base['results'][0]['n_jobs']} → 999"]
    assert cmp.only_a == [f"{dropped['workload']}/{dropped['model']}"] and cmp.only_b == []


# --- the command line ---------------------------------------------------------------------------


def test_every_new_option_has_help_and_an_env_var() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("report", "history", "compare"):
        command = sub.choices[name]  # type: ignore[index]
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and "[env " in action.help, (name, action.dest)


def test_compare_exit_code_honours_fail_on_slowdown(
    tmp_path: Path, base: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_doc(tmp_path, base)
    b = write_doc(tmp_path, scaled(base, 1.5, "b-slower"))
    offline = ["--redis-url", "redis://127.0.0.1:1/0"]  # no Redis needed for directories
    assert main(["compare", str(a), str(b), *offline]) == EXIT_OK
    assert main(["compare", str(a), str(b), "--fail-on-slowdown", "60", *offline]) == EXIT_OK
    assert main(["compare", str(a), str(b), "--fail-on-slowdown", "40", *offline]) == EXIT_FAILURE
    assert "FAIL: slower by more than 40 %" in capsys.readouterr().out
    assert main(["compare", str(b), str(a), "--fail-on-slowdown", "0", *offline]) == EXIT_OK
    assert "OK: no model slower by more than 0 %" in capsys.readouterr().out
    out_dir = ["--out", str(tmp_path)]
    assert main(["compare", "b-slower", str(a), "--format", "json", *out_dir, *offline]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["a"] == "b-slower" and doc["fail_on_slowdown_pct"] is None
    assert all(c["ratio"] == pytest.approx(1 / 1.5) for c in doc["changes"])
    verdicts = {c["verdict"] for c in doc["changes"]}
    assert "faster" in verdicts and verdicts <= {"faster", "same (within noise)"}


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["compare", "nope", "latest"], {}, "no run 'nope'"),
        (["report", "nope"], {}, "no run 'nope'"),
        (["compare", "a", "b", "--fail-on-slowdown", "lots"], {}, "not a number"),
        (["compare", "a", "b"], {"JOBBENCH_FAIL_ON_SLOWDOWN": "-5"}, "between 0.0 and"),
        (["history", "--redis-url", "http://x"], {}, "--redis-url must use"),
        (["history", "--source", "redis"], {}, "unreachable"),
    ],
)
def test_bad_input_and_missing_runs_are_one_line_exit_2(
    argv: list[str],
    env: dict[str, str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if "--redis-url" not in argv:
        argv = [*argv, "--redis-url", "redis://127.0.0.1:1/0"]
    assert exit_code([*argv, "--out", str(tmp_path)]) == EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines


def exit_code(argv: list[str]) -> int:
    """``main``'s return value, or the code argparse exits with."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_history_lists_disk_runs_newest_first(
    tmp_path: Path, base: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    old = scaled(base, 1.0, "old")
    old["started_at"] = "2020-01-01T00:00:00+00:00"
    write_doc(tmp_path, old)
    write_doc(tmp_path, base)
    (tmp_path / "latest").symlink_to(str(base["run_id"]))
    (tmp_path / "junk").mkdir()
    argv = ["history", "--out", str(tmp_path), "--source", "disk", "--format", "json"]
    assert main(argv) == EXIT_OK
    listed = json.loads(capsys.readouterr().out)
    assert [d["run_id"] for d in listed] == [base["run_id"], "old"]
    assert listed[0]["winners"]["io"]["model"] == "threading"
    assert main([*argv[:-2], "--limit", "1"]) == EXIT_OK
    assert "old" not in capsys.readouterr().out


def test_history_with_redis_down_lists_the_disk_and_says_so(
    tmp_path: Path, base: dict[str, Any]
) -> None:
    write_doc(tmp_path, base)
    listing = list_runs(tmp_path, "redis://127.0.0.1:1/0", 10)
    assert [r.run_id for r in listing.runs] == [base["run_id"]]
    assert listing.redis_error and "unreachable" in listing.notes[0]


# --- two real tiny runs --------------------------------------------------------------------


TINY = ["--models", "sequential,thread_pool,multiprocessing_pool", "--io-jobs", "6",
        "--cpu-jobs", "40", "--latency-ms", "5", "--repeat", "3", "--warmup", "0",
        "-q"]  # fmt: skip


@pytest.fixture
def cleanup_runs(redis_client: redis.Redis) -> Iterator[list[str]]:
    """Run ids to delete from Redis after the test (bench picks its own ids)."""
    created: list[str] = []
    yield created
    for rid in created:
        for key in redis_client.scan_iter(match=f"{keys.run_prefix(rid)}:*", count=1000):
            redis_client.delete(key)
        redis_client.zrem(keys.RUNS_INDEX, rid)


def _bench(out: Path, cleanup: list[str]) -> Path:
    assert main(["bench", *TINY, "--out", str(out)]) == EXIT_OK
    run_dir = (out / "latest").resolve()
    cleanup.append(run_dir.name)
    return run_dir


@pytest.mark.integration
def test_two_real_runs_report_history_and_compare(
    tmp_path: Path,
    redis_url: str,
    cleanup_runs: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    out = tmp_path / "results"
    a, b = _bench(out, cleanup_runs), _bench(out, cleanup_runs)
    capsys.readouterr()

    # jobs.csv: exactly one row per job of each model's median repeat
    doc = load_results(b)
    with (b / JOBS_FILE).open() as fh:
        rows = list(csv.DictReader(fh))
    for r in doc["results"]:
        mine = [x for x in rows if (x["workload"], x["model"]) == (r["workload"], r["model"])]
        assert sorted(int(x["job_id"]) for x in mine) == list(range(r["n_jobs"]))
        assert {int(x["repeat"]) for x in mine} == {median_repeat(r)}
    assert len(rows) == sum(r["n_jobs"] for r in doc["results"])

    # bench wrote the report; it names every model that ran
    text = (b / REPORT_FILE).read_text()
    assert all(f"`{m}`" in text for m in ("sequential", "thread_pool", "multiprocessing_pool"))
    assert (b / WALL_CHART).is_file() and (b / TIMELINE_CHART).is_file()

    # compare: real runs, the gate honours the threshold
    assert main(["compare", str(a), str(b), "--out", str(out)]) == EXIT_OK
    assert "geometric mean" in capsys.readouterr().out
    huge = ["--fail-on-slowdown", "100000"]
    assert main(["compare", a.name, b.name, "--out", str(out), *huge]) == EXIT_OK
    assert "OK: no model slower" in capsys.readouterr().out
    slow = write_doc(tmp_path / "edited", shifted(doc, 10.0, "b-plus-10-medians"))
    gate = ["--fail-on-slowdown", "50", "--format", "json"]
    assert main(["compare", str(b), str(slow), *gate]) == EXIT_FAILURE
    assert json.loads(capsys.readouterr().out)["slowdowns"]

    # history: both runs, from disk and from Redis
    assert main(["history", "--out", str(out), "--format", "json", "--limit", "1000"]) == EXIT_OK
    listed = {d["run_id"]: d for d in json.loads(capsys.readouterr().out)}
    assert listed[a.name]["stored"] == listed[b.name]["stored"] == ["disk", "redis"]

    # report from Redis alone, after the run directory is gone
    shutil.rmtree(a)
    elsewhere = tmp_path / "restored"
    assert main(["report", a.name, "--out", str(elsewhere)]) == EXIT_OK
    assert f"restored {a.name} from Redis" in capsys.readouterr().err
    assert (elsewhere / a.name / TIMELINE_CHART).is_file()
    assert main(["compare", a.name, b.name, "--out", str(out)]) == EXIT_OK  # A now Redis-only
