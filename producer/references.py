"""The bare references ``jobbench calibrate`` holds every in-process model against.

A model's reference (``Runner.reference``, written in the model's own file) is the few lines a
user writes after reading the article: the library's defaults, nothing tuned, no records, no
Redis. It runs the same job functions (``shared.workloads``: the same work and the same small
output per job) on the same arguments, in a fresh interpreter, and times the same window the
harness times: pools are created and warmed up first, as the runners' ``start`` does, so the
comparison measures what the harness adds around the jobs and nothing else.

A child reads one JSON spec on stdin (``{"model", "workload", "args", "repeat"}``) and prints the
wall times of its repeats as a JSON list on stdout: ``python -c 'from producer.references import
child; child()'``. No parser: this is not a command.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from producer.runners import registry
from shared.workloads import Workload, run_cpu_job, run_io_job

#: Jobs a pool runs before the clock starts, so its processes are up (as the runners' start).
WARM_JOBS = 64
#: Jobs of the workload a reference runs untimed before its repeats, as the harness side is
#: warmed up (``calibrate.WARMUP_JOBS``): the first sieves of a fresh interpreter grow its heap,
#: and (with ``fork``) every pool process inherits the grown heap. IO references warm with a few
#: requests only: a cold connection is paid per run by every model alike.
WARMUP_JOBS = {"cpu": 50, "io": 2}
#: Longest a reference child may run (s) before it is a failed calibration, not a hang.
CHILD_TIMEOUT_S = 3600.0


def freeze_heap() -> None:
    """Before a timed window: move every object alive now out of the garbage collector's reach
    (``gc.freeze``), so no collection inside the window walks them.

    The bench's process holds what it measured so far (a record per job of every repeat:
    hundreds of thousands of objects by the end of a default run), and a full collection
    triggered by a pool's result thread inside the window walks all of them, on a core the
    workers need, at a moment that differs from run to run. A user's script holds none of
    that, so the harness must not make the model pay for it. Frozen objects stay alive as
    they would anyway; only the scanning is gone."""
    gc.freeze()


def timed(run_all: Callable[[], object], repeat: int) -> list[float]:
    """Wall times (s) of ``repeat`` calls of ``run_all``."""
    walls = []
    for _ in range(repeat):
        freeze_heap()
        t0 = time.perf_counter()
        run_all()
        walls.append(time.perf_counter() - t0)
    return walls


def has_reference(model: str) -> bool:
    cls = registry.find(model)
    return cls is not None and cls.reference() is not None


def time_reference(model: str, workload: Workload, args: list[Any], repeat: int) -> list[float]:
    """Wall times (s) of ``repeat`` runs of ``model``'s reference, in this interpreter."""
    reference = registry.load(model).reference()
    if reference is None:
        raise KeyError(f"{model} has no reference")
    job: Callable[[Any], str] = run_cpu_job if workload == "cpu" else run_io_job
    for arg in args[: WARMUP_JOBS[workload]]:
        job(arg)
    return reference(job, args, repeat)


def child() -> None:
    """Entry of the fresh interpreter: spec on stdin, wall times on stdout."""
    spec = json.load(sys.stdin)
    walls = time_reference(spec["model"], spec["workload"], spec["args"], int(spec["repeat"]))
    json.dump(walls, sys.stdout)


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
