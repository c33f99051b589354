"""The machinery costs of this machine, measured by jobbench itself, for the cost model.

Each figure is seconds per unit and says where it came from:

* ``pickle_byte``: pickling and unpickling one byte of a typical job payload (a process pool
  ships every argument and result that way);
* ``thread_start``: starting and joining one ``threading.Thread``;
* ``thread_submit``: one ``ThreadPoolExecutor.submit`` and its ``result()``;
* ``process_task`` / ``pool_task``: one task through a warm ``ProcessPoolExecutor`` (submit) /
  ``multiprocessing.Pool`` (``map`` with chunksize 1): the serial hand-over a process pool pays
  per task;
* ``process_task_cpu``: the CPU time one such ``ProcessPoolExecutor`` task costs the machine,
  every process counted (the producer's feeder and result threads, the child's receive and
  reply): on a machine whose cores the children keep busy, that CPU comes out of theirs;
* ``process_pool_start``: a process pool's start-up (outside the bench's timed window);
* ``parallel_slowdown``: how much longer a CPU spin takes with one per core running at once than
  alone (1.0 on an idle machine without shared turbo; more when other work or SMT siblings share
  the cores). It depends on the load of the moment, so it is measured on every run, never cached;
* ``async_request``: the CPU time the client process spends per GET of ``asyncio.gather`` over
  ``httpx.AsyncClient()`` (its defaults), with as many requests in flight as the client's
  connection cap (the seed's 100) against the local target answering after a latency, in its own
  process: the event loop's serial cost per request as a run pays it (the target's CPU is not
  the client's; beyond the cap, httpcore's pool costs more per queued request: not modelled);
* ``redis_rtt``: one Redis ``PING`` round trip (``jobbench overhead``'s ``measure_redis``);
* ``celery_message:<pool>``, ``celery_job:<pool>``, ``celery_start:<pool>``: a Celery pool's
  cost per message and per job (noop jobs through a real worker, ``jobbench overhead``'s
  ``measure_pool``, with fewer messages) and its worker's start-up;
* ``celery_latency:<pool>``: what a run of one noop message takes beyond that message's cost:
  the trip to the worker and the result's back to the producer's poll, paid once per run.

Figures are cached per machine (host, cores, Python) with the date they were measured, in the
run's Redis (``jobbench:machine_costs``, one entry per host: every results directory shares them)
and in ``OUT/machine_costs.json``, and reused for ``MAX_AGE_S``; a newer ``jobbench overhead``
document in ``OUT/overhead/latest`` supplies the Redis and Celery figures instead (its source
says so). ``jobbench bench --remeasure-costs`` measures them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import pickle
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis

from producer import overhead
from producer.results import atomic_write
from producer.runners.base import usable_cpus
from producer.runners.celery import workers
from producer.runners.celery.workers import PoolName
from producer.services import run_target
from shared import keys
from shared.keys import new_run_id
from shared.timings import TimingStore

#: The cache file, in the results directory.
CACHE_FILE = "machine_costs.json"
#: Cache schema version. 2: ``async_request`` is the client's CPU per request at the connection
#: cap (a figure measured the old way, wall time per request beyond the cap, is not reused).
SCHEMA = 2
#: Seconds a cached figure stays valid: a week, then it is measured again.
MAX_AGE_S = 7 * 24 * 3600.0
#: Tasks per process-pool / thread figure: ~0.05-0.2 s each.
LOCAL_TASKS = 1000
#: Threads started for the thread-start figure.
LOCAL_THREADS = 300
#: Noop one-job messages and batched noop jobs per Celery pool (``jobbench overhead`` uses 1,000
#: and 20,000 with 5 repeats; a prediction needs the order of magnitude, in ~1 s a pool).
CELERY_MESSAGES = 300
CELERY_JOBS = 4000
#: Pings of the Redis round-trip figure.
REDIS_PINGS = 500

#: Where the in-process figures come from, as the report names it.
LOCAL_SOURCE = "measured by the bench (machine_costs.measure_local)"
#: A cached figure measured at a load per core more than this above the current one is measured
#: again (a figure taken on a loaded machine would make every later prediction of a quiet one).
LOAD_TOLERANCE = 0.5
#: Figures that depend on the moment (the machine's load): measured on every run, never cached.
PER_RUN_FIGURES = frozenset({"parallel_slowdown"})
#: Iterations of the CPU spin of ``parallel_slowdown`` (~0.05-0.1 s alone).
SPIN_ITERATIONS = 1_000_000
#: Rounds of the spin alone and at once (interleaved); the best of each is kept.
SPIN_ROUNDS = 5
#: Requests of the ``async_request`` figure in flight at once: ``httpx.AsyncClient()``'s
#: connection cap (the seed's 100 requests). Beyond it httpcore's pool does work per queued request
#: on every release: 300 gathered requests cost the client ~5 ms each, 100 cost ~1.2 ms.
ASYNC_REQUESTS = 100
#: Latency (ms) of the target of the ``async_request`` figure: long enough for every request to be
#: in flight at once, as in a run (the cost is the client's CPU, not the latency).
ASYNC_LATENCY_MS = 50.0
#: Gathers of the ``async_request`` figure; the median is kept.
ASYNC_REPEATS = 3
#: Names of the figures measured together in this process.
LOCAL_FIGURES = (
    "pickle_byte", "thread_start", "thread_submit", "process_task", "pool_task",
    "process_pool_start", "process_task_cpu",
)  # fmt: skip


@dataclass(frozen=True)
class Figure:
    """One machinery cost."""

    value_s: float
    source: str
    measured_at: str
    #: The 1-minute load average per core when it was measured (None: not known).
    load_per_core: float | None = None


@dataclass(frozen=True)
class MachineCosts:
    """Figures by key (``name`` or ``name@broker`` for the broker-dependent ones)."""

    figures: Mapping[str, Figure] = field(default_factory=dict)

    def get(self, name: str, broker_url: str = "") -> float:
        """Seconds of ``name`` (0 for "" and for a figure not measured: named in ``missing``)."""
        if not name:
            return 0.0
        figure = self.figures.get(figure_key(name, broker_url))
        return figure.value_s if figure else 0.0

    def missing(self, needed: Iterable[tuple[str, str]]) -> list[str]:
        return [figure_key(n, b) for n, b in needed if n and figure_key(n, b) not in self.figures]

    def summary(self) -> dict[str, Any]:
        return {
            k: {"value_s": f.value_s, "source": f.source, "measured_at": f.measured_at,
                "load_per_core": f.load_per_core}
            for k, f in sorted(self.figures.items())
        }  # fmt: skip


def broker_label(broker_url: str) -> str:
    """``redis`` / ``amqp``: a broker's kind (the port of an embedded Redis changes per run)."""
    scheme = urlsplit(broker_url).scheme
    return "amqp" if scheme in ("amqp", "amqps", "pyamqp") else "redis"


