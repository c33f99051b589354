"""The Celery broker as an option: Redis or RabbitMQ (``--broker``), or both compared in one run
(``--brokers redis,amqp://...``: rows ``celery_<pool>`` and ``celery_<pool>@amqp``). Timings stay
in Redis whatever the broker; passwords never reach a file or a terminal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from producer.bench import Bench, BenchConfig
from producer.cli import EXIT_USAGE
from producer.runners import RUNNERS, JobBatch, RunnerOptions
from producer.runners.celery import workers
from producer.runners.celery.models import CeleryOptions, CeleryRunner, broker_labels
from producer.runners.registry import runner_class
from shared.settings import Settings
from shared.workloads import cpu_arg
from tests.conftest import need

#: The RabbitMQ the integration tests use (our machines: 127.0.0.1:5672, guest/guest).
AMQP_URL = os.environ.get("JOBBENCH_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
JOBBENCH = [sys.executable, "-m", "producer.cli"]
#: How to get a RabbitMQ when none answers (the skip reason says it).
GET_RABBITMQ = "apt-get install rabbitmq-server, or COMPOSE_PROFILES=rabbitmq make up"


def amqp_reachable(url: str = AMQP_URL) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 1):
            return True
    except OSError:
        return False


@pytest.fixture
def amqp_url() -> str:
    where = urlsplit(AMQP_URL).netloc.rpartition("@")[2]
    need(amqp_reachable(), f"no RabbitMQ at {where}: {GET_RABBITMQ}")
    return AMQP_URL


# --- units: labels and model names -----------------------------------------------------------


def test_broker_labels_name_rows_by_scheme() -> None:
    settings = Settings(redis_url="redis://10.0.0.5:6379/0")
    amqp, other = "amqp://u:p@rabbit//", "amqp://u:p@rabbit2//"
    assert broker_labels((), settings) == {"": None}
    assert broker_labels(("redis", amqp), settings) == {"": None, "amqp": amqp}
    assert broker_labels((amqp, other, "redis://other:6379/0"), settings) == {
        "amqp": amqp, "amqp2": other, "redis": "redis://other:6379/0",
    }  # fmt: skip
    # CELERY_BROKER_URL alone: that broker, labelled unless it is the timing Redis itself.
    assert broker_labels((), Settings(broker_url=amqp)) == {"amqp": amqp}
    same = Settings(redis_url="redis://h:1/0", broker_url="redis://h:1/0")
    assert broker_labels((), same) == {"": None}


def test_each_celery_model_runs_once_per_broker() -> None:
    config = BenchConfig(
        models=("sequential", "celery_prefork", "celery_threads"),
        brokers=("amqp://u:p@rabbit//", "redis"),
    )
    bench = Bench(config, Settings())
    assert bench.model_names("cpu") == [
        "sequential", "celery_prefork@amqp", "celery_prefork", "celery_threads@amqp",
        "celery_threads",
    ]  # fmt: skip
    assert bench.steps_total == 2 * 5 * config.repeat
    assert runner_class("celery_prefork@amqp") is RUNNERS["celery_prefork"]
    runner = bench._runner("celery_prefork@amqp", RunnerOptions(redis_url="redis://h:1/0"))
    assert isinstance(runner, CeleryRunner)
    assert runner.model == "celery_prefork@amqp" and runner.name == "celery_prefork"
    assert runner.celery.broker_url == "amqp://u:p@rabbit//"
    plain = bench._runner("celery_prefork", RunnerOptions(redis_url="redis://h:1/0"))
    assert isinstance(plain, CeleryRunner)
    assert plain.model == "celery_prefork" and plain.celery.broker_url == "redis://h:1/0"


# --- RabbitMQ ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_pool_on_rabbitmq_records_in_redis(amqp_url: str, redis_url: str, run_id: str) -> None:
    runner = RUNNERS["celery_solo"](
        RunnerOptions(cpu_count=1, redis_url=redis_url),
        CeleryOptions(broker_url=amqp_url, broker_label="amqp", completion_timeout_s=30.0),
    )
    with runner:
        facts = runner.start("cpu")
        assert facts["broker"] == amqp_url.replace("guest:guest", "guest:***")
        result = runner.run(JobBatch(run_id, "cpu", [cpu_arg(i) for i in range(20)], repeat=0))
        queue = facts["queue"]
    assert [r.job_id for r in result.records] == list(range(20))
    assert {(r.model, r.pool, r.outcome) for r in result.records} == {
        ("celery_solo@amqp", "solo", "ok")
    }
    # stop() dropped the run's queue from RabbitMQ.
    app = workers.producer_app(amqp_url)
    with app.connection_for_write() as conn, pytest.raises(Exception, match="NOT_FOUND"):
        conn.default_channel.queue_declare(queue=queue, passive=True)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JOBBENCH, *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **env},
    )  # fmt: skip


@pytest.mark.integration
def test_redis_and_rabbitmq_in_one_table(amqp_url: str, redis_url: str, tmp_path: Path) -> None:
    password = urlsplit(amqp_url).password or ""
    proc = run_cli(
        "bench", "--models", "celery_solo", "--workloads", "cpu", "--cpu-jobs", "30",
        "--repeat", "1", "--warmup", "0", "--brokers", f"redis,{amqp_url}",
        "--out", str(tmp_path), env={"REDIS_URL": redis_url},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "latest" / "results.json").read_text())
    rows = {r["model"]: r for r in doc["results"]}
    assert set(rows) == {"celery_solo", "celery_solo@amqp"}
    assert all(r["n_ok"] == 30 for r in rows.values())
    assert rows["celery_solo@amqp"]["startup"]["broker"].startswith("amqp://")
    assert "celery_solo@amqp" in proc.stdout and "celery_solo " in proc.stdout
    # The password is nowhere: not in the table, the results, the report or the jobs file.
    secret = f":{password}@"
    assert secret not in proc.stdout + proc.stderr
    for path in (tmp_path / "latest").iterdir():
        if path.suffix in {".json", ".md", ".csv"}:
            assert secret not in path.read_text(), path.name


@pytest.mark.integration
def test_refused_login_is_one_line_without_the_password(amqp_url: str, tmp_path: Path) -> None:
    wrong = f"wrong-{uuid.uuid4().hex[:8]}"
    parts = urlsplit(amqp_url)
    bad = amqp_url.replace(f":{parts.password}@", f":{wrong}@")
    proc = run_cli(
        "bench", "--models", "celery_solo", "--workloads", "cpu", "--cpu-jobs", "2",
        "--broker", bad, "--out", str(tmp_path), env={},
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the broker amqp://" in lines[0], proc.stderr
    assert wrong not in proc.stderr + proc.stdout


def test_compose_rabbitmq_profile_switches_every_celery_service() -> None:
    """``JOBBENCH_BROKER_URL`` (the rabbitmq profile's setting) reaches every service that talks
    to Celery; REDIS_URL (timings) does not move."""
    from tests.test_compose import environment_of, load_compose

    url = "amqp://jobbench:jobbench@rabbitmq:5672//"
    services = load_compose({"JOBBENCH_BROKER_URL": url})["services"]
    celery = [n for n, s in services.items() if "CELERY_BROKER_URL" in environment_of(s)]
    assert set(celery) == {"worker-prefork", "worker-threads", "worker-solo", "flower", "producer"}
    for name in celery:
        env = environment_of(services[name])
        assert env["CELERY_BROKER_URL"] == url and env["REDIS_URL"] == "redis://redis:6379/0"
    rabbit = services["rabbitmq"]
    assert rabbit["profiles"] == ["rabbitmq"]
    # The user and password it creates by default are the ones the documented URL uses.
    rabbit_env = environment_of(rabbit)
    assert (rabbit_env["RABBITMQ_DEFAULT_USER"], rabbit_env["RABBITMQ_DEFAULT_PASS"]) == (
        "jobbench", "jobbench",
    )  # fmt: skip
    # Without the setting, the compose Redis stays the broker; workers on another machine get
    # that machine's Redis (README "Scaling out") through the two variables.
    default = environment_of(load_compose({})["services"]["worker-solo"])
    assert default["CELERY_BROKER_URL"] == default["REDIS_URL"] == "redis://redis:6379/0"
    remote = "redis://:pw@10.0.0.5:6379/0"
    shell = {"JOBBENCH_REDIS_URL": remote, "JOBBENCH_BROKER_URL": remote}
    for service in load_compose(shell)["services"].values():
        env = environment_of(service)
        if "REDIS_URL" in env:
            assert Settings.from_env(env).effective_broker_url == remote == env["REDIS_URL"]


def test_the_broker_given_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Celery reads CELERY_BROKER_URL before the broker an app is given: comparing brokers in one
    process only works if the app pins its own."""
    from worker.app import create_app

    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    app = create_app("amqp://u:p@rabbit:5672//")
    for conn in (app.connection_for_write(), app.connection_for_read()):
        with conn:
            assert conn.as_uri().startswith("amqp://u:**@rabbit:5672")
