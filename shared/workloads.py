"""The seed's job functions: the one implementation every execution model calls.

``make_request`` / ``make_request_async`` are the IO-bound job (an HTTP GET), ``get_prime_numbers``
the CPU-bound one (a pure-Python Sieve of Eratosthenes; the algorithm *is* the workload, so it
stays as the seed wrote it). ``run_job`` adds what a fair comparison needs: every model hands
back the same thing per job, a small digest by default or the full result on request.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

import httpx
import requests

Workload = Literal["io", "cpu"]
WORKLOADS: tuple[Workload, ...] = ("io", "cpu")

#: What a job hands back. "digest": a short fingerprint of the result (cheap to ship, so the
#: comparison measures execution, not transport). "full": the whole result (the primes list, the
#: response body), whose transfer cost every model then pays.
ResultMode = Literal["digest", "full"]
RESULT_MODES: tuple[ResultMode, ...] = ("digest", "full")

#: The seed's IO job count: 100 requests.
DEFAULT_IO_JOBS = 100
#: The seed's CPU jobs: get_prime_numbers(n) for n in range(1000, 16000).
CPU_N_START = 1000
DEFAULT_CPU_JOBS = 15_000
#: Per-request timeout (seconds) so a dead target cannot hang a run.
REQUEST_TIMEOUT_S = 30.0


def get_prime_numbers(num: int) -> list[int]:
    """Primes up to ``num`` with the seed's list-of-bools Sieve of Eratosthenes."""
    numbers = []
    prime = [True for _ in range(num + 1)]
    p = 2
    while p * p <= num:
        if prime[p]:
            for i in range(p * 2, num + 1, p):
                prime[i] = False
        p += 1
    prime[0] = False
    prime[1] = False
    for p in range(num + 1):
        if prime[p]:
            numbers.append(p)
    return numbers


def make_request(url: str, session: requests.Session | None = None) -> requests.Response:
    """The seed's IO job: a synchronous GET. Raises on an HTTP error status."""
    getter = session.get if session is not None else requests.get
    response = getter(url, timeout=REQUEST_TIMEOUT_S)
    response.raise_for_status()
    return response


async def make_request_async(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """The seed's IO job with asyncio: a GET on a shared ``httpx.AsyncClient``."""
    response = await client.get(url, timeout=REQUEST_TIMEOUT_S)
    response.raise_for_status()
    return response


def cpu_arg(job_index: int) -> int:
    """The sieve size of CPU job ``job_index``: n over range(1000, 1000 + n_jobs)."""
    return CPU_N_START + job_index


def digest_primes(primes: list[int], mode: ResultMode) -> str:
    """The CPU job's output: ``count:last`` (digest) or the JSON list (full)."""
    if mode == "full":
        return json.dumps(primes, separators=(",", ":"))
    return f"primes:{len(primes)}:{primes[-1] if primes else 0}"


def digest_body(status: int, body: bytes, mode: ResultMode) -> str:
    """The IO job's output: ``status:len:blake2b`` (digest) or the body text (full)."""
    if mode == "full":
        return body.decode("utf-8", "replace")
    return f"http:{status}:{len(body)}:{hashlib.blake2b(body, digest_size=8).hexdigest()}"


def run_cpu_job(n: int, mode: ResultMode = "digest") -> str:
    return digest_primes(get_prime_numbers(n), mode)


def run_io_job(
    url: str, mode: ResultMode = "digest", session: requests.Session | None = None
) -> str:
    response = make_request(url, session)
    return digest_body(response.status_code, response.content, mode)


async def run_io_job_async(client: httpx.AsyncClient, url: str, mode: ResultMode = "digest") -> str:
    response = await make_request_async(client, url)
    return digest_body(response.status_code, response.content, mode)