def figure_key(name: str, broker_url: str = "") -> str:
    return f"{name}@{broker_label(broker_url)}" if name.startswith("celery_") else name


def machine_id() -> dict[str, Any]:
    """What a cached figure must match to be reused."""
    return {
        "host": platform.node(),
        "cpu_count": usable_cpus(),
        "python": sys.version.split()[0],
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _age_s(iso: str) -> float:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return float("inf")


# --- measuring ---------------------------------------------------------------------------------


def _noop(_: object = None) -> None:
    return None


def _per(count: int, started: float) -> float:
    return (time.perf_counter() - started) / count


def spin(iterations: int) -> float:
    """A pure-Python CPU loop; returns the seconds it took in its own process."""
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i & 7
    return time.perf_counter() - started


def _cpu_s() -> float:
    """CPU seconds of this process and of its children reaped so far."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure_process_task_cpu(cpus: int, tasks: int = LOCAL_TASKS) -> float:
    """``process_task_cpu``: a pool's CPU with ``tasks`` noop tasks less a pool's with none (its
    start and warm-up), per task. The children count once the pool's shutdown has reaped them."""

    def pool_cpu(n: int) -> float:
        started = _cpu_s()
        with ProcessPoolExecutor(max_workers=cpus) as pexec:
            list(pexec.map(abs, range(cpus)))
            for done in [pexec.submit(abs, i) for i in range(n)]:
                done.result()
        return _cpu_s() - started

    idle = min(pool_cpu(0) for _ in range(2))
    return max(0.0, (pool_cpu(tasks) - idle) / tasks)


def measure_parallel() -> float:
    """Spin time with one spin per core at once / alone (``parallel_slowdown``): the best of
    ``SPIN_ROUNDS`` interleaved rounds each way. Both sides take their best: one round at once
    against the best of three alone read any burst of other work on the machine as a slowdown
    of its own (1.33 and 1.09 measured a minute apart on this 2-core machine, the in-run
    slowdown of the seed's CPU pool 1.08)."""
    cpus = usable_cpus()
    with multiprocessing.Pool(cpus) as pool:
        pool.map(spin, [1000] * cpus)
        alone, together = [], []
        for _ in range(SPIN_ROUNDS):  # interleaved: a burst of other work hits both sides
            alone.append(pool.apply(spin, (SPIN_ITERATIONS,)))
            together.append(statistics.fmean(pool.map(spin, [SPIN_ITERATIONS] * cpus, chunksize=1)))
    return max(1.0, min(together) / min(alone)) if min(alone) > 0 else 1.0


async def _gather_requests(url: str, n: int) -> None:
    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(client.get(url) for _ in range(n)))


