"""Estimate: intervals, floor domination, CSV rows, replicate statistics."""

import math

import pytest

from cmtheory.metrics import Estimate, replicate_estimate


def test_replicate_estimate_mean_and_standard_error():
    est = replicate_estimate([1.0, 2.0, 3.0, 4.0], "emd", 400, floor_values=[0.5, 0.7])
    assert est.value == 2.5
    assert est.se == pytest.approx(math.sqrt(5 / 3) / 2)
    assert est.floor == pytest.approx(0.6) and est.floor_se == pytest.approx(0.1)
    assert est.extra["replicates"] == 4


def test_floor_domination_and_interval():
    assert Estimate(1.0, 0.1, 10, "x", floor=0.9, floor_se=0.1).floor_dominated()
    assert not Estimate(2.0, 0.1, 10, "x", floor=0.9, floor_se=0.1).floor_dominated()
    assert not Estimate(2.0, 0.1, 10, "x").floor_dominated()
    assert Estimate(2.0, 0.5, 10, "x").interval(2.0) == (1.0, 3.0)
    assert Estimate(2.0, 0.5, 10, "x", ci=(1.5, 9.0)).interval() == (1.5, 9.0)


def test_as_row_is_flat():
    row = Estimate(2.0, 0.2, 10, "emd", floor=1.0, floor_se=0.1).as_row("w2_")
    assert row["w2_value"] == 2.0 and row["w2_ci_lo"] == pytest.approx(2.0 - 1.96 * 0.2)
    assert row["w2_floor_dominated"] is False and "w2_extra" not in row


def test_needs_two_replicates():
    with pytest.raises(ValueError, match="at least 2 replicates"):
        replicate_estimate([1.0], "emd", 10)
