"""The two charts of a run, drawn headless from results.json and jobs.csv alone.

* ``wall_time.png``: per workload, one horizontal bar per model (median wall time, fastest on
  top), min–max whiskers over the repeats, the ideal (the physical limit) as a black tick, the
  winner outlined. The decision at a glance.
* ``timeline.png``: per model and workload, every job of the median repeat as a bar on the lane
  of the thread that ran it, coloured by process. Many lanes of one colour overlapping in time is
  concurrency (threads, asyncio); lanes of different colours running side by side is parallelism
  (processes). Jobs that overlap on one thread (asyncio) are stacked inside their lane.

Each ``*_data`` function turns stored data into plain records (what the tests check); each
``draw_*`` function only renders them. Figures are drawn on an explicit Agg canvas, never through
pyplot, so no GUI backend is ever touched and no global pyplot state leaks between calls.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from producer.history import Verdict, verdicts
from producer.results import ResultsError, atomic_open
from producer.runners.facts import facts

#: Resolution of the PNGs (dots per inch): 100 keeps the pixel size equal to the inch size x 100.
DPI = 100
#: Narrowest figure (inches): titles and the legend of a single-workload run must still fit.
MIN_WIDTH_IN = 12.0
#: Colours of the model groups (results.json ``family``) in the wall-time chart, given out in
#: the order the groups first appear in the results.
GROUP_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#da8bc3")
#: A group beyond those, or a row without one.
OTHER_FAMILY_COLOR = "#8c8c8c"
#: Process colours on the timeline (tab10 without red, which marks failed jobs).
PROCESS_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#aec7e8",
)  # fmt: skip
FAILED_COLOR = "#d62728"
#: Above this wall-time ratio between the slowest and fastest model of a panel, a linear axis
#: shrinks the fast bars to nothing: switch to a log axis (and say so on the axis label).
LOG_SCALE_RATIO = 30.0
#: Lanes labelled one by one on the timeline; beyond, a single "N lanes" label (15 000 threads of
#: the threading model would be unreadable anyway, the shape is what matters).
MAX_LABELLED_LANES = 16
#: Rows (lanes, or stacked jobs in a lane) drawn one by one; more are folded into this many.
MAX_DRAWN_ROWS = 150
#: Timeline panel height grows with its rows up to this many rows, then stays put.
MAX_PANEL_ROWS = 40


def _save(fig: Figure, path: Path) -> Path:
    """Render ``fig`` with Agg into ``path`` through a temporary file: never a half-written PNG."""
    FigureCanvasAgg(fig)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": "jobbench"})
    return path


# --- wall time ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WallBar:
    """One model's bar in the wall-time chart."""

    model: str
    family: str
    median_s: float
    min_s: float
    max_s: float
    ideal_s: float | None
    repeats: int
    spread_rel: float
    noisy: bool
    speedup: float | None
    efficiency: float | None
    winner: bool
    failed: bool
    baseline: bool = False
    #: The cost model's prediction (s), made before the model ran; None: not predicted.
    predicted_s: float | None = None


def group_colors(families: Sequence[str]) -> dict[str, str]:
    """A colour per group label, in the order given (an empty label gets the neutral grey)."""
    named = [f for f in dict.fromkeys(families) if f]
    colors = dict(zip(named, GROUP_COLORS, strict=False))
    return {f: colors.get(f, OTHER_FAMILY_COLOR) for f in dict.fromkeys(families)}


def wall_time_data(doc: dict[str, Any]) -> dict[str, list[WallBar]]:
    """Per workload (in run order), one bar per model that ran it, fastest first."""
    winners = {v.workload: v.winner["model"] for v in verdicts(doc)}
    out: dict[str, list[WallBar]] = {}
    for row in doc["results"]:
        wall = row["wall_s"]
        workload = str(row["workload"])
        about = facts(row)
        out.setdefault(workload, []).append(
            WallBar(
                model=str(row["model"]),
                family=about.family,
                median_s=float(wall["median"]),
                min_s=float(wall["min"]),
                max_s=float(wall["max"]),
                ideal_s=row.get("ideal_s"),
                repeats=int(row.get("repeats", 1)),
                spread_rel=float(wall.get("spread_rel", 0.0)),
                noisy=bool(wall.get("noisy")),
                speedup=row.get("speedup_vs_sequential"),
                efficiency=row.get("efficiency"),
                winner=winners.get(workload) == row["model"],
                failed=bool(row.get("n_error")),
                baseline=about.baseline,
                predicted_s=(row.get("prediction") or {}).get("predicted_s"),
            )
        )
    for bars in out.values():
        bars.sort(key=lambda b: b.median_s)
    return out


