"""Non-finite energies, forces and stresses stop a computation with an error that names the atoms.

Two atoms on top of each other (a bad input file, a broken generator) give an infinite pair energy
and NaN forces; a minimiser or a loading run that carried on would report NaN as a result, or
"did not converge". :func:`non_finite` finds such systems of a batch and says what went wrong
there (:func:`describe`), and :func:`check_finite` raises
:class:`~glassfrac.core.errors.NonFiniteError` for the first of them: atoms closer than
:data:`OVERLAP` Å (the usual cause), atoms with non-finite positions, or atoms with non-finite
forces. Atom numbers are 0-based indices of the system's structure (the order of
:class:`~glassfrac.structure.Structure`, which for LAMMPS files is the order of the atom ids).
"""

import numpy as np
import torch

from glassfrac.core.errors import NonFiniteError
from glassfrac.potentials import Batch, Potential, VerletList
from glassfrac.structure import Box, Structure
from glassfrac.structure.neighbors import neighbor_pairs

OVERLAP = 0.5
"""Atoms closer than this (Å) are reported as overlapping (no bond of the glasses here is shorter than 1.4 Å)."""


def describe(batch: Batch, system: int, forces: torch.Tensor | None = None, limit: int = 5) -> str:
    """What is wrong in ``system`` of ``batch``: its overlapping atoms (up to ``limit`` closest pairs),
    else its atoms with non-finite positions or ``forces`` (per atom of the whole batch)."""
    atoms = batch.atoms_of([system])
    positions = batch.positions[atoms].detach().cpu().numpy()
    bad = np.flatnonzero(~np.isfinite(positions).all(axis=1))
    if len(bad):
        return f"{len(bad)} atom(s) have non-finite positions (atoms {bad[:limit].tolist()})"
    box = Box(batch.cells[system].detach().cpu().numpy(), batch.pbc[system].cpu().numpy())
    i, j, _, vectors = neighbor_pairs(positions, box, OVERLAP)
    if len(i):
        distance = np.linalg.norm(vectors, axis=1)
        order = np.argsort(distance, kind="stable")[:limit]
        pairs = ", ".join(f"{int(i[k])} and {int(j[k])} ({distance[k]:.3g} Å apart)" for k in order)
        return f"overlapping atoms (0-based indices; closer than {OVERLAP} Å): {pairs}" + (
            f" and {len(i) - limit} more pairs" if len(i) > limit else "")
    if forces is not None:
        f = forces[atoms].detach().cpu().numpy()
        bad = np.flatnonzero(~np.isfinite(f).all(axis=1))
        if len(bad):
            return f"non-finite forces on atoms {bad[:limit].tolist()}" + (
                f" and {len(bad) - limit} more" if len(bad) > limit else "")
    return f"no two atoms are closer than {OVERLAP} Å"


def non_finite(batch: Batch, where: str, energy, *others, forces: torch.Tensor | None = None) -> dict:
    """``{system: what is wrong}`` for the systems whose ``energy`` (per system, eV) or any of ``others`` (per
    system along the first axis: max force, stress tensor...; tensors or arrays) is NaN or infinite; ``where``
    says when (e.g. "at the start of the relaxation"); ``forces`` (per atom) help to name the atoms."""
    energy = torch.as_tensor(energy).detach().cpu()
    finite = torch.ones(len(energy), dtype=torch.bool)
    for values in (energy, *others):
        values = torch.as_tensor(values).detach().cpu()
        finite &= torch.isfinite(values).reshape(len(energy), -1).all(dim=1)
    return {int(k): f"non-finite energy, forces or stress {where} (energy {float(energy[k]):g} eV): "
                    f"{describe(batch, int(k), forces)}" for k in torch.nonzero(~finite).flatten()}


def check_finite(batch: Batch, where: str, energy, *others, forces: torch.Tensor | None = None) -> None:
    """Raise :class:`NonFiniteError` for the first system :func:`non_finite` finds (arguments as there)."""
    found = non_finite(batch, where, energy, *others, forces=forces)
    if found:
        k = min(found)
        raise NonFiniteError((f"system {k} of {batch.n_systems}: " if batch.n_systems > 1 else "") + found[k])


def check_structure(potential: Potential, structure: Structure, where: str = "in the input structure") -> None:
    """One evaluation of ``potential`` on ``structure``: :class:`NonFiniteError` (naming the atoms) if its
    energy or forces are not finite. For methods that do not relax the whole sample first (local probing)."""
    batch = potential.batch([structure])
    res = potential.compute(batch, VerletList(potential.cutoff, skin=0.0).update(batch), virial=False)
    check_finite(batch, where, res.energy, res.forces[None], forces=res.forces)
