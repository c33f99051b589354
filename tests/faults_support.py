"""What the fault suite (``tests/test_faults.py``) and the chaos soak (``tests/test_chaos.py``)
share: a redis-server that can be crashed and restarted from its append-only file, the local
target (plain, or with a fault switch), the workers of one queue with a supervisor's restart,
enqueueing a run, and the reconciliation helpers that read what the workers left in Redis.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from producer.runners.base import JobBatch
from producer.runners.celery import workers
from producer.runners.celery.publish import Enqueued, enqueue
from producer.runners.celery.workers import PoolName, WorkerProcess
from producer.services import (
    embedded_redis_binary,
    free_port,
    redis_reachable,
    stop_process,
    wait_until,
)
from shared import keys
from shared.timings import TimingStore
from shared.workloads import Workload

#: The visibility timeout of every fault run (s). Short, so a killed worker's messages come back
#: within seconds; the price (README "Nothing lost") is that a message held longer than this by a
#: live worker (a job or a prefetch wait over 3 s) is delivered twice, so jobs here take 0.3 s.
VISIBILITY_TIMEOUT_S = 3
#: One try of an HTTP request (s): a hanging target costs this much per try.
REQUEST_TIMEOUT_S = 0.5
#: The target's latency (ms): long enough to catch a job mid-flight, short enough to stay fast.
LATENCY_MS = 300.0
#: Any wait in this file gives up after this long (s): a broken run fails instead of hanging.
DEADLINE_S = 45.0
#: Worker settings per pool: (concurrency, prefetch multiplier), the shapes jobbench's runners use.
POOLS: dict[PoolName, tuple[int, int]] = {"threads": (3, 1), "solo": (1, 2), "prefork": (2, 2)}
#: Seconds the HTTP targets here get to answer their first health check.
TARGET_START_TIMEOUT_S = 20.0


# --- a redis-server that can be crashed and restarted ----------------------------------------


class PrivateRedis:
    """A redis-server of the test's own on a fixed port and data directory, so that it can be
    SIGKILLed and started again with its data (appendonly, fsync on every write: nothing a client
    was told is written can be lost by a crash). ``extra_args`` are appended to its command."""

    def __init__(self, workdir: Path, extra_args: Sequence[str] = ()) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = [
            str(embedded_redis_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--dir", str(self.workdir), "--daemonize", "no",
            "--logfile", str(self.workdir / "redis.log"), *self.extra_args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        wait_until(lambda: redis_reachable(self.url, 0.2), 20.0, "private Redis", self.proc)

    def kill(self) -> None:
        """A crash: SIGKILL, no shutdown, no final write."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace_s=5.0)


# --- HTTP targets -----------------------------------------------------------------------------


def _wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    wait_until(
        lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200,
        TARGET_START_TIMEOUT_S, "the HTTP target", proc,
    )  # fmt: skip


@contextlib.contextmanager
def target_process(*, fail_rate: float = 0.0, hang_rate: float = 0.0) -> Iterator[str]:
    """The local target (``jobbench target``) with a fixed seed; killed after 1 s at the end,
    since requests it leaves hanging would hold its graceful shutdown for the whole grace."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "producer.cli", "target", "--port", str(port),
        "--latency-ms", str(LATENCY_MS if not (fail_rate or hang_rate) else 20.0),
        "--fail-rate", str(fail_rate), "--hang-rate", str(hang_rate), "--seed", "7",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc)
        yield f"{base}/ip"
    finally:
        stop_process(proc, grace_s=1.0)


class SwitchableTarget:
    """The target's own app (``producer.target_server``) in a subprocess, with a fault switch:
    ``set_faults`` changes the fraction of requests answered 500 or left hanging while it runs
    (``tests/fault_target.py``), so a fault can start and end at any moment of a run."""

    def __init__(self, base: str, proc: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.proc = proc

    @property
    def url(self) -> str:
        return f"{self.base}/ip"

    def set_faults(self, *, fail_rate: float = 0.0, hang_rate: float = 0.0) -> None:
        response = httpx.post(
            f"{self.base}/faults", params={"fail_rate": fail_rate, "hang_rate": hang_rate},
            timeout=5.0,
        )  # fmt: skip
        response.raise_for_status()

    def health(self) -> dict[str, object]:
        doc: dict[str, object] = httpx.get(f"{self.base}/health", timeout=5.0).json()
        return doc


@contextlib.contextmanager
def switchable_target(*, latency_ms: float, seed: int) -> Iterator[SwitchableTarget]:
    """A ``SwitchableTarget``, healthy at first; killed after 1 s at the end (hanging requests
    would hold a graceful shutdown)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "tests.fault_target", "--port", str(port),
        "--latency-ms", str(latency_ms), "--seed", str(seed),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, cwd=Path(__file__).parent.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc)
        yield SwitchableTarget(base, proc)
    finally:
        stop_process(proc, grace_s=1.0)


