"""The cost model: a model's wall time predicted from the probe, the machine's measured costs and
the model's execution shape, before the model runs. Pure functions: no clock, no I/O.

A job list is what the probe (``producer.probe``) measured, interpolated per job: each job's
wall time and the CPU time its thread held (the GIL share). A model is a ``CostShape``
(``producer.runners.base``): ``lanes`` tasks at once, ``cpu_lanes`` of them running Python at the
same time, the jobs cut into tasks by its ``schedule``, every task paying ``dispatch`` serially
and every job ``per_job``, arguments and results pickled when ``transfer``. Two things bound the
wall time, and the prediction is the larger:

* the **schedule**: tasks released one after another by the dispatcher (each release costs
  ``dispatch`` plus the pickling of its jobs' payload), each started on the first free lane and
  lasting its jobs' wall times plus ``per_job`` each; the wall time is the last task's end,
  so the *tail* of contiguous chunks of a rising cost shows up, as in the real pool;
* the **GIL**: every job's CPU share (and the per-job machinery, and the dispatch when it runs
  under the lanes' GILs: ``dispatch_on_lanes``) runs on ``cpu_lanes`` cores at most, whatever
  the lanes: threads overlap the waiting share only.

What is left out (docs/predictions.md): contention between processes for memory bandwidth and
turbo clocks, the target's own throughput limit, the producer's poll interval, GIL hand-over
costs beyond the measured per-task ones.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from producer.machine_costs import MachineCosts
from producer.runners.base import CostShape
from producer.schedule import contiguous_ranges, factoring_ranges, pool_map_chunksize

#: A term above this share of the prediction is what the explanation names.
DOMINANT_SHARE = 0.5
#: A tail (first lane idle to last task done) above this share of the wall time is named.
TAIL_SHARE = 0.10
#: The GIL is named when its serial part (CPU and dispatch on one core) is this share of the wall.
GIL_NAMED_SHARE = 0.25
#: A job whose thread holds the GIL less than this share of its wall time is "waiting".
WAITING_SHARE = 0.5


@dataclass(frozen=True)
class JobCosts:
    """Every job's wall and CPU seconds (interpolated from the probe) and its payload."""

    wall_s: Sequence[float]
    cpu_s: Sequence[float]
    #: Pickled argument + result bytes of a median job.
    transfer_bytes: int = 0
    #: The job's own slowdown with every core running it (the probe's), None: the machine's.
    parallel_slowdown: float | None = None
    #: The share of a job's CPU before its wait (the probe's trace), None: not known.
    cpu_before_wait: float | None = None
    #: A job's CPU with many in flight on threads ÷ alone (the probe's), None: not known.
    overlapped_cpu: float | None = None

    @property
    def n_jobs(self) -> int:
        return len(self.wall_s)

    @property
    def work_s(self) -> float:
        return math.fsum(self.wall_s)

    @property
    def cpu_share(self) -> float:
        work = self.work_s
        return min(1.0, math.fsum(self.cpu_s) / work) if work > 0 else 1.0


