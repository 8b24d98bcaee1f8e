"""Known-answer tests for deciding a claim across training seeds (aebench.report.statistics)."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from aebench.report.statistics import (
    HELD,
    INCONCLUSIVE,
    LEVEL,
    NOT_HELD,
    Interval,
    Sample,
    decide,
    difference,
    sample,
)

T_2_975 = 4.302652729911275  # t quantile, 2 df, 0.975


def interval(low, high, mean=None):
    mean = (low + high) / 2 if mean is None and low is not None else mean
    return Interval(mean, low, high, LEVEL, "test", 3)


# --- Sample -----------------------------------------------------------------------------------


def test_sample_sorts_by_seed_and_drops_non_finite():
    s = sample({3: 0.3, 1: 0.1, 2: math.nan, 4: math.inf, 5: None, 0: 0.0})
    assert s.seeds == (0, 1, 3)
    assert s.values == (0.0, 0.1, 0.3)
    assert s.n == 3
    assert s.mean == pytest.approx(0.4 / 3)
    assert s.sd == pytest.approx(stats.tstd([0.0, 0.1, 0.3]))


def test_sample_statistics_on_few_values():
    empty, one = sample({}), sample({7: 2.5})
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.sd)
    assert one.mean == 2.5 and math.isnan(one.sd)
    assert one.as_json() == {"seeds": [7], "values": [2.5], "n": 1, "mean": 2.5, "sd": None}
    assert empty.as_json()["mean"] is None
    json.dumps(empty.as_json(), allow_nan=False)


def test_sample_rejects_mismatched_or_repeated_seeds():
    with pytest.raises(ValueError):
        Sample((1, 2), (0.5,))
    with pytest.raises(ValueError):
        Sample((1, 1), (0.5, 0.6))


# --- difference -------------------------------------------------------------------------------


def test_paired_interval_by_hand():
    left = sample({0: 11.0, 1: 12.0, 2: 13.0})
    right = sample({0: 10.0, 1: 10.0, 2: 10.0})  # differences [1, 2, 3]: mean 2, sd 1
    got = difference(left, right)
    half = T_2_975 / math.sqrt(3)
    assert got.mean == pytest.approx(2.0)
    assert got.low == pytest.approx(2.0 - half)
    assert got.high == pytest.approx(2.0 + half)
    assert got.n == 3 and got.level == LEVEL
    assert got.method == "paired t over 3 shared seeds"


def test_paired_interval_matches_scipy_and_folds_plus():
    a, b = [0.81, 0.84, 0.79, 0.86], [0.80, 0.80, 0.78, 0.83]
    ci = stats.ttest_rel(a, b).confidence_interval(confidence_level=0.9)
    got = difference(sample(dict(enumerate(a))), sample(dict(enumerate(b))), plus=0.01, level=0.9)
    assert got.low == pytest.approx(ci.low - 0.01)
    assert got.high == pytest.approx(ci.high - 0.01)
    assert got.level == 0.9


def test_pairing_is_by_seed_not_by_position():
    left = Sample((2, 0, 1), (13.0, 11.0, 12.0))
    right = Sample((1, 2, 0), (10.0, 10.0, 10.0))
    shuffled = difference(left, right)
    ordered = difference(sample({0: 11.0, 1: 12.0, 2: 13.0}), sample({0: 10.0, 1: 10.0, 2: 10.0}))
    assert shuffled == ordered
    # Paired differences are constant here; by position they would not be.
    left = Sample((0, 1, 2), (1.0, 2.0, 3.0))
    right = Sample((2, 1, 0), (3.5, 2.5, 1.5))
    got = difference(left, right)
    assert (got.mean, got.low, got.high) == pytest.approx((-0.5, -0.5, -0.5))


def test_zero_variance_paired_differences_give_exact_point():
    got = difference(sample({0: 1.0, 1: 2.0, 2: 3.0}), sample({0: 0.5, 1: 1.5, 2: 2.5}))
    assert (got.mean, got.low, got.high) == (0.5, 0.5, 0.5)
    assert got.method.startswith("paired t over 3 shared seeds")
    assert decide(">", got) == HELD
    assert decide("<=", got) == NOT_HELD


def test_welch_matches_scipy():
    a = {0: 0.91, 1: 0.93, 2: 0.90}
    b = {3: 0.85, 4: 0.88, 5: 0.84, 6: 0.89, 7: 0.86}
    ci = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).confidence_interval()
    got = difference(sample(a), sample(b))
    assert got.low == pytest.approx(ci.low)
    assert got.high == pytest.approx(ci.high)
    assert got.mean == pytest.approx(sum(a.values()) / 3 - sum(b.values()) / 5)
    assert got.n == 3
    assert got.method == "Welch t (3 vs 5 seeds)"


def test_welch_with_partly_shared_seeds_and_plus():
    a, b = {0: 1.0, 1: 1.4, 2: 1.1}, {1: 0.2, 2: 0.5, 3: 0.1}
    ci = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).confidence_interval()
    got = difference(sample(a), sample(b), plus=0.5)
    assert got.method.startswith("Welch")
    assert (got.low, got.high) == pytest.approx((ci.low - 0.5, ci.high - 0.5))


def test_welch_edge_spreads():
    # One side without spread: df falls back to the other side's n - 1.
    a, b = [2.0, 2.0, 2.0], [1.0, 1.5, 0.7, 1.2]
    mean, half = 2.0 - 1.1, stats.t.ppf(0.975, 3) * stats.tstd(b) / 2
    got = difference(sample(dict(enumerate(a))), sample({i + 10: v for i, v in enumerate(b)}))
    assert (got.mean, got.low, got.high) == pytest.approx((mean, mean - half, mean + half))
    # Neither side has spread: the exact point.
    got = difference(sample({0: 2.0, 1: 2.0}), sample({5: 1.0, 6: 1.0, 7: 1.0}))
    assert (got.mean, got.low, got.high) == (1.0, 1.0, 1.0)


def test_one_sample_against_fixed_value_matches_scipy():
    values = [0.62, 0.58, 0.66, 0.60]
    chance, plus = 0.5, 0.05
    ci = stats.ttest_1samp(values, chance + plus).confidence_interval()  # CI of the mean itself
    got = difference(sample(dict(enumerate(values))), chance, plus=plus)
    assert got.low == pytest.approx(ci.low - chance - plus)
    assert got.high == pytest.approx(ci.high - chance - plus)
    assert got.mean == pytest.approx(sum(values) / 4 - 0.55)
    assert got.n == 4
    assert got.method == "one-sample t over 4 seeds against a fixed value"
    # No spread: the exact point.
    got = difference(sample({0: 0.7, 1: 0.7}), 0.5)
    assert (got.low, got.high) == pytest.approx((0.2, 0.2))


@pytest.mark.parametrize(
    "left, right, mean, method, n",
    [
        ({}, {0: 1.0, 1: 2.0}, None, "none: no values", 0),
        ({0: 1.0, 1: 2.0}, {}, None, "none: no values", 0),
        ({0: math.nan}, 0.5, None, "none: no values", 0),
        ({0: 3.0}, {0: 1.0}, 2.0, "none: 1 seed per side", 1),
        ({0: 3.0}, {1: 1.0, 2: 2.0}, 1.5, "none: 1 vs 2 seeds", 1),
        ({0: 3.0}, 0.5, 2.5, "none: 1 seed", 1),
    ],
)
def test_too_few_seeds_give_no_interval(left, right, mean, method, n):
    right = right if isinstance(right, float) else sample(right)
    got = difference(sample(left), right)
    assert got.low is None and got.high is None
    assert got.mean == mean and got.method == method and got.n == n
    assert decide(">", got) == INCONCLUSIVE
    assert decide("<=", got, tolerance=0.1) == INCONCLUSIVE
    assert json.loads(json.dumps(got.as_json(), allow_nan=False))["low"] is None


def test_difference_rejects_bad_arguments():
    s = sample({0: 1.0, 1: 2.0})
    with pytest.raises(ValueError):
        difference(s, s, level=1.0)
    with pytest.raises(ValueError):
        difference(s, math.nan)
    with pytest.raises(ValueError):
        difference(s, s, plus=math.inf)


def test_interval_as_json():
    got = difference(sample({0: 11.0, 1: 12.0, 2: 13.0}), 10.0)
    data = got.as_json()
    assert data == {
        "mean": pytest.approx(2.0),
        "low": pytest.approx(got.low),
        "high": pytest.approx(got.high),
        "level": LEVEL,
        "method": "one-sample t over 3 seeds against a fixed value",
        "n": 3,
    }
    json.dumps(data, allow_nan=False)


# --- decide -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, low, high, expected",
    [
        (">", 0.1, 0.5, HELD),
        (">", 0.0, 0.5, INCONCLUSIVE),
        (">", -0.1, 0.5, INCONCLUSIVE),
        (">", -0.5, 0.0, NOT_HELD),
        (">", -0.5, -0.1, NOT_HELD),
        (">=", 0.0, 0.5, HELD),
        (">=", -0.1, 0.5, INCONCLUSIVE),
        (">=", -0.5, 0.0, INCONCLUSIVE),
        (">=", -0.5, -0.1, NOT_HELD),
        ("<", -0.5, -0.1, HELD),
        ("<", -0.5, 0.0, INCONCLUSIVE),
        ("<", 0.0, 0.5, NOT_HELD),
        ("<", 0.1, 0.5, NOT_HELD),
        ("<=", -0.5, 0.0, HELD),
        ("<=", -0.5, 0.1, INCONCLUSIVE),
        ("<=", 0.0, 0.5, INCONCLUSIVE),
        ("<=", 0.1, 0.5, NOT_HELD),
    ],
)
def test_decide_each_op(op, low, high, expected):
    assert decide(op, interval(low, high)) == expected


def test_decide_point_interval_at_zero():
    at_zero = interval(0.0, 0.0)
    assert decide(">", at_zero) == NOT_HELD
    assert decide(">=", at_zero) == HELD
    assert decide("<", at_zero) == NOT_HELD
    assert decide("<=", at_zero) == HELD


def test_non_inferiority_at_a_ceiling():
    left = sample({0: 0.99990, 1: 0.99992, 2: 0.99989})
    right = sample({0: 0.99997, 1: 0.99996, 2: 0.99998})
    got = difference(left, right)
    assert got.method == "paired t over 3 shared seeds"
    assert got.high < 0  # left is a little worse on every seed
    assert decide(">=", got, tolerance=0.001) == HELD
    assert decide(">=", got) == NOT_HELD
    # The same claim written the other way round.
    flipped = difference(right, left)
    assert decide("<=", flipped, tolerance=0.001) == HELD
    assert decide("<=", flipped) == NOT_HELD


def test_tolerance_mirrored_for_at_most():
    assert decide("<=", interval(0.05, 0.08), tolerance=0.1) == HELD
    assert decide("<=", interval(0.05, 0.15), tolerance=0.1) == INCONCLUSIVE
    assert decide("<=", interval(0.12, 0.15), tolerance=0.1) == NOT_HELD
    assert decide(">=", interval(-0.08, -0.05), tolerance=0.1) == HELD
    assert decide(">=", interval(-0.15, -0.05), tolerance=0.1) == INCONCLUSIVE
    assert decide(">=", interval(-0.15, -0.12), tolerance=0.1) == NOT_HELD


def test_decide_rejects_bad_arguments():
    iv = interval(0.1, 0.2)
    for op in ("<", ">"):
        with pytest.raises(ValueError):
            decide(op, iv, tolerance=0.01)
        assert decide(op, iv, tolerance=0.0) in (HELD, NOT_HELD)
    with pytest.raises(ValueError):
        decide(">=", iv, tolerance=-0.01)
    with pytest.raises(ValueError):
        decide(">=", iv, tolerance=math.nan)
    with pytest.raises(ValueError):
        decide("==", iv)
