"""The seed's job functions: the one implementation every execution model calls.

``make_request`` / ``make_request_async`` are the IO-bound job (an HTTP GET), ``get_prime_numbers``
the CPU-bound one (a pure-Python Sieve of Eratosthenes; the algorithm *is* the workload, so it
stays as the seed wrote it). ``run_job`` adds what a fair comparison needs: every model hands
back the same thing per job, a small digest by default or the full result on request.

An IO job is retried, the same way in every model: a 5xx answer, a timeout or a failed connection
is tried again after an exponential backoff, at most ``REQUEST_TRIES`` times in all, and then the
job fails with ``RequestFailed`` naming the tries and the last error (an ``error`` record: failed
and accounted for, never lost). A 4xx answer or a malformed URL fails at once: trying again cannot
help.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import ssl
import time
from collections.abc import Mapping
from typing import Literal

import httpx
import requests

from shared.settings import SettingsError

#: A row's workload label: the seed's ``io`` and ``cpu``, or a user's ``module:function``
#: (``jobbench bench --job``; ``shared.jobspec`` resolves any of them to the job it runs).
Workload = str
#: The seed's workloads (``--workloads``).
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
#: Timeout of one try of a request (seconds, connect and read each) so a dead or hanging target
#: cannot hang a run. 10 s per try keeps the longest IO job (``IO_JOB_MAX_S``) near 30 s.
REQUEST_TIMEOUT_S = 10.0
#: Environment variable overriding ``REQUEST_TIMEOUT_S`` (seconds, 0 < s <= 3600). The fault suite
#: sets 0.5 s so a hanging target costs half a second per try.
REQUEST_TIMEOUT_ENV = "JOBBENCH_REQUEST_TIMEOUT_S"
#: Largest accepted ``JOBBENCH_REQUEST_TIMEOUT_S`` (s): an hour per try is already no timeout.
MAX_REQUEST_TIMEOUT_S = 3600.0
#: Tries per IO job, the first included, before a retryable failure (5xx, timeout, connection
#: error) is recorded as the job's error.
REQUEST_TRIES = 3
#: Seconds before the first retry; every further retry waits twice as long (0.1 s, then 0.2 s).
#: No jitter: one local target needs no protection from a herd, and a fixed schedule keeps the
#: models comparable.
RETRY_BACKOFF_S = 0.1
#: HTTP statuses from here up are the server's fault and retried; below (4xx) the request's.
RETRY_STATUS_MIN = 500


def retry_delay_s(retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (1 = the second try)."""
    return RETRY_BACKOFF_S * 2.0 ** (retry - 1)


#: The longest an IO job can take with the default timeout (s): every try times out, plus the
#: backoffs between them (~30.3 s). Worker stop grace periods must exceed it.
IO_JOB_MAX_S = REQUEST_TRIES * REQUEST_TIMEOUT_S + sum(
    retry_delay_s(r) for r in range(1, REQUEST_TRIES)
)


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


#: A URL's credentials inside any text (an error message): scheme://user:password@, the
#: password running to the last "@" before whitespace (a raw password may hold "@" or "/").
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):\S*@")


def redact_credentials(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``: requests puts the URL,
    credentials included, into its error messages, and those become job records."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text)


class RequestFailed(Exception):
    """An IO job's request failed for good: on its last try, or at once when trying again
    cannot help (4xx, a malformed URL, a TLS error). Names the tries and the last error,
    with any password in it redacted."""

    def __init__(self, tries: int, last: BaseException) -> None:
        what = redact_credentials(f"{type(last).__name__}: {last}")
        super().__init__(f"{tries} {'try' if tries == 1 else 'tries'}, last: {what}")
        self.tries = tries


def request_timeout_s(env: Mapping[str, str] | None = None) -> float:
    """``JOBBENCH_REQUEST_TIMEOUT_S`` as seconds, else ``REQUEST_TIMEOUT_S``."""
    raw = (os.environ if env is None else env).get(REQUEST_TIMEOUT_ENV, "").strip()
    if not raw:
        return REQUEST_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{REQUEST_TIMEOUT_ENV} must be a number: got {raw!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_REQUEST_TIMEOUT_S):
        raise SettingsError(
            f"{REQUEST_TIMEOUT_ENV} must be > 0 and <= {MAX_REQUEST_TIMEOUT_S:g} s: got {raw!r}"
        )
    return value


def retryable(exc: BaseException) -> bool:
    """Whether trying the request again may help: a 5xx answer, a timeout, a connection that
    failed or broke (not a TLS error: a certificate does not get better by asking again)."""
    if isinstance(exc, requests.HTTPError | httpx.HTTPStatusError):
        response = exc.response
        return response is not None and response.status_code >= RETRY_STATUS_MIN
    if isinstance(exc, requests.exceptions.SSLError) or _caused_by_tls(exc):
        return False
    return isinstance(
        exc,
        requests.ConnectionError
        | requests.Timeout
        | requests.exceptions.ChunkedEncodingError
        | httpx.TimeoutException
        | httpx.NetworkError
        | httpx.RemoteProtocolError,
    )


def _caused_by_tls(exc: BaseException) -> bool:
    """Whether a TLS error is behind ``exc``: httpx reports a failed handshake as a
    ``ConnectError`` (a network error) wrapping the ``ssl.SSLError``, requests as ``SSLError``."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def fetch(url: str, session: requests.Session | None = None) -> tuple[requests.Response, int]:
    """A GET with retries: the response and how many tries it took. ``RequestFailed`` else."""
    getter = session.get if session is not None else requests.get
    timeout_s = request_timeout_s()
    tries = 0
    while True:
        tries += 1
        try:
            response = getter(url, timeout=timeout_s)
            response.raise_for_status()
            return response, tries
        except requests.RequestException as exc:
            if tries >= REQUEST_TRIES or not retryable(exc):
                raise RequestFailed(tries, exc) from exc
        time.sleep(retry_delay_s(tries))


async def fetch_async(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, int]:
    """``fetch`` for asyncio, on a shared ``httpx.AsyncClient``: same tries, same backoff."""
    timeout_s = request_timeout_s()
    tries = 0
    while True:
        tries += 1
        try:
            response = await client.get(url, timeout=timeout_s)
            response.raise_for_status()
            return response, tries
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if tries >= REQUEST_TRIES or not retryable(exc):
                raise RequestFailed(tries, exc) from exc
        await asyncio.sleep(retry_delay_s(tries))


def make_request(url: str, session: requests.Session | None = None) -> requests.Response:
    """The seed's IO job: a synchronous GET (with retries). Raises on an HTTP error status."""
    return fetch(url, session)[0]


async def make_request_async(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """The seed's IO job with asyncio: a GET on a shared ``httpx.AsyncClient`` (with retries)."""
    return (await fetch_async(client, url))[0]


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


def with_tries(output: str, tries: int, mode: ResultMode) -> str:
    """A digest names the tries a request needed when it needed more than one (``:tries=2``);
    a full result is the body alone."""
    return f"{output}:tries={tries}" if mode == "digest" and tries > 1 else output


def run_cpu_job(n: int, mode: ResultMode = "digest") -> str:
    return digest_primes(get_prime_numbers(n), mode)


def run_io_job(
    url: str, mode: ResultMode = "digest", session: requests.Session | None = None
) -> str:
    response, tries = fetch(url, session)
    return with_tries(digest_body(response.status_code, response.content, mode), tries, mode)


async def run_io_job_async(client: httpx.AsyncClient, url: str, mode: ResultMode = "digest") -> str:
    response, tries = await fetch_async(client, url)
    return with_tries(digest_body(response.status_code, response.content, mode), tries, mode)