# --- workers and runs ---------------------------------------------------------------------


class Fleet:
    """The workers one test starts on its queue (a fresh one replaces a killed one)."""

    def __init__(self, redis_url: str, queue: str, pool: PoolName, concurrency: int) -> None:
        self.redis_url = redis_url
        self.queue = queue
        self.pool = pool
        self.concurrency = concurrency
        self.started: list[WorkerProcess] = []

    def start(self, start_timeout_s: float = workers.WORKER_START_TIMEOUT_S) -> WorkerProcess:
        worker = workers.start_worker(
            pool=self.pool, concurrency=self.concurrency, queue=self.queue,
            broker_url=self.redis_url, redis_url=self.redis_url,
            prefetch_multiplier=POOLS[self.pool][1], name="faults",
            start_timeout_s=start_timeout_s,
        )  # fmt: skip
        self.started.append(worker)
        return worker

    def current(self) -> WorkerProcess:
        return self.started[-1]

    def replace_if_dead(self, start_timeout_s: float = workers.WORKER_START_TIMEOUT_S) -> bool:
        """What a supervisor does: if the current worker died, reap it and start a fresh one
        on the same queue. Returns whether it did."""
        if self.current().alive():
            return False
        workers.stop_worker(self.current(), grace_s=0.1)
        self.start(start_timeout_s)
        return True

    def stop_all(self) -> None:
        for worker in self.started:
            workers.stop_worker(worker, grace_s=2.0)


def enqueue_jobs(
    store: TimingStore,
    fleet: Fleet,
    run_id: str,
    workload: Workload,
    args: Sequence[int | str],
    *,
    batch_size: int = 1,
    repeat: int = 0,
) -> Enqueued:
    """Enqueue one job per element of ``args`` on the fleet's queue, ``batch_size`` jobs per
    message, as scope (run, ``celery_<pool>``, workload, ``repeat``)."""
    batch = JobBatch(run_id=run_id, workload=workload, args=list(args), repeat=repeat)
    app = workers.producer_app(fleet.redis_url)
    enqueued = enqueue(
        batch, app=app, store=store, queue=fleet.queue, model=f"celery_{fleet.pool}",
        batch_size=batch_size, meta={"pool": fleet.pool},
    )  # fmt: skip
    return enqueued


def start_run(store: TimingStore, fleet: Fleet, url: str, n_jobs: int) -> tuple[str, str]:
    """Enqueue ``n_jobs`` IO jobs, one per message; returns (run id, scope key)."""
    run_id = f"faults-{uuid.uuid4().hex[:10]}"
    return run_id, enqueue_jobs(store, fleet, run_id, "io", [url] * n_jobs).scope_key


def counts(store: TimingStore, scope_key: str) -> tuple[int, int]:
    """(jobs whose body started at least once, jobs with a record)."""
    pipe = store.client.pipeline(transaction=False)
    pipe.hlen(keys.attempts(scope_key))
    pipe.hlen(keys.records(scope_key))
    started, finished = pipe.execute()
    return int(started), int(finished)


def in_flight(store: TimingStore, scope_key: str) -> list[int]:
    """Jobs whose body started and has no record yet."""
    done = {int(k) for k in store.client.hkeys(keys.records(scope_key))}
    return sorted(i for i in store.attempts(scope_key) if i not in done)
