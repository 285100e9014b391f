"""Scores of where-will-it-fail predictors against what the loading tests found (issue 20's table).

A predictor here is a score per atom (higher: more likely to fail first) or a threshold map (lower: weaker).
Used by ``benchmarks/compare.py`` (held-out datasets) and ``glassfrac demo`` (fresh samples):

- :func:`baseline_scores`: the simple baselines every predictor must beat (per-atom energy, ring defects,
  distance to the largest ring, random);
- :func:`first_break_scores`: one sample's ROC AUC of the first-broken-bond atoms, the fraction of its atoms
  flagged (highest score first) before one of them is caught, and the rupture-location error of the top
  atom (Å);
- :func:`atom_goodness`: LISTI25's goodness C = 1 − 2F of a per-atom score at event sites, F the fraction of
  the sample's atoms scored at least as high as the atom nearest the site (1: the event is at the top atom,
  0: random, −1: at the lowest), the per-atom form of :func:`glassfrac.labels.probe.goodness` for maps.
"""

import numpy as np

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.learn.metrics import classification_metrics, flagged_fraction

RING_RADIUS = 5.0
"""Å: rings whose centres lie this close to an atom (in the plane) make its ring-defect score."""


def in_plane_distance(structure, points, centre) -> np.ndarray:
    """In-plane periodic distances (Å) from ``points`` (k, ≥ 2) to ``centre`` (≥ 2,)."""
    d = np.zeros((len(points), structure.dim))
    d[:, :2] = np.asarray(points)[:, :2] - np.asarray(centre)[:2]
    return np.linalg.norm(structure.box.minimum_image(d)[:, :2], axis=1)


def baseline_scores(structure, potential, rng: np.random.Generator, rings=None) -> dict:
    """Per-atom baseline scores of ``structure`` (higher: predicted weaker):

    - ``energy``: the atom's potential energy in the undeformed sample, standardised within its species (Si
      and O energies differ by eV);
    - ``ring_defects``: the summed |n − 6| of the rings whose centres lie within :data:`RING_RADIUS` of the
      atom in the plane;
    - ``largest_ring``: minus the in-plane distance to the centre of the sample's largest ring (Å);
    - ``random``: uniform random numbers from ``rng``.

    ``rings``: the structure's :class:`~glassfrac.analysis.rings.RingAnalysis` result if the caller has it.
    """
    energy = np.asarray(potential.evaluate([structure], per_atom=True)[0]["per_atom_energy"], float)
    for species in np.unique(structure.species):
        m = structure.species == species
        energy[m] = (energy[m] - energy[m].mean()) / (energy[m].std() or 1.0)
    rings = RingAnalysis().compute(structure) if rings is None else rings
    sizes, centres = np.asarray(rings.ring_sizes), np.asarray(rings.ring_centres)
    defects = np.zeros(structure.n_atoms)
    for size, centre in zip(sizes, centres, strict=True):
        if size != 6:
            near = in_plane_distance(structure, structure.positions, centre) < RING_RADIUS
            defects[near] += abs(int(size) - 6)
    largest = int(np.lexsort((np.asarray(rings.ring_areas), sizes))[-1])
    return {"energy": energy, "ring_defects": defects,
            "largest_ring": -in_plane_distance(structure, structure.positions, centres[largest]),
            "random": rng.random(structure.n_atoms)}


def first_break_scores(scores, positive, location, structure) -> dict:
    """One predictor on one sample: ``auc`` (ROC AUC of the first-broken-bond atoms ``positive``),
    ``q_positive`` (per positive atom, the fraction of atoms flagged when it is), ``caught_at`` (their
    minimum), ``error`` (Å, in-plane periodic distance from the top-scored atom to the rupture ``location``)."""
    scores = np.asarray(scores, float)
    positive = np.asarray(positive, bool)
    q = flagged_fraction(scores)
    top = int(np.nanargmax(scores))
    error = float(in_plane_distance(structure, structure.positions[top:top + 1], location)[0])
    return {"auc": classification_metrics(positive.astype(int), scores)["roc_auc"], "q_positive": q[positive],
            "caught_at": float(q[positive].min()), "error": error}


def nearest_atom(structure, location) -> int:
    """Index of the atom nearest ``location`` (Å; periodic): in space when it has all of the structure's axes,
    else in the plane. A bilayer's two layers and the oxygens between them share in-plane positions, so only the
    full distance finds the atom of a site in one layer."""
    location = np.asarray(location, float)
    if len(location) < structure.dim:
        return int(np.argmin(in_plane_distance(structure, structure.positions, location)))
    d = structure.box.minimum_image(structure.positions - location[:structure.dim])
    return int(np.argmin(np.linalg.norm(d, axis=1)))


def atom_goodness(scores, structure, locations) -> np.ndarray:
    """C = 1 − 2F per event location (module docstring), at the atom nearest each location
    (:func:`nearest_atom`); ``locations`` (e, ≥ 2) Å."""
    q = flagged_fraction(np.asarray(scores, float))
    return np.array([1.0 - 2.0 * q[nearest_atom(structure, loc)] for loc in np.atleast_2d(locations)])
