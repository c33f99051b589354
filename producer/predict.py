"""What the bench asks of the cost model, in three calls: ``probe`` a job list before any model
runs (untimed), ``predict`` each model before it runs, ``annotate`` the finished document with
the probe, the machine costs, each row's prediction and its error, and the advice per job.

A job is a callable and its list of calls (``fn(*call)``): the seed workloads pass the job entry
every in-process model calls (``job_calls``), for the seed's jobs and a user's alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from producer import costmodel, machine_costs
from producer.advice import Entry, WhatIfs, advise
from producer.costmodel import JobCosts, Prediction
from producer.machine_costs import MachineCosts
from producer.probe import (
    DEFAULT_BUDGET_S,
    Probe,
    cpu_before_wait,
    measure_slowdown,
    overlapped_cpu,
    probe,
    slowdown_calls,
)
from producer.runners.base import CostShape, Runner, usable_cpus
from producer.runners.jobs import job_args, run_job
from shared.workloads import ResultMode, Workload

#: Core counts the advice asks the cost model about (those above this machine's).
CORE_STEPS = (4, 8, 16, 32, 64)
#: Bisection steps for the GIL share a thread model would need to match the winner.
SHARE_STEPS = 12
#: The model name the probe's job records carry.
PROBE_MODEL = "probe"


def job_calls(
    workload: Workload, args: Sequence[Any], mode: ResultMode
) -> tuple[Callable[..., Any], list[tuple[Any, ...]]]:
    """A workload's jobs (the seed's or a user's: ``shared.jobspec``) as (callable, calls):
    what ``sequential`` runs, job by job, each handing back what a process pool ships."""
    return run_job, [(job,) for job in job_args(PROBE_MODEL, workload, list(args), mode)]


def job_costs(p: Probe) -> JobCosts:
    walls, cpus = p.costs()
    slowdown = None if p.slowdown is None else p.slowdown.value
    return JobCosts(
        wall_s=walls, cpu_s=cpus, transfer_bytes=p.transfer_pickle_bytes,
        parallel_slowdown=slowdown, cpu_before_wait=p.cpu_before_wait,
        overlapped_cpu=p.overlapped_cpu,
    )  # fmt: skip


class Predictor:
    """The bench's predictions of one run."""

    def __init__(
        self,
        out_dir: Path,
        redis_url: str,
        budget_s: float = DEFAULT_BUDGET_S,
        remeasure: bool = False,
    ) -> None:
        self.out_dir = out_dir
        #: Measure the machine costs again, once, instead of using cached figures.
        self.remeasure = remeasure
        self.redis_url = redis_url
        self.budget_s = budget_s
        self.probes: dict[str, Probe] = {}
        self._jobs: dict[str, JobCosts] = {}
        self.shapes: dict[tuple[str, str], CostShape] = {}
        self.predictions: dict[tuple[str, str], Prediction] = {}
        self.predicted_at_ns: dict[tuple[str, str], int] = {}
        self._at_cores: dict[tuple[str, str], dict[int, CostShape]] = {}
        self.costs = MachineCosts()

    def probe(self, workload: str, fn: Callable[..., Any], calls: Sequence[Sequence[Any]]) -> Probe:
        """Probe ``workload``'s job list (untimed, bounded by the budget) and read, for a job
        that mostly holds the CPU, its own slowdown with every core running it, for one that
        mostly waits, how its CPU falls around the wait."""
        p = probe(fn, calls, budget_s=self.budget_s)
        # The cost model's own line between the two: below it, a job's waiting hides its
        # slowdown (its wall times barely move) and the machine's spin figure stands instead.
        if p.cpu_share >= costmodel.WAITING_SHARE:
            slowdown = measure_slowdown(fn, slowdown_calls(p, calls), usable_cpus())
            p = dataclasses.replace(p, slowdown=slowdown)
        else:
            p = dataclasses.replace(
                p, cpu_before_wait=cpu_before_wait(fn, calls, p),
                overlapped_cpu=overlapped_cpu(fn, calls, p),
            )  # fmt: skip
        self.probes[workload] = p
        self._jobs[workload] = job_costs(p)
        return p

    def _ensure(self, shapes: Sequence[CostShape]) -> MachineCosts:
        needed = machine_costs.shape_needs(shapes)
        if self.costs.missing(needed) or "redis_rtt" not in self.costs.figures:
            self.costs = machine_costs.ensure(
                self.out_dir, needed, self.redis_url, refresh=self.remeasure
            )
            self.remeasure = False
        return self.costs

    def predict(self, workload: str, model: str, runner: Runner, n_jobs: int) -> Prediction:
        """``model``'s wall time on ``workload``, before it runs (the probe first)."""
        jobs = self._jobs[workload]
        shape = runner.cost_shape(workload, n_jobs)
        cores = usable_cpus()
        others = {c: runner.cost_shape(workload, n_jobs, cores=c) for c in CORE_STEPS if c > cores}
        costs = self._ensure([shape, *others.values()])
        prediction = costmodel.predict(jobs, shape, costs)
        key = (workload, model)
        self.shapes[key] = shape
        self._at_cores[key] = others
        self.predictions[key] = prediction
        self.predicted_at_ns[key] = time.time_ns()
        return prediction

    # --- after the run --------------------------------------------------------------------------

    def _what_ifs(self, workload: str, best: str | None, models: Sequence[str]) -> WhatIfs:
        jobs = self._jobs[workload]
        at: dict[int, dict[str, float]] = {}
        for model in models:
            for cores, shape in self._at_cores.get((workload, model), {}).items():
                at.setdefault(cores, {})[model] = costmodel.predict(
                    jobs, shape, self.costs
                ).predicted_s
        share, thread = None, None
        best_shape = self.shapes.get((workload, best or ""))
        if best is not None and best_shape is not None and best_shape.cpu_lanes > 1:
            threads = [m for m in models
                       if self.shapes[(workload, m)].cpu_lanes == 1
                       and self.shapes[(workload, m)].lanes > 1]  # fmt: skip
            if threads:
                target = self.predictions[(workload, best)].predicted_s
                thread = min(threads, key=lambda m: self.predictions[(workload, m)].predicted_s)
                thread_shape = self.shapes[(workload, thread)]
                share = gil_share_to_match(jobs, thread_shape, self.costs, target)
        return WhatIfs(at_cores=at, gil_share_to_match=share, thread_model=thread)

    def annotate(self, doc: dict[str, Any]) -> None:
        """Add ``probe``, ``machine_costs``, each row's ``prediction`` and ``advice``."""
        doc["probe"] = {w: p.summary() for w, p in self.probes.items()}
        doc["machine_costs"] = self.costs.summary()
        by_workload: dict[str, list[Entry]] = {}
        for row in doc.get("results", []):
            key = (str(row["workload"]), str(row["model"]))
            prediction = self.predictions.get(key)
            if prediction is None:
                continue
            wall = row["wall_s"]
            measured = float(wall["median"])
            row["prediction"] = {
                **prediction.summary(),
                "error_pct": costmodel.error_pct(prediction.predicted_s, measured),
                "predicted_at_ns": self.predicted_at_ns[key],
            }
            shape = self.shapes[key]
            by_workload.setdefault(key[0], []).append(
                Entry(
                    model=key[1], predicted_s=prediction.predicted_s, measured_s=measured,
                    min_s=float(wall["min"]), max_s=float(wall["max"]),
                    repeats=int(row.get("repeats", 1)), brokered=bool(shape.broker_url),
                    terms=prediction.terms,
                    chunk=max(1, round(len(self._jobs[key[0]].wall_s)
                                       / max(1.0, prediction.terms["n_tasks"]))),
                    untimed_start_s=self.costs.get(shape.untimed_start, shape.broker_url),
                )
            )  # fmt: skip
        doc["advice"] = {}
        for workload, entries in by_workload.items():
            best = min(entries, key=lambda e: e.measured_s or e.predicted_s).model
            what = self._what_ifs(workload, best, [e.model for e in entries])
            doc["advice"][workload] = advise(workload, entries, what)


