"""``asyncio.gather`` over one shared ``httpx.AsyncClient`` (the IO workload), or over a user's
``async def`` job (``jobbench bench --job``): every job's coroutine gathered on one loop.

``asyncio`` builds the client the way a user (and the article) writes it, ``httpx.AsyncClient()``
with the library's defaults: at most 100 connections, 20 kept alive. Raising the keep-alive limit
made 100 GETs at 100 ms *slower* (0.258 s with the defaults, 0.458 s with 100 kept alive,
measured in issue 14: httpcore's pool does per-connection work on every request), so the default
model must not carry it. ``asyncio_unbounded`` is the named variant without the connection cap:
every request in flight at once, whatever their number.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

import httpx

from producer.references import timed
from producer.runners.base import (
    CostShape,
    JobBatch,
    LibraryCall,
    Reference,
    Runner,
    RunResult,
)
from shared import jobspec
from shared.timings import JobRecord, timed_io_job_async, timed_job_async
from shared.workloads import ResultMode, Workload, run_io_job_async

CLIENT = "httpx:AsyncClient"


def default_max_connections() -> int | None:
    """The connection cap of ``httpx.AsyncClient()`` (100 in httpx 0.27), read from httpx."""
    limits = inspect.signature(httpx.AsyncClient).parameters["limits"].default
    return limits.max_connections if isinstance(limits, httpx.Limits) else None


async def _gather(
    urls: list[str], mode: ResultMode, model: str, client_kwargs: dict[str, Any]
) -> list[JobRecord]:
    async with httpx.AsyncClient(**client_kwargs) as client:
        jobs = (
            timed_io_job_async(client, i, u, model=model, pool=model, mode=mode)
            for i, u in enumerate(urls)
        )
        return list(await asyncio.gather(*jobs))


async def _gather_user(
    spec: jobspec.JobSpec, args: list[Any], mode: ResultMode, model: str
) -> list[JobRecord]:
    jobs = (
        timed_job_async(spec, i, a, model=model, pool=model, mode=mode) for i, a in enumerate(args)
    )
    return list(await asyncio.gather(*jobs))


async def _reference_gather(urls: list[str], **client_kwargs: Any) -> list[str]:
    async with httpx.AsyncClient(**client_kwargs) as client:
        return await asyncio.gather(*(run_io_job_async(client, u) for u in urls))


def bare(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """What a user writes: ``httpx.AsyncClient()`` with its defaults and ``asyncio.gather``."""
    return timed(lambda: asyncio.run(_reference_gather([str(a) for a in args])), repeat)


def bare_unbounded(job: Callable[[Any], str], args: list[Any], repeat: int) -> list[float]:
    """The same with the tuned variant's limits."""
    limits = AsyncioUnbounded.kwargs_for(CLIENT)
    return timed(lambda: asyncio.run(_reference_gather([str(a) for a in args], **limits)), repeat)


class AsyncioGather(Runner):
    name = "asyncio"
    order = 40
    default = True
    workloads = frozenset({"io", "async"})
    native_async = True
    settings = (LibraryCall(CLIENT),)

    @classmethod
    def reference(cls) -> Reference:
        return bare

    def max_connections(self) -> int | None:
        limits = self.kwargs_for(CLIENT).get("limits")
        if isinstance(limits, httpx.Limits):
            return limits.max_connections
        return default_max_connections()

    def concurrency(self, workload: Workload, n_jobs: int) -> int:
        if jobspec.is_user_job(workload):
            return n_jobs  # every coroutine in flight at once: the job owns its own limits
        cap = self.max_connections()
        return n_jobs if cap is None else min(n_jobs, cap)

    def run(self, batch: JobBatch) -> RunResult:
        if jobspec.is_user_job(batch.workload):
            spec = jobspec.for_workload(batch.workload)
            records = asyncio.run(_gather_user(spec, list(batch.args), batch.mode, self.name))
            return RunResult(records=records, params={"concurrency": batch.n_jobs})
        urls = [str(a) for a in batch.args]
        records = asyncio.run(_gather(urls, batch.mode, self.name, self.kwargs_for(CLIENT)))
        params = {"concurrency": self.concurrency(batch.workload, batch.n_jobs)}
        return RunResult(records=records, params=params)

    def cost_shape(self, workload: Workload, n_jobs: int, cores: int | None = None) -> CostShape:
        # Requests in flight up to the client's connection cap, one event loop under one GIL,
        # each request costing what an httpx.AsyncClient() request measures on this machine.
        lanes = max(1, self.concurrency(workload, n_jobs))
        return CostShape(kind="coroutine", lanes=lanes, cpu_lanes=1, per_job="async_request",
                         per_job_replaces_cpu=True)  # fmt: skip


class AsyncioUnbounded(AsyncioGather):
    """``asyncio`` without httpx's 100-connection cap: the tuned variant for more than 100
    concurrent requests (keep-alive stays at the library's default)."""

    name = "asyncio_unbounded"
    order = 45
    default = False
    tuned = True

    @classmethod
    def reference(cls) -> Reference:
        return bare_unbounded

    settings = (
        LibraryCall(
            CLIENT, {"limits": httpx.Limits(max_connections=None, max_keepalive_connections=20)}
        ),
    )
