"""Batched energy minimisation: FIRE, L-BFGS and nonlinear CG with per-system convergence.

:class:`Relaxer` minimises every system of a :class:`~glassfrac.potentials.Batch` in place.
Each system has its own optimiser state (FIRE time step and mixing; L-BFGS history or CG
direction and its own line search) and stops on its own when its largest force on a free
atom is at most ``fmax`` (eV/Å) and, with cell relaxation, its controlled stress components
are within ``stress_tol`` of their targets. Converged systems stop costing work: they stay
in place while the rest carries on, and when the atoms still moving fall below
``compact`` × the atoms evaluated, the batch is rebuilt from the unfinished systems only
(pairs are carried over, not rebuilt).

Frozen atoms (``batch.frozen``) never move and their forces do not count. With cell
relaxation the cell follows a deformation gradient F relative to the cell at the start of
the run (cell rows H = H0 F^T, atoms x = u F^T with u the optimiser's coordinates; frozen
atoms keep u, so they follow the cell affinely). The cell coordinates are s·(F − I), with
s = sqrt(n) (measure / n)^(1/k) Å (n atoms, k = 2 for sheets, 3 for bulk), so that they are
about as stiff as an atom; their force is (W + V σ_target) F^-T / s, with W the virial (eV)
and V the measure (area of sheets, volume of bulk). Only the upper triangle of F is free
(tilts as in LAMMPS: the first cell vector keeps its direction), and never along a
non-periodic axis. Stresses are tension positive, in N/m for sheets and GPa for bulk
(``batch.is_sheet()``).

The line searches accept a step on the strong Wolfe conditions; where energy differences are
below the round-off of the total energy (about 1e-12 relative), they are estimated from the
forces (trapezoid rule along the line), so that both methods reach 1e-8 eV/Å. L-BFGS needs
the fewest force evaluations to 1e-8 eV/Å on the glasses here (perturbed by 0.05 Å: Yukawa
monolayer of 1350 atoms L-BFGS 641, FIRE 843, CG 1300; Watanabe bilayer L-BFGS 1681, FIRE
2026; probing windows, median L-BFGS 127, FIRE 216), so it is the default. With
``precondition`` L-BFGS starts each line from a sparse model Hessian of the sample: springs
along the bonds (``"bonds"``, :class:`BondPreconditioner`, any potential) or the pair
potential's own Hessian (``"hessian"``: the short-range pair Hessian of a pair potential,
:class:`PairHessianPreconditioner`, or the Hessians of a many-body potential's terms,
:class:`TermHessianPreconditioner`); ``"auto"`` takes the second where the potential allows
it. They cut the iterations of AQS steps three- to sevenfold (bonds) and two- to fivefold more
(hessian: 10^4-atom Yukawa monolayer in shear, 3456-atom Watanabe bilayer in tension).
The sparse factor is solved once per accepted point: P^-1 g is stored and P^-1 y follows as a
difference, which halves the cost of a preconditioned iteration on large samples.

Usage::

    relaxer = Relaxer(potential, method="lbfgs", fmax=1e-8)
    stats = relaxer.run(batch)                           # positions relaxed in place
    stats = relaxer.run(batch, cell_mask=[False, True])  # and the cell, to σ_yy = 0
    stats.converged, stats.max_force, stats.energy       # per system
    [(structure, info), ...] = relax(potential, structures, cell=True)

A :class:`Relaxer` keeps the Verlet list of the last batch it ran, so repeated runs on the
same batch (warm starts, affine steps of a loading path) rebuild pairs only when needed.
"""

import math
import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import torch

from glassfrac.errors import ConvergenceError
from glassfrac.potentials import (
    EV_PER_A2_IN_N_PER_M,
    EV_PER_A3_IN_GPA,
    Batch,
    Potential,
    VerletList,
    stress_from_virial,
)

METHODS = ("fire", "lbfgs", "cg")
PRECONDITIONERS = (None, "bonds", "hessian", "auto")
PRECON_REFRESH = 200
"""Evaluations after which a run rebuilds its preconditioner once the Verlet list has been
rebuilt (atoms moved by half the skin: in an avalanche, bonds broke and P's terms mislead). A
3456-atom bilayer's term-Hessian P costs ~2 s (~80 evaluations); an avalanche relaxation of it
took 1065 iterations with the P of its start, 470 with rebuilds after 200 evaluations. A P
built mid-run is not kept for the next run (it describes a passing geometry)."""


@dataclass
class FireParameters:
    """FIRE settings (Bitzek et al., PRL 97, 170201, 2006; with the FIRE 2.0 corrections of
    Guénolé et al., Comput. Mater. Sci. 175, 109584, 2020: semi-implicit Euler, a delay of
    ``n_min`` steps at the start, half a step back on uphill motion).

    Atoms have unit mass, so a time step is in Å/√eV (x += dt v, v += dt F); LAMMPS with
    every mass m amu and time step t ps is the same dynamics for dt = t √(m / 1.0364e-4).

    ``dt_stability`` (our addition; None turns it off): the time step is also kept below
    ``dt_stability`` × 2/√κ, the stability limit of the integrator, with κ (eV/Å^2) the
    largest curvature met along a step (the Rayleigh quotient −ΔF·Δx/|Δx|² of consecutive
    steps). Above that limit the stiffest vibrations grow until FIRE stops and restarts, over
    and over: on the Yukawa monolayer (κ ≈ 4.5, limit 0.94) dt_max 1.0 took 9000 evaluations
    to 1e-8 eV/Å and dt_max 0.5 took 770; the Watanabe bilayer (κ ≈ 107, limit 0.19) needs
    a five times smaller step. With the cap, one setting serves both.
    """

    dt_start: float = 0.1
    dt_max: float = 1.0
    dt_min: float = 0.002
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99
    half_step_back: bool = True
    dt_stability: float | None = 0.6


