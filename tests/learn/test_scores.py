"""Scores of per-atom predictors (:mod:`glassfrac.learn.scores`) on constructed cases with known answers."""

import numpy as np

from glassfrac.labels.probe import goodness
from glassfrac.learn.scores import atom_goodness, first_break_scores
from glassfrac.structure import Box, Structure


def _grid_sheet(n=10, spacing=3.0):
    xy = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2) * spacing
    return Structure(xy + 0.5, ["Si"] * len(xy), Box(np.eye(2) * n * spacing, True))


def test_atom_goodness_is_the_map_goodness_of_minus_the_score():
    sheet = _grid_sheet()
    score = np.random.default_rng(1).normal(size=sheet.n_atoms)
    events = np.random.default_rng(2).uniform(0, 30, (7, 2))
    # a threshold map with one window per atom, Δτ = −score: LISTI25's C must be the same number
    assert np.allclose(atom_goodness(score, sheet, events), goodness(-score, sheet.positions, events, sheet.box))
    top = sheet.positions[np.argmax(score)]
    assert np.isclose(atom_goodness(score, sheet, top[None])[0], 1 - 2 / sheet.n_atoms)


def test_a_score_peaked_at_the_rupture_finds_it_across_the_periodic_edge():
    sheet = _grid_sheet()
    location = np.array([29.9, 0.2])  # between the atoms at (27.5, 0.5) and, across the edge, (0.5, 0.5)
    d = np.linalg.norm(sheet.box.minimum_image(sheet.positions - location), axis=1)
    positive = d < 2.5
    result = first_break_scores(-d, positive, location, sheet)
    assert positive.sum() == 2 and result["auc"] == 1.0
    assert np.isclose(result["error"], np.linalg.norm([0.6, 0.3])) and result["caught_at"] == 1 / sheet.n_atoms


def test_a_site_in_one_layer_of_a_bilayer_is_scored_at_that_layers_atom():
    # two layers with the same in-plane positions (as a bilayer's mirror layers and bridging oxygens have)
    flat = _grid_sheet()
    xy = flat.positions
    positions = np.vstack([np.column_stack([xy, np.full(len(xy), 5.0)]), np.column_stack([xy, np.full(len(xy), 8.0)])])
    bilayer = Structure(positions, ["Si"] * len(positions), Box(np.diag([30.0, 30.0, 20.0]), [True, True, False]))
    score = np.zeros(len(positions))
    site = len(xy) + 7  # an atom of the upper layer, the only one predicted
    score[site] = 1.0
    assert np.isclose(atom_goodness(score, bilayer, positions[site][None])[0], 1 - 2 / len(positions))
    # in the plane alone the site is as near the lower layer's atom, which scores at the bottom
    assert atom_goodness(score, bilayer, positions[site][None, :2])[0] == -1.0
