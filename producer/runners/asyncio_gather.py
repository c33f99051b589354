"""``asyncio.gather`` over one shared ``httpx.AsyncClient`` (the IO workload only)."""

from __future__ import annotations

import asyncio
import time

import httpx

from producer.runners.base import JobBatch, Runner, RunResult, register
from shared.timings import JobRecord, describe_error, job_record
from shared.workloads import ResultMode, Workload, run_io_job_async


async def _timed(client: httpx.AsyncClient, job_id: int, url: str, mode: ResultMode) -> JobRecord:
    started = time.time_ns()
    output: str | None = None
    error: str | None = None
    try:
        output = await run_io_job_async(client, url, mode)
    except Exception as exc:  # a failing job is data, not a crash of the harness
        error = describe_error(exc)
    name = AsyncioGather.name
    return job_record(
        job_id, "io", model=name, pool=name, started_at_ns=started, output=output, error=error
    )


async def _gather(urls: list[str], mode: ResultMode) -> list[JobRecord]:
    # httpx caps a client at 100 connections by default; lift it so every request is in flight.
    limits = httpx.Limits(max_connections=max(len(urls), 1), max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits) as client:
        return list(await asyncio.gather(*(_timed(client, i, u, mode) for i, u in enumerate(urls))))


@register
class AsyncioGather(Runner):
    name = "asyncio"
    workloads = frozenset({"io"})

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        return n_jobs

    def run(self, batch: JobBatch) -> RunResult:
        records = asyncio.run(_gather([str(a) for a in batch.args], batch.mode))
        return RunResult(records=records, params={"concurrency": batch.n_jobs})
