"""Failures are results: jobs that failed and requests that needed retries, counted per model from
the job records, and the result rows they make untrustworthy flagged as such.

**Retries** (one definition for every model): a job is *retried* when its HTTP request needed more
than one try (``shared.workloads.fetch``: a 5xx answer, a timeout or a broken connection, tried
again with backoff, the same rule in every model). The record says so: a digest ends in
``:tries=N``, a failed job's error reads ``RequestFailed: N tries, last: ...``. ``retries`` counts
the extra tries. A *redelivery* (the same job started again by another worker after a crash,
``attempt`` > 1) is not a retry; it is counted apart (``redelivered``). With ``--result full`` a
job that succeeded hands back the body alone, so only its failed tries are visible.

**Failed rows**: a model whose jobs failed (``n_error`` > 0) did less work than the others, so its
time is no result: it is never a winner (``producer.history.verdicts``), never in a goal, and
its speedup and efficiency are not computed. When the baseline (sequential) failed, no speedup or
CPU ideal of that workload can be computed either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.timings import JobRecord

#: The tries a digest names (``shared.workloads.with_tries``) and those a failed request names
#: (``shared.workloads.RequestFailed``).
_DIGEST_TRIES = re.compile(r":tries=(\d+)$")
_ERROR_TRIES = re.compile(r"^RequestFailed: (\d+) tries?, last:")


def tries_of(record: JobRecord) -> int:
    """How many tries the job's request took (1 for a CPU job, or when the record cannot say)."""
    match = None
    if record.output:
        match = _DIGEST_TRIES.search(record.output)
    elif record.error:
        match = _ERROR_TRIES.match(record.error)
    return int(match.group(1)) if match else 1


def retry_counts(records: Iterable[JobRecord]) -> dict[str, int]:
    """``retried`` (jobs whose request needed more than one try) and ``retries`` (extra tries)."""
    retried = retries = 0
    for record in records:
        extra = tries_of(record) - 1
        if extra > 0:
            retried += 1
            retries += extra
    return {"retried": retried, "retries": retries}


def row_failed(row: Mapping[str, Any]) -> bool:
    """Whether some job of the row failed (its time then measures less work)."""
    return bool(row.get("n_error"))


def flag_failures(rows: Sequence[dict[str, Any]]) -> None:
    """Mark the rows whose jobs failed (``failed``: True) and drop the figures that would compare
    them with the others: their speedup and efficiency, and every speedup (and CPU ideal) of a
    workload whose baseline failed."""
    failed_baselines = {str(r["workload"]) for r in rows if r.get("baseline") and row_failed(r)}
    for row in rows:
        row["failed"] = row_failed(row)
        baseline_failed = row["workload"] in failed_baselines
        if row["failed"] or baseline_failed:
            row["speedup_vs_sequential"] = None
            row["efficiency"] = None
        if baseline_failed and row["workload"] == "cpu":
            row["ideal_s"] = None


def failed_jobs(doc: Mapping[str, Any]) -> dict[str, int]:
    """``workload/model`` -> failed jobs, for the rows of a run that have any."""
    return {
        f"{r['workload']}/{r['model']}": int(r["n_error"])
        for r in doc.get("results", [])
        if row_failed(r)
    }
