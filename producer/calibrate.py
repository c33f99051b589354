"""Fidelity of the harness: each in-process model against its bare reference, same machine, same
jobs, same target, repeats interleaved (``jobbench calibrate``; ``jobbench bench --calibrate``).

The harness side is the model's runner exactly as the bench drives it (started and warmed up
outside the timed window, ``run`` timed with ``perf_counter``); the reference side is the model's
``reference()`` (the few lines a user writes, library defaults) timed in a fresh interpreter
(``producer.references``). The ratio harness / reference, with its paired bootstrap interval,
says what jobbench's records and bookkeeping cost a model: the goal is at most ``MAX_RATIO``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from producer.references import freeze_heap, has_reference, run_reference
from producer.runners import JobBatch, RunnerOptions, registry
from producer.services import run_target
from producer.stats import judge, ratio_ci, repeats_to_decide, summarize
from shared.keys import new_run_id
from shared.workloads import Workload, cpu_arg

#: Harness median / reference median a model may reach: the harness costs at most 5 %.
MAX_RATIO = 1.05
#: Schema of a calibration document (``calibrate.json``).
SCHEMA = 1
#: Untimed harness runs of a few jobs before the repeats (as the bench's warm-up).
WARMUP_JOBS = 50

Progress = Callable[[str], None]


def calibrated_models() -> list[str]:
    """Every model available here that has a bare reference, in display order."""
    names = [n for n in registry.names() if registry.load(n).available() is None]
    return registry.ordered([n for n in names if has_reference(n)])


@dataclass(frozen=True)
class CalibrationSpec:
    models: tuple[str, ...]
    workloads: tuple[Workload, ...]
    io_jobs: int
    cpu_jobs: int
    latency_ms: float
    repeat: int


def _args(workload: Workload, n_jobs: int, url: str) -> list[int | str]:
    return [cpu_arg(i) for i in range(n_jobs)] if workload == "cpu" else [url] * n_jobs


@contextlib.contextmanager
def _url(spec: CalibrationSpec) -> Iterator[str]:
    if "io" not in spec.workloads:
        yield ""
        return
    with run_target(spec.latency_ms) as target:
        yield target.url


def _pair(model: str, workload: Workload, args: list[int | str], repeat: int,
          say: Progress) -> tuple[list[float], list[float]]:  # fmt: skip
    """(harness walls, reference walls), one of each per repeat, interleaved."""
    cls = registry.load(model)
    harness: list[float] = []
    reference: list[float] = []
    with cls(RunnerOptions()) as runner:
        runner.start(workload)
        runner.run(JobBatch("calibrate", workload, args[:WARMUP_JOBS], -1))
        for rep in range(repeat):
            say(f"{workload}: {model} repeat {rep + 1}/{repeat}")
            freeze_heap()
            t0 = time.perf_counter()
            runner.run(JobBatch("calibrate", workload, args, rep))
            harness.append(time.perf_counter() - t0)
            reference.extend(run_reference(model, workload, args, repeat=1))
    return harness, reference


def calibrate(spec: CalibrationSpec, say: Progress = lambda _m: None) -> dict[str, Any]:
    """Measure every (model, workload) of ``spec``; the calibration document."""
    started = datetime.now(UTC).isoformat()
    rows = []
    with _url(spec) as url:
        for workload in spec.workloads:
            n_jobs = spec.io_jobs if workload == "io" else spec.cpu_jobs
            args = _args(workload, n_jobs, url)
            for model in spec.models:
                if workload not in registry.load(model).workloads:
                    continue
                harness, reference = _pair(model, workload, args, spec.repeat, say)
                ci = ratio_ci(harness, reference)
                verdict = judge(ci, MAX_RATIO)
                rows.append({
                    "model": model, "workload": workload, "n_jobs": n_jobs,
                    "harness_s": summarize(harness), "reference_s": summarize(reference),
                    "ratio": ci.to_json(), "verdict": verdict,
                    "repeats_to_decide": (
                        repeats_to_decide(ci, MAX_RATIO) if verdict == "undecided" else None
                    ),
                })  # fmt: skip
    return {
        "schema": SCHEMA,
        "kind": "calibration",
        "run_id": new_run_id(),
        "started_at": started,
        "finished_at": datetime.now(UTC).isoformat(),
        "python": sys.version.split()[0],
        "limit": MAX_RATIO,
        "config": {
            "workloads": list(spec.workloads),
            "io_jobs": spec.io_jobs,
            "cpu_jobs": spec.cpu_jobs,
            "latency_ms": spec.latency_ms,
            "repeat": spec.repeat,
        },
        "results": rows,
    }


def calibration_lines(doc: dict[str, Any]) -> list[str]:
    """One line per (model, workload): harness / reference with its interval and verdict."""
    out = []
    for r in doc["results"]:
        ci = r["ratio"]
        interval = "" if ci["low"] is None else f" [95% CI {ci['low']:.3f}–{ci['high']:.3f}]"
        decide = f", ~{r['repeats_to_decide']} repeats would decide" if r.get(
            "repeats_to_decide") else ""  # fmt: skip
        out.append(
            f"{r['workload']:<3} {r['model']:<32} harness {r['harness_s']['median']:.3f} s / "
            f"reference {r['reference_s']['median']:.3f} s = {ci['point']:.3f}{interval} "
            f"<= {doc['limit']:g}: {r['verdict']}{decide}"
        )
    return out
