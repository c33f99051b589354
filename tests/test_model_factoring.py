"""The factoring variants (issue 14): each chunked model's tuned schedule, one file each, beside
the default model in the table; every job run once, in order, in chunks that shrink."""

from __future__ import annotations

import pytest

from producer.runners import JobBatch, RunnerOptions, registry
from producer.runners.base import usable_cpus
from producer.runners.celery.models import CeleryOptions
from producer.schedule import factoring_ranges
from shared.workloads import cpu_arg, run_cpu_job

IN_PROCESS = ("multiprocessing_pool_factoring", "process_pool_map_factoring")
N_JOBS = 300


def test_variants_are_tuned_and_the_run_shows_them_beside_the_defaults() -> None:
    defaults = registry.default_models()
    for name in (*IN_PROCESS, "celery_prefork_factoring"):
        assert registry.load(name).tuned
    assert {"multiprocessing_pool_factoring", "celery_prefork_factoring"} <= set(defaults)
    assert {"multiprocessing_pool", "celery_prefork"} <= set(defaults)
    assert defaults.index("multiprocessing_pool") < defaults.index("multiprocessing_pool_factoring")


@pytest.mark.parametrize("model", IN_PROCESS)
def test_in_process_variant_runs_every_job_once_in_order(model: str) -> None:
    args = [cpu_arg(i) for i in range(N_JOBS)]
    runner = registry.load(model)(RunnerOptions(cpu_count=2))
    with runner:
        runner.start("cpu")
        result = runner.run(JobBatch("t", "cpu", args, 0))
    assert [r.job_id for r in result.records] == list(range(N_JOBS))
    assert [r.output for r in result.records] == [run_cpu_job(a) for a in args]
    assert result.params["chunks"] == len(factoring_ranges(N_JOBS, 2))
    assert len({r.pid for r in result.records}) == 2  # both processes took chunks
    assert "factoring" in " ".join(registry.load(model).notes({"params": result.params}))


@pytest.mark.integration
def test_celery_variant_publishes_shrinking_messages(redis_url: str, run_id: str) -> None:
    cpus = min(2, usable_cpus())
    options = RunnerOptions(cpu_count=cpus, redis_url=redis_url)
    runner = registry.load("celery_prefork_factoring")(
        options, CeleryOptions(broker_url=redis_url, completion_timeout_s=60.0)
    )
    args = [cpu_arg(i) for i in range(N_JOBS)]
    with runner:
        runner.start("cpu")
        result = runner.run(JobBatch(run_id, "cpu", args, 0))
    assert [r.job_id for r in result.records] == list(range(N_JOBS))
    assert [r.output for r in result.records] == [run_cpu_job(a) for a in args]
    expected = factoring_ranges(N_JOBS, cpus)
    assert result.extra["n_messages"] == len(expected)
    assert result.params["batch_size"] == len(expected[0])
