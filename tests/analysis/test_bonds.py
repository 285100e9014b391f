"""Bond breaks, network wrapping and crack clusters on a generated, relaxed bilayer."""

import numpy as np
import pytest

from glassfrac.analysis.bonds import (
    BondRule,
    broken_bonds,
    crack_atoms,
    reference_bonds,
    wrapping_axes,
)
from glassfrac.potentials import get_potential
from glassfrac.structure import Box, Structure


def test_reference_bonds_of_the_bilayer(generated):
    s = generated.bilayer()
    pairs, images = reference_bonds(s)
    count = np.bincount(pairs.ravel(), minlength=s.n_atoms)
    assert np.all(count[s.species == "Si"] == 4)
    assert np.all(count[s.species == "O"] == 2)
    assert wrapping_axes(s.n_atoms, pairs, images, 3).tolist() == [True, True, False]


def test_cut_through_the_sample_stops_wrapping_and_is_one_crack(generated):
    s = generated.bilayer().wrapped()
    pairs, images = reference_bonds(s)
    # open a gap at x = L/2: atoms right of it and the cell's right edge move 3 Å along x
    moved = s.copy()
    half = s.positions[:, 0] > 0.5 * s.box.cell[0, 0]
    moved.positions[half, 0] += 3.0
    cell = s.box.cell.copy()
    cell[0, 0] += 3.0
    moved.box = s.box.with_cell(cell)
    breaks = broken_bonds(moved, pairs, images)
    every = broken_bonds(moved, pairs, images, near=None)
    # the silica rule counts only bonds whose O keeps its other Si: a subset of all long bonds
    assert 0 < breaks.count <= every.count
    # with every long bond removed the sample no longer wraps along x
    lookup = {tuple(p) for p in every.pairs.tolist()}
    kept = np.array([tuple(p) not in lookup for p in pairs.tolist()])
    assert wrapping_axes(s.n_atoms, pairs[kept], images[kept], 3).tolist() == [False, True, False]
    crack = crack_atoms(s, breaks)
    assert 0 < len(crack) <= len(breaks.atoms())
    tracker = BondRule().tracker(s)
    assert tracker.cut(moved) and not tracker.cut(s.deformed(np.diag([1.1, 1.0, 1.0])))


def test_affine_strain_breaks_nothing(generated):
    s = generated.bilayer()
    pairs, images = reference_bonds(s)
    strained = s.deformed(np.diag([1.2, 1.0, 1.0]))
    assert broken_bonds(strained, pairs, images).count == 0


def test_the_label_rule_counts_a_bond_held_in_the_watanabe_switch_window():
    """On the flow branch a breaking Watanabe bond stops at ~2.52 Å with its O's other bond stretched to
    1.81 Å (FC22's bilayer, strain 0.1405): FC22's numbers (2.2 / 1.7 Å) miss it, the label rule does not."""
    rule = BondRule.for_potential(get_potential("watanabe"))
    assert rule.far == pytest.approx(1.15 * 2.0951) and rule.near == 2.2
    assert BondRule.for_potential(get_potential("yukawa2d")).far == 2.2
    box = Box(np.diag([20.0, 20.0, 20.0]), pbc=(True, True, False))
    reference = Structure([[2, 5, 5], [3.6, 5, 5], [5.2, 5, 5]], ["Si", "O", "Si"], box)  # bonds of 1.6 Å
    tracker = rule.tracker(reference)
    assert len(tracker.pairs) == 2
    for other, window, counted in ((1.81, 2.52, True), (1.81, 2.30, False), (2.3, 2.52, False)):
        current = reference.copy()
        current.positions[1, 0] = 2 + other
        current.positions[2, 0] = 2 + other + window
        assert (tracker.broken(current).count == 1) == counted
        fc22 = broken_bonds(current, tracker.pairs, tracker.images, far=2.2, near=1.7)
        assert fc22.count == 0  # the O's other bond is not below 1.7 Å
