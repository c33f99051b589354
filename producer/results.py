"""Writing and reading run directories: ``<out>/<run_id>/results.json`` and ``<out>/latest``."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from producer.errors import ResultsError
from shared.timings import JobRecord

# Re-exported: the report and the charts raise it from here.
__all__ = ["ResultsError"]

RESULTS_FILE = "results.json"
JOBS_FILE = "jobs.csv"
#: The run-directory alias ``jobbench bench`` maintains (``<out>/latest``).
LATEST = "latest"


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


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename, on
    any error it is removed: a reader never sees a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half-written."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_run(out_dir: Path, doc: dict[str, Any]) -> Path:
    """Write ``results.json`` into ``out_dir/<run_id>/`` and point ``out_dir/latest`` at it."""
    run_dir = out_dir / str(doc["run_id"])
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / RESULTS_FILE, json.dumps(doc, indent=2, sort_keys=False) + "\n")
        update_latest(out_dir, run_dir)
    except OSError as exc:  # --out went away or filled up during the run: still the user's --out
        raise ResultsError(f"cannot write results to {out_dir}: {exc.strerror or exc}") from None
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
    n = 0
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
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
    return n


#: The results.json schema this code reads. ``producer.bench.SCHEMA`` is the one it writes; a test
#: holds them equal (bench is not imported here: it pulls in every runner and the Celery app).
SCHEMA = 1

Migration = Callable[[dict[str, Any]], dict[str, Any]]

#: ``MIGRATIONS[n]`` turns a schema-``n`` document into a schema-``n + 1`` one. Bumping
#: ``bench.SCHEMA`` means adding the step from the previous version here, so every results.json
#: ever written stays loadable and comparable (pyperf keeps reading its old JSON the same way).
MIGRATIONS: dict[int, Migration] = {}

#: Fields of a result row that early schema-1 files may lack, with the value that means "not
#: measured": readers (report, compare) can then index every row without guarding each key.
ROW_DEFAULTS: dict[str, Any] = {
    "family": "in-process", "params": {}, "startup": {}, "n_error": 0, "errors": [], "extra": {},
    "queue_wait_s": {}, "run_s": {}, "end_to_end_s": {}, "jobs_per_process": {},
    "jobs_per_thread": {}, "jobs_per_host": {}, "redelivered": 0, "speedup_vs_sequential": None,
    "ideal_s": None, "efficiency": None, "jobs_per_s": None,
}  # fmt: skip


#: What a result row cannot do without: the identity of the measurement and its wall times.
ROW_REQUIRED = ("workload", "model", "n_jobs", "wall_s")


def _fill_defaults(doc: dict[str, Any], origin: str) -> dict[str, Any]:
    doc.setdefault("metadata", {})
    if not isinstance(doc["results"], list):
        raise ResultsError(f"{origin}: 'results' is not a list")
    for i, row in enumerate(doc["results"]):
        missing = [k for k in ROW_REQUIRED if not isinstance(row, dict) or k not in row]
        wall = row.get("wall_s") if isinstance(row, dict) else None
        if missing or not isinstance(wall, dict) or not {"median", "min", "max"} <= wall.keys():
            raise ResultsError(f"{origin}: result {i} lacks {', '.join(missing) or 'wall_s stats'}")
        for key, value in ROW_DEFAULTS.items():
            row.setdefault(key, json.loads(json.dumps(value)))  # a fresh copy per row
        row.setdefault("repeats", len(row["wall_s"].get("values", [])) or 1)
        row.setdefault("n_ok", row.get("n_jobs", 0) * row["repeats"] - row["n_error"])
    return doc


def migrate(doc: Any, origin: str) -> dict[str, Any]:
    """Bring a results document of any known schema up to ``SCHEMA`` (``origin`` names it in
    errors: a file path or a Redis key)."""
    if not isinstance(doc, dict) or not {"schema", "run_id", "results"} <= doc.keys():
        raise ResultsError(f"{origin} is not a jobbench results.json")
    version = doc["schema"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ResultsError(f"{origin} has an invalid schema version {version!r}")
    if version > SCHEMA:
        raise ResultsError(
            f"{origin} uses results schema {version}, newer than this jobbench reads ({SCHEMA}): "
            "upgrade jobbench"
        )
    while version < SCHEMA:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ResultsError(f"{origin}: no migration from results schema {version}")
        doc = step(doc)
        version += 1
        doc["schema"] = version
    return _fill_defaults(doc, origin)


def locate_run(ref: str, out_dir: Path) -> Path | None:
    """The results.json ``ref`` names on disk, or None: ``ref`` as a run directory or a
    results.json path, else (a plain name such as a run id or ``latest``) ``out_dir/ref``."""
    candidates = [Path(ref)]
    if "/" not in ref and ref not in (".", ".."):
        candidates.append(out_dir / ref)
    for path in candidates:
        if path.is_dir() and (path / RESULTS_FILE).is_file():
            return path / RESULTS_FILE
        if path.is_file() and path.suffix == ".json":
            return path
    return None


def load_results(path: Path) -> dict[str, Any]:
    """Load a results.json (a file or a run directory), migrated to the current schema."""
    file = path / RESULTS_FILE if path.is_dir() else path
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read results from {file}: {exc}") from None
    return migrate(doc, str(file))
