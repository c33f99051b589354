"""The charts of a sweep, drawn headless from sweep.json alone (beside ``producer.charts``, which
draws one run).

* ``wall_time.png``: median wall time against the varied parameter, one line per series with
  its min–max band, the ideal (the physical limit at each point) dashed black.
* ``efficiency.png``: ideal / median against the parameter; 100 % is the ideal.
* ``overhead.png`` (job-size sweeps with Celery and in-process series): each Celery series'
  wall time over the best in-process model's, the 10 % and 5 % lines, and the crossovers
  marked and stated under the chart.

Axes go logarithmic where the values span enough for a linear axis to hide the small ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from producer.charts import DPI, LOG_SCALE_RATIO
from producer.console import fmt_s
from producer.results import atomic_open
from producer.sweep_results import (
    CROSSOVER_SHARES,
    Series,
    approx,
    finding_sentences,
    fmt_value,
    series_from_doc,
)

WALL_CHART = "wall_time.png"
EFFICIENCY_CHART = "efficiency.png"
OVERHEAD_CHART = "overhead.png"
#: Values spanning at least this ratio get a log x axis (a decade: 1, 2, 5, 10 ...).
LOG_X_RATIO = 10.0
#: Series colours, one per series in the order of sweep.json (tab10 without red).
SERIES_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
)
#: Line style of a crossover marker, by threshold.
SHARE_STYLES = {0.10: "--", 0.05: ":"}
FIG_SIZE_IN = (11.0, 6.5)
#: Ticks of the overhead chart's ratio axis (1.1 and 1.05 are the thresholds' own lines).
RATIO_TICKS = (0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": "jobbench"})
    return path


def log_x(values: Sequence[float]) -> bool:
    """Whether the x axis of ``values`` should be logarithmic."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= LOG_X_RATIO


def log_y(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) >= LOG_SCALE_RATIO


def ideal_line(series: Sequence[Series]) -> list[tuple[float, float]]:
    """(x, the smallest ideal of the non-baseline series at x): the limit nothing can beat."""
    best: dict[float, float] = {}
    for s in series:
        if s.baseline:
            continue
        for p in s.points:
            if p.ideal_s is not None:
                best[p.value] = min(best.get(p.value, math.inf), p.ideal_s)
    return sorted(best.items())


def _job_times(series: Sequence[Series]) -> dict[float, float]:
    return {p.value: p.job_s for s in series for p in s.points if p.job_s is not None}


def _x_axis(ax: Any, doc: dict[str, Any], series: Sequence[Series]) -> None:
    values = sorted({p.value for s in series for p in s.points})
    if log_x(values):
        ax.set_xscale("log")
    ax.set_xticks(values)
    times = _job_times(series) if doc["param"]["kind"] == "job_size" else {}
    if times:
        ax.set_xticklabels(
            [f"{fmt_value(v)}\n{fmt_s(times[v])}" if v in times else fmt_value(v) for v in values],
            fontsize=8,
        )
        ax.set_xlabel(f"{doc['param']['axis']}  (below: one job alone)")
    else:
        ax.set_xticklabels([fmt_value(v) for v in values], fontsize=8)
        ax.set_xlabel(doc["param"]["axis"])
    ax.minorticks_off()


def _title(doc: dict[str, Any], what: str) -> str:
    meta = doc.get("metadata", {})
    return (
        f"jobbench sweep {doc['sweep_id']}: {what}\n"
        f"{meta.get('cpu_count', '?')} cores · {doc.get('fixed_text', '')}"
    )


def _style(s: Series) -> str:
    return "--" if s.candidate else "-"


