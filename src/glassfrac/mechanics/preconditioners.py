"""Sparse model Hessians P that precondition L-BFGS (``Relaxer(precondition=...)``).

With ``precondition`` L-BFGS starts each line from a sparse model Hessian of the sample: springs
along the bonds (``"bonds"``, :class:`BondPreconditioner`, any potential) or the pair
potential's own Hessian (``"hessian"``: the short-range pair Hessian of a pair potential,
:class:`PairHessianPreconditioner`, or the Hessians of a many-body potential's terms,
:class:`TermHessianPreconditioner`); ``"auto"`` takes the second where the potential allows
it (:func:`preconditioner`). They cut the iterations of AQS steps three- to sevenfold (bonds)
and two- to fivefold more (hessian: 10^4-atom Yukawa monolayer in shear, 3456-atom Watanabe
bilayer in tension). The sparse factor is solved once per accepted point: P^-1 g is stored and
P^-1 y follows as a difference (:class:`~glassfrac.mechanics.linesearch.LineSearchMethod`),
which halves the cost of a preconditioned iteration on large samples.
"""

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from glassfrac.core.errors import InputError
from glassfrac.potentials import Potential
from glassfrac.potentials.base import clip_blocks, expand_pair_blocks, hessian_entries

PRECONDITIONERS = (None, "bonds", "hessian", "auto")


