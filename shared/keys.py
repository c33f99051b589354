"""Every Redis key jobbench uses, under one ``jobbench:`` prefix.

A *scope* is one (run, model, workload, repeat) measurement; its job records never mix with
another scope's, so runs can share a Redis without flushing it.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

PREFIX = "jobbench"
#: What a run id looks like (``new_run_id`` makes ``20260101T120000Z-ab12cd``; tests use others):
#: letters, digits and ``._:-``, so no path, glob or control character ever reaches a Redis key.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")

#: Sorted set of run ids scored by their start time (unix seconds): the run history.
RUNS_INDEX = f"{PREFIX}:runs"
#: Hash host -> JSON clock offset of that host against Redis ``TIME`` (``worker.clock``), written
#: by every worker at start: what puts timestamps of different hosts on one axis.
CLOCKS = f"{PREFIX}:clocks"
#: Hash host -> JSON machine costs of that host (``producer.machine_costs``): the cost model's
#: figures, shared by every run against this Redis whatever its results directory.
MACHINE_COSTS = f"{PREFIX}:machine_costs"


def new_run_id() -> str:
    """A fresh run id: its UTC start second (so ids sort by time), then 6 random hex digits."""
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


def run_prefix(run_id: str) -> str:
    return f"{PREFIX}:{run_id}"


def run_summary(run_id: str) -> str:
    """String: the run's results.json document (its summary), kept for ``history``/``compare``."""
    return f"{run_prefix(run_id)}:summary"


def scope(run_id: str, model: str, workload: str, repeat: int) -> str:
    """The key stem of one measured repeat of one model on one workload."""
    return f"{run_prefix(run_id)}:{model}:{workload}:{repeat}"


def scopes_index(run_id: str) -> str:
    """Set of the scope stems a run created (so reports and cleanup need no SCAN)."""
    return f"{run_prefix(run_id)}:scopes"


def records(scope_key: str) -> str:
    """Hash job_id -> JSON timing record. One field per job: a redelivery overwrites, never adds."""
    return f"{scope_key}:records"


def attempts(scope_key: str) -> str:
    """Hash job_id -> how many times a worker started the job (HINCRBY, so redeliveries count)."""
    return f"{scope_key}:attempts"


def enqueued(scope_key: str) -> str:
    """Hash job_id -> enqueue time (ns since epoch), written by the producer."""
    return f"{scope_key}:enqueued"


def meta(scope_key: str) -> str:
    """Hash of scope facts written by the producer: n_jobs, batch_size, enqueue times."""
    return f"{scope_key}:meta"


def fetch_path(scope_key: str) -> str:
    """Hash first job id of a message -> JSON ``shared.fetch_path.MessageTrace``: when the
    worker received the message and when its pool started it. Written only when the fetch trace
    is on (``JOBBENCH_FETCH_TRACE``); absent otherwise."""
    return f"{scope_key}:fetch"
