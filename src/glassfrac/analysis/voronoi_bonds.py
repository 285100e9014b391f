"""Bonds of a 3-coordinated 2D network from atom positions only (the Voronoi rule of FC22).

Each atom shares its ``sides`` (3) widest Voronoi sides with its bonded neighbours; a bond is
kept only if both of its atoms choose the side they share (a mutual choice). Decisions:

- Disagreements: a side chosen by one atom but not by the other is *not* a bond. The choosing
  atom is then under-coordinated; every such one-sided choice is returned (``one_sided``) so
  callers can report it.
- Periodic axes: the points are replicated with periodic images within a margin of the cell
  that is grown until every Voronoi vertex of an original atom has its empty circle inside
  the replicated region, so the cells of the original atoms are exact.
- Open axes (microscope patches): sides that run to infinity are not eligible, so atoms on
  the convex hull pick among their finite sides and usually end up under-coordinated;
  ``open_cell`` flags atoms whose Voronoi cell is unbounded. With one periodic and one open
  axis, Voronoi vertices beyond the extent of the points along the open axis are left out of
  the exactness check above (they belong to edge atoms and would need ever more images).
- Sides of zero length (a shared Voronoi vertex only, as between second neighbours of a
  perfect honeycomb) are never chosen; ties in width are broken by the shorter distance.

scipy's Qhull rather than freud: freud's Voronoi treats every axis as periodic (no open axes,
no unbounded cells) and works on single-precision positions.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial import QhullError, Voronoi

from glassfrac.core.errors import InputError
from glassfrac.structure.box import Box


@dataclass(frozen=True)
class VoronoiBonds:
    """Result of :func:`voronoi_bonds` (indices into the given positions).

    ``bonds`` (E, 2) and ``images`` (E, 2): atom ``j`` of a bond sits at
    ``x_j + images @ cell``; ``width`` (E,) the width of the shared Voronoi side, Å;
    ``one_sided`` (K, 2) choices ``(i, j)`` that ``j`` did not return; ``open_cell`` (N,) bool.
    """

    bonds: np.ndarray
    images: np.ndarray
    width: np.ndarray
    one_sided: np.ndarray
    open_cell: np.ndarray


def voronoi_bonds(positions, box: Box, sides: int = 3) -> VoronoiBonds:
    """Mutual widest-Voronoi-side bonds of 2D points ``positions`` (N, 2) Å in ``box``."""
    positions = np.asarray(positions, float)
    n = len(positions)
    if box.dim != 2 or positions.ndim != 2 or positions.shape[1] != 2:
        raise InputError("voronoi_bonds needs 2D positions (N, 2) and a 2D box")
    if n < 3:
        raise InputError(f"the Voronoi rule needs at least 3 points, got {n}")
    cell = _working_cell(box)
    frac = (positions - box.origin) @ np.linalg.inv(cell)
    extent = frac.min(axis=0), frac.max(axis=0)
    shift = np.zeros_like(frac)
    shift[:, box.pbc] = np.floor(frac[:, box.pbc])
    frac -= shift
    shift = shift.astype(np.int64)
    plane = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)  # lattice-plane spacings, Å
    span = np.ptp(positions, axis=0)
    area = box.area if box.pbc.all() else max(float(np.prod(span)), 1e-12)
    margin = 4.0 * np.sqrt(area / n)
    while True:
        points, origin_index, image = _replicate(frac, cell, box.pbc, margin / plane)
        try:
            vor = Voronoi(points)
        except QhullError as exc:
            raise InputError(f"Voronoi construction failed (collinear or duplicate points?): {exc}") from None
        if _cells_exact(vor, _inner_vertices(vor, cell, box.pbc, extent), points, n, cell, box.pbc,
                        margin / plane, plane):
            break
        if margin > 50.0 * plane.max():
            raise InputError("could not build exact periodic Voronoi cells (cell too small or points too sparse)")
        margin *= 2.0

    ridge_points = vor.ridge_points
    ridge_vertices = np.asarray(vor.ridge_vertices, dtype=np.int64)
    finite = (ridge_vertices >= 0).all(axis=1)
    width = np.full(len(ridge_points), -1.0)
    v = vor.vertices
    width[finite] = np.linalg.norm(v[ridge_vertices[finite, 0]] - v[ridge_vertices[finite, 1]], axis=1)

    # each ridge seen from both of its points; keep the views of original points
    tail = np.concatenate([ridge_points[:, 0], ridge_points[:, 1]])
    head = np.concatenate([ridge_points[:, 1], ridge_points[:, 0]])
    w = np.concatenate([width, width])
    keep = tail < n
    tail, head, w = tail[keep], head[keep], w[keep]
    open_cell = np.zeros(n, bool)
    open_cell[tail[w < 0]] = True
    dist = np.linalg.norm(points[head] - points[tail], axis=1)
    order = np.lexsort((dist, -w, tail))
    tail, head, w = tail[order], head[order], w[order]
    start = np.searchsorted(tail, np.arange(n))
    rank = np.arange(len(tail)) - start[tail]
    eligible = w > 1e-9 * np.sqrt(area / n)
    chosen = (rank < sides) & eligible  # ineligible sides sort last, after the eligible ones
    i, j_pad, w = tail[chosen], head[chosen], w[chosen]
    j = origin_index[j_pad]
    img = image[j_pad]

    key = _edge_key(i, j, img, n)
    back = _edge_key(j, i, -img, n)
    mutual = np.isin(key, back)
    one_sided = np.column_stack([i[~mutual], j[~mutual]])
    canonical = mutual & (key < back)
    i, j, img, w = i[canonical], j[canonical], img[canonical], w[canonical]
    images = img - shift[j] + shift[i]  # back from wrapped to the given positions
    return VoronoiBonds(np.column_stack([i, j]), images, w, one_sided, open_cell)


def _replicate(frac, cell, pbc, reach):
    """Points and their periodic copies within ``reach`` (fractional, per axis) of the cell.

    Returns Cartesian points relative to the box origin (originals first), the original
    index of each point and its integer image.
    """
    n, dim = frac.shape
    steps = [np.arange(-int(np.ceil(r)), int(np.ceil(r)) + 1) if p else np.zeros(1, int)
             for r, p in zip(reach, pbc, strict=True)]
    grid = np.stack([g.ravel() for g in np.meshgrid(*steps, indexing="ij")], axis=1)
    grid = grid[np.argsort(np.abs(grid).sum(axis=1), kind="stable")]  # (0, 0) first
    pts, idx, img = [], [], []
    for s in grid:
        f = frac + s
        inside = np.ones(n, bool)
        for a in range(dim):
            if pbc[a]:
                inside &= (f[:, a] >= -reach[a]) & (f[:, a] <= 1.0 + reach[a])
        k = np.flatnonzero(inside)
        pts.append(f[k] @ cell)
        idx.append(k)
        img.append(np.repeat(s[None, :], len(k), axis=0))
    return np.concatenate(pts), np.concatenate(idx), np.concatenate(img).astype(np.int64)


def _working_cell(box):
    """The box cell with every open axis replaced by a unit vector normal to the periodic one
    (2D), or the identity if no axis is periodic, so that it can be inverted."""
    if not box.pbc.any():
        return np.eye(2)
    cell = box.cell.copy()
    if not box.pbc.all():
        a = np.flatnonzero(box.pbc)[0]
        normal = np.array([-cell[a, 1], cell[a, 0]]) / np.linalg.norm(cell[a])
        cell[1 - a] = normal
    return cell


def _inner_vertices(vor, cell, pbc, extent):
    """Ridge vertex indices (R, 2), with −1 for vertices at infinity or beyond the extent
    (fractional min, max) of the points along an open axis."""
    rv = np.asarray(vor.ridge_vertices, dtype=np.int64)
    if pbc.all():
        return rv
    f = vor.vertices @ np.linalg.inv(cell)
    lo, hi = extent
    outside = np.zeros(len(f), bool)
    for a in np.flatnonzero(~pbc):
        outside |= (f[:, a] < lo[a]) | (f[:, a] > hi[a])
    return np.where((rv >= 0) & outside[np.maximum(rv, 0)], -1, rv)


def _cells_exact(vor, rv, points, n, cell, pbc, reach, plane) -> bool:
    """True if the Voronoi cells of the ``n`` original points cannot change with more images
    (``rv``: ridge vertices, −1 where unbounded)."""
    if not pbc.any():
        return True
    rp = vor.ridge_points
    mine = (rp < n).any(axis=1)
    if pbc.all() and (rv[mine] < 0).any():
        return False
    rp, rv = rp[mine], rv[mine]
    ok = True
    for side in (0, 1):
        has = rv[:, side] >= 0
        vert = vor.vertices[rv[has, side]]
        radius = np.linalg.norm(vert - points[rp[has, 0]], axis=1)
        f = vert @ np.linalg.inv(cell)
        for a in np.flatnonzero(pbc):
            room = np.minimum(f[:, a] + reach[a], 1.0 + reach[a] - f[:, a]) * plane[a]
            ok &= bool(np.all(room > radius * (1 + 1e-9)))
    return ok


def _edge_key(i, j, images, n):
    """One int64 per directed edge (i, j, image), images in −1000..1000."""
    base = 2001
    key = i.astype(np.int64) * n + j
    for a in range(images.shape[1]):
        key = key * base + (images[:, a] + 1000)
    return key
