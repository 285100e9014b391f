"""Scoring detections against known positions (synthetic images rendered from structures).

Matching rule: one-to-one, closest pairs first (greedy over the candidate pairs sorted by
distance; ties by index), counting only pairs closer than ``tolerance`` (default 0.5 Si–Si = 1.525 Å).
Only points inside the evaluation ``region`` are scored: true points inside it and detections
inside it, each free to match a partner just outside it (so a point on the border is not
counted as missed or spurious because its partner fell on the other side).
recall = matched true / true, precision = matched detections / detections, RMS = root mean
square distance over matched pairs (same units as the points).
"""

from dataclasses import dataclass

import numpy as np

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
    from scipy.spatial import cKDTree

    true = np.asarray(true, float).reshape(-1, 2)
    found = np.asarray(found, float).reshape(-1, 2)
    pairs = np.zeros((0, 2), np.int64)
    if len(true) and len(found):
        dist = cKDTree(true).sparse_distance_matrix(cKDTree(found), tolerance, output_type="coo_matrix")
        order = np.lexsort((dist.col, dist.row, dist.data))
        used_true = np.zeros(len(true), bool)
        used_found = np.zeros(len(found), bool)
        chosen = []
        for i, j in zip(dist.row[order], dist.col[order], strict=True):
            if not (used_true[i] or used_found[j]):
                used_true[i] = used_found[j] = True
                chosen.append((i, j))
        pairs = np.array(chosen, np.int64).reshape(-1, 2)
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
