"""``jobbench perf`` (``make bench-perf``): the performance goals judged over K independent runs.

One run's ratio comes with a bootstrap interval over its interleaved repeats, but what moves a
ratio *between* runs (core placement, the machine's other load, frequency) only shows across
runs: each run here is a full ``jobbench bench`` of the goal's candidate models (written to
``--out`` like any run), and the summary gives every goal's ratio per run, with its interval and
verdict, and the run-to-run spread of the ratios. The goals agree across runs or say they do not.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from producer.bench import Bench, BenchConfig
from producer.goals import configuration_ratios
from producer.results import JOBS_FILE, update_latest, write_jobs_csv, write_run
from shared.keys import new_run_id
from shared.settings import Settings
from shared.workloads import Workload

#: Schema of a perf summary (``perf-<id>.json``).
SCHEMA = 1

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PerfPlan:
    runs: int
    #: (workload, models) benched in each run, each as a run of its own.
    parts: tuple[tuple[Workload, tuple[str, ...]], ...]
    base: BenchConfig


def _summary(key: str, per_run: Sequence[dict[str, Any]]) -> dict[str, Any]:
    values = [t["value"] for t in per_run if t.get("value") is not None]
    verdicts = {t.get("verdict") for t in per_run if t.get("value") is not None}
    if not values:
        return {"goal": key, "runs": len(per_run), "verdict": "unmeasured"}
    median = statistics.median(values)
    agreed = verdicts.pop() if len(verdicts) == 1 else "undecided (runs disagree)"
    return {
        "goal": per_run[0].get("goal", key),
        "limit": per_run[0].get("limit"),
        "runs": len(values),
        "values": values,
        "median": median,
        "min": min(values),
        "max": max(values),
        "spread_rel": (max(values) - min(values)) / median if median > 0 else None,
        "verdict": agreed,
    }


def run_perf(
    plan: PerfPlan, settings: Settings, progress: Progress | None = None
) -> dict[str, Any]:
    """Every run of ``plan``, written to ``plan.base.out_dir``; the summary document."""
    started = datetime.now(UTC).isoformat()
    runs: list[dict[str, Any]] = []
    for k in range(plan.runs):
        for workload, models in plan.parts:
            config = replace(plan.base, models=models, workloads=(workload,))
            bench = Bench(config, settings, progress)
            doc = bench.run()
            run_dir = write_run(config.out_dir, doc)
            write_jobs_csv(run_dir / JOBS_FILE, bench.job_rows())
            update_latest(config.out_dir, run_dir)  # last: every file of the run is written
            runs.append({
                "run": k, "workload": workload, "run_id": doc["run_id"], "targets": doc["targets"],
                "configurations": configuration_ratios(doc["results"]),
                "results": [
                    {"model": r["model"], "median_s": r["wall_s"]["median"],
                     "efficiency": r.get("efficiency"),
                     "tail_share": (r.get("balance", {}).get("tail_share") or {}).get("median")}
                    for r in doc["results"]
                ],
            })  # fmt: skip
    keys = dict.fromkeys(k for r in runs for k, t in r["targets"].items() if t.get("value"))
    goals = {k: _summary(k, [r["targets"][k] for r in runs if k in r["targets"]]) for k in keys}
    names = dict.fromkeys(k for r in runs for k in r.get("configurations", {}))
    configurations = {
        k: _summary(k, [r["configurations"][k] for r in runs if k in r["configurations"]])
        for k in names
    }
    return {
        "schema": SCHEMA,
        "kind": "perf",
        "perf_id": new_run_id(),
        "started_at": started,
        "finished_at": datetime.now(UTC).isoformat(),
        "runs": runs,
        "goals": goals,
        "configurations": configurations,
    }


def perf_lines(doc: dict[str, Any]) -> list[str]:
    """Per goal: each run's ratio with its interval and verdict, then the run-to-run spread."""
    out = []
    for key, summary in doc["goals"].items():
        out.append(f"{key}: {summary['goal']}")
        for r in doc["runs"]:
            t = r["targets"].get(key)
            if not t or t.get("value") is None:
                continue
            ci = t.get("ci") or {}
            interval = "" if ci.get("low") is None else f" [{ci['low']:.3f}–{ci['high']:.3f}]"
            out.append(
                f"  run {r['run'] + 1} ({r['run_id']}): {t['value']:.3f}{interval} "
                f"{t['numerator']['model']} / {t['denominator']['model']}: {t.get('verdict')}"
            )
        if summary.get("values"):
            spread = summary["spread_rel"]
            shown = "–" if spread is None else f"{spread:.1%}"
            out.append(
                f"  across {summary['runs']} runs: median {summary['median']:.3f}, "
                f"{summary['min']:.3f}–{summary['max']:.3f} (spread {shown}) -> "
                f"{summary['verdict']}"
            )
    configurations = doc.get("configurations") or {}
    if configurations:
        out.append("each Celery configuration / the best in-process model of its run:")
    for key, summary in configurations.items():
        if not summary.get("values"):
            continue
        per_run = []
        for r in doc["runs"]:
            t = (r.get("configurations") or {}).get(key)
            if t and t.get("value") is not None:
                ci = t.get("ci") or {}
                shown = "" if ci.get("low") is None else f" [{ci['low']:.3f}–{ci['high']:.3f}]"
                per_run.append(f"{t['value']:.3f}{shown}")
        goal_key, model = key.split(":", 1)
        out.append(
            f"  {model} ({goal_key}, limit {summary['limit']:g}): {', '.join(per_run)}; "
            f"median {summary['median']:.3f} -> {summary['verdict']}"
        )
    return out
