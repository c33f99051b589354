"""The local HTTP target: httpbin-like answers, latency honoured under concurrency."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from producer.services import run_target

pytestmark = pytest.mark.integration

LATENCY_MS = 160.0
N_CONCURRENT = 200


async def _fire(url: str, n: int) -> tuple[list[float], float]:
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one() -> float:
            t0 = time.perf_counter()
            response = await client.get(url)
            assert response.status_code == 200
            assert response.json() == {"origin": "127.0.0.1"}
            return time.perf_counter() - t0

        t0 = time.perf_counter()
        each = await asyncio.gather(*(one() for _ in range(n)))
        return list(each), time.perf_counter() - t0


def test_target_serves_200_concurrent_requests_each_after_its_latency() -> None:
    with run_target(latency_ms=LATENCY_MS) as target:
        each, total = asyncio.run(_fire(target.url, N_CONCURRENT))
    assert len(each) == N_CONCURRENT
    # Every answer waited at least the configured latency...
    assert min(each) >= LATENCY_MS / 1000
    # ...and they waited in parallel: served one after the other they would take 32 s.
    serial_s = N_CONCURRENT * LATENCY_MS / 1000
    assert total < serial_s / 8


def test_target_injects_failures_at_the_configured_rate() -> None:
    with run_target(latency_ms=0, fail_rate=1.0) as target:
        response = httpx.get(target.url)
        health = httpx.get(f"{target.base_url}/health").json()
    assert response.status_code == 500
    assert health["failed"] == 1 and health["requests"] == 1
