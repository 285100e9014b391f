"""Non-affine displacement D²min (Falk & Langer 1998), vectorised over all atoms.

For atom i and its neighbours j within ``cutoff`` in the reference configuration, the local
affine map J_i minimises sum_j |d_ij − J_i d⁰_ij|²; D²min_i is that minimum (Å²). Neighbour
vectors of the current configuration use the same periodic images with the current cell, so
both structures must be the same atoms in the same order, positions not re-wrapped between
them (as the deformation drivers produce them).
"""

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.structure import Structure, neighbor_pairs


def d2min(reference: Structure, current: Structure, cutoff: float = 4.0, return_strain: bool = False):
    """D²min per atom (Å²) between ``reference`` and ``current``; optionally the local J (N, d, d)."""
    if reference.n_atoms != current.n_atoms or reference.dim != current.dim:
        raise InputError("reference and current must hold the same atoms")
    i, j, images, d0 = neighbor_pairs(reference.positions, reference.box, cutoff, full=True)
    d1 = current.positions[j] + current.box.image_shift(images) - current.positions[i]
    n, dim = reference.n_atoms, reference.dim
    X = _sum_outer(i, d1, d0, n, dim)  # sum d ⊗ d0
    Y = _sum_outer(i, d0, d0, n, dim)  # sum d0 ⊗ d0
    ok = np.abs(np.linalg.det(Y)) > 1e-12
    J = np.tile(np.eye(dim), (n, 1, 1))
    J[ok] = X[ok] @ np.linalg.inv(Y[ok])
    residual = d1 - np.einsum("pab,pb->pa", J[i], d0)
    out = np.bincount(i, weights=np.sum(residual**2, axis=1), minlength=n)
    return (out, J) if return_strain else out


def _sum_outer(index, a, b, n, dim):
    out = np.zeros((n, dim, dim))
    for p in range(dim):
        for q in range(dim):
            out[:, p, q] = np.bincount(index, weights=a[:, p] * b[:, q], minlength=n)
    return out


def displacements(reference: Structure, current: Structure, affine=None) -> np.ndarray:
    """Displacements (N, d) in Å, minus the affine part ``affine`` (F: x -> F x) if given."""
    u = current.positions - reference.positions
    if affine is not None:
        u = current.positions - reference.positions @ np.asarray(affine).T
    return u
