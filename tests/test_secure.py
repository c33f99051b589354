"""Secure defaults: JSON-only messages (a pickled task is refused by a real worker), Redis with a
password and with an ACL user end to end, ``rediss://`` wired to TLS, Flower on loopback with
auth, and no password in any output: logs, tables, results, error records, command lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest
import redis
import yaml

from producer import flower
from producer.runners.base import JobBatch
from producer.runners.celery import workers
from producer.runners.celery.publish import enqueue, wait_complete
from producer.services import (
    Target,
    embedded_redis_binary,
    free_port,
    redis_reachable,
    stop_process,
    wait_until,
)
from shared import keys
from shared.settings import Settings, redact_url
from shared.timings import TimingStore
from shared.workloads import RequestFailed, fetch
from worker.app import RUN_JOBS_TASK, create_app

ROOT = Path(__file__).resolve().parent.parent
JOBBENCH = [sys.executable, "-m", "producer.cli"]
#: The private Redis's passwords: the default user's, and the ACL user ``bench``'s.
DEFAULT_PASSWORD = "Def4ult-" + uuid.uuid4().hex[:10]
ACL_USER = "bench"
#: Reserved characters, as real passwords have them; a URL carries them percent-encoded.
ACL_PASSWORD = "acl/Pass@:" + uuid.uuid4().hex[:10]
ACL_PASSWORD_IN_URL = quote(ACL_PASSWORD, safe="")
#: Every form a password could leak in.
SECRETS = (DEFAULT_PASSWORD, ACL_PASSWORD, ACL_PASSWORD_IN_URL)


# --- units: configuration -------------------------------------------------------------------


def test_messages_are_json_only() -> None:
    conf = create_app("redis://127.0.0.1:6379/9").conf
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json" and conf.result_serializer == "json"
    assert conf.event_serializer == "json"


def test_rediss_urls_are_accepted_redacted_and_use_tls() -> None:
    url = f"rediss://{ACL_USER}:{ACL_PASSWORD_IN_URL}@redis.example:6380/0?ssl_cert_reqs=required"
    settings = Settings.from_env({"REDIS_URL": url})
    assert settings.redis_url == url and ACL_PASSWORD_IN_URL not in str(settings.redacted())
    pool = redis.Redis.from_url(url).connection_pool
    assert pool.connection_class is redis.SSLConnection  # the timing store speaks TLS
    assert pool.connection_kwargs["password"] == ACL_PASSWORD  # decoded from the URL
    conn = create_app(url).connection_for_write()  # the Celery broker too, certificate checked
    assert conn.transport_cls == "rediss" and conn.ssl and "ssl_cert_reqs" in conn.ssl
    assert not any(secret in conn.as_uri() for secret in SECRETS)


def test_query_string_passwords_are_redacted_too() -> None:
    shown = redact_url(f"redis://redis.example:6379/0?password={DEFAULT_PASSWORD}&db=1")
    assert DEFAULT_PASSWORD not in shown and shown.endswith("?password=***&db=1")


def test_flower_listens_on_loopback_with_auth_from_the_environment() -> None:
    assert flower.LOOPBACK == "127.0.0.1"
    command = flower.flower_command(5555)
    assert "--address=127.0.0.1" in command
    env = flower.flower_env("redis://:pw@127.0.0.1:6379/0", f"watch:{DEFAULT_PASSWORD}")
    assert env["FLOWER_BASIC_AUTH"] == f"watch:{DEFAULT_PASSWORD}"  # handed over in env...
    assert not any(DEFAULT_PASSWORD in part for part in command)  # ...never on a command line
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svc = compose["services"]["flower"]
    assert all(str(port).startswith("127.0.0.1:") for port in svc["ports"]), svc["ports"]
    assert "FLOWER_BASIC_AUTH" in svc["environment"]


@pytest.mark.integration
def test_credentials_in_a_target_url_stay_out_of_error_records(target: Target) -> None:
    base = target.base_url.replace("http://", f"http://watch:{DEFAULT_PASSWORD}@")
    with pytest.raises(RequestFailed) as info:
        fetch(f"{base}/no-such-page")  # requests puts the whole URL in its 404 message
    assert "404" in str(info.value) and "watch:***@" in str(info.value)
    assert DEFAULT_PASSWORD not in str(info.value)


# --- a real password-protected Redis with an ACL user ---------------------------------------


@pytest.fixture(scope="module")
def secured_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private redis-server: the default user needs a password, and the ACL user ``bench``
    has its own (all keys and channels, all commands: what Celery and jobbench need). The
    passwords are in its config file, not on its command line."""
    workdir = tmp_path_factory.mktemp("secured-redis")
    port = free_port()
    config = workdir / "redis.conf"
    config.write_text(
        f'port {port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir {workdir}\n'
        f"logfile {workdir / 'redis.log'}\nrequirepass {DEFAULT_PASSWORD}\n"
        f"user {ACL_USER} on >{ACL_PASSWORD} ~* &* +@all\n"
    )
    proc = subprocess.Popen(
        [str(embedded_redis_binary()), str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        url = urls(port)["password"]
        wait_until(lambda: redis_reachable(url, 0.2), 20.0, "password-protected Redis", proc)
        yield port
    finally:
        stop_process(proc, grace_s=5.0)


def urls(port: int) -> dict[str, str]:
    return {
        "password": f"redis://:{DEFAULT_PASSWORD}@127.0.0.1:{port}/0",
        "acl": f"redis://{ACL_USER}:{ACL_PASSWORD_IN_URL}@127.0.0.1:{port}/0",
    }


@pytest.mark.integration
def test_anonymous_and_wrong_password_are_refused(secured_redis: int) -> None:
    for url in (
        f"redis://127.0.0.1:{secured_redis}/0",
        f"redis://{ACL_USER}:wrong@127.0.0.1:{secured_redis}/0",
    ):
        client = redis.Redis.from_url(url)
        with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
            client.set("jobbench:probe", 1)
        client.close()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["password", "acl"])
def test_worker_runs_jobs_through_an_authenticated_redis(secured_redis: int, kind: str) -> None:
    """A real worker, authenticated as the default user or the ACL user, runs jobs; its
    command line (what ``ps`` shows every user) holds no password."""
    url = urls(secured_redis)[kind]
    store = TimingStore.from_url(url)
    queue = workers.queue_name(f"secure.{kind}", uuid.uuid4().hex[:12])
    run_id = f"secure-{uuid.uuid4().hex[:10]}"
    batch = JobBatch(run_id=run_id, workload="cpu", args=[1000, 1001, 1002], repeat=0)
    try:
        with workers.running_worker(
            pool="solo", concurrency=1, queue=queue, broker_url=url, redis_url=url
        ) as worker:
            cmdlines = [worker.proc.args] + [
                p.cmdline() for p in psutil.Process(worker.pid).children(recursive=True)
            ]
            assert not any(s in " ".join(map(str, c)) for c in cmdlines for s in SECRETS)
            enqueued = enqueue(
                batch, app=workers.producer_app(url), store=store, queue=queue,
                model="celery_solo", batch_size=1,
            )  # fmt: skip
            wait_complete(store, enqueued.scope_key, 3, model="celery_solo", timeout_s=30)
        assert [r.outcome for r in store.load(enqueued.scope_key)] == ["ok"] * 3
    finally:
        workers.delete_queue(url, queue)
        for key in store.client.scan_iter(match=f"jobbench:{run_id}:*"):
            store.client.delete(key)
        store.client.close()


@pytest.mark.integration
def test_a_pickled_task_is_refused_by_the_worker(secured_redis: int) -> None:
    """accept_content=json in practice: a pickle message never runs; the JSON one after it does."""
    url = urls(secured_redis)["acl"]
    store = TimingStore.from_url(url)
    queue = workers.queue_name("secure.pickle", uuid.uuid4().hex[:12])
    scope_key = keys.scope(f"secure-{uuid.uuid4().hex[:10]}", "celery_solo", "cpu", 0)
    app = workers.producer_app(url)
    try:
        with workers.running_worker(
            pool="solo", concurrency=1, queue=queue, broker_url=url, redis_url=url
        ):
            now = time.time_ns()
            for job_id, serializer in ((0, "pickle"), (1, "json")):
                app.send_task(
                    RUN_JOBS_TASK,
                    args=(scope_key, "cpu", "celery_solo", "digest", [[job_id, 1000, now]]),
                    queue=queue, serializer=serializer, ignore_result=True,
                )  # fmt: skip
            deadline = time.monotonic() + 30
            while not store.client.hexists(keys.records(scope_key), "1"):
                assert time.monotonic() < deadline, "the JSON task never ran"
                time.sleep(0.02)
        assert store.missing(scope_key, 2) == [0]  # the pickled one: refused, never run
        assert 0 not in store.attempts(scope_key)
    finally:
        workers.delete_queue(url, queue)
        store.client.delete(*(f(scope_key) for f in (keys.records, keys.attempts)))
        store.client.close()


@pytest.mark.integration
def test_no_password_in_any_output_of_a_run(secured_redis: int, tmp_path: Path) -> None:
    """A tiny bench with an in-process model and a Celery worker, then verify and history, all
    through the ACL user: everything printed and everything written is free of the password."""
    url = urls(secured_redis)["acl"]
    out = tmp_path / "results"
    env = {
        **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"},
        "REDIS_URL": url,
    }
    outputs: list[str] = []
    for argv in (
        ["bench", "--models", "sequential,celery_solo", "--workloads", "cpu", "--cpu-jobs", "10",
         "--repeat", "1", "--warmup", "0", "--out", str(out), "--quiet"],
        ["verify", "latest", "--out", str(out)],
        ["verify", "latest", "--out", str(out), "--format", "json"],
        ["history", "--out", str(out)],
        ["report", "latest", "--out", str(out)],
    ):  # fmt: skip
        proc = subprocess.run(
            [*JOBBENCH, *argv], capture_output=True, text=True, env=env, timeout=120
        )
        assert proc.returncode == 0, (argv, proc.stderr)
        outputs += [proc.stdout, proc.stderr]
    doc = json.loads((out / "latest" / "results.json").read_text())
    assert doc["metadata"]["settings"]["redis_url"] == redact_url(url)
    written = [p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()]
    assert len(written) >= 3  # results.json, jobs.csv, report.md (and charts)
    for text in outputs + written:
        for secret in SECRETS:
            assert secret not in text
    client = redis.Redis.from_url(url)
    try:
        run_id = doc["run_id"]
        for key in client.scan_iter(match=f"jobbench:{run_id}:*"):
            client.delete(key)
    finally:
        client.close()


@pytest.mark.integration
def test_wrong_password_is_one_line_exit_2_without_the_password(
    secured_redis: int, tmp_path: Path
) -> None:
    url = f"redis://{ACL_USER}:{ACL_PASSWORD_IN_URL}x@127.0.0.1:{secured_redis}/0"
    proc = subprocess.run(
        [*JOBBENCH, "bench", "--models", "sequential", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env={**os.environ, "REDIS_URL": url}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "cannot reach Redis" in proc.stderr
    assert not any(secret in proc.stderr + proc.stdout for secret in SECRETS)
