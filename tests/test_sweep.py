"""``jobbench sweep`` as units: parsing --vary, the crossover, the series a sweep's points make,
the plan (constant work, shared runs) and resuming; no service is touched here
(tests/test_sweep_run.py runs sweeps for real)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from producer.cli import EXIT_USAGE, main
from producer.errors import BadInput
from producer.results import RESULTS_FILE, write_run
from producer.sweep import (
    DEFAULT_CPU_WORK,
    POINTS_DIR,
    SWEEP_FILE,
    PointRun,
    Sweep,
    VaryError,
    make_spec,
    parse_vary,
)
from producer.sweep_charts import draw_sweep_charts, ideal_line, log_x, log_y
from producer.sweep_results import (
    Crossover,
    build_series,
    crossover,
    crossover_sentence,
    crossovers,
    scaling,
    scaling_sentence,
)
from shared.settings import Settings

# --- --vary ---------------------------------------------------------------------------------


def test_vary_values_are_parsed_by_the_option_deduplicated_and_ascending() -> None:
    vary = parse_vary("cpu-n=100000, 100,1000,100")
    assert vary.param.name == "cpu_n" and vary.values == (100, 1000, 100000)
    assert parse_vary("latency_ms=5,0.5").values == (0.5, 5.0)
    assert parse_vary("celery_nodes=2").values == (2,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gevent=1,2", "unknown sweep parameter 'gevent'"),
        ("processes", "expected PARAM=V1,V2"),
        ("=1,2", "expected PARAM=V1,V2"),
        ("processes=", "no values given for processes"),
        ("processes=0,2", "processes: must be between 1 and"),
        ("cpu_n=1e9", "cpu_n: not a number"),
        ("latency_ms=nan", "latency_ms: must be between"),
        ("batch_size=1,x", "batch_size: not a number"),
    ],
)
def test_bad_vary_is_one_reason(text: str, expected: str) -> None:
    with pytest.raises(VaryError, match=expected.replace("(", r"\(")):
        parse_vary(text)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sweep", "nonsense"], "invalid choice: 'nonsense'"),
        (["sweep"], "name a sweep"),
        (["sweep", "--vary", "gevent=1"], "unknown sweep parameter 'gevent'"),
        (["sweep", "--vary", "processes=1,0"], "must be between 1 and"),
        (["sweep", "granularity", "--cpu-jobs", "50"], "--cpu-jobs: set by the sweep"),
        (["sweep", "granularity", "--batch-size", "5"], "--batch-size: set by the sweep"),
        (["sweep", "granularity", "--workloads", "io"], "cpu_n varies cpu jobs"),
        (["sweep", "granularity", "--models", "threading"], "none of --models"),
        (["sweep", "granularity", "--cpu-work", "5000"], "more than --cpu-work 5,000"),
        (["sweep", "cpu-workers", "--id", "../x"], "sweep id must be"),
        (["sweep", "--vary", "processes=1", "--models", "gevent"], "unknown model gevent"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweeps"
    try:
        code = main([*argv, "--out", str(out)])
    except SystemExit as exc:  # argparse's own errors end in the parser (one line, exit 2)
        code = int(str(exc.code))
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not out.exists() or not any(out.iterdir())


# --- the crossover ----------------------------------------------------------------------------


def test_crossover_interpolates_on_a_log_axis() -> None:
    c = crossover([1_000, 10_000, 100_000], [0.50, 0.20, 0.00], 0.10, series="s")
    # 0.20 -> 0.00 crosses 0.10 halfway: halfway between 1e4 and 1e5 on a log axis.
    assert c.status == "crossed" and (c.below, c.above) == (10_000, 100_000)
    assert c.at == pytest.approx(math.sqrt(10_000 * 100_000))
    assert "from cpu_n ≈ 32,000" in crossover_sentence(c, "cpu_n")


def test_crossover_job_time_is_interpolated_like_the_size() -> None:
    c = crossover([10, 1000], [0.3, 0.0], 0.1, job_s=[1e-5, 1e-3])
    # t = 2/3 of the way: 1e-5 * 100 ** (2/3).
    assert c.job_s == pytest.approx(1e-5 * 100 ** (2 / 3))
    assert c.at == pytest.approx(10 * 100 ** (2 / 3))


def test_a_dip_that_comes_back_up_is_no_crossover() -> None:
    c = crossover([1, 2, 3, 4], [0.5, 0.05, 0.3, 0.08], 0.10)
    assert c.status == "crossed" and (c.below, c.above) == (3, 4)


def test_always_within_and_never_within() -> None:
    always = crossover([1, 10], [0.02, 0.01], 0.05, job_s=[0.5, 5.0])
    assert always.status == "always" and always.at == 1 and always.job_s == 0.5
    never = crossover([1, 10], [0.9, 0.2], 0.10)
    assert never.status == "never" and never.at is None and never.last_overhead == 0.2
    assert "never comes within 10%" in crossover_sentence(never, "n")
    exactly = crossover([1, 10], [0.2, 0.10], 0.10)  # at the threshold counts as within
    assert exactly.status == "crossed" and exactly.at == pytest.approx(10)


def test_crossover_refuses_what_it_cannot_judge() -> None:
    with pytest.raises(ValueError):
        crossover([], [], 0.1)
    with pytest.raises(ValueError):
        crossover([10, 1], [0.1, 0.2], 0.1)


# --- series from point rows -------------------------------------------------------------------


def row(
    model: str, family: str, median: float, n_jobs: int, conc: int, **kw: Any
) -> dict[str, Any]:
    return {
        "workload": kw.get("workload", "cpu"), "model": model, "family": family,
        "baseline": model == "sequential", "in_timeline": True, "notes": [], "caveat": None,
        "n_jobs": n_jobs, "params": {"concurrency": conc},
        "wall_s": {"median": median, "min": median * 0.9, "max": median * 1.1},
        "ideal_s": kw.get("ideal_s"), "n_error": kw.get("n_error", 0),
    }  # fmt: skip


def granularity_points() -> list[dict[str, Any]]:
    """Two values, each as the two runs of the granularity sweep (in-process + auto batches,
    then batch 1); Celery's overhead falls with the job size."""
    out = []
    for value, jobs, seq, pool, auto, one in [
        (100, 1000, 1.0, 0.60, 0.90, 3.0),
        (10_000, 10, 1.0, 0.52, 0.55, 0.60),
        (1_000_000, 1, 1.0, 1.0, 1.02, 1.04),
    ]:
        base = [
            row("sequential", "in-process", seq, jobs, 1),
            row("multiprocessing_pool", "in-process", pool, jobs, 2),
            row("process_pool_map", "in-process", pool * 1.2, jobs, 2),
            row("celery_prefork", "celery", auto, jobs, 2),
        ]
        out.append({"value": value, "run_id": f"a{value}", "results": base,
                    "labels": {"celery_prefork": "auto batches"}})  # fmt: skip
        out.append({"value": value, "run_id": f"b{value}",
                    "results": [row("celery_prefork", "celery", one, jobs, 2)],
                    "labels": {"celery_prefork": "batch 1"}})  # fmt: skip
    return out


