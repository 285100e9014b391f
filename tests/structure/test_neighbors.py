"""Neighbour lists: vesin and cKDTree backends against a brute-force search."""

import numpy as np
import pytest

from glassfrac.structure import Box, neighbor_pairs


def canonical(i, j, images):
    """Pairs as a set of (a, b, image) with a <= b, independent of orientation."""
    out = set()
    for a, b, s in zip(i, j, images, strict=True):
        s = tuple(int(v) for v in s)
        if (a, b) > (b, a) or (a == b and s < tuple(-v for v in s)):
            a, b, s = b, a, tuple(-v for v in s)
        out.add((int(a), int(b), s))
    return out


CASES = [
    ("2d periodic", Box([[14.0, 0.0], [0.0, 13.0]], True), 2, 4.0),
    ("2d triclinic small cell", Box([[6.0, 0.0], [2.0, 5.5]], True), 2, 7.0),
    ("2d open", Box([[14.0, 0.0], [0.0, 13.0]], False), 2, 4.0),
    ("3d slab", Box([12.0, 12.0, 40.0], [True, True, False]), 3, 3.8),
    ("3d triclinic", Box([[9.0, 0, 0], [2.0, 8.0, 0], [1.0, -1.5, 10.0]], True), 3, 4.5),
]


@pytest.mark.parametrize("name,box,dim,cutoff", CASES, ids=[c[0] for c in CASES])
def test_backends_agree_with_brute_force(name, box, dim, cutoff):
    rng = np.random.default_rng(3)
    frac = rng.random((40, dim))
    pos = box.cartesian(frac) + rng.normal(scale=0.5, size=(40, dim))  # some atoms outside
    ref = neighbor_pairs(pos, box, cutoff, backend="brute")
    expected = canonical(*ref[:3])
    got = neighbor_pairs(pos, box, cutoff, backend="vesin")
    assert canonical(*got[:3]) == expected
    assert np.allclose(np.linalg.norm(got[3], axis=1) < cutoff, True)
    orthogonal = np.allclose(box.cell, np.diag(np.diag(box.cell)))
    if orthogonal and np.all(np.diag(box.cell)[box.pbc] > 2 * cutoff):
        kd = neighbor_pairs(pos, box, cutoff, backend="kdtree")
        assert canonical(*kd[:3]) == expected


def test_full_list_has_both_directions():
    box = Box([10.0, 10.0])
    pos = np.array([[1.0, 1.0], [9.5, 1.0]])
    i, j, images, vec = neighbor_pairs(pos, box, 2.0, full=True)
    assert len(i) == 2
    assert np.allclose(np.sort(vec[:, 0]), [-1.5, 1.5])