@dataclass(frozen=True)
class Prediction:
    """A model's predicted wall time, its terms (seconds) and the sentence that explains it."""

    predicted_s: float
    explanation: str
    terms: Mapping[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        return {
            "predicted_s": self.predicted_s,
            "explanation": self.explanation,
            "terms": dict(self.terms),
        }


def task_ranges(shape: CostShape, n_jobs: int) -> list[range]:
    """The job ids of each task the shape's schedule makes."""
    if n_jobs <= 0:
        return []
    if shape.schedule == "pool_map":
        return contiguous_ranges(n_jobs, pool_map_chunksize(n_jobs, shape.lanes))
    if shape.schedule == "factoring":
        return factoring_ranges(n_jobs, shape.lanes)
    if shape.schedule == "fixed":
        return contiguous_ranges(n_jobs, max(1, shape.chunk))
    return contiguous_ranges(n_jobs, 1)


def fmt_s(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def plural(word: str, n: int = 2) -> str:
    """``process`` -> ``processes``, ``thread`` -> ``threads`` (n != 1)."""
    if n == 1:
        return word
    if word.endswith("child"):
        return word + "ren"
    return word + ("es" if word.endswith(("s", "x", "sh", "ch")) else "s")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {plural(word, n)}"


def predict(jobs: JobCosts, shape: CostShape, costs: MachineCosts) -> Prediction:
    """The wall time ``shape`` should take on ``jobs`` with this machine's ``costs``."""
    n = jobs.n_jobs
    tasks = task_ranges(shape, n)
    dispatch_s = costs.get(shape.dispatch, shape.broker_url)
    per_job_s = costs.get(shape.per_job, shape.broker_url)
    pickle_s = jobs.transfer_bytes * costs.get("pickle_byte") if shape.transfer else 0.0
    lanes = max(1, min(shape.lanes, len(tasks) or 1))
    cpu_lanes = max(1, min(shape.cpu_lanes, lanes))
    # Cores running Python at once each go slower than one alone (load, SMT, shared turbo).
    # The job's own figure when the probe read it, else the machine's CPU spin.
    measured = jobs.parallel_slowdown or costs.get("parallel_slowdown") or 1.0
    slowdown = max(1.0, measured) if cpu_lanes > 1 else 1.0
    own_cpu = 0.0 if shape.per_job_replaces_cpu else 1.0
    job_s = [
        (w - c) + c * own_cpu * slowdown + per_job_s
        for w, c in zip(jobs.wall_s, jobs.cpu_s, strict=True)
    ]
    free = [0.0] * lanes
    release = 0.0
    ends: list[float] = []
    for task in tasks:
        release += dispatch_s + pickle_s * len(task)
        duration = math.fsum(job_s[i] for i in task)
        start = max(heapq.heappop(free), release)
        heapq.heappush(free, start + duration)
        ends.append(start + duration)
    makespan = max(ends, default=0.0)
    tail = makespan - min(free) if len(free) > 1 else 0.0
    contended = cpu_lanes < lanes
    # Jobs in flight together under one GIL run their CPU back to back, warmer than alone.
    warm = (jobs.overlapped_cpu or 1.0) if contended and own_cpu else 1.0
    cpu_total = (math.fsum(jobs.cpu_s) * own_cpu * warm + per_job_s * n) * slowdown
    # The dispatch shares the lanes' GILs when it runs beside them (threads of the dispatcher's
    # process, each Celery threads node's consumer): spread over those GILs with the jobs' CPU;
    # the last job to get the CPU still waits its own waiting share after it.
    waits = sorted(w - c for w, c in zip(jobs.wall_s, jobs.cpu_s, strict=True))
    wait_s = waits[len(waits) // 2] if waits else 0.0
    on_lanes = release if shape.dispatch_on_lanes else 0.0
    serial_s = (cpu_total + on_lanes) / cpu_lanes
    gil_s = serial_s + wait_s
    split = jobs.cpu_before_wait if own_cpu else None
    if split is not None:
        # The waits overlap the serial CPU but for one job's: the first job's wait ends before
        # every job's CPU after its wait has run, the last job's wait starts after every job's
        # CPU before it (and the dispatch, which comes first).
        cpus_sorted = sorted(jobs.cpu_s)
        job_cpu = (cpus_sorted[len(cpus_sorted) // 2] if cpus_sorted else 0.0) * warm * slowdown
        before = (cpu_total * split + on_lanes) / cpu_lanes
        after = cpu_total * (1.0 - split) / cpu_lanes
        gil_s = max(serial_s, before + wait_s + job_cpu * (1 - split),
                    job_cpu * split + wait_s + after)  # fmt: skip
    # The machine's cores run the jobs' CPU and the CPU every dispatch costs (``dispatch_cpu``:
    # a process pool's hand-over in the producer's threads and the children) at once.
    dispatch_cpu_s = costs.get(shape.dispatch_cpu) * len(tasks)
    cores_s = (cpu_total + dispatch_cpu_s) / max(1, shape.cores or cpu_lanes) + wait_s
    latency_s = costs.get(shape.latency, shape.broker_url)
    bound = max(makespan, gil_s if contended else 0.0, cores_s if dispatch_cpu_s else 0.0)
    predicted = bound + latency_s
    terms = {
        "work_s": jobs.work_s,
        "cpu_share": jobs.cpu_share,
        "makespan_s": makespan,
        "gil_s": gil_s,
        "serial_s": serial_s,
        "cores_s": cores_s,
        "dispatch_cpu_s": dispatch_cpu_s,
        "dispatch_s": release,
        "dispatch_each_s": dispatch_s,
        "per_job_s": per_job_s * n,
        "tail_s": tail,
        "n_tasks": float(len(tasks)),
        "lanes": float(lanes),
        "cpu_lanes": float(cpu_lanes),
        "parallel_slowdown": slowdown,
        "overlapped_cpu": warm,
        "wait_s": wait_s,
        "latency_s": latency_s,
    }
    if split is not None:
        terms["cpu_before_wait"] = split
    return Prediction(predicted, explain(jobs, shape, terms, predicted), terms)


def explain(
    jobs: JobCosts, shape: CostShape, terms: Mapping[str, float], predicted_s: float
) -> str:
    """One sentence from the prediction's terms: the term that decides it, with its figures."""
    n, kind = jobs.n_jobs, shape.kind
    lanes, cpu_lanes = int(terms["lanes"]), int(terms["cpu_lanes"])
    n_tasks = int(terms["n_tasks"])
    work, share = terms["work_s"], terms["cpu_share"]
    mean = work / n if n else 0.0
    latency = terms["latency_s"]
    machinery = terms["dispatch_s"] + terms["per_job_s"] + latency
    if latency >= DOMINANT_SHARE * predicted_s:
        return (
            f"the round trip dominates: the first message's trip to a worker and the last "
            f"result's back take {fmt_s(latency)} once, against {fmt_s(predicted_s - latency)} "
            f"for the {_plural(n, 'job')}."
        )
    if lanes == 1:
        extra = (
            f", plus {fmt_s(machinery)} of machinery ({_plural(n_tasks, 'task')})"
            if machinery > 0.05 * predicted_s
            else ""
        )
        return (
            f"one lane runs the {_plural(n, 'job')} one after another: {n:,} × {fmt_s(mean)} "
            f"of work = {fmt_s(work)}{extra}."
        )
    kinds = plural(kind)
    serial = terms["serial_s"]
    if (
        cpu_lanes < lanes
        and terms["gil_s"] >= terms["makespan_s"]
        and serial >= GIL_NAMED_SHARE * predicted_s
    ):
        gain = "gain nothing" if share >= WAITING_SHARE else "are held back by the GIL"
        split = terms.get("cpu_before_wait")
        if terms["wait_s"] <= 0.05 * predicted_s:
            after = ""
        elif split is not None:
            after = (
                f"; the waits ({fmt_s(terms['wait_s'])}) overlap it but for one job's, "
                f"{split:.0%} of a job's CPU coming before its wait"
            )
        else:
            after = f", then the last job waits {fmt_s(terms['wait_s'])}"
        return (
            f"{kinds} {gain}: {share:.0%} of this job holds the GIL, so {fmt_s(serial)} of CPU "
            f"and dispatch run on {_plural(cpu_lanes, 'core')} whatever the {lanes:,} "
            f"{kinds}{after}."
        )
    spare = terms["cores_s"] - terms["makespan_s"]
    if terms["dispatch_cpu_s"] > 0 and spare >= 0.05 * predicted_s:
        cores = shape.cores or cpu_lanes
        return (
            f"{_plural(cpu_lanes, kind)} share {_plural(cores, 'core')} with their hand-over: "
            f"{fmt_s(work)} of work and {fmt_s(terms['dispatch_cpu_s'])} of CPU for "
            f"{_plural(n_tasks, 'task')} ({fmt_s(terms['dispatch_cpu_s'] / max(n_tasks, 1))} "
            f"each, the producer's and the {plural(kind)}' side) run on them at once."
        )
    if terms["dispatch_s"] >= DOMINANT_SHARE * predicted_s:
        return (
            f"the per-task cost dominates: {_plural(n_tasks, 'task')} × "
            f"{fmt_s(terms['dispatch_each_s'])} dispatched one after another take "
            f"{fmt_s(terms['dispatch_s'])}, against {fmt_s(work / cpu_lanes)} of work per "
            f"{kind}."
        )
    if terms["per_job_s"] >= DOMINANT_SHARE * predicted_s:
        return (
            f"the per-job machinery dominates: {fmt_s(terms['per_job_s'] / max(n, 1))} per job "
            f"× {n:,} jobs = {fmt_s(terms['per_job_s'])} beside {fmt_s(work)} of work."
        )
    if share < WAITING_SHARE:
        rounds = math.ceil(n / lanes)
        return (
            f"{lanes:,} {kinds} overlap the waiting share ({1 - share:.0%} of a job): "
            f"{_plural(n, 'job')} of {fmt_s(mean)} in {_plural(rounds, 'round')} plus "
            f"{fmt_s(machinery)} of machinery."
        )
    if terms["tail_s"] >= TAIL_SHARE * predicted_s:
        return (
            f"{_plural(cpu_lanes, kind)} split {fmt_s(work)} of work, but the last of "
            f"{_plural(n_tasks, 'task')} ends {fmt_s(terms['tail_s'])} after the first {kind} "
            f"idles (the tail of {shape.schedule.replace('_', ' ')} chunks)."
        )
    slower = terms["parallel_slowdown"]
    pace = f" ({slower:.2f}× slower each than alone)" if slower > 1.05 else ""
    return (
        f"{_plural(cpu_lanes, kind)} run {fmt_s(work)} of work in parallel{pace}: "
        f"{fmt_s(work * slower / cpu_lanes)} each, plus {fmt_s(machinery)} of machinery."
    )


def error_pct(predicted_s: float, measured_s: float) -> float | None:
    """(predicted - measured) / measured, in percent."""
    if measured_s <= 0:
        return None
    return (predicted_s - measured_s) / measured_s * 100.0


def with_cpu_share(jobs: JobCosts, share: float) -> JobCosts:
    """The same jobs had ``share`` of each job's wall time held the GIL (a what-if)."""
    return replace(jobs, cpu_s=[w * share for w in jobs.wall_s])


def scaled(jobs: JobCosts, factor: float) -> JobCosts:
    """The same jobs ``factor`` times as long (a what-if on the job size)."""
    return replace(
        jobs, wall_s=[w * factor for w in jobs.wall_s], cpu_s=[c * factor for c in jobs.cpu_s]
    )
