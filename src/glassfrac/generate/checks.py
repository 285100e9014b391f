"""Geometric checks of a 2D ring network: ring polygons, their areas, crossing bonds.

A network is a valid embedding of its topology when every ring polygon (its Si in the CCW
order of the topology) is simple with positive area and the ring areas add up to the box area:
positive faces that tile the torus exactly once cannot overlap, so no bonds cross.
:func:`find_crossing_bonds` tests the last point directly, for any 2D structure with bonds.
"""

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.structure import Box, Structure, neighbor_pairs


def segments_cross(p1, p2, q1, q2) -> np.ndarray:
    """True where segment p1–p2 properly crosses q1–q2 (arrays (..., 2); touching is not)."""
    def orient(a, b, c):
        return ((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))

    return ((orient(p1, p2, q1) * orient(p1, p2, q2) < 0)
            & (orient(q1, q2, p1) * orient(q1, q2, p2) < 0))


def ring_polygons(positions, box: Box, cycles) -> list[np.ndarray]:
    """Vertices (n, 2) of each ring, unwrapped by minimum-image steps along the cycle, Å.

    ``cycles`` lists the atom indices of each ring in order. Minimum images are exact while
    consecutive atoms are closer than half the box (true for bonded atoms in any sane sample).
    """
    positions = np.asarray(positions, float)
    out = [None] * len(cycles)
    by_size = {}
    for k, cyc in enumerate(cycles):
        by_size.setdefault(len(cyc), []).append(k)
    for idx in by_size.values():
        cyc = np.stack([cycles[k] for k in idx])  # (R, n)
        steps = box.minimum_image(
            (positions[np.roll(cyc, -1, axis=1)] - positions[cyc]).reshape(-1, 2)
        ).reshape(*cyc.shape, 2)
        steps = np.roll(steps, 1, axis=1)
        steps[:, 0] = 0.0
        verts = positions[cyc[:, 0]][:, None, :] + np.cumsum(steps, axis=1)
        for k, v in zip(idx, verts, strict=True):
            out[k] = v
    return out


def polygon_areas(polys) -> tuple[np.ndarray, np.ndarray]:
    """Signed areas (shoelace, Å², positive when CCW) and simplicity flags of closed polygons."""
    areas = np.empty(len(polys))
    simple = np.ones(len(polys), dtype=bool)
    by_size = {}
    for k, p in enumerate(polys):
        by_size.setdefault(len(p), []).append(k)
    for size, idx in by_size.items():
        pts = np.stack([polys[k] for k in idx])  # (R, n, 2)
        nxt = np.roll(pts, -1, axis=1)
        areas[idx] = 0.5 * np.sum(pts[..., 0] * nxt[..., 1] - nxt[..., 0] * pts[..., 1], axis=1)
        pairs = [(e, f) for e in range(size) for f in range(e + 2, size)
                 if not (e == 0 and f == size - 1)]
        if pairs:
            e, f = np.array(pairs).T
            simple[idx] = ~segments_cross(pts[:, e], nxt[:, e], pts[:, f], nxt[:, f]).any(axis=1)
    return areas, simple


def ring_cycles(structure: Structure) -> list[np.ndarray]:
    """Si indices of each ring in CCW order, from ``arrays['rings']`` of a generated network.

    Each Si lists its three rings (r0, r1, r2) in CCW order; the next Si around ring r0 is the
    one whose CCW triple contains the step r0 → r2. Rings are numbered 0..N−1.
    """
    si = np.flatnonzero(structure.species == "Si")
    triples = np.asarray(structure.arrays["rings"])[si].tolist()
    owner = {}
    for s, (a, b, c) in zip(si.tolist(), triples, strict=True):
        owner[(a, b)] = owner[(b, c)] = owner[(c, a)] = s
    follow = {}
    for s, (a, b, c) in zip(si.tolist(), triples, strict=True):
        follow[(s, a)] = owner[(a, c)]
        follow[(s, b)] = owner[(b, a)]
        follow[(s, c)] = owner[(c, b)]
    start = {}
    for s, t in zip(si.tolist(), triples, strict=True):
        for r in t:
            start.setdefault(r, s)
    cycles = []
    for r in range(len(start)):
        cyc = [start[r]]
        while (nxt := follow[(cyc[-1], r)]) != cyc[0]:
            cyc.append(nxt)
            if len(cyc) > len(si):
                raise ValueError(f"ring {r} does not close")
        cycles.append(np.array(cyc))
    return cycles


def find_crossing_bonds(structure: Structure) -> np.ndarray:
    """Pairs of bond indices (K, 2) whose segments cross, in a 2D structure with bonds.

    Two crossing bonds have midpoints closer than the longest bond, so only such pairs (from a
    neighbour list of the midpoints) are tested; bonds sharing an atom are skipped. Bonds longer
    than half the box are refused (ValueError): their crossings are not well defined.
    """
    if structure.dim != 2:
        raise InputError("crossing bonds are checked for 2D structures")
    if structure.bonds is None or len(structure.bonds) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    vec = structure.bond_vectors()
    mid = structure.box.wrap(structure.positions[structure.bonds[:, 0]] + 0.5 * vec)
    cutoff = float(np.linalg.norm(vec, axis=1).max()) * (1 + 1e-9)
    if cutoff > 0.5 * _shortest_period(structure.box):
        raise InputError(f"a bond of {cutoff:.3g} Å is longer than half the box")
    i, j, _, d = neighbor_pairs(mid, structure.box, cutoff)
    b = structure.bonds
    share = (b[i, 0] == b[j, 0]) | (b[i, 0] == b[j, 1]) | (b[i, 1] == b[j, 0]) | (b[i, 1] == b[j, 1])
    i, j, d = i[~share], j[~share], d[~share]
    hit = segments_cross(-0.5 * vec[i], 0.5 * vec[i], d - 0.5 * vec[j], d + 0.5 * vec[j])
    return np.column_stack([i[hit], j[hit]])


def check_network(structure: Structure) -> dict:
    """Validity report of a generated 2D network or monolayer (module docstring).

    Returns ``valid`` (bool) and the numbers behind it: ``n_rings``, ``min_ring_area`` (Å²),
    ``ring_area_sum`` and ``box_area`` (Å²), ``non_simple_rings``, ``long_bonds`` (longer than
    a quarter of the box), ``crossing_bonds`` (−1: not tested because of long bonds),
    ``si_coordination`` (set of bond counts of Si).
    """
    cycles = ring_cycles(structure)
    areas, simple = polygon_areas(ring_polygons(structure.positions, structure.box, cycles))
    lengths = np.linalg.norm(structure.bond_vectors(), axis=1)
    n_long = int(np.count_nonzero(lengths > 0.25 * _shortest_period(structure.box)))
    crossings = -1 if n_long else len(find_crossing_bonds(structure))
    coord = structure.coordination()[structure.species == "Si"]
    box_area = structure.box.area
    valid = bool((areas > 0).all() and simple.all() and n_long == 0 and crossings == 0
                 and abs(areas.sum() - box_area) < 1e-6 * box_area)
    return {
        "valid": valid, "n_rings": len(cycles), "min_ring_area": float(areas.min()),
        "ring_area_sum": float(areas.sum()), "box_area": box_area,
        "non_simple_rings": int((~simple).sum()), "long_bonds": n_long,
        "crossing_bonds": crossings, "si_coordination": sorted(set(coord.tolist())),
    }


def _shortest_period(box: Box) -> float:
    """Length of the shortest periodic cell vector (inf if none is periodic), Å."""
    periodic = box.lengths[box.pbc]
    return float(periodic.min()) if len(periodic) else float("inf")
