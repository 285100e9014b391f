"""Target ring-size distributions p_n,t for the bond-switching Monte Carlo.

Two families, both discretised onto the allowed ring sizes (4–10 by default):

- ``gamma`` (FC22): mean 6, variance ``mu2``. The discrete target is gamma-shaped,
  p_n ∝ n^(k−1) exp(−n/θ) on the allowed sizes (the gamma density sampled at integer n, as
  FC22's code does), with the shape k and scale θ solved so that the *discrete* distribution
  has mean exactly 6 and variance exactly ``mu2``. Plain sampling of the continuous gamma with
  k = 36/mu2, θ = mu2/6 misses both (variance −0.06 at mu2 = 0.2, −0.22 at mu2 = 2; mean
  +0.04 at mu2 = 2); the mean must be 6 because a periodic 3-coordinated planar network has
  mean ring size exactly 6 (Euler). Shape k ≥ 1 is required, which bounds mu2 (3.39 on 4–10).
- ``lognormal`` (LISTI25, calibrated on imaged 2D silica): the ring size X is log-normal with
  E[X] = 6.003 and SD[X] = f × 0.9576, i.e. ln X ~ Normal(m, s²) with
  s² = ln(1 + SD²/E²) and m = ln E − s²/2; p_n,t = P(n − ½ ≤ X < n + ½), renormalised over
  the allowed sizes. ``f`` is the sigma factor (f = 1: the measured material). JuMol's
  tabulated targets integrate the same bins but keep the median fixed at its f = 1 value
  (5.933) as f changes; ours keep the mean at 6.003, which a periodic network can reach.
  Discrete variances: 0.41, 1.00, 1.86 for f = 0.6, 1.0, 1.5.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from glassfrac.core.errors import InputError

SILICA_MEAN = 6.003
"""Mean ring size of imaged 2D silica (Büchner et al. 2016; LISTI25)."""
SILICA_SIGMA = 0.9576
"""Standard deviation of the ring size of imaged 2D silica (LISTI25)."""
DEFAULT_SIZES = (4, 10)
"""Allowed ring sizes (inclusive range) of the generators (FC22, LISTI25 codes)."""


@dataclass(frozen=True)
class RingSizeTarget:
    """A target ring-size distribution: ``p[k]`` is the fraction of rings of size ``sizes[k]``."""

    sizes: np.ndarray
    p: np.ndarray
    distribution: str
    params: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.sum(self.p * self.sizes))

    @property
    def mu2(self) -> float:
        """Variance of the discrete target distribution."""
        return float(np.sum(self.p * (self.sizes - self.mean) ** 2))

    def as_dict(self) -> dict[int, float]:
        return {int(n): float(p) for n, p in zip(self.sizes, self.p, strict=True)}


def _size_array(sizes) -> np.ndarray:
    lo, hi = (int(s) for s in sizes)
    if not 3 <= lo < 6 < hi:
        raise InputError(f"allowed ring sizes must satisfy 3 <= min < 6 < max, got {lo}..{hi}")
    return np.arange(lo, hi + 1)


def gamma_target(mu2: float, sizes=DEFAULT_SIZES) -> RingSizeTarget:
    """Gamma-shaped target with discrete mean 6 and variance ``mu2`` (module docstring)."""

    n = _size_array(sizes)
    mu2 = float(mu2)
    max_var = (6 - n[0]) * (n[-1] - 6)  # two-point distribution on the window ends
    if not 0 < mu2 < max_var:
        raise InputError(f"mu2 must be in (0, {max_var}) for ring sizes {n[0]}..{n[-1]}, "
                         f"got {mu2}")
    log_n = np.log(n)

    def pmf(c, beta):  # p_n ∝ n^c exp(-beta n): c = shape - 1, beta = 1/scale
        logp = c * log_n - beta * n
        p = np.exp(logp - logp.max())
        return p / p.sum()

    def beta_for_mean6(c):  # the mean decreases monotonically with beta
        return brentq(lambda beta: np.sum(pmf(c, beta) * n) - 6.0, -1e2, 1e2 + c / 2,
                      xtol=1e-14)

    def variance(c):
        p = pmf(c, beta_for_mean6(c))
        return np.sum(p * (n - 6.0) ** 2)

    c_lo, c_hi = 0.0, 1e5  # shape >= 1; the variance decreases monotonically with c
    if not variance(c_hi) < mu2 < variance(c_lo):
        raise InputError(f"no gamma-shaped distribution on ring sizes {n[0]}..{n[-1]} has "
                         f"mean 6 and variance {mu2} (possible: {variance(c_hi):.3g} to "
                         f"{variance(c_lo):.3g})")
    c = brentq(lambda c: variance(c) - mu2, c_lo, c_hi, xtol=1e-12, rtol=1e-14)
    beta = beta_for_mean6(c)
    return RingSizeTarget(n, pmf(c, beta), "gamma",
                          {"mu2": mu2, "shape": float(c + 1), "scale": float(1 / beta)})


def lognormal_target(sigma_factor: float, sizes=DEFAULT_SIZES, mean: float = SILICA_MEAN,
                     sigma: float = SILICA_SIGMA) -> RingSizeTarget:
    """Log-normal target of mean ``mean`` and SD ``sigma_factor × sigma`` (module docstring)."""

    n = _size_array(sizes)
    f = float(sigma_factor)
    if not 0 < f <= 5:
        raise InputError(f"sigma factor must be in (0, 5], got {sigma_factor}")
    sd = f * sigma
    s = np.sqrt(np.log1p((sd / mean) ** 2))
    m = np.log(mean) - 0.5 * s**2
    p = np.diff(norm.cdf((np.log(np.append(n - 0.5, n[-1] + 0.5)) - m) / s))
    if p.sum() <= 0:
        raise InputError(f"log-normal target has no weight on sizes {n[0]}..{n[-1]}")
    return RingSizeTarget(n, p / p.sum(), "lognormal",
                          {"sigma_factor": f, "mean": mean, "sigma": sd,
                           "log_mean": float(m), "log_sigma": float(s)})


def lognormal_factor_for_mu2(mu2: float, sizes=DEFAULT_SIZES) -> float:
    """The sigma factor whose discretised log-normal target has variance ``mu2``."""

    lo, hi = 1e-3, 5.0
    v_lo, v_hi = lognormal_target(lo, sizes).mu2, lognormal_target(hi, sizes).mu2
    if not v_lo < mu2 < v_hi:
        raise InputError(f"mu2 = {mu2} is outside the range {v_lo:.3g}..{v_hi:.3g} that "
                         f"log-normal targets on these ring sizes can have")
    return float(brentq(lambda f: lognormal_target(f, sizes).mu2 - mu2, lo, hi, xtol=1e-12))


def ring_size_target(distribution: str = "gamma", mu2: float | None = None,
                     sigma_factor: float | None = None, sizes=DEFAULT_SIZES) -> RingSizeTarget:
    """Target from the command-line choices: ``gamma`` needs ``mu2``; ``lognormal`` takes
    ``sigma_factor`` or, instead, the ``mu2`` its discrete target should have."""
    if distribution == "gamma":
        if sigma_factor is not None:
            raise InputError("--sigma-factor applies to the lognormal distribution only")
        if mu2 is None:
            raise InputError("the gamma distribution needs a target variance mu2")
        return gamma_target(mu2, sizes)
    if distribution == "lognormal":
        if (mu2 is None) == (sigma_factor is None):
            raise InputError("the lognormal distribution needs exactly one of mu2 and "
                             "sigma factor")
        if sigma_factor is None:
            sigma_factor = lognormal_factor_for_mu2(mu2, sizes)
        return lognormal_target(sigma_factor, sizes)
    raise InputError(f"unknown distribution {distribution!r}; use 'gamma' or 'lognormal'")
