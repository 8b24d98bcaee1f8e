"""Deciding a claim's check across training seeds, with a confidence interval rather than one run.

A claim such as "model A's accuracy > model B's" is checked on each side's values over several
training seeds. One run per side cannot tell a real gap from seed noise, so the check is decided
on a t confidence interval of the difference left - right (- plus):

- the same seeds on both sides: a paired t interval over the per-seed differences (pairing
  removes what a seed shares across models, e.g. the data split);
- different seeds: Welch's t interval (no equal-variance assumption);
- a fixed number on the right (a chance level, a paper's figure): a one-sample t interval.

The claim holds when the whole interval lies on its side, fails when the whole interval lies on
the other side, and is inconclusive otherwise (or with too few seeds to have an interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"
OPS = ("<", "<=", ">", ">=")


def _json_number(value: float | None) -> float | None:
    """JSON has no NaN: a missing or non-finite number is written as null."""
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True)
class Sample:
    """One side of a check: a metric's value per training seed (values in the order of seeds)."""

    seeds: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.seeds) != len(self.values):
            raise ValueError(f"{len(self.seeds)} seeds but {len(self.values)} values")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"repeated seeds in {self.seeds}: values are paired by seed")

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.n else math.nan

    @property
    def sd(self) -> float:
        """Sample standard deviation (ddof=1): NaN below 2 seeds, which show no spread."""
        return float(np.std(self.values, ddof=1)) if self.n >= 2 else math.nan

    def as_json(self) -> dict:
        return {
            "seeds": list(self.seeds),
            "values": list(self.values),
            "n": self.n,
            "mean": _json_number(self.mean),
            "sd": _json_number(self.sd),
        }


@dataclass(frozen=True)
class Interval:
    """The difference left - right (- plus) and its confidence interval (None where there is none).

    n is the number of pairs (paired), of seeds (one-sample) or the smaller side's seeds (Welch).
    """

    mean: float | None
    low: float | None
    high: float | None
    level: float
    method: str
    n: int

    def as_json(self) -> dict:
        return {
            "mean": _json_number(self.mean),
            "low": _json_number(self.low),
            "high": _json_number(self.high),
            "level": self.level,
            "method": self.method,
            "n": self.n,
        }


def sample(pairs: dict[int, float]) -> Sample:
    """A Sample from {seed: value}, sorted by seed; non-finite values (failed runs) are dropped."""
    kept = sorted(
        (int(seed), float(value))
        for seed, value in pairs.items()
        if value is not None and math.isfinite(value)
    )
    return Sample(tuple(seed for seed, _ in kept), tuple(value for _, value in kept))


def _t_interval(
    mean: float, se: float, df: float, level: float, method: str, n: int
) -> Interval:
    """mean ± t·se. With no spread at all (se 0) the interval is the exact point [mean, mean]."""
    if se == 0:
        return Interval(mean, mean, mean, level, f"{method}; no spread", n)
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    return Interval(mean, mean - half, mean + half, level, method, n)


def _no_interval(mean: float | None, level: float, method: str, n: int) -> Interval:
    return Interval(mean, None, None, level, method, n)


def difference(
    left: Sample, right: Sample | float, plus: float = 0.0, level: float = LEVEL
) -> Interval:
    """Confidence interval of left - right - plus, the claim `left op right + plus` moved to 0."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if not math.isfinite(plus):
        raise ValueError(f"plus must be finite, got {plus}")

    if not isinstance(right, Sample):
        target = float(right) + plus
        if not math.isfinite(target):
            raise ValueError(f"the fixed value must be finite, got {right}")
        if left.n == 0:
            return _no_interval(None, level, "none: no values", 0)
        d = np.asarray(left.values) - target
        mean = float(d.mean())
        if left.n < 2:
            return _no_interval(mean, level, "none: 1 seed", 1)
        se = float(d.std(ddof=1)) / math.sqrt(left.n)
        method = f"one-sample t over {left.n} seeds against a fixed value"
        return _t_interval(mean, se, left.n - 1, level, method, left.n)

    if left.n == 0 or right.n == 0:
        return _no_interval(None, level, "none: no values", 0)

    if set(left.seeds) == set(right.seeds):
        by_seed = dict(zip(right.seeds, right.values))
        d = np.array([v - by_seed[s] - plus for s, v in zip(left.seeds, left.values)])
        mean = float(d.mean())
        if len(d) < 2:
            return _no_interval(mean, level, "none: 1 seed per side", 1)
        se = float(d.std(ddof=1)) / math.sqrt(len(d))
        method = f"paired t over {len(d)} shared seeds"
        return _t_interval(mean, se, len(d) - 1, level, method, len(d))

    mean = left.mean - right.mean - plus
    n = min(left.n, right.n)
    if n < 2:
        return _no_interval(mean, level, f"none: {left.n} vs {right.n} seeds", n)
    # Welch–Satterthwaite: the variance of each mean estimate, and the df of their sum.
    vl, vr = left.sd**2 / left.n, right.sd**2 / right.n
    se = math.sqrt(vl + vr)
    df = (vl + vr) ** 2 / (vl**2 / (left.n - 1) + vr**2 / (right.n - 1)) if se else math.inf
    method = f"Welch t ({left.n} vs {right.n} seeds)"
    return _t_interval(mean, se, df, level, method, n)


def decide(op: str, interval: Interval, tolerance: float = 0.0) -> str:
    """HELD when the whole interval lies on the claim's side of 0, NOT_HELD when it lies wholly
    on the other side, INCONCLUSIVE when it straddles 0 or there is no interval.

    `tolerance` is a non-inferiority margin for ">=" / "<=", for metrics at a ceiling (accuracy
    near 1) where "not worse by more than tolerance" is the claim one can check: ">=" then holds
    when low >= -tolerance and fails when high < -tolerance ("<=" mirrored).
    """
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}: expected one of {OPS}")
    if not tolerance >= 0:  # also rejects NaN
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if tolerance and op in ("<", ">"):
        raise ValueError(f"a tolerance is a non-inferiority margin: use '{op}=' rather than {op!r}")
    low, high = interval.low, interval.high
    if low is None or high is None:
        return INCONCLUSIVE

    if op == ">":
        held, not_held = low > 0, high <= 0
    elif op == ">=":
        held, not_held = low >= -tolerance, high < -tolerance
    elif op == "<":
        held, not_held = high < 0, low >= 0
    else:
        held, not_held = high <= tolerance, low > tolerance
    return HELD if held else NOT_HELD if not_held else INCONCLUSIVE
