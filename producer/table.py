"""The results table printed at the end of a run (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from producer.console import make_console
from producer.runners.facts import facts
from producer.untrusted import printable


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


#: A tail (first lane idle to the end) above this share of the jobs' window is named in the notes:
#: below it, the lanes finished together as far as a user can tell.
TAIL_NOTE_SHARE = 0.05


def tail_note(row: dict[str, Any]) -> str | None:
    """``tail 1.20s (24%)`` when the median repeat's lanes did not finish together."""
    bal = row.get("balance") or {}
    share = (bal.get("tail_share") or {}).get("median")
    if share is None or share < TAIL_NOTE_SHARE or bal.get("lanes", 0) < 2:
        return None
    return f"tail {bal['tail_s']['median']:.2f}s ({share:.0%})"


def prediction_cell(row: dict[str, Any]) -> str:
    """The cost model's prediction and its error against the median: ``0.307 -18%`` (``-``
    when the run made none)."""
    pred = row.get("prediction") or {}
    err = pred.get("error_pct")
    return _fmt(pred.get("predicted_s"), ".3f") + ("" if err is None else f" {err:+.0f}%")


def probe_lines(doc: dict[str, Any]) -> list[str]:
    """One line per probed workload: what the probe measured before the models ran."""
    out = []
    for workload, p in (doc.get("probe") or {}).items():
        wall = p["wall_s"]
        out.append(
            f"probe {printable(str(workload))}: {p['n_sampled']} of {p['n_jobs']} jobs in "
            f"{p['took_s']:.2f}s (untimed), per job median {wall['median'] * 1e3:.3g} ms "
            f"(p10 {wall['p10'] * 1e3:.3g}, p90 {wall['p90'] * 1e3:.3g}, cv {wall['cv']:.2f}), "
            f"CPU/wall {p['cpu_share']:.0%}, arg+result pickle "
            f"{(p['arg_bytes']['pickle'] or 0) + (p['result_bytes']['pickle'] or 0)} B"
        )
    return out


def results_table(doc: dict[str, Any]) -> Table:
    meta = doc.get("metadata", {})
    table = Table(
        title=f"jobbench {doc['run_id']}  ·  {meta.get('cpu_count', '?')} cores  ·  "
        f"jobs return: {meta.get('result_mode', 'digest')}",
        title_justify="left",
    )
    for col, justify in (
        ("workload", "left"), ("model", "left"), ("jobs", "right"), ("conc.", "right"),
        ("median s", "right"), ("min–max s", "right"), ("IQR s", "right"), ("jobs/s", "right"),
        ("speedup", "right"), ("ideal s", "right"), ("effic.", "right"),
        ("predicted s", "right"), ("notes", "left"),
    ):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in doc["results"]:
        wall = r["wall_s"]
        notes = []
        if wall.get("noisy"):
            notes.append(f"noisy ±{wall['spread_rel']:.0%}")
        if r.get("n_error"):
            notes.append(f"FAILED: {r['n_error']} jobs failed, not comparable")
        if r.get("retried"):
            notes.append(f"{r['retried']} retried (+{r.get('retries', 0)} tries)")
        if r.get("redelivered"):
            notes.append(f"{r['redelivered']} redelivered")
        if r.get("repeats_stop", "fixed") != "fixed":
            notes.append(f"{r['repeats']} rep. ({r['repeats_stop']})")
        tail = tail_note(r)
        if tail:
            notes.append(tail)
        notes.extend(facts(r).notes)  # the model's own (enqueue time, batch, chunk size)
        speedup = r.get("speedup_vs_sequential")
        table.add_row(
            printable(str(r["workload"])), printable(str(r["model"])), str(r["n_jobs"]),
            str(r["params"].get("concurrency", "")),
            _fmt(wall["median"], ".3f"), f"{wall['min']:.3f}–{wall['max']:.3f}",
            _fmt(wall.get("iqr"), ".3f"), _fmt(r.get("jobs_per_s"), ",.0f"),
            _fmt(r.get("speedup_vs_sequential"), ".2f") + ("×" if speedup else ""),
            _fmt(r.get("ideal_s"), ".3f"), _fmt(r.get("efficiency"), ".0%"),
            prediction_cell(r),
            printable(", ".join(notes)), style="red" if r.get("n_error") else None,
        )  # fmt: skip
    return table


def print_table(doc: dict[str, Any], console: Console | None = None) -> None:
    console = console or make_console()
    console.print(results_table(doc))
    for line in probe_lines(doc):
        console.print(line, markup=False, highlight=False)
