"""How a list of jobs is cut into chunks (in-process pools) or messages (Celery).

The default is what a user gets out of the box: ``multiprocessing.Pool.map``'s rule, contiguous
chunks of about n / (4 x workers) jobs. When a job's cost grows with its index (the seed CPU
workload: a sieve up to n, n rising from 1,000 to 16,000) the last chunks are the most expensive
ones, and one worker finishes long after the others: the *tail*.

``factoring`` (Hummel, Schonberg and Flynn, 1992) hands out chunks in rounds of one chunk per
worker, each round's chunks half of what remains divided by the workers: large chunks first,
small ones last, so the expensive end is split finely and the workers finish together, with
O(workers x log n) chunks instead of n. It assumes nothing about which jobs are expensive, so it
does no harm when costs are even. It is a *named variant* (``*_factoring`` models), never the
default: the default rows stay what a user's code gets.
"""

from __future__ import annotations

import math
from typing import Literal

Schedule = Literal["default", "factoring"]
SCHEDULES: tuple[Schedule, ...] = ("default", "factoring")


def pool_map_chunksize(n_jobs: int, n_workers: int) -> int:
    """``multiprocessing.Pool.map``'s own default: about 4 chunks per worker."""
    chunksize, extra = divmod(n_jobs, n_workers * 4)
    return chunksize + 1 if extra else max(chunksize, 1)


def contiguous_ranges(n_jobs: int, size: int) -> list[range]:
    """Jobs 0..n_jobs-1 in consecutive ranges of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [range(i, min(i + size, n_jobs)) for i in range(0, n_jobs, size)]


def factoring_ranges(n_jobs: int, n_workers: int, min_size: int = 1) -> list[range]:
    """Consecutive ranges covering 0..n_jobs-1 by factoring: rounds of ``n_workers`` chunks of
    ceil(remaining / (2 x n_workers)) jobs, never below ``min_size``."""
    if n_workers < 1 or min_size < 1:
        raise ValueError("n_workers and min_size must be >= 1")
    out: list[range] = []
    start = 0
    while start < n_jobs:
        size = max(min_size, math.ceil((n_jobs - start) / (2 * n_workers)))
        for _ in range(n_workers):
            if start >= n_jobs:
                break
            stop = min(start + size, n_jobs)
            out.append(range(start, stop))
            start = stop
    return out


def chunk_ranges(schedule: Schedule, n_jobs: int, n_workers: int) -> list[range]:
    """The chunks ``schedule`` cuts ``n_jobs`` into for ``n_workers`` workers."""
    if schedule == "factoring":
        return factoring_ranges(n_jobs, n_workers)
    return contiguous_ranges(n_jobs, pool_map_chunksize(n_jobs, n_workers))
