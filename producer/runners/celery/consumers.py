"""Which Celery nodes consume a queue: the one ``active_queues`` poller, shared by the external
workers of a bench run (``find_consumers``) and the simulated hosts (``wait_for_consumers`` with
the nodes expected)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from producer.runners.celery.workers import PoolName
from producer.services import ServiceError
from shared.settings import redact_url
from worker.app import pool_name

#: Seconds one ``inspect`` broadcast collects replies. An idle node answers within milliseconds
#: (a solo worker only between two tasks); the broadcast always waits this long for stragglers.
INSPECT_TIMEOUT_S = 1.0


def consuming_nodes(app: Celery, queue: str, timeout_s: float = INSPECT_TIMEOUT_S) -> set[str]:
    """One ``inspect active_queues`` broadcast: the nodes consuming ``queue`` right now."""
    with _own_connection(app) as conn:
        replies = app.control.inspect(timeout=timeout_s, connection=conn).active_queues() or {}
    return {
        node for node, queues in replies.items()
        if any(q.get("name") == queue for q in queues or [])
    }  # fmt: skip


@contextlib.contextmanager
def _own_connection(app: Celery) -> Iterator[Any]:
    """A broker connection of its own for one broadcast, closed after it, never the app's pool.

    On Redis a broadcast collects its replies with ``BRPOP``s, and the last one is still pending
    when the broadcast's time is up. Back in the app's pool, that connection would be closed by
    kombu's after-fork clean-up in every process forked later (a ``multiprocessing.Pool``
    child), which then waits forever for that reply on the socket it shares with this process
    (measured: the pool of a later model hung). Closed here, in this process, the pending reply
    is read once (at most the broadcast's timeout) and nothing is left for a child.
    """
    conn = app.connection_for_write()
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def wait_for_consumers(
    app: Celery,
    queue: str,
    *,
    wait_s: float,
    expected: set[str] | None = None,
    check: Callable[[], None] | None = None,
    inspect_timeout_s: float = INSPECT_TIMEOUT_S,
) -> set[str]:
    """Poll (at most ``wait_s``) until the nodes consuming ``queue`` include ``expected`` or,
    with nothing expected, until two broadcasts in a row agree on some nodes: a node that has
    just started consumes before it listens to broadcasts (~0.5 s later), so one round could
    miss it. ``check`` runs before each round and raises to give up early (a worker exited).
    Returns the nodes last seen (maybe fewer than expected, or none, at the deadline)."""
    deadline = time.monotonic() + wait_s
    seen: set[str] = set()
    while True:
        if check is not None:
            check()
        found = consuming_nodes(app, queue, inspect_timeout_s)
        if expected is not None:
            seen = found
            done = expected <= found
        else:
            done = bool(found) and found == seen
            seen = found or seen
        if done or time.monotonic() >= deadline:
            return seen


@dataclass
class ExternalWorkers:
    """Workers this process did not start, consuming ``queue``: the facts ``run`` needs, under
    the same names as a ``WorkerProcess``."""

    queue: str
    pool: PoolName
    broker_url: str
    #: Node name -> its pool's ``max-concurrency`` (``inspect stats``).
    nodes: dict[str, int]
    prefetch_multiplier: int
    #: Seconds until a consuming node was found and sized.
    startup_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def concurrency(self) -> int:
        return sum(self.nodes.values())

    @property
    def nodename(self) -> str:
        return ",".join(sorted(self.nodes))

    def alive(self) -> bool:
        # Not ours to watch: a node that disappears shows up as jobs missing at the timeout.
        return True


def find_consumers(
    app: Celery,
    queue: str,
    pool: PoolName,
    *,
    broker_url: str,
    wait_s: float,
    inspect_timeout_s: float = INSPECT_TIMEOUT_S,
) -> ExternalWorkers:
    """Wait (at most ``wait_s``) until some node consumes ``queue``; size every such node.

    Raises ``ServiceError`` (one line) when none shows up in time, none answers ``stats``, or a
    node runs another pool than the queue's name promises (its records would be mislabelled).
    """
    started = time.perf_counter()
    consumers = sorted(
        wait_for_consumers(app, queue, wait_s=wait_s, inspect_timeout_s=inspect_timeout_s)
    )
    if not consumers:
        raise ServiceError(
            f"no Celery worker consumes queue {queue!r} on {redact_url(broker_url)} after "
            f"{wait_s:g} s (start one: celery -A worker.app worker --pool={pool} -Q {queue})"
        )
    with _own_connection(app) as conn:
        stats = app.control.inspect(
            destination=consumers, timeout=inspect_timeout_s, limit=len(consumers),
            connection=conn,
        ).stats() or {}  # fmt: skip
    nodes: dict[str, int] = {}
    prefetch = 0
    for node in consumers:
        info = stats.get(node)
        if not info:
            continue  # went away between the two broadcasts
        running = pool_name(info["pool"]["implementation"])
        if running != pool:
            raise ServiceError(
                f"worker {node} consumes {queue!r} but runs the {running} pool, not {pool}"
            )
        nodes[node] = int(info["pool"]["max-concurrency"])
        prefetch += int(info.get("prefetch_count") or 0)
    if not nodes:
        raise ServiceError(f"no worker consuming {queue!r} answered inspect stats")
    total = sum(nodes.values())
    return ExternalWorkers(
        queue=queue,
        pool=pool,
        broker_url=broker_url,
        nodes=nodes,
        prefetch_multiplier=max(1, round(prefetch / total)) if prefetch else 1,
        startup_s=time.perf_counter() - started,
    )


#: The remote-control command of ``worker.tasks.import_job`` (named here: the producer never
#: imports the worker's tasks).
IMPORT_JOB_COMMAND = "jobbench_import_job"


def probe_job(
    app: Celery, nodes: list[str], job: str, timeout_s: float = INSPECT_TIMEOUT_S
) -> None:
    """Ask every node whether it can import ``job``; a node that cannot (or does not answer)
    is a one-line ``ServiceError`` naming it."""
    with _own_connection(app) as conn:
        replies = app.control.broadcast(
            IMPORT_JOB_COMMAND, arguments={"job": job}, destination=nodes, reply=True,
            timeout=timeout_s, limit=len(nodes), connection=conn,
        ) or []  # fmt: skip
    answers: dict[str, Any] = {}
    for reply in replies:
        answers.update(reply)
    for node in nodes:
        answer = answers.get(node)
        if not isinstance(answer, dict) or not ({"ok", "error"} & answer.keys()):
            raise ServiceError(
                f"worker {node} did not answer the job import probe within {timeout_s:g} s "
                "(a jobbench older than --job?)"
            )
        if "error" in answer:
            raise ServiceError(f"worker {node} cannot run the job: {answer['error']}")
