"""Small, dependency-free statistics for repeated measurements (pyperf is the model)."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

#: Spread (IQR, or max-min for fewer than 4 values) above this fraction of the median is
#: flagged: the run was too noisy for its median to be trusted at face value.
SPREAD_WARN_FRACTION = 0.10


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of already sorted values (q in [0, 1])."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max, quartiles, IQR and the raw values (kept in the order measured)."""
    ordered = sorted(values)
    median = statistics.median(ordered)
    q1, q3 = quantile(ordered, 0.25), quantile(ordered, 0.75)
    spread = (q3 - q1) if len(ordered) >= 4 else (ordered[-1] - ordered[0])
    rel = spread / median if median > 0 else 0.0
    return {
        "median": median,
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
        "iqr": q3 - q1,
        "spread_rel": rel,
        "noisy": len(ordered) > 1 and rel > SPREAD_WARN_FRACTION,
        "values": list(values),
    }


def percentiles(values: Sequence[float], ps: Sequence[int] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": ..., "p95": ..., "p99": ...}``; empty dict for no values."""
    if not values:
        return {}
    ordered = sorted(values)
    return {f"p{p}": quantile(ordered, p / 100) for p in ps}


# --- confidence intervals and verdicts (issue: verdicts a user can trust) -----------------------

#: Bootstrap resamples per interval: 2,000 keeps the 2.5 % and 97.5 % quantiles of a 3-20 repeat
#: bench within about 1 % of their limit and costs ~10 ms per interval.
BOOTSTRAP_RESAMPLES = 2_000
#: Two-sided confidence of every interval jobbench reports.
CONFIDENCE = 0.95
#: Fewest repeats an interval is computed from: with fewer, a bootstrap only echoes the values.
MIN_CI_REPEATS = 3

Verdict = Literal["met", "missed", "undecided"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval (``low``/``high`` None when there
    were fewer than ``MIN_CI_REPEATS`` values)."""

    point: float
    low: float | None
    high: float | None
    n: int
    confidence: float = CONFIDENCE

    @property
    def rel_half_width(self) -> float | None:
        """Half the interval's width as a fraction of the point (``None``: no interval)."""
        if self.low is None or self.high is None or self.point <= 0:
            return None
        return (self.high - self.low) / 2 / self.point

    def to_json(self) -> dict[str, Any]:
        return {"point": self.point, "low": self.low, "high": self.high, "n": self.n,
                "confidence": self.confidence}  # fmt: skip


def _bootstrap(
    n: int, statistic: Callable[[Sequence[int]], float], resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of ``statistic`` over ``resamples`` resamplings of indices 0..n-1."""
    rng = random.Random(seed)
    picks = range(n)
    stats = sorted(statistic(rng.choices(picks, k=n)) for _ in range(resamples))
    tail = (1 - CONFIDENCE) / 2
    return quantile(stats, tail), quantile(stats, 1 - tail)


def median_ci(
    values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> Interval:
    """The median of ``values`` with a percentile-bootstrap interval (seeded: reproducible)."""
    if not values:
        raise ValueError("median of no values")
    point = statistics.median(values)
    if len(values) < MIN_CI_REPEATS:
        return Interval(point, None, None, len(values))
    low, high = _bootstrap(
        len(values), lambda idx: statistics.median(values[i] for i in idx), resamples, seed
    )
    return Interval(point, low, high, len(values))


def ratio_ci(
    num: Sequence[float],
    den: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """median(num) / median(den) with a bootstrap interval.

    Repeats of two models are interleaved (repeat i of each ran close in time), so when both have
    the same count the pairs are resampled together: a slow spell of the machine moves both and
    cancels in the ratio. Otherwise each side is resampled on its own.
    """
    if not num or not den:
        raise ValueError("ratio of no values")
    point = _median_ratio(num, den)
    n = min(len(num), len(den))
    if n < MIN_CI_REPEATS:
        return Interval(point, None, None, n)
    if len(num) == len(den):
        low, high = _bootstrap(
            n, lambda idx: _median_ratio([num[i] for i in idx], [den[i] for i in idx]),
            resamples, seed,
        )  # fmt: skip
        return Interval(point, low, high, n)
    rng = random.Random(seed)
    ratios = sorted(
        _median_ratio(rng.choices(num, k=len(num)), rng.choices(den, k=len(den)))
        for _ in range(resamples)
    )
    tail = (1 - CONFIDENCE) / 2
    return Interval(point, quantile(ratios, tail), quantile(ratios, 1 - tail), n)


def _median_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    d = statistics.median(den)
    return statistics.median(num) / d if d > 0 else math.inf


def judge(interval: Interval, limit: float) -> Verdict:
    """``met`` when the whole interval is at or below ``limit``, ``missed`` when all of it is
    above, else ``undecided`` (also when there is no interval: too few repeats)."""
    if interval.low is None or interval.high is None or not math.isfinite(interval.point):
        return "undecided"
    if interval.high <= limit:
        return "met"
    if interval.low > limit:
        return "missed"
    return "undecided"


#: Most repeats ``repeats_to_decide`` names: beyond it, the answer is "not with repeats".
MAX_DECIDING_REPEATS = 1_000


def repeats_to_decide(interval: Interval, limit: float) -> int | None:
    """Repeats that would likely shrink the interval off ``limit`` (width ~ 1/sqrt(n)); the
    current count when already decided; None when the point sits on the limit or more than
    ``MAX_DECIDING_REPEATS`` would be needed."""
    if judge(interval, limit) != "undecided" and interval.low is not None:
        return interval.n
    if interval.low is None or interval.high is None:
        return MIN_CI_REPEATS
    gap = abs(interval.point - limit)
    half = (interval.high - interval.low) / 2
    if gap == 0:
        return None
    needed = math.ceil(interval.n * (half / gap) ** 2)
    return needed if needed <= MAX_DECIDING_REPEATS else None


# --- load imbalance ----------------------------------------------------------------------------


def imbalance(lanes: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, Any]:
    """How evenly the work of one repeat spread over its lanes (processes, or threads).

    ``lanes`` maps a lane (``host:pid`` or ``host:pid:thread``) to its jobs' (started_ns,
    finished_ns). The **tail** is the time from the first lane going idle (its last job ends) to
    the end of the last job: what an even split would have saved at most. ``tail_share`` is the
    tail as a fraction of the window from the first start to the last end.
    """
    spans = {lane: jobs for lane, jobs in lanes.items() if jobs}
    if not spans:
        return {"lanes": 0, "busy_s": {}, "tail_s": 0.0, "tail_share": 0.0, "window_s": 0.0}
    start = min(s for jobs in spans.values() for s, _ in jobs)
    ends = {lane: max(f for _, f in jobs) for lane, jobs in spans.items()}
    end = max(ends.values())
    window = (end - start) / 1e9
    tail = (end - min(ends.values())) / 1e9 if len(spans) > 1 else 0.0
    busy = {lane: sum(f - s for s, f in jobs) / 1e9 for lane, jobs in spans.items()}
    return {
        "lanes": len(spans),
        "busy_s": {lane: round(b, 6) for lane, b in sorted(busy.items())},
        "tail_s": tail,
        "tail_share": tail / window if window > 0 else 0.0,
        "window_s": window,
    }


# --- repeating until the median is known well enough ("--repeat auto") -------------------------

#: ``--repeat auto``: stop repeating a model once its median's 95 % interval is within ±3 % of it.
AUTO_TARGET_REL = 0.03
#: ``--repeat auto``: repeats every model gets before the interval is looked at (an interval
#: needs ``MIN_CI_REPEATS``), and the most any model gets.
AUTO_MIN_REPEATS = MIN_CI_REPEATS
AUTO_MAX_REPEATS = 10


def settled(
    values: Sequence[float],
    target_rel: float = AUTO_TARGET_REL,
    min_repeats: int = AUTO_MIN_REPEATS,
    max_repeats: int = AUTO_MAX_REPEATS,
) -> bool:
    """Whether a model needs no more repeats: its median's interval is within ``target_rel``
    (half-width over the median), or it reached ``max_repeats``."""
    if len(values) >= max_repeats:
        return True
    if len(values) < min_repeats:
        return False
    width = median_ci(values).rel_half_width
    return width is not None and width <= target_rel
