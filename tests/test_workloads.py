"""Units for the seed workloads and what a job hands back."""

from __future__ import annotations

import pytest

from shared.workloads import (
    CPU_N_START,
    cpu_arg,
    digest_body,
    digest_primes,
    get_prime_numbers,
    run_cpu_job,
)


def reference_primes(n: int) -> list[int]:
    return [k for k in range(2, n + 1) if all(k % d for d in range(2, int(k**0.5) + 1))]


def test_sieve_counts_the_primes_below_ten_thousand() -> None:
    primes = get_prime_numbers(10_000)
    assert len(primes) == 1229
    assert primes[:5] == [2, 3, 5, 7, 11]
    assert primes[-1] == 9973


@pytest.mark.parametrize("n", [1, 2, 3, 4, 97, 100, 1000, 1013])
def test_sieve_matches_trial_division(n: int) -> None:
    assert get_prime_numbers(n) == reference_primes(n)


def test_cpu_jobs_cover_the_seed_range() -> None:
    assert cpu_arg(0) == CPU_N_START == 1000
    assert cpu_arg(14_999) == 15_999


def test_digest_is_small_and_full_is_the_whole_result() -> None:
    primes = get_prime_numbers(1000)
    assert digest_primes(primes, "digest") == "primes:168:997"
    assert digest_primes(primes, "full").startswith("[2,3,5,7,")
    assert run_cpu_job(1000) == "primes:168:997"


def test_body_digest_depends_on_the_content() -> None:
    a = digest_body(200, b'{"origin": "127.0.0.1"}', "digest")
    b = digest_body(200, b'{"origin": "127.0.0.2"}', "digest")
    assert a.startswith("http:200:23:") and a != b
    assert digest_body(200, b"abc", "full") == "abc"
