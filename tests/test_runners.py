"""Every in-process runner returns exactly one record per job, and the same outputs."""

from __future__ import annotations

import pytest

from producer.runners import RUNNERS, JobBatch, RunnerOptions
from producer.services import Target
from shared.workloads import cpu_arg, run_cpu_job

pytestmark = pytest.mark.integration

#: Every model the bench runs inside its own process (whose records it stores itself), that can
#: run on this Python.
IN_PROCESS = sorted(
    name for name, cls in RUNNERS.items() if not cls.stores_own_records and cls.available() is None
)


@pytest.mark.parametrize("model", IN_PROCESS)
@pytest.mark.parametrize("workload", ["io", "cpu"])
def test_one_record_per_job_with_identical_outputs(
    model: str, workload: str, target: Target
) -> None:
    runner = RUNNERS[model](RunnerOptions(thread_pool_workers=4))
    if workload not in runner.workloads:
        pytest.skip(f"{model} does not run the {workload} workload")
    n = 12 if workload == "io" else 40
    args: list[int | str] = [target.url] * n if workload == "io" else [cpu_arg(i) for i in range(n)]
    with runner:
        runner.start(workload)  # type: ignore[arg-type]
        result = runner.run(JobBatch("t", workload, args, 0))  # type: ignore[arg-type]
    records = sorted(result.records, key=lambda r: r.job_id)
    assert [r.job_id for r in records] == list(range(n))
    assert all(r.outcome == "ok" and r.model == model for r in records), records[0].error
    assert all(r.started_at_ns <= r.finished_at_ns for r in records)
    assert result.params["concurrency"] >= 1
    if workload == "cpu":
        # The fairness contract: every model hands back the same digest per job.
        assert records[0].output == "primes:168:997"
        assert [r.output for r in records] == [run_cpu_job(cpu_arg(i)) for i in range(n)]
    else:
        assert len({r.output for r in records}) == 1 and records[0].output.startswith("http:200:")


def test_process_pools_spread_work_over_several_processes(target: Target) -> None:
    runner = RUNNERS["multiprocessing_pool"](RunnerOptions(cpu_count=2, chunksize=1))
    with runner:
        runner.start("cpu")
        result = runner.run(JobBatch("t", "cpu", [cpu_arg(i) for i in range(200)], 0))
    assert len({r.pid for r in result.records}) == 2
    assert result.params["chunksize"] == 1