def _workload_title(doc: dict[str, Any], workload: str) -> str:
    n_jobs = next((r["n_jobs"] for r in doc["results"] if r["workload"] == workload), "?")
    if workload == "io":
        latency = doc.get("metadata", {}).get("target", {}).get("latency_ms")
        what = f"HTTP GETs, {latency:g} ms each" if latency is not None else "HTTP GETs"
    elif workload == "cpu":
        what = "pure-Python sieve jobs"
    else:
        what = "jobs"
    return f"{workload.upper()}: {n_jobs} {what}"


def verdict_headline(v: Verdict) -> str:
    """The headline of a workload: "threading wins: 1.44x faster than asyncio"."""
    text = f"{v.winner['model']} wins"
    if v.runner_up is not None and v.margin is not None:
        text += f", {v.margin:.2f}x faster than {v.runner_up['model']}"
        if not v.clear:
            text += " (within noise)"
    return text


def _bar_label(bar: WallBar) -> str:
    parts = [f"{bar.median_s:.3g} s"]
    if bar.speedup is not None and not bar.baseline:
        parts.append(f"{bar.speedup:.2g}x seq")
    if bar.efficiency is not None:
        parts.append(f"{bar.efficiency:.0%} of ideal")
    if bar.noisy:
        parts.append(f"noisy ±{bar.spread_rel:.0%}")
    if bar.failed:
        parts.append("jobs FAILED")
    return "  ·  ".join(parts)