@dataclass
class RelaxStats:
    """Outcome of one :meth:`Relaxer.run`, one entry per system of the batch.

    ``energy`` eV and ``max_force`` eV/Å (largest |F| on a free atom) at the returned
    positions; ``iterations``: accepted steps (FIRE: every step); ``evaluations``: force
    evaluations; ``stress`` (tension positive, N/m for sheets, GPa for bulk, unit per system in
    ``stress_unit``; None if not asked for); ``stress_residual``: largest |σ − σ_target| over
    the relaxed cell components (0 without cell relaxation); ``seconds``: wall time of the run;
    ``compactions``: times the working batch was rebuilt from unfinished systems;
    ``neighbor_builds``: systems whose pairs were (re)built; ``notes``: what else to know;
    ``stopped``: systems stopped by ``stop_beyond`` (all False without it).
    """

    energy: np.ndarray
    max_force: np.ndarray
    iterations: np.ndarray
    evaluations: np.ndarray
    converged: np.ndarray
    stress_residual: np.ndarray
    stress: np.ndarray | None
    stress_unit: list
    method: str
    seconds: float
    fmax: float
    stress_tol: float
    compactions: int = 0
    neighbor_builds: int = 0
    notes: list = field(default_factory=list)
    stopped: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.energy)

    def system(self, k: int) -> dict:
        """Plain-Python summary of system ``k``."""
        out = {
            "energy": float(self.energy[k]),
            "max_force": float(self.max_force[k]),
            "iterations": int(self.iterations[k]),
            "evaluations": int(self.evaluations[k]),
            "converged": bool(self.converged[k]),
            "stress_residual": float(self.stress_residual[k]),
            "method": self.method,
            "fmax": self.fmax,
        }
        if self.stress is not None:
            out["stress"] = self.stress[k].tolist()
            out["stress_unit"] = self.stress_unit[k]
        return out


class _Segments:
    """Per-system reductions and broadcasts over the rows of (M, d) coordinate arrays.

    Sums use a sparse (B, M d) indicator matrix (one pass, much faster on CPU than
    ``index_add_``); row masks are expanded to full (M, d) tensors (``torch.where`` with a
    broadcast (M, 1) mask is slow). One system takes plain dense paths.
    """

    def __init__(self, seg, n, d):
        self.seg, self.n, self.d, self.single = seg, n, d, n == 1
        self.flat = seg.repeat_interleave(d)
        self.ones = torch.ones(d, dtype=torch.float64, device=seg.device)
        self._matrix = None

    def dot(self, a, b):
        """(B,) sums of a·b over each system's rows."""
        if self.single:
            return torch.dot(a.reshape(-1), b.reshape(-1)).reshape(1)
        if self._matrix is None:
            counts = torch.bincount(self.flat, minlength=self.n)
            crow = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
            columns = torch.argsort(self.flat, stable=True)
            with warnings.catch_warnings():  # "sparse CSR support is in beta": mv is stable
                warnings.simplefilter("ignore", UserWarning)
                self._matrix = torch.sparse_csr_tensor(crow, columns, torch.ones_like(self.ones[:1]).expand(
                    len(columns)).contiguous(), (self.n, len(columns)), check_invariants=False)
        return torch.mv(self._matrix, (a * b).reshape(-1))

    def norms(self, a):
        """(M,) Euclidean norms of the rows of ``a``."""
        return torch.mv(a * a, self.ones).sqrt_()

    def max(self, values):
        """(B,) largest of per-row ``values`` (M,) ≥ 0 in each system (0 for none)."""
        if self.single:
            return values.max().reshape(1).clamp(min=0) if len(values) else values.new_zeros(1)
        out = torch.zeros(self.n, dtype=values.dtype, device=values.device)
        return out.scatter_reduce_(0, self.seg, values, reduce="amax")

    def rows(self, values):
        """Per-system ``values`` (B,) spread over the rows, to scale (M, d) arrays with."""
        if self.single:
            return values.reshape(1, 1)
        return values.index_select(0, self.flat).view(-1, self.d)

    def where(self, cond, a, b):
        """Rows of ``a`` for systems where ``cond`` (B,) holds, else rows of ``b``."""
        if self.single:
            return a if bool(cond) else b
        return torch.where(cond.index_select(0, self.flat).view(-1, self.d), a, b)


@dataclass
class _Eval:
    """One evaluation of the working set: merit = energy + work of the target stress (eV)."""

    energy: torch.Tensor
    merit: torch.Tensor
    grad: torch.Tensor
    fmax: torch.Tensor
    sres: torch.Tensor
    virial: torch.Tensor | None
    converged: torch.Tensor

    def select(self, systems, rows):
        return _Eval(self.energy[systems], self.merit[systems], self.grad[rows], self.fmax[systems],
                     self.sres[systems], None if self.virial is None else self.virial[systems],
                     self.converged[systems])


