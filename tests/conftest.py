"""Shared fixtures: real services only. A service a test needs and cannot reach is a skip on a
laptop and a failure under CI (``CI=true``).

Redis is resolved the way jobbench resolves it, so a fresh machine runs the Celery, verify and
overhead tests too: ``JOBBENCH_TEST_REDIS_URL`` (must answer), else the local default server if it
answers, else an embedded Redis store on a private data directory for this session (every
``jobbench`` the tests start finds the same one through ``JOBBENCH_DATA_DIR``), stopped at the end.
The user's own store (``~/.local/share/jobbench``) is never touched."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from producer import embedded_redis
from producer.services import Target, embedded_redis_binary, redis_reachable, run_target
from shared.settings import DEFAULT_REDIS_URL

_TRUE = {"1", "true", "yes"}
IN_CI = os.environ.get("CI", "").lower() in _TRUE
#: Set by tests/fresh_machine.sh, which runs the suite in a network namespace with only loopback:
#: there the services that cannot be embedded (RabbitMQ, a Docker engine, ...) are absent on
#: purpose, so they skip even under CI. Redis never skips there: it is embedded.
FRESH_MACHINE = os.environ.get("JOBBENCH_FRESH_MACHINE", "").lower() in _TRUE
#: Markers whose tests run only when a ``-m`` expression names them (``make test-chaos`` runs
#: ``-m chaos``): too long for ``make test``, which deselects them.
OPT_IN_MARKERS = ("slow", "chaos")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the opt-in tiers unless the ``-m`` expression names them."""
    expression = config.getoption("markexpr") or ""
    skipped = {m for m in OPT_IN_MARKERS if not re.search(rf"\b{m}\b", expression)}
    if not skipped:
        return
    kept, deselected = [], []
    for item in items:
        (deselected if skipped & {m.name for m in item.iter_markers()} else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def need(condition: bool, why: str) -> None:
    """Skip (laptop, fresh-machine check) or fail (CI) when a required service is missing."""
    if condition:
        return
    if IN_CI and not FRESH_MACHINE:
        pytest.fail(f"required under CI: {why}")
    pytest.skip(why)


#: Every command-line bench run of the suite skips the probe and the predictions
#: (``--no-predict`` through its environment variable): they measure machine costs (Celery
#: workers of their own) and probe the jobs, seconds a run on a busy machine, which took the
#: suite from 10 to 16 minutes. ``tests/test_predict.py`` builds its ``BenchConfig`` directly,
#: where predicting is the default, and tests them against real runs.
NO_PREDICT_ENV = "JOBBENCH_NO_PREDICT"


def pytest_configure(config: pytest.Config) -> None:
    """A private data directory for this session's embedded Redis store (see the docstring)."""
    os.environ[embedded_redis.DATA_DIR_ENV] = tempfile.mkdtemp(prefix="jobbench-test-data-")
    os.environ[NO_PREDICT_ENV] = "1"


def pytest_unconfigure(config: pytest.Config) -> None:
    data_dir = Path(os.environ.pop(embedded_redis.DATA_DIR_ENV, ""))
    if data_dir.name.startswith("jobbench-test-data-"):
        embedded_redis.stop(data_dir / "redis")
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis: ``JOBBENCH_TEST_REDIS_URL``, else the local default server if it answers,
    else the session's embedded store (started here if no test started it yet)."""
    url = os.environ.get("JOBBENCH_TEST_REDIS_URL")
    if url:
        need(redis_reachable(url), f"no Redis at {url} (JOBBENCH_TEST_REDIS_URL)")
        return url
    if redis_reachable(DEFAULT_REDIS_URL):
        return DEFAULT_REDIS_URL
    return embedded_redis.ensure_store(embedded_redis_binary()).url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def run_id(redis_client: redis.Redis) -> Iterator[str]:
    """A unique run id; every ``jobbench:<run_id>:*`` key is deleted after the test."""
    rid = f"test-{uuid.uuid4().hex[:12]}"
    yield rid
    for key in redis_client.scan_iter(match=f"jobbench:{rid}:*", count=1000):
        redis_client.delete(key)
    redis_client.zrem("jobbench:runs", rid)


@pytest.fixture(scope="session")
def target() -> Iterator[Target]:
    """The local HTTP target with a short latency (20 ms) so tests stay fast."""
    with run_target(latency_ms=20.0) as t:
        yield t
