"""The redrive (``producer.runners.celery.redrive``): a message the broker lost between a worker's
``BRPOP`` and its ``unacked`` bookkeeping is published again, counted, and only then.

The window is reproduced directly: a raw ``BRPOP`` takes a message off the queue exactly as
kombu's consumer does, and nothing records it as unacknowledged (the worker or Redis died before
kombu's second round trip). Real Redis, a real worker; no timed assertions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from producer.runners.base import JobBatch, RunIncomplete
from producer.runners.celery import workers
from producer.runners.celery.publish import Enqueued, enqueue, wait_complete
from producer.runners.celery.redrive import Redrive, priority_lists
from producer.runners.celery.workers import KOMBU_UNACKED, KOMBU_UNACKED_INDEX
from producer.verify import check_scope
from shared import keys
from shared.timings import TimingStore
from shared.workloads import cpu_arg

pytestmark = pytest.mark.integration

#: Any wait here gives up after this long (s): a broken redrive fails instead of hanging.
DEADLINE_S = 60.0
#: A short quiet period and check interval, so the tests take seconds (the product's: 10 s, 1 s).
QUIET_S = 0.5
CHECK_S = 0.05


@pytest.fixture
def store(redis_url: str) -> Iterator[TimingStore]:
    store = TimingStore.from_url(redis_url)
    yield store
    store.client.close()


@pytest.fixture
def queue(redis_url: str, run_id: str) -> Iterator[str]:
    name = workers.queue_name("redrive", run_id)
    yield name
    workers.delete_queue(redis_url, name)


def publish(store: TimingStore, redis_url: str, run_id: str, queue: str, n_jobs: int) -> Enqueued:
    batch = JobBatch(
        run_id=run_id, workload="cpu", args=[cpu_arg(i) for i in range(n_jobs)], repeat=0
    )
    app = workers.producer_app(redis_url)
    return enqueue(batch, app=app, store=store, queue=queue, model="celery_solo", batch_size=1)


def crash_after_pop(client: redis.Redis, queue: str) -> dict[str, object]:
    """What a consumer killed between kombu's two round trips leaves: the message popped off the
    queue (the oldest: kombu pushes left, pops right) and recorded nowhere. Returns it."""
    popped = client.brpop(priority_lists(queue), timeout=5)
    assert popped is not None, "nothing to pop"
    message: dict[str, object] = json.loads(popped[1])
    return message


def redrive(store: TimingStore, redis_url: str, enqueued: Enqueued) -> Redrive:
    app = workers.producer_app(redis_url)
    return Redrive(app, store, enqueued, store.client, quiet_s=QUIET_S, check_interval_s=CHECK_S)


def checks_until(check: Callable[[], int], deadline_s: float) -> int:
    """Call ``check`` until it republishes or ``deadline_s`` passes; returns what it republished."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        n = check()
        if n:
            return n
        time.sleep(CHECK_S)
    return 0


def test_a_message_lost_after_its_pop_is_republished_and_counted(
    redis_url: str, run_id: str, store: TimingStore, queue: str
) -> None:
    enqueued = publish(store, redis_url, run_id, queue, 4)
    crash_after_pop(store.client, queue)
    with workers.running_worker(
        pool="solo", concurrency=1, queue=queue, broker_url=redis_url, redis_url=redis_url
    ):
        end = time.monotonic() + DEADLINE_S
        while store.count(enqueued.scope_key) < 3 and time.monotonic() < end:
            time.sleep(0.05)
        # Without the redrive the job is lost for good: the run ends incomplete, naming it.
        with pytest.raises(RunIncomplete) as info:
            wait_complete(store, enqueued.scope_key, 4, model="celery_solo", timeout_s=2 * QUIET_S)
        assert info.value.missing == [0]
        assert store.attempts(enqueued.scope_key).get(0) is None  # never started
        # With it, the wait sees the job nowhere (no record, never started, queue empty, nothing
        # unacknowledged) for the quiet period, publishes its message again, and completes.
        watcher = redrive(store, redis_url, enqueued)
        wait_complete(
            store, enqueued.scope_key, 4, model="celery_solo", timeout_s=DEADLINE_S,
            redrive=watcher.check,
        )  # fmt: skip
    assert watcher.republished == {0: 1}
    check = check_scope(store.client, enqueued.scope_key)
    assert check.accounted and check.finished == 4
    assert check.republished == {0: 1}
    assert check.redelivered == {}, "a republished job that never ran before runs once"
    assert {r.job_id: r.attempt for r in store.load(enqueued.scope_key)} == dict.fromkeys(
        range(4), 1
    )


