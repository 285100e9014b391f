"""AQS driver: bisected event strains agree with a fixed-tiny-step run on the same sample."""

import dataclasses

import numpy as np
import pytest

from glassfrac.generate import generate
from glassfrac.mechanics.protocols import TENSION_DEFAULTS, tension_test
from glassfrac.potentials import get_potential


@pytest.fixture(scope="module")
def runs():
    sample = generate((4, 4), mu2=0.3, kind="bilayer", seed=1)  # 192 atoms
    potential = get_potential("watanabe")
    out = {}
    for name, step in (("bisected", 0.02), ("fixed", 1e-3)):
        settings = dataclasses.replace(TENSION_DEFAULTS, step=step, precision=1e-3, fmax=1e-6,
                                       max_strain=0.126, fracture_fraction=-np.inf)
        out[name] = tension_test(sample, potential, settings)
    return out


def test_bisected_rupture_strain_agrees_with_fixed_steps(runs):
    bisected, fixed = runs["bisected"][1], runs["fixed"][1]
    assert fixed["rupture_strain"] is not None
    # both bracket the same first bond break to the requested precision
    assert abs(bisected["rupture_strain"] - fixed["rupture_strain"]) <= 1e-3 + 1e-12
    # the same bonds break in the first break event
    assert sorted(bisected["rupture_bonds"]) == sorted(fixed["rupture_bonds"])


def test_every_event_of_the_fixed_run_is_found_by_bisection(runs):
    bisected = [e.strain for e in runs["bisected"][0].events]
    fixed = [e.strain for e in runs["fixed"][0].events]
    assert len(bisected) == len(fixed)
    assert np.allclose(bisected, fixed, atol=1e-3 + 1e-12)


def test_small_strain_modulus_and_curve_are_the_same(runs):
    a, b = runs["bisected"][1], runs["fixed"][1]
    assert a["modulus"] == pytest.approx(b["modulus"], rel=1e-3)
    assert 60 < a["modulus"] < 200  # N/m, a silica bilayer (FC22: ≈ 124–146)
    assert a["stress_unit"] == "N/m"
