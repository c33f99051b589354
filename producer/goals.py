"""The performance goals of the Celery path, checked against measured results (results.json
keeps them under ``targets``; ``producer/target_server.py`` is the HTTP server, unrelated).

Every ratio compares figures of one run (same machine, same load, repeats interleaved), and each
figure is a median; a target judged on fewer than ``MIN_REPEATS`` repeats says so
(``enough_repeats``), because on a shared 2-core machine one repeat proves little.

``bench_goals`` reads a ``jobbench bench`` results list, ``overhead_goals`` a ``jobbench
overhead`` document. A goal names the rows it compares by their model or group label
(``Select``): it is a definition, not a special case of any model. A goal that the run could
not measure (a model or section missing) is ``met: None`` with the reason, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from producer.console import make_console
from producer.runners.base import base_name
from producer.runners.facts import facts
from producer.stats import Verdict, judge, ratio_ci, repeats_to_decide

#: Best Celery model / best in-process model (the baseline left out), CPU seed workload: the
#: median ratio must be at most this...
CPU_MAX_RATIO = 1.05
#: ...and the upper end of its 95 % confidence interval at most this.
CPU_MAX_RATIO_BOUND = 1.10
#: Best Celery model / best in-process model, IO seed workload (median ratio and interval bound).
IO_MAX_RATIO = 1.30
#: The fastest CPU model's efficiency against the ideal (sequential median / cores): at least.
CPU_MIN_EFFICIENCY = 0.90
#: Producer enqueue rate at the automatic batch size (jobs/s).
ENQUEUE_MIN_JOBS_PER_S = 20_000.0
#: Throughput lost to timing capture on the CPU seed sample (fraction).
CAPTURE_MAX_FRACTION = 0.03
#: Producer peak RSS at the largest noop job count / at the smallest (10,000 -> 1,000,000).
MEMORY_MAX_RATIO = 1.20
#: Repeats a median needs before a target judged on it is trusted.
MIN_REPEATS = 5

Target = dict[str, Any]


def _median(row: Mapping[str, Any]) -> float:
    return float(row["wall_s"]["median"])


def _unmeasured(goal: str, limit: float, why: str) -> Target:
    return {"goal": goal, "limit": limit, "value": None, "met": None, "why": why}


def _values(row: Mapping[str, Any]) -> list[float]:
    """A row's repeat wall times in the order measured (older rows: the median alone)."""
    wall = row["wall_s"]
    return [float(v) for v in wall.get("values") or [wall["median"]]]


def _ratio_target(
    goal: str,
    limit: float,
    num: Mapping[str, Any] | None,
    den: Mapping[str, Any] | None,
    bound: float | None = None,
    scale: float = 1.0,
) -> Target:
    """median(num) / (median(den) x scale) against ``limit``, with its bootstrap interval (repeats
    paired: they ran interleaved) and a verdict: met when the ratio is within ``limit`` and the
    interval's upper end within ``bound`` (default ``limit``), missed when even its lower end
    exceeds ``limit``, else undecided, with the repeats that would likely decide it."""
    if num is None or den is None:
        missing = "numerator" if num is None else "denominator"
        return _unmeasured(goal, limit, f"no {missing} model in this run")
    bound = limit if bound is None else bound
    ci = ratio_ci(_values(num), [v * scale for v in _values(den)])
    ratio = ci.point
    if not math.isfinite(ratio):
        verdict: Verdict = "undecided"
    elif ci.low is not None and ci.low > limit:
        verdict = "missed"
    elif ratio <= limit and judge(ci, bound) == "met":
        verdict = "met"
    else:
        verdict = "undecided"
    repeats = min(int(num.get("repeats", 0)), int(den.get("repeats", 0)))
    decide = repeats if verdict != "undecided" else repeats_to_decide(ci, limit)
    return {
        "goal": goal,
        "limit": limit,
        "bound": bound,
        "value": ratio,
        "met": ratio <= limit,
        "verdict": verdict,
        "ci": ci.to_json(),
        "repeats_to_decide": decide,
        "numerator": {"model": num["model"], "median_s": _median(num)},
        "denominator": {"model": den["model"], "median_s": _median(den) * scale},
        "repeats": repeats,
        "enough_repeats": repeats >= MIN_REPEATS,
        "noisy": bool(num["wall_s"].get("noisy") or den["wall_s"].get("noisy")),
        "retried": int(num.get("retried") or 0) + int(den.get("retried") or 0),
    }


