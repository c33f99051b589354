"""The bare references ``jobbench calibrate`` holds every in-process model against.

Each reference is the few lines a user writes after reading the article: the library's defaults,
nothing tuned, no records, no Redis. It runs the same job functions (``shared.workloads``, so the
same work and the same small output per job) on the same arguments, in a fresh interpreter, and
times the same window the harness times: pools are created and warmed up first, as the runners'
``start`` does, so the comparison measures what the harness adds around the jobs and nothing else.

A child reads one JSON spec on stdin (``{"model", "workload", "args", "repeat"}``) and prints the
wall times of its repeats as a JSON list on stdout: ``python -c 'from producer.references import
child; child()'``. No parser: this is not a command.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import httpx

from shared.workloads import Workload, run_cpu_job, run_io_job, run_io_job_async

Job = Callable[[Any], str]
#: A reference: run every job of ``args`` ``repeat`` times and return the wall time (s) of each
#: repeat. Pools are created and warmed before the first clock starts, as the runners' ``start``.
Reference = Callable[[Job, list[Any], int], list[float]]


def _timed(run_all: Callable[[], object], repeat: int) -> list[float]:
    walls = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run_all()
        walls.append(time.perf_counter() - t0)
    return walls


def sequential(job: Job, args: list[Any], repeat: int) -> list[float]:
    return _timed(lambda: [job(a) for a in args], repeat)


def threading_threads(job: Job, args: list[Any], repeat: int) -> list[float]:
    def run_all() -> None:
        threads = [threading.Thread(target=job, args=(a,)) for a in args]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    return _timed(run_all, repeat)


def thread_pool(job: Job, args: list[Any], repeat: int) -> list[float]:
    def run_all() -> list[str]:
        with ThreadPoolExecutor() as executor:
            return list(executor.map(job, args))

    return _timed(run_all, repeat)


async def _gather(urls: list[str]) -> list[str]:
    async with httpx.AsyncClient() as client:
        return await asyncio.gather(*(run_io_job_async(client, u) for u in urls))


def asyncio_gather(job: Job, args: list[Any], repeat: int) -> list[float]:
    return _timed(lambda: asyncio.run(_gather([str(a) for a in args])), repeat)


#: Jobs a pool runs before the clock starts, so its processes are up (as the runners' start).
_WARM_JOBS = 64


def multiprocessing_pool(job: Job, args: list[Any], repeat: int) -> list[float]:
    with multiprocessing.Pool() as pool:
        pool.map(abs, range(_WARM_JOBS))
        return _timed(lambda: pool.map(job, args), repeat)


def process_pool(job: Job, args: list[Any], repeat: int) -> list[float]:
    with ProcessPoolExecutor() as executor:
        list(executor.map(abs, range(_WARM_JOBS)))
        return _timed(lambda: [f.result() for f in [executor.submit(job, a) for a in args]], repeat)


def process_pool_map(job: Job, args: list[Any], repeat: int) -> list[float]:
    with ProcessPoolExecutor() as executor:
        list(executor.map(abs, range(_WARM_JOBS)))
        return _timed(lambda: list(executor.map(job, args)), repeat)


#: The reference of each in-process model, by model name.
REFERENCES: dict[str, Reference] = {
    "sequential": sequential,
    "threading": threading_threads,
    "thread_pool": thread_pool,
    "asyncio": asyncio_gather,
    "multiprocessing_pool": multiprocessing_pool,
    "process_pool": process_pool,
    "process_pool_map": process_pool_map,
}
MODELS: tuple[str, ...] = tuple(REFERENCES)


def time_reference(model: str, workload: Workload, args: list[Any], repeat: int) -> list[float]:
    """Wall times (s) of ``repeat`` runs of ``model``'s reference, in this interpreter."""
    job: Job = run_cpu_job if workload == "cpu" else run_io_job
    return REFERENCES[model](job, args, repeat)


def child() -> None:
    """Entry of the fresh interpreter: spec on stdin, wall times on stdout."""
    spec = json.load(sys.stdin)
    walls = time_reference(spec["model"], spec["workload"], spec["args"], int(spec["repeat"]))
    json.dump(walls, sys.stdout)


#: Longest a reference child may run (s) before it is a failed calibration, not a hang.
CHILD_TIMEOUT_S = 3600.0


class ReferenceFailed(RuntimeError):
    """A reference child exited non-zero or printed no wall times."""


def run_reference(
    model: str, workload: Workload, args: Sequence[Any], repeat: int = 1
) -> list[float]:
    """Wall times of ``model``'s reference, measured in a fresh interpreter."""
    spec = json.dumps({"model": model, "workload": workload, "args": list(args), "repeat": repeat})
    proc = subprocess.run(
        [sys.executable, "-c", "from producer.references import child; child()"],
        input=spec, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReferenceFailed(f"reference {model}/{workload} exited {proc.returncode}: {last}")
    try:
        walls = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise ReferenceFailed(f"reference {model}/{workload} printed no wall times") from None
    return [float(w) for w in walls]
