"""The one interface every potential implements, and its results.

A potential evaluates a whole :class:`~glassfrac.potentials.batch.Batch` at once, float64,
on the batch's device. Sign conventions follow LAMMPS: ``virial`` is W = −∂E/∂ε (eV), the
derivative with respect to a homogeneous strain ε applied as x → (1 + ε) x, so that the
pressure is W / V and the stress (tension positive) is −W / V. Per-atom virials sum to the
system virial (LAMMPS ``stress/atom`` without the kinetic part, in eV instead of bar·Å^3).
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

from glassfrac.core.units import EV_PER_A2_IN_N_PER_M, EV_PER_A3_IN_GPA
from glassfrac.potentials.batch import Batch, Pairs, VerletList


@dataclass
class Results:
    """Energies (B,) eV, forces (N, d) eV/Å, virials (B, d, d) eV; per-atom parts if asked."""

    energy: torch.Tensor
    forces: torch.Tensor
    virial: torch.Tensor | None = None
    per_atom_energy: torch.Tensor | None = None
    per_atom_virial: torch.Tensor | None = None


class Potential(ABC):
    """Energy, forces and virial of a batch of systems.

    Subclasses set ``name``, ``species`` (names in code order) and ``cutoff`` (Å, the range
    beyond which nothing acts) and implement :meth:`compute`. Optional abilities are declared in
    ``abilities`` (never discovered with ``hasattr``), each one a method the potential provides:

    - ``"pair_derivatives"``: a pair potential; ``pair_derivatives(r, code) -> (V', V'')``;
    - ``"term_hessians"``: a many-body potential with per-term Hessian blocks;
      ``term_hessians(batch, pairs) -> list``.
    - ``"hessian"``: the Hessian of the energy as blocks of terms over a few atoms,
      ``hessian(batch, pairs) -> [(atoms (T, m), blocks (T, m, d, m, d)), ...]`` (eV/Å², tensors on
      the batch's device): the Hessian is the sum over terms of each block placed at its atoms'
      coordinates. Pair terms may come in pair form, ``(atoms (P, 2), k (P, d, d))`` for the
      block [[k, −k], [−k, k]]. Where it is approximate, :meth:`hessian_gaps` names the atoms whose
      rows and columns are wrong (every other entry is exact). Local probing needs it.
    - ``"ignores_pairs"``: :meth:`compute` does not read ``pairs`` (an external engine such as
      LAMMPS finds its own neighbours); callers may skip building a pair list for it.
    """

    name: str = "potential"
    species: tuple[str, ...] = ()
    cutoff: float = 0.0
    bond_break_length: float | None = None
    """Bond length, Å, beyond which the potential itself begins to cut a bond (a coordination switch), or None
    where it has no such length; the silica bond-break rule uses it (:class:`glassfrac.analysis.bonds.BondRule`)."""
    abilities: frozenset[str] = frozenset()

    caches: dict = {}
    """Attributes that hold work arrays or handles (name -> factory of an empty one): a pickled potential (sent
    to a worker process) carries its parameters only, and starts there with empty caches."""

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in self.caches}

    def __setstate__(self, state):
        self.__dict__.update(state)
        for name, empty in self.caches.items():
            setattr(self, name, empty())

    def can(self, ability: str) -> bool:
        """Whether this potential declares ``ability`` (see the class docstring)."""
        return ability in self.abilities

    @abstractmethod
    def compute(self, batch: Batch, pairs: Pairs, virial: bool = True,
                per_atom: bool = False) -> Results:
        """Evaluate the batch; ``pairs`` is a half list covering at least ``cutoff``."""

    def forces_and_hessian(self, batch: Batch, pairs: Pairs):
        """For potentials with the ``"hessian"`` ability: ``(results, hessian)``, the results with forces
        and per-atom virials (energies may be None) and :meth:`hessian`'s blocks, at the same positions.
        A potential that shares work between the two overrides this."""
        return self.compute(batch, pairs, virial=False, per_atom=True), self.hessian(batch, pairs)

    def hessian_gaps(self, batch: Batch, pairs: Pairs) -> torch.Tensor:
        """Atoms (indices into the batch) whose rows and columns of :meth:`hessian` are approximate; the
        Hessian is exact elsewhere. No atom by default (the Hessian is exact everywhere)."""
        return torch.zeros(0, dtype=torch.long, device=batch.device)

    def parameters(self) -> dict:
        """The parameters that define this potential (recorded next to every output)."""
        return {"name": self.name}

    def batch(self, structures, device="cpu", frozen=None) -> Batch:
        return Batch.from_structures(structures, self.species, device=device, frozen=frozen)

    def evaluate(self, structures, device="cpu", per_atom=False) -> list[dict]:
        """Evaluate structures in one batch; numpy results per structure.

        Each dict has ``energy`` (eV), ``forces`` (eV/Å), ``virial`` (eV), ``stress``
        (tension positive; N/m for sheets, GPa for bulk, named in ``stress_unit``) and, with
        ``per_atom``, ``per_atom_energy`` (eV) and ``per_atom_virial`` (eV).
        """
        structures = list(structures)
        batch = self.batch(structures, device=device)
        pairs = VerletList(self.cutoff, skin=0.0).update(batch)
        res = self.compute(batch, pairs, virial=True, per_atom=per_atom)
        stress, units = stress_from_virial(batch, res.virial)
        forces = batch.split(res.forces)
        out = []
        for k in range(batch.n_systems):
            item = {
                "energy": float(res.energy[k]),
                "forces": forces[k],
                "virial": res.virial[k].detach().cpu().numpy(),
                "stress": stress[k],
                "stress_unit": units[k],
            }
            out.append(item)
        if per_atom:
            for item, e, w in zip(out, batch.split(res.per_atom_energy),
                                  batch.split(res.per_atom_virial), strict=True):
                item["per_atom_energy"] = e
                item["per_atom_virial"] = w
        return out


def stress_from_virial(batch: Batch, virial: torch.Tensor):
    """Stress tensors (tension positive) as numpy (B, d, d) and their unit per system."""
    sheet = batch.is_sheet().cpu().numpy()
    measure = batch.measure().detach().cpu().numpy()
    w = virial.detach().cpu().numpy()
    factor = np.where(sheet, EV_PER_A2_IN_N_PER_M, EV_PER_A3_IN_GPA) / measure
    stress = -w * factor[:, None, None]
    units = ["N/m" if s else "GPa" for s in sheet]
    return stress, units


def expand_pair_blocks(k: np.ndarray) -> np.ndarray:
    """Pair-form Hessian blocks k (P, d, d) as term blocks (P, 2, d, 2, d): [[k, −k], [−k, k]] (see
    :class:`Potential`, ability ``"hessian"``)."""
    return np.stack([np.stack([k, -k], 1), np.stack([-k, k], 1)], 1).transpose(0, 1, 3, 2, 4)


def clip_blocks(blocks: np.ndarray) -> np.ndarray:
    """Term blocks (T, m, d, m, d) made positive semidefinite: each block's negative eigenvalues set to 0."""
    t, m, d = blocks.shape[:3]
    w, v = np.linalg.eigh(blocks.reshape(t, m * d, m * d))
    return ((v * np.maximum(w, 0.0)[:, None, :]) @ v.transpose(0, 2, 1)).reshape(blocks.shape)


def hessian_entries(terms, dim: int):
    """Sparse (row, column, value) entries, eV/Å², of the Hessian that the terms [(atoms (T, m), blocks
    (T, m, d, m, d)), ...] (numpy; pair form (P, d, d) too) sum to, in coordinates atom · d + axis; repeated
    entries are to be summed (as scipy's COO constructors do)."""
    rows, cols, vals = [], [], []
    for atoms, blocks in terms:
        if blocks.ndim == 3:
            blocks = expand_pair_blocks(blocks)
        index = atoms[:, :, None] * dim + np.arange(dim)  # (T, m, d)
        rows.append(np.broadcast_to(index[:, :, :, None, None], blocks.shape).ravel())
        cols.append(np.broadcast_to(index[:, None, None, :, :], blocks.shape).ravel())
        vals.append(blocks.ravel())
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(rows) if rows else empty, np.concatenate(cols) if cols else empty,
            np.concatenate(vals) if vals else np.zeros(0))


def forces_from_pair_gradient(batch: Batch, pairs: Pairs, vectors: torch.Tensor,
                              grad: torch.Tensor, virial: bool = True, per_atom: bool = False):
    """Forces, virials and per-atom virials from dE/dr_p of an energy written in pair vectors.

    For an energy that depends on positions only through the pair vectors
    ``vectors = r_p = x_j − x_i (+ image)`` (any many-body potential can be written so),
    ``grad`` = ∂E/∂r_p (P, d) gives f_j −= grad, f_i += grad, W = −Σ_p r_p ⊗ ∂E/∂r_p, and a
    per-atom virial that gives half of each pair's share to each end. Returns
    ``(forces, virial or None, per_atom_virial or None)``.
    """
    forces = torch.zeros_like(batch.positions)
    forces.index_add_(0, pairs.i, grad)
    forces.index_add_(0, pairs.j, -grad)
    w_sys = w_atom = None
    if virial or per_atom:
        w_pair = -vectors.unsqueeze(2) * grad.unsqueeze(1)
        if virial:
            w_sys = torch.zeros(batch.n_systems, batch.dim, batch.dim, dtype=grad.dtype,
                                device=grad.device)
            w_sys.index_add_(0, pairs.system, w_pair)
        if per_atom:
            w_atom = torch.zeros(batch.n_atoms, batch.dim, batch.dim, dtype=grad.dtype,
                                 device=grad.device)
            w_atom.index_add_(0, pairs.i, 0.5 * w_pair)
            w_atom.index_add_(0, pairs.j, 0.5 * w_pair)
    return forces, w_sys, w_atom
