"""What a sweep's points say: one curve per series (a model, or a model under a group's fixed
options such as ``batch 1``), efficiency against the ideal, Celery's overhead over the best
in-process model, the crossover job size and where concurrency stops scaling; and the files
that say it (``sweep.csv``, ``sweep.md``).

Pure functions of stored data (the point rows the bench wrote), so the tests check them without
running anything, and a sweep.json renders again on its own.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from producer.console import fmt_s
from producer.goals import Select
from producer.results import atomic_open, atomic_write
from producer.runners.facts import facts

#: The crossover thresholds: a Celery series is "within" when its median wall time is at most
#: this share above the best in-process model's at the same point (10 % and 5 %, issue 17).
CROSSOVER_SHARES = (0.10, 0.05)
#: The family label of the models the crossover judges, and of those it compares them with
#: (results.json ``family``), selected the way ``producer.goals`` selects the two sides of its
#: CPU goal: data, never a branch on a model's name or family.
CANDIDATE_FAMILY = "celery"
REFERENCE_FAMILY = "in-process"


def is_candidate(row: Mapping[str, Any]) -> bool:
    """A model the crossover judges (a Celery pool; its broker variants included)."""
    return Select(str(row["workload"]), family=CANDIDATE_FAMILY).matches(row)


def is_reference(row: Mapping[str, Any]) -> bool:
    """A model the candidates are compared with (in-process, the baseline left out)."""
    return Select(str(row["workload"]), family=REFERENCE_FAMILY).matches(row)


#: A concurrency point still "scales" while its efficiency (ideal / median) stays at or above
#: this share of the series' efficiency at the smallest value: a fixed cost per run (an event
#: loop and a client to create, a worker's first fetch) lowers every point alike and is no
#: failure to scale; what falls away as the concurrency grows is.
SCALING_EFFICIENCY = 0.8

ParamKind = Literal["job_size", "concurrency", "other"]


@dataclass(frozen=True)
class SeriesPoint:
    """One series at one value of the varied parameter."""

    value: float
    median_s: float
    min_s: float
    max_s: float
    n_jobs: int
    concurrency: int | None
    ideal_s: float | None
    efficiency: float | None
    jobs_per_s: float | None
    #: Seconds one job takes alone (the baseline's median / its jobs), when the point has one.
    job_s: float | None
    #: Median / the best reference (in-process) median at this point - 1, for candidates.
    overhead: float | None
    n_error: int
    run_id: str
    #: Its spread (or, for a candidate, its reference's) is beyond ``stats.SPREAD_WARN_FRACTION``.
    noisy: bool = False


@dataclass(frozen=True)
class Series:
    name: str
    model: str
    label: str
    family: str
    baseline: bool
    #: Judged by the crossover against the reference models (``is_candidate``).
    candidate: bool
    points: tuple[SeriesPoint, ...]


@dataclass(frozen=True)
class Crossover:
    """Where a candidate series comes within ``share`` of the best reference model for good:
    ``status`` ``always`` (already at the smallest value), ``crossed`` (between ``below`` and
    ``above``, ``at`` interpolated on log axes) or ``never`` (not within the measured range)."""

    series: str
    share: float
    status: Literal["always", "crossed", "never"]
    at: float | None = None
    below: float | None = None
    above: float | None = None
    #: Seconds per job at ``at`` (interpolated like it), when the points know their job time.
    job_s: float | None = None
    #: The overhead at the largest value (what ``never`` leaves the reader with).
    last_overhead: float | None = None
    #: Some point of the series was noisy: the crossover may move with more repeats.
    noisy: bool = False


@dataclass(frozen=True)
class Scaling:
    """How far a series scales with concurrency: the largest value of an unbroken run of points
    from the smallest whose efficiency stays at or above ``SCALING_EFFICIENCY`` x the efficiency
    at the smallest value (``start_efficiency``), and the value of its highest throughput."""

    series: str
    scales_to: float | None
    peak_value: float
    peak_jobs_per_s: float
    efficiency_at_peak: float | None
    start_value: float | None = None
    start_efficiency: float | None = None


@dataclass(frozen=True)
class Findings:
    crossovers: list[Crossover] = field(default_factory=list)
    scaling: list[Scaling] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "crossovers": [asdict(c) for c in self.crossovers],
            "scaling": [asdict(s) for s in self.scaling],
        }


def _median(row: Mapping[str, Any]) -> float:
    return float(row["wall_s"]["median"])


def _noisy(row: Mapping[str, Any]) -> bool:
    return bool(row["wall_s"].get("noisy"))


def _baseline_median(rows: Sequence[Mapping[str, Any]]) -> tuple[float, int] | None:
    for row in rows:
        if facts(row).baseline:
            return _median(row), int(row["n_jobs"])
    return None


def _ideal_s(row: Mapping[str, Any], baseline: tuple[float, int] | None, cpus: int) -> float | None:
    """The row's own ideal (the bench computes it when the row's run had what it needs), else
    the CPU ideal from the point's baseline measured in another run of the same point."""
    if row.get("ideal_s") is not None:
        return float(row["ideal_s"])
    conc = row.get("params", {}).get("concurrency")
    if row.get("workload") == "cpu" and baseline is not None and baseline[1] == row["n_jobs"]:
        return baseline[0] / max(1, min(cpus, int(conc or 1)))
    return None


