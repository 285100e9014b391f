"""Local stability of a relaxed state: the lowest eigenvalues of the Hessian of the energy.

:func:`lowest_modes` finds the lowest non-trivial eigenvalues (eV/Å²) and their modes of the
Hessian with respect to the atoms' positions at a fixed cell, by LOBPCG on exact
Hessian-vector products: central differences of the forces, H v = −(F(x + h v) − F(x − h v)) / 2h,
which hold for every potential, also where its analytic Hessian is approximate (Watanabe's in
the coordination switch window, where a stretched Si–O bond of an event lies). Where the
potential declares the ``"hessian"`` ability, the exact sparse Hessian is assembled from it
(:meth:`_Hessian.exact`: the potential's blocks where they are exact, central differences of the
forces in the rows and columns of the atoms :meth:`~glassfrac.potentials.Potential.hessian_gaps`
names, the ends of Watanabe Si–O bonds in the coordination switch window); its lowest modes
(shift-invert Lanczos) start LOBPCG and its shifted inverse preconditions it, so LOBPCG only
confirms them. Where it is indefinite (a saddle) the preconditioner is the potential's blocks
clipped to positive semidefinite instead. (Watanabe's blocks alone are far off in the window:
eigenvalues down to −1.5 eV/Å² on a 192-atom bilayer at strain 0.16 whose exact lowest is +0.27;
with them as preconditioner LOBPCG with 40 modes did not converge in 20 minutes on FC22's bilayer.) The
trivial zero modes (rigid translations; rotations in planes of non-periodic axes) are projected
out; frozen atoms are held (their coordinates are not degrees of freedom).

A state is a minimum when the lowest non-trivial eigenvalue is positive. Approaching a
saddle-node instability at strain γ_c along a loading branch, λ_min ≈ A √(γ_c − γ)
(:func:`saddle_node_fit`).
"""

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from glassfrac.core.errors import InputError
from glassfrac.potentials import Potential, VerletList
from glassfrac.potentials.base import clip_blocks, expand_pair_blocks, hessian_entries
from glassfrac.structure import Structure

STEP = 1e-4
"""Largest atomic displacement of the finite-difference Hessian-vector product, Å (error ~1e-6 eV/Å²)."""


@dataclass
class Modes:
    """Lowest non-trivial eigenvalues (k,) eV/Å², ascending, and their unit modes (k, N, d) (0 on frozen
    atoms); ``trivial``: zero modes projected out; ``residual``: largest |H v − λ v| entry, eV/Å² (the
    eigenvalues are good to about that; LOBPCG may stop above its ``tol`` after ``max_iterations``)."""

    eigenvalues: np.ndarray
    modes: np.ndarray = field(repr=False)
    trivial: int
    residual: float
    products: int
    """Hessian-vector products used (two force evaluations each)."""

    @property
    def lowest(self) -> float:
        return float(self.eigenvalues[0])

    def participation(self, k: int = 0) -> float:
        """Participation ratio of mode ``k``: (Σ|v_i|²)² / (N Σ|v_i|⁴), ~1 extended, ~1/N on one atom."""
        w = (self.modes[k] ** 2).sum(axis=1)
        return float(w.sum() ** 2 / (len(w) * (w**2).sum()))

    def centre(self, k: int = 0) -> int:
        """The atom that moves most in mode ``k``."""
        return int(np.argmax(np.linalg.norm(self.modes[k], axis=1)))


