"""The local HTTP server standing in for httpbin.org/ip (``jobbench target``): ``GET /ip``
answers after a latency, ``GET /health`` with counters.

Asynchronous (starlette on uvicorn), so thousands of concurrent requests each wait their latency
in parallel. Fault injection for the resilience tests: a fraction of requests can answer 500 or
hang past any client timeout. Its configuration, ``TargetConfig``, lives in ``producer.services``
with the code that starts it.
"""

from __future__ import annotations

import asyncio
import random

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from producer.services import TargetConfig

#: How long a "hanging" request sleeps: longer than any sane client timeout.
HANG_S = 3600.0


def create_app(config: TargetConfig) -> Starlette:
    rng = random.Random(config.seed)
    counters = {"requests": 0, "failed": 0, "hung": 0}

    async def ip(request: Request) -> Response:
        counters["requests"] += 1
        delay_ms = config.latency_ms + (rng.uniform(-1, 1) * config.jitter_ms)
        roll = rng.random()
        if roll < config.hang_rate:
            counters["hung"] += 1
            await asyncio.sleep(HANG_S)
        await asyncio.sleep(max(delay_ms, 0.0) / 1000)
        if roll < config.hang_rate + config.fail_rate:
            counters["failed"] += 1
            return PlainTextResponse("injected failure", status_code=500)
        origin = request.client.host if request.client else "127.0.0.1"
        return JSONResponse({"origin": origin})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, **counters, "latency_ms": config.latency_ms})

    return Starlette(routes=[Route("/ip", ip), Route("/health", health)])


def serve(config: TargetConfig) -> None:
    """Serve until interrupted."""
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_keep_alive=30,
    )
