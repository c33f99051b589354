"""The ``report``, ``history`` and ``compare`` subcommands: everything that reads stored runs and
never measures. ``producer.cli.build_parser`` calls ``register``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from producer.cli import EXIT_FAILURE, EXIT_OK, Parser, bounded, env_option
from producer.history import (
    Comparison,
    ModelChange,
    RunNotFound,
    StoredRun,
    compare_docs,
    list_runs,
    materialize,
    resolve_run,
    verdicts,
)
from producer.report import build_report, fmt_s
from producer.results import ResultsError
from producer.services import resolved_redis_url
from shared.settings import REDIS_SCHEMES, Settings, SettingsError, validate_url

EPILOG = """examples:
  jobbench report                                  # redraw report.md and charts of results/latest
  jobbench report 20260101T120000Z-ab12cd          # a run id (results/<id>/, else from Redis)
  jobbench history --limit 10                      # recent runs, from results/ and Redis
  jobbench compare results/before results/after    # per model: B/A and whether it is noise
  jobbench compare BEFORE_ID latest --fail-on-slowdown 10   # CI gate: exit 1 on >10 % slowdown
"""

#: Where history and compare look for runs.
SOURCES = ("both", "disk", "redis")
FORMATS = ("table", "json")


def redis_url(text: str) -> str:
    try:
        return validate_url(text, REDIS_SCHEMES, "--redis-url")
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(p: argparse.ArgumentParser, fmt: bool = True) -> None:
    env_option(
        p,
        "--out",
        "JOBBENCH_OUT",
        Path("results"),
        "results directory holding the <run_id>/ run directories",
        type=Path,
    )
    env_option(
        p,
        "--redis-url",
        "REDIS_URL",
        None,
        "Redis keeping every run's summary, a second source besides --out (unset: "
        "redis://127.0.0.1:6379/0 if it answers, else the embedded Redis store)",
        type=redis_url,
    )
    if fmt:
        env_option(
            p, "--format", "JOBBENCH_FORMAT", "table", "output: a table or JSON", choices=FORMATS
        )


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add ``report``, ``history`` and ``compare`` to the ``jobbench`` command line."""
    fmt = argparse.RawDescriptionHelpFormatter
    report = sub.add_parser(
        "report",
        help="rebuild report.md and the charts of a stored run (no re-run)",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    report.add_argument(
        "run",
        nargs="?",
        default="latest",
        help="run directory, results.json, run id or 'latest' (default: latest)",
    )
    _common(report, fmt=False)
    report.set_defaults(func=cmd_report)

    history = sub.add_parser(
        "history", help="list stored runs, newest first", epilog=EPILOG, formatter_class=fmt
    )
    _common(history)
    env_option(
        history,
        "--source",
        "JOBBENCH_HISTORY_SOURCE",
        "both",
        "where to look: the results directory, Redis, or both",
        choices=SOURCES,
    )
    env_option(
        history,
        "--limit",
        "JOBBENCH_HISTORY_LIMIT",
        20,
        "runs to list",
        type=bounded(int, 1, 100_000),
    )
    history.set_defaults(func=cmd_history)

    compare = sub.add_parser(
        "compare",
        help="compare two runs per model: ratio B/A and whether it is beyond the noise",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    compare.add_argument("a", metavar="A", help="the reference run (directory, id or 'latest')")
    compare.add_argument("b", metavar="B", help="the run to judge against A")
    _common(compare)
    env_option(
        compare,
        "--fail-on-slowdown",
        "JOBBENCH_FAIL_ON_SLOWDOWN",
        None,
        "exit 1 if any model is slower in B by more than PCT percent, beyond the noise",
        type=bounded(float, 0.0, 1_000_000.0),
        metavar="PCT",
    )
    compare.set_defaults(func=cmd_compare)


def _redis_url(args: argparse.Namespace) -> str:
    """``--redis-url``/``REDIS_URL`` as given, else the Redis every jobbench command resolves to
    (the default server, else the embedded store, started if needed)."""
    return str(args.redis_url) if args.redis_url else resolved_redis_url(Settings())


def _find_run(ref: str, args: argparse.Namespace) -> StoredRun:
    """A run on disk needs no Redis: only a run that is not there resolves (and may start) it."""
    if not args.redis_url:
        with contextlib.suppress(RunNotFound):
            return resolve_run(ref, args.out, None)
    return resolve_run(ref, args.out, _redis_url(args))


def _console() -> Console:
    console = Console()
    if not console.is_terminal:  # a pipe or a file: do not squeeze tables to 80 columns
        console = Console(width=170)
    return console


# --- report -------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    run = _find_run(args.run, args)
    run_dir = run.run_dir
    if run_dir is None:
        run_dir, n_rows = materialize(run.run_id, args.out, _redis_url(args))
        gone = "" if n_rows else "; its job records have expired, so no timeline"
        print(f"restored {run.run_id} from Redis into {run_dir}{gone}", file=sys.stderr)
    for path in build_report(run_dir):
        print(path)
    return EXIT_OK


# --- history ------------------------------------------------------------------------------


def run_digest(run: StoredRun) -> dict[str, Any]:
    """One line of history: where, when, on what, and who won."""
    doc = run.doc
    meta = doc.get("metadata", {})
    jobs = {r["workload"]: r["n_jobs"] for r in doc["results"]}
    return {
        "run_id": run.run_id,
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


def cmd_history(args: argparse.Namespace) -> int:
    out_dir = args.out if args.source in ("both", "disk") else None
    url = _redis_url(args) if args.source in ("both", "redis") else None
    listing = list_runs(out_dir, url, args.limit)
    if args.source == "redis" and listing.redis_error:
        raise ResultsError(listing.redis_error)  # the only source asked for: exit 2
    for note in listing.notes:
        print(f"jobbench: note: {note}", file=sys.stderr)
    digests = [run_digest(r) for r in listing.runs]
    if args.format == "json":
        print(json.dumps(digests, indent=2))
        return EXIT_OK
    where = " and ".join(
        w for w, on in ((str(args.out), out_dir is not None), ("Redis", url is not None)) if on
    )
    if not digests:
        print(f"no runs in {where}")
        return EXIT_OK
    table = Table(title=f"jobbench history ({where}), newest first", title_justify="left")
    for col in (
        "run id",
        "started (UTC)",
        "host",
        "cores",
        "jobs",
        "rep.",
        "winner per workload",
        "noisy",
        "stored",
    ):
        table.add_column(col)
    for d in digests:
        winners = "; ".join(
            f"{w}: {v['model']} {fmt_s(v['median_s'])}"
            + (
                f", {v['margin']:.2f}× ahead{'' if v['clear'] else ' (tie?)'}"
                if v["margin"]
                else ""
            )
            for w, v in d["winners"].items()
        )
        table.add_row(
            d["run_id"],
            str(d["started_at"] or "?")[:19].replace("T", " "),
            str(d["host"]),
            str(d["cpu_count"]),
            ", ".join(f"{w} {n}" for w, n in d["jobs"].items()),
            str(d["repeats"]),
            winners,
            str(d["noisy"] or ""),
            "+".join(d["stored"]),
        )
    _console().print(table)
    return EXIT_OK


# --- compare ------------------------------------------------------------------------------


def change_json(c: ModelChange) -> dict[str, Any]:
    return {
        "workload": c.workload,
        "model": c.model,
        "a_median_s": c.a["wall_s"]["median"],
        "b_median_s": c.b["wall_s"]["median"],
        "ratio": c.ratio,
        "change_pct": c.change_pct,
        "significant": c.sig.significant,
        "p_value": c.sig.p_value,
        "test": c.sig.method,
        "ranges_overlap": c.sig.ranges_overlap,
        "verdict": c.verdict,
        "differences": c.differences,
    }


def _compare_table(cmp: Comparison, a: StoredRun, b: StoredRun) -> Table:
    table = Table(
        title=f"A = {a.run_id}   B = {b.run_id}   (ratio B/A of median wall times; < 1 = B faster)",
        title_justify="left",
    )
    for col, justify in (
        ("workload", "left"),
        ("model", "left"),
        ("A median", "right"),
        ("B median", "right"),
        ("B/A", "right"),
        ("change", "right"),
        ("verdict", "left"),
        ("test", "left"),
        ("notes", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in cmp.changes:
        style = "" if not c.sig.significant else ("red" if c.ratio > 1 else "green")
        notes = list(c.differences)
        for side, row in (("A", c.a), ("B", c.b)):
            if row["wall_s"].get("noisy"):
                notes.append(f"{side} noisy ±{row['wall_s']['spread_rel']:.0%}")
        table.add_row(
            c.workload,
            c.model,
            fmt_s(c.a["wall_s"]["median"]),
            fmt_s(c.b["wall_s"]["median"]),
            f"{c.ratio:.3f}",
            f"{c.change_pct:+.1f} %",
            c.verdict,
            c.sig.describe(),
            ", ".join(notes),
            style=style,
        )
    for workload in dict.fromkeys(c.workload for c in cmp.changes):
        gm = cmp.geometric_mean(workload)
        if gm is not None:
            table.add_row(
                workload,
                "geometric mean",
                "",
                "",
                f"{gm:.3f}",
                f"{(gm - 1) * 100:+.1f} %",
                "",
                "",
                "",
                style="bold",
            )
    return table


def cmd_compare(args: argparse.Namespace) -> int:
    a = _find_run(args.a, args)
    b = _find_run(args.b, args)
    cmp = compare_docs(a.doc, b.doc)
    pct = args.fail_on_slowdown
    failing = cmp.slowdowns(pct) if pct is not None else []
    if args.format == "json":
        print(
            json.dumps(
                {
                    "a": a.run_id,
                    "b": b.run_id,
                    "changes": [change_json(c) for c in cmp.changes],
                    "geometric_mean": {
                        w: cmp.geometric_mean(w)
                        for w in dict.fromkeys(c.workload for c in cmp.changes)
                    },
                    "only_a": cmp.only_a,
                    "only_b": cmp.only_b,
                    "caveats": cmp.caveats,
                    "fail_on_slowdown_pct": pct,
                    "slowdowns": [f"{c.workload}/{c.model}" for c in failing],
                },
                indent=2,
            )
        )
    else:
        console = _console()
        if cmp.changes:
            console.print(_compare_table(cmp, a, b))
        else:
            console.print(f"A = {a.run_id} and B = {b.run_id} have no model and workload in common")
        if cmp.only_a:
            console.print(f"only in A: {', '.join(cmp.only_a)}")
        if cmp.only_b:
            console.print(f"only in B: {', '.join(cmp.only_b)}")
        for caveat in cmp.caveats:
            console.print(f"[yellow]caveat: not like for like: {caveat}[/yellow]")
        if pct is not None:
            if failing:
                listed = ", ".join(f"{c.workload}/{c.model} {c.change_pct:+.1f} %" for c in failing)
                console.print(
                    f"[red]FAIL: slower by more than {pct:g} % beyond the noise: {listed}[/red]"
                )
            else:
                console.print(f"OK: no model slower by more than {pct:g} % beyond the noise")
    return EXIT_FAILURE if failing else EXIT_OK