class _Hessian:
    """Exact Hessian-vector products of one structure by central differences of the forces."""

    def __init__(self, potential: Potential, structure: Structure, frozen):
        self.potential = potential
        self.batch = potential.batch([structure], frozen=None if frozen is None else [frozen])
        self.verlet = VerletList(potential.cutoff, skin=1.0)
        self.x0 = self.batch.positions.detach().clone()
        self.free = ~self.batch.frozen.cpu().numpy()
        self.n, self.d = self.x0.shape
        self.products = 0

    def forces(self, x):
        self.batch.positions = x
        return self.potential.compute(self.batch, self.verlet.update(self.batch), virial=False).forces

    def matmat(self, V: np.ndarray) -> np.ndarray:
        """H V for columns V (n·d, m) (frozen rows and columns dropped by the caller's masks)."""
        out = np.empty_like(V)
        for c in range(V.shape[1]):
            v = torch.from_numpy(V[:, c].reshape(self.n, self.d)).to(self.x0)
            scale = float(v.abs().max())
            if scale == 0.0:
                out[:, c] = 0.0
                continue
            h = STEP / scale
            df = self.forces(self.x0 + h * v) - self.forces(self.x0 - h * v)
            out[:, c] = (-df / (2 * h)).cpu().numpy().ravel()
            self.products += 1
        self.batch.positions = self.x0.clone()
        return out

    def sparse(self, clip: bool = False) -> scipy.sparse.csr_matrix | None:
        """The potential's own Hessian (its ``"hessian"`` ability) as a sparse (n·d, n·d) matrix, or None;
        with ``clip``, every term's block made positive semidefinite (its negative eigenvalues set to 0)."""
        if not self.potential.can("hessian"):
            return None
        terms = [(atoms.cpu().numpy(), blocks.detach().cpu().numpy())
                 for atoms, blocks in self.potential.hessian(self.batch, self.verlet.update(self.batch))]
        if clip:
            terms = [(atoms, clip_blocks(expand_pair_blocks(b) if b.ndim == 3 else b)) for atoms, b in terms]
        rows, cols, vals = hessian_entries(terms, self.d)
        size = self.n * self.d
        return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(size, size))

    def exact(self) -> scipy.sparse.csr_matrix | None:
        """The exact sparse Hessian (eV/Å²): :meth:`sparse` with the rows and columns of the potential's
        :meth:`~glassfrac.potentials.Potential.hessian_gaps` atoms replaced by central differences of the
        forces (two force evaluations per coordinate); None without the ``"hessian"`` ability."""
        model = self.sparse()
        if model is None:
            return None
        gaps = self.potential.hessian_gaps(self.batch, self.verlet.update(self.batch)).cpu().numpy()
        if len(gaps) == 0:
            return model
        size = self.n * self.d
        coords = (gaps[:, None] * self.d + np.arange(self.d)).ravel()
        unit = np.zeros((size, len(coords)))
        unit[coords, np.arange(len(coords))] = 1.0
        columns = self.matmat(unit)  # H[:, coords]
        columns[np.abs(columns) < 1e-12 * np.abs(columns).max()] = 0.0  # round-off where nothing depends
        in_gap = np.zeros(size, dtype=bool)
        in_gap[coords] = True
        model = model.tocoo()
        keep = ~(in_gap[model.row] | in_gap[model.col])
        select = scipy.sparse.csr_matrix((np.ones(len(coords)), (coords, np.arange(len(coords)))),
                                         shape=(size, len(coords)))
        C = scipy.sparse.csr_matrix(columns)
        gap_block = scipy.sparse.csr_matrix(0.5 * (columns[coords] + columns[coords].T))
        # C E^T puts the columns in place, E C^T the rows; the gap block, counted twice, is kept once (symmetric)
        return (scipy.sparse.csr_matrix((model.data[keep], (model.row[keep], model.col[keep])), shape=(size, size))
                + C @ select.T + select @ C.T - select @ gap_block @ select.T).tocsr()


def trivial_modes(structure: Structure, frozen=None) -> np.ndarray:
    """Orthonormal zero modes (n·d, t) of a structure's energy: a translation per axis and a rotation per
    plane of two non-periodic axes; none with frozen atoms (they pin the sample)."""
    if frozen is not None and np.any(frozen):
        return np.zeros((structure.n_atoms * structure.dim, 0))
    n, d = structure.n_atoms, structure.dim
    x = structure.positions - structure.positions.mean(axis=0)
    modes = []
    for a in range(d):
        t = np.zeros((n, d))
        t[:, a] = 1.0
        modes.append(t.ravel())
    open_axes = [a for a in range(d) if not structure.box.pbc[a]]
    for k, a in enumerate(open_axes):
        for b in open_axes[k + 1:]:
            r = np.zeros((n, d))
            r[:, a], r[:, b] = -x[:, b], x[:, a]
            modes.append(r.ravel())
    q, _ = np.linalg.qr(np.stack(modes, 1))
    return q


