"""What the readers of a result row (the table, report.md, the charts, the goals) need to know
about its model, without ever branching on the model's name or family.

The bench writes these facts into every row it summarizes (``row_facts``), so a results.json
renders on its own. Rows written before a fact was stored get it from their model's class, found
by name (``producer.runners.registry``); a model this version does not know is neutral (no
baseline, shown in the timeline, no notes, no caveat).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from producer.runners import registry
from producer.runners.base import Runner
from shared import jobspec


@dataclass(frozen=True)
class ModelFacts:
    """A row's model as its readers see it."""

    #: The group label (results.json ``family``), for display and chart colours only.
    family: str
    #: The baseline speedups and the CPU ideal are relative to.
    baseline: bool
    #: Drawn on the job timeline.
    in_timeline: bool
    #: Short notes for the results table.
    notes: tuple[str, ...]
    #: A line for the report's caveats, or None.
    caveat: str | None


def row_facts(cls: type[Runner], row: Mapping[str, Any]) -> dict[str, Any]:
    """The facts the bench adds to a summarized ``row`` of model class ``cls`` (which already
    holds ``family``, as every schema-1 row does)."""
    return {
        "baseline": cls.baseline,
        "in_timeline": cls.in_timeline,
        "notes": [*cls.notes(row), *job_notes(cls, row)],
        "caveat": cls.caveat,
    }


#: The note of a row that ran an ``async def`` job on a loop per worker thread (not gathered).
LOOP_PER_THREAD_NOTE = "async job: one event loop per worker thread"


def job_notes(cls: type[Runner], row: Mapping[str, Any]) -> list[str]:
    """What the row's job adds to its notes: an ``async def`` job in a model that does not gather
    it runs on an event loop per worker thread (or process), and says so."""
    workload = str(row.get("workload", ""))
    if cls.native_async or not jobspec.is_user_job(workload):
        return []
    try:
        async_job = jobspec.kind(workload) == "async"
    except jobspec.JobSpecError:
        return []  # a stored row whose job no longer imports: nothing to add
    return [LOOP_PER_THREAD_NOTE] if async_job else []


def facts(row: Mapping[str, Any]) -> ModelFacts:
    """The facts of ``row``: stored in it, else (older results) from its model's class."""
    stored = {"baseline", "in_timeline", "notes", "caveat"}
    if stored <= row.keys():
        known: Mapping[str, Any] = row
    else:
        cls = registry.find(str(row["model"]))
        defaults = {"family": cls.family, **row_facts(cls, row)} if cls is not None else {}
        known = {**defaults, **row}
    return ModelFacts(
        family=str(known.get("family", "")),
        baseline=bool(known.get("baseline", False)),
        in_timeline=bool(known.get("in_timeline", True)),
        notes=tuple(known.get("notes") or ()),
        caveat=known.get("caveat"),
    )


def baseline_row(rows: list[dict[str, Any]], workload: str) -> dict[str, Any] | None:
    """The baseline's row of ``workload`` among ``rows``, if the run has one."""
    return next((r for r in rows if r["workload"] == workload and facts(r).baseline), None)