def test_series_carry_efficiency_overhead_and_job_time() -> None:
    series = {s.name: s for s in build_series(granularity_points(), cpus=2)}
    assert list(series) == [
        "sequential", "multiprocessing_pool", "process_pool_map",
        "celery_prefork (auto batches)", "celery_prefork (batch 1)",
    ]  # fmt: skip
    one = series["celery_prefork (batch 1)"].points
    # Its run had no baseline: the CPU ideal comes from the point's other run.
    assert one[0].ideal_s == pytest.approx(1.0 / 2) and one[0].efficiency == pytest.approx(0.5 / 3)
    # Overhead against the best in-process model, the baseline left out (0.60, not 1.0).
    assert one[0].overhead == pytest.approx(3.0 / 0.60 - 1)
    assert series["celery_prefork (auto batches)"].points[1].overhead == pytest.approx(
        0.55 / 0.52 - 1
    )
    assert one[0].job_s == pytest.approx(1.0 / 1000) and one[2].job_s == pytest.approx(1.0)
    assert series["multiprocessing_pool"].points[0].overhead is None  # not a candidate
    found = {(c.series, c.share): c for c in crossovers(list(series.values()))}
    assert len(found) == 4
    auto10 = found["celery_prefork (auto batches)", 0.10]
    assert auto10.status == "crossed" and (auto10.below, auto10.above) == (100, 10_000)
    assert found["celery_prefork (batch 1)", 0.05].status == "crossed"
    assert found["celery_prefork (batch 1)", 0.05].below == 10_000


def test_a_failed_in_process_row_is_never_the_reference() -> None:
    points = [{"value": 1, "run_id": "r", "labels": {}, "results": [
        row("multiprocessing_pool", "in-process", 0.1, 10, 2, n_error=10),
        row("process_pool_map", "in-process", 0.5, 10, 2),
        row("celery_prefork", "celery", 0.6, 10, 2),
    ]}]  # fmt: skip
    celery = build_series(points, cpus=2)[-1]
    assert celery.points[0].overhead == pytest.approx(0.6 / 0.5 - 1)


