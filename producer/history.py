"""Run history and comparison.

Every run's summary (its results.json document) is kept twice: on disk in ``<out>/<run_id>/`` and
in Redis (``keys.run_summary`` indexed by ``keys.RUNS_INDEX``). ``jobbench history`` lists runs
from either; ``jobbench compare A B`` compares two of them the way pyperf's ``compare_to`` does:
the ratio of the medians, and a two-sided significance test on the raw repeat values to say
whether the difference is beyond the noise. The same test judges a winner within one run.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import redis

from producer.errors import ResultsError, RunNotFound
from producer.results import (
    JOBS_FILE,
    LATEST,
    RESULTS_FILE,
    atomic_write,
    load_results,
    locate_run,
    migrate,
    read_json,
    write_jobs_csv,
)
from producer.untrusted import UntrustedJSONError
from producer.untrusted import loads as untrusted_loads
from shared import keys
from shared.settings import redact_url
from shared.timings import JobRecord, TimingStore

#: Two-sided significance level of the tests (pyperf and hyperfine's Welch script use 95 %).
ALPHA = 0.05
#: Redis must answer within this long (s): history, compare, report and verify are interactive
#: commands, and a dead Redis must cost seconds, not the client's default wait.
REDIS_TIMEOUT_S = 2.0


# --- significance ---------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 3e-16:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) for x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom (no scipy needed)."""
    if math.isinf(t):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


@dataclass(frozen=True)
class Significance:
    """Whether two samples of wall times differ beyond the noise.

    ``method`` is ``welch`` (Welch's t-test on the raw repeat values: unequal variances and
    repeat counts allowed) when both sides have two values or more; with a single value on a
    side no test is possible and the min–max ranges decide (``ranges``), as pyperf treats
    single-value benchmarks as comparable but says so.
    """

    significant: bool
    p_value: float | None
    method: str
    ranges_overlap: bool

    def describe(self) -> str:
        if self.p_value is None:
            return "1 value: no test" + ("" if self.ranges_overlap else ", ranges apart")
        word = "significant" if self.significant else "not significant"
        return f"{word}, p={self.p_value:.2g}"


def significance(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Significance:
    """Welch's two-sided t-test of ``a`` against ``b`` (falls back to range overlap)."""
    if not a or not b:
        raise ValueError("significance of an empty sample")
    overlap = min(a) <= max(b) and min(b) <= max(a)
    if len(a) < 2 or len(b) < 2:
        return Significance(not overlap, None, "ranges", overlap)
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se2 = va + vb
    if se2 == 0.0:
        p = 1.0 if ma == mb else 0.0
    else:
        t = (mb - ma) / math.sqrt(se2)
        df = se2 * se2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
        p = t_two_sided_p(t, df)
    return Significance(p < alpha, p, "welch", overlap)


# --- verdict within one run ---------------------------------------------------------------


def wall_values(row: dict[str, Any]) -> list[float]:
    """The raw wall times of a result row (its median alone if an old file kept no values)."""
    values = row["wall_s"].get("values") or [row["wall_s"]["median"]]
    return [float(v) for v in values]


def workloads_of(doc: dict[str, Any]) -> list[str]:
    """The workloads of a run in the order they ran."""
    return list(dict.fromkeys(str(r["workload"]) for r in doc["results"]))


@dataclass(frozen=True)
class Verdict:
    """Which model won one workload, by how much, and how far it is to the physical limit."""

    workload: str
    winner: dict[str, Any]
    runner_up: dict[str, Any] | None
    #: runner-up median / winner median: how many times faster the winner is.
    margin: float | None
    vs_runner_up: Significance | None
    #: Models left out of the ranking because some of their jobs failed (a fast failure is no win).
    excluded: list[str]

    @property
    def clear(self) -> bool:
        """The winner is separated from the runner-up beyond the noise."""
        return self.vs_runner_up is None or self.vs_runner_up.significant


def verdicts(doc: dict[str, Any]) -> list[Verdict]:
    """One verdict per workload: the fastest model by median wall time among those whose jobs
    all succeeded."""
    out = []
    for workload in workloads_of(doc):
        rows = [r for r in doc["results"] if r["workload"] == workload]
        clean = sorted(
            (r for r in rows if not r.get("n_error") and math.isfinite(r["wall_s"]["median"])),
            key=lambda r: r["wall_s"]["median"],
        )
        excluded = [str(r["model"]) for r in rows if r.get("n_error")]
        if not clean:
            continue
        winner, runner_up = clean[0], (clean[1] if len(clean) > 1 else None)
        margin = sig = None
        if runner_up is not None and winner["wall_s"]["median"] > 0:
            margin = runner_up["wall_s"]["median"] / winner["wall_s"]["median"]
            sig = significance(wall_values(winner), wall_values(runner_up))
        out.append(Verdict(workload, winner, runner_up, margin, sig, excluded))
    return out


# --- comparison of two runs ---------------------------------------------------------------

#: Metadata that must match for two runs to be like for like (label, path in the document).
LIKE_FOR_LIKE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("host", ("metadata", "hostname")),
    ("cores", ("metadata", "cpu_count")),
    ("python", ("metadata", "python")),
    ("platform", ("metadata", "platform")),
    ("jobs return", ("metadata", "result_mode")),
    ("target latency ms", ("metadata", "target", "latency_ms")),
    ("target jitter ms", ("metadata", "config", "jitter_ms")),
    ("target url is local", ("metadata", "target", "local")),
    ("celery", ("metadata", "packages", "celery")),
)
#: Per-model parameters that change what is measured.
ROW_PARAMS = ("n_jobs", "concurrency", "chunksize", "batch_size", "prefetch_multiplier")


