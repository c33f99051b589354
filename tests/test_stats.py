"""Units for the statistics of repeated measurements."""

from __future__ import annotations

import pytest

from producer.schedule import (
    chunk_ranges,
    contiguous_ranges,
    factoring_ranges,
    pool_map_chunksize,
)
from producer.stats import (
    Interval,
    imbalance,
    judge,
    median_ci,
    percentiles,
    quantile,
    ratio_ci,
    repeats_to_decide,
    settled,
    summarize,
)


def test_summary_keeps_raw_values_in_measured_order() -> None:
    s = summarize([3.0, 1.0, 2.0])
    assert s["values"] == [3.0, 1.0, 2.0]
    assert (s["median"], s["min"], s["max"]) == (2.0, 1.0, 3.0)


def test_spread_above_ten_percent_is_flagged() -> None:
    assert summarize([1.0, 1.0, 1.5])["noisy"]
    assert not summarize([1.0, 1.01, 1.02])["noisy"]
    assert not summarize([1.0])["noisy"]


def test_iqr_and_quantiles() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s["q1"] == 2.0 and s["q3"] == 4.0 and s["iqr"] == 2.0
    assert quantile([0.0, 10.0], 0.95) == pytest.approx(9.5)


def test_percentiles() -> None:
    p = percentiles([float(i) for i in range(101)])
    assert p == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert percentiles([]) == {}


# --- intervals, verdicts, imbalance, schedules ------------------------------------------------


def test_median_ci_contains_the_median_and_is_reproducible() -> None:
    values = [1.00, 1.02, 0.98, 1.01, 1.03, 0.99, 1.00]
    ci = median_ci(values)
    assert ci.low is not None and ci.high is not None
    assert ci.low <= ci.point <= ci.high
    assert ci.point == 1.00 and ci.n == 7
    assert median_ci(values) == ci  # seeded
    assert ci.rel_half_width is not None and ci.rel_half_width < 0.03


def test_too_few_repeats_have_no_interval_and_stay_undecided() -> None:
    ci = median_ci([1.0, 2.0])
    assert (ci.low, ci.high) == (None, None)
    assert judge(ratio_ci([1.0, 1.0], [1.0, 1.0]), 1.1) == "undecided"
    assert repeats_to_decide(ci, 1.1) == 3


def test_paired_ratio_cancels_a_shared_slow_spell() -> None:
    # Both models slowed by the same factor in repeats 3 and 4: the paired ratio stays tight.
    den = [1.0, 1.0, 1.5, 1.5, 1.0]
    num = [d * 1.2 for d in den]
    ci = ratio_ci(num, den)
    assert ci.point == pytest.approx(1.2)
    assert ci.low == pytest.approx(1.2) and ci.high == pytest.approx(1.2)


def test_verdicts_met_missed_undecided() -> None:
    assert judge(Interval(1.0, 0.95, 1.05, 5), 1.10) == "met"
    assert judge(Interval(1.3, 1.2, 1.4, 5), 1.10) == "missed"
    assert judge(Interval(1.08, 1.0, 1.16, 5), 1.10) == "undecided"
    assert judge(Interval(float("nan"), None, None, 1), 1.10) == "undecided"


def test_repeats_to_decide_grows_as_the_point_nears_the_limit() -> None:
    far = repeats_to_decide(Interval(1.00, 0.90, 1.15, 5), 1.10)
    near = repeats_to_decide(Interval(1.08, 1.00, 1.16, 5), 1.10)
    assert far is not None and near is not None and near > far > 5
    assert repeats_to_decide(Interval(1.0, 0.95, 1.05, 5), 1.10) == 5  # decided already
    assert repeats_to_decide(Interval(1.10, 1.0, 1.2, 5), 1.10) is None  # on the limit


def test_imbalance_names_the_tail() -> None:
    s = 1_000_000_000
    lanes = {"h:1": [(0, 2 * s), (2 * s, 5 * s)], "h:2": [(0, 3 * s), (3 * s, 8 * s)]}
    out = imbalance(lanes)
    assert out["lanes"] == 2
    assert out["tail_s"] == pytest.approx(3.0)  # h:1 idle at 5 s, the end at 8 s
    assert out["tail_share"] == pytest.approx(3 / 8)
    assert out["busy_s"] == {"h:1": 5.0, "h:2": 8.0}
    assert imbalance({"h:1": [(0, s)]})["tail_s"] == 0.0
    assert imbalance({})["lanes"] == 0


def test_pool_map_rule_and_contiguous_ranges() -> None:
    assert pool_map_chunksize(15_000, 2) == 1875
    assert pool_map_chunksize(3, 2) == 1
    assert [len(r) for r in contiguous_ranges(10, 4)] == [4, 4, 2]
    with pytest.raises(ValueError):
        contiguous_ranges(10, 0)


@pytest.mark.parametrize("n_jobs,workers", [(0, 2), (1, 2), (7, 3), (15_000, 2), (100, 8)])
def test_factoring_covers_every_job_once_in_order(n_jobs: int, workers: int) -> None:
    ranges = factoring_ranges(n_jobs, workers)
    assert [i for r in ranges for i in r] == list(range(n_jobs))
    sizes = [len(r) for r in ranges]
    assert sizes == sorted(sizes, reverse=True)  # large first, small last


def test_factoring_balances_rising_costs_better_than_pool_map() -> None:
    # Cost rising with the index, as the seed sieve's; greedy assignment of chunks in order to the
    # first free worker, as a pool does.
    def finish(ranges: list[range], workers: int) -> tuple[float, float]:
        free = [0.0] * workers
        for r in ranges:
            w = free.index(min(free))
            free[w] += sum(1000 + i for i in r)
        return max(free), min(free)

    n, w = 15_000, 2
    default_end, default_idle = finish(chunk_ranges("default", n, w), w)
    fact_end, fact_idle = finish(chunk_ranges("factoring", n, w), w)
    assert (default_end - default_idle) / default_end > 0.05
    assert (fact_end - fact_idle) / fact_end < 0.01
    assert fact_end < default_end


def test_settled_stops_a_steady_model_early_and_a_noisy_one_at_the_cap() -> None:
    steady = [16.40, 16.41, 16.39]
    assert not settled(steady[:2])  # no interval yet
    assert settled(steady)
    noisy = [6.4, 9.1, 7.0, 8.8, 6.6]
    assert not settled(noisy)
    assert settled(noisy * 2)  # 10 repeats: the cap
    assert settled([1.0], max_repeats=1)
