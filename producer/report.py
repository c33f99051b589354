"""report.md and charts for a run directory, rebuilt from its stored files alone.

The report leads with the decision (which model wins each workload, by how much, how close to
the physical limit) and says right under it how far to trust it (spread, repeats, caveats);
the full table and the metadata follow. Nothing here re-runs anything: ``results.json`` and
``jobs.csv`` are the only inputs, so ``jobbench report`` can redraw any stored run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from producer import charts
from producer.console import fmt_s
from producer.history import Verdict, verdicts, workloads_of
from producer.results import JOBS_FILE, ResultsError, atomic_write, load_results
from producer.runners.facts import baseline_row, facts
from producer.stats import SPREAD_WARN_FRACTION
from producer.untrusted import printable

REPORT_FILE = "report.md"
WALL_CHART = "wall_time.png"
TIMELINE_CHART = "timeline.png"
#: Fewer repeats than this and the spread itself is a guess: say so.
MIN_TRUSTED_REPEATS = 3


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}×"


def _code(name: object) -> str:
    return f"`{name}`"


def _cell(text: object) -> str:
    return printable(str(text)).replace("|", "\\|")


def _table(header: list[str], rows: Iterable[list[str]], align: str) -> list[str]:
    """A Markdown table; ``align`` holds one ``l`` or ``r`` per column."""
    marks = [":--" if a == "l" else "--:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _latency_ms(doc: dict[str, Any], row: dict[str, Any]) -> float | None:
    """The per-request latency the IO ideal was computed from."""
    configured = doc.get("metadata", {}).get("target", {}).get("latency_ms")
    if configured is not None:
        return float(configured)
    ideal, conc = row.get("ideal_s"), row.get("params", {}).get("concurrency")
    if ideal is None or not conc:
        return None
    rounds: int = math.ceil(int(row["n_jobs"]) / int(conc))
    return 1000.0 * float(ideal) / rounds


def _workload_label(doc: dict[str, Any], workload: str) -> str:
    rows = [r for r in doc["results"] if r["workload"] == workload]
    n_jobs = rows[0]["n_jobs"] if rows else "?"
    if workload == "io":
        latency = _latency_ms(doc, rows[0]) if rows else None
        local = doc.get("metadata", {}).get("target", {}).get("local")
        where = "local target" if local else "remote target"
        at = f" at {latency:g} ms" if latency is not None else ""
        return f"IO ({n_jobs} HTTP GETs{at}, {where})"
    if workload == "cpu":
        return f"CPU ({n_jobs} pure-Python sieve jobs)"
    return f"{workload} ({n_jobs} jobs)"


def ideal_formula(doc: dict[str, Any], row: dict[str, Any]) -> str:
    """How ``row['ideal_s']`` was obtained, with the numbers filled in."""
    ideal = row.get("ideal_s")
    if ideal is None:
        return "no ideal (no sequential run to derive it from)"
    conc = row.get("params", {}).get("concurrency", "?")
    if row["workload"] == "cpu":
        cores = doc.get("metadata", {}).get("cpu_count", "?")
        seq = baseline_row(doc["results"], "cpu")
        seq_s = fmt_s(seq["wall_s"]["median"]) if seq else "?"
        return (
            f"{fmt_s(ideal)} = sequential median {seq_s} ÷ min({cores} cores, concurrency {conc})"
        )
    latency = _latency_ms(doc, row)
    shown = f"{latency:g} ms" if latency is not None else "latency"
    return f"{fmt_s(ideal)} = {shown} × ⌈{row['n_jobs']} / {conc}⌉"


def _spread(row: dict[str, Any]) -> str:
    wall = row["wall_s"]
    return f"{wall.get('spread_rel', 0.0):.0%}" + (" ⚠" if wall.get("noisy") else "")


def _verdict_lines(doc: dict[str, Any], v: Verdict) -> list[str]:
    w = v.winner
    wall = w["wall_s"]
    head = (
        f"- **{_workload_label(doc, v.workload)}: {_code(w['model'])} wins** with "
        f"{fmt_s(wall['median'])} median (min–max {fmt_s(wall['min'])} – {fmt_s(wall['max'])} over "
        f"{w['repeats']} repeats)"
    )
    if v.runner_up is not None and v.margin is not None and v.vs_runner_up is not None:
        ru = v.runner_up
        head += (
            f", **{v.margin:.2f}× faster than the runner-up {_code(ru['model'])}** "
            f"({fmt_s(ru['wall_s']['median'])}; {v.vs_runner_up.describe()})"
        )
    seq = w.get("speedup_vs_sequential")
    winner_is_baseline = facts(w).baseline
    if not winner_is_baseline and seq is not None:
        head += f" and {seq:.3g}× faster than sequential"
    head += "."
    lines = [head]
    if w.get("efficiency") is not None:
        lines.append(
            f"  - Physical limit: it runs at **{_pct(w['efficiency'])} of the ideal** "
            f"({ideal_formula(doc, w)})."
        )
    if (w.get("efficiency") or 0.0) > 1.0:
        lines.append(
            "  - Above 100 %: the ideal's input (the sequential median, or the configured latency) "
            "overstated the cost in this run — look at the sequential row's spread."
        )
    if not v.clear and v.runner_up is not None:
        lines.append(
            f"  - ⚠ The lead over {_code(v.runner_up['model'])} is not beyond the noise at 95 %: "
            "it may be a tie; rerun with more `--repeat` before relying on it."
        )
    trust = (
        f"  - Trust: {w['repeats']} repeats, spread {wall.get('spread_rel', 0.0):.0%} of the median"
    )
    if wall.get("noisy"):
        trust += f" — **above the {SPREAD_WARN_FRACTION:.0%} limit: the median is uncertain**"
    elif w["repeats"] < MIN_TRUSTED_REPEATS:
        trust += " — too few repeats to judge the noise"
    lines.append(trust + ".")
    if winner_is_baseline:
        lines.append(
            "  - No model beat sequential here: at this job size, the cost of spreading work "
            "(threads, processes, messages) exceeds what it buys."
        )
    if v.excluded:
        lines.append(
            "  - Left out of the ranking because some of their jobs failed: "
            + ", ".join(_code(m) for m in v.excluded)
            + "."
        )
    return lines


def _warnings(doc: dict[str, Any]) -> list[str]:
    """Everything that should make a reader doubt a number, one line each."""
    out = []
    noisy = [r for r in doc["results"] if r["wall_s"].get("noisy")]
    if noisy:
        listed = ", ".join(
            f"{r['workload']}/{_code(r['model'])} ±{r['wall_s']['spread_rel']:.0%}" for r in noisy
        )
        out.append(
            f"**Noisy** (spread above {SPREAD_WARN_FRACTION:.0%} of the median): {listed}. "
            "Their medians may move between runs; rerun with more `--repeat` on a quieter machine."
        )
    few = sorted({r["repeats"] for r in doc["results"] if r["repeats"] < MIN_TRUSTED_REPEATS})
    if few:
        out.append(
            f"**Few repeats** ({', '.join(map(str, few))}): the spread of so few values says "
            "little; use `--repeat 5` or more before acting on small differences."
        )
    for r in doc["results"]:
        if r.get("n_error"):
            first = (r.get("errors") or ["?"])[0]
            out.append(
                f"**Failed jobs**: {r['workload']}/{_code(r['model'])} had {r['n_error']} failed "
                f"jobs (first: `{first}`); its time is not comparable."
            )
        if r.get("retried"):
            out.append(
                f"**Retried requests**: {r['workload']}/{_code(r['model'])}: {r['retried']} jobs "
                f"needed more than one try ({r.get('retries', 0)} extra tries in all): the target "
                "or the network failed under this model, and its time includes the backoffs."
            )
        if r.get("redelivered"):
            out.append(
                f"**Redelivered jobs**: {r['workload']}/{_code(r['model'])} ran "
                f"{r['redelivered']} jobs more than once."
            )
        republished = (r.get("extra") or {}).get("republished")
        n_republished = sum(republished.get("values", [])) if isinstance(republished, dict) else 0
        if n_republished:
            out.append(
                f"**Republished jobs**: {r['workload']}/{_code(r['model'])}: the broker lost "
                f"{n_republished} jobs' messages between a worker's pop and its bookkeeping "
                "(docs/faults.md); the producer published them again, and its time includes the "
                "quiet period it waited before doing so."
            )
    if not any(facts(r).baseline for r in doc["results"]):
        out.append("**No sequential baseline**: speedups and the CPU ideal are not available.")
    if doc.get("metadata", {}).get("settings", {}).get("redis_source") == "embedded":
        out.append(
            "**Embedded Redis**: no Redis was configured or running, so the run's summary and "
            "job records are in jobbench's own Redis store (`jobbench redis status` shows where)."
        )
    return out


def _notes(row: dict[str, Any]) -> str:
    """Parameters beyond concurrency and per-repeat extras, generically (no model is special)."""
    notes = [
        f"{k}={v}"
        for k, v in row.get("params", {}).items()
        if k not in ("concurrency", "result_mode") and v is not None
    ]
    for key, value in row.get("extra", {}).items():
        if isinstance(value, dict) and "median" in value:
            notes.append(f"{key} {value['median']:.3g}")
    if row.get("n_error"):
        notes.append(f"**FAILED**: {row['n_error']} jobs failed")
    if row.get("retried"):
        notes.append(f"{row['retried']} retried")
    return ", ".join(notes)


def _results_tables(doc: dict[str, Any], winners: dict[str, str]) -> list[str]:
    lines: list[str] = []
    header = ["model", "family", "conc.", "median", "min – max", "IQR", "spread", "jobs/s",
              "vs sequential", "ideal", "efficiency", "startup", "notes"]  # fmt: skip
    for workload in workloads_of(doc):
        rows = [r for r in doc["results"] if r["workload"] == workload]
        lines += ["", f"### {_workload_label(doc, workload)}", ""]
        body = []
        for r in sorted(rows, key=lambda r: r["wall_s"]["median"]):
            wall = r["wall_s"]
            name = _code(r["model"])
            body.append([
                f"**{name}** ★" if winners.get(workload) == r["model"] else name,
                str(r.get("family", "")), str(r.get("params", {}).get("concurrency", "–")),
                fmt_s(wall["median"]), f"{fmt_s(wall['min'])} – {fmt_s(wall['max'])}",
                fmt_s(wall.get("iqr")),
                _spread(r),
                "–" if r.get("jobs_per_s") is None else f"{r['jobs_per_s']:,.0f}",
                _x(r.get("speedup_vs_sequential")), fmt_s(r.get("ideal_s")),
                _pct(r.get("efficiency")), fmt_s(r.get("startup", {}).get("startup_s")), _notes(r),
            ])  # fmt: skip
        lines += _table(header, body, "llrrrrrrrrrrl")
    return lines


def _balance(counts: dict[str, int]) -> str:
    if not counts:
        return "–"
    lo, hi = min(counts.values()), max(counts.values())
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def _pq(block: dict[str, float], *names: str) -> str:
    return " / ".join(fmt_s(block.get(n)) for n in names) if block else "–"


def _latency_table(doc: dict[str, Any]) -> list[str]:
    header = ["workload", "model", "run p50 / p95 / p99", "queue wait p50 / p95",
              "end-to-end p95", "processes", "threads", "jobs per process"]  # fmt: skip
    body = [
        [r["workload"], _code(r["model"]), _pq(r.get("run_s", {}), "p50", "p95", "p99"),
         _pq(r.get("queue_wait_s", {}), "p50", "p95"), _pq(r.get("end_to_end_s", {}), "p95"),
         str(r.get("n_processes", "–")), str(r.get("n_threads", "–")),
         _balance(r.get("jobs_per_process", {}))]
        for r in doc["results"]
    ]  # fmt: skip
    return _table(header, body, "llrrrrrr")


def _balance_table(doc: dict[str, Any]) -> list[str]:
    """Per model: lanes, busy time per lane, the tail and the share of the window it costs."""
    header = ["workload", "model", "lanes", "busy per lane", "tail (median)", "tail share",
              "tail share min – max"]  # fmt: skip
    body = []
    for r in doc["results"]:
        bal = r.get("balance") or {}
        if not bal or bal.get("lanes", 0) < 2:
            continue
        share = bal["tail_share"]
        body.append([
            r["workload"], _code(r["model"]), str(bal["lanes"]),
            f"{fmt_s(bal['busy_s_min'])} – {fmt_s(bal['busy_s_max'])}",
            fmt_s(bal["tail_s"]["median"]), _pct(share["median"]),
            f"{_pct(share['min'])} – {_pct(share['max'])}",
        ])  # fmt: skip
    if not body:
        return []
    return [
        "", "### Load balance", "",
        *_table(header, body, "llrrrrr"), "",
        "*The tail runs from the first lane (process, or thread) going idle to the last job's "
        "end: time the other lanes could have saved with an even split. Its share is of the "
        "window from the first job's start to the last one's end, per repeat (median and range "
        "over the repeats). A rising job cost with contiguous chunks (Pool.map's rule) puts the "
        "dearest jobs on the last worker; the `*_factoring` variants shrink the chunks instead.*",
    ]  # fmt: skip


def _stages_table(doc: dict[str, Any]) -> list[str]:
    """The rows that measured their stages (``stages_s``: the Celery fetch path with
    ``--fetch-trace``), p50 / p95 of each stage; nothing when no row did."""
    rows = [r for r in doc["results"] if r.get("stages_s")]
    if not rows:
        return []
    stages = list(dict.fromkeys(k for r in rows for k in r["stages_s"]))
    header = ["workload", "model", *(f"{k.replace('_to_', ' → ').replace('_', ' ')} p50 / p95"
                                     for k in stages)]  # fmt: skip
    body = [
        [r["workload"], _code(r["model"]), *(_pq(r["stages_s"].get(k, {}), "p50", "p95")
                                             for k in stages)]
        for r in rows
    ]  # fmt: skip
    return [
        "", "### Where each message's time went (fetch trace)", "",
        *_table(header, body, "ll" + "r" * len(stages)), "",
        "*Per message (publish → received by the worker's consumer → started by its pool), then "
        "per job (→ the job's start, its run), over every repeat; the consumer thread's CPU per "
        "message and share of the wall time are in the notes (`fetch_consumer_*`).*",
    ]  # fmt: skip


def _caveats(doc: dict[str, Any]) -> list[str]:
    meta = doc.get("metadata", {})
    cfg = meta.get("config", {})
    cores = meta.get("cpu_count", "?")
    mode = meta.get("result_mode", cfg.get("mode", "digest"))
    target = meta.get("target", {})
    repeats = "/".join(sorted({str(r["repeats"]) for r in doc["results"]}))
    order = "shuffled per repeat" if cfg.get("shuffle", True) else "fixed"
    if cfg.get("seed") is not None:
        order += f" (seed {cfg['seed']})"
    out = [
        f"**Same machine, {cores} cores.** The load generator, the HTTP target, Redis and every "
        "worker share these cores: a model that needs more cores than are left competes with its "
        "own infrastructure. Results transfer to another machine only as ratios, and only roughly.",
        "**Start-up is excluded from wall time.** Pools and Celery workers are started (and "
        "warmed up) before the clock starts; the *startup* column shows that cost separately. "
        "For short-lived scripts it may dominate.",
        f"**What a job returns: `{mode}`** (metadata.result_mode). "
        + (
            "Each job hands back a short digest (a fingerprint of the primes or the body), so the "
            "comparison measures execution, not moving results between processes; `--result full` "
            "makes every model pay for shipping the whole result."
            if mode == "digest"
            else "Each job hands back its whole result (primes list, response body): models that "
            "move results between processes or over a broker pay for it."
        ),
        "**Ideal (physical limit).** CPU: sequential median ÷ min(cores, concurrency) — perfect "
        "parallelism with no overhead. IO: latency × ⌈n_jobs / concurrency⌉ — every request "
        "waits only for the target. *Efficiency* = ideal ÷ median (100 % = at the limit).",
        f"**Statistics.** Median of {repeats} timed repeats after {cfg.get('warmup', '?')} untimed "
        f"warm-up run(s) per model; model order {order}. Spread = IQR (max–min below 4 repeats) "
        f"÷ median, flagged above {SPREAD_WARN_FRACTION:.0%}. Raw values are in "
        "results.json (`wall_s.values`). Winners are tested against the runner-up with Welch's "
        "t-test on those values (95 %).",
        "**The timeline shows one repeat** (each model's median one) from jobs.csv; times are "
        "wall-clock nanoseconds shared by all processes of one host.",
    ]
    if target.get("local") is False or target.get("latency_ms") is None:
        out.append(
            "**Remote IO target**: the IO ideal uses a latency estimated as sequential median ÷ "
            "jobs, and network variance adds to the spread."
        )
    if cfg.get("jitter_ms"):
        out.append(f"**Jitter**: the target added ±{cfg['jitter_ms']:g} ms per request.")
    # Each model's own caveat, once, in the order its rows come.
    out.extend(c for c in dict.fromkeys(facts(r).caveat for r in doc["results"]) if c)
    return [f"- {c}" for c in out]


def _metadata(doc: dict[str, Any]) -> list[str]:
    meta = doc.get("metadata", {})
    cfg = meta.get("config", {})
    settings = meta.get("settings", {})
    target = meta.get("target", {})
    packages = ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items())
    rows = [
        ["run id", f"`{doc['run_id']}` (results schema {doc.get('schema')})"],
        ["started → finished", f"{doc.get('started_at', '?')} → {doc.get('finished_at', '?')}"],
        ["host", f"{meta.get('hostname', '?')} ({meta.get('machine', '?')})"],
        ["platform", str(meta.get("platform", "?"))],
        ["python", f"{meta.get('implementation', '')} {meta.get('python', '?')}".strip()],
        ["usable cores", str(meta.get("cpu_count", "?"))],
        ["packages", packages or "?"],
        ["redis", f"{settings.get('redis_resolved', '?')} ({settings.get('redis_source', '?')})"],
        ["IO target", f"{target.get('url', '?')} (latency {target.get('latency_ms')} ms, "
                      f"jitter {cfg.get('jitter_ms', 0)} ms)"],
        ["repeats / warm-up", f"{cfg.get('repeat', '?')} / {cfg.get('warmup', '?')}"],
        ["jobs return", str(meta.get("result_mode", "?"))],
    ]  # fmt: skip
    lines = _table(["", ""], rows, "ll")
    lines += [
        "",
        "<details><summary>Full metadata (JSON)</summary>",
        "",
        "```json",
        json.dumps(meta, indent=2, sort_keys=True),
        "```",
        "",
        "</details>",
    ]
    return lines


def _prediction_sections(doc: dict[str, Any]) -> list[str]:
    """ "Predicted vs measured" (each row's prediction, its error and the sentence that explains
    it) and "Advice" per job, when the run made predictions (docs/predictions.md)."""
    rows = [r for r in doc["results"] if r.get("prediction")]
    if not rows:
        return []
    lines = [
        "## Predicted vs measured",
        "",
        "*Each model's wall time predicted by the cost model before it ran, from the probe "
        "(below) and this machine's measured costs; error = (predicted − measured) / measured.*",
        "",
    ]
    lines += _table(
        ["workload", "model", "predicted s", "measured s", "error", "why"],
        (
            [str(r["workload"]), _code(r["model"]), f"{r['prediction']['predicted_s']:.3f}",
             f"{r['wall_s']['median']:.3f}",
             "–" if r["prediction"].get("error_pct") is None
             else f"{r['prediction']['error_pct']:+.0f} %",
             str(r["prediction"]["explanation"])]
            for r in rows
        ),
        "llrrrl",
    )  # fmt: skip
    for workload, p in (doc.get("probe") or {}).items():
        wall = p["wall_s"]
        lines += [
            "",
            f"Probe of `{_cell(workload)}` (untimed, before the models): {p['n_sampled']} of "
            f"{p['n_jobs']} jobs sampled across the list in {p['took_s']:.2f} s; per job median "
            f"{wall['median'] * 1e3:.3g} ms (p10 {wall['p10'] * 1e3:.3g}, p90 "
            f"{wall['p90'] * 1e3:.3g}, cv {wall['cv']:.2f}); CPU ÷ wall {p['cpu_share']:.0%} "
            f"(the GIL share); argument {p['arg_bytes']['pickle']} B pickled / "
            f"{p['arg_bytes']['json']} B JSON, result {p['result_bytes']['pickle']} B / "
            f"{p['result_bytes']['json']} B.",
        ]
    advice = doc.get("advice") or {}
    if advice:
        lines += ["", "## Advice", ""]
        for workload, block in advice.items():
            lines += [f"### {_cell(workload)}", ""]
            lines += [f"- {printable(str(line))}" for line in block.get("lines", [])]
            lines.append("")
    return [*lines, ""]


def render_markdown(doc: dict[str, Any], chart_notes: dict[str, str | None]) -> str:
    """report.md for ``doc``; ``chart_notes`` maps each chart file to None (drawn) or the reason
    it could not be drawn."""
    meta = doc.get("metadata", {})
    verdict_list = verdicts(doc)
    winners = {v.workload: str(v.winner["model"]) for v in verdict_list}
    models = list(dict.fromkeys(str(r["model"]) for r in doc["results"]))
    lines = [
        f"# jobbench report — run `{doc['run_id']}`",
        "",
        f"{doc.get('started_at', '?')} · {meta.get('hostname', '?')} · "
        f"{meta.get('cpu_count', '?')} cores · Python {meta.get('python', '?')} · "
        f"jobs return `{meta.get('result_mode', '?')}` · models: "
        + ", ".join(_code(m) for m in models),
        "",
    ]
    failure = doc.get("failure") or {}
    if doc.get("status", "complete") != "complete":
        lines += [
            "> [!CAUTION]",
            f"> **This run is {doc['status']}**: {failure.get('why', '?')} (during: "
            f"{failure.get('during', '?')}). Only what completed is below; "
            f"`jobbench verify {doc['run_id']}` names every missing job.",
        ]
        lines += [f"> - not complete: {k}, {v}" for k, v in failure.get("incomplete", {}).items()]
        lines += [f"> - clean-up: {n}" for n in failure.get("cleanup", [])]
        lines.append("")
    lines += ["## Verdict", ""]
    for v in verdict_list:
        lines += _verdict_lines(doc, v)
    if not verdict_list:
        lines.append("- No model completed its jobs without errors: there is no winner.")
    warnings = _warnings(doc)
    if warnings:
        lines += ["", "> [!WARNING]"]
        lines += [f"> - {w}" for w in warnings]
    lines += ["", "## Charts", ""]
    captions = {
        WALL_CHART: (
            "Wall time per model",
            "Median wall time per repeat (bars, fastest on top, ★ = winner), min–max over the "
            "repeats (whiskers), the ideal (black tick). Hatched bars are noisy.",
        ),
        TIMELINE_CHART: (
            "Job timeline",
            "Every job of each model's median repeat as a bar on the lane of the thread that ran "
            "it, coloured by process. Many lanes of one colour busy at once: concurrency (threads "
            "or coroutines waiting together; on CPU work they take turns under the GIL). Lanes of "
            "different colours busy at once: parallelism (processes on separate cores). "
            "Sequential is left out (one lane, jobs back to back).",
        ),
    }
    for name, (title, caption) in captions.items():
        reason = chart_notes.get(name)
        if reason is None:
            lines += [f"![{title}]({name})", "", f"*{caption}*", ""]
        else:
            lines += [f"*{title}: not drawn — {reason}.*", ""]
    lines += ["## Results"]
    lines += _results_tables(doc, winners)
    lines += ["", "### Per-job latency and how the work was spread", ""]
    lines += _latency_table(doc)
    lines += _balance_table(doc)
    lines += _stages_table(doc)
    lines += [
        "",
        "*Percentiles over every job of every repeat; processes and threads count all repeats "
        "(a model that starts fresh threads per repeat shows repeats × threads).*",
        "",
    ]
    lines += _prediction_sections(doc)
    lines += [
        "## How much to trust this",
        "",
    ]
    lines += _caveats(doc)
    lines += ["", "## Metadata", ""]
    lines += _metadata(doc)
    lines += [
        "",
        "## Files",
        "",
        "`results.json` (summary, raw repeat values), `jobs.csv` (one row per job of each model's "
        "median repeat), the charts above. Rebuild this report without re-running: "
        f"`jobbench report {doc['run_id']}`; compare with another run: "
        f"`jobbench compare <other> {doc['run_id']}`.",
        "",
    ]
    return "\n".join(lines)


def build_report(run_dir: Path) -> list[Path]:
    """Write the human-readable report of ``run_dir``; returns the files written."""
    doc = load_results(run_dir)
    written: list[Path] = []
    notes: dict[str, str | None] = {}
    wall = run_dir / WALL_CHART
    try:
        written.append(charts.draw_wall_time(doc, wall))
        notes[WALL_CHART] = None
    except (ResultsError, ValueError) as exc:  # the report is worth writing without its chart
        notes[WALL_CHART] = str(exc)
    timeline = run_dir / TIMELINE_CHART
    jobs_path = run_dir / JOBS_FILE
    try:
        if not jobs_path.is_file():
            raise ResultsError(f"no {JOBS_FILE} in the run directory")
        written.append(charts.draw_timeline(doc, charts.read_jobs_csv(jobs_path), timeline))
        notes[TIMELINE_CHART] = None
    except (ResultsError, ValueError) as exc:
        notes[TIMELINE_CHART] = str(exc)
        timeline.unlink(missing_ok=True)  # a stale picture must not contradict the report
    report = run_dir / REPORT_FILE
    atomic_write(report, render_markdown(doc, notes))
    written.append(report)
    return written
