"""One result type for every estimator: a number with its uncertainty and noise floor."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["Estimate", "replicate_estimate"]


@dataclass(frozen=True)
class Estimate:
    """A measured quantity.

    Attributes
    ----------
    value : float
        The estimate.
    se : float
        Its standard error (0 for exact closed forms; for grid computations, the measured
        grid error; NaN where unknown).
    n : int
        Samples (or replicates, or grid cells) behind it.
    method : str
        Estimator name, e.g. ``"emd"``, ``"bures"``, ``"grid"``.
    floor : float or None
        For sample-based estimators: the same estimator between two independent samples of
        the reference of the same size (what the estimator reports for zero true distance).
    floor_se : float or None
        Standard error of ``floor``.
    ci : tuple (lo, hi) or None
        A confidence interval where one is computed directly (e.g. bounds, bootstrap).
    extra : dict
        Method-specific details (batch size, regularisation, bounds, ...).
    """

    value: float
    se: float
    n: int
    method: str
    floor: float | None = None
    floor_se: float | None = None
    ci: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict)

    def interval(self, z: float = 1.96) -> tuple[float, float]:
        """The CI if given, else value +- z se."""
        if self.ci is not None:
            return self.ci
        return (self.value - z * self.se, self.value + z * self.se)

    def floor_dominated(self, z: float = 2.0) -> bool:
        """True when the value is within z combined standard errors of the noise floor
        (the estimate cannot be told apart from the estimator's value at zero distance)."""
        if self.floor is None:
            return False
        spread = math.sqrt(self.se**2 + (self.floor_se or 0.0) ** 2)
        return self.value - self.floor <= z * spread

    def as_row(self, prefix: str = "") -> dict:
        """Flat dict for tidy CSV rows."""
        row = {k: v for k, v in asdict(self).items() if k not in ("extra", "ci")}
        lo, hi = self.interval()
        row.update(ci_lo=lo, ci_hi=hi, floor_dominated=self.floor_dominated())
        return {prefix + k: v for k, v in row.items()}


def replicate_estimate(values, method: str, n: int, floor_values=None, **extra) -> Estimate:
    """Mean and standard error over independent replicates (and the same for the floor)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        raise ValueError("need at least 2 replicates for a standard error")
    se = float(v.std(ddof=1) / math.sqrt(v.size))
    floor = floor_se = None
    if floor_values is not None:
        f = np.asarray(floor_values, dtype=np.float64)
        floor, floor_se = float(f.mean()), float(f.std(ddof=1) / math.sqrt(f.size))
    return Estimate(float(v.mean()), se, n, method, floor, floor_se, extra=dict(extra, replicates=int(v.size)))