def test_scaling_stops_at_the_first_point_below_the_line() -> None:
    points = [
        {"value": t, "run_id": str(t), "labels": {},
         "results": [row("thread_pool", "in-process", wall, t, t, workload="io", ideal_s=0.1)]}
        for t, wall in [(1, 0.1), (10, 0.11), (100, 0.2), (200, 0.12)]
    ]  # fmt: skip
    (s,) = scaling(build_series(points, cpus=2))
    assert s.scales_to == 10  # 100 falls to 50 %; 200 recovering does not undo it
    assert s.peak_value == 200 and s.peak_jobs_per_s == pytest.approx(200 / 0.12)


# --- charts ---------------------------------------------------------------------------------


def test_axes_go_log_where_values_span_decades() -> None:
    assert log_x([100, 1_000_000]) and not log_x([1, 2, 3, 4]) and not log_x([0, 100])
    assert log_y([0.01, 1.0]) and not log_y([0.5, 1.0])
    series = build_series(granularity_points(), cpus=2)
    assert ideal_line(series) == [(100, 0.5), (10_000, 0.5), (1_000_000, 0.5)]


# --- the plan, and resuming -------------------------------------------------------------------


def sweep(tmp_path: Path, name: str = "granularity", **kw: Any) -> Sweep:
    explicit = kw.pop("explicit", {"repeat": 1})
    spec = make_spec(name, kw.pop("vary", None), explicit, cpus=2)
    return Sweep(spec, explicit=explicit, out_dir=tmp_path, sweep_id=None,
                 cpu_work=kw.pop("cpu_work", DEFAULT_CPU_WORK), settings=Settings())  # fmt: skip


def test_granularity_keeps_the_total_work_and_shares_runs(tmp_path: Path) -> None:
    s = sweep(tmp_path)
    # In-process + auto batches share a run; batch 1 has its own, from n = 1,000 up.
    assert len(s.plan) == 9 + 7
    assert min(p.value for p in s.plan if p.labels.get("celery_prefork") == "batch 1") == 1000
    for point in s.plan:
        c = point.config
        assert c.workloads == ("cpu",) and c.repeat == 1 and c.cpu_n == point.value
        assert c.cpu_jobs * c.cpu_n == pytest.approx(DEFAULT_CPU_WORK, rel=0.01)
    first, second = [p for p in s.plan if p.value == 1000]
    assert first.config.models == ("sequential", "multiprocessing_pool", "process_pool_map",
                                   "celery_prefork")  # fmt: skip
    assert first.labels["celery_prefork"] == "auto batches" and first.config.batch_size is None
    assert second.config.models == ("celery_prefork",) and second.config.batch_size == 1
    assert len({p.fingerprint for p in s.plan}) == len(s.plan)
    # The fingerprint is the measurement: the same plan twice agrees, another repeat does not.
    assert [p.fingerprint for p in sweep(tmp_path).plan] == [p.fingerprint for p in s.plan]
    other = sweep(tmp_path, explicit={"repeat": 2})
    assert not {p.fingerprint for p in other.plan} & {p.fingerprint for p in s.plan}


def test_cpu_workers_goes_to_twice_the_cores_and_io_concurrency_sets_every_pool(
    tmp_path: Path,
) -> None:
    assert [p.value for p in sweep(tmp_path, "cpu-workers").plan] == [1, 2, 3, 4]
    assert all(p.config.processes == p.value for p in sweep(tmp_path, "cpu-workers").plan)
    for p in sweep(tmp_path, "io-concurrency").plan:
        c = p.config
        assert c.workloads == ("io",)
        assert c.io_jobs == c.thread_pool_workers == c.celery_concurrency == p.value


def fake_result(point: PointRun, sweep_id: str) -> dict[str, Any]:
    """A stored point run as ``Sweep._measure`` writes it (wall times made up)."""
    rows = [row(m, "celery" if m.startswith("celery") else "in-process", 0.5,
                point.config.cpu_jobs, 2) for m in point.config.models]  # fmt: skip
    return {
        "schema": 1, "run_id": f"r-{point.fingerprint}", "finished_at": "2026-01-01T00:00:00",
        "metadata": {"cpu_count": 2, "python": "3.11"}, "results": rows,
        "sweep": {"id": sweep_id, "key": point.key, "fingerprint": point.fingerprint,
                  "labels": dict(point.labels), "elapsed_s": 1.0, "value": point.value},
    }  # fmt: skip