def gil_share_to_match(
    jobs: JobCosts, shape: CostShape, costs: MachineCosts, target_s: float
) -> float | None:
    """The GIL share under which ``shape`` would be predicted no slower than ``target_s``
    (bisection on the cost model; None: not even at 0 %)."""
    if costmodel.predict(costmodel.with_cpu_share(jobs, 0.0), shape, costs).predicted_s > target_s:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(SHARE_STEPS):
        mid = (lo + hi) / 2
        predicted = costmodel.predict(costmodel.with_cpu_share(jobs, mid), shape, costs)
        if predicted.predicted_s <= target_s:
            lo = mid
        else:
            hi = mid
    return lo


def prediction_errors(doc: Mapping[str, Any]) -> list[tuple[str, str, float, float, float | None]]:
    """(workload, model, predicted s, measured s, error %) of every predicted row."""
    out = []
    for row in doc.get("results", []):
        pred = row.get("prediction")
        if pred:
            out.append((str(row["workload"]), str(row["model"]), float(pred["predicted_s"]),
                        float(row["wall_s"]["median"]), pred.get("error_pct")))  # fmt: skip
    return out


#: The goal of issue 16: every model's prediction within this share of its measurement.
GOAL_ERROR_PCT = 25.0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m producer.predict [RUN_DIR_OR_RESULTS_JSON]``: every row's prediction error
    of a finished run (default ``results/latest``) and how many are within the goal."""
    parser = argparse.ArgumentParser(prog="python -m producer.predict", description=main.__doc__)
    parser.add_argument("run", nargs="?", default="results/latest", help="run dir or results.json")
    args = parser.parse_args(argv)
    path = Path(args.run)
    doc = json.loads((path / "results.json" if path.is_dir() else path).read_text())
    errors = prediction_errors(doc)
    if not errors:
        print(f"{path}: no predictions (run with the cost model on)", file=sys.stderr)
        return 2
    within = 0
    print(f"{'workload':8} {'model':34} {'predicted s':>11} {'measured s':>10} {'error':>7}")
    for workload, model, predicted, measured, err in errors:
        ok = err is not None and abs(err) <= GOAL_ERROR_PCT
        within += ok
        shown = "-" if err is None else f"{err:+.0f}%"
        mark = "" if ok else "  <- outside ±25%"
        print(f"{workload:8} {model:34} {predicted:11.3f} {measured:10.3f} {shown:>7}{mark}")
    print(f"{within} of {len(errors)} predictions within ±{GOAL_ERROR_PCT:.0f}% of the median")
    return 0


if __name__ == "__main__":
    sys.exit(main())
