"""The local HTTP target with a fault switch, for the chaos soak (``tests/test_chaos.py``).

``python -m tests.fault_target --port P --latency-ms L --seed S`` serves the target's own app
(``producer.target_server.create_app``: ``GET /ip``, ``GET /health``) and one more route,
``POST /faults?fail_rate=F&hang_rate=H``, which changes the fraction of requests answered 500
or left hanging from the next request on. ``jobbench target`` fixes those rates at start; a
chaos run needs a target that turns bad and recovers at random moments while jobs run.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from producer.target_server import create_app


@dataclass
class SwitchableConfig:
    """``TargetConfig``'s fields that the app reads on every request, mutable."""

    host: str
    port: int
    latency_ms: float
    seed: int
    jitter_ms: float = 0.0
    fail_rate: float = 0.0
    hang_rate: float = 0.0


def _rate(request: Request, name: str) -> float:
    value = float(request.query_params.get(name, "0"))
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be within 0..1: got {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    config = SwitchableConfig("127.0.0.1", opts.port, opts.latency_ms, opts.seed)
    app = create_app(config)  # duck-typed TargetConfig: the same fields, mutable

    async def faults(request: Request) -> Response:
        try:
            fail_rate, hang_rate = _rate(request, "fail_rate"), _rate(request, "hang_rate")
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        config.fail_rate, config.hang_rate = fail_rate, hang_rate
        return JSONResponse({"fail_rate": config.fail_rate, "hang_rate": config.hang_rate})

    app.add_route("/faults", faults, methods=["POST"])
    uvicorn.run(
        app, host=config.host, port=config.port, log_level="warning", access_log=False,
        backlog=4096, timeout_keep_alive=30,
    )  # fmt: skip


if __name__ == "__main__":
    main()
