"""ASE calculators for glassfrac's potentials, so ASE's optimisers and MD run on them.

:class:`GlassfracCalculator` wraps any :class:`~glassfrac.potentials.base.Potential` (``yukawa2d``,
``watanabe``, and ``matsui`` through LAMMPS) and gives, in ASE's units and conventions:

- ``energy`` / ``free_energy`` (eV) and ``energies`` (eV per atom, summing to the energy);
- ``forces`` (eV/Å, shape (N, 3));
- ``stress`` (eV/Å³, Voigt order xx, yy, zz, yz, xz, xy): σ = (1/V) ∂E/∂ε, positive in tension, as
  ASE's own ``calculate_numerical_stress``; V is the ASE cell volume ``atoms.get_volume()``. It equals
  −W / V with W glassfrac's virial (:mod:`glassfrac.potentials.base`);
- ``stresses`` (eV/Å³ per atom, −W_i / V with the same V, summing to ``stress``), as ASE's LJ calculator.

2D sheets (the ``yukawa2d`` monolayer, 2 coordinates in glassfrac) map to ASE as a flat layer:
z = 0 for every atom, pbc (True, True, False) and a third cell vector (0, 0, h) of free height h
(:func:`to_atoms` uses :data:`SHEET_HEIGHT`); ``atoms.info['dim'] = 2`` marks them (as
:meth:`Structure.to_ase <glassfrac.structure.Structure.to_ase>` does). The calculator evaluates the sheet
in the plane of its first two cell vectors (any orientation, so ASE's shear strains of the cell, which
tilt it, are fine) and returns forces in that plane, so ASE dynamics keep it flat as long as the
out-of-plane velocities are zero. Energy and forces do not depend on h; the stress does (V = area × h):
glassfrac's sheet stress in eV/Å² is ASE's stress × h (× 16.0218 for N/m), and its components along the
normal are zero. A sheet whose third vector is zero has no volume, and asking for its stress is an error
that says so.
"""

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from glassfrac.core.errors import InputError
from glassfrac.potentials import get_potential
from glassfrac.potentials.base import Potential
from glassfrac.structure import Box, Structure

SHEET_HEIGHT = 10.0
"""Height h (Å) of the third cell vector :func:`to_atoms` gives a 2D sheet; it sets V = area × h for the stress."""


class GlassfracCalculator(Calculator):
    """An ASE calculator evaluating ``potential`` (a :class:`Potential` or a name for
    :func:`~glassfrac.potentials.get_potential`); units and the 2D mapping in the module docstring.

    Examples
    --------
    >>> from glassfrac.potentials.ase_calculator import GlassfracCalculator, to_atoms
    >>> from glassfrac.generate import generate
    >>> atoms = to_atoms(generate((4, 4), mu2=0.3, kind="monolayer", seed=1))
    >>> atoms.calc = GlassfracCalculator("yukawa2d")
    >>> atoms.get_forces().shape
    (80, 3)
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "stresses"]

    def __init__(self, potential: Potential | str, **kwargs):
        super().__init__(**kwargs)
        self.potential = get_potential(potential) if isinstance(potential, str) else potential
        if not isinstance(self.potential, Potential):
            raise InputError(f"potential must be a glassfrac Potential or a name, got {type(potential).__name__}")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        structure, frame = structure_of(atoms)
        out = self.potential.evaluate([structure], per_atom=True)[0]
        frame = np.eye(3) if frame is None else frame  # rows: the structure's axes in ASE's frame
        forces = out["forces"] @ frame
        self.results = {"energy": out["energy"], "free_energy": out["energy"],
                        "energies": np.asarray(out["per_atom_energy"], float).copy(), "forces": forces}
        volume = abs(float(np.linalg.det(atoms.cell[:])))
        if volume > 1e-12:
            virial = frame.T @ out["virial"] @ frame
            per_atom = frame.T @ out["per_atom_virial"] @ frame
            self.results["stress"] = full_3x3_to_voigt_6_stress(-virial / volume)
            self.results["stresses"] = full_3x3_to_voigt_6_stress(-per_atom / volume)
        elif "stress" in properties or "stresses" in properties:
            raise InputError("the cell has zero volume, so ASE's stress (eV/Å³) is undefined: give a 2D sheet a "
                             "third cell vector (0, 0, h), as glassfrac.potentials.ase_calculator.to_atoms does")


def structure_of(atoms: Atoms) -> tuple[Structure, np.ndarray | None]:
    """The glassfrac :class:`Structure` an ASE calculator evaluates for ``atoms``, and for a 2D sheet
    (``atoms.info['dim'] == 2``) the rows (2, 3) of the sheet's in-plane frame: e1 along the first cell
    vector a, e2 in the plane of a and b (None for 3D). The sheet must be flat (every atom in the plane of
    a and b through the first atom) with pbc (x, y, False); it may lie in any plane, so ASE's tilting
    finite-difference strains stay valid."""
    cell = np.array(atoms.cell[:], float)
    symbols = atoms.get_chemical_symbols()
    if int(atoms.info.get("dim", 3)) != 2:
        return Structure(atoms.positions, symbols, Box(cell, atoms.pbc)), None
    normal = np.cross(cell[0], cell[1])
    if atoms.pbc[2] or np.linalg.norm(normal) < 1e-12:
        raise InputError("a 2D sheet (atoms.info['dim'] = 2) needs two independent in-plane cell vectors a, b "
                         "and pbc (x, y, False)")
    e1 = cell[0] / np.linalg.norm(cell[0])
    e3 = normal / np.linalg.norm(normal)
    frame = np.array([e1, np.cross(e3, e1)])
    height = (atoms.positions - atoms.positions[:1]) @ e3
    if len(height) and np.ptp(height) > 1e-8:
        raise InputError(f"a 2D sheet must stay flat: its atoms span {np.ptp(height):.3g} Å out of its plane "
                         "(zero the z components of the velocities)")
    return Structure(atoms.positions @ frame.T, symbols, Box(cell[:2] @ frame.T, atoms.pbc[:2])), frame


def to_atoms(structure: Structure, potential: Potential | str | None = None,
             height: float = SHEET_HEIGHT) -> Atoms:
    """``structure`` as ``ase.Atoms`` ready for :class:`GlassfracCalculator`: glassfrac's masses (amu,
    reference/potentials.md, not ASE's), a 2D sheet flat at z = 0 with the third cell vector (0, 0,
    ``height`` Å) and pbc (x, y, False); with ``potential``, the calculator attached.

    Examples
    --------
    >>> import glassfrac as gf
    >>> atoms = gf.to_atoms(gf.generate((4, 4), seed=1), potential="yukawa2d")
    >>> atoms.pbc.tolist(), atoms.cell[2].tolist(), atoms.get_potential_energy() < 0
    ([True, True, False], [0.0, 0.0, 10.0], True)
    """
    atoms = structure.to_ase()
    if structure.dim == 2:
        if height <= 0:
            raise InputError(f"height must be positive (Å), got {height}")
        cell = np.array(atoms.cell[:], float)
        cell[2] = [0.0, 0.0, height]
        atoms.set_cell(cell, scale_atoms=False)
    atoms.set_masses(structure.masses)
    if potential is not None:
        atoms.calc = GlassfracCalculator(potential)
    return atoms
