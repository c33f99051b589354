"""``jobbench verify RUN``: reconcile a run's jobs, so a benchmark never reports fiction.

For every scope (one model, workload and repeat) the run registered in Redis, it compares what
the producer meant to run (``n_jobs`` in the scope's meta) with what the workers left behind:

- **enqueued**: job ids with an enqueue timestamp (Celery scopes; in-process scopes enqueue
  nothing);
- **finished**: job ids with a timing record. A record is one hash field per job, so a job is
  timed exactly once however often it ran; a job that failed is finished too, with its error;
- **failed**: finished with ``outcome`` ``error``: named with the reason;
- **delivered more than once**: job ids whose task body started more than once (the ``attempts``
  hash, ``HINCRBY`` per start: a redelivery after a lost worker or connection);
- **missing**: job ids below ``n_jobs`` without a record: lost, or still running. Each one is
  named, split into *started* (its body ran at least once and never finished) and *never
  started*.

Exit codes: 0 every job accounted for (failed jobs are accounted for: they are named, with why),
1 any job missing, 2 bad input (no such run, Redis unreachable).

A scope whose meta carries ``fault_at_ns`` (the fault-injection suite writes it) also gets its
recovery: seconds from the fault until the last job delivered more than once finished.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

from producer.errors import ResultsError, RunNotFound, ServiceError
from producer.history import interactive_client
from producer.untrusted import printable
from shared import keys
from shared.settings import redact_url
from shared.timings import JobRecord

#: Job ids (and errors) listed per scope and category in the table; JSON lists them all.
SHOWN_IDS = 20


@dataclass(frozen=True)
class ScopeCheck:
    """The reconciliation of one scope: one model on one workload, one repeat."""

    scope: str
    model: str
    workload: str
    repeat: int
    #: Jobs the producer meant to run (the scope's meta ``n_jobs``).
    n_jobs: int
    #: Job ids with an enqueue time; None for in-process scopes, which enqueue nothing.
    enqueued: int | None
    #: Job ids with a timing record (ok or error), each counted once.
    finished: int
    #: Job id -> error, for the finished jobs whose outcome is ``error``.
    failed: dict[int, str]
    #: Job id -> how many times its body started, for those started more than once.
    redelivered: dict[int, int]
    #: Job ids below ``n_jobs`` without a record.
    missing: list[int]
    #: The missing jobs whose body started at least once (lost in flight, or still running).
    missing_started: list[int]
    #: Records whose job id is not below ``n_jobs`` (never expected; listed if they exist).
    unexpected: list[int] = field(default_factory=list)
    #: Job id -> times the producer published its message again after the broker lost it
    #: between a worker's pop and its bookkeeping (``producer.runners.celery.redrive``).
    republished: dict[int, int] = field(default_factory=dict)
    #: The fault injected into this scope by the fault suite, if any.
    fault: str | None = None
    fault_at_ns: int | None = None
    #: Seconds from the fault until the last job delivered more than once finished.
    recovery_s: float | None = None

    @property
    def accounted(self) -> bool:
        return not self.missing and not self.unexpected

    @property
    def status(self) -> str:
        return "ok" if self.accounted else "MISSING"

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["failed"] = {str(k): v for k, v in self.failed.items()}
        doc["redelivered"] = {str(k): v for k, v in self.redelivered.items()}
        doc["republished"] = {str(k): v for k, v in self.republished.items()}
        doc["accounted"] = self.accounted
        return doc


@dataclass(frozen=True)
class RunCheck:
    """Every scope of one run."""

    run_id: str
    scopes: list[ScopeCheck]

    @property
    def accounted(self) -> bool:
        return all(s.accounted for s in self.scopes)

    def totals(self) -> dict[str, int]:
        return {
            "n_jobs": sum(s.n_jobs for s in self.scopes),
            "enqueued": sum(s.enqueued or 0 for s in self.scopes),
            "finished": sum(s.finished for s in self.scopes),
            "failed": sum(len(s.failed) for s in self.scopes),
            "redelivered": sum(len(s.redelivered) for s in self.scopes),
            "republished": sum(len(s.republished) for s in self.scopes),
            "missing": sum(len(s.missing) for s in self.scopes),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "accounted": self.accounted,
            "totals": self.totals(),
            "scopes": [s.to_json() for s in self.scopes],
        }


# --- reconciliation -------------------------------------------------------------------------


def _int_keys(raw: dict[bytes, bytes]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for k, v in raw.items():
        try:
            out[int(k)] = v
        except ValueError:
            continue  # not a job id: never written by jobbench, ignored rather than crashing
    return out


def _meta(raw: dict[bytes, bytes]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            meta[k.decode()] = json.loads(v)
        except ValueError:
            meta[k.decode()] = v.decode(errors="replace")
    return meta


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_scope(client: redis.Redis, scope_key: str) -> ScopeCheck:
    """Reconcile one scope from its four Redis keys (read in one round trip)."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.meta(scope_key))
    pipe.hgetall(keys.records(scope_key))
    pipe.hgetall(keys.attempts(scope_key))
    pipe.hkeys(keys.enqueued(scope_key))
    raw_meta, raw_records, raw_attempts, raw_enqueued = pipe.execute()
    meta = _meta(raw_meta)
    records: dict[int, JobRecord] = {}
    for i, raw in _int_keys(raw_records).items():
        try:
            records[i] = JobRecord.from_json(raw)
        except (ValueError, TypeError) as exc:
            where = f"{keys.records(scope_key)} field {i}"
            raise ResultsError(f"{where} is not a job record: {exc}") from None
    starts = {i: int(v) for i, v in _int_keys(raw_attempts).items()}
    for i, r in records.items():  # in-process scopes count no starts; their records say 1
        starts[i] = max(starts.get(i, 0), r.attempt)
    enqueued_ids = {int(k) for k in raw_enqueued if k.isdigit()}

    n_jobs = _as_int(meta.get("n_jobs"))
    if n_jobs is None:  # no meta (expired, or foreign): expect what was enqueued or recorded
        n_jobs = len(enqueued_ids) or (max(records) + 1 if records else 0)
    missing = [i for i in range(n_jobs) if i not in records]
    # Error texts come from whatever the job touched (a server's answer): escaped for a terminal.
    failed = {
        i: printable(r.error or "error") for i, r in sorted(records.items()) if r.outcome == "error"
    }
    redelivered = {i: n for i, n in sorted(starts.items()) if n > 1}

    raw_republished = meta.get("republished")
    republished = {
        int(k): n
        for k, n in (raw_republished.items() if isinstance(raw_republished, dict) else ())
        if str(k).isdigit() and _as_int(n) is not None
    }
    fault_at_ns = _as_int(meta.get("fault_at_ns"))
    recovery_s = None
    if fault_at_ns is not None:
        again = [records[i].finished_at_ns for i in redelivered if i in records]
        if again:
            recovery_s = max(0.0, (max(again) - fault_at_ns) / 1e9)

    parts = scope_key.rsplit(":", 3)
    repeat = _as_int(meta.get("repeat"))
    return ScopeCheck(
        scope=scope_key,
        model=printable(str(meta.get("model") or (parts[1] if len(parts) == 4 else "?"))),
        workload=printable(str(meta.get("workload") or (parts[2] if len(parts) == 4 else "?"))),
        repeat=repeat if repeat is not None else _repeat_of(parts),
        n_jobs=n_jobs,
        enqueued=len(enqueued_ids) if enqueued_ids or "queue" in meta else None,
        finished=sum(1 for i in records if 0 <= i < n_jobs),
        failed=failed,
        redelivered=redelivered,
        missing=missing,
        missing_started=[i for i in missing if starts.get(i, 0) > 0],
        republished=dict(sorted(republished.items())),
        unexpected=sorted(i for i in records if not 0 <= i < n_jobs),
        fault=str(meta["fault"]) if "fault" in meta else None,
        fault_at_ns=fault_at_ns,
        recovery_s=recovery_s,
    )


