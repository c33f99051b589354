"""What a job is: a resolved callable and how one job's call is made from its argument.

Every model runs a job through one path: ``shared.timings.timed_job`` asks ``for_workload`` for
the workload's ``JobSpec`` and calls ``JobSpec.run``. The seed's two workloads are built-in specs
(``seed:io`` and ``seed:cpu``, rows labelled ``io`` and ``cpu`` as before, their outputs the
seed's digests); a user's ``module:function`` (``jobbench bench --job``) is another spec, imported
by name wherever it runs (producer, process-pool child, Celery worker) and cached per process.

A user job's argument is what one line of ``--args`` holds: a JSON array (positional arguments)
or a JSON object (keyword arguments). Its return is digested the same way in every model: a hash
of its JSON form (``--result digest``) or the JSON form itself (``--result full``); a return with
no JSON form is the job's error, naming the type. An ``async def`` job runs on an event loop: one
per worker thread (thread-local, made on first use and kept), or the asyncio model's own loop.

``JOBBENCH_JOB_TIMEOUT_S`` (``--job-timeout-s``) bounds one user job. A coroutine is cancelled at
the timeout. A synchronous function runs in a daemon helper thread the caller stops waiting for:
its job is an ``error`` record, but Python cannot kill a thread, so the helper runs on in the
background until the function returns or the process exits (a process pool's child or a Celery
worker's process ends with the run). Without the variable nothing is bounded: a job that hangs
hangs its model, as it would in the user's own code.

This module imports no Celery and no producer code: a process-pool child imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import inspect
import json
import os
import sys
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

import requests

from shared.workloads import ResultMode, run_cpu_job, run_io_job

#: The seed's jobs by their ``--job`` names, and the row label each keeps (``--workloads io``).
SEED_JOBS: Final[Mapping[str, str]] = {"seed:io": "io", "seed:cpu": "cpu"}
#: Environment variable bounding one user job (seconds, > 0); unset: no bound.
JOB_TIMEOUT_ENV: Final = "JOBBENCH_JOB_TIMEOUT_S"
#: Environment variable naming the local HTTP target's URL for a user job (set by the bench when
#: it starts the target, ``jobbench target`` prints it for external workers).
TARGET_URL_ENV: Final = "JOBBENCH_TARGET_URL"

#: What kind of job a workload is, which is what a model says it can run (``Runner.workloads``):
#: the seed's two, or a user's synchronous or ``async def`` function.
JobKind = Literal["io", "cpu", "sync", "async"]


class JobSpecError(ValueError):
    """A job that cannot be resolved (no such module or function, not callable): one line."""


class JobTimeout(Exception):
    """A user job ran past ``JOBBENCH_JOB_TIMEOUT_S``."""


class ResultNotSerialisable(TypeError):
    """A user job returned a value with no JSON form."""


@dataclass(frozen=True)
class JobSpec:
    """A resolved job: its ``--job`` name, the row label, its kind and how one job runs."""

    #: ``module:function`` (``seed:io`` for the seed).
    name: str
    #: The rows' ``workload`` label: ``io``/``cpu`` for the seed, else ``name``.
    label: str
    kind: JobKind
    #: The user's callable (None for the seed's built-in jobs).
    func: Callable[..., Any] | None = None

    @property
    def is_async(self) -> bool:
        return self.kind == "async"

    def run(self, arg: Any, mode: ResultMode, session: requests.Session | None = None) -> str:
        """One job from its argument: its output (digest or full), or an exception."""
        if self.kind == "cpu":
            return run_cpu_job(int(arg), mode)
        if self.kind == "io":
            return run_io_job(str(arg), mode, session)
        assert self.func is not None
        timeout_s = job_timeout_s()
        if self.is_async:
            return digest_result(thread_loop().run_until_complete(self.call_async(arg)), mode)
        if timeout_s is None:
            return digest_result(call(self.func, arg), mode)
        return digest_result(_call_with_timeout(self.func, arg, timeout_s), mode)

    async def run_async(self, arg: Any, mode: ResultMode) -> str:
        """One ``async def`` job on the running loop (the asyncio model gathers these)."""
        return digest_result(await self.call_async(arg), mode)

    async def call_async(self, arg: Any) -> Any:
        assert self.func is not None and self.is_async
        coro: Coroutine[Any, Any, Any] = call(self.func, arg)
        timeout_s = job_timeout_s()
        if timeout_s is None:
            return await coro
        try:
            return await asyncio.wait_for(coro, timeout_s)
        except TimeoutError as exc:
            raise JobTimeout(f"job did not finish within {timeout_s:g} s (cancelled)") from exc


def call(func: Callable[..., Any], arg: Any) -> Any:
    """``func`` called with one job's argument: an array is positional, an object keywords."""
    if isinstance(arg, dict):
        return func(**arg)
    if isinstance(arg, list | tuple):
        return func(*arg)
    return func(arg)