def test_a_point_already_measured_is_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = sweep(tmp_path, vary=parse_vary("cpu_n=1000,10000,100000"))
    for point in s.plan[:4]:  # the first two values are on disk
        write_run(s.dir / POINTS_DIR, fake_result(point, s.sweep_id))
    # A half-written results.json is measured again, not trusted.
    (s.dir / POINTS_DIR / "broken").mkdir()
    (s.dir / POINTS_DIR / "broken" / RESULTS_FILE).write_text('{"schema": 1, "run_')
    measured: list[str] = []

    def measure(point: PointRun, index: int) -> dict[str, Any]:
        measured.append(point.key)
        doc = fake_result(point, s.sweep_id)
        write_run(s.dir / POINTS_DIR, doc)
        return doc

    monkeypatch.setattr(s, "_measure", measure)
    doc = s.run()
    assert measured == [p.key for p in s.plan[4:]]
    assert (doc["n_points_measured"], doc["n_points_resumed"]) == (2, 4)
    stored = json.loads((s.dir / SWEEP_FILE).read_text())
    assert stored["schema"] == 1 and len(stored["points"]) == 6
    # Run again: everything is on disk, nothing is measured.
    measured.clear()
    again = sweep(tmp_path, vary=parse_vary("cpu_n=1000,10000,100000"))
    monkeypatch.setattr(again, "_measure", measure)
    assert again.run()["n_points_resumed"] == 6 and measured == []


def test_charts_are_drawn_from_sweep_json_alone(tmp_path: Path) -> None:
    points = granularity_points()
    series = build_series(points, cpus=2)
    doc = {
        "sweep_id": "t", "param": {"name": "cpu_n", "kind": "job_size", "axis": "n"},
        "metadata": {"cpu_count": 2}, "fixed_text": "x",
        "series": [s.__dict__ | {"points": [p.__dict__ for p in s.points]} for s in series],
        "findings": {"crossovers": [c.__dict__ for c in crossovers(series)], "scaling": []},
    }  # fmt: skip
    paths = draw_sweep_charts(json.loads(json.dumps(doc)), tmp_path)
    assert [p.name for p in paths] == ["wall_time.png", "efficiency.png", "overhead.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_crossover_sentence_states_the_job_time() -> None:
    c = Crossover("celery_prefork (batch 1)", 0.05, "crossed", at=31_600, below=10_000,
                  above=100_000, job_s=0.0046)  # fmt: skip
    text = crossover_sentence(c, "cpu_n")
    assert "within 5%" in text and "≈ 32,000" in text and "4.6 ms" in text


def test_unknown_sweep_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown sweep 'x'"):
        make_spec("x", None, {}, cpus=2)


def test_a_built_in_sweep_over_another_parameter_keeps_every_group_at_every_value(
    tmp_path: Path,
) -> None:
    s = sweep(tmp_path, vary=parse_vary("processes=1,2"))
    assert [(p.value, p.config.batch_size) for p in s.plan] == [
        (1, None), (1, 1), (2, None), (2, 1),
    ]  # fmt: skip


def test_a_crossover_on_noisy_points_says_so() -> None:
    points = granularity_points()
    points[-1]["results"][0]["wall_s"]["noisy"] = True  # batch 1 at the largest size
    found = crossovers(build_series(points, cpus=2))
    noisy = {c.series for c in found if c.noisy}
    assert noisy == {"celery_prefork (batch 1)"}
    assert "more --repeat" in crossover_sentence(next(c for c in found if c.noisy), "cpu_n")


def test_a_fixed_cost_per_run_is_no_failure_to_scale() -> None:
    """asyncio pays ~35 ms per run for its loop and client: 80 % efficiency at T = 1 already;
    it scales as long as it keeps that, not below an absolute line."""
    points = [
        {"value": t, "run_id": str(t), "labels": {},
         "results": [row("asyncio", "in-process", wall, t, t, workload="io", ideal_s=0.16)]}
        for t, wall in [(1, 0.195), (10, 0.21), (50, 0.32), (100, 0.45)]
    ]  # fmt: skip
    (s,) = scaling(build_series(points, cpus=2))
    assert s.start_efficiency == pytest.approx(0.16 / 0.195) and s.scales_to == 10
    text = scaling_sentence(s, "io_concurrency")
    assert "scales up to io_concurrency = 10" in text and "82% at io_concurrency = 1" in text