def build_series(points: Sequence[Mapping[str, Any]], cpus: int) -> list[Series]:
    """One series per (model, group label) over the points, in the order they first appear.

    ``points``: ``{"value", "run_id", "labels": {model: label}, "results": rows}``, several
    entries per value when a sweep runs groups of models with different fixed options.
    """
    by_value: dict[float, list[tuple[Mapping[str, Any], str, str]]] = {}
    for point in points:
        labels = point.get("labels", {})
        for row in point["results"]:
            label = labels.get(str(row["model"]).partition("@")[0], "")
            by_value.setdefault(float(point["value"]), []).append((row, label, point["run_id"]))
    raw: dict[str, list[SeriesPoint]] = {}
    about: dict[str, tuple[str, str, str, bool, bool]] = {}
    for value in sorted(by_value):
        entries = by_value[value]
        rows = [row for row, _, _ in entries]
        baseline = _baseline_median(rows)
        refs = [r for r in rows if is_reference(r) and r.get("n_error", 0) == 0]
        best = min(refs, key=_median) if refs else None
        best_ref = _median(best) if best is not None else None
        for row, label, run_id in entries:
            about_row = facts(row)
            name = f"{row['model']} ({label})" if label else str(row["model"])
            candidate = is_candidate(row)
            about.setdefault(
                name, (str(row["model"]), label, about_row.family, about_row.baseline, candidate)
            )
            median = _median(row)
            ideal = _ideal_s(row, baseline, cpus)
            raw.setdefault(name, []).append(
                SeriesPoint(
                    value=value,
                    median_s=median,
                    min_s=float(row["wall_s"]["min"]),
                    max_s=float(row["wall_s"]["max"]),
                    n_jobs=int(row["n_jobs"]),
                    concurrency=row.get("params", {}).get("concurrency"),
                    ideal_s=ideal,
                    efficiency=ideal / median if ideal is not None and median > 0 else None,
                    jobs_per_s=row["n_jobs"] / median if median > 0 else None,
                    job_s=baseline[0] / baseline[1] if baseline else None,
                    overhead=(median / best_ref - 1) if candidate and best_ref else None,
                    n_error=int(row.get("n_error", 0)),
                    run_id=run_id,
                    noisy=_noisy(row) or (candidate and best is not None and _noisy(best)),
                )
            )
    return [Series(name, *about[name], points=tuple(pts)) for name, pts in raw.items()]


# --- crossover ------------------------------------------------------------------------------


def _log_interp(x0: float, x1: float, t: float) -> float:
    """The point a fraction ``t`` of the way from ``x0`` to ``x1`` on a log axis."""
    if x0 <= 0 or x1 <= 0:
        return x0 + (x1 - x0) * t
    return math.exp(math.log(x0) + (math.log(x1) - math.log(x0)) * t)


def crossover(
    xs: Sequence[float],
    overheads: Sequence[float],
    share: float,
    *,
    series: str = "",
    job_s: Sequence[float | None] | None = None,
) -> Crossover:
    """The value of ``xs`` (ascending) from which ``overheads`` stay at or below ``share``.

    It is the first point after the last one above ``share`` (a dip that comes back up does not
    count); between that point and the one before, the crossing is interpolated linearly in the
    overhead and logarithmically in x (job sizes and times span decades). ``job_s`` (seconds per
    job at each x) is interpolated the same way.
    """
    if len(xs) != len(overheads) or not xs:
        raise ValueError("crossover needs one overhead per value, and at least one")
    if list(xs) != sorted(xs):
        raise ValueError("crossover needs ascending values")
    last = overheads[-1]
    above = [i for i, o in enumerate(overheads) if o > share]
    if not above:
        j = job_s[0] if job_s else None
        return Crossover(series, share, "always", at=xs[0], job_s=j, last_overhead=last)
    k = above[-1]
    if k == len(xs) - 1:
        return Crossover(series, share, "never", last_overhead=last)
    o0, o1 = overheads[k], overheads[k + 1]
    t = (o0 - share) / (o0 - o1) if o0 != o1 else 1.0
    at = _log_interp(xs[k], xs[k + 1], t)
    j0, j1 = (job_s[k], job_s[k + 1]) if job_s else (None, None)
    j = _log_interp(j0, j1, t) if j0 is not None and j1 is not None else None
    return Crossover(
        series, share, "crossed", at=at, below=xs[k], above=xs[k + 1], job_s=j, last_overhead=last
    )


