"""Scoring detections against known positions (synthetic images rendered from structures).

Matching rule: an optimal one-to-one matching over the candidate pairs closer than ``tolerance``
(default 0.5 Si–Si = 1.525 Å): the largest number of pairs, and among those the least sum of
squared distances (so the least RMS). Solved as a sparse assignment problem
(``scipy.sparse.csgraph.min_weight_full_bipartite_matching``) on the candidate pairs of a
k-d tree; each true point may also stay unmatched at a cost that outweighs any saving in
distance, so a pair is never given up to shorten others. Ties go as the solver breaks them.
Only points inside the evaluation ``region`` are scored: true points inside it and detections
inside it, each free to match a partner just outside it (so a point on the border is not
counted as missed or spurious because its partner fell on the other side).
recall = matched true / true, precision = matched detections / detections, RMS = root mean
square distance over matched pairs (same units as the points).
"""

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

from glassfrac.core.errors import InputError
from glassfrac.imaging.detect import SI_SI


@dataclass(frozen=True)
class Match:
    """``pairs`` (K, 2) indices (true, found) of matched points; ``distance`` (K,); recall,
    precision, rms; ``n_true`` and ``n_found`` scored; ``missed`` and ``spurious`` indices."""

    pairs: np.ndarray
    distance: np.ndarray
    recall: float
    precision: float
    rms: float
    n_true: int
    n_found: int
    missed: np.ndarray
    spurious: np.ndarray


def match_points(true, found, tolerance: float = 0.5 * SI_SI, region=None) -> Match:
    """Match ``found`` (M, 2) to ``true`` (N, 2) points (Å, or px with a tolerance in px);
    ``region(points) -> bool mask`` or None for all points."""
    if not tolerance > 0:
        raise InputError(f"tolerance must be positive, got {tolerance}")
    true = np.asarray(true, float).reshape(-1, 2)
    found = np.asarray(found, float).reshape(-1, 2)
    pairs = optimal_pairs(true, found, tolerance)
    in_true = np.ones(len(true), bool) if region is None else np.asarray(region(true), bool)
    in_found = np.ones(len(found), bool) if region is None else np.asarray(region(found), bool)
    matched_true = np.zeros(len(true), bool)
    matched_found = np.zeros(len(found), bool)
    matched_true[pairs[:, 0]] = True
    matched_found[pairs[:, 1]] = True
    pairs = pairs[in_true[pairs[:, 0]] | in_found[pairs[:, 1]]]
    distance = np.linalg.norm(true[pairs[:, 0]] - found[pairs[:, 1]], axis=1)
    n_true, n_found = int(in_true.sum()), int(in_found.sum())
    recall = float((matched_true & in_true).sum() / n_true) if n_true else float("nan")
    precision = float((matched_found & in_found).sum() / n_found) if n_found else float("nan")
    rms = float(np.sqrt(np.mean(distance**2))) if len(distance) else float("nan")
    return Match(pairs, distance, recall, precision, rms, n_true, n_found,
                 np.flatnonzero(in_true & ~matched_true), np.flatnonzero(in_found & ~matched_found))


def optimal_pairs(true, found, tolerance: float) -> np.ndarray:
    """(K, 2) indices (true, found) of the matching of the module docstring, sorted by true index."""
    pairs = np.zeros((0, 2), np.int64)
    if not (len(true) and len(found)):
        return pairs
    candidates = cKDTree(true).sparse_distance_matrix(cKDTree(found), tolerance, output_type="ndarray")
    if not len(candidates):
        return pairs
    rows, i = np.unique(candidates["i"], return_inverse=True)
    cols, j = np.unique(candidates["j"], return_inverse=True)
    n, m = len(rows), len(cols)
    t2 = tolerance**2
    # a pair costs t² + d² in [t², 2t²] (non-zero, as the solver needs); leaving a true point
    # unmatched (its own extra column) costs more than n pairs can, so no pair is ever given up
    unmatched = 2.0 * t2 * (n + 1)
    weight = np.concatenate([t2 + candidates["v"] ** 2, np.full(n, unmatched)])
    graph = csr_array((weight, (np.concatenate([i, np.arange(n)]), np.concatenate([j, m + np.arange(n)]))),
                      shape=(n, m + n))
    r, c = min_weight_full_bipartite_matching(graph)
    real = c < m
    return np.column_stack([rows[r[real]], cols[c[real]]]).astype(np.int64)
