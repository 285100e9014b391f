"""Many systems in one set of flat tensors (torch-sim layout), and their Verlet pair list.

A :class:`Batch` holds positions (N, d) float64 of all atoms of B systems, the system index
of each atom (N,), per-system cells (B, d, d) with lattice vectors as rows, periodic flags
(B, d), species codes (N,) into the potential's species list, and a frozen mask (N,).
:class:`VerletList` keeps the pairs within ``cutoff + skin`` of every system and rebuilds a
system's pairs only when they may have become incomplete: when an atom has moved more than
``skin / 2`` since the last build, or, after a change of a periodic cell, when that change and
the non-affine displacements together could bring a pair from beyond ``cutoff + skin`` to
within ``cutoff`` (see :meth:`VerletList.update`).
"""

from dataclasses import dataclass

import numpy as np
import torch

from glassfrac.core.errors import InputError
from glassfrac.structure import Box, Structure, neighbor_pairs


class Batch:
    """B systems as flat tensors; see the module docstring for the layout."""

    def __init__(self, positions, system, cells, pbc, species, frozen=None):
        self.positions = positions
        self.system = system
        self.cells = cells
        self.pbc = pbc
        self.species = species
        self.frozen = torch.zeros_like(system, dtype=torch.bool) if frozen is None else frozen
        self.counts = torch.bincount(system, minlength=cells.shape[0])
        self.offsets = torch.cat([system.new_zeros(1), torch.cumsum(self.counts, 0)])

    @classmethod
    def from_structures(cls, structures, species_names, device="cpu", frozen=None) -> "Batch":
        """Stack ``structures`` (all of one dimension); ``frozen``: list of bool masks or None."""
        structures = list(structures)
        dims = {s.dim for s in structures}
        if len(dims) != 1:
            raise InputError(f"a batch needs structures of one dimension, got {sorted(dims)}")
        code = {name: k for k, name in enumerate(species_names)}
        unknown = set().union(*(set(s.species.tolist()) for s in structures)) - set(code)
        if unknown:
            raise InputError(f"species {sorted(unknown)} not handled (expected {list(species_names)})")
        f64 = dict(dtype=torch.float64, device=device)
        positions = torch.tensor(np.concatenate([s.positions for s in structures]), **f64)
        system = torch.repeat_interleave(
            torch.arange(len(structures), device=device),
            torch.tensor([s.n_atoms for s in structures], device=device),
        )
        cells = torch.tensor(np.stack([s.box.cell for s in structures]), **f64)
        pbc = torch.tensor(np.stack([s.box.pbc for s in structures]), device=device)
        species = torch.tensor(
            np.concatenate([np.array([code[x] for x in s.species], dtype=np.int64) for s in structures]),
            device=device,
        )
        mask = None
        if frozen is not None:
            mask = torch.tensor(np.concatenate([np.asarray(m, bool) for m in frozen]), device=device)
        return cls(positions, system, cells, pbc, species, mask)

    @property
    def n_systems(self) -> int:
        return self.cells.shape[0]

    @property
    def n_atoms(self) -> int:
        return self.positions.shape[0]

    @property
    def dim(self) -> int:
        return self.positions.shape[1]

    @property
    def device(self):
        return self.positions.device

    def is_sheet(self) -> torch.Tensor:
        """(B,) True where stress is per area (N/m): 2D systems, or 3D with non-periodic z."""
        if self.dim == 2:
            return torch.ones(self.n_systems, dtype=torch.bool, device=self.device)
        return ~self.pbc[:, 2]

    def measure(self) -> torch.Tensor:
        """(B,) area (Å^2) of sheets, volume (Å^3) of bulk systems: what stress divides by."""
        det_xy = torch.linalg.det(self.cells[:, :2, :2])
        if self.dim == 2:
            return det_xy.abs()
        return torch.where(self.is_sheet(), det_xy.abs(), torch.linalg.det(self.cells).abs())

    def atoms_of(self, systems) -> torch.Tensor:
        """Indices (into the flat arrays) of the atoms of ``systems``, in the order given."""
        systems = torch.as_tensor(systems, dtype=torch.long, device=self.device).reshape(-1)
        starts, counts = self.offsets[systems], self.counts[systems]
        index = torch.arange(int(counts.sum()), device=self.device)
        first = torch.cumsum(counts, 0) - counts
        return index - torch.repeat_interleave(first - starts, counts)

    def select(self, systems) -> "Batch":
        """A new batch of copies of ``systems`` (indices, in that order)."""
        systems = torch.as_tensor(systems, dtype=torch.long, device=self.device).reshape(-1)
        atoms = self.atoms_of(systems)
        system = torch.repeat_interleave(torch.arange(len(systems), device=self.device),
                                         self.counts[systems])
        return Batch(self.positions[atoms].clone(), system, self.cells[systems].clone(),
                     self.pbc[systems].clone(), self.species[atoms].clone(),
                     self.frozen[atoms].clone())

    def split(self, values):
        """Split a per-atom tensor into per-system numpy arrays."""
        return [v.detach().cpu().numpy() for v in torch.split(values, self.counts.tolist())]

    def to_structures(self, templates) -> list[Structure]:
        """Copies of ``templates`` with this batch's positions and cells."""
        out = []
        for k, (s, pos) in enumerate(zip(templates, self.split(self.positions), strict=True)):
            new = s.copy()
            new.positions = pos
            new.box = Box(self.cells[k].detach().cpu().numpy(), s.box.pbc, s.box.origin)
            out.append(new)
        return out