def crossovers(series: Sequence[Series]) -> list[Crossover]:
    """Every candidate series' crossover at each of ``CROSSOVER_SHARES``."""
    out = []
    for s in series:
        pts = [p for p in s.points if p.overhead is not None]
        if not s.candidate or not pts:
            continue
        xs = [p.value for p in pts]
        noisy = any(p.noisy for p in pts)
        for share in CROSSOVER_SHARES:
            found = crossover(
                xs,
                [p.overhead for p in pts if p.overhead is not None],
                share,
                series=s.name,
                job_s=[p.job_s for p in pts],
            )
            out.append(replace(found, noisy=noisy))
    return out


def scaling(series: Sequence[Series]) -> list[Scaling]:
    """How far each series scales with the varied concurrency (see ``Scaling``)."""
    out = []
    for s in series:
        pts = [p for p in s.points if p.jobs_per_s is not None]
        if not pts or s.baseline:
            continue
        peak = max(pts, key=lambda p: p.jobs_per_s or 0.0)
        start = pts[0].efficiency
        scales_to = None
        if start is not None:
            for p in pts:  # an unbroken run from the smallest value: a later recovery is noise
                if p.efficiency is None or p.efficiency < SCALING_EFFICIENCY * start:
                    break
                scales_to = p.value
        out.append(
            Scaling(s.name, scales_to, peak.value, peak.jobs_per_s or 0.0, peak.efficiency,
                    pts[0].value, start)
        )  # fmt: skip
    return out


def findings(series: Sequence[Series], kind: ParamKind) -> Findings:
    if kind == "job_size":
        return Findings(crossovers=crossovers(series))
    if kind == "concurrency":
        return Findings(scaling=scaling(series))
    return Findings()


# --- words ------------------------------------------------------------------------------------


