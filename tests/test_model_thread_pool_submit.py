"""``thread_pool_submit``: a model added as one file (``producer/runners/thread_pool_submit.py``)
and this test, nothing else edited: the registry finds it, the bench can run it, the CLI lists
it; it stays out of the default run."""

from __future__ import annotations

import pytest

from producer.cli import build_parser
from producer.runners import JobBatch, RunnerOptions, registry
from producer.services import Target
from shared.workloads import cpu_arg, run_cpu_job


def test_it_is_found_listed_and_not_a_default() -> None:
    cls = registry.load("thread_pool_submit")
    assert cls.available() is None and not cls.tuned and not cls.default
    assert "thread_pool_submit" not in registry.default_models()
    args = build_parser().parse_args(["bench", "--models", "sequential,thread_pool_submit"])
    assert args.models == ("sequential", "thread_pool_submit")


@pytest.mark.integration
def test_it_runs_every_job_on_the_default_pool(target: Target) -> None:
    runner = registry.load("thread_pool_submit")(RunnerOptions())
    with runner:
        cpu = runner.run(JobBatch("t", "cpu", [cpu_arg(i) for i in range(30)], 0))
        io = runner.run(JobBatch("t", "io", [target.url] * 8, 0))
    assert [r.output for r in cpu.records] == [run_cpu_job(cpu_arg(i)) for i in range(30)]
    assert all(r.model == "thread_pool_submit" and r.outcome == "ok" for r in io.records)
    assert len({r.thread for r in io.records}) > 1  # the pool's threads share the requests
    assert cpu.params["concurrency"] == runner.concurrency("cpu", 1000)