class SparsePreconditioner(ABC):
    """A sparse model Hessian P for L-BFGS, assembled from the blocks of terms over a few atoms.

    P = Σ_terms (their d × d blocks between their atoms) + ``stabiliser`` I; the subclasses
    give the terms. The sparse LU factor is kept between runs on the same batch and rebuilt
    only when the relaxer's Verlet list is rebuilt, so a loading path pays for it rarely (within
    a run, at most every :data:`~glassfrac.mechanics.relax.PRECON_REFRESH` evaluations). Frozen
    atoms are decoupled (their rows and columns are dropped, their diagonal is 1); cell
    coordinates get the mean diagonal of the atoms. The optimiser scales P (its gamma).
    """

    def __init__(self, stabiliser: float):
        self.stabiliser = float(stabiliser)
        self._key = None
        self.builds = 0

    @abstractmethod
    def _terms(self, obj, pairs) -> list:
        """[(atoms (T, m), blocks (T, m, d, m, d)), ...] as numpy arrays (eV/Å² up to a scale)."""

    def prepare(self, obj) -> None:
        """Build P for the objective's batch unless the one kept still fits it (the objective
        has just been evaluated, so its Verlet list is current unless it is a new one)."""
        batch, verlet = obj.batch, obj.verlet
        if (id(batch), batch.n_atoms, id(verlet), verlet.builds) == self._key:
            return
        pairs = verlet.update(batch)
        self._factorise(obj, self._terms(obj, pairs))
        self.n_atoms = batch.n_atoms
        self._key = (id(batch), batch.n_atoms, id(verlet), verlet.builds)
        self.builds += 1

    def _factorise(self, obj, terms) -> None:
        n, d = obj.batch.n_atoms, obj.batch.dim
        free = ~obj.batch.frozen.cpu().numpy()
        r, c, v = hessian_entries(terms, d)
        keep = free[r // d] & free[c // d]
        diagonal = np.arange(n * d)
        rows, cols = np.concatenate([diagonal, r[keep]]), np.concatenate([diagonal, c[keep]])
        vals = np.concatenate([np.repeat(np.where(free, self.stabiliser, 1.0), d), v[keep]])
        self.matrix = scipy.sparse.csc_matrix((vals, (rows, cols)), shape=(n * d, n * d))
        self.factor = scipy.sparse.linalg.splu(self.matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                               options={"SymmetricMode": True})
        self.cell_diagonal = float(self.matrix.diagonal().reshape(n, d)[free].mean()) if free.any() else 1.0

    def forget(self) -> None:
        """Build P afresh at the next :meth:`prepare`."""
        self._key = None

    def positive_definite(self) -> bool:
        """Whether P is positive definite: every pivot of its symmetric factorisation is > 0."""
        return bool(np.all(self.factor.U.diagonal() > 0))

    def _apply(self, q, atoms, cell_scale):
        n = self.n_atoms
        out = torch.empty_like(q)
        flat = np.ascontiguousarray(q[:n].detach().cpu().numpy()).ravel()
        out[:n] = torch.from_numpy(atoms(flat)).to(q).view(n, -1)
        out[n:] = q[n:] * cell_scale
        return out

    def solve(self, q):
        """P^-1 q for coordinates ``q`` (M, d): atoms, then cell rows."""
        return self._apply(q, self.factor.solve, 1.0 / self.cell_diagonal)

    def dot(self, q):
        """P q."""
        return self._apply(q, self.matrix.dot, self.cell_diagonal)


class _PairPreconditioner(SparsePreconditioner):
    """P from 2 × 2 (or 3 × 3) blocks k_ij of the pairs closer than ``reach`` · r_nn (r_nn: the
    median nearest-neighbour distance of the batch): terms (e_i − e_j)(e_i − e_j)^T ⊗ k_ij."""

    def __init__(self, reach: float, stabiliser: float):
        super().__init__(stabiliser)
        self.reach = float(reach)

    @abstractmethod
    def _blocks(self, obj, i, j, vectors, r, r_nn) -> np.ndarray:
        """Blocks k_ij (pairs, d, d) of the pairs given (numpy arrays, Å)."""

    def _terms(self, obj, pairs):
        vectors = pairs.vectors(obj.batch).detach().cpu().numpy()
        r = np.linalg.norm(vectors, axis=1)
        i, j = pairs.i.cpu().numpy(), pairs.j.cpu().numpy()
        nearest = np.full(obj.batch.n_atoms, np.inf)
        np.minimum.at(nearest, i, r)
        np.minimum.at(nearest, j, r)
        finite = np.isfinite(nearest)
        r_nn = float(np.median(nearest[finite])) if finite.any() else 1.0
        near = r < self.reach * r_nn
        i, j, r, vectors = i[near], j[near], r[near], vectors[near]
        k = self._blocks(obj, i, j, vectors, r, r_nn)
        return [(np.stack([i, j], 1), expand_pair_blocks(k))]


class BondPreconditioner(_PairPreconditioner):
    """Springs along the short pairs: k_ij = w_ij u u^T, w = exp(−``a`` (r / r_nn − 1)).

    The "Exp" form of Packwood et al. (J. Chem. Phys. 144, 164109, 2016) with springs that
    resist stretching only, as the bonds of a network glass do; works with any potential. It
    captures the long-wavelength elastic modes that make plain L-BFGS slow on large samples,
    while the history captures the rest. Iterations per AQS step, to 1e-8 eV/Å: pure shear of
    a 1350-atom Yukawa monolayer (1e-4 steps) 43 instead of 150; tension of the 3456-atom FC22
    bilayer (0.005 steps) 65 instead of 440; the isotropic Exp form gave 43 and 200, a
    stabiliser of 0.1 or 0.001 more.
    """

    def __init__(self, a: float = 3.0, reach: float = 2.0, stabiliser: float = 0.01):
        super().__init__(reach, stabiliser)
        self.a = float(a)

    def _blocks(self, obj, i, j, vectors, r, r_nn):
        u = vectors / r[:, None]
        return np.exp(-self.a * (r / r_nn - 1.0))[:, None, None] * u[:, :, None] * u[:, None, :]


class PairHessianPreconditioner(_PairPreconditioner):
    """The pair potential's own Hessian blocks over the short pairs, made positive semidefinite.

    The exact pair block is V'' u u^T + (V'/r)(I − u u^T); here k_ij = max(V'', 0) u u^T +
    max(V'/r, 0)(I − u u^T) (eV/Å²) for pairs closer than ``reach`` · r_nn, from
    ``potential.pair_derivatives`` (the Yukawa potential has it). The exact Hessian cut at a
    short reach is indefinite in a prestressed glass (on a 10^4-atom Yukawa monolayer cut at
    3.5 Å: 145 negative pivots; the compressed pairs' negative transverse terms are balanced
    only by the long tail), and pairs beyond their inflection point have V'' < 0 far from a
    minimum, so negative parts are dropped. Iterations per pure shear step (1e-4, to 1e-8
    eV/Å) of that monolayer: about 25, against 135–145 with :class:`BondPreconditioner`.
    """

    def __init__(self, reach: float = 2.2, stabiliser: float = 0.01):
        super().__init__(reach, stabiliser)

    def _blocks(self, obj, i, j, vectors, r, r_nn):
        species = obj.batch.species.cpu().numpy()
        code = torch.as_tensor(species[i] * len(obj.potential.species) + species[j])
        dv, d2v = (x.numpy() for x in obj.potential.pair_derivatives(torch.as_tensor(r), code))
        u = vectors / r[:, None]
        d = vectors.shape[1]
        uu = u[:, :, None] * u[:, None, :]
        return (np.maximum(d2v, 0.0)[:, None, None] * uu
                + np.maximum(dv / r, 0.0)[:, None, None] * (np.eye(d) - uu))


class TermHessianPreconditioner(SparsePreconditioner):
    """The Hessians of a many-body potential's terms (``potential.term_hessians``, the
    Watanabe potential has it): pair terms made positive semidefinite (eigenvalues clipped
    at 0), many-body terms as they are, unless P is then indefinite (a pivot ≤ 0), in which
    case they are clipped too.

    The triplet terms' own negative curvatures carry the near-cancellations that make a
    strained or damaged network soft; clipping them loses that. On the 3456-atom bilayer
    (affine 0.001 strain, to 1e-8 eV/Å): 13 iterations as relaxed, 222 at strain 0.16 after
    its first bond breaks, against 53 and 483–521 with :class:`BondPreconditioner` and 30 and
    344 with every term clipped. Keeping the pair terms' negative parts makes P indefinite.
    A build costs ~2 s there (~80 evaluations).
    """

    def __init__(self, stabiliser: float = 0.001):
        super().__init__(stabiliser)
        self.clipped_builds = 0

    def _terms(self, obj, pairs):
        terms = [(atoms.cpu().numpy(), blocks.detach().cpu().numpy())
                 for atoms, blocks in obj.potential.term_hessians(obj.batch, pairs)]
        return [(atoms, clip_blocks(blocks) if atoms.shape[1] == 2 else blocks) for atoms, blocks in terms]

    def _factorise(self, obj, terms):
        super()._factorise(obj, terms)
        if not self.positive_definite():  # the pair terms are clipped already
            super()._factorise(obj, [(atoms, blocks if atoms.shape[1] == 2 else clip_blocks(blocks))
                                     for atoms, blocks in terms])
            self.clipped_builds += 1


def preconditioner(name: str | None, potential: Potential) -> SparsePreconditioner | None:
    """The preconditioner called ``name``: None, "bonds", "hessian" (pair potentials with
    ``pair_derivatives``, many-body ones with ``term_hessians``) or "auto" ("hessian" where
    the potential allows it, else "bonds")."""
    if name not in PRECONDITIONERS:
        raise InputError(f"unknown preconditioner {name!r}; choose one of {list(PRECONDITIONERS)}")
    pairwise, many_body = potential.can("pair_derivatives"), potential.can("term_hessians")
    if name == "hessian" and not (pairwise or many_body):
        raise InputError(f"preconditioner 'hessian' needs a potential with pair_derivatives or term_hessians, "
                         f"not {potential.name!r}; use 'bonds'")
    if name == "hessian" or (name == "auto" and (pairwise or many_body)):
        return PairHessianPreconditioner() if pairwise else TermHessianPreconditioner()
    return None if name is None else BondPreconditioner()