class _Objective:
    """The function a minimiser sees: coordinates X (rows: atoms, then d rows per system of
    cell coordinates when the cell relaxes) and the masked gradient of the merit function."""

    def __init__(self, potential, batch, verlet, cell_mask, target, fmax, stress_tol):
        self.potential = potential
        self.batch = batch
        self.verlet = verlet
        self.fmax = fmax
        self.stress_tol = stress_tol
        n, d, b = batch.n_atoms, batch.dim, batch.n_systems
        self.n_systems = b
        free = (~batch.frozen).to(batch.positions.dtype)
        self.cell = cell_mask is not None
        self.atoms = _Segments(batch.system, b, 1)
        if not self.cell:
            self.mask = None if bool(free.all()) else free.unsqueeze(1).expand(n, d).contiguous()
            self.segs = _Segments(batch.system, b, d)
            return
        self.cell_mask = cell_mask
        self.mask = torch.cat([free.unsqueeze(1).expand(n, d), cell_mask.reshape(b * d, d).to(free.dtype)])
        self.segs = _Segments(torch.cat([batch.system, torch.arange(b, device=batch.device).repeat_interleave(d)]),
                              b, d)
        self.u = batch.positions.detach().clone()
        self.cells0 = batch.cells.detach().clone()
        sheet = batch.is_sheet()
        measure = batch.measure()
        counts = batch.counts.to(measure.dtype)
        k = torch.where(sheet, 2.0, 3.0) if d == 3 else torch.full_like(measure, 2.0)
        self.scale = counts.sqrt() * (measure / counts) ** (1.0 / k)
        self.factor = torch.where(sheet, EV_PER_A2_IN_N_PER_M, EV_PER_A3_IN_GPA).to(measure.dtype)
        self.target = target / self.factor[:, None, None]  # eV/Å^2 or eV/Å^3
        self.work = torch.zeros(b, dtype=measure.dtype, device=batch.device)
        self.last_f = None
        self.last_load = None

    def select(self, systems, batch, verlet):
        new = object.__new__(_Objective)
        new.__dict__.update(self.__dict__)
        new.batch, new.verlet, new.n_systems = batch, verlet, len(systems)
        atoms = self.batch.atoms_of(systems)
        d, b = batch.dim, len(systems)
        new.atoms = _Segments(batch.system, b, 1)
        if not self.cell:
            new.mask = None if self.mask is None else self.mask[atoms]
            new.segs = _Segments(batch.system, b, d)
            return new, atoms
        dev = batch.device
        cell_rows = self.batch.n_atoms + (systems[:, None] * d + torch.arange(d, device=dev)).reshape(-1)
        rows = torch.cat([atoms, cell_rows])
        new.mask = self.mask[rows]
        new.segs = _Segments(torch.cat([batch.system, torch.arange(b, device=dev).repeat_interleave(d)]), b, d)
        new.cell_mask, new.u, new.cells0 = self.cell_mask[systems], self.u[atoms], self.cells0[systems]
        new.scale, new.factor, new.target = self.scale[systems], self.factor[systems], self.target[systems]
        new.work = self.work[systems]
        new.last_f = None if self.last_f is None else self.last_f[systems]
        new.last_load = None if self.last_load is None else self.last_load[systems]
        return new, rows

    def start(self) -> torch.Tensor:
        x = self.batch.positions.detach().clone()
        if self.cell:
            x = torch.cat([x, x.new_zeros(self.n_systems * self.batch.dim, self.batch.dim)])
        return x

    def _deformation(self, x):
        b, d = self.n_systems, self.batch.dim
        return torch.eye(d, dtype=x.dtype, device=x.device) + x[-b * d:].reshape(b, d, d) / self.scale[:, None, None]

    def positions(self, x, f=None):
        """Atom positions (N, d) at coordinates ``x``, Å (``f``: their deformation, if known)."""
        if not self.cell:
            return x
        f = self._deformation(x) if f is None else f
        return torch.einsum("nb,nab->na", x[:self.batch.n_atoms], f[self.batch.system])

    def apply(self, x):
        """Put coordinates ``x`` into the batch (positions, and cells when they relax)."""
        batch = self.batch
        if not self.cell:
            batch.positions.copy_(x)
            return None
        f = self._deformation(x)
        batch.positions.copy_(self.positions(x, f))
        batch.cells.copy_(torch.einsum("kib,kab->kia", self.cells0, f))
        return f

    def evaluate(self, x, virial=False) -> _Eval:
        batch = self.batch
        f = self.apply(x)
        res = self.potential.compute(batch, self.verlet.update(batch), virial=virial or self.cell)
        forces = res.forces.detach()
        norms = self.segs.norms(forces)
        fmax = self.atoms.max(norms if self.mask is None else norms * self.mask[:batch.n_atoms, 0])
        energy = res.energy.detach()
        virial_out = None if res.virial is None else res.virial.detach()
        if not self.cell:
            grad = -forces if self.mask is None else -forces * self.mask
            sres = torch.zeros_like(energy)
            merit = energy
        else:
            grad_atoms = -torch.einsum("na,nab->nb", forces, f[batch.system])
            measure = batch.measure()
            inv_t = torch.linalg.inv(f).transpose(1, 2)
            load = measure[:, None, None] * self.target @ inv_t  # V σ_target F^-T (eV)
            if self.last_f is not None:  # work of the target stress, trapezoid rule
                self.work = self.work - 0.5 * ((load + self.last_load) * (f - self.last_f)).sum(dim=(1, 2))
            self.last_f, self.last_load = f, load
            grad_cell = -(virial_out @ inv_t + load) / self.scale[:, None, None]
            grad = torch.cat([grad_atoms, grad_cell.reshape(-1, batch.dim)]) * self.mask
            stress = -virial_out / measure[:, None, None]
            diff = (stress - self.target).abs() * self.factor[:, None, None] * self.cell_mask
            sres = diff.flatten(1).amax(dim=1)
            merit = energy + self.work
        converged = (fmax <= self.fmax) & (sres <= self.stress_tol)
        return _Eval(energy, merit, grad, fmax, sres, virial_out, converged)


