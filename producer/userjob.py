"""``jobbench bench --job MODULE:FUNCTION``: the job's spec and its arguments, checked before
anything runs (every problem is one line and exit 2).

Arguments come from ``--args FILE`` (JSON lines: one job per line, an array of positional
arguments or an object of keyword arguments; blank lines are skipped) or from ``--args-from
MODULE:FUNCTION`` (a callable returning an iterable of jobs: a list or tuple is positional, a
dict keywords, anything else the one argument), bounded by ``--jobs N``. Every argument must have
a JSON form: Celery ships it as JSON, and every model gets the same values.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from producer.errors import BadInput
from producer.runners import registry
from shared import jobspec

#: Jobs ``--args-from`` takes when ``--jobs`` is not given: an endless generator stays bounded.
DEFAULT_ARGS_FROM_JOBS = 10_000


def resolve(name: str) -> jobspec.JobSpec:
    """The spec of ``--job name``, or ``BadInput`` with the import's one line."""
    try:
        return jobspec.resolve(name)
    except jobspec.JobSpecError as exc:
        raise BadInput(str(exc)) from None


def load_args(
    spec: jobspec.JobSpec, args_file: Path | None, args_from: str | None, n_jobs: int | None
) -> list[Any]:
    """The arguments of every job of a user ``spec`` (at most ``n_jobs``)."""
    if args_file is not None and args_from is not None:
        raise BadInput("--args and --args-from both given: choose one")
    if args_file is not None:
        args = read_args_file(args_file)
    elif args_from is not None:
        args = args_from_callable(args_from, n_jobs or DEFAULT_ARGS_FROM_JOBS)
    else:
        raise BadInput(f"job {spec.name}: give its arguments with --args FILE or --args-from")
    args = args[:n_jobs] if n_jobs is not None else args
    if not args:
        raise BadInput(f"job {spec.name}: no jobs (the arguments are empty)")
    return args


def read_args_file(path: Path) -> list[Any]:
    """One job per non-blank line; a malformed line is ``BadInput`` naming its number."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--args {path}: cannot read it ({type(exc).__name__}: {exc})") from None
    args = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise BadInput(f"--args {path}: line {number}: not JSON ({exc})") from None
        if not isinstance(value, list | dict):
            raise BadInput(
                f"--args {path}: line {number}: expected a JSON array (positional arguments) "
                f"or object (keyword arguments), got {type(value).__name__}"
            )
        args.append(value)
    return args


def args_from_callable(name: str, n_jobs: int) -> list[Any]:
    """The first ``n_jobs`` items of ``name()``, each made a JSON array, object or value."""
    try:
        func = jobspec.resolve(name).func
    except jobspec.JobSpecError as exc:
        raise BadInput(f"--args-from: {exc}") from None
    try:
        items = list(itertools.islice(iter(func()), n_jobs))  # type: ignore[misc]
    except Exception as exc:  # the user's generator failing is their input's fault
        raise BadInput(f"--args-from {name}: {jobspec._one_line(exc)}") from None
    args = []
    for i, item in enumerate(items):
        value = list(item) if isinstance(item, tuple) else item
        try:
            args.append(json.loads(json.dumps(value, allow_nan=False)))
        except (TypeError, ValueError):
            raise BadInput(
                f"--args-from {name}: item {i} is a {type(item).__name__}, which has no JSON form"
            ) from None
    return args


def skipped_models(workload: str, models: Sequence[str]) -> list[str]:
    """The models of ``models`` that do not run ``workload``'s kind of job."""
    kind = jobspec.kind(workload)
    return [name for name in models if kind not in registry.runner_class(name).workloads]


@contextlib.contextmanager
def job_environment(config: Any, target: Any) -> Iterator[None]:
    """The environment a user job sees wherever it runs, set for the run and restored after:
    ``JOBBENCH_TARGET_URL`` (the local target, when one runs) and ``JOBBENCH_JOB_TIMEOUT_S``.
    Process pools and the Celery workers jobbench starts inherit it."""
    wanted = {
        jobspec.TARGET_URL_ENV: target.url if target is not None else config.url,
        jobspec.JOB_TIMEOUT_ENV: (
            f"{config.job_timeout_s:g}" if config.job_timeout_s is not None else None
        ),
    }
    saved = {k: os.environ.get(k) for k in wanted}
    try:
        for k, v in wanted.items():
            if v is not None:
                os.environ[k] = str(v)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