@dataclass
class Pairs:
    """Half list of pairs of a batch: r_ij = x[j] + images @ cell[system] - x[i] (Å)."""

    i: torch.Tensor
    j: torch.Tensor
    images: torch.Tensor
    system: torch.Tensor

    def vectors(self, batch: Batch) -> torch.Tensor:
        """Pair vectors (P, d) in Å for the batch's current positions and cells."""
        pos = batch.positions
        images = self.images.to(pos.dtype)
        if batch.n_systems == 1:  # one matrix product: 4x faster than a per-pair product
            shift = images @ batch.cells[0]
        else:
            shift = torch.bmm(images.unsqueeze(1), batch.cells.index_select(0, self.system)).squeeze(1)
        return pos.index_select(0, self.j) + shift - pos.index_select(0, self.i)


class VerletList:
    """Pairs within ``cutoff + skin``, rebuilt per system only when needed.

    :meth:`update` returns the current :class:`Pairs`; potentials must still apply their own
    cutoff (pairs up to ``skin`` beyond it are included). :meth:`select` carries the pairs of
    some systems over to a sub-batch made by :meth:`Batch.select`.
    """

    def __init__(self, cutoff: float, skin: float = 1.0):
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self._per_system = None
        self._pairs = None
        self._reference = None
        self._cells = None
        self.builds = 0

    def update(self, batch: Batch, force: bool = False) -> Pairs:
        """Current pairs, rebuilding the systems whose pairs may be incomplete.

        With A = H_ref^-1 H the affine map from the cell at the last build to the current one
        (rows are lattice vectors) and d the displacement of each atom from its position at
        the last build after mapping back by A^-1, a system is kept while
        ``cutoff (1 / s_min(A) - 1) + 2 max |d| <= skin`` (s_min: smallest singular value),
        which guarantees that every pair now within ``cutoff`` is in the list. Without a
        cell change this is the usual ``max |d| <= skin / 2``; cells of systems with no
        periodic axis are ignored.
        """
        stale = self._stale_systems(batch, force)
        if stale.any():
            self._rebuild(batch, np.flatnonzero(stale.cpu().numpy()))
        return self._pairs

    def _stale_systems(self, batch, force) -> torch.Tensor:
        b = batch.n_systems
        if force or self._per_system is None or len(self._per_system) != b \
                or self._reference.shape != batch.positions.shape:
            self._per_system = [None] * b
            return torch.ones(b, dtype=torch.bool)
        positions = batch.positions.detach()
        cells = batch.cells.detach()
        changed = (cells != self._cells).flatten(1).any(dim=1) & batch.pbc.any(dim=1)
        margin = torch.zeros(b, dtype=positions.dtype, device=positions.device)
        if changed.any():
            # map positions back to the reference cell by A^-1 = H^-1 H_ref (rows are vectors)
            regular = torch.linalg.det(cells).abs() > 1e-9 * cells.flatten(1).norm(dim=1) ** batch.dim
            margin[changed & ~regular] = float("inf")
            changed &= regular
            back = torch.eye(batch.dim, dtype=positions.dtype, device=positions.device).repeat(b, 1, 1)
            back[changed] = torch.linalg.solve(cells[changed], self._cells[changed])
            atoms = changed[batch.system]
            positions = positions.clone()
            positions[atoms] = torch.einsum("na,nab->nb", positions[atoms], back[batch.system[atoms]])
            # 1 / s_min(A) = s_max(A^-1)
            margin[changed] = self.cutoff * (torch.linalg.svdvals(back[changed])[:, 0] - 1.0)
        moved = (positions - self._reference).norm(dim=1)
        worst = torch.zeros(b, dtype=moved.dtype, device=moved.device)
        worst = worst.scatter_reduce(0, batch.system, moved, reduce="amax")
        return (margin + 2.0 * worst > self.skin).cpu()

    def select(self, systems, batch: Batch) -> "VerletList":
        """A list for ``batch.select(systems)`` holding these systems' pairs (no rebuild).

        ``batch`` is the batch this list was last updated with.
        """
        systems = [int(k) for k in systems]
        sub = VerletList(self.cutoff, self.skin)
        if self._per_system is None or any(self._per_system[k] is None for k in systems):
            return sub
        offsets = batch.offsets.cpu().numpy()
        start = 0
        per_system = []
        for k in systems:
            i, j, images = self._per_system[k]
            shift = start - offsets[k]
            per_system.append((i + shift, j + shift, images))
            start += offsets[k + 1] - offsets[k]
        sub._per_system = per_system
        atoms = batch.atoms_of(systems)
        sub._reference = self._reference[atoms].clone()
        sub._cells = self._cells[torch.as_tensor(systems, dtype=torch.long, device=batch.device)].clone()
        sub._pairs = sub._assemble(batch.dim, batch.device)
        return sub

    def _rebuild(self, batch, systems):
        pos = batch.positions.detach().cpu().numpy()
        cells = batch.cells.detach().cpu().numpy()
        pbc = batch.pbc.cpu().numpy()
        offsets = batch.offsets.cpu().numpy()
        for k in systems:
            lo, hi = offsets[k], offsets[k + 1]
            i, j, images, _ = neighbor_pairs(pos[lo:hi], Box(cells[k], pbc[k]),
                                             self.cutoff + self.skin)
            self._per_system[k] = (i + lo, j + lo, images)
            self.builds += 1
        dev = batch.device
        self._pairs = self._assemble(batch.dim, dev)
        if self._reference is None or self._reference.shape != batch.positions.shape \
                or len(systems) == batch.n_systems:
            self._reference = batch.positions.detach().clone()
            self._cells = batch.cells.detach().clone()
        else:  # only the rebuilt systems get a new reference
            rebuilt = torch.zeros(batch.n_systems, dtype=torch.bool, device=dev)
            rebuilt[torch.as_tensor(systems, device=dev)] = True
            atoms = rebuilt[batch.system]
            self._reference[atoms] = batch.positions.detach()[atoms]
            self._cells[rebuilt] = batch.cells.detach()[rebuilt]

    def _assemble(self, dim, dev) -> Pairs:
        i = np.concatenate([p[0] for p in self._per_system])
        j = np.concatenate([p[1] for p in self._per_system])
        images = np.concatenate([p[2] for p in self._per_system]).reshape(-1, dim)
        sizes = [len(p[0]) for p in self._per_system]
        return Pairs(
            torch.as_tensor(i, device=dev), torch.as_tensor(j, device=dev),
            torch.as_tensor(images, device=dev),
            torch.repeat_interleave(torch.arange(len(sizes), device=dev),
                                    torch.as_tensor(sizes, device=dev)),
        )