class SparsePreconditioner(ABC):
    """A sparse model Hessian P for L-BFGS, assembled from the blocks of terms over a few atoms.

    P = Σ_terms (their d × d blocks between their atoms) + ``stabiliser`` I; the subclasses
    give the terms. The sparse LU factor is kept between runs on the same batch and rebuilt
    only when the relaxer's Verlet list is rebuilt, so a loading path pays for it rarely (within
    a run, at most every :data:`PRECON_REFRESH` evaluations). Frozen atoms are decoupled (their
    rows and columns are dropped, their diagonal is 1); cell coordinates get the mean diagonal
    of the atoms. The optimiser scales P (its gamma).
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
        import scipy.sparse
        import scipy.sparse.linalg

        n, d = obj.batch.n_atoms, obj.batch.dim
        free = ~obj.batch.frozen.cpu().numpy()
        rows, cols, vals = [np.arange(n * d)], [np.arange(n * d)], [np.repeat(np.where(free, self.stabiliser, 1.0), d)]
        for atoms, blocks in terms:
            index = atoms[:, :, None] * d + np.arange(d)  # (T, m, d)
            r = np.broadcast_to(index[:, :, :, None, None], blocks.shape)
            c = np.broadcast_to(index[:, None, None, :, :], blocks.shape)
            keep = free[r // d] & free[c // d]
            rows.append(r[keep]), cols.append(c[keep]), vals.append(blocks[keep])
        self.matrix = scipy.sparse.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                              shape=(n * d, n * d))
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
        blocks = np.stack([np.stack([k, -k], 1), np.stack([-k, k], 1)], 1).transpose(0, 1, 3, 2, 4)
        return [(np.stack([i, j], 1), blocks)]


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

    @staticmethod
    def _clip(blocks):
        t, m, d = blocks.shape[:3]
        w, v = np.linalg.eigh(blocks.reshape(t, m * d, m * d))
        return ((v * np.maximum(w, 0.0)[:, None, :]) @ v.transpose(0, 2, 1)).reshape(blocks.shape)

    def _terms(self, obj, pairs):
        terms = [(atoms.cpu().numpy(), blocks.detach().cpu().numpy())
                 for atoms, blocks in obj.potential.term_hessians(obj.batch, pairs)]
        return [(atoms, self._clip(blocks) if atoms.shape[1] == 2 else blocks) for atoms, blocks in terms]

    def _factorise(self, obj, terms):
        super()._factorise(obj, terms)
        if not self.positive_definite():  # the pair terms are clipped already
            super()._factorise(obj, [(atoms, blocks if atoms.shape[1] == 2 else self._clip(blocks))
                                     for atoms, blocks in terms])
            self.clipped_builds += 1


def preconditioner(name: str | None, potential: Potential) -> SparsePreconditioner | None:
    """The preconditioner called ``name``: None, "bonds", "hessian" (pair potentials with
    ``pair_derivatives``, many-body ones with ``term_hessians``) or "auto" ("hessian" where
    the potential allows it, else "bonds")."""
    if name not in PRECONDITIONERS:
        raise ValueError(f"unknown preconditioner {name!r}; choose one of {list(PRECONDITIONERS)}")
    pairwise, many_body = hasattr(potential, "pair_derivatives"), hasattr(potential, "term_hessians")
    if name == "hessian" and not (pairwise or many_body):
        raise ValueError(f"preconditioner 'hessian' needs a potential with pair_derivatives or term_hessians, "
                         f"not {potential.name!r}; use 'bonds'")
    if name == "hessian" or (name == "auto" and (pairwise or many_body)):
        return PairHessianPreconditioner() if pairwise else TermHessianPreconditioner()
    return None if name is None else BondPreconditioner()


class _Fire:
    """Per-system FIRE (see :class:`FireParameters`)."""

    def __init__(self, params: FireParameters, max_step: float):
        self.p = params
        self.max_step = max_step

    def start(self, obj, x, ev):
        b = obj.n_systems
        self.v = torch.zeros_like(x)
        self.dt = torch.full((b,), self.p.dt_start, dtype=x.dtype, device=x.device)
        self.alpha = torch.full_like(self.dt, self.p.alpha_start)
        self.dt_used = torch.zeros_like(self.dt)
        self.curvature = torch.zeros_like(self.dt)
        self.steps = torch.zeros(b, dtype=torch.long, device=x.device)
        self.last_negative = torch.zeros_like(self.steps)
        self.failed = ~torch.isfinite(ev.merit) | ~torch.isfinite(ev.fmax)
        self.x_eval, self.g_eval = x, ev.grad

    def select(self, systems, rows):
        for name in ("v", "x_eval", "g_eval"):
            setattr(self, name, getattr(self, name)[rows])
        for name in ("dt", "dt_used", "alpha", "curvature", "steps", "last_negative", "failed"):
            setattr(self, name, getattr(self, name)[systems])

    def propose(self, obj, x, ev, active):
        p, segs = self.p, obj.segs
        force = -ev.grad
        power = segs.dot(force, self.v)
        v_norm = segs.dot(self.v, self.v).sqrt()
        f_norm = segs.dot(force, force).sqrt()
        dt_max = torch.full_like(self.dt, p.dt_max)
        if p.dt_stability is not None:  # stay below the stability limit 2 / sqrt(curvature)
            limit = 2.0 * p.dt_stability / self.curvature.clamp(min=1e-300).sqrt()
            dt_max = torch.where(self.curvature > 0, torch.minimum(dt_max, limit), dt_max)
        uphill = (power <= 0) & active
        downhill = (power > 0) & active
        grow = downhill & (self.steps - self.last_negative > p.n_min)
        self.dt = torch.minimum(torch.where(grow, self.dt * p.f_inc, self.dt), dt_max)
        self.alpha = torch.where(grow, self.alpha * p.f_alpha, self.alpha)
        # uphill (or at rest): stop; after the start-up delay also shrink dt and reset alpha
        self.last_negative = torch.where(uphill, self.steps, self.last_negative)
        reset = uphill & (self.steps >= p.n_min)
        self.alpha = torch.where(reset, p.alpha_start, self.alpha)
        self.dt = torch.where(reset, torch.clamp(self.dt * p.f_dec, min=p.dt_min), self.dt)
        keep = segs.rows((~uphill).to(x.dtype))
        if p.half_step_back:  # undo half of the last move
            x = x - segs.rows(0.5 * self.dt_used * uphill) * self.v
        v = self.v * keep + segs.rows(self.dt) * force
        mix1 = torch.where(downhill, 1.0 - self.alpha, 1.0)
        mix2 = torch.where(downhill & (f_norm > 0), self.alpha * v_norm / f_norm.clamp(min=1e-300), 0.0)
        v = segs.where(active, v * segs.rows(mix1) + force * segs.rows(mix2), torch.zeros_like(v))
        longest = self.dt * segs.max(segs.norms(v))
        shrink = torch.where(longest > self.max_step, self.max_step / longest.clamp(min=1e-300), 1.0)
        self.dt_used = shrink * self.dt * active
        self.v = v
        self.steps = self.steps + active.long()
        return segs.where(active, x + segs.rows(self.dt_used) * v, x)

    def observe(self, obj, x, ev, active):
        segs = obj.segs
        broken = active & ~torch.isfinite(ev.merit)
        # curvature along the step from consecutive forces (a Rayleigh quotient of the Hessian),
        # from steps long enough (> 1e-8 Å) for force round-off not to matter
        dx = x - self.x_eval
        length2 = segs.dot(dx, dx)
        quotient = segs.dot(ev.grad - self.g_eval, dx) / length2.clamp(min=1e-300)
        seen = active & ~broken & (length2 > 1e-16)
        self.curvature = torch.where(seen, torch.maximum(self.curvature, quotient), self.curvature)
        if broken.any():  # stop the system at its last finite state
            self.failed |= broken
            self.x_eval = segs.where(broken, self.x_eval, x)
            self.g_eval = segs.where(broken, self.g_eval, ev.grad)
        else:
            self.x_eval, self.g_eval = x, ev.grad
        return active & ~broken

    def accepted(self, obj, x):
        """Coordinates to keep: the current ones, or the last finite ones of failed systems."""
        if self.failed.any():
            return obj.segs.where(self.failed, self.x_eval, x)
        return x


class _LineSearchMethod:
    """L-BFGS or Polak–Ribière+ CG, each system with its own strong-Wolfe line search.

    L-BFGS keeps its pairs in one ring shared by all systems (so the two-loop recursion reads
    slices): a slot written while a system is still searching its line holds no pair for it.
    """

    c1 = 1e-4
    max_trials = 30
    noise = 1e-12

    def __init__(self, method: str, max_step: float, memory: int, curvature: float, precon=None):
        self.precon = precon
        self.method = method
        self.max_step = max_step
        self.memory = memory
        self.curvature = curvature
        self.c2 = 0.9 if method == "lbfgs" else 0.1

    # -- state -------------------------------------------------------------------------
    def start(self, obj, x, ev):
        b, dev = obj.n_systems, x.device
        self.mask = obj.mask
        if self.precon is not None:
            self.precon.prepare(obj)
        self.x0, self.g0, self.e0 = x.clone(), ev.grad.clone(), ev.merit.clone()
        self.d = torch.zeros_like(x)
        self.g_lo = torch.zeros_like(x)
        zeros = torch.zeros_like(self.e0)
        self.dg0, self.alpha, self.alpha_max = zeros.clone(), zeros.clone(), zeros.clone()
        self.lo, self.e_lo, self.dg_lo = zeros.clone(), zeros.clone(), zeros.clone()
        self.hi, self.e_hi, self.dg_hi = torch.full_like(zeros, math.nan), zeros.clone(), zeros.clone()
        self.gamma = torch.full_like(zeros, 1.0 / self.curvature)
        self.trials = torch.zeros(b, dtype=torch.long, device=dev)
        self.steepest = torch.ones(b, dtype=torch.bool, device=dev)
        self.steepest_now = torch.ones(b, dtype=torch.bool, device=dev)
        self.failed = ~torch.isfinite(ev.merit) | ~torch.isfinite(ev.fmax)
        if self.method == "lbfgs":
            self.s_hist = x.new_zeros((self.memory,) + x.shape)
            self.y_hist = x.new_zeros((self.memory,) + x.shape)
            self.rho = x.new_zeros(self.memory, b)
            self.ptr = 0
            if self.precon is not None:
                self.py_hist = torch.zeros_like(self.y_hist)
                self.pg0 = self._solve(self.g0)
                self.precon_builds = self.precon.builds
        else:
            self.g_prev = None
            self.alpha_prev, self.dg_prev = zeros.clone(), zeros.clone()
        self._new_direction(obj, torch.ones(b, dtype=torch.bool, device=dev))

    def select(self, systems, rows):
        for name in ("x0", "g0", "d", "g_lo"):
            setattr(self, name, getattr(self, name)[rows])
        self.mask = None if self.mask is None else self.mask[rows]
        for name in ("e0", "dg0", "alpha", "alpha_max", "lo", "e_lo", "dg_lo", "hi", "e_hi",
                     "dg_hi", "gamma", "trials", "steepest", "steepest_now", "failed"):
            setattr(self, name, getattr(self, name)[systems])
        if self.method == "lbfgs":
            self.s_hist, self.y_hist = self.s_hist[:, rows], self.y_hist[:, rows]
            self.rho = self.rho[:, systems]
            if self.precon is not None:
                self.py_hist, self.pg0 = self.py_hist[:, rows], self.pg0[rows]
        else:
            self.g_prev = None if self.g_prev is None else self.g_prev[rows]
            self.alpha_prev, self.dg_prev = self.alpha_prev[systems], self.dg_prev[systems]

    # -- directions --------------------------------------------------------------------
    def _two_loop(self, segs, g):
        """-H g by the two-loop recursion. With P, P^-1 q = P^-1 g − Σ a P^-1 y is carried
        along from the stored P^-1 g and P^-1 y: one sparse solve per accepted point."""
        m, q, coef = self.memory, g.clone(), []
        pq = None if self.precon is None else self.pg0.clone()
        for age in range(m):
            slot = (self.ptr - 1 - age) % m
            a = self.rho[slot] * segs.dot(self.s_hist[slot], q)
            q -= segs.rows(a) * self.y_hist[slot]
            if pq is not None:
                pq -= segs.rows(a) * self.py_hist[slot]
            coef.append((slot, a))
        r = (q if pq is None else pq) * segs.rows(self.gamma)
        for slot, a in reversed(coef):
            beta = self.rho[slot] * segs.dot(self.y_hist[slot], r)
            r += segs.rows(a - beta) * self.s_hist[slot]
        return -r

    def _solve(self, q):
        """P^-1 q, masked."""
        r = self.precon.solve(q)
        return r if self.mask is None else r * self.mask

    def _sync_precon(self):
        """Redo the stored P^-1 g and P^-1 y when P was rebuilt (after a compaction)."""
        if self.precon is not None and self.method == "lbfgs" and self.precon.builds != self.precon_builds:
            self.pg0 = self._solve(self.g0)
            self.py_hist = torch.stack([self._solve(y) for y in self.y_hist])
            self.precon_builds = self.precon.builds

    def _new_direction(self, obj, which):
        """New search direction and first trial step for the systems in ``which``."""
        segs, g = obj.segs, self.g0
        if self.method == "lbfgs":
            d = self._two_loop(segs, g)
        elif self.g_prev is None:
            d = -g
        else:
            beta = segs.dot(g, g - self.g_prev) / segs.dot(self.g_prev, self.g_prev).clamp(min=1e-300)
            d = -g + segs.rows(beta.clamp(min=0.0)) * self.d
        dg = segs.dot(d, g)
        bad = (dg >= -1e-10 * (segs.dot(g, g) * segs.dot(d, d)).sqrt()) | ~torch.isfinite(dg)
        restart = which & (bad | self.steepest)
        if restart.any():  # steepest descent, scaled by the last curvature estimate
            if self.method == "lbfgs":
                self.rho[:, restart] = 0.0
            h0g = (g if self.precon is None else self.pg0) * segs.rows(self.gamma)
            d = segs.where(restart, -h0g, d)
            dg = torch.where(restart, segs.dot(d, g), dg)
        self.d = segs.where(which, d, self.d)
        self.dg0 = torch.where(which, dg, self.dg0)
        alpha_max = self.max_step / segs.max(segs.norms(self.d)).clamp(min=1e-300)
        if self.method == "lbfgs":
            first = torch.ones_like(alpha_max)
        else:  # CG: expect the same first-order decrease as on the previous line
            ratio = self.alpha_prev * self.dg_prev / torch.where(dg < 0, dg, -1.0)
            first = torch.where(restart | (self.dg_prev >= 0), 1.0, ratio).clamp(min=1e-12)
        self.alpha_max = torch.where(which, alpha_max, self.alpha_max)
        self.alpha = torch.where(which, torch.minimum(first, alpha_max), self.alpha)
        self.lo = torch.where(which, 0.0, self.lo)
        self.e_lo = torch.where(which, self.e0, self.e_lo)
        self.dg_lo = torch.where(which, self.dg0, self.dg_lo)
        self.hi = torch.where(which, math.nan, self.hi)
        self.trials = torch.where(which, 0, self.trials)
        self.steepest = self.steepest & ~which
        self.steepest_now = torch.where(which, restart, self.steepest_now)

    def _remember(self, obj, which, s, y, py=None):
        """Store the pair (s, y) of the systems in ``which``; ``py`` = P^-1 y with P."""
        segs = obj.segs
        sy, yy, ss = segs.dot(s, y), segs.dot(y, y), segs.dot(s, s)
        good = which & (sy > 1e-12 * (yy * ss).sqrt()) & (yy > 0)
        # H0 = gamma P^-1 fitted to the last pair: gamma = s·y / y·P^-1 y (P = I without one;
        # s·P s / s·y instead saves nothing: its first trial steps fail more often)
        self.gamma = torch.where(good, sy / segs.dot(y, y if py is None else py).clamp(min=1e-300), self.gamma)
        if self.method != "lbfgs" or not good.any():
            return
        slot = self.ptr
        self.s_hist[slot] = segs.where(good, s, self.s_hist[slot])
        self.y_hist[slot] = segs.where(good, y, self.y_hist[slot])
        if py is not None:
            self.py_hist[slot] = segs.where(good, py, self.py_hist[slot])
        self.rho[slot] = torch.where(good, 1.0 / sy.clamp(min=1e-300), 0.0)
        self.ptr = (slot + 1) % self.memory

    # -- iteration ---------------------------------------------------------------------
    def propose(self, obj, x, ev, active):
        return obj.segs.where(active, self.x0 + obj.segs.rows(self.alpha) * self.d, self.x0)

    def _difference(self, e_a, dg_a, a, e_b, dg_b, b):
        """merit(b) − merit(a), from the energies unless round-off swamps them."""
        de = e_b - e_a
        estimate = 0.5 * (b - a) * (dg_a + dg_b)
        small = de.abs() <= self.noise * torch.maximum(e_a.abs(), e_b.abs())
        return torch.where(small, estimate, de)

    def observe(self, obj, x, ev, active):
        """Judge the trial of each active system; returns the systems now at an accepted point."""
        self._sync_precon()
        segs, alpha = obj.segs, self.alpha
        dg = segs.dot(ev.grad, self.d)
        finite = torch.isfinite(ev.merit) & torch.isfinite(dg)
        zero = torch.zeros_like(alpha)
        armijo = finite & (self._difference(self.e0, self.dg0, zero, ev.merit, dg, alpha)
                           <= self.c1 * alpha * self.dg0)
        better = self._difference(self.e_lo, self.dg_lo, self.lo, ev.merit, dg, alpha) <= 0
        curvature = dg.abs() <= self.c2 * self.dg0.abs()
        capped = (alpha >= self.alpha_max * (1 - 1e-12)) & (dg < 0)
        accept = active & finite & (ev.converged | (armijo & better & (curvature | capped)))
        reject = active & ~accept
        # bracket update (Nocedal & Wright, algorithm 3.6; lo is the best point so far)
        worse = reject & ~(armijo & better)
        self.hi = torch.where(worse, alpha, self.hi)
        self.e_hi = torch.where(worse, ev.merit, self.e_hi)
        self.dg_hi = torch.where(worse, dg, self.dg_hi)
        improve = reject & armijo & better
        open_end = torch.isnan(self.hi)
        flip = improve & torch.where(open_end, dg > 0, dg * (self.hi - self.lo) >= 0)
        self.hi = torch.where(flip, self.lo, self.hi)
        self.e_hi = torch.where(flip, self.e_lo, self.e_hi)
        self.dg_hi = torch.where(flip, self.dg_lo, self.dg_hi)
        self.lo = torch.where(improve, alpha, self.lo)
        self.e_lo = torch.where(improve, ev.merit, self.e_lo)
        self.dg_lo = torch.where(improve, dg, self.dg_lo)
        if improve.any():
            self.g_lo = segs.where(improve, ev.grad, self.g_lo)
        self.alpha = torch.where(reject, self._next_trial(), self.alpha)
        self.trials = self.trials + reject.long()
        # a line search that finds no step: move to its best point and restart downhill,
        # or stop the system if that was already a steepest-descent line
        width = (self.hi - self.lo).abs()
        failed = reject & ((self.trials >= self.max_trials)
                           | (width <= 1e-10 * torch.maximum(self.lo, self.hi).abs()))
        if failed.any():
            moved = failed & (self.lo > 0)
            self.failed |= failed & ~moved & self.steepest_now
            self.steepest |= failed
            self.x0 = segs.where(moved, self.x0 + segs.rows(self.lo) * self.d, self.x0)
            self.g0 = segs.where(moved, self.g_lo, self.g0)
            if self.precon is not None and moved.any():
                self.pg0 = segs.where(moved, self._solve(self.g0), self.pg0)
            self.e0 = torch.where(moved, self.e_lo, self.e0)
            self._new_direction(obj, failed & ~self.failed)
        if accept.any():
            pg = None if self.precon is None else self._solve(ev.grad)
            self._remember(obj, accept, x - self.x0, ev.grad - self.g0, None if pg is None else pg - self.pg0)
            if pg is not None:
                self.pg0 = segs.where(accept, pg, self.pg0)
            if self.method == "cg":
                self.g_prev = segs.where(accept, self.g0, self.g0 if self.g_prev is None else self.g_prev)
                self.alpha_prev = torch.where(accept, alpha, self.alpha_prev)
                self.dg_prev = torch.where(accept, self.dg0, self.dg_prev)
            self.x0 = segs.where(accept, x, self.x0)
            self.g0 = segs.where(accept, ev.grad, self.g0)
            self.e0 = torch.where(accept, ev.merit, self.e0)
            self._new_direction(obj, accept & ~ev.converged)
        return accept

    def _next_trial(self):
        """Next step length: expand while no bracket, else a safeguarded cubic (or secant on the
        slope where the energies are within round-off) inside the bracket."""
        lo, hi = self.lo, self.hi
        width = hi - lo
        safe = torch.where(width == 0, 1.0, width)
        d1 = self.dg_lo + self.dg_hi + 3.0 * (self.e_lo - self.e_hi) / safe
        disc = d1 * d1 - self.dg_lo * self.dg_hi
        d2 = torch.sign(width) * disc.clamp(min=0).sqrt()
        cubic = hi - width * (self.dg_hi + d2 - d1) / (self.dg_hi - self.dg_lo + 2 * d2)
        secant = lo - self.dg_lo * width / (self.dg_hi - self.dg_lo)
        noisy = (self.e_hi - self.e_lo).abs() <= self.noise * torch.maximum(self.e_lo.abs(), self.e_hi.abs())
        guess = torch.where(noisy | (disc < 0), secant, cubic)
        t = ((guess - lo) / safe).nan_to_num(0.5).clamp(0.1, 0.9)
        return torch.where(torch.isnan(hi), torch.minimum(4.0 * self.alpha, self.alpha_max), lo + t * width)

    def accepted(self, obj, x):
        """Coordinates to keep: each system's last accepted point."""
        return self.x0


