"""Neighbour lists: pairs within a cutoff, as index arrays with periodic image shifts.

One function, :func:`neighbor_pairs`, with two interchangeable backends: vesin (triclinic,
mixed periodicity, any cutoff relative to the cell) and scipy's cKDTree (fallback for
orthogonal cells whose periodic lengths exceed twice the cutoff). Both are tested against a
brute-force loop.
"""

import numpy as np
from scipy.spatial import cKDTree

from glassfrac.core.errors import InputError
from glassfrac.structure.box import Box


def neighbor_pairs(positions, box: Box, cutoff: float, full: bool = False,
                   backend: str = "auto"):
    """Pairs (i, j) closer than ``cutoff`` Å.

    Returns ``i, j, images, vectors``: ``images`` (P, dim) int are the periodic images of j,
    ``vectors = x_j + images @ cell - x_i`` (P, dim) in Å. A half list (each pair once,
    i < j for the same image) unless ``full``.
    """
    positions = np.asarray(positions, float)
    if backend == "auto":
        backend = "vesin"
    if backend == "vesin":
        i, j, images = _vesin_pairs(positions, box, cutoff)
    elif backend == "kdtree":
        i, j, images = _kdtree_pairs(positions, box, cutoff)
    elif backend == "brute":
        i, j, images = _brute_pairs(positions, box, cutoff)
    else:
        raise InputError(f"unknown neighbour-list backend {backend!r}")
    if full:
        i, j, images = np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([images, -images])
    vectors = positions[j] + box.image_shift(images) - positions[i]
    return i, j, images, vectors


def _padded(positions, box):
    """3D positions and cell for vesin (a 2D box gets a unit, non-periodic z)."""
    if box.dim == 3:
        cell = box.cell.copy()
        pbc = box.pbc.tolist()
        return positions - box.origin, _fill_open_axes(cell, box.pbc), pbc
    pos3 = np.zeros((len(positions), 3))
    pos3[:, :2] = positions - box.origin
    cell = np.zeros((3, 3))
    cell[:2, :2] = box.cell
    cell[2, 2] = 1.0
    return pos3, _fill_open_axes(cell, list(box.pbc) + [False]), list(box.pbc) + [False]


def _fill_open_axes(cell, pbc):
    """vesin needs a non-singular cell when any axis is periodic: give open axes a unit vector
    orthogonal to the others (it does not matter for pairs)."""
    pbc = np.asarray(pbc, bool)
    if not pbc.any() or abs(np.linalg.det(cell)) > 1e-9:
        return cell
    cell = cell.copy()
    for axis in np.flatnonzero(~pbc):
        others = [cell[k] for k in range(3) if k != axis]
        normal = np.cross(others[0], others[1])
        if np.linalg.norm(normal) < 1e-12:
            normal = np.eye(3)[axis]
        cell[axis] = normal / np.linalg.norm(normal)
    return cell


def _vesin_pairs(positions, box, cutoff):
    import vesin  # here, not at the top: vesin imports torch (~1 s), which `import glassfrac` need not pay

    pos3, cell3, pbc3 = _padded(positions, box)
    if not any(pbc3):
        cell3 = np.zeros((3, 3))
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=False)
    i, j, shifts = nl.compute(pos3, cell3, pbc3, "ijS")
    images = shifts[:, : box.dim].astype(np.int64)
    return i.astype(np.int64), j.astype(np.int64), images


def _kdtree_pairs(positions, box, cutoff):
    cell = box.cell
    if not np.allclose(cell, np.diag(np.diag(cell))):
        raise InputError("the cKDTree backend needs an orthogonal cell; use vesin")
    lengths = np.diag(cell)
    if np.any(lengths[box.pbc] <= 2 * cutoff):
        raise InputError("the cKDTree backend needs periodic lengths > 2 x cutoff; use vesin")
    rel = positions - box.origin
    # periodic axes: wrap into [0, L) and remember the integer shift; open axes: make positive
    safe = np.where(box.pbc, lengths, 1.0)
    wrapped = np.where(box.pbc, np.mod(rel, safe), rel - rel.min(axis=0))
    wrapped = np.where(box.pbc & (wrapped >= safe), 0.0, wrapped)
    shift = np.where(box.pbc, np.round((wrapped - rel) / safe), 0.0)
    span = wrapped.max(axis=0) + 2 * cutoff + 1.0
    tree = cKDTree(wrapped, boxsize=np.where(box.pbc, lengths, span))
    pairs = tree.query_pairs(cutoff, output_type="ndarray")
    i, j = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    d = wrapped[j] - wrapped[i]
    img = np.where(box.pbc, -np.round(d / safe), 0.0)
    images = (img + shift[j] - shift[i]).astype(np.int64)
    return i, j, images


def _brute_pairs(positions, box, cutoff):
    """Reference O(N^2 x images) search, for tests."""
    dim = box.dim
    reach = np.zeros(dim, dtype=int)
    if box.pbc.any():
        inv = np.linalg.inv(box.cell)
        # number of images needed per axis: cutoff over the distance between lattice planes
        plane = 1.0 / np.linalg.norm(inv, axis=0)
        reach = np.where(box.pbc, np.ceil(cutoff / plane).astype(int) + 1, 0)
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    images = np.stack([g.ravel() for g in grids], axis=1)
    out_i, out_j, out_s = [], [], []
    for s in images:
        d = positions[None, :, :] + s @ box.cell - positions[:, None, :]
        r = np.linalg.norm(d, axis=-1)
        ii, jj = np.nonzero(r < cutoff)
        zero = not s.any()
        keep = (ii < jj) if zero else np.ones(len(ii), bool)
        if not zero:
            # each periodic pair once: keep the image whose first non-zero component is > 0
            first = s[np.flatnonzero(s)[0]]
            keep &= first > 0
        out_i.append(ii[keep])
        out_j.append(jj[keep])
        out_s.append(np.repeat(s[None], keep.sum(), axis=0))
    if not out_i:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, dim), int)
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_s).astype(np.int64)