def test_nothing_is_republished_while_the_message_is_queued_or_held(
    redis_url: str, run_id: str, store: TimingStore, queue: str
) -> None:
    """No worker: a message still queued, then one held unacknowledged (what kombu records after
    its pop), is never republished, however long it waits."""
    enqueued = publish(store, redis_url, run_id, queue, 2)
    watcher = redrive(store, redis_url, enqueued)
    assert checks_until(watcher.check, 4 * QUIET_S) == 0  # both queued
    # Job 0's message taken and recorded as kombu's QoS.append does; job 1's still queued.
    message = crash_after_pop(store.client, queue)
    tag = message["properties"]["delivery_tag"]  # type: ignore[index]
    info = message["properties"]["delivery_info"]  # type: ignore[index]
    pipe = store.client.pipeline()
    pipe.zadd(KOMBU_UNACKED_INDEX, {tag: time.time()})
    pipe.hset(KOMBU_UNACKED, tag, json.dumps([message, info["exchange"], info["routing_key"]]))
    pipe.execute()
    try:
        store.client.delete(*priority_lists(queue))  # job 1's message gone as well: not held
        assert checks_until(watcher.check, 4 * QUIET_S) == 0, "job 0 is held: nothing moves"
    finally:
        store.client.hdel(KOMBU_UNACKED, tag)
        store.client.zrem(KOMBU_UNACKED_INDEX, tag)
    # Now job 0 and job 1 are both nowhere: both republished, once.
    assert checks_until(watcher.check, DEADLINE_S) == 2
    assert watcher.republished == {0: 1, 1: 1}
    assert sum(int(store.client.llen(q)) for q in priority_lists(queue)) == 2


def test_a_job_that_started_is_never_republished(
    redis_url: str, run_id: str, store: TimingStore, queue: str
) -> None:
    """A job whose body started and was lost (the early-ack negative control) is reported missing,
    never run again behind the user's back."""
    enqueued = publish(store, redis_url, run_id, queue, 1)
    crash_after_pop(store.client, queue)
    store.start_attempts(enqueued.scope_key, [0])  # it started, then its worker died
    watcher = redrive(store, redis_url, enqueued)
    assert checks_until(watcher.check, 4 * QUIET_S) == 0
    with pytest.raises(RunIncomplete) as info:
        wait_complete(
            store, enqueued.scope_key, 1, model="celery_solo", timeout_s=4 * QUIET_S,
            redrive=watcher.check,
        )  # fmt: skip
    assert info.value.missing == [0] and watcher.republished == {}
    assert check_scope(store.client, enqueued.scope_key).missing_started == [0]
    assert not any(store.client.exists(q) for q in priority_lists(queue))


def test_no_redrive_for_a_broker_without_the_window(redis_url: str, store: TimingStore) -> None:
    enqueued = Enqueued(
        scope_key=keys.scope("r", "celery_solo", "cpu", 0), queue="q", ranges=[range(1)],
        n_jobs=1, batch_size=1, n_messages=1, enqueue_s=0.0, first_enqueued_at_ns=0,
        last_enqueued_at_ns=0, task="t", workload="cpu", model="celery_solo", mode="digest",
        args=[1],
    )  # fmt: skip
    app = workers.producer_app(redis_url)
    assert Redrive.for_broker(app, store, enqueued, "amqp://guest:guest@127.0.0.1:5672//") is None
    watcher = Redrive.for_broker(app, store, enqueued, redis_url)
    assert watcher is not None
    watcher.close()
