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