def _dig(doc: dict[str, Any], path: Sequence[str]) -> Any:
    value: Any = doc
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _row_param(row: dict[str, Any], name: str) -> Any:
    return row["n_jobs"] if name == "n_jobs" else row.get("params", {}).get(name)


@dataclass(frozen=True)
class ModelChange:
    """One model on one workload in run A and run B."""

    workload: str
    model: str
    a: dict[str, Any]
    b: dict[str, Any]
    ratio: float
    sig: Significance
    #: Parameters that differ between A and B ("n_jobs 100 → 200").
    differences: list[str]

    @property
    def change_pct(self) -> float:
        return (self.ratio - 1.0) * 100.0

    @property
    def verdict(self) -> str:
        if not self.sig.significant:
            return "same (within noise)"
        return "slower" if self.ratio > 1.0 else "faster"


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    changes: list[ModelChange]
    only_a: list[str]
    only_b: list[str]
    caveats: list[str] = field(default_factory=list)

    def geometric_mean(self, workload: str) -> float | None:
        """Geometric mean of the B/A ratios of one workload (pyperf's summary figure)."""
        ratios = [c.ratio for c in self.changes if c.workload == workload and c.ratio > 0]
        return statistics.geometric_mean(ratios) if ratios else None

    def slowdowns(self, pct: float) -> list[ModelChange]:
        """Models slower in B by more than ``pct`` percent *and* beyond the noise: a gate that
        fires on noise is a gate people learn to ignore."""
        return [c for c in self.changes if c.sig.significant and c.change_pct > pct]


