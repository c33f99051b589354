"""The probe: a short, untimed, sequential sample of a job list, run before any model.

It measures what the cost model (``producer.costmodel``) needs to predict every model's wall
time: each sampled job's wall time (``perf_counter``) and the calling thread's CPU time
(``time.thread_time``: the share of the job that holds the GIL, as far as one thread can tell),
and the size of its arguments and result once serialised (pickle, what a process pool ships;
JSON, what a Celery message carries).

The sample is *stratified over the job list*, not its first jobs: job costs may grow with the
index (the seed's sieve up to n = 1000 + index), so the probe visits the indices in van der
Corput order (0, 1/2, 1/4, 3/4, ... of the list): whenever the budget stops it, the jobs it ran
cover the whole range evenly, and ``cost_at`` interpolates between them.

A job is anything callable: ``fn(*call)`` for each ``call`` of ``calls`` (the seed workloads
pass ``producer.runners.jobs.run_job`` and one ``JobArgs`` per job; a user's job its own
function and argument tuples).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import multiprocessing
import pickle
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

#: Seconds of jobs the probe samples at most (untimed, but every run pays it once per workload).
DEFAULT_BUDGET_S = 1.5
#: Jobs the probe samples at most (results.json keeps each). The budget is the bound that matters
#: for jobs above ~0.3 ms: a cap of 400 stopped the seed's CPU sample (~0.7 ms a job) after
#: 0.28 s, a moment short enough for one burst of other work on the machine to move every
#: prediction by 10-50 % (each sampled job stands for ~40 of the run's).
DEFAULT_MAX_JOBS = 5000
#: Seconds of untimed jobs before the sample (at least one job): the first jobs of a fresh
#: process run slower than the same jobs in a run (caches, allocator, the interpreter's
#: specialisation), and a single small job did not warm them.
WARMUP_S = 0.2
#: Jobs the probe always runs, whatever the budget (a sample of one says nothing of a spread).
MIN_JOBS = 3
#: Seconds of sampled jobs (one process, alone) each side of a slowdown round runs.
SLOWDOWN_SAMPLE_S = 0.15
#: Rounds of the sample alone and at once (interleaved); the best of each side is kept.
SLOWDOWN_ROUNDS = 5
#: Jobs whose CPU is traced around their wait (``cpu_before_wait``), and the trace's interval.
SPLIT_JOBS = 5
SPLIT_POLL_S = 2e-4
#: Threads that run sampled jobs at once for ``overlapped_cpu``, and its rounds (the median kept).
OVERLAP_THREADS = 20
OVERLAP_ROUNDS = 3
#: Below this CPU per sampled job, a thread's own start and join (~80 µs here) would be most
#: of what ``overlapped_cpu`` reads: not measured.
OVERLAP_MIN_CPU_S = 2e-4
#: A stretch of the trace is waiting when the job's thread held the CPU less than this share of it.
IDLE_SHARE = 0.1


@dataclass(frozen=True)
class ProbeSample:
    """One sampled job."""

    index: int
    wall_s: float
    cpu_s: float
    arg_pickle_bytes: int
    result_pickle_bytes: int
    #: None when the value is not JSON-serialisable.
    arg_json_bytes: int | None
    result_json_bytes: int | None


@dataclass(frozen=True)
class Slowdown:
    """How much longer the CPU of a sample of the job takes with one process per core running
    it at once than in one process alone: the best of ``rounds`` interleaved rounds each way."""

    value: float
    alone_s: float
    together_s: float
    cpu_s: float
    n_jobs: int
    processes: int
    rounds: int

    def summary(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Probe:
    """What the probe measured on a job list of ``n_jobs`` jobs."""

    n_jobs: int
    samples: tuple[ProbeSample, ...]
    budget_s: float
    #: Seconds the probe took (the warm-up included).
    took_s: float
    #: The job's own ``parallel_slowdown`` (``measure_slowdown``), None when not measured.
    slowdown: Slowdown | None = None
    #: The share of a job's CPU spent before its longest wait (``cpu_before_wait``), None when
    #: not measured (a job that mostly holds the CPU) or no job waited.
    cpu_before_wait: float | None = None
    #: A job's CPU with ``OVERLAP_THREADS`` of them in flight on threads ÷ its CPU alone
    #: (``overlapped_cpu``), None when not measured.
    overlapped_cpu: float | None = None

    @property
    def n_sampled(self) -> int:
        return len(self.samples)

    def _walls(self) -> list[float]:
        return [s.wall_s for s in self.samples]

    @property
    def wall_median_s(self) -> float:
        return statistics.median(self._walls())

    @property
    def wall_p10_s(self) -> float:
        return _quantile(self._walls(), 0.10)

    @property
    def wall_p90_s(self) -> float:
        return _quantile(self._walls(), 0.90)

    @property
    def wall_mean_s(self) -> float:
        return statistics.fmean(self._walls())

    @property
    def wall_cv(self) -> float:
        """Coefficient of variation of the sampled job durations (stdev / mean)."""
        walls = self._walls()
        mean = statistics.fmean(walls)
        return statistics.pstdev(walls) / mean if mean > 0 and len(walls) > 1 else 0.0

    @property
    def cpu_share(self) -> float:
        """Thread CPU time / wall time over the sample: the share of a job holding the GIL (a
        C extension that releases it would count as CPU here too: an upper bound)."""
        wall = sum(self._walls())
        return min(1.0, sum(s.cpu_s for s in self.samples) / wall) if wall > 0 else 1.0

    def bytes_median(self, field: str) -> int | None:
        values = [getattr(s, field) for s in self.samples]
        known = [v for v in values if v is not None]
        return int(statistics.median(known)) if known else None

    @property
    def transfer_pickle_bytes(self) -> int:
        """Pickled argument + result of a median job: what a process pool ships per job."""
        arg = self.bytes_median("arg_pickle_bytes") or 0
        return arg + (self.bytes_median("result_pickle_bytes") or 0)

    def cost_at(self, index: int) -> tuple[float, float]:
        """(wall s, cpu s) of job ``index``, linearly interpolated between the sampled jobs
        around it (the nearest one beyond the sampled range)."""
        ordered = sorted(self.samples, key=lambda s: s.index)
        keys = [s.index for s in ordered]
        return _interpolate(ordered, keys, index)

    def costs(self) -> tuple[list[float], list[float]]:
        """(wall s, cpu s) of every job of the list, interpolated (``cost_at``)."""
        ordered = sorted(self.samples, key=lambda s: s.index)
        keys = [s.index for s in ordered]
        walls, cpus = [], []
        for i in range(self.n_jobs):
            wall, cpu = _interpolate(ordered, keys, i)
            walls.append(wall)
            cpus.append(cpu)
        return walls, cpus

    def summary(self) -> dict[str, Any]:
        """The probe as results.json stores it."""
        return {
            "n_jobs": self.n_jobs,
            "n_sampled": self.n_sampled,
            "budget_s": self.budget_s,
            "took_s": self.took_s,
            "sampling": "stratified over the job list (van der Corput order)",
            "wall_s": {
                "median": self.wall_median_s,
                "p10": self.wall_p10_s,
                "p90": self.wall_p90_s,
                "mean": self.wall_mean_s,
                "cv": self.wall_cv,
            },
            "cpu_share": self.cpu_share,
            "arg_bytes": {
                "pickle": self.bytes_median("arg_pickle_bytes"),
                "json": self.bytes_median("arg_json_bytes"),
            },
            "result_bytes": {
                "pickle": self.bytes_median("result_pickle_bytes"),
                "json": self.bytes_median("result_json_bytes"),
            },
            "parallel_slowdown": None if self.slowdown is None else self.slowdown.summary(),
            "cpu_before_wait": self.cpu_before_wait,
            "overlapped_cpu": self.overlapped_cpu,
            "samples": [[s.index, s.wall_s, s.cpu_s] for s in self.samples],
        }


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _interpolate(
    ordered: Sequence[ProbeSample], keys: Sequence[int], index: int
) -> tuple[float, float]:
    at = bisect.bisect_left(keys, index)
    if at < len(keys) and keys[at] == index:
        return ordered[at].wall_s, ordered[at].cpu_s
    if at == 0:
        return ordered[0].wall_s, ordered[0].cpu_s
    if at == len(keys):
        return ordered[-1].wall_s, ordered[-1].cpu_s
    a, b = ordered[at - 1], ordered[at]
    f = (index - a.index) / (b.index - a.index)
    return a.wall_s + f * (b.wall_s - a.wall_s), a.cpu_s + f * (b.cpu_s - a.cpu_s)


def stratified_order(n_jobs: int) -> Iterator[int]:
    """Job indices in van der Corput order over the list (first, middle, quarters, ...), each
    once, then any left (so every prefix covers the list evenly)."""
    seen: set[int] = set()
    k = 0
    # Every index is reached once 2**bits >= n_jobs; stop after that many distinct fractions.
    limit = 1
    while limit < max(1, n_jobs):
        limit *= 2
    while k < 2 * limit and len(seen) < n_jobs:
        x, denom, i = 0.0, 1.0, k
        while i:
            denom *= 2
            x += (i & 1) / denom
            i >>= 1
        k += 1
        index = min(n_jobs - 1, int(x * n_jobs))
        if index not in seen:
            seen.add(index)
            yield index
    for index in range(n_jobs):
        if index not in seen:
            yield index


def _json_bytes(value: Any) -> int | None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:
        return len(json.dumps(value, separators=(",", ":")).encode())
    except (TypeError, ValueError):
        return None


def _pickle_bytes(value: Any) -> int:
    try:
        return len(pickle.dumps(value))
    except Exception:  # an unpicklable value cannot cross processes: its size is unknown
        return 0


def warm(fn: Callable[..., Any], calls: Sequence[Sequence[Any]], warmup_s: float) -> int:
    """Run jobs of ``calls`` untimed, in the sample's own order (imports, connections, caches and
    the job's code paths at the sizes the sample visits), for ``warmup_s`` seconds and at least
    one job; returns how many ran."""
    deadline = time.perf_counter() + warmup_s
    ran = 0
    while True:
        for index in stratified_order(len(calls)):
            fn(*calls[index])
            ran += 1
            if time.perf_counter() >= deadline:
                return ran


def probe(
    fn: Callable[..., Any],
    calls: Sequence[Sequence[Any]],
    budget_s: float = DEFAULT_BUDGET_S,
    max_jobs: int = DEFAULT_MAX_JOBS,
    warmup_s: float = WARMUP_S,
) -> Probe:
    """Run a stratified sample of ``fn(*call)`` for ``calls`` sequentially in this thread, until
    ``budget_s`` seconds or ``max_jobs`` jobs (at least ``MIN_JOBS``, at most every job), after
    ``warmup_s`` seconds of untimed jobs (at least one)."""
    if not calls:
        raise ValueError("the probe needs at least one job")
    started = time.perf_counter()
    warm(fn, calls, warmup_s)
    samples: list[ProbeSample] = []
    deadline = time.perf_counter() + budget_s
    for index in stratified_order(len(calls)):
        if len(samples) >= max(MIN_JOBS, max_jobs):
            break
        if len(samples) >= MIN_JOBS and time.perf_counter() >= deadline:
            break
        call = calls[index]
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        result = fn(*call)
        wall1, cpu1 = time.perf_counter(), time.thread_time()
        arg = tuple(call)
        samples.append(
            ProbeSample(
                index=index, wall_s=wall1 - wall0, cpu_s=max(0.0, cpu1 - cpu0),
                arg_pickle_bytes=_pickle_bytes(arg), result_pickle_bytes=_pickle_bytes(result),
                arg_json_bytes=_json_bytes(list(arg)), result_json_bytes=_json_bytes(result),
            )
        )  # fmt: skip
    return Probe(
        n_jobs=len(calls),
        samples=tuple(samples),
        budget_s=budget_s,
        took_s=time.perf_counter() - started,
    )


def _run_sample(fn: Callable[..., Any], calls: Sequence[Sequence[Any]]) -> tuple[float, float]:
    """(wall s, thread CPU s) of ``fn(*call)`` for every call, one after another (in a pool's
    child)."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    for call in calls:
        fn(*call)
    return time.perf_counter() - wall0, time.thread_time() - cpu0