def fmt_value(value: float) -> str:
    """A parameter value as a reader writes it: 1,000,000 or 0.5."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}"


def approx(value: float) -> str:
    """An interpolated value to two significant digits (1,200, not 1,187.4)."""
    return fmt_value(float(f"{value:.2g}"))


#: Appended to a crossover measured on noisy points.
NOISY_NOTE = (
    " Some of its points are noisy (spread > 10 % of the median): measure again with more "
    "--repeat before relying on it."
)


def crossover_sentence(c: Crossover, param: str) -> str:
    return _crossover_words(c, param) + (NOISY_NOTE if c.noisy else "")


def _crossover_words(c: Crossover, param: str) -> str:
    pct = f"{c.share:.0%}"
    last = f"{c.last_overhead:+.0%}" if c.last_overhead is not None else "?"
    if c.status == "never":
        return (
            f"**{c.series}** never comes within {pct} of the best in-process model in the "
            f"measured range (at the largest {param}: {last})."
        )
    time = f" (a job of ~{fmt_s(c.job_s)})" if c.job_s is not None else ""
    if c.status == "always":
        assert c.at is not None
        return (
            f"**{c.series}** is within {pct} of the best in-process model already at the "
            f"smallest {param}, {fmt_value(c.at)}{time}."
        )
    assert c.at is not None and c.below is not None and c.above is not None
    return (
        f"**{c.series}** is within {pct} of the best in-process model from {param} ≈ "
        f"{approx(c.at)}{time} on (interpolated between the measured {fmt_value(c.below)} "
        f"and {fmt_value(c.above)})."
    )


def scaling_sentence(s: Scaling, param: str) -> str:
    peak = f"peak {s.peak_jobs_per_s:,.0f} jobs/s at {param} = {fmt_value(s.peak_value)}" + (
        f" (efficiency {s.efficiency_at_peak:.0%})" if s.efficiency_at_peak is not None else ""
    )
    if s.scales_to is None or s.start_value is None or s.start_efficiency is None:
        return f"**{s.series}**: no efficiency to judge scaling by; {peak}."
    start = f"{param} = {fmt_value(s.start_value)}"
    return (
        f"**{s.series}** scales up to {param} = {fmt_value(s.scales_to)} (efficiency ≥ "
        f"{SCALING_EFFICIENCY:.0%} of its {s.start_efficiency:.0%} at {start}); {peak}."
    )


def finding_sentences(doc: Mapping[str, Any]) -> list[str]:
    """The findings of a sweep.json in words."""
    param = str(doc["param"]["name"])
    found = doc.get("findings", {})
    lines = [crossover_sentence(Crossover(**c), param) for c in found.get("crossovers", [])]
    lines += [scaling_sentence(Scaling(**s), param) for s in found.get("scaling", [])]
    return lines


# --- files ------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "sweep_id",
    "param",
    "value",
    "series",
    "model",
    "label",
    "family",
    "n_jobs",
    "concurrency",
    "median_s",
    "min_s",
    "max_s",
    "ideal_s",
    "efficiency",
    "jobs_per_s",
    "job_s",
    "overhead_vs_best_in_process",
    "n_error",
    "run_id",
)


def series_from_doc(doc: Mapping[str, Any]) -> list[Series]:
    return [
        Series(
            **{
                **{k: v for k, v in s.items() if k != "points"},
                "points": tuple(SeriesPoint(**p) for p in s["points"]),
            }
        )
        for s in doc.get("series", [])
    ]


def write_csv(doc: Mapping[str, Any], path: Path) -> Path:
    """One line per (point, series): the long form a spreadsheet or pandas pivots."""
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(CSV_COLUMNS)
        for s in series_from_doc(doc):
            for p in s.points:
                out.writerow(
                    [
                        doc["sweep_id"],
                        doc["param"]["name"],
                        p.value,
                        s.name,
                        s.model,
                        s.label,
                        s.family,
                        p.n_jobs,
                        p.concurrency,
                        p.median_s,
                        p.min_s,
                        p.max_s,
                        p.ideal_s,
                        p.efficiency,
                        p.jobs_per_s,
                        p.job_s,
                        p.overhead,
                        p.n_error,
                        p.run_id,
                    ]
                )
    return path


def _table(series: Sequence[Series], values: Sequence[float], cell: Any) -> list[str]:
    head = ["series", *(fmt_value(v) for v in values)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in series:
        by_value = {p.value: p for p in s.points}
        cells = [cell(by_value[v]) if v in by_value else "–" for v in values]
        lines.append("| " + " | ".join([s.name, *cells]) + " |")
    return lines


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def write_markdown(doc: Mapping[str, Any], path: Path, charts: Sequence[str]) -> Path:
    """sweep.md: what was asked, on what machine, the findings in words, the tables, the charts."""
    series = series_from_doc(doc)
    values = sorted({p.value for s in series for p in s.points})
    param = doc["param"]
    meta = doc.get("metadata", {})
    lines = [
        f"# jobbench sweep {doc['sweep_id']}",
        "",
        f"{doc.get('question') or ''}".strip(),
        "",
        f"- varied: `{param['name']}` — {param['help']}",
        f"- values: {', '.join(fmt_value(v) for v in values) or 'none measured yet'}",
        f"- fixed: {doc.get('fixed_text') or 'the bench defaults'}",
        f"- machine: {meta.get('cpu_count', '?')} cores, Python {meta.get('python', '?')}, "
        f"{meta.get('platform', '?')}",
        f"- measured: {doc.get('n_points_measured', 0)} point runs now, "
        f"{doc.get('n_points_resumed', 0)} resumed; {doc.get('measure_s', 0):.0f} s of "
        "measurement in all",
        "",
    ]
    sentences = finding_sentences(doc)
    if sentences:
        lines += ["## What the curves say", "", *(f"- {s}" for s in sentences), ""]
    lines += ["## Median wall time", "", *_table(series, values, lambda p: fmt_s(p.median_s)), ""]
    lines += [
        "## Efficiency (ideal / median)",
        "",
        *_table(series, values, lambda p: _pct(p.efficiency)),
        "",
    ]
    if any(p.overhead is not None for s in series for p in s.points):
        lines += [
            "## Overhead over the best in-process model",
            "",
            "Median wall time over the fastest in-process model of the point (the baseline left "
            "out), minus one.",
            "",
            *_table(
                [s for s in series if any(p.overhead is not None for p in s.points)],
                values,
                lambda p: "–" if p.overhead is None else f"{p.overhead:+.0%}",
            ),
            "",
        ]
    if any(p.job_s is not None for s in series for p in s.points):
        times = {p.value: p.job_s for s in series for p in s.points if p.job_s is not None}
        lines += [
            "One job alone (the baseline's median / its jobs): "
            + ", ".join(f"{fmt_value(v)}: {fmt_s(t)}" for v, t in sorted(times.items()))
            + ".",
            "",
        ]
    if charts:
        lines += ["## Charts", "", *(f"![{name}]({name})" for name in charts), ""]
    atomic_write(path, "\n".join(lines))
    return path