def draw_wall_time(doc: dict[str, Any], path: Path) -> Path:
    """Median wall time per model per workload with min–max whiskers and the ideal marked."""
    data = wall_time_data(doc)
    if not data:
        raise ResultsError("no results to chart")
    headline = {v.workload: verdict_headline(v) for v in verdicts(doc)}
    n_rows = max(len(b) for b in data.values())
    fig = Figure(
        figsize=(max(MIN_WIDTH_IN, 7.5 * len(data)), 1.8 + 0.5 * n_rows), layout="constrained"
    )
    axes = fig.subplots(1, len(data), squeeze=False)[0]
    meta = doc.get("metadata", {})
    repeats = sorted({b.repeats for bars in data.values() for b in bars})
    shown_repeats = "/".join(map(str, repeats))
    plural = "" if repeats == [1] else "s"
    fig.suptitle(
        f"Wall time per model (median of {shown_repeats} repeat{plural}; lower is better)  ·  "
        f"run {doc['run_id']}  ·  {meta.get('cpu_count', '?')} cores",
        fontsize=12,
    )
    palette = group_colors([str(r.get("family", "")) for r in doc["results"]])
    for ax, (workload, bars) in zip(axes, data.items(), strict=True):
        ys = list(range(len(bars)))
        colors = [palette.get(b.family, OTHER_FAMILY_COLOR) for b in bars]
        drawn = ax.barh(
            ys,
            [b.median_s for b in bars],
            color=colors,
            height=0.6,
            edgecolor=["black" if b.winner else "none" for b in bars],
            linewidth=[2.0 if b.winner else 0.0 for b in bars],
            zorder=2,
        )
        for rect, b in zip(drawn, bars, strict=True):
            if b.noisy:
                rect.set_hatch("///")
        ax.errorbar(
            [b.median_s for b in bars],
            ys,
            xerr=[[b.median_s - b.min_s for b in bars], [b.max_s - b.median_s for b in bars]],
            fmt="none",
            ecolor="#222222",
            elinewidth=1.2,
            capsize=4,
            zorder=3,
        )
        ideal = [(b.ideal_s, y) for b, y in zip(bars, ys, strict=True) if b.ideal_s]
        if ideal:
            ax.scatter(
                [x for x, _ in ideal],
                [y for _, y in ideal],
                marker="|",
                s=450,
                linewidths=2.5,
                color="black",
                zorder=4,
            )
        predicted = [(b.predicted_s, y) for b, y in zip(bars, ys, strict=True) if b.predicted_s]
        if predicted:  # hollow: a prediction, made before the run, beside what was measured
            ax.scatter([x for x, _ in predicted], [y for _, y in predicted], marker="o", s=60,
                       facecolors="none", edgecolors="black", linewidths=1.5, zorder=4)  # fmt: skip
        ideal = ideal + predicted  # the axis limits below cover the predictions too
        lo = min(min(b.min_s for b in bars), *(x for x, _ in ideal)) if ideal else None
        lo = lo if lo is not None else min(b.min_s for b in bars)
        hi = max(max(b.max_s for b in bars), *(x for x, _ in ideal)) if ideal else None
        hi = max(hi if hi is not None else max(b.max_s for b in bars), 1e-9)  # never a 0-wide axis
        log = lo > 0 and hi / lo > LOG_SCALE_RATIO
        for b, y in zip(bars, ys, strict=True):
            right = max(b.max_s, b.ideal_s or 0.0, b.predicted_s or 0.0)
            x = right * 1.25 if log else right + hi * 0.02
            weight = "bold" if b.winner else "normal"
            ax.text(x, y, _bar_label(b), va="center", fontsize=8.5, fontweight=weight, zorder=5)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
            ax.set_xlim(lo / 1.6, hi * 40)
        else:
            ax.set_xlim(0, hi * 1.9)
        ax.set_yticks(ys, [("★ " if b.winner else "") + b.model for b in bars])
        for tick, b in zip(ax.get_yticklabels(), bars, strict=True):
            if b.winner:
                tick.set_fontweight("bold")
        ax.invert_yaxis()
        scale = ", log scale" if log else ""
        ax.set_xlabel(f"wall time per repeat (s{scale})")
        ax.set_title(_workload_title(doc, workload) + "\n" + headline.get(workload, ""),
                     loc="left", fontsize=10)  # fmt: skip
        ax.grid(axis="x", which="both", alpha=0.3, zorder=0)
    families = dict.fromkeys(b.family for bars in data.values() for b in bars)
    handles: list[Any] = [
        Patch(color=palette.get(f, OTHER_FAMILY_COLOR), label=f or "other") for f in families
    ]
    handles += [
        Patch(facecolor="white", edgecolor="black", linewidth=2.0, label="★ fastest"),
        Patch(facecolor="white", edgecolor="#555555", hatch="///", label="spread > 10 % of median"),
        Line2D([], [], color="#222222", marker="|", markersize=8, linestyle="-",
               label="min–max over repeats"),
        Line2D([], [], color="black", marker="|", markersize=14, markeredgewidth=2.5,
               linestyle="none", label="ideal (physical limit)"),
    ]  # fmt: skip
    if any(b.predicted_s for bars in data.values() for b in bars):
        handles.append(Line2D([], [], marker="o", markerfacecolor="none", markeredgecolor="black",
                              linestyle="none", label="predicted (cost model)"))  # fmt: skip
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8.5)
    return _save(fig, path)


# --- job timeline -------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    """The fields of one jobs.csv row the timeline needs."""

    model: str
    workload: str
    job_id: int
    host: str
    pid: int
    thread: str
    enqueued_at_ns: int
    started_at_ns: int
    finished_at_ns: int
    ok: bool


