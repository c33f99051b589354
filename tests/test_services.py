"""Redis provisioning for real: the embedded server, the fallback to the embedded store, the
explicit-URL error."""

from __future__ import annotations

import os

import psutil
import pytest
import redis

from producer.embedded_redis import read_record, store_dir
from producer.services import embedded_redis, free_port, redis_reachable, resolve_redis
from shared.settings import Settings, SettingsError

pytestmark = pytest.mark.integration


def test_embedded_redis_starts_answers_and_is_stopped() -> None:
    with embedded_redis() as url:
        client = redis.Redis.from_url(url)
        assert client.set("jobbench:probe", "1") and client.get("jobbench:probe") == b"1"
        info = client.info("server")
        pid, workdir = int(info["process_id"]), client.config_get("dir")["dir"]
        client.close()
        assert psutil.pid_exists(pid) and "jobbench-redis-" in workdir
    assert not redis_reachable(url)
    assert not psutil.pid_exists(pid)
    assert not os.path.exists(workdir)


def test_unreachable_default_falls_back_to_the_embedded_store_which_stays_up() -> None:
    """The store of ``JOBBENCH_DATA_DIR`` (the session's, see conftest): recorded, and still
    answering after the command, so the next command finds the same data."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with resolve_redis(Settings(redis_url=closed, redis_url_explicit=False)) as resolved:
        assert resolved.source == "embedded" and resolved.url != closed
        assert redis_reachable(resolved.url)
    assert redis_reachable(resolved.url)
    record = read_record(store_dir())
    assert record is not None and record.url == resolved.url
    with resolve_redis(Settings(redis_url=closed, redis_url_explicit=False)) as again:
        assert again == resolved


def test_unreachable_explicit_url_is_a_one_line_error_without_the_password() -> None:
    closed = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with (
        pytest.raises(SettingsError) as info,
        resolve_redis(Settings(redis_url=closed, redis_url_explicit=True)),
    ):
        pass
    message = str(info.value)
    assert "hunter2" not in message and "***" in message and "\n" not in message


def test_reachable_default_is_used_as_is(redis_url: str) -> None:
    with resolve_redis(Settings(redis_url=redis_url)) as resolved:
        assert (resolved.url, resolved.source) == (redis_url, "default")