def _repeat_of(parts: Sequence[str]) -> int:
    try:
        return int(parts[-1])
    except ValueError:
        return 0


def check_run(client: redis.Redis, run_id: str) -> RunCheck:
    """Reconcile every scope ``run_id`` registered; ``RunNotFound`` if it registered none."""
    members: set[bytes] = client.smembers(keys.scopes_index(run_id))  # type: ignore[assignment]
    if not members:
        raise RunNotFound(
            f"no scopes of run {run_id!r} in Redis (never run there, or its records expired)"
        )
    scopes = [check_scope(client, m.decode()) for m in members]
    scopes.sort(key=lambda s: (s.workload, s.model, s.repeat, s.scope))
    return RunCheck(run_id, scopes)


# --- output ---------------------------------------------------------------------------------


def _ids(ids: Sequence[int]) -> str:
    shown = ", ".join(map(str, ids[:SHOWN_IDS]))
    return shown + (f" (+{len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else "")


def _label(s: ScopeCheck) -> str:
    rep = f"warm-up {-s.repeat}" if s.repeat < 0 else f"repeat {s.repeat}"
    return f"{s.workload}/{s.model} {rep}"


def print_table(check: RunCheck, console: Console) -> None:
    faults = any(s.fault for s in check.scopes)
    table = Table(title=f"jobbench verify {check.run_id}", title_justify="left")
    columns = ["workload", "model", "repeat", "jobs", "enqueued", "finished", "failed"]
    columns += ["delivered >1", "missing"] + (["fault", "recovery"] if faults else []) + ["status"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("workload", "model", "fault") else "right")
    for s in check.scopes:
        row = [
            s.workload,
            s.model,
            f"w{-s.repeat}" if s.repeat < 0 else str(s.repeat),
            str(s.n_jobs),
            "-" if s.enqueued is None else str(s.enqueued),
            str(s.finished),
            str(len(s.failed)),
            str(len(s.redelivered)),
            str(len(s.missing)),
        ]
        if faults:
            recovery = "-" if s.recovery_s is None else f"{s.recovery_s:.2f} s"
            row += [s.fault or "", recovery]
        row.append(s.status)
        table.add_row(*row, style="" if s.accounted else "red")
    console.print(table)
    for s in check.scopes:
        if s.missing:
            never = [i for i in s.missing if i not in set(s.missing_started)]
            console.print(
                f"[red]{_label(s)}: {len(s.missing)} missing: {_ids(s.missing)}"
                f" (started, never finished: {_ids(s.missing_started) or 'none'};"
                f" never started: {_ids(never) or 'none'})[/red]",
                highlight=False,
            )
        if s.unexpected:
            console.print(f"[red]{_label(s)}: records for unexpected job ids: {_ids(s.unexpected)}")
        if s.failed:
            console.print(f"{_label(s)}: {len(s.failed)} failed:", highlight=False)
            for job_id, why in list(s.failed.items())[:SHOWN_IDS]:
                console.print(f"  job {job_id}: {why}", highlight=False, markup=False)
            if len(s.failed) > SHOWN_IDS:
                console.print(f"  (+{len(s.failed) - SHOWN_IDS} more)")
        if s.redelivered:
            listed = ", ".join(f"{i}×{n}" for i, n in list(s.redelivered.items())[:SHOWN_IDS])
            more = len(s.redelivered) - SHOWN_IDS
            console.print(
                f"{_label(s)}: delivered more than once: {listed}"
                + (f" (+{more} more)" if more > 0 else ""),
                highlight=False,
            )
        if s.republished:
            console.print(
                f"{_label(s)}: republished (message lost by the broker between pop and "
                f"bookkeeping): {_ids(sorted(s.republished))}",
                highlight=False,
            )
    t = check.totals()
    summary = (
        f"{t['n_jobs']} jobs: {t['finished']} finished ({t['failed']} failed), "
        f"{t['redelivered']} delivered more than once, {t['republished']} republished, "
        f"{t['missing']} missing"
    )
    if check.accounted:
        console.print(f"OK: every job accounted for. {summary}", highlight=False)
    else:
        console.print(f"[red]MISSING: {summary}[/red]", highlight=False)


def verify_run(redis_url: str, run_id: str) -> RunCheck:
    """``check_run`` against the Redis at ``redis_url``; an unreachable Redis is one line."""
    client = interactive_client(redis_url)
    try:
        return check_run(client, run_id)
    except redis.RedisError as exc:
        raise ServiceError(f"cannot read Redis at {redact_url(redis_url)}: {exc}") from None
    finally:
        client.close()