def _best(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return min(rows, key=_median) if rows else None


@dataclass(frozen=True)
class Select:
    """The rows one side of a goal compares: of ``workload``, of model ``model`` (its broker
    variants included) or of group ``family``, the baseline left out; the best one counts."""

    workload: str
    model: str | None = None
    family: str | None = None

    def best(self, rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
        return _best([r for r in rows if self.matches(r)])

    def matches(self, row: Mapping[str, Any]) -> bool:
        about = facts(row)
        return (
            row["workload"] == self.workload
            and not about.baseline
            and not row.get("n_error")  # a model whose jobs failed is no result (failures.py)
            and self.model in (None, base_name(str(row["model"])))
            and self.family in (None, about.family)
        )


@dataclass(frozen=True)
class RatioGoal:
    """numerator median / denominator median <= limit (interval upper end <= bound)."""

    key: str
    goal: str
    limit: float
    numerator: Select
    denominator: Select
    bound: float | None = None

    def judge(self, rows: Sequence[Mapping[str, Any]]) -> Target:
        num, den = self.numerator.best(rows), self.denominator.best(rows)
        return _ratio_target(self.goal, self.limit, num, den, self.bound)


@dataclass(frozen=True)
class EfficiencyGoal:
    """The fastest model of ``workload`` (any model but the baseline) reaches at least
    ``minimum`` of the ideal: the baseline's median divided by the cores. Judged as the ratio
    fastest / ideal <= 1 / minimum, with its interval."""

    key: str
    goal: str
    workload: str
    minimum: float

    def judge(self, rows: Sequence[Mapping[str, Any]], cores: int) -> Target:
        best = Select(self.workload).best(rows)
        base = next((r for r in rows if r["workload"] == self.workload and facts(r).baseline), None)
        target = _ratio_target(self.goal, 1 / self.minimum, best, base, scale=1 / max(cores, 1))
        if target.get("value") is not None and target["value"] > 0:
            target["efficiency"] = 1 / target["value"]
        return target


#: The goals every bench run is judged on: the best Celery model against the best in-process
#: model of each workload (tuned variants included: a target met against a handicapped baseline
#: is not met), and how close the best CPU model comes to the ideal.
BENCH_GOALS = (
    RatioGoal(
        "cpu_celery_vs_in_process",
        "CPU seed: best Celery model / best in-process model",
        CPU_MAX_RATIO,
        Select("cpu", family="celery"),
        Select("cpu", family="in-process"),
        bound=CPU_MAX_RATIO_BOUND,
    ),
    RatioGoal(
        "io_celery_vs_in_process",
        "IO seed: best Celery model / best in-process model",
        IO_MAX_RATIO,
        Select("io", family="celery"),
        Select("io", family="in-process"),
    ),
)
EFFICIENCY_GOALS = (
    EfficiencyGoal(
        "cpu_best_efficiency",
        f"CPU seed: fastest model / ideal (sequential / cores), efficiency >= "
        f"{CPU_MIN_EFFICIENCY:.0%}",
        "cpu",
        CPU_MIN_EFFICIENCY,
    ),
)


def bench_goals(
    results: Sequence[Mapping[str, Any]], cores: int = 1, workload: str | None = None
) -> dict[str, Target]:
    """The CPU and IO ratio goals and the efficiency goal from one bench run's result rows (only
    those judged on ``workload`` when given)."""
    out = {
        goal.key: goal.judge(results)
        for goal in BENCH_GOALS
        if workload in (None, goal.numerator.workload)
    }
    out.update({
        goal.key: goal.judge(results, cores)
        for goal in EFFICIENCY_GOALS
        if workload in (None, goal.workload)
    })  # fmt: skip
    return out


def configuration_ratios(results: Sequence[Mapping[str, Any]]) -> dict[str, Target]:
    """Every row a ratio goal may take as its numerator (each Celery configuration of the run),
    against that goal's denominator (the best in-process row), judged by the goal's limits: what
    each configuration reaches, not only the best one. Keyed ``<goal key>:<model>``."""
    out: dict[str, Target] = {}
    for goal in BENCH_GOALS:
        den = goal.denominator.best(results)
        for row in results:
            if goal.numerator.matches(row):
                target = _ratio_target(goal.goal, goal.limit, row, den, goal.bound)
                out[f"{goal.key}:{row['model']}"] = target
    return out


def run_goals(doc: Mapping[str, Any]) -> dict[str, Target]:
    """``bench_goals`` of a results.json document."""
    return bench_goals(doc["results"], int(doc.get("metadata", {}).get("cpu_count") or 1))


def overhead_goals(overhead: Mapping[str, Any]) -> dict[str, Target]:
    """The enqueue, timing-capture and memory targets from a ``jobbench overhead`` run."""
    out: dict[str, Target] = {}
    goal = "producer enqueue rate at the automatic batch size (jobs/s)"
    enq = overhead.get("enqueue", {}).get("auto_batches_pipelined")
    if enq:
        repeats = len(enq["enqueue_s"]["values"])
        out["enqueue_jobs_per_s"] = {
            "goal": goal, "limit": ENQUEUE_MIN_JOBS_PER_S, "value": enq["jobs_per_s"],
            "met": enq["jobs_per_s"] >= ENQUEUE_MIN_JOBS_PER_S, "comparison": ">=",
            "repeats": repeats, "enough_repeats": repeats >= MIN_REPEATS,
        }  # fmt: skip
    else:
        out["enqueue_jobs_per_s"] = _unmeasured(goal, ENQUEUE_MIN_JOBS_PER_S, "not measured")
    goal = "throughput lost to timing capture, CPU seed sample (fraction)"
    cap = overhead.get("capture")
    if cap:
        repeats = len(cap["with_s"]["values"])
        value = float(cap["throughput_cost_fraction"])
        out["timing_capture_fraction"] = {
            "goal": goal, "limit": CAPTURE_MAX_FRACTION, "value": value,
            "met": value <= CAPTURE_MAX_FRACTION, "repeats": repeats,
            "enough_repeats": repeats >= MIN_REPEATS,
        }  # fmt: skip
    else:
        out["timing_capture_fraction"] = _unmeasured(goal, CAPTURE_MAX_FRACTION, "not measured")
    goal = "producer peak RSS, largest / smallest noop job count"
    mem = overhead.get("memory", {})
    if "peak_ratio" in mem:
        value = float(mem["peak_ratio"])
        hi = mem["probes"][str(mem["to_jobs"])]
        repeats = len(hi["rss_peak_mb"]["values"])
        out["producer_memory_ratio"] = {
            "goal": f"{goal} ({mem['from_jobs']:,} -> {mem['to_jobs']:,})",
            "limit": MEMORY_MAX_RATIO, "value": value, "met": value <= MEMORY_MAX_RATIO,
            "repeats": repeats, "enough_repeats": repeats >= MIN_REPEATS,
        }  # fmt: skip
    else:
        out["producer_memory_ratio"] = _unmeasured(
            goal, MEMORY_MAX_RATIO, "needs two job counts (--memory-jobs)"
        )
    return out


def goal_lines(targets: Mapping[str, Target]) -> list[str]:
    """One line per target: the goal, the figure against its limit, met / MISSED / unmeasured."""
    lines = []
    for name, t in targets.items():
        if t.get("met") is None:
            lines.append(f"target {name}: not measured ({t.get('why', '')})")
            continue
        op = t.get("comparison", "<=")
        value, limit = t["value"], t["limit"]
        shown = f"{value:,.0f}" if limit >= 100 else f"{value:.3f}"
        shown_limit = f"{limit:,.0f}" if limit >= 100 else f"{limit:g}"
        parts = []
        if "numerator" in t:
            n, d = t["numerator"], t["denominator"]
            parts.append(f"{n['model']} {n['median_s']:.3f} s / {d['model']} {d['median_s']:.3f} s")
        if not t.get("enough_repeats", True):
            parts.append(f"only {t.get('repeats')} repeats (want >= {MIN_REPEATS})")
        if t.get("noisy"):
            parts.append("noisy")
        if t.get("retried"):
            parts.append(f"{t['retried']} jobs needed retries")
        verdict = "met" if t["met"] else "MISSED"
        ci = t.get("ci") or {}
        if "verdict" in t:
            verdict = {"met": "met", "missed": "MISSED", "undecided": "undecided"}[t["verdict"]]
            if ci.get("low") is not None:
                shown += f" [95% CI {ci['low']:.3f}–{ci['high']:.3f}]"
                if t.get("bound", limit) != limit:
                    shown_limit += f" (CI <= {t['bound']:g})"
            if t["verdict"] == "undecided":
                n = t.get("repeats_to_decide")
                parts.append(f"~{n} repeats would decide it" if n else "too close to decide")
        if "efficiency" in t:
            parts.append(f"efficiency {t['efficiency']:.0%}")
        detail = f" ({'; '.join(parts)})" if parts else ""
        lines.append(f"target {name}: {shown} {op} {shown_limit}: {verdict}{detail}")
    return lines


def print_goals(targets: Mapping[str, Target], console: Console | None = None) -> None:
    """Print the targets this run could judge (nothing when it judged none)."""
    if not any(t.get("met") is not None for t in targets.values()):
        return
    console = console or make_console()
    for line in goal_lines(targets):
        style = "green" if line.endswith("met") or ": met (" in line else None
        if "MISSED" in line:
            style = "bold red"
        console.print(line, style=style, highlight=False, soft_wrap=True)
