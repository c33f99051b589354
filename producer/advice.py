"""The verdict per job: which model to use on this machine, by how much it wins and how sure that
is, what Celery costs over the best in-process model and why, and when the answer would change.
Every sentence is built from measured medians and the cost model's terms and what-ifs
(``producer.costmodel``); nothing here is a fixed claim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from producer.costmodel import fmt_s

#: Two models within this ratio "match" (the what-if on core counts).
MATCH_RATIO = 1.05
#: Medians this far apart with overlapping repeats still make a "likely" winner.
LIKELY_MARGIN = 1.10


@dataclass(frozen=True)
class Entry:
    """One model of one job, as the advice sees it."""

    model: str
    predicted_s: float
    #: Measured median and the range of the repeats (None: not measured).
    measured_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    repeats: int = 0
    #: Whether jobs go through a broker (the shape names one): "Celery" in the text.
    brokered: bool = False
    terms: Mapping[str, float] = field(default_factory=dict)
    #: Jobs per task (message) and the untimed start-up figure of the model, if any.
    chunk: int = 1
    untimed_start_s: float = 0.0


@dataclass(frozen=True)
class WhatIfs:
    """The cost model's answers for other machines and other jobs."""

    #: cores -> model -> predicted seconds on a machine with that many cores.
    at_cores: Mapping[int, Mapping[str, float]] = field(default_factory=dict)
    #: The GIL share below which the best thread model would match the winner (None: no thread
    #: model, or the winner is one).
    gil_share_to_match: float | None = None
    thread_model: str | None = None


def _wall(e: Entry) -> float:
    return e.measured_s if e.measured_s is not None else e.predicted_s


def sureness(best: Entry, runner_up: Entry | None) -> str:
    if runner_up is None:
        return "the only model run"
    margin = _wall(runner_up) / _wall(best) if _wall(best) > 0 else float("inf")
    if best.measured_s is None or runner_up.measured_s is None:
        return f"predicted only ({margin:.2f}× by the cost model)"
    if min(best.repeats, runner_up.repeats) < 2:
        return "indicative: one repeat each"
    if best.max_s is not None and runner_up.min_s is not None and best.max_s < runner_up.min_s:
        return f"sure: every repeat of {best.model} beat every repeat of {runner_up.model}"
    if margin >= LIKELY_MARGIN:
        return f"likely: medians {margin:.2f}× apart, but some repeats overlap"
    return f"not sure: within {margin - 1:.0%} with overlapping repeats"


def _celery_why(c: Entry) -> str:
    t = c.terms
    n_tasks = int(t.get("n_tasks", 0))
    parts = [
        f"{n_tasks:,} message{'s' if n_tasks != 1 else ''} of {c.chunk:,} job"
        f"{'s' if c.chunk != 1 else ''} × {fmt_s(t.get('dispatch_each_s', 0.0))} each = "
        f"{fmt_s(t.get('dispatch_s', 0.0))} on the consumer",
        f"{fmt_s(t.get('per_job_s', 0.0))} of per-job machinery",
    ]
    if t.get("tail_s", 0.0) > 0.05 * c.predicted_s:
        parts.append(f"a {fmt_s(t['tail_s'])} tail")
    start = (
        f"; its worker start ({fmt_s(c.untimed_start_s)}) is outside the timed window"
        if c.untimed_start_s
        else ""
    )
    return ", ".join(parts) + start


def _core_changes(entries: Sequence[Entry], what: WhatIfs, best: Entry) -> list[str]:
    """What more cores would change, by the cost model: predictions compared with predictions
    (never with this machine's measurements, which the model does not claim to hit exactly)."""
    out = []
    here = {e.model: e.predicted_s for e in entries}
    winner_here = min(here, key=here.__getitem__)
    for cores in sorted(what.at_cores):
        predicted = what.at_cores[cores]
        if not predicted:
            continue
        winner = min(predicted, key=predicted.__getitem__)
        if winner != winner_here:
            out.append(
                f"with ≥ {cores} cores the cost model expects {winner} to win "
                f"({fmt_s(predicted[winner])} against "
                f"{fmt_s(predicted.get(winner_here, 0.0))} for {winner_here})"
            )
            break
    celery = [e.model for e in entries if e.brokered]
    local = [e.model for e in entries if not e.brokered]
    for cores in sorted(what.at_cores):
        predicted = what.at_cores[cores]
        c = [m for m in celery if m in predicted]
        i = [m for m in local if m in predicted]
        if not c or not i:
            continue
        cb = min(c, key=predicted.__getitem__)
        ib = min(i, key=predicted.__getitem__)
        if predicted[cb] <= MATCH_RATIO * predicted[ib]:
            out.append(f"with ≥ {cores} cores Celery {cb} would match {ib}")
            break
    if not out and what.at_cores:
        top = max(what.at_cores)
        out.append(f"up to {top} cores the cost model keeps {best.model} ahead")
    return out


def advise(workload: str, entries: Sequence[Entry], what: WhatIfs) -> dict[str, Any]:
    """The advice for one job: ``lines`` (markdown sentences) and the figures behind them."""
    if not entries:
        return {"workload": workload, "lines": [], "best": None}
    ranked = sorted(entries, key=_wall)
    best = ranked[0]
    runner_up = ranked[1] if len(ranked) > 1 else None
    margin = _wall(runner_up) / _wall(best) if runner_up and _wall(best) > 0 else None
    basis = "measured" if best.measured_s is not None else "predicted"
    lines = [
        f"**Use `{best.model}`** on this machine: {fmt_s(_wall(best))} {basis}"
        + (f", {margin:.2f}× faster than `{runner_up.model}`" if runner_up and margin else "")
        + f" ({sureness(best, runner_up)})."
    ]
    celery = [e for e in ranked if e.brokered]
    local = [e for e in ranked if not e.brokered]
    if celery and local:
        c, i = celery[0], local[0]
        extra = _wall(c) - _wall(i)
        ratio = _wall(c) / _wall(i) if _wall(i) > 0 else float("inf")
        verb = "costs" if extra > 0 else "saves"
        lines.append(
            f"Celery's best, `{c.model}`, {verb} {fmt_s(abs(extra))} ({ratio:.2f}×) against "
            f"`{i.model}`: {_celery_why(c)}."
        )
        each = c.terms.get("dispatch_each_s", 0.0)
        cpu_lanes = max(1.0, c.terms.get("cpu_lanes", 1.0))
        if each > 0:
            unbatched = each * cpu_lanes
            batched = (
                f"; batches of {c.chunk:,} (this run's) lower that to "
                f"~{fmt_s(unbatched / c.chunk)} per job"
                if c.chunk > 1
                else ""
            )
            lines.append(
                f"Below ~{fmt_s(unbatched)} per job Celery's per-message cost dominates unless "
                f"batched ({int(cpu_lanes)} slot{'s' if cpu_lanes != 1 else ''} × "
                f"{fmt_s(each)} a message){batched}."
            )
    changes = _core_changes(ranked, what, best)
    if what.gil_share_to_match is not None and what.thread_model:
        changes.append(
            f"{what.thread_model} would match {best.model} only if under "
            f"{what.gil_share_to_match:.0%} of a job held the GIL (now "
            f"{best.terms.get('cpu_share', 0.0):.0%})"
        )
    if changes:
        lines.append("The answer changes " + "; ".join(changes) + ".")
    return {
        "workload": workload,
        "best": best.model,
        "margin": margin,
        "basis": basis,
        "lines": lines,
    }