def draw_wall(doc: dict[str, Any], series: Sequence[Series], path: Path) -> Path:
    fig = Figure(figsize=FIG_SIZE_IN)
    ax = fig.add_subplot()
    medians: list[float] = []
    for i, s in enumerate(series):
        xs = [p.value for p in s.points]
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        ax.plot(
            xs, [p.median_s for p in s.points], _style(s), marker="o", color=color, label=s.name
        )
        ax.fill_between(
            xs,
            [p.min_s for p in s.points],
            [p.max_s for p in s.points],
            color=color,
            alpha=0.15,
            linewidth=0,
        )
        medians += [p.median_s for p in s.points]
    ideal = ideal_line(series)
    if ideal:
        ax.plot(
            [x for x, _ in ideal],
            [y for _, y in ideal],
            color="black",
            linestyle="--",
            linewidth=1.2,
            label="ideal (physical limit)",
        )
    if log_y(medians + [y for _, y in ideal]):
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.set_ylabel("median wall time (log)")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel("median wall time")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: fmt_s(y)))
    _x_axis(ax, doc, series)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(_title(doc, "wall time (band: min–max over the repeats)"), fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def draw_efficiency(doc: dict[str, Any], series: Sequence[Series], path: Path) -> Path:
    fig = Figure(figsize=FIG_SIZE_IN)
    ax = fig.add_subplot()
    top = 1.0
    for i, s in enumerate(series):
        pts = [p for p in s.points if p.efficiency is not None]
        if not pts or s.baseline:
            continue
        effs = [100 * (p.efficiency or 0.0) for p in pts]
        top = max(top, *effs)
        ax.plot(
            [p.value for p in pts],
            effs,
            _style(s),
            marker="o",
            color=SERIES_COLORS[i % len(SERIES_COLORS)],
            label=s.name,
        )
    ax.axhline(100, color="black", linestyle="--", linewidth=1.2, label="ideal (100 %)")
    ax.set_ylim(0, max(110.0, top * 1.05))
    ax.set_ylabel("efficiency: ideal / median (%)")
    _x_axis(ax, doc, series)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(_title(doc, "efficiency"), fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def draw_overhead(doc: dict[str, Any], series: Sequence[Series], path: Path) -> Path:
    """Candidate / best reference per point (log), the thresholds, the crossovers."""
    fig = Figure(figsize=(FIG_SIZE_IN[0], FIG_SIZE_IN[1] + 1.2))
    ax = fig.add_subplot()
    ratios: list[float] = []
    colors: dict[str, str] = {}
    for i, s in enumerate(series):
        pts = [p for p in s.points if p.overhead is not None]
        if not pts:
            continue
        colors[s.name] = SERIES_COLORS[i % len(SERIES_COLORS)]
        ys = [1 + (p.overhead or 0.0) for p in pts]
        ratios += ys
        ax.plot([p.value for p in pts], ys, "--", marker="o", color=colors[s.name], label=s.name)
    for share in CROSSOVER_SHARES:
        ax.axhline(
            1 + share,
            color="grey",
            linestyle=SHARE_STYLES.get(share, "-."),
            linewidth=1,
            label=f"+{share:.0%}",
        )
    ax.axhline(1.0, color="black", linewidth=1.2, label="best in-process model")
    marked = 0
    for c in doc.get("findings", {}).get("crossovers", []):
        if c["status"] == "crossed" and c["series"] in colors:
            marked += 1
            ax.axvline(
                c["at"],
                color=colors[c["series"]],
                linestyle=SHARE_STYLES.get(c["share"], "-."),
                linewidth=1.5,
                alpha=0.8,
            )
            ax.annotate(
                f"{c['share']:.0%}: ≈{approx(c['at'])}",
                (c["at"], 1 + c["share"]),
                textcoords="offset points",
                xytext=(4, 4 + 11 * marked),  # one above the other: sizes are often close
                fontsize=8,
                color=colors[c["series"]],
            )
    positive = [r for r in ratios if r > 0]
    if positive:
        ax.set_yscale("log")
        lo, hi = min(0.9, min(positive) * 0.9), max(1.3, max(positive) * 1.2)
        ax.set_ylim(lo, hi)
        ax.set_yticks([t for t in RATIO_TICKS if lo <= t <= hi])
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}×"))
        ax.minorticks_off()
    ax.set_ylabel("wall time / best in-process model (log)")
    _x_axis(ax, doc, series)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(_title(doc, "Celery's overhead over the best in-process model"), fontsize=10)
    words = [re.sub(r"\*\*(.+?)\*\*", r"\1", s) for s in finding_sentences(doc)]
    fig.tight_layout(rect=(0, 0.03 * max(1, len(words)), 1, 1))
    for k, line in enumerate(words):
        fig.text(0.01, 0.03 * (len(words) - k) - 0.02, line, fontsize=7.5)
    return _save(fig, path)


def draw_sweep_charts(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """Every chart sweep.json ``doc`` supports, into ``out_dir``."""
    series = series_from_doc(doc)
    if not series:
        return []
    paths = [
        draw_wall(doc, series, out_dir / WALL_CHART),
        draw_efficiency(doc, series, out_dir / EFFICIENCY_CHART),
    ]
    if doc["param"]["kind"] == "job_size" and any(
        p.overhead is not None for s in series for p in s.points
    ):
        paths.append(draw_overhead(doc, series, out_dir / OVERHEAD_CHART))
    return paths