def read_jobs_csv(path: Path) -> list[JobRow]:
    """Parse jobs.csv (``producer.results.JOB_FIELDS``); a malformed file is one ResultsError."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return [
                JobRow(
                    model=r["model"],
                    workload=r["workload"],
                    job_id=int(r["job_id"]),
                    host=r["host"],
                    pid=int(r["pid"]),
                    thread=r["thread"],
                    enqueued_at_ns=int(r["enqueued_at_ns"]),
                    started_at_ns=int(r["started_at_ns"]),
                    finished_at_ns=int(r["finished_at_ns"]),
                    ok=r["outcome"] == "ok",
                )
                for r in csv.DictReader(fh)
            ]
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{path} is not a jobbench jobs.csv ({exc!r})") from None


@dataclass(frozen=True)
class Bar:
    """One job on its lane: seconds since the batch began, the stacking slot inside the lane."""

    start_s: float
    duration_s: float
    slot: int
    ok: bool


@dataclass(frozen=True)
class Lane:
    """One thread that ran jobs (a process, for single-threaded workers)."""

    label: str
    process: str
    n_slots: int
    bars: list[Bar]


@dataclass(frozen=True)
class Timeline:
    """One model on one workload: its lanes and what they add up to."""

    workload: str
    model: str
    family: str
    lanes: list[Lane]
    n_jobs: int
    n_processes: int
    #: The most jobs running at the same instant: the concurrency the model reached.
    peak_in_flight: int
    #: First enqueue (or start) to last finish, from the job records.
    span_s: float
    wall_median_s: float | None
    ideal_s: float | None

    @property
    def n_rows(self) -> int:
        return sum(lane.n_slots for lane in self.lanes)


def _slots(intervals: Sequence[tuple[int, int]]) -> list[int]:
    """Stack overlapping intervals (sorted by start): the first slot free at each start."""
    ends: list[int] = []
    out = []
    for start, end in intervals:
        for i, busy_until in enumerate(ends):
            if busy_until <= start:
                ends[i] = end
                out.append(i)
                break
        else:
            ends.append(end)
            out.append(len(ends) - 1)
    return out


def peak_in_flight(intervals: Iterable[tuple[int, int]]) -> int:
    """Most intervals open at once (an interval ending when another starts does not overlap)."""
    events = sorted(e for s, f in intervals for e in ((s, 1), (f, -1)))
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def _lane_label(host: str, pid: int, thread: str, one_host: bool, one_thread_each: bool) -> str:
    where = "" if one_host else f"{host} "
    return f"{where}pid {pid}" if one_thread_each else f"{where}pid {pid} · {thread[:28]}"


def timeline_data(doc: dict[str, Any], jobs: Sequence[JobRow]) -> list[Timeline]:
    """One timeline per (model, workload) in run order, from the jobs.csv rows of that model."""
    by_key: dict[tuple[str, str], list[JobRow]] = defaultdict(list)
    for job in jobs:
        by_key[(job.workload, job.model)].append(job)
    out = []
    for row in doc["results"]:
        workload, model = str(row["workload"]), str(row["model"])
        rows = by_key.get((workload, model))
        if not rows or not facts(row).in_timeline:
            continue
        t0 = min(min(j.enqueued_at_ns, j.started_at_ns) for j in rows)
        lanes_jobs: dict[tuple[str, int, str], list[JobRow]] = defaultdict(list)
        for job in sorted(rows, key=lambda j: (j.started_at_ns, j.job_id)):
            lanes_jobs[(job.host, job.pid, job.thread)].append(job)
        threads_per_pid: dict[tuple[str, int], int] = defaultdict(int)
        for host, pid, _ in lanes_jobs:
            threads_per_pid[(host, pid)] += 1
        one_host = len({h for h, _ in threads_per_pid}) == 1
        one_thread_each = all(n == 1 for n in threads_per_pid.values()) and len(threads_per_pid) > 1
        lanes = []
        for (host, pid, thread), lane_jobs in lanes_jobs.items():
            slots = _slots([(j.started_at_ns, j.finished_at_ns) for j in lane_jobs])
            bars = [
                Bar(
                    start_s=(j.started_at_ns - t0) / 1e9,
                    duration_s=(j.finished_at_ns - j.started_at_ns) / 1e9,
                    slot=slot,
                    ok=j.ok,
                )
                for j, slot in zip(lane_jobs, slots, strict=True)
            ]
            label = _lane_label(host, pid, thread, one_host, one_thread_each)
            lanes.append(Lane(label, f"{host}:{pid}", max(slots) + 1, bars))
        out.append(
            Timeline(
                workload=workload,
                model=model,
                family=facts(row).family,
                lanes=lanes,
                n_jobs=len(rows),
                n_processes=len(threads_per_pid),
                peak_in_flight=peak_in_flight((j.started_at_ns, j.finished_at_ns) for j in rows),
                span_s=(max(j.finished_at_ns for j in rows) - t0) / 1e9,
                wall_median_s=float(row["wall_s"]["median"]),
                ideal_s=row.get("ideal_s"),
            )
        )
    return out


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def who_ran(tl: Timeline) -> str:
    """ "2 processes × 1 thread", "1 process × 100 threads" or "3 processes, 7 threads"."""
    per_process: dict[str, int] = defaultdict(int)
    for lane in tl.lanes:
        per_process[lane.process] += 1
    counts = set(per_process.values())
    procs = _plural(len(per_process), "process", "processes")
    if len(counts) == 1:
        return f"{procs} × {_plural(counts.pop(), 'thread')}"
    return f"{procs}, {_plural(len(tl.lanes), 'thread')}"


def _shade(color: str, factor: float) -> tuple[float, float, float]:
    """``color`` mixed towards white by ``factor`` (0: unchanged)."""
    r, g, b = to_rgb(color)
    return (r + (1 - r) * factor, g + (1 - g) * factor, b + (1 - b) * factor)


#: The shaded tail of a timeline panel.
TAIL_COLOR = "#f2c14e"


def _draw_lanes(ax: Any, tl: Timeline) -> None:
    colors: dict[str, str] = {}
    verts, faces = [], []
    # Rows beyond what a panel can show (15 000 threads) are folded into bands of neighbouring
    # rows, so every job still leaves a mark instead of a sub-pixel sliver.
    banded = tl.n_rows > MAX_DRAWN_ROWS
    scale = MAX_DRAWN_ROWS / tl.n_rows if banded else 1.0
    y0 = 0
    centers, labels = [], []
    for lane in tl.lanes:
        color = colors.setdefault(lane.process, PROCESS_COLORS[len(colors) % len(PROCESS_COLORS)])
        for i, bar in enumerate(lane.bars):
            top = math.floor((y0 + bar.slot) * scale) + 0.1
            bottom = top + 0.8
            x0, x1 = bar.start_s, bar.start_s + max(bar.duration_s, 0.0)
            verts.append([(x0, top), (x1, top), (x1, bottom), (x0, bottom)])
            # Alternate shades so back-to-back jobs on one lane stay distinguishable.
            faces.append(_shade(color, 0.35 * (i % 2)) if bar.ok else to_rgb(FAILED_COLOR))
        centers.append(y0 + lane.n_slots / 2)
        labels.append(lane.label + (f" (×{lane.n_slots} overlapping)" if lane.n_slots > 1 else ""))
        y0 += lane.n_slots
        if len(tl.lanes) <= MAX_LABELLED_LANES * 4:
            ax.axhline(y0, color="#dddddd", linewidth=0.5, zorder=0)
    # A thin edge in the bar's own colour: a 1 ms job on a 15 s axis still shows as a line.
    ax.add_collection(PolyCollection(verts, facecolors=faces, edgecolors=faces, linewidths=0.3,
                                     zorder=2))  # fmt: skip
    ax.set_ylim(math.ceil(y0 * scale), 0)
    right = max(tl.span_s, tl.wall_median_s or 0.0, tl.ideal_s or 0.0)
    ax.set_xlim(0, right * 1.04 if right > 0 else 1.0)
    if len(tl.lanes) <= MAX_LABELLED_LANES:
        ax.set_yticks(centers, labels, fontsize=7.5)
    else:
        ax.set_yticks([])
        kind = "processes" if tl.n_processes == len(tl.lanes) else "threads"
        how = f"{tl.n_rows / MAX_DRAWN_ROWS:.3g} per row" if banded else "1 lane each"
        ax.set_ylabel(f"{len(tl.lanes)} {kind}\n({how})", fontsize=8)
    ends = [
        max(b.start_s + max(b.duration_s, 0.0) for b in lane.bars) for lane in tl.lanes if lane.bars
    ]
    if len(ends) > 1 and max(ends) > min(ends):
        # The tail: from the first lane going idle to the last job's end (report "Load balance").
        ax.axvspan(min(ends), max(ends), color=TAIL_COLOR, alpha=0.25, zorder=1, linewidth=0)
        ax.text(
            max(ends), 0.02, f" tail {max(ends) - min(ends):.3g} s",
            transform=ax.get_xaxis_transform(), fontsize=7.5, color="#8a6d00", va="bottom",
        )  # fmt: skip
    if tl.ideal_s:
        ax.axvline(tl.ideal_s, color="black", linestyle="--", linewidth=1.2, zorder=3)
    if tl.wall_median_s:
        ax.axvline(tl.wall_median_s, color="#555555", linestyle=":", linewidth=1.5, zorder=3)
    ax.set_title(f"{tl.model}", loc="left", fontsize=10, fontweight="bold")
    ax.set_title(
        f"{who_ran(tl)} · peak {tl.peak_in_flight} in flight · {tl.n_jobs} jobs, {tl.span_s:.3g} s",
        loc="right",
        fontsize=8,
    )
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3, zorder=0)


def draw_timeline(doc: dict[str, Any], jobs: Sequence[JobRow], path: Path) -> Path:
    """Every job of each model's median repeat on the lane of the thread that ran it."""
    timelines = timeline_data(doc, jobs)
    if not timelines:
        raise ResultsError("no job records of a model other than sequential")
    workloads = list(dict.fromkeys(t.workload for t in timelines))
    models = list(dict.fromkeys(t.model for t in timelines))
    cell = {(t.model, t.workload): t for t in timelines}
    heights = [
        0.9
        + 0.04 * min(MAX_PANEL_ROWS, max(cell[(m, w)].n_rows for w in workloads if (m, w) in cell))
        for m in models
    ]
    fig = Figure(
        figsize=(max(MIN_WIDTH_IN, 8.0 * len(workloads)), 1.5 + sum(heights)), layout="constrained"
    )
    axes = fig.subplots(len(models), len(workloads), squeeze=False,
                        gridspec_kw={"height_ratios": heights})  # fmt: skip
    fig.suptitle(
        f"Job timeline (median repeat of each model)  ·  run {doc['run_id']}  ·  "
        f"{doc.get('metadata', {}).get('cpu_count', '?')} cores\n"
        "one lane per thread that ran jobs, coloured by process\n"
        "lanes of one colour busy together = concurrency; of several colours = parallelism",
        fontsize=11,
    )
    for col, workload in enumerate(workloads):
        axes[0][col].annotate(
            f"{workload.upper()} workload", xy=(0.5, 1.0), xycoords="axes fraction",
            xytext=(0, 22), textcoords="offset points", ha="center", fontsize=12, fontweight="bold",
        )  # fmt: skip
        for row, model in enumerate(models):
            ax = axes[row][col]
            tl = cell.get((model, workload))
            if tl is None:
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"{model}: not run on {workload}", ha="center", va="center",
                        transform=ax.transAxes, color="#777777", fontsize=9)  # fmt: skip
                continue
            _draw_lanes(ax, tl)
        bottom = max(r for r, m in enumerate(models) if (m, workload) in cell)
        axes[bottom][col].set_xlabel("time since the first job was enqueued or started (s)")
    handles = [
        Patch(color=PROCESS_COLORS[0], label="job (one colour per process; shades alternate)"),
        Patch(color=FAILED_COLOR, label="failed job"),
        Patch(color=TAIL_COLOR, alpha=0.25, label="tail: first lane idle → last job done"),
        Line2D([], [], color="black", linestyle="--", label="ideal wall time (physical limit)"),
        Line2D([], [], color="#555555", linestyle=":", linewidth=1.5, label="median wall time"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8.5)
    return _save(fig, path)


def chart_size_px(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG from its header, without decoding it."""
    with path.open("rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ResultsError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