class Relaxer:
    """Batched minimiser, reusable across runs on the same batch (keeps its neighbour list).

    ``method``: ``"lbfgs"`` (default: the fastest to tight tolerances), ``"fire"`` or ``"cg"``;
    ``fmax``: force tolerance, eV/Å; ``max_steps``: cap on force evaluations per system;
    ``skin``: Verlet skin, Å; ``stress_tol``: tolerance on controlled stress components (N/m
    for sheets, GPa for bulk); ``max_step``: largest move of one atom (or cell coordinate)
    per step, Å; ``memory``: L-BFGS history length; ``curvature``: stiffness guess for the
    first (steepest-descent) step of the line-search methods, eV/Å^2; ``compact``: rebuild the
    working batch from the unfinished systems when they hold at most this fraction of its
    atoms (0 never); ``fire``: :class:`FireParameters`; ``precondition``: None, ``"bonds"``,
    ``"hessian"`` or ``"auto"`` (L-BFGS only; :func:`preconditioner`, kept between runs: for
    large samples and loading paths, not for many small windows, whose factors would be
    rebuilt every run).
    """

    def __init__(self, potential: Potential, method: str = "lbfgs", fmax: float = 1e-8,
                 max_steps: int = 100_000, skin: float = 1.0, stress_tol: float = 1e-6,
                 max_step: float = 0.2, memory: int = 10, curvature: float = 50.0,
                 compact: float = 0.5, fire: FireParameters | None = None, precondition: str | None = None):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
        if precondition is not None and method != "lbfgs":
            raise ValueError(f"preconditioner {precondition!r} needs method 'lbfgs', not {method!r}")
        if fmax <= 0 or stress_tol <= 0 or max_step <= 0:
            raise ValueError("fmax, stress_tol and max_step must be positive")
        self.potential = potential
        self.method = method
        self.fmax = float(fmax)
        self.max_steps = int(max_steps)
        self.skin = float(skin)
        self.stress_tol = float(stress_tol)
        self.max_step = float(max_step)
        self.memory = int(memory)
        self.curvature = float(curvature)
        self.compact = float(compact)
        self.fire = fire or FireParameters()
        self.precondition = precondition
        self.precon = preconditioner(precondition, potential)
        self._verlet = None
        self._verlet_batch = None

    def _optimizer(self):
        if self.method == "fire":
            return _Fire(self.fire, self.max_step)
        return _LineSearchMethod(self.method, self.max_step, self.memory, self.curvature, self.precon)

    def neighbor_list(self, batch: Batch) -> VerletList:
        """The Verlet list this relaxer keeps for ``batch`` (a new one for a new batch)."""
        if self._verlet is None or self._verlet_batch is not batch:
            self._verlet = VerletList(self.potential.cutoff, self.skin)
            self._verlet_batch = batch
        return self._verlet

    def run(self, batch: Batch, cell_mask=None, target_stress=None, stress: bool = True,
            callback=None, stop_beyond=None) -> RelaxStats:
        """Relax ``batch`` in place (positions, and cells if ``cell_mask`` is given).

        ``cell_mask``: None (fixed cell), True (every component between periodic axes), or
        booleans of shape (d,) (normal components per axis), (d, d) (stress components; the
        lower triangle is folded onto the upper), or either with a leading axis per system.
        ``target_stress``: scalar, (d,), (d, d) or per system, tension positive, N/m for
        sheets and GPa for bulk (default 0). ``stress``: evaluate the final stress (one more
        evaluation when the cell does not relax). ``callback(info)`` is called after every
        evaluation with a dict: ``step``, ``active`` (systems still running), and per system
        ``energy`` (eV, plus the work of the target stress) and ``max_force`` (eV/Å) at its
        last accepted point (tensors, not to be modified). ``stop_beyond`` = (reference
        positions (N, d), distance Å): a system stops, unconverged and marked ``stopped``, as
        soon as one of its atoms is farther than the distance from its reference position (to
        learn cheaply that a state has left its basin, as the AQS bisection does).
        """
        start = time.perf_counter()
        b, dev = batch.n_systems, batch.device
        mask = _cell_mask(batch, cell_mask)
        target = None
        if mask is not None:
            target = _target_stress(batch, target_stress)
        elif target_stress is not None:
            raise ValueError("target_stress needs cell_mask")
        verlet = self.neighbor_list(batch)
        obj = _Objective(self.potential, batch, verlet, mask, target, self.fmax, self.stress_tol)
        opt = self._optimizer()
        x = obj.start()
        ev = obj.evaluate(x)
        opt.start(obj, x, ev)
        rec = _Record(ev)
        full = _Record(ev)
        index = torch.arange(b, device=dev)
        work, work_verlet, compactions, builds = batch, verlet, 0, -verlet.builds
        reference = None if stop_beyond is None else stop_beyond[0].to(batch.positions)
        step = built_at = 0
        while step < self.max_steps:
            active = ~rec.done & ~opt.failed & ~rec.stopped
            n_active = int(active.sum())
            if n_active == 0:
                break
            if self.compact > 0 and n_active < len(index) \
                    and int(work.counts[active].sum()) <= self.compact * work.n_atoms:
                obj.apply(opt.accepted(obj, x))
                _write_back(batch, work, index)
                rec.failed = opt.failed
                full.store(rec, index)
                keep = torch.nonzero(active).flatten()
                if reference is not None:
                    reference = reference[work.atoms_of(keep)]
                builds += work_verlet.builds if work_verlet is not verlet else 0
                sub = work.select(keep)
                work_verlet = work_verlet.select(keep.tolist(), work)
                obj, rows = obj.select(keep, sub, work_verlet)
                work = sub
                opt.select(keep, rows)
                if self.precon is not None:
                    self.precon.prepare(obj)
                rec.select(keep)
                x, ev, index, active = x[rows], ev.select(keep, rows), index[keep], active[keep]
                compactions += 1
            x = opt.propose(obj, x, ev, active)
            ev = obj.evaluate(x)
            step += 1
            if self.precon is not None and step - built_at >= PRECON_REFRESH:
                builds_before = self.precon.builds
                self.precon.prepare(obj)  # a new P only if the Verlet list was rebuilt
                built_at = step if self.precon.builds != builds_before else built_at
            rec.update(ev, active, opt.observe(obj, x, ev, active))
            if reference is not None:
                moved = (obj.positions(opt.accepted(obj, x)) - reference).norm(dim=1)
                farthest = torch.zeros(work.n_systems, dtype=moved.dtype, device=dev)
                farthest.scatter_reduce_(0, work.system, moved, reduce="amax")
                rec.stopped |= active & ~rec.done & (farthest > stop_beyond[1])
            if callback is not None:
                full.store(rec, index)
                callback({"step": step, "active": n_active, "energy": full.merit, "max_force": full.fmax})
        x = opt.accepted(obj, x)
        obj.apply(x)
        _write_back(batch, work, index)
        if built_at > 0:  # P was built mid-run, at a passing geometry: the next run builds its own
            self.precon.forget()
        rec.failed = opt.failed
        full.store(rec, index)
        energy, fmax, virial = full.energy, full.fmax, full.virial
        stress_out, units = None, ["N/m" if s else "GPa" for s in batch.is_sheet().tolist()]
        if stress and virial is None:  # one more evaluation, for the virial only
            virial = self.potential.compute(batch, verlet.update(batch), virial=True).virial.detach()
        if stress:
            stress_out, units = stress_from_virial(batch, virial)
        builds += verlet.builds + (work_verlet.builds if work_verlet is not verlet else 0)
        notes = []
        if bool(full.failed.any()):
            notes.append("stopped early (no downhill step found, or non-finite energy) for some systems")
        return RelaxStats(
            energy=energy.cpu().numpy(), max_force=fmax.cpu().numpy(),
            iterations=full.iterations.cpu().numpy(), evaluations=full.evaluations.cpu().numpy(),
            converged=full.done.cpu().numpy(), stress_residual=full.sres.cpu().numpy(),
            stress=stress_out, stress_unit=units, method=self.method,
            seconds=time.perf_counter() - start, fmax=self.fmax, stress_tol=self.stress_tol,
            compactions=compactions, neighbor_builds=builds, notes=notes, stopped=full.stopped.cpu().numpy(),
        )


