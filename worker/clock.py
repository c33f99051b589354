"""Clocks across hosts: every worker measures how far its wall clock is from one shared reference,
the ``TIME`` of the timing Redis, so records written on different machines share a time axis.

Durations (``run_s``) are measured on one host and need no correction. Only a difference between
two hosts' timestamps does, e.g. a queue wait: enqueued on the producer, started on a worker. The
method is NTP's with Redis as the server: read the local clock (t0), ask Redis ``TIME`` (r), read
the local clock again (t1). If the request and the reply took equally long, r was taken at
(t0 + t1) / 2, so ``offset = r - (t0 + t1) / 2``. Whatever the asymmetry, r lies between t0 and
t1, so the estimate is off by at most ``(t1 - t0) / 2`` (half the round trip) plus the 1 µs
resolution of ``TIME``. Of several samples the one with the shortest round trip is kept: its
bound is the tightest.

A worker measures at start (``worker_ready``) and publishes the result under its host name in
``keys.CLOCKS``; the producer measures its own the same way. A timestamp taken on host H maps to
the reference as ``t + offset(H)``; between two hosts the correction is
``offset(H) - offset(producer)``, with an error bound of the sum of both bounds. Processes on one
host share its clock, so records of the producer's own host are never shifted.

Caveat: one sample per worker start. Clocks drift (NTP slews them by up to 500 ppm), so a worker
running for days carries an older offset; restart it, or compare its ``sampled_at``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis
from celery import signals

from shared import keys
from shared.settings import Settings
from shared.timings import HOSTNAME

#: Round trips per measurement; the fastest is kept. Nine cost ~1 ms on a LAN and make it
#: likely that at least one saw no scheduling or queuing delay.
CLOCK_SAMPLES = 9
#: Resolution of Redis ``TIME`` (it answers seconds and microseconds), in ns.
TIME_RESOLUTION_NS = 1_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClockOffset:
    """How far ``host``'s wall clock is behind the reference: ``reference = local + offset_ns``."""

    host: str
    offset_ns: int
    #: Round trip of the sample kept (ns); the estimate is off by at most ``error_ns``.
    rtt_ns: int
    #: Local wall-clock time of the sample (ns since the epoch).
    sampled_at_ns: int

    @property
    def error_ns(self) -> int:
        return self.rtt_ns // 2 + TIME_RESOLUTION_NS

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ClockOffset:
        data = json.loads(raw)
        return cls(
            host=str(data["host"]),
            offset_ns=int(data["offset_ns"]),
            rtt_ns=int(data["rtt_ns"]),
            sampled_at_ns=int(data["sampled_at_ns"]),
        )

    def summary(self) -> dict[str, Any]:
        """For results.json: microseconds, which is the scale of the bound."""
        return {
            "offset_us": round(self.offset_ns / 1000, 1),
            "error_us": round(self.error_ns / 1000, 1),
            "rtt_us": round(self.rtt_ns / 1000, 1),
            "sampled_at_ns": self.sampled_at_ns,
        }


def measure_offset(
    client: redis.Redis, host: str = HOSTNAME, samples: int = CLOCK_SAMPLES
) -> ClockOffset:
    """The offset of this host's clock against Redis ``TIME``, from the fastest of ``samples``."""
    best: tuple[int, int, int] | None = None  # (rtt, offset, t0)
    for _ in range(max(1, samples)):
        t0 = time.time_ns()
        seconds, micros = client.time()
        t1 = time.time_ns()
        reference = int(seconds) * 1_000_000_000 + int(micros) * 1_000
        rtt = t1 - t0
        if best is None or rtt < best[0]:
            best = (rtt, reference - (t0 + t1) // 2, t0)
    assert best is not None
    return ClockOffset(host=host, offset_ns=best[1], rtt_ns=best[0], sampled_at_ns=best[2])


def publish(client: redis.Redis, offset: ClockOffset) -> None:
    client.hset(keys.CLOCKS, offset.host, offset.to_json())


def load_offsets(client: redis.Redis) -> dict[str, ClockOffset]:
    """Every host's last published offset."""
    raw: dict[bytes, bytes] = client.hgetall(keys.CLOCKS)  # type: ignore[assignment]
    return {k.decode(): ClockOffset.from_json(v) for k, v in raw.items()}


def relative_offsets_ns(
    offsets: dict[str, ClockOffset], producer_host: str = HOSTNAME
) -> dict[str, int]:
    """Host -> ns to add to its timestamps to put them on the producer's clock (via the
    reference). The producer's own host, and hosts with no published offset, get none."""
    producer = offsets.get(producer_host)
    if producer is None:
        return {}
    return {
        host: o.offset_ns - producer.offset_ns
        for host, o in offsets.items()
        if host != producer_host
    }


def _on_worker_ready(**_: Any) -> None:
    """Measure and publish this host's offset once the worker is up (never fatal)."""
    try:
        client = redis.Redis.from_url(Settings.from_env().redis_url, socket_timeout=5)
        try:
            publish(client, measure_offset(client))
        finally:
            client.close()
    except Exception as exc:  # a worker without an offset still runs jobs; its host is unshifted
        log.warning("jobbench: could not measure the clock offset: %s", exc)


# Connected by call (Celery's decorators are untyped); a strong reference, as in worker.app.
signals.worker_ready.connect(_on_worker_ready, weak=False)
