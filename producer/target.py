"""A local HTTP target standing in for httpbin.org/ip: ``GET /ip`` answers after a latency.

Asynchronous (starlette on uvicorn), so thousands of concurrent requests each wait their latency
in parallel. Fault injection for the resilience tests: a fraction of requests can answer 500 or
hang past any client timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

#: The seed's per-request latency: httpbin.org/ip took ~0.16 s.
DEFAULT_LATENCY_MS = 160.0
#: How long a "hanging" request sleeps: longer than any sane client timeout.
HANG_S = 3600.0


@dataclass(frozen=True)
class TargetConfig:
    latency_ms: float = DEFAULT_LATENCY_MS
    jitter_ms: float = 0.0
    #: Fraction of requests answered with HTTP 500 (after the latency).
    fail_rate: float = 0.0
    #: Fraction of requests that never answer (the client must time out).
    hang_rate: float = 0.0
    seed: int | None = None


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


def serve(host: str, port: int, config: TargetConfig) -> None:
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_keep_alive=30,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m producer.target", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind")
    parser.add_argument("--latency-ms", type=float, default=DEFAULT_LATENCY_MS)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--hang-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    a = parser.parse_args(argv)
    serve(a.host, a.port, TargetConfig(a.latency_ms, a.jitter_ms, a.fail_rate, a.hang_rate, a.seed))


if __name__ == "__main__":
    main()