class _Record:
    """Per-system results at each system's last accepted point (``done``: converged)."""

    names = ("energy", "merit", "fmax", "sres", "virial", "iterations", "evaluations", "done", "failed", "stopped")

    def __init__(self, ev: _Eval):
        self.energy, self.merit = ev.energy.clone(), ev.merit.clone()
        self.fmax, self.sres = ev.fmax.clone(), ev.sres.clone()
        self.virial = None if ev.virial is None else ev.virial.clone()
        self.iterations = torch.zeros(len(ev.energy), dtype=torch.long, device=ev.energy.device)
        self.evaluations = torch.ones_like(self.iterations)
        self.done = ev.converged.clone()
        self.failed = torch.zeros_like(self.done)
        self.stopped = torch.zeros_like(self.done)

    def update(self, ev: _Eval, active, accepted):
        self.evaluations += active
        self.iterations += accepted
        for name in ("energy", "merit", "fmax", "sres"):
            setattr(self, name, torch.where(accepted, getattr(ev, name), getattr(self, name)))
        if self.virial is not None:
            self.virial = torch.where(accepted[:, None, None], ev.virial, self.virial)
        self.done |= accepted & ev.converged

    def select(self, systems):
        for name in self.names:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[systems])

    def store(self, other: "_Record", index):
        """Copy ``other`` (a working subset) into rows ``index`` of this record."""
        for name in self.names:
            value = getattr(self, name)
            if value is not None:
                value[index] = getattr(other, name)