def lowest_modes(potential: Potential, structure: Structure, k: int = 1, frozen=None,
                 tol: float = 1e-5, max_iterations: int = 300, seed: int = 0) -> Modes:
    """The ``k`` lowest non-trivial eigenvalues of the position Hessian of ``structure`` (fixed cell),
    eV/Å², to a residual ``tol`` (eV/Å²). ``frozen``: per-atom booleans (held atoms)."""
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    hess = _Hessian(potential, structure, frozen)
    n, d = hess.n, hess.d
    keep = np.repeat(hess.free, d)
    size = int(keep.sum())
    Y = trivial_modes(structure, frozen)[keep]
    if size - Y.shape[1] < 3 * k + 2:
        raise InputError(f"{structure.n_atoms} atoms ({size} free coordinates) are too few for {k} modes")

    def full(V):
        out = np.zeros((n * d, V.shape[1]))
        out[keep] = V
        return out

    def product(V):
        V = np.asarray(V).reshape(size, -1)
        return hess.matmat(full(V))[keep]

    operator = scipy.sparse.linalg.LinearOperator((size, size), matvec=product, matmat=product, dtype=np.float64)
    if size < 5 * (k + 2):  # too small for LOBPCG's block: the whole matrix, diagonalised
        Q = np.linalg.svd(np.eye(size) - Y @ Y.T)[0][:, : size - Y.shape[1]]
        H = product(Q)
        values, vectors = np.linalg.eigh(0.5 * (Q.T @ H + H.T @ Q))
        vectors = Q @ vectors
    else:
        X, M = _start(hess, keep, Y, k, np.random.default_rng(seed))
        with warnings.catch_warnings():  # non-convergence is reported as the residual
            warnings.simplefilter("ignore", UserWarning)
            values, vectors = scipy.sparse.linalg.lobpcg(operator, X, M=M, Y=Y if Y.shape[1] else None, tol=tol,
                                                         maxiter=max_iterations, largest=False)
    order = np.argsort(values)[:k]
    values, vectors = values[order], vectors[:, order]
    residual = float(np.abs(operator.matmat(vectors) - vectors * values).max()) if len(values) else np.inf
    if not np.all(np.isfinite(values)):
        raise InputError("the Hessian of this structure has non-finite entries (overlapping atoms?)")
    modes = np.stack([full(vectors[:, [c]])[:, 0].reshape(n, d) for c in range(len(values))])
    return Modes(values, modes, Y.shape[1], residual, hess.products)


def _start(hess: _Hessian, keep, Y, k, rng):
    """Start block X (free coordinates, m ≥ k columns) and preconditioner M for LOBPCG: the lowest
    modes of the exact sparse Hessian and its shifted inverse (or, where it is indefinite, that of the
    potential's clipped blocks), or random vectors and none."""
    m = k + 2
    if not hess.potential.can("hessian"):
        return rng.standard_normal((int(keep.sum()), m)), None
    H = hess.exact()[keep][:, keep].tocsc()
    shift, factor = _shifted_factor(H)
    if factor is None:
        factor = _shifted_factor(hess.sparse(clip=True)[keep][:, keep].tocsc())[1]

    def solve(V):  # kept orthogonal to the trivial modes, along which (H + shift)^-1 is 1 / shift
        out = factor.solve(np.ascontiguousarray(V))
        return out - Y @ (Y.T @ out) if Y.shape[1] else out

    M = scipy.sparse.linalg.LinearOperator(H.shape, matvec=solve, matmat=solve, dtype=np.float64)
    X = rng.standard_normal((H.shape[0], m + Y.shape[1]))
    try:  # shift-invert Lanczos on the exact Hessian, trivial modes included, then projected out
        _, X = scipy.sparse.linalg.eigsh(H, k=m + Y.shape[1], sigma=-shift, which="LM", v0=X[:, 0], tol=1e-8)
    except (scipy.sparse.linalg.ArpackNoConvergence, RuntimeError):
        pass
    if Y.shape[1]:
        X = X - Y @ (Y.T @ X)
    norms = np.linalg.norm(X, axis=0)
    X = X[:, np.argsort(-norms)[:m]]
    return X, M


def _shifted_factor(H):
    """(shift, LU factor of H + shift) with a small shift (eV/Å²) that makes a positive semidefinite H
    definite; the factor is None where H + shift is indefinite."""
    shift = 1e-3 * float(np.abs(H.diagonal()).mean())
    factor = scipy.sparse.linalg.splu((H + shift * scipy.sparse.identity(H.shape[0], format="csc")).tocsc(),
                                      permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                      options={"SymmetricMode": True})
    return shift, factor if np.all(factor.U.diagonal() > 0) else None


def saddle_node_fit(strain, eigenvalue, critical: float) -> dict:
    """Fit λ_min = A (γ_c − γ)^β through states below ``critical`` (γ_c); returns ``exponent`` β,
    ``amplitude`` A (eV/Å²), and the points used. A saddle-node bifurcation gives β = 1/2."""
    gap = critical - np.asarray(strain, dtype=float)
    lam = np.asarray(eigenvalue, dtype=float)
    use = (gap > 0) & (lam > 0)
    if use.sum() < 2:
        return {"exponent": None, "amplitude": None, "points": int(use.sum())}
    beta, log_a = np.polyfit(np.log(gap[use]), np.log(lam[use]), 1)
    return {"exponent": float(beta), "amplitude": float(np.exp(log_a)), "points": int(use.sum())}