def compare_docs(a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    """Per (workload, model) present in both runs: B/A ratio of medians and its significance."""
    rows_a = {(r["workload"], r["model"]): r for r in a["results"]}
    rows_b = {(r["workload"], r["model"]): r for r in b["results"]}
    changes = []
    for key, ra in rows_a.items():
        rb = rows_b.get(key)
        if rb is None:
            continue
        med_a, med_b = ra["wall_s"]["median"], rb["wall_s"]["median"]
        ratio = med_b / med_a if med_a > 0 else math.inf
        diffs = [
            f"{name} {_row_param(ra, name)} → {_row_param(rb, name)}"
            for name in ROW_PARAMS
            if _row_param(ra, name) != _row_param(rb, name)
        ]
        sig = significance(wall_values(ra), wall_values(rb))
        changes.append(ModelChange(key[0], key[1], ra, rb, ratio, sig, diffs))
    caveats = []
    for label, path in LIKE_FOR_LIKE:
        va, vb = _dig(a, path), _dig(b, path)
        if va != vb:
            caveats.append(f"{label} differs: {va} → {vb}")
    if any(c.differences for c in changes):
        caveats.append("some models ran with different parameters (see their notes)")
    return Comparison(
        run_a=str(a["run_id"]),
        run_b=str(b["run_id"]),
        changes=changes,
        only_a=[f"{w}/{m}" for (w, m) in rows_a if (w, m) not in rows_b],
        only_b=[f"{w}/{m}" for (w, m) in rows_b if (w, m) not in rows_a],
        caveats=caveats,
    )


# --- where runs are kept ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRun:
    """A run's summary and where it was found (``run_dir`` is None for a Redis-only run)."""

    run_id: str
    doc: dict[str, Any]
    run_dir: Path | None
    sources: tuple[str, ...]


def interactive_client(redis_url: str) -> redis.Redis:
    """A Redis client that gives up after ``REDIS_TIMEOUT_S``."""
    return redis.Redis.from_url(
        redis_url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )


def _redis_summary(client: redis.Redis, run_id: str) -> dict[str, Any] | None:
    raw = client.get(keys.run_summary(run_id))
    if raw is None:
        return None
    key = keys.run_summary(run_id)
    try:
        doc = untrusted_loads(raw)
    except UntrustedJSONError as exc:
        raise ResultsError(f"Redis key {key}: {exc}") from None
    return migrate(doc, f"Redis key {key}")


def run_dirs(out_dir: Path) -> Iterator[Path]:
    """Run directories under ``out_dir`` (not the ``latest`` alias, not hidden temporaries)."""
    if not out_dir.is_dir():
        return
    for child in sorted(out_dir.iterdir()):
        if child.name == LATEST or child.name.startswith("."):
            continue
        if child.is_dir() and (child / RESULTS_FILE).is_file():
            yield child


def resolve_run(ref: str, out_dir: Path, redis_url: str | Callable[[], str] | None) -> StoredRun:
    """The run ``ref`` names, with its summary: a run directory, a results.json, ``latest`` or a
    run id (on disk under ``out_dir``, else in Redis when ``redis_url`` is given: a URL, or how to
    get one, called only for a run id that is not on disk, so a run on disk needs no Redis)."""
    path = locate_run(ref, out_dir)
    if path is not None:
        doc = load_results(path)
        return StoredRun(str(doc["run_id"]), doc, path.parent.resolve(), ("disk",))
    where = f"no run {ref!r}: not a run directory, not in {out_dir}/"
    if redis_url is None or ref == LATEST or not keys.RUN_ID_PATTERN.fullmatch(ref):
        raise RunNotFound(where)
    url = redis_url() if callable(redis_url) else redis_url
    try:
        client = interactive_client(url)
        try:
            found = _redis_summary(client, ref)
        finally:
            client.close()
    except redis.RedisError as exc:
        raise RunNotFound(
            f"{where}, and Redis at {redact_url(url)} is unreachable ({exc})"
        ) from None
    if found is None:
        raise RunNotFound(f"{where}, not in Redis at {redact_url(url)}")
    return StoredRun(str(found["run_id"]), found, None, ("redis",))


def resolve_run_id(ref: str, out_dir: Path) -> str:
    """The id of the run ``ref`` names, as ``resolve_run`` finds it on disk (only the id is read,
    so a run whose results.json is partial still resolves), else ``ref`` itself if it looks like
    a run id (its records are then looked up in Redis by the caller)."""
    path = locate_run(ref, out_dir)
    if path is not None:
        try:
            run_id = str(read_json(path)["run_id"])
        except (ResultsError, KeyError, TypeError) as exc:
            raise ResultsError(f"cannot read the run id from {path}: {exc}") from None
        if not keys.RUN_ID_PATTERN.fullmatch(run_id):
            raise ResultsError(f"{path} holds a malformed run id {run_id!r}")
        return run_id
    if ref == LATEST:
        raise RunNotFound(f"no run {LATEST!r}: {out_dir / LATEST} is not a run directory")
    if not keys.RUN_ID_PATTERN.fullmatch(ref):
        raise RunNotFound(f"no run {ref!r}: not a run directory, and not a run id")
    return ref


@dataclass
class Listing:
    runs: list[StoredRun]
    #: One-line remarks for the user: an unreachable Redis, an unreadable directory.
    notes: list[str]
    #: Why Redis could not be listed (None: it answered, or was not asked).
    redis_error: str | None = None


def _started_epoch(doc: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(doc.get("started_at"))).timestamp()
    except ValueError:
        return 0.0


def list_runs(out_dir: Path | None, redis_url: str | None, limit: int) -> Listing:
    """The ``limit`` most recent runs found on disk and/or in Redis, newest first."""
    notes: list[str] = []
    disk: dict[str, StoredRun] = {}
    if out_dir is not None:
        for run_dir in run_dirs(out_dir):
            try:
                doc = load_results(run_dir)
            except ResultsError as exc:
                notes.append(f"skipped {run_dir}: {exc}")
                continue
            rid = str(doc["run_id"])
            disk[rid] = StoredRun(rid, doc, run_dir.resolve(), ("disk",))
    when = {rid: _started_epoch(run.doc) for rid, run in disk.items()}
    in_redis: set[str] = set()
    client = None
    redis_error = None
    if redis_url is not None:
        try:
            client = interactive_client(redis_url)
            index = cast(
                "list[tuple[bytes, float]]", client.zrange(keys.RUNS_INDEX, 0, -1, withscores=True)
            )
            for raw_id, score in index:
                rid = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                in_redis.add(rid)
                when.setdefault(rid, float(score))
        except redis.RedisError as exc:
            redis_error = f"Redis at {redact_url(redis_url)} is unreachable ({exc})"
            notes.append(f"{redis_error}: listing the results directory only")
            client = None
    runs = []
    try:
        for rid in sorted(when, key=lambda r: when[r], reverse=True)[:limit]:
            if rid in disk:
                run = disk[rid]
                sources = ("disk", "redis") if rid in in_redis else ("disk",)
                runs.append(StoredRun(rid, run.doc, run.run_dir, sources))
                continue
            assert client is not None
            try:
                summary = _redis_summary(client, rid)
            except (redis.RedisError, ResultsError) as exc:
                notes.append(f"skipped {rid}: {exc}")
                continue
            if summary is None:
                notes.append(f"skipped {rid}: indexed in Redis but its summary is gone")
                continue
            runs.append(StoredRun(rid, summary, None, ("redis",)))
    finally:
        if client is not None:
            client.close()
    return Listing(runs, notes, redis_error)


def median_repeat(row: dict[str, Any]) -> int:
    """The repeat index whose wall time is the median (``bench.ModelRun.median_index``):
    the repeat jobs.csv and the timeline show."""
    values = wall_values(row)
    order = sorted(range(len(values)), key=lambda i: values[i])
    return order[(len(order) - 1) // 2]


def materialize(run_id: str, out_dir: Path, redis_url: str) -> tuple[Path, int]:
    """Write ``<out_dir>/<run_id>/results.json`` (and jobs.csv while Redis still holds the job
    records) from Redis alone, so a run whose directory is gone can be reported again.
    Returns the run directory and the number of job rows written (0: records expired)."""
    client = interactive_client(redis_url)
    try:
        doc = _redis_summary(client, run_id)
        if doc is None:
            raise RunNotFound(f"no run {run_id!r} in Redis at {redact_url(redis_url)}")
        store = TimingStore(client)
        rows: list[tuple[int, JobRecord]] = []
        for row in doc["results"]:
            rep = median_repeat(row)
            scope = keys.scope(run_id, str(row["model"]), str(row["workload"]), rep)
            rows.extend((rep, record) for record in store.load(scope))
    except redis.RedisError as exc:
        raise RunNotFound(f"Redis at {redact_url(redis_url)} is unreachable ({exc})") from None
    finally:
        client.close()
    run_dir = out_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / RESULTS_FILE, json.dumps(doc, indent=2) + "\n")
    n = write_jobs_csv(run_dir / JOBS_FILE, rows) if rows else 0
    return run_dir, n