def _write_back(batch: Batch, work: Batch, index):
    if work is batch:
        return
    atoms = batch.atoms_of(index)
    batch.positions[atoms] = work.positions.detach()
    batch.cells[index] = work.cells.detach()


def _per_system_matrix(value, b, d, what):
    """(d,) → diagonal, (d, d), (B, d) → diagonals, (B, d, d); (d, d) wins when B = d."""
    if value.shape == (d,):
        value = torch.diag_embed(value)
    if value.shape == (d, d):
        return value.expand(b, d, d)
    if value.shape == (b, d):
        value = torch.diag_embed(value)
    if value.shape != (b, d, d):
        raise ValueError(f"{what} must have shape ({d},) or ({d}, {d}), optionally with a leading "
                         f"axis of {b} systems; got {tuple(value.shape)}")
    return value


def _cell_mask(batch: Batch, cell_mask):
    """(B, d, d) bool mask of the free upper-triangle components of F, or None."""
    if cell_mask is None or cell_mask is False:
        return None
    b, d, dev = batch.n_systems, batch.dim, batch.device
    both = batch.pbc[:, :, None] & batch.pbc[:, None, :]
    upper = torch.ones(d, d, dtype=torch.bool, device=dev).triu()
    if cell_mask is True:
        m = both & upper
    else:
        m = torch.as_tensor(np.asarray(cell_mask, dtype=bool), device=dev)
        m = _per_system_matrix(m, b, d, "cell_mask")
        m = (m | m.transpose(1, 2)) & upper
        bad = m & ~both
        if bad.any():
            k, i, j = (int(v) for v in torch.nonzero(bad)[0])
            raise ValueError(f"cell_mask asks to relax stress component ({i}, {j}) of system {k}, "
                             f"which involves a non-periodic axis")
    return m if m.any() else None


