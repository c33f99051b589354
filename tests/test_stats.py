"""Units for the statistics of repeated measurements."""

from __future__ import annotations

import pytest

from producer.stats import percentiles, quantile, summarize


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