def _run_sample_star(
    args: tuple[Callable[..., Any], Sequence[Sequence[Any]]],
) -> tuple[float, float]:
    return _run_sample(*args)


def slowdown_calls(
    p: Probe, calls: Sequence[Sequence[Any]], sample_s: float = SLOWDOWN_SAMPLE_S
) -> list[Sequence[Any]]:
    """The probe's sampled jobs, in its stratified order, up to ``sample_s`` seconds of them."""
    chosen: list[Sequence[Any]] = []
    total = 0.0
    for s in p.samples:
        if len(chosen) >= MIN_JOBS and total >= sample_s:
            break
        chosen.append(calls[s.index])
        total += s.wall_s
    return chosen


def measure_slowdown(
    fn: Callable[..., Any],
    calls: Sequence[Sequence[Any]],
    processes: int,
    rounds: int = SLOWDOWN_ROUNDS,
) -> Slowdown | None:
    """``parallel_slowdown`` read on the job itself: ``calls`` run in one process of a pool of
    ``processes`` alone, then in every process at once, ``rounds`` times interleaved. The slowdown
    is of the jobs' CPU part: (at-once wall - alone wall) / alone CPU + 1, between 1 and
    ``processes``. None when the job cannot cross to a process (it does not pickle) or there is
    one core. A CPU spin (``machine_costs.measure_parallel``) read 1.04-1.35 where the seed's
    sieve pools slowed by 1.00-1.06 on the same 2-core machine: how much cores running at once
    slow each other depends on what they run."""
    if processes < 2 or not calls:
        return None
    try:
        pickle.dumps((fn, list(calls)))
    except Exception:  # a job a process cannot receive: the machine's figure stands
        return None
    with multiprocessing.Pool(processes) as pool:
        pool.map(_run_sample_star, [(fn, calls[:1])] * processes, chunksize=1)
        alone: list[tuple[float, float]] = []
        together: list[float] = []
        for _ in range(rounds):  # interleaved: a burst of other work hits both sides
            alone.append(pool.apply(_run_sample, (fn, calls)))
            at_once = pool.map(_run_sample_star, [(fn, calls)] * processes, chunksize=1)
            together.append(statistics.fmean(wall for wall, _ in at_once))
    alone_s, cpu_s = min(alone)
    together_s = min(together)
    if cpu_s <= 0:
        return None
    value = min(float(processes), max(1.0, (together_s - alone_s) / cpu_s + 1.0))
    return Slowdown(value, alone_s, together_s, cpu_s, len(calls), processes, rounds)