def _target_stress(batch: Batch, target):
    """Target stresses (B, d, d), symmetrised, in each system's unit (N/m or GPa)."""
    b, d = batch.n_systems, batch.dim
    out = torch.zeros(b, d, d, dtype=batch.positions.dtype, device=batch.device)
    if target is None:
        return out
    t = torch.as_tensor(np.asarray(target, dtype=float), dtype=out.dtype, device=out.device)
    if t.ndim == 0:
        t = t * torch.ones(d, dtype=out.dtype, device=out.device)
    t = _per_system_matrix(t, b, d, "target_stress")
    return out + 0.5 * (t + t.transpose(1, 2))


def relax(potential: Potential, structures, method: str = "lbfgs", fmax: float = 1e-8,
          max_steps: int = 100_000, cell=None, target_stress=None, frozen=None,
          raise_on_failure: bool = False, device="cpu", **options):
    """Relax ``structures`` in one batch; returns a list of ``(Structure, stats dict)``.

    ``cell``: None/False, True (all periodic components) or a mask as in :meth:`Relaxer.run`;
    ``frozen``: a list of per-atom boolean masks (or None); ``options`` go to
    :class:`Relaxer`. The stats dict is :meth:`RelaxStats.system` plus ``seconds`` of the
    whole batch. With ``raise_on_failure``, systems left unconverged raise
    :class:`~glassfrac.errors.ConvergenceError` (after the whole batch has run).
    """
    structures = list(structures)
    relaxer = Relaxer(potential, method=method, fmax=fmax, max_steps=max_steps, **options)
    batch = potential.batch(structures, device=device, frozen=frozen)
    stats = relaxer.run(batch, cell_mask=cell, target_stress=target_stress)
    if raise_on_failure and not stats.converged.all():
        bad = np.flatnonzero(~stats.converged)
        raise ConvergenceError(
            f"{len(bad)} of {len(structures)} systems did not reach max force {fmax:g} eV/Å "
            f"in {max_steps} evaluations (systems {bad[:10].tolist()}; largest forces "
            f"{stats.max_force[bad[:10]].tolist()} eV/Å)"
        )
    out = []
    for k, new in enumerate(batch.to_structures(structures)):
        info = stats.system(k)
        info["seconds"] = stats.seconds
        out.append((new, info))
    return out
