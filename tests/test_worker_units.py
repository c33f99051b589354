"""Pure units of the Celery side: no Redis, no worker."""

from __future__ import annotations

import pytest
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.concurrency.solo import TaskPool as SoloPool
from celery.concurrency.thread import TaskPool as ThreadPool

from producer.runners.celery.publish import MAX_AUTO_BATCH_SIZE, auto_batch_size, message_ranges
from producer.runners.celery.workers import queue_name, worker_command
from producer.schedule import pool_map_chunksize
from shared.settings import SettingsError
from worker.app import DEFAULT_VISIBILITY_TIMEOUT_S, create_app, pool_name, visibility_timeout_s


@pytest.mark.parametrize(("n_jobs", "concurrency"), [(15_000, 2), (100, 2), (20, 1), (7, 8)])
def test_auto_batch_size_follows_pool_map(n_jobs: int, concurrency: int) -> None:
    size = auto_batch_size(n_jobs, concurrency, workload="cpu", pool="prefork")
    assert size == pool_map_chunksize(n_jobs, concurrency)


def test_auto_batch_size_edges() -> None:
    assert auto_batch_size(100, 100, workload="io", pool="threads") == 1
    assert auto_batch_size(10_000, 100, workload="io", pool="threads") == 1
    assert auto_batch_size(1_000_000, 1, workload="cpu", pool="solo") == MAX_AUTO_BATCH_SIZE
    assert auto_batch_size(0, 2, workload="cpu", pool="prefork") == 1


def test_message_ranges_cover_every_job_once() -> None:
    ranges = message_ranges(10, 4)
    assert [list(r) for r in ranges] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert message_ranges(0, 4) == []
    with pytest.raises(ValueError):
        message_ranges(10, 0)


def test_pool_name_maps_classes_and_aliases() -> None:
    assert pool_name(PreforkPool) == "prefork"
    assert pool_name(ThreadPool) == "threads"
    assert pool_name(SoloPool) == "solo"
    assert pool_name("threads") == "threads"


def test_visibility_timeout_from_env() -> None:
    assert visibility_timeout_s({}) == DEFAULT_VISIBILITY_TIMEOUT_S
    assert visibility_timeout_s({"JOBBENCH_VISIBILITY_TIMEOUT_S": "120"}) == 120
    for bad in ("soon", "0", "-5"):
        with pytest.raises(SettingsError):
            visibility_timeout_s({"JOBBENCH_VISIBILITY_TIMEOUT_S": bad})


def test_app_config_is_json_late_ack_without_results() -> None:
    conf = create_app("redis://127.0.0.1:6379/9").conf
    assert conf.broker_url == "redis://127.0.0.1:6379/9"
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_ignore_result and not conf.result_backend
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_pool == "prefork"  # Celery's default: the pool comes from the command line
    assert not conf.worker_send_task_events  # on only with -E (Flower)


def test_worker_command_flags() -> None:
    cmd = worker_command(
        pool="threads", concurrency=100, nodename="n@%h", queue="q", prefetch_multiplier=1
    )
    assert cmd[1:6] == ["-m", "celery", "-A", "worker.app", "worker"]
    assert "--pool=threads" in cmd and "--without-heartbeat" in cmd
    assert "-E" not in cmd  # task events cost ~20 % on small tasks: only for Flower
    with_flower = worker_command(
        pool="solo",
        concurrency=1,
        nodename="n@%h",
        queue="q",
        prefetch_multiplier=4,
        heartbeat=True,
        events=True,
    )
    assert "--without-heartbeat" not in with_flower and "-E" in with_flower


def test_queue_names_are_unique_per_call() -> None:
    assert queue_name("celery_solo") != queue_name("celery_solo")
    assert queue_name("celery_solo", "run1") == "jobbench.run1.celery_solo"