def _longest_idle(points: Sequence[tuple[float, float]]) -> tuple[int, int] | None:
    """Indices (first, last) of the longest run of trace intervals in which the thread held the
    CPU less than ``IDLE_SHARE`` of the time, None when there is none."""
    best: tuple[int, int] | None = None
    start: int | None = None
    for i in range(1, len(points) + 1):
        idle = i < len(points) and (
            points[i][1] - points[i - 1][1] < IDLE_SHARE * (points[i][0] - points[i - 1][0])
        )
        if idle and start is None:
            start = i - 1
        elif not idle and start is not None:
            if (
                best is None
                or points[i - 1][0] - points[start][0] > points[best[1]][0] - points[best[0]][0]
            ):
                best = (start, i - 1)
            start = None
    return best


def traced_split(fn: Callable[..., Any], call: Sequence[Any]) -> float | None:
    """The share of ``fn(*call)``'s CPU (its thread's) spent before its longest wait, traced by a
    watcher thread reading the job thread's CPU clock every ``SPLIT_POLL_S``; None when the job
    never waited or the platform has no per-thread CPU clock (``time.pthread_getcpuclockid``)."""
    if not hasattr(time, "pthread_getcpuclockid"):
        return None
    clock = time.pthread_getcpuclockid(threading.get_ident())
    points: list[tuple[float, float]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            points.append((time.perf_counter(), time.clock_gettime(clock)))
            time.sleep(SPLIT_POLL_S)

    watcher = threading.Thread(target=watch, name="jobbench-probe-trace", daemon=True)
    points.append((time.perf_counter(), time.clock_gettime(clock)))
    watcher.start()
    try:
        fn(*call)
    finally:
        points.append((time.perf_counter(), time.clock_gettime(clock)))
        done.set()
        watcher.join()
    points.sort()
    idle = _longest_idle(points)
    if idle is None:
        return None
    before = points[idle[0]][1] - points[0][1]
    after = points[-1][1] - points[idle[1]][1]
    return before / (before + after) if before + after > 0 else None


def cpu_before_wait(
    fn: Callable[..., Any], calls: Sequence[Sequence[Any]], p: Probe, jobs: int = SPLIT_JOBS
) -> float | None:
    """The median of ``traced_split`` over the first ``jobs`` of the probe's sample (untimed:
    the trace's own thread costs the job a little)."""
    splits = [traced_split(fn, calls[s.index]) for s in p.samples[:jobs]]
    known = [x for x in splits if x is not None]
    return statistics.median(known) if known else None


def overlapped_cpu(
    fn: Callable[..., Any],
    calls: Sequence[Sequence[Any]],
    p: Probe,
    threads: int = OVERLAP_THREADS,
    rounds: int = OVERLAP_ROUNDS,
) -> float | None:
    """This process's CPU while the probe's first ``threads`` sampled jobs run at once, one per
    thread, ÷ the CPU the probe measured for them one after another: the median of ``rounds``.
    A job that waits runs its CPU colder alone (caches and the core idle through every wait)
    than back to back with others: the seed's GET took 2.3-3.1 ms of CPU alone and 1.3-1.5 ms
    with 10-100 in flight on this 2-core machine."""
    chosen = p.samples[:threads]
    alone = sum(s.cpu_s for s in chosen)
    if len(chosen) < 2 or alone < OVERLAP_MIN_CPU_S * len(chosen):
        return None
    ratios = []
    for _ in range(rounds):
        started = time.process_time()
        running = [threading.Thread(target=fn, args=tuple(calls[s.index])) for s in chosen]
        for thread in running:
            thread.start()
        for thread in running:
            thread.join()
        ratios.append((time.process_time() - started) / alone)
    return statistics.median(ratios)