def _call_with_timeout(func: Callable[..., Any], arg: Any, timeout_s: float) -> Any:
    """``call`` in a daemon thread, waited for at most ``timeout_s`` (the thread is left behind
    on a timeout: Python cannot stop it)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call(func, arg)
        except BaseException as exc:  # handed to the caller's thread, raised there
            box["error"] = exc

    helper = threading.Thread(target=target, name="jobbench-job", daemon=True)
    helper.start()
    helper.join(timeout_s)
    if helper.is_alive():
        raise JobTimeout(
            f"job did not finish within {timeout_s:g} s (its thread runs on: threads cannot be "
            "killed)"
        )
    if "error" in box:
        raise box["error"]
    return box["value"]


def job_timeout_s(env: Mapping[str, str] | None = None) -> float | None:
    """``JOBBENCH_JOB_TIMEOUT_S`` as seconds, None when unset or not a positive number."""
    raw = (os.environ if env is None else env).get(JOB_TIMEOUT_ENV, "").strip()
    try:
        value = float(raw) if raw else 0.0
    except ValueError:
        return None
    return value if value > 0 else None


class _ThreadLoop:
    """A thread's event loop, closed when the thread ends (its thread-local value is dropped
    then): a model with a thread per job (``threading``) must not leak a loop, and its sockets,
    per job."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to do
            self.loop.close()


_local = threading.local()


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop for ``async def`` jobs: made on first use and kept, so a worker
    thread (or process) runs all its jobs on one loop."""
    holder: _ThreadLoop | None = getattr(_local, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _local.holder = _ThreadLoop()
    return holder.loop


#: Longest JSON form of a return kept in an error message (characters).
MAX_TYPE_CHARS = 80


def json_form(value: Any) -> str:
    """The canonical JSON text of a return (sorted keys, no spaces)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        name = type(value).__qualname__[:MAX_TYPE_CHARS]
        raise ResultNotSerialisable(
            f"the job returned a {name}, which has no JSON form ({exc})"
        ) from None


def digest_result(value: Any, mode: ResultMode) -> str:
    """A user job's output: ``json:<len>:<blake2b>`` of its JSON form, or the form (full)."""
    text = json_form(value)
    if mode == "full":
        return text
    data = text.encode()
    return f"json:{len(data)}:{hashlib.blake2b(data, digest_size=8).hexdigest()}"


def label(name: str) -> str:
    """The rows' workload label of ``--job name``: the seed's keep ``io``/``cpu``."""
    return SEED_JOBS.get(name, name)


def is_user_job(workload: str) -> bool:
    """Whether a workload label names a user's ``module:function``."""
    return ":" in workload


_SEED_SPECS: Final = {
    "io": JobSpec("seed:io", "io", "io"),
    "cpu": JobSpec("seed:cpu", "cpu", "cpu"),
}


def for_workload(workload: str) -> JobSpec:
    """The spec behind a row's workload label (``io``, ``cpu`` or ``module:function``)."""
    seed = _SEED_SPECS.get(SEED_JOBS.get(workload, workload))
    return seed if seed is not None else resolve(workload)


def kind(workload: str) -> JobKind:
    return for_workload(workload).kind


@lru_cache(maxsize=64)
def resolve(name: str) -> JobSpec:
    """Import ``module:function`` (from the working directory too, as ``python -m`` does) and
    check it is callable; raises ``JobSpecError`` with one line."""
    seed = SEED_JOBS.get(name)
    if seed is not None:
        return _SEED_SPECS[seed]
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        raise JobSpecError(f"job {name!r}: expected MODULE:FUNCTION (e.g. examples.jobs:cpu_job)")
    _cwd_on_path()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of the user's module is one line
        raise JobSpecError(f"job {name}: cannot import {module_name}: {_one_line(exc)}") from None
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise JobSpecError(f"job {name}: {module_name} has no attribute {attr!r}") from None
    if not callable(target):
        raise JobSpecError(f"job {name}: {attr} is a {type(target).__name__}, not callable")
    job_kind: JobKind = "async" if inspect.iscoroutinefunction(target) else "sync"
    return JobSpec(name=name, label=name, kind=job_kind, func=target)


def _cwd_on_path() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
