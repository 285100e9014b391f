"""Atoms in a box: positions, species, optional bonds with periodic images, per-atom arrays."""

import copy

import ase
import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.structure.box import Box

MASSES = {"Si": 28.0855, "O": 15.9994, "Al": 26.9815}
"""Atomic masses in amu (reference/potentials.md)."""


class Structure:
    """Positions (N, dim) in Å, species symbols (N,), a :class:`Box`, optional bonds.

    Bonds are pairs ``(i, j)`` with an integer ``bond_images`` row ``n`` each: the bonded
    partner of ``i`` is ``j`` displaced by ``n @ box.cell``. ``arrays`` holds per-atom
    arrays (first axis N); ``info`` holds free metadata (JSON-serialisable values).
    """

    def __init__(self, positions, species, box: Box, bonds=None, bond_images=None,
                 arrays=None, info=None):
        positions = np.array(positions, dtype=float)
        if positions.ndim != 2 or positions.shape[1] != box.dim:
            raise InputError(
                f"positions must have shape (N, {box.dim}) for a {box.dim}D box, "
                f"got {positions.shape}"
            )
        n = positions.shape[0]
        species = np.asarray(species).astype(str)
        if species.shape != (n,):
            raise InputError(f"species must have shape ({n},), got {species.shape}")
        self.positions = positions
        self.species = species
        self.box = box
        self.bonds = None
        self.bond_images = None
        if bonds is not None:
            self.set_bonds(bonds, bond_images)
        self.arrays = {}
        for key, value in (arrays or {}).items():
            self.set_array(key, value)
        self.info = dict(info or {})

    # -- basic properties ---------------------------------------------------------------
    @property
    def n_atoms(self) -> int:
        return self.positions.shape[0]

    def __len__(self) -> int:
        return self.n_atoms

    @property
    def dim(self) -> int:
        return self.box.dim

    @property
    def masses(self) -> np.ndarray:
        """Per-atom masses in amu (``arrays['mass']`` if present, else the element's)."""
        if "mass" in self.arrays:
            return self.arrays["mass"]
        try:
            return np.array([MASSES[s] for s in self.species])
        except KeyError as exc:
            raise KeyError(f"no mass known for species {exc.args[0]!r}; set arrays['mass']") from None

    def count(self, symbol: str) -> int:
        return int(np.count_nonzero(self.species == symbol))

    def set_array(self, name: str, values) -> None:
        values = np.asarray(values)
        if values.shape[:1] != (self.n_atoms,):
            raise InputError(f"per-atom array {name!r} must have first axis {self.n_atoms}")
        self.arrays[name] = values

    def set_bonds(self, bonds, images=None) -> None:
        """Set the bond list (M, 2) and its periodic images (M, dim; zeros if omitted)."""
        bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
        if images is None:
            images = np.zeros((len(bonds), self.dim), dtype=np.int64)
        images = np.asarray(images, dtype=np.int64).reshape(len(bonds), self.dim)
        if len(bonds) and (bonds.min() < 0 or bonds.max() >= self.n_atoms):
            raise InputError("bond indices out of range")
        self.bonds, self.bond_images = bonds, images

    # -- geometry -------------------------------------------------------------------------
    def bond_vectors(self) -> np.ndarray:
        """Vectors from atom i to its bonded partner j (with image), Å, shape (M, dim)."""
        if self.bonds is None:
            raise InputError("structure has no bonds")
        i, j = self.bonds.T
        return self.positions[j] + self.box.image_shift(self.bond_images) - self.positions[i]

    def coordination(self) -> np.ndarray:
        """Number of bonds per atom (from the bond list)."""
        if self.bonds is None:
            raise InputError("structure has no bonds")
        return np.bincount(self.bonds.ravel(), minlength=self.n_atoms)

    def copy(self) -> "Structure":
        return Structure(
            self.positions.copy(), self.species.copy(), self.box,
            None if self.bonds is None else self.bonds.copy(),
            None if self.bond_images is None else self.bond_images.copy(),
            {k: v.copy() for k, v in self.arrays.items()}, _deepcopy_info(self.info),
        )

    def wrapped(self) -> "Structure":
        """A copy with positions wrapped into the cell; bond images are updated to match."""
        out = self.copy()
        f = self.box.fractional(self.positions)
        shift = np.zeros_like(f)
        shift[:, self.box.pbc] = np.floor(f[:, self.box.pbc])
        out.positions = self.box.cartesian(f - shift)
        if out.bonds is not None:
            s = shift.astype(np.int64)
            i, j = out.bonds.T
            out.bond_images = out.bond_images + s[j] - s[i]
        return out

    def deformed(self, F) -> "Structure":
        """A copy after the affine map x -> F x of positions and box (bonds unchanged)."""
        F = np.asarray(F, float)
        out = self.copy()
        out.positions = self.positions @ F.T
        out.box = self.box.deformed(F)
        return out

    def select(self, mask) -> "Structure":
        """The atoms where ``mask`` is true (or at the given indices), bonds among them kept."""
        idx = np.arange(self.n_atoms)[mask]
        out = Structure(
            self.positions[idx], self.species[idx], self.box,
            arrays={k: v[idx] for k, v in self.arrays.items()}, info=_deepcopy_info(self.info),
        )
        if self.bonds is not None:
            new_index = np.full(self.n_atoms, -1)
            new_index[idx] = np.arange(len(idx))
            b = new_index[self.bonds]
            keep = (b >= 0).all(axis=1)
            out.set_bonds(b[keep], self.bond_images[keep])
        return out

    def to_3d(self, height: float = 0.0) -> "Structure":
        """A 3D copy of a 2D structure (z = 0, non-periodic z)."""
        if self.dim == 3:
            return self.copy()
        out = self.copy()
        out.positions = np.column_stack([self.positions, np.zeros(self.n_atoms)])
        out.box = self.box.to_3d(height)
        if out.bonds is not None:
            out.bond_images = np.column_stack([out.bond_images, np.zeros(len(out.bonds), int)])
        return out

    # -- ASE ------------------------------------------------------------------------------
    def to_ase(self):
        """An ``ase.Atoms`` (3D; a 2D structure gets z = 0 and a zero, non-periodic z vector).

        Bonds travel in ``atoms.info['bonds']`` as rows ``i j n_x n_y [n_z]``; ``info['dim']``
        records the dimension so :meth:`from_ase` restores a 2D structure.
        """

        s = self.to_3d(0.0) if self.dim == 2 else self
        atoms = ase.Atoms(
            symbols=list(self.species), positions=s.positions - s.box.origin,
            cell=s.box.cell, pbc=s.box.pbc,
        )
        atoms.info.update(self.info)
        atoms.info["dim"] = self.dim
        if np.any(s.box.origin != 0):
            atoms.info["origin"] = s.box.origin.copy()
        if self.bonds is not None:
            atoms.info["bonds"] = np.column_stack([self.bonds, self.bond_images]).ravel()
        for key, value in self.arrays.items():
            if key == "mass":
                atoms.set_masses(value)
            else:
                atoms.arrays[key] = np.asarray(value)
        return atoms

    @classmethod
    def from_ase(cls, atoms, dim: int | None = None) -> "Structure":
        """Build from ``ase.Atoms``; ``dim`` defaults to ``atoms.info['dim']`` or 3."""
        info = dict(atoms.info)
        dim = int(info.pop("dim", 3) if dim is None else dim)
        info.pop("dim", None)
        origin = np.asarray(info.pop("origin", np.zeros(3)), float)
        bonds = info.pop("bonds", None)
        cell = np.array(atoms.cell[:])
        positions = atoms.positions + origin
        if dim == 2:
            box = Box(cell[:2, :2], atoms.pbc[:2], origin[:2])
            positions = positions[:, :2]
        else:
            box = Box(cell, atoms.pbc, origin)
        arrays = {
            k: np.array(v) for k, v in atoms.arrays.items() if k not in ("positions", "numbers")
        }
        out = cls(positions, atoms.get_chemical_symbols(), box, arrays=arrays, info=info)
        if bonds is not None:
            rows = np.asarray(bonds, dtype=np.int64).reshape(-1, 2 + dim)
            out.set_bonds(rows[:, :2], rows[:, 2:])
        return out

    def __repr__(self) -> str:
        counts = ", ".join(f"{s}={self.count(s)}" for s in np.unique(self.species))
        nb = "" if self.bonds is None else f", {len(self.bonds)} bonds"
        return f"Structure({self.dim}D, {self.n_atoms} atoms: {counts}{nb}, {self.box!r})"


def _deepcopy_info(info: dict) -> dict:
    return copy.deepcopy(info)
