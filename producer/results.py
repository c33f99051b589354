"""Writing and reading run directories: ``<out>/<run_id>/results.json`` and ``<out>/latest``."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from producer import untrusted
from producer.errors import ResultsError, WriteFailed
from producer.failures import tries_of
from shared import keys
from shared.timings import JobRecord

# Re-exported: the report and the charts raise it from here.
__all__ = ["ResultsError"]

RESULTS_FILE = "results.json"
JOBS_FILE = "jobs.csv"
#: The run-directory alias ``jobbench bench`` maintains (``<out>/latest``).
LATEST = "latest"
#: A file inside a ``latest`` that is a copy (filesystems without symlinks): what makes that copy
#: recognisably jobbench's own, so replacing it never deletes a user's directory.
LATEST_MARKER = ".jobbench-latest"

#: What a run's ``status`` says (results.json ``status``; older files have none: complete).
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"


def check_writable(out_dir: Path) -> None:
    """Fail early, before any measurement, when ``out_dir`` cannot take a run directory, or when
    its ``latest`` is something jobbench did not make (and so will not replace)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ResultsError(f"cannot write results to {out_dir}: {exc.strerror or exc}") from None
    latest = out_dir / LATEST
    if (latest.exists() or latest.is_symlink()) and not latest_is_ours(latest):
        raise ResultsError(
            f"{latest} is not a link jobbench made and would have to be replaced: move it away "
            "or choose another --out (jobbench never deletes what it did not create)"
        )


def latest_is_ours(latest: Path) -> bool:
    """Whether ``latest`` is an alias jobbench made: a relative symlink to a run directory beside
    it, or a copy of one holding ``LATEST_MARKER``."""
    if latest.is_symlink():
        target = os.readlink(latest)
        return "/" not in target and keys.RUN_ID_PATTERN.fullmatch(target) is not None
    return latest.is_dir() and (latest / LATEST_MARKER).is_file()


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


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_failed(path: Path, exc: OSError) -> WriteFailed:
    """The one-line error of a results file that could not be written after the measurements
    (disk full, directory gone): its path and the reason, exit 1, not bad input."""
    where = exc.filename if isinstance(exc.filename, str) else str(path)
    return WriteFailed(f"cannot write {where}: {exc.strerror or exc}")


def write_run(out_dir: Path, doc: dict[str, Any]) -> Path:
    """Write ``results.json`` into ``out_dir/<run_id>/`` (``latest`` is moved separately, by
    ``update_latest``, once everything of the run is written)."""
    run_dir = out_dir / str(doc["run_id"])
    path = run_dir / RESULTS_FILE
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(finite(doc), indent=2, sort_keys=False, allow_nan=False)
        atomic_write(path, text + "\n")
    except OSError as exc:  # --out went away or filled up during the run
        raise write_failed(path, exc) from None
    return run_dir


def _remove_ours(path: Path) -> None:
    """Remove a ``latest`` alias (or its temporary) that ``latest_is_ours`` vouched for."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def update_latest(out_dir: Path, run_dir: Path) -> None:
    """Point ``out_dir/latest`` at ``run_dir``: a relative symlink swapped in atomically, or a
    marked copy where the filesystem has no symlinks. A ``latest`` jobbench did not make is never
    replaced: ``ResultsError``."""
    latest = out_dir / LATEST
    if (latest.exists() or latest.is_symlink()) and not latest_is_ours(latest):
        raise ResultsError(f"{latest} is not a link jobbench made: left alone, not updated")
    tmp = out_dir / f".{LATEST}.{os.getpid()}"
    try:
        _remove_ours(tmp)
        try:
            tmp.symlink_to(run_dir.name, target_is_directory=True)
            if latest.is_dir() and not latest.is_symlink():
                shutil.rmtree(latest)  # a marked copy of ours
            os.replace(tmp, latest)
        except OSError:
            _remove_ours(tmp)
            _remove_ours(latest)
            shutil.copytree(run_dir, latest)
            (latest / LATEST_MARKER).write_text(f"{run_dir.name}\n", encoding="utf-8")
    except OSError as exc:
        raise write_failed(latest, exc) from None


JOB_FIELDS = (
    "model", "workload", "repeat", "job_id", "pool", "host", "pid", "process", "thread",
    "attempt", "outcome", "enqueued_at_ns", "started_at_ns", "finished_at_ns",
    "queue_wait_s", "run_s", "end_to_end_s", "error", "tries",
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
                f"{r.end_to_end_s:.6f}", r.error or "", tries_of(r),
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
    "ideal_s": None, "efficiency": None, "jobs_per_s": None, "retried": 0, "retries": 0,
    "failed": False,
}  # fmt: skip


#: What a result row cannot do without: the identity of the measurement and its wall times.
ROW_REQUIRED = ("workload", "model", "n_jobs", "wall_s")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fill_defaults(doc: dict[str, Any], origin: str) -> dict[str, Any]:
    doc.setdefault("metadata", {})
    doc.setdefault("status", STATUS_COMPLETE)
    if not isinstance(doc["results"], list):
        raise ResultsError(f"{origin}: 'results' is not a list")
    for i, row in enumerate(doc["results"]):
        missing = [k for k in ROW_REQUIRED if not isinstance(row, dict) or k not in row]
        wall = row.get("wall_s") if isinstance(row, dict) else None
        if missing or not isinstance(wall, dict) or not {"median", "min", "max"} <= wall.keys():
            raise ResultsError(f"{origin}: result {i} lacks {', '.join(missing) or 'wall_s stats'}")
        if not all(_is_number(wall[k]) for k in ("median", "min", "max")):
            raise ResultsError(f"{origin}: result {i} has a wall time that is not a number")
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


def read_json(file: Path) -> Any:
    """A JSON file jobbench does not trust (``producer.untrusted``): bounded, printable."""
    try:
        if file.stat().st_size > untrusted.MAX_JSON_BYTES:
            raise untrusted.UntrustedJSONError("too large")
        return untrusted.loads(file.read_bytes())
    except untrusted.UntrustedJSONError as exc:
        raise ResultsError(f"cannot read results from {file}: {exc}") from None
    except OSError as exc:
        raise ResultsError(f"cannot read results from {file}: {exc.strerror or exc}") from None


def load_results(path: Path) -> dict[str, Any]:
    """Load a results.json (a file or a run directory), migrated to the current schema."""
    file = path / RESULTS_FILE if path.is_dir() else path
    return migrate(read_json(file), str(file))


def run_status(doc: dict[str, Any]) -> str:
    """A loaded run's status: complete, failed or interrupted."""
    return str(doc.get("status") or STATUS_COMPLETE)
