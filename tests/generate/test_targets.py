"""Target ring-size distributions: moments, window, parameterisation, argument errors."""

import numpy as np
import pytest

from glassfrac.generate.targets import (
    gamma_target,
    lognormal_factor_for_mu2,
    lognormal_target,
    ring_size_target,
)


@pytest.mark.parametrize("mu2", [0.05, 0.2, 0.5, 1.0, 2.0, 3.0])
def test_gamma_target_has_mean_6_and_variance_mu2(mu2):
    t = gamma_target(mu2)
    assert t.sizes.tolist() == list(range(4, 11))
    assert t.p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (t.p >= 0).all()
    assert t.mean == pytest.approx(6.0, abs=1e-9)
    assert t.mu2 == pytest.approx(mu2, rel=1e-9)
    assert t.params["shape"] >= 1.0 and t.params["scale"] > 0


def test_gamma_target_is_unimodal_at_6_and_respects_the_window():
    t = gamma_target(1.0, sizes=(3, 12))
    assert t.sizes[0] == 3 and t.sizes[-1] == 12
    assert int(t.sizes[np.argmax(t.p)]) == 6
    assert t.mu2 == pytest.approx(1.0, rel=1e-9)


def test_gamma_target_refuses_impossible_variances():
    for bad in (0.0, -0.1, 3.5):
        with pytest.raises(ValueError):
            gamma_target(bad)


def test_lognormal_target_is_the_binned_lognormal_of_mean_6003():
    from scipy.stats import lognorm

    t = lognormal_target(1.0)
    sd = 0.9576
    s = np.sqrt(np.log1p((sd / 6.003) ** 2))
    dist = lognorm(s=s, scale=6.003 * np.exp(-0.5 * s**2))
    assert dist.mean() == pytest.approx(6.003) and dist.std() == pytest.approx(sd)
    p = dist.cdf(t.sizes + 0.5) - dist.cdf(t.sizes - 0.5)
    np.testing.assert_allclose(t.p, p / p.sum(), rtol=1e-12)
    assert t.mean == pytest.approx(6.003, abs=0.01)
    # discrete variance ≈ sigma² + 1/12 (binning), a little less from the window
    assert t.mu2 == pytest.approx(sd**2 + 1 / 12, abs=0.02)


def test_lognormal_width_grows_with_the_sigma_factor_and_inverts():
    mu2 = [lognormal_target(f).mu2 for f in (0.6, 1.0, 1.5)]
    assert mu2 == sorted(mu2)
    assert mu2[0] == pytest.approx(0.41, abs=0.01) and mu2[2] == pytest.approx(1.85, abs=0.02)
    f = lognormal_factor_for_mu2(0.8)
    assert lognormal_target(f).mu2 == pytest.approx(0.8, rel=1e-9)


def test_ring_size_target_arguments():
    assert ring_size_target("gamma", mu2=0.3).distribution == "gamma"
    assert ring_size_target("lognormal", sigma_factor=1.0).params["sigma_factor"] == 1.0
    assert ring_size_target("lognormal", mu2=0.5).mu2 == pytest.approx(0.5, rel=1e-9)
    for kwargs in ({"distribution": "gamma"}, {"distribution": "gamma", "mu2": 0.3,
                                                 "sigma_factor": 1.0},
                   {"distribution": "lognormal"},
                   {"distribution": "lognormal", "mu2": 0.3, "sigma_factor": 1.0},
                   {"distribution": "poisson", "mu2": 0.3},
                   {"distribution": "gamma", "mu2": 0.3, "sizes": (6, 10)}):
        with pytest.raises(ValueError):
            ring_size_target(**kwargs)
