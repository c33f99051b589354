"""report.md, the charts and the results.json loader, from stored files alone (no services)."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from matplotlib import image

from producer import bench, charts, results
from producer.history import verdicts
from producer.report import REPORT_FILE, TIMELINE_CHART, WALL_CHART, _warnings, build_report, fmt_s
from producer.results import JOBS_FILE, RESULTS_FILE, ResultsError, load_results, write_jobs_csv
from shared.timings import JobRecord

DATA = Path(__file__).parent / "data"
SCHEMA1 = DATA / "results_schema1.json"
#: Duration of every synthetic job (ns).
JOB_NS = 10_000_000
T0_NS = 1_800_000_000_000_000_000


def fake_records(doc: dict[str, Any]) -> list[tuple[int, JobRecord]]:
    """Plausible job records for every result row: one lane per concurrency slot, a process
    per slot for the process pools, a thread per slot otherwise, jobs back to back per lane;
    asyncio runs every job at once on one thread."""
    rows = []
    for r in doc["results"]:
        n, conc = r["n_jobs"], min(r["params"]["concurrency"], r["n_jobs"])
        for job in range(n):
            lane, turn = job % conc, job // conc
            processes = "process" in r["model"]
            coroutines = r["model"] == "asyncio"
            start = T0_NS if coroutines else T0_NS + turn * JOB_NS
            rows.append((1, JobRecord(
                job_id=job, workload=r["workload"], model=r["model"], pool=r["model"],
                enqueued_at_ns=T0_NS, started_at_ns=start, finished_at_ns=start + JOB_NS,
                host="h", pid=1000 + lane if processes else 999,
                process="p", thread="MainThread" if processes or coroutines else f"T-{lane}",
                attempt=1, outcome="ok",
            )))  # fmt: skip
    return rows


@pytest.fixture
def doc() -> dict[str, Any]:
    return load_results(SCHEMA1)


@pytest.fixture
def run_dir(tmp_path: Path, doc: dict[str, Any]) -> Path:
    d = tmp_path / str(doc["run_id"])
    d.mkdir()
    shutil.copy(SCHEMA1, d / RESULTS_FILE)
    write_jobs_csv(d / JOBS_FILE, fake_records(doc))
    return d


# --- loader and migrations ------------------------------------------------------------------


def test_schema1_file_loads_at_the_current_schema(doc: dict[str, Any]) -> None:
    assert doc["schema"] == results.SCHEMA == bench.SCHEMA
    assert {r["model"] for r in doc["results"]} >= {"sequential", "threading", "asyncio"}


def test_old_file_without_optional_fields_loads_with_defaults(tmp_path: Path) -> None:
    raw = json.loads(SCHEMA1.read_text())
    for key in ("family", "extra", "startup", "queue_wait_s", "jobs_per_host", "repeats", "n_ok"):
        del raw["results"][0][key]
    del raw["metadata"]
    (tmp_path / RESULTS_FILE).write_text(json.dumps(raw))
    doc = load_results(tmp_path)
    row = doc["results"][0]
    assert row["family"] == "in-process" and row["extra"] == {} and row["startup"] == {}
    assert row["repeats"] == len(row["wall_s"]["values"])
    assert doc["metadata"] == {}
    build_report(tmp_path)  # and the report copes with it


def test_a_migration_step_runs_for_an_older_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    def v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
        doc["migrated"] = True
        return doc

    monkeypatch.setattr(results, "SCHEMA", 2)
    monkeypatch.setitem(results.MIGRATIONS, 1, v1_to_v2)
    doc = load_results(SCHEMA1)
    assert doc["schema"] == 2 and doc["migrated"] is True


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema=99), "newer than this jobbench reads"),
        (lambda d: d.update(schema="1"), "invalid schema version"),
        (lambda d: d.pop("results"), "not a jobbench results.json"),
        (lambda d: d["results"][0].pop("wall_s"), "lacks wall_s"),
    ],
)
def test_unreadable_documents_are_one_line_errors(
    tmp_path: Path, mutate: Any, message: str
) -> None:
    raw = json.loads(SCHEMA1.read_text())
    mutate(raw)
    path = tmp_path / RESULTS_FILE
    path.write_text(json.dumps(raw))
    with pytest.raises(ResultsError, match=message) as err:
        load_results(path)
    assert "\n" not in str(err.value)


# --- chart data -----------------------------------------------------------------------------


def test_wall_time_data_has_one_bar_per_model_and_one_winner(doc: dict[str, Any]) -> None:
    data = charts.wall_time_data(doc)
    assert list(data) == ["io", "cpu"]
    for workload, bars in data.items():
        ran = [r["model"] for r in doc["results"] if r["workload"] == workload]
        assert sorted(b.model for b in bars) == sorted(ran)
        assert [b.median_s for b in bars] == sorted(b.median_s for b in bars)
        assert [b.winner for b in bars].count(True) == 1 and bars[0].winner
        assert all(b.min_s <= b.median_s <= b.max_s for b in bars)


def test_a_model_with_failed_jobs_cannot_win(doc: dict[str, Any]) -> None:
    fastest = min((r for r in doc["results"] if r["workload"] == "io"),
                  key=lambda r: r["wall_s"]["median"])  # fmt: skip
    fastest["n_error"] = 3
    io = next(v for v in verdicts(doc) if v.workload == "io")
    assert io.winner["model"] != fastest["model"] and io.excluded == [fastest["model"]]


def test_timeline_has_one_lane_per_thread_that_ran_jobs(doc: dict[str, Any], run_dir: Path) -> None:
    jobs = charts.read_jobs_csv(run_dir / JOBS_FILE)
    timelines = charts.timeline_data(doc, jobs)
    expected = [(r["workload"], r["model"]) for r in doc["results"] if r["model"] != "sequential"]
    assert [(t.workload, t.model) for t in timelines] == expected
    for tl in timelines:
        mine = [j for j in jobs if (j.workload, j.model) == (tl.workload, tl.model)]
        assert len(tl.lanes) == len({(j.host, j.pid, j.thread) for j in mine})
        assert sum(len(lane.bars) for lane in tl.lanes) == tl.n_jobs == len(mine)
        row = next(
            r for r in doc["results"] if (r["workload"], r["model"]) == (tl.workload, tl.model)
        )
        assert tl.peak_in_flight == min(row["params"]["concurrency"], row["n_jobs"])
    asyncio = next(t for t in timelines if t.model == "asyncio")
    assert len(asyncio.lanes) == 1 and asyncio.lanes[0].n_slots == asyncio.n_jobs
    pool = next(t for t in timelines if (t.workload, t.model) == ("io", "multiprocessing_pool"))
    assert pool.n_processes == 2 and charts.who_ran(pool) == "2 processes × 1 thread"


def test_stacking_and_peak_in_flight() -> None:
    assert charts._slots([(0, 10), (5, 15), (10, 20), (12, 13)]) == [0, 1, 0, 2]
    assert charts.peak_in_flight([(0, 10), (5, 15), (10, 20)]) == 2
    assert charts.peak_in_flight([]) == 0


# --- files written --------------------------------------------------------------------------


def test_build_report_writes_valid_pngs_of_sensible_size(run_dir: Path) -> None:
    written = build_report(run_dir)
    assert {p.name for p in written} == {REPORT_FILE, WALL_CHART, TIMELINE_CHART}
    for name in (WALL_CHART, TIMELINE_CHART):
        path = run_dir / name
        width, height = charts.chart_size_px(path)
        assert 1000 <= width <= 4000 and 300 <= height <= 6000, (name, width, height)
        pixels = image.imread(path)
        assert pixels.shape[:2] == (height, width)
        assert float(pixels[..., :3].std()) > 0.05  # not a blank canvas
    assert not list(run_dir.glob(".*"))  # no temporary file left behind


def test_report_md_gives_the_verdict_the_trust_and_every_model(
    run_dir: Path, doc: dict[str, Any]
) -> None:
    build_report(run_dir)
    text = (run_dir / REPORT_FILE).read_text()
    for r in doc["results"]:
        assert f"`{r['model']}`" in text
    for v in verdicts(doc):
        assert f"`{v.winner['model']}` wins" in text
    assert "faster than the runner-up" in text and "of the ideal" in text
    noisy = [r for r in doc["results"] if r["wall_s"]["noisy"]]
    assert noisy and "> [!WARNING]" in text and "**Noisy**" in text
    for r in noisy:
        assert f"{r['workload']}/`{r['model']}` ±{r['wall_s']['spread_rel']:.0%}" in text
    for caveat in (
        "Same machine, 2 cores",
        "Start-up is excluded",
        "What a job returns: `digest`",
        "sequential median ÷ min(cores, concurrency)",
        "latency × ⌈n_jobs / concurrency⌉",
    ):
        assert caveat in text  # fmt: skip
    assert f"![Wall time per model]({WALL_CHART})" in text
    assert f"![Job timeline]({TIMELINE_CHART})" in text
    assert str(doc["run_id"]) in text and "Full metadata" in text


def test_report_without_jobs_csv_says_why_there_is_no_timeline(run_dir: Path) -> None:
    build_report(run_dir)
    (run_dir / JOBS_FILE).unlink()
    written = build_report(run_dir)
    assert {p.name for p in written} == {REPORT_FILE, WALL_CHART}
    assert not (run_dir / TIMELINE_CHART).exists()  # the stale one is gone
    assert "Job timeline: not drawn — no jobs.csv" in (run_dir / REPORT_FILE).read_text()


def test_jobs_csv_of_the_fixture_has_one_row_per_job(run_dir: Path, doc: dict[str, Any]) -> None:
    with (run_dir / JOBS_FILE).open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(r["n_jobs"] for r in doc["results"])


def test_one_workload_and_single_repeat_still_draw(tmp_path: Path, doc: dict[str, Any]) -> None:
    one = copy.deepcopy(doc)
    one["results"] = [r for r in one["results"] if r["workload"] == "io"]
    for r in one["results"]:
        r["wall_s"]["values"] = [r["wall_s"]["median"]]
        r["repeats"] = 1
    (tmp_path / RESULTS_FILE).write_text(json.dumps(one))
    write_jobs_csv(tmp_path / JOBS_FILE, fake_records(one))
    build_report(tmp_path)
    text = (tmp_path / REPORT_FILE).read_text()
    assert "**Few repeats** (1)" in text and "1 value: no test" in text
    assert charts.chart_size_px(tmp_path / WALL_CHART)[0] >= 1000


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(16.12, "16.1 s"), (0.0716, "71.6 ms"), (8.4e-05, "84 µs"), (0.0, "0 s"), (None, "–")],
)
def test_durations_are_printed_in_a_readable_unit(seconds: float | None, shown: str) -> None:
    assert fmt_s(seconds) == shown


def test_republished_jobs_are_named_in_the_report(doc: dict[str, Any]) -> None:
    """A run whose broker lost messages (the redrive republished them) says so, per model."""
    row = doc["results"][0]
    row.setdefault("extra", {})["republished"] = {"median": 0, "values": [0, 10, 0]}
    lines = _warnings(doc)
    assert any(
        "**Republished jobs**" in line and "lost 10 jobs' messages" in line for line in lines
    )
    row["extra"]["republished"] = {"median": 0, "values": [0, 0, 0]}
    assert not any("**Republished jobs**" in line for line in _warnings(doc))
