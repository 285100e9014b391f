"""AQS driver: bisected event strains agree with a fixed-tiny-step run on the same sample."""

import dataclasses

import numpy as np
import pytest

from glassfrac.analysis.nonaffine import d2min
from glassfrac.generate import generate
from glassfrac.labels import shear_labels, tension_labels
from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, TENSION_DEFAULTS, shear_test, tension_test
from glassfrac.mechanics.relax import relax
from glassfrac.potentials import get_potential


@pytest.fixture(scope="module")
def runs():
    # 80 atoms; a small Watanabe bilayer breaks no bond below strain 0.3 on the branch-following rule
    sample = generate((4, 4), mu2=0.3, kind="monolayer", seed=1)
    potential = get_potential("yukawa2d")
    out = {}
    for name, step in (("bisected", 0.02), ("fixed", 1e-3)):
        # the bisected run keeps no snapshots: its labels must still find the broken bonds
        settings = dataclasses.replace(TENSION_DEFAULTS, step=step, precision=1e-3, fmax=1e-6,
                                       max_strain=0.07, fracture_fraction=-np.inf, snapshots=name == "fixed")
        result = tension_test(sample, potential, settings)
        out[name] = result, tension_labels(result)
    return out


def test_bisected_rupture_strain_agrees_with_fixed_steps(runs):
    bisected, fixed = runs["bisected"][1], runs["fixed"][1]
    assert fixed.rupture_strain is not None
    # both bracket the same first bond break to the requested precision
    assert abs(bisected.rupture_strain - fixed.rupture_strain) <= 1e-3 + 1e-12
    # the same bonds break in the first break event
    assert sorted(bisected.rupture_bonds.tolist()) == sorted(fixed.rupture_bonds.tolist())


def test_every_event_of_the_fixed_run_is_found_by_bisection(runs):
    bisected = [e.strain for e in runs["bisected"][0].events]
    fixed = [e.strain for e in runs["fixed"][0].events]
    assert len(bisected) == len(fixed)
    assert np.allclose(bisected, fixed, atol=1e-3 + 1e-12)


def test_small_strain_modulus_and_curve_are_the_same(runs):
    a, b = runs["bisected"][1], runs["fixed"][1]
    assert a.modulus == pytest.approx(b.modulus, rel=1e-3)
    assert a.modulus > 0
    assert a.stress_unit == "N/m"


def test_shear_event_is_found_and_located_in_its_region_of_large_d2min():
    yukawa = get_potential("yukawa2d")
    sample = generate((6, 6), kind="monolayer", distribution="lognormal", sigma_factor=1.5, seed=0)  # 180 atoms
    (sample, info), = relax(yukawa, [sample], cell=True, raise_on_failure=True)
    settings = dataclasses.replace(SHEAR_DEFAULTS, step=2e-3, precision=1e-4, max_events=1, max_strain=0.1)
    result = shear_test(sample, yukawa, settings)
    labels = shear_labels(result)
    assert len(labels.events) == 1
    event, label = result.events[0], labels.events[0]
    assert "stress_drop" in event.kind and label.stress_drop > 1e-3  # N/m
    assert event.strain - event.strain_before <= 1e-4 + 1e-12
    field = d2min(event.before, event.after, cutoff=4.0)
    assert np.array_equal(label.d2min, field)
    assert field[label.atom] >= np.quantile(field, 0.9)  # the located atom is in the top 10 % of D²min
    assert np.allclose(label.location, result.reference.box.wrap(result.reference.positions[label.atom][None])[0])


def test_curve_holds_only_the_path_and_matches_the_fixed_run(runs):
    """The bisected curve is the path the run followed (strains in order), and at the strains
    both runs visited before the first event the stresses agree."""
    bisected, fixed = runs["bisected"][0], runs["fixed"][0]
    assert np.all(np.diff(bisected.curve.strain) >= 0)
    first = min(e.strain_before for e in bisected.events)
    a, b = bisected.curve.arrays(), fixed.curve.arrays()
    shared = 0
    for strain, stress in zip(a["strain"], a["stress"], strict=True):
        match = np.isclose(b["strain"], strain, atol=1e-9)
        if strain <= first and match.any():  # bisection points between the fixed steps have no partner
            shared += 1
            assert np.allclose(b["stress"][match], stress, atol=1e-3)
    assert shared >= 3


def test_shear_labels_keep_their_d2min_with_snapshots_off():
    yukawa = get_potential("yukawa2d")
    sample = generate((6, 6), kind="monolayer", distribution="lognormal", sigma_factor=1.5, seed=0)  # 180 atoms
    (sample, _), = relax(yukawa, [sample], cell=True, raise_on_failure=True)
    settings = dataclasses.replace(SHEAR_DEFAULTS, step=2e-3, precision=1e-4, max_events=1, max_strain=0.1,
                                   snapshots=False)
    labels = shear_labels(shear_test(sample, yukawa, settings))
    assert len(labels.events) == 1 and labels.events[0].d2min_max > 0


def test_bisection_trials_stop_early_but_every_kept_state_is_relaxed(runs):
    result, settings = runs["bisected"][0], runs["bisected"][0].settings
    assert result.work["stopped"] >= 1  # trials past an event stopped once an atom had jumped
    assert result.work["relaxations"] > len(result.curve.strain)
    assert result.curve.arrays()["converged"].all()
    potential = get_potential("yukawa2d")
    kept = [e.after for e in result.events if e.after is not None]
    assert kept  # the bond-break events keep their snapshots
    for after in kept:
        forces = potential.evaluate([after])[0]["forces"]
        assert np.linalg.norm(forces, axis=1).max() <= settings.fmax * (1 + 1e-6)
