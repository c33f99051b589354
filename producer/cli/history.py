"""``jobbench history``: the stored runs, newest first, from the results directory and Redis."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from producer.cli.options import (
    Subparsers,
    add_command,
    add_options,
    bounded,
    config_from,
    format_option,
    option,
    out_option,
    redis_url_option,
)
from producer.console import fmt_s, make_console
from producer.errors import EXIT_OK, ServiceError
from producer.history import StoredRun, list_runs, verdicts
from producer.results import STATUS_COMPLETE, run_status
from producer.services import resolved_redis_url
from producer.untrusted import printable

EPILOG = """examples:
  jobbench history --limit 10                      # recent runs, from results/ and Redis
  jobbench history --source redis --format json    # what Redis keeps, for machines
"""

#: Where history looks for runs.
SOURCES = ("both", "disk", "redis")


@dataclass(frozen=True)
class HistoryOptions:
    out_dir: Path = out_option()
    redis_url: str | None = redis_url_option(
        "Redis keeping every run's summary (a second source besides --out)"
    )
    format: str = format_option()
    source: str = option("both", "where to look: the results directory, Redis, or both",
                         env="JOBBENCH_HISTORY_SOURCE", choices=SOURCES)  # fmt: skip
    limit: int = option(20, "runs to list", env="JOBBENCH_HISTORY_LIMIT",
                        type=bounded(int, 1, 100_000))  # fmt: skip


def register(sub: Subparsers) -> None:
    p = add_command(sub, "history", "list stored runs, newest first", EPILOG)
    add_options(p, HistoryOptions)
    p.set_defaults(handler=run)


def run_digest(run: StoredRun) -> dict[str, Any]:
    """One line of history: where, when, on what, and who won."""
    doc = run.doc
    meta = doc.get("metadata", {})
    jobs = {r["workload"]: r["n_jobs"] for r in doc["results"]}
    return {
        "run_id": run.run_id,
        "status": run_status(doc),
        "why": (doc.get("failure") or {}).get("why"),
        "started_at": doc.get("started_at"),
        "host": meta.get("hostname"),
        "cpu_count": meta.get("cpu_count"),
        "python": meta.get("python"),
        "result_mode": meta.get("result_mode"),
        "jobs": jobs,
        "repeats": max((r["repeats"] for r in doc["results"]), default=0),
        "models": list(dict.fromkeys(r["model"] for r in doc["results"])),
        "winners": {
            v.workload: {
                "model": v.winner["model"],
                "median_s": v.winner["wall_s"]["median"],
                "margin": v.margin,
                "clear": v.clear,
            }
            for v in verdicts(doc)
        },
        "noisy": sum(1 for r in doc["results"] if r["wall_s"].get("noisy")),
        "failed_jobs": sum(int(r.get("n_error") or 0) for r in doc["results"]),
        "stored": list(run.sources),
        "run_dir": str(run.run_dir) if run.run_dir else None,
    }


def _winners(d: dict[str, Any]) -> str:
    return "; ".join(
        f"{w}: {v['model']} {fmt_s(v['median_s'])}"
        + (f", {v['margin']:.2f}× ahead{'' if v['clear'] else ' (tie?)'}" if v["margin"] else "")
        for w, v in d["winners"].items()
    )


def run(args: argparse.Namespace) -> int:
    opts = config_from(HistoryOptions, args)
    out_dir = opts.out_dir if opts.source in ("both", "disk") else None
    redis_asked = opts.source in ("both", "redis")
    url = (opts.redis_url or resolved_redis_url()) if redis_asked else None
    listing = list_runs(out_dir, url, opts.limit)
    if opts.source == "redis" and listing.redis_error:
        raise ServiceError(listing.redis_error)  # the only source asked for: exit 2
    for note in listing.notes:
        print(f"jobbench: note: {printable(note)}", file=sys.stderr)
    digests = [run_digest(r) for r in listing.runs]
    if opts.format == "json":
        print(json.dumps(digests, indent=2))
        return EXIT_OK
    where = " and ".join(
        w for w, on in ((str(opts.out_dir), out_dir is not None), ("Redis", url is not None)) if on
    )
    if not digests:
        print(f"no runs in {where}")
        return EXIT_OK
    table = Table(title=f"jobbench history ({where}), newest first", title_justify="left")
    columns = ("run id", "status", "started (UTC)", "host", "cores", "jobs", "rep.",
               "winner per workload", "noisy", "stored")  # fmt: skip
    for col in columns:
        table.add_column(col)
    for d in digests:
        table.add_row(
            d["run_id"],
            "" if d["status"] == STATUS_COMPLETE else str(d["status"]).upper(),
            str(d["started_at"] or "?")[:19].replace("T", " "),
            str(d["host"]),
            str(d["cpu_count"]),
            ", ".join(f"{w} {n}" for w, n in d["jobs"].items()),
            str(d["repeats"]),
            _winners(d),
            str(d["noisy"] or ""),
            "+".join(d["stored"]),
        )
    make_console().print(table)
    return EXIT_OK
