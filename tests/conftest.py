"""Shared fixtures: real services only. A service a test needs and cannot reach is a skip on a
laptop and a failure under CI (``CI=true``)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest
import redis

from producer.services import Target, redis_reachable, run_target
from shared.settings import DEFAULT_REDIS_URL

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
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
    """Skip (laptop) or fail (CI) when a required service is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis: ``JOBBENCH_TEST_REDIS_URL`` or the local default server."""
    url = os.environ.get("JOBBENCH_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    need(redis_reachable(url), f"no Redis at {url}")
    return url


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
