"""The function a batched minimiser sees: coordinates and the masked gradient of a merit function.

:class:`Objective` maps the optimiser's coordinates X of a :class:`~glassfrac.potentials.Batch`
(rows: atoms, then d rows per system of cell coordinates when the cell relaxes) to an
:class:`Evaluation`: energy, merit = energy + work of the target stress (eV), its gradient,
and each system's largest force and stress residual. :class:`Segments` does the per-system
sums, maxima and broadcasts over such rows.

Frozen atoms (``batch.frozen``) never move and their forces do not count. With cell
relaxation the cell follows a deformation gradient F relative to the cell at the start of
the run (cell rows H = H0 F^T, atoms x = u F^T with u the optimiser's coordinates; frozen
atoms keep u, so they follow the cell affinely). The cell coordinates are s·(F − I), with
s = sqrt(n) (measure / n)^(1/k) Å (n atoms, k = 2 for sheets, 3 for bulk), so that they are
about as stiff as an atom; their force is (W + V σ_target) F^-T / s, with W the virial (eV)
and V the measure (area of sheets, volume of bulk). Only the upper triangle of F is free
(tilts as in LAMMPS: the first cell vector keeps its direction), and never along a
non-periodic axis (:func:`free_cell_components`). Stresses are tension positive, in N/m for
sheets and GPa for bulk (``batch.is_sheet()``; :func:`target_stresses`).
"""

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from glassfrac.core.errors import InputError
from glassfrac.core.units import EV_PER_A2_IN_N_PER_M, EV_PER_A3_IN_GPA
from glassfrac.potentials import Batch


class Segments:
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
class Evaluation:
    """One evaluation of the working set: merit = energy + work of the target stress (eV)."""

    energy: torch.Tensor
    merit: torch.Tensor
    grad: torch.Tensor
    fmax: torch.Tensor
    sres: torch.Tensor
    virial: torch.Tensor | None
    converged: torch.Tensor

    def select(self, systems, rows):
        return Evaluation(self.energy[systems], self.merit[systems], self.grad[rows], self.fmax[systems],
                     self.sres[systems], None if self.virial is None else self.virial[systems],
                     self.converged[systems])


class Objective:
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
        self.atoms = Segments(batch.system, b, 1)
        if not self.cell:
            self.mask = None if bool(free.all()) else free.unsqueeze(1).expand(n, d).contiguous()
            self.segs = Segments(batch.system, b, d)
            return
        self.cell_mask = cell_mask
        self.mask = torch.cat([free.unsqueeze(1).expand(n, d), cell_mask.reshape(b * d, d).to(free.dtype)])
        self.segs = Segments(torch.cat([batch.system, torch.arange(b, device=batch.device).repeat_interleave(d)]),
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
        new = object.__new__(Objective)
        new.__dict__.update(self.__dict__)
        new.batch, new.verlet, new.n_systems = batch, verlet, len(systems)
        atoms = self.batch.atoms_of(systems)
        d, b = batch.dim, len(systems)
        new.atoms = Segments(batch.system, b, 1)
        if not self.cell:
            new.mask = None if self.mask is None else self.mask[atoms]
            new.segs = Segments(batch.system, b, d)
            return new, atoms
        dev = batch.device
        cell_rows = self.batch.n_atoms + (systems[:, None] * d + torch.arange(d, device=dev)).reshape(-1)
        rows = torch.cat([atoms, cell_rows])
        new.mask = self.mask[rows]
        new.segs = Segments(torch.cat([batch.system, torch.arange(b, device=dev).repeat_interleave(d)]), b, d)
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

    def evaluate(self, x, virial=False) -> Evaluation:
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
        return Evaluation(energy, merit, grad, fmax, sres, virial_out, converged)


def _per_system_matrix(value, b, d, what):
    """(d,) → diagonal, (d, d), (B, d) → diagonals, (B, d, d); (d, d) wins when B = d."""
    if value.shape == (d,):
        value = torch.diag_embed(value)
    if value.shape == (d, d):
        return value.expand(b, d, d)
    if value.shape == (b, d):
        value = torch.diag_embed(value)
    if value.shape != (b, d, d):
        raise InputError(f"{what} must have shape ({d},) or ({d}, {d}), optionally with a leading "
                         f"axis of {b} systems; got {tuple(value.shape)}")
    return value


def free_cell_components(batch: Batch, cell_mask):
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
            raise InputError(f"cell_mask asks to relax stress component ({i}, {j}) of system {k}, "
                             f"which involves a non-periodic axis")
    return m if m.any() else None


def target_stresses(batch: Batch, target):
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
