"""Bond breaks, network wrapping and crack clusters on a generated, relaxed bilayer."""

import numpy as np

from glassfrac.analysis.bonds import (
    broken_bonds,
    crack_atoms,
    reference_bonds,
    wrapping_axes,
)


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


def test_affine_strain_breaks_nothing(generated):
    s = generated.bilayer()
    pairs, images = reference_bonds(s)
    strained = s.deformed(np.diag([1.2, 1.0, 1.0]))
    assert broken_bonds(strained, pairs, images).count == 0
