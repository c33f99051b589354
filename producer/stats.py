"""Small, dependency-free statistics for repeated measurements (pyperf is the model)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

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
