"""``jobbench compare A B``: per model, the ratio B/A of median wall times and whether it is
beyond the noise; ``--fail-on-slowdown`` makes it a CI gate."""

from __future__ import annotations

import argparse
import json
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
from producer.errors import EXIT_FAILURE, EXIT_OK
from producer.history import Comparison, ModelChange, StoredRun, compare_docs, resolve_run
from producer.services import resolved_redis_url

EPILOG = """examples:
  jobbench compare results/before results/after    # per model: B/A and whether it is noise
  jobbench compare BEFORE_ID latest --fail-on-slowdown 10   # CI gate: exit 1 on >10 % slowdown
"""


@dataclass(frozen=True)
class CompareOptions:
    out_dir: Path = out_option()
    redis_url: str | None = redis_url_option(
        "Redis keeping every run's summary (a second source besides --out)"
    )
    format: str = format_option()
    fail_on_slowdown: float | None = option(
        None, "exit 1 if any model is slower in B by more than PCT percent, beyond the noise",
        env="JOBBENCH_FAIL_ON_SLOWDOWN", type=bounded(float, 0.0, 1_000_000.0), metavar="PCT",
    )  # fmt: skip


def register(sub: Subparsers) -> None:
    p = add_command(
        sub, "compare",
        "compare two runs per model: ratio B/A and whether it is beyond the noise", EPILOG,
    )  # fmt: skip
    p.add_argument("a", metavar="A", help="the reference run (directory, id or 'latest')")
    p.add_argument("b", metavar="B", help="the run to judge against A")
    add_options(p, CompareOptions)
    p.set_defaults(handler=run)


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


def run(args: argparse.Namespace) -> int:
    opts = config_from(CompareOptions, args)
    # Runs on disk need no Redis: only a run id that is not there resolves (and may start) it.
    redis_url = opts.redis_url or resolved_redis_url
    a = resolve_run(args.a, opts.out_dir, redis_url)
    b = resolve_run(args.b, opts.out_dir, redis_url)
    cmp = compare_docs(a.doc, b.doc)
    pct = opts.fail_on_slowdown
    failing = cmp.slowdowns(pct) if pct is not None else []
    if opts.format == "json":
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
        console = make_console()
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