def measure_async_request() -> float:
    """CPU seconds of this process per request of ``asyncio.gather`` over a new
    ``httpx.AsyncClient()`` (as a run builds one), ``ASYNC_REQUESTS`` in flight, against a local
    target with ``ASYNC_LATENCY_MS`` of latency (started and stopped here, in its own process).

    Process CPU, not wall time: the wall time of a gather is the latency plus whatever the
    target's own CPU costs on the same cores, and in a run the latency overlaps that; what the
    event loop pays serially per request is the client's CPU."""
    with run_target(ASYNC_LATENCY_MS) as target:
        asyncio.run(_gather_requests(target.url, 20))
        per: list[float] = []
        for _ in range(ASYNC_REPEATS):
            started = time.process_time()
            asyncio.run(_gather_requests(target.url, ASYNC_REQUESTS))
            per.append((time.process_time() - started) / ASYNC_REQUESTS)
        return statistics.median(per)


def measure_local() -> dict[str, float]:
    """The in-process figures, in about a second."""
    out: dict[str, float] = {}
    payload = [(i, "x" * 20, float(i)) for i in range(20_000)]
    raw = pickle.dumps(payload)
    started = time.perf_counter()
    for _ in range(5):
        pickle.loads(pickle.dumps(payload))
    out["pickle_byte"] = (time.perf_counter() - started) / (5 * len(raw))

    started = time.perf_counter()
    threads = [threading.Thread(target=_noop) for _ in range(LOCAL_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["thread_start"] = _per(LOCAL_THREADS, started)

    with ThreadPoolExecutor() as executor:
        list(executor.map(_noop, range(50)))
        started = time.perf_counter()
        for f in [executor.submit(_noop) for _ in range(LOCAL_TASKS)]:
            f.result()
        out["thread_submit"] = _per(LOCAL_TASKS, started)

    cpus = usable_cpus()
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=cpus) as pexec:
        list(pexec.map(abs, range(cpus)))
        out["process_pool_start"] = time.perf_counter() - started
        started = time.perf_counter()
        for done in [pexec.submit(abs, i) for i in range(LOCAL_TASKS)]:
            done.result()
        out["process_task"] = _per(LOCAL_TASKS, started)
    with multiprocessing.Pool(cpus) as pool:
        pool.map(abs, range(cpus))
        started = time.perf_counter()
        pool.map(abs, range(LOCAL_TASKS), chunksize=1)
        out["pool_task"] = _per(LOCAL_TASKS, started)
    out["process_task_cpu"] = measure_process_task_cpu(cpus)
    return out


def measure_celery(pool: PoolName, broker_url: str, redis_url: str) -> dict[str, float]:
    """A pool's per-message and per-job cost on noop jobs and its worker's start-up, with
    ``jobbench overhead``'s own measuring code (``measure_pool``) at a smaller size."""
    config = overhead.OverheadConfig(
        pools=(pool,), repeat=1, warmup=1, noop_jobs=CELERY_JOBS, noop_messages=CELERY_MESSAGES
    )
    store = TimingStore.from_url(redis_url)
    app = workers.producer_app(broker_url)
    run_id = new_run_id()
    try:
        doc = overhead.measure_pool(
            pool, app=app, store=store, redis_url=redis_url, broker_url=broker_url,
            run_id=run_id, config=config,
        )  # fmt: skip
    finally:
        store.client.delete(keys.scopes_index(run_id))  # as ``jobbench overhead`` leaves nothing
        store.client.close()
    return celery_figures(pool, doc)


def celery_figures(pool: str, doc: Mapping[str, Any]) -> dict[str, float]:
    """The figures of one ``measure_pool`` result: a message costs 1 / (one-job messages per
    second) on the consumer; a job, what the batched run took beyond its messages, per job,
    times the lanes that ran Python at once (a prefork child each, one GIL otherwise)."""
    message_s = 1.0 / max(float(doc["one_job_per_message"]["messages_per_s"]), 1e-9)
    batched = doc.get("auto_batches") or {}
    job_s = 0.0
    if batched:
        wall = float(batched["wall_s"]["median"])
        lanes = min(int(doc["concurrency"]), usable_cpus()) if pool == "prefork" else 1
        job_s = max(0.0, wall - int(batched["n_messages"]) * message_s) * lanes
        job_s /= max(1, int(batched["n_jobs"]))
    figures = {
        f"celery_message:{pool}": message_s,
        f"celery_job:{pool}": job_s,
        f"celery_start:{pool}": float(doc.get("startup_s") or 0.0),
    }
    if "one_message" in doc:  # a document of an older jobbench has none: measured again
        trip = float(doc["one_message"]["wall_s"]["median"])
        figures[f"celery_latency:{pool}"] = max(0.0, trip - message_s)
    return figures


# --- cache and the overhead document -------------------------------------------------------------


def load_per_core() -> float:
    """The 1-minute load average per usable core, now."""
    return os.getloadavg()[0] / usable_cpus()


def busier_than_now(figure: Figure) -> bool:
    """Whether ``figure`` was measured on a machine clearly busier than it is now: such a figure
    describes the load of then, not this machine, and is measured again."""
    then = figure.load_per_core
    return then is not None and then > load_per_core() + LOAD_TOLERANCE


def load_cache(out_dir: Path, client: redis.Redis | None = None) -> dict[str, Figure]:
    """The cached figures still valid: Redis's entry for this host, else the file's."""
    raw: Any = None
    if client is not None:
        with contextlib.suppress(redis.RedisError):
            raw = client.hget(keys.MACHINE_COSTS, platform.node())
    try:
        text = raw.decode() if raw else (out_dir / CACHE_FILE).read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return {}
    if doc.get("machine") != machine_id():
        return {}
    out = {}
    for key, raw in (doc.get("figures") or {}).items():
        try:
            load = raw.get("load_per_core")
            figure = Figure(
                float(raw["value_s"]), str(raw["source"]), str(raw["measured_at"]),
                None if load is None else float(load),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if _age_s(figure.measured_at) <= MAX_AGE_S and not busier_than_now(figure):
            out[key] = figure
    return out


def save_cache(
    out_dir: Path, figures: Mapping[str, Figure], client: redis.Redis | None = None
) -> None:
    doc = {
        "schema": SCHEMA,
        "machine": machine_id(),
        "figures": MachineCosts(
            {k: f for k, f in figures.items() if k not in PER_RUN_FIGURES}
        ).summary(),
    }
    text = json.dumps(doc, indent=2) + "\n"
    # Best effort: a results directory that cannot take it (full, read-only) is the run's
    # problem to report when it writes its results, not the cache's.
    with contextlib.suppress(OSError):
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(out_dir / CACHE_FILE, text)
    if client is not None:
        with contextlib.suppress(redis.RedisError):
            client.hset(keys.MACHINE_COSTS, platform.node(), text)


def from_overhead(out_dir: Path) -> dict[str, Figure]:
    """The Redis and Celery figures of the latest ``jobbench overhead`` run on this machine (the
    run's Redis broker), if any and not older than ``MAX_AGE_S``."""
    path = out_dir / overhead.OVERHEAD_DIR / "latest" / overhead.OVERHEAD_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        meta = doc["metadata"]
        when = str(doc.get("started_at") or "")
        if meta.get("hostname") != platform.node() or meta.get("cpu_count") != usable_cpus():
            return {}
        if _age_s(when) > MAX_AGE_S:
            return {}
        source = f"jobbench overhead {doc['run_id']}"
        broker = str(meta.get("broker") or "redis://")
        loads = meta.get("load_avg")
        load = float(loads[0]) / usable_cpus() if loads else None
        out = {
            "redis_rtt": Figure(float(doc["overhead"]["redis"]["round_trip_s"]["median"]),
                                source, when, load),
        }  # fmt: skip
        out = {k: f for k, f in out.items() if not busier_than_now(f)}
        for pool, block in (doc["overhead"].get("noop") or {}).items():
            if pool not in workers.POOLS:
                continue  # "threads+events" and the like
            for name, value in celery_figures(pool, block).items():
                figure = Figure(value, source, when, load)
                if not busier_than_now(figure):
                    out[figure_key(name, broker)] = figure
        return out
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _newer(a: Figure | None, b: Figure) -> bool:
    return a is None or a.measured_at < b.measured_at


def ensure(
    out_dir: Path, needed: Iterable[tuple[str, str]], redis_url: str, refresh: bool = False
) -> MachineCosts:
    """Every figure ``needed`` ((name, broker URL) pairs) from the cache or the overhead
    document, measuring the ones neither has (and caching them)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return _ensure(out_dir, needed, redis_url, client, refresh)
    finally:
        client.close()


def _ensure(
    out_dir: Path,
    needed: Iterable[tuple[str, str]],
    redis_url: str,
    client: redis.Redis,
    refresh: bool,
) -> MachineCosts:
    figures = {} if refresh else load_cache(out_dir, client)
    for key, figure in ({} if refresh else from_overhead(out_dir)).items():
        if _newer(figures.get(key), figure):
            figures[key] = figure
    wanted = {(n, b) for n, b in needed if n}
    wanted.add(("redis_rtt", ""))
    wanted.add(("parallel_slowdown", ""))
    missing = MachineCosts(figures).missing(wanted)
    if not missing:
        return MachineCosts(figures)
    when = _now()
    load = load_per_core()
    if any(m in LOCAL_FIGURES for m in missing):
        for name, value in measure_local().items():
            figures[name] = Figure(value, LOCAL_SOURCE, when, load)
    if "parallel_slowdown" in missing:
        figures["parallel_slowdown"] = Figure(
            measure_parallel(), "measured by the bench, this run (machine_costs.measure_parallel)",
            when, load,
        )  # fmt: skip
    if "async_request" in missing:
        figures["async_request"] = Figure(
            measure_async_request(),
            "measured by the bench (machine_costs.measure_async_request)", when, load,
        )  # fmt: skip
    if "redis_rtt" in missing:
        rtt = overhead.measure_redis(client, repeat=3, pings=REDIS_PINGS)
        figures["redis_rtt"] = Figure(
            float(rtt["round_trip_s"]["median"]), "measured by the bench (overhead.measure_redis)",
            when, load,
        )  # fmt: skip
    pools: dict[tuple[str, str], None] = {}
    for name, broker in wanted:
        if figure_key(name, broker) in missing and name.startswith("celery_"):
            pools[(name.partition(":")[2], broker or redis_url)] = None
    for pool, broker in pools:
        if pool not in workers.POOLS:
            continue
        source = f"measured by the bench (overhead.measure_pool, {CELERY_MESSAGES} messages)"
        for name, value in measure_celery(pool, broker, redis_url).items():
            figures[figure_key(name, broker)] = Figure(value, source, when, load)
    save_cache(out_dir, figures, client)
    return MachineCosts(figures)


def shape_needs(shapes: Iterable[Any]) -> list[tuple[str, str]]:
    """The (figure, broker URL) pairs a set of ``CostShape`` needs."""
    out: list[tuple[str, str]] = [("pickle_byte", "")]
    for shape in shapes:
        names = (shape.dispatch, shape.dispatch_cpu, shape.per_job, shape.latency,
                 shape.untimed_start)  # fmt: skip
        for name in names:
            if name:
                out.append((name, shape.broker_url if name.startswith("celery_") else ""))
    return out
