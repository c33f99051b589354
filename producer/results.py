"""Writing and reading run directories: ``<out>/<run_id>/results.json`` and ``<out>/latest``."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared.timings import JobRecord

RESULTS_FILE = "results.json"
JOBS_FILE = "jobs.csv"
LATEST = "latest"


class ResultsError(OSError):
    """The results directory cannot be written or read (one-line message)."""


def check_writable(out_dir: Path) -> None:
    """Fail early, before any measurement, when ``out_dir`` cannot take a run directory."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ResultsError(f"cannot write results to {out_dir}: {exc.strerror or exc}") from None


#: Permissions of result files (mkstemp would leave them private to the owner).
FILE_MODE = 0o644


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_run(out_dir: Path, doc: dict[str, Any]) -> Path:
    """Write ``results.json`` into ``out_dir/<run_id>/`` and point ``out_dir/latest`` at it."""
    run_dir = out_dir / str(doc["run_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / RESULTS_FILE, json.dumps(doc, indent=2, sort_keys=False) + "\n")
    update_latest(out_dir, run_dir)
    return run_dir


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def update_latest(out_dir: Path, run_dir: Path) -> None:
    """Point ``out_dir/latest`` at ``run_dir``: a relative symlink swapped in atomically, or a
    copy where the filesystem has no symlinks."""
    latest = out_dir / LATEST
    tmp = out_dir / f".{LATEST}.{os.getpid()}"
    _remove(tmp)
    try:
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        if latest.is_dir() and not latest.is_symlink():
            shutil.rmtree(latest)
        os.replace(tmp, latest)
    except OSError:
        _remove(tmp)
        _remove(latest)
        shutil.copytree(run_dir, latest)


JOB_FIELDS = (
    "model", "workload", "repeat", "job_id", "pool", "host", "pid", "process", "thread",
    "attempt", "outcome", "enqueued_at_ns", "started_at_ns", "finished_at_ns",
    "queue_wait_s", "run_s", "end_to_end_s", "error",
)  # fmt: skip


def write_jobs_csv(path: Path, rows: Iterable[tuple[int, JobRecord]]) -> int:
    """One CSV row per (repeat, job record); returns the number of rows written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    n = 0
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(JOB_FIELDS)
            for repeat, r in rows:
                writer.writerow([
                    r.model, r.workload, repeat, r.job_id, r.pool, r.host, r.pid, r.process,
                    r.thread, r.attempt, r.outcome, r.enqueued_at_ns, r.started_at_ns,
                    r.finished_at_ns, f"{r.queue_wait_s:.6f}", f"{r.run_s:.6f}",
                    f"{r.end_to_end_s:.6f}", r.error or "",
                ])  # fmt: skip
                n += 1
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return n


def load_results(path: Path) -> dict[str, Any]:
    """Load a results.json (a file or a run directory)."""
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        doc: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read results from {file}: {exc}") from None
    if not isinstance(doc, dict) or "schema" not in doc or "results" not in doc:
        raise ResultsError(f"{file} is not a jobbench results.json")
    return doc
