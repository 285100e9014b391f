"""Reading and writing structures: extended XYZ (via ASE), LAMMPS data, LAMMPS dump.

Conventions (decisions recorded here):

- Species come from ``type_map`` (LAMMPS type -> symbol) if given; else from the Masses
  section (nearest element within 0.05 amu) or its ``# Si`` comments; else an error.
- A LAMMPS file whose atoms all have the same z is read as a 2D structure (``dim=2``); pass
  ``dim=3`` to keep it 3D.
- LAMMPS files do not store periodicity; data files are read periodic on every axis and dump
  files as their ``BOX BOUNDS`` flags say. An axis along which the atoms leave more than
  ``VACUUM_GAP`` Å of empty space across the boundary (a sheet in a tall box) is read as
  non-periodic, and ``info['vacuum_axes']`` says so. ``pbc=`` overrides both rules.
- Positions are kept as in the file; the LAMMPS ``xlo ylo zlo`` corner becomes ``box.origin``.
- Writers write to a temporary name and rename, so no half-written file is ever left.
"""

from pathlib import Path

import ase.io
import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_open, atomic_path
from glassfrac.structure.box import Box
from glassfrac.structure.structure import MASSES, Structure

VACUUM_GAP = 10.0
"""Empty space (Å) across a boundary above which a LAMMPS axis is read as non-periodic."""

FORMATS = {
    ".xyz": "extxyz", ".extxyz": "extxyz",
    ".data": "lammps-data", ".lmp": "lammps-data", ".lammps": "lammps-data",
    ".twodsilica": "lammps-data",  # JuMol's 2D silica samples are LAMMPS data text
    ".dump": "lammps-dump", ".lammpstrj": "lammps-dump",
}
FORMAT_NAMES = ("extxyz", "lammps-data", "lammps-dump")
"""Formats :func:`read` and :func:`write` know (``format=``; otherwise from the extension, :data:`FORMATS`)."""


def guess_format(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"cannot tell the format from the extension {suffix!r}; use one of "
            f"{sorted(FORMATS)} or pass format=", path
        )
    return FORMATS[suffix]


def read(path, format: str | None = None, index: int = -1, **kwargs) -> Structure:
    """Read one structure (``index``: frame of a multi-frame file, default the last).

    Every problem a user can cause raises :class:`InputError` naming the file (and the line where
    known): a folder or a missing, empty or binary (not UTF-8) file, a malformed line, a NaN or
    infinite coordinate or box bound. Formats: extxyz, lammps-data, lammps-dump (from the extension);
    positions in Å.

    Examples
    --------
    >>> import glassfrac as gf
    >>> gf.write(gf.generate((4, 4), seed=1), "sample.extxyz")
    >>> gf.read("sample.extxyz").n_atoms
    80
    """
    path = Path(path)
    if path.is_dir():
        raise InputError("is a folder, not a structure file", path)
    if not path.is_file():
        raise InputError("file not found", path)
    fmt = format or guess_format(path)
    if fmt not in FORMAT_NAMES:
        raise InputError(f"unknown format {fmt!r}; use one of {list(FORMAT_NAMES)}", path)
    if path.stat().st_size == 0:
        raise InputError(f"the file is empty (expected {fmt})", path)
    try:
        if fmt == "extxyz":
            structure = _read_extxyz(path, index)
        elif fmt == "lammps-data":
            structure = read_lammps_data(path, **kwargs)
        else:
            frames = list(read_lammps_dump(path, **kwargs))
            if not frames:
                raise InputError("no frame in dump file", path)
            structure = frames[index]
    except UnicodeDecodeError:
        raise _not_text(path, fmt) from None
    if structure.n_atoms == 0:
        raise InputError(f"the file holds no atoms (read as {fmt})", path)
    _check_finite(structure, path)
    return structure


def _not_text(path, fmt) -> InputError:
    """The error for a file that is not UTF-8 text, naming the line of its first bad byte."""
    raw = Path(path).read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return InputError(f"not a text file: byte {exc.start} ({raw[exc.start]:#04x}) is not UTF-8 text "
                          f"(expected {fmt})", path, line)
    return InputError(f"not a text file (expected {fmt})", path)


def _check_finite(structure: Structure, path) -> None:
    """Refuse NaN or infinite box vectors or positions (named by atom, 1-based in file order)."""
    if not np.isfinite(structure.box.cell).all() or not np.isfinite(structure.box.origin).all():
        raise InputError(f"non-finite box: cell {structure.box.cell.tolist()}", path)
    bad = np.flatnonzero(~np.isfinite(structure.positions).all(axis=1))
    if len(bad):
        raise _non_finite_atoms(structure.positions, bad, path)


def _non_finite_atoms(xyz, bad, path, line=None, name=None) -> InputError:
    """The error for atoms ``bad`` (row indices of ``xyz``) with NaN or infinite coordinates."""
    k = int(bad[0])
    what = f"atom {k + 1}" if name is None else name
    return InputError(f"non-finite coordinates of {what} ({np.asarray(xyz[k]).tolist()}); {len(bad)} atom(s) "
                      f"have NaN or infinite coordinates", path, line)


def write(structure: Structure, path, format: str | None = None, **kwargs) -> None:
    """Write ``structure`` to ``path`` atomically (format from the extension unless given; positions in Å).

    Examples
    --------
    >>> import glassfrac as gf
    >>> s = gf.generate((4, 4), seed=1)
    >>> gf.write(s, "sample.data")  # LAMMPS data file
    >>> gf.read("sample.data", dim=2).n_atoms
    80
    """
    fmt = format or guess_format(path)
    if fmt == "extxyz":
        _write_extxyz(structure, path)
    elif fmt == "lammps-data":
        write_lammps_data(structure, path, **kwargs)
    elif fmt == "lammps-dump":
        write_lammps_dump(structure, path, **kwargs)
    else:
        raise InputError(f"unknown format {fmt!r}")


# -- extended XYZ ----------------------------------------------------------------------------

def _read_extxyz(path, index):
    try:
        atoms = ase.io.read(path, index=index, format="extxyz")
    except UnicodeDecodeError:
        raise  # reported with its line by read()
    except Exception as exc:  # ASE raises many types; report them uniformly
        raise InputError(f"not a readable extended XYZ file ({exc or type(exc).__name__})", path) from exc
    structure = Structure.from_ase(atoms)
    bad = np.flatnonzero(~np.isfinite(structure.positions).all(axis=1))
    if len(bad):  # the line is known for a one-frame file: a count line, a comment line, the atoms
        with open(path) as handle:
            lines = sum(1 for _ in handle)
        line = int(bad[0]) + 3 if lines == structure.n_atoms + 2 else None
        raise _non_finite_atoms(structure.positions, bad, path, line)
    return structure


def _write_extxyz(structure, path):
    with atomic_path(path) as tmp:
        ase.io.write(tmp, structure.to_ase(), format="extxyz")


# -- LAMMPS data -----------------------------------------------------------------------------

_ATOM_STYLES = {  # style -> (column of type, columns of x y z, column of charge or None)
    "atomic": (1, (2, 3, 4), None),
    "charge": (1, (3, 4, 5), 2),
    "full": (2, (4, 5, 6), 3),
    "molecular": (2, (3, 4, 5), None),
    "bond": (2, (3, 4, 5), None),
}
_SECTIONS = ("Masses", "Atoms", "Velocities", "Bonds", "Angles", "Dihedrals", "Impropers",
             "Pair Coeffs", "Bond Coeffs", "Angle Coeffs", "PairIJ Coeffs")


def read_lammps_data(path, type_map: dict | None = None, atom_style: str | None = None,
                     dim: int | None = None, pbc=None) -> Structure:
    """Read a LAMMPS data file (atom styles atomic, charge, full, molecular, bond)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    header = {}
    bounds = {}
    tilt = (0.0, 0.0, 0.0)
    sections = {}
    style_comment = None
    n = 1
    while n < len(lines):  # header: everything before the first section keyword
        raw = lines[n]
        text = raw.split("#")[0].strip()
        if not text:
            n += 1
            continue
        if text in _SECTIONS:
            break
        words = text.split()
        try:
            if words[-2:] in (["xlo", "xhi"], ["ylo", "yhi"], ["zlo", "zhi"]):
                bounds[words[-2][0]] = (float(words[0]), float(words[1]))
            elif words[-3:] == ["xy", "xz", "yz"]:
                tilt = tuple(float(w) for w in words[:3])
            elif len(words) >= 2 and words[-1] in ("atoms", "bonds", "angles", "types"):
                key = " ".join(words[1:])
                header[key] = int(words[0])
            else:
                raise ValueError
        except ValueError:
            raise InputError(f"unrecognised header line {raw.strip()!r}", path, n + 1) from None
        if not np.isfinite([*tilt, *(v for b in bounds.values() for v in b)]).all():
            raise InputError(f"non-finite box bound or tilt in {raw.strip()!r}", path, n + 1)
        n += 1
    while n < len(lines):  # sections
        text = lines[n].split("#")[0].strip()
        if text in _SECTIONS:
            name = text
            if name == "Atoms" and "#" in lines[n]:
                style_comment = lines[n].split("#", 1)[1].strip()
            start = n + 1
            body = []
            n += 1
            while n < len(lines):
                t = lines[n].split("#")[0].strip()
                if t in _SECTIONS:
                    break
                if t:
                    body.append((n + 1, lines[n]))
                n += 1
            sections[name] = (start, body)
        elif text:
            raise InputError(f"unexpected line {lines[n].strip()!r} outside any section", path, n + 1)
        else:
            n += 1
    if "atoms" not in header:
        raise InputError("header has no 'N atoms' line", path)
    n_atoms = header["atoms"]
    if n_atoms <= 0:
        raise InputError(f"the header says {n_atoms} atoms; a structure needs at least one", path)
    for axis in "xyz":
        if axis not in bounds:
            raise InputError(f"header has no '{axis}lo {axis}hi' line", path)
    if "Atoms" not in sections:
        raise InputError("no Atoms section", path)
    _, body = sections["Atoms"]
    if len(body) != n_atoms:
        raise InputError(f"header says {n_atoms} atoms but the Atoms section has {len(body)} lines", path)

    style = atom_style or (style_comment.split()[0] if style_comment else None)
    if style is None:
        ncol = len(body[0][1].split("#")[0].split())
        style = "atomic" if ncol in (5, 8) else "charge" if ncol in (6, 9) else None
        if style is None:
            raise InputError(
                f"cannot infer the atom style from {ncol} columns; pass atom_style=", path, body[0][0]
            )
    if style not in _ATOM_STYLES:
        raise InputError(f"atom style {style!r} not supported (use {sorted(_ATOM_STYLES)})", path)
    tcol, xcols, qcol = _ATOM_STYLES[style]
    need = max(xcols) + 1
    ids = np.empty(n_atoms, dtype=np.int64)
    types = np.empty(n_atoms, dtype=np.int64)
    xyz = np.empty((n_atoms, 3))
    images = np.zeros((n_atoms, 3), dtype=np.int64)
    charges = np.empty(n_atoms) if qcol is not None else None
    for k, (lineno, raw) in enumerate(body):
        words = raw.split("#")[0].split()
        if len(words) not in (need, need + 3):
            raise InputError(
                f"Atoms line has {len(words)} columns; atom style {style!r} expects {need} "
                f"(or {need + 3} with image flags)", path, lineno,
            )
        try:
            ids[k] = int(words[0])
            types[k] = int(words[tcol])
            xyz[k] = [float(words[c]) for c in xcols]
            if charges is not None:
                charges[k] = float(words[qcol])
            if len(words) == need + 3:
                images[k] = [int(w) for w in words[need:]]
        except ValueError:
            raise InputError(f"non-numeric value in Atoms line {raw.strip()!r}", path, lineno) from None
    bad = np.flatnonzero(~np.isfinite(xyz).all(axis=1))
    if len(bad):
        raise _non_finite_atoms(xyz, bad, path, body[bad[0]][0], f"atom id {ids[bad[0]]}")
    if len(np.unique(ids)) != n_atoms:
        raise InputError("duplicate atom ids in the Atoms section", path)
    order = np.argsort(ids)
    ids, types, xyz, images = ids[order], types[order], xyz[order], images[order]
    if charges is not None:
        charges = charges[order]

    masses = _read_masses(sections.get("Masses"), path)
    species = _species_from_types(types, type_map, masses, path)
    (xlo, xhi), (ylo, yhi), (zlo, zhi) = bounds["x"], bounds["y"], bounds["z"]
    xy, xz, yz = tilt
    cell = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]])
    origin = np.array([xlo, ylo, zlo])
    xyz = xyz + images @ cell
    arrays = {"id": ids, "type": types}
    if charges is not None:
        arrays["charge"] = charges
    structure = _assemble(xyz, species, cell, origin, np.ones(3, bool), pbc, dim, arrays, path)
    structure.info["source"] = str(path)
    structure.info["type_map"] = {int(t): str(s) for t, s in zip(types, species, strict=True)}
    if "Bonds" in sections:
        _attach_bonds(structure, sections["Bonds"], ids, path)
    return structure


def _read_masses(section, path):
    masses = {}
    if section is None:
        return masses
    _, body = section
    for lineno, raw in body:
        words = raw.split("#")[0].split()
        comment = raw.split("#", 1)[1].strip() if "#" in raw else ""
        try:
            masses[int(words[0])] = (float(words[1]), comment)
        except (ValueError, IndexError):
            raise InputError(f"bad Masses line {raw.strip()!r}", path, lineno) from None
    return masses


def _species_from_types(types, type_map, masses, path):
    mapping = {}
    for t in np.unique(types):
        t = int(t)
        if type_map is not None:
            if t not in type_map:
                raise InputError(f"atom type {t} is missing from the type map {type_map}", path)
            mapping[t] = type_map[t]
            continue
        mass, comment = masses.get(t, (None, ""))
        if comment and comment.split()[0] in MASSES:
            mapping[t] = comment.split()[0]
        elif mass is not None:
            best = min(MASSES, key=lambda s: abs(MASSES[s] - mass))
            if abs(MASSES[best] - mass) > 0.05:
                raise InputError(
                    f"atom type {t} has mass {mass} which matches no known element "
                    f"({MASSES}); pass a type map", path,
                )
            mapping[t] = best
        else:
            raise InputError(f"atom type {t}: no mass and no type map, cannot name the species", path)
    return np.array([mapping[int(t)] for t in types])


def _attach_bonds(structure, section, ids, path):
    _, body = section
    index = {int(a): k for k, a in enumerate(ids)}
    pairs = []
    for lineno, raw in body:
        words = raw.split("#")[0].split()
        try:
            pairs.append((index[int(words[2])], index[int(words[3])]))
        except (ValueError, IndexError, KeyError):
            raise InputError(f"bad Bonds line {raw.strip()!r}", path, lineno) from None
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    d = structure.positions[pairs[:, 1]] - structure.positions[pairs[:, 0]]
    f = np.linalg.solve(structure.box.cell.T, d.T).T
    images = np.where(structure.box.pbc, -np.round(f), 0).astype(np.int64)
    structure.set_bonds(pairs, images)


def _assemble(xyz, species, cell, origin, file_pbc, pbc, dim, arrays, path):
    """Build a Structure from 3D file data, applying the 2D and vacuum rules of this module."""
    info = {}
    if dim is None:
        dim = 2 if len(xyz) and np.ptp(xyz[:, 2]) == 0.0 and np.allclose(cell[2, :2], 0) else 3
    if pbc is None:
        pbc = np.array(file_pbc, bool)
        vacuum = []
        frac = np.linalg.solve(cell.T, (xyz - origin).T).T
        spacing = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)  # distance between lattice planes
        for axis in range(dim):
            if pbc[axis] and len(xyz):
                u = np.sort(np.mod(frac[:, axis], 1.0))
                gaps = np.diff(np.concatenate([u, [u[0] + 1.0]])) * spacing[axis]
                if gaps.max() > VACUUM_GAP:
                    pbc[axis] = False
                    vacuum.append("xyz"[axis])
        if vacuum:
            info["vacuum_axes"] = vacuum
    pbc = np.broadcast_to(np.asarray(pbc, bool), (3,))
    if dim == 2:
        if not np.allclose(cell[2, :2], 0) or not np.allclose(cell[:2, 2], 0):
            raise InputError("a 2D structure needs a cell with no z tilt", path)
        box = Box(cell[:2, :2], pbc[:2], origin[:2])
        positions = xyz[:, :2]
    else:
        box = Box(cell, pbc, origin)
        positions = xyz
    return Structure(positions, species, box, arrays=arrays, info=info)


def write_lammps_data(structure: Structure, path, atom_style: str = "atomic",
                      type_map: dict | None = None) -> None:
    """Write a LAMMPS data file (``atomic`` or ``charge`` style; charges from arrays['charge']).

    ``type_map`` maps LAMMPS type -> symbol; default: species in order of first appearance
    in (Si, O, Al) then alphabetical. A 2D structure gets z = 0 and a -0.5..0.5 z extent.
    """
    if atom_style not in ("atomic", "charge"):
        raise InputError("atom_style must be 'atomic' or 'charge'")
    if atom_style == "charge" and "charge" not in structure.arrays:
        raise InputError("atom_style 'charge' needs arrays['charge']")
    type_map = type_map or default_type_map(structure.species)
    type_of = {s: t for t, s in type_map.items()}
    s3 = structure.to_3d(1.0) if structure.dim == 2 else structure
    cell, origin = s3.box.cell, s3.box.origin.copy()
    if structure.dim == 2:
        origin[2] = -0.5
    if not np.allclose([cell[0, 1], cell[0, 2], cell[1, 2]], 0):
        raise InputError("LAMMPS needs a lower-triangular cell (a along x, b in the xy plane)")
    masses = structure.masses
    lines = [f"LAMMPS data file written by glassfrac ({structure.n_atoms} atoms)", "",
             f"{structure.n_atoms} atoms", f"{len(type_map)} atom types", ""]
    for axis, name in enumerate("xyz"):
        lo = origin[axis]
        lines.append(f"{lo:.16g} {lo + cell[axis, axis]:.16g} {name}lo {name}hi")
    if not np.allclose([cell[1, 0], cell[2, 0], cell[2, 1]], 0):
        lines.append(f"{cell[1, 0]:.16g} {cell[2, 0]:.16g} {cell[2, 1]:.16g} xy xz yz")
    lines += ["", "Masses", ""]
    for t, s in sorted(type_map.items()):
        present = structure.species == s
        mass = masses[present][0] if present.any() else MASSES[s]
        lines.append(f"{t} {mass:.6f} # {s}")
    lines += ["", f"Atoms # {atom_style}", ""]
    pos = s3.positions
    for k in range(structure.n_atoms):
        t = type_of[structure.species[k]]
        x, y, z = pos[k]
        if atom_style == "charge":
            lines.append(f"{k + 1} {t} {structure.arrays['charge'][k]:.10g} {x:.16g} {y:.16g} {z:.16g}")
        else:
            lines.append(f"{k + 1} {t} {x:.16g} {y:.16g} {z:.16g}")
    with atomic_open(path) as handle:
        handle.write("\n".join(lines) + "\n")


def default_type_map(species) -> dict:
    """LAMMPS type numbers for species: Si, O, Al first (in that order), then alphabetical."""
    present = set(np.unique(species).tolist())
    order = [s for s in ("Si", "O", "Al") if s in present] + sorted(present - {"Si", "O", "Al"})
    return {k + 1: s for k, s in enumerate(order)}


# -- LAMMPS dump -----------------------------------------------------------------------------

def read_lammps_dump(path, type_map: dict | None = None, dim: int | None = None, pbc=None):
    """Yield the frames of a LAMMPS text dump as Structures.

    Positions from ``x y z`` / ``xu yu zu`` / ``xs ys zs`` / ``xsu ysu zsu`` columns (with
    ``ix iy iz`` applied when present); species from ``element`` or ``type`` (with
    ``type_map``, default 1 = Si, 2 = O, as in the papers' files); every other column becomes
    a per-atom array named as in the file; ``info['timestep']`` holds the step.
    """
    path = Path(path)
    type_map = type_map or {1: "Si", 2: "O"}
    with open(path) as handle:
        lineno = 0

        def next_line():
            nonlocal lineno
            line = handle.readline()
            lineno += 1
            return line

        while True:
            line = next_line()
            if not line:
                return
            if not line.strip():
                continue
            if not line.startswith("ITEM: TIMESTEP"):
                raise InputError(f"expected 'ITEM: TIMESTEP', found {line.strip()!r}", path, lineno)
            try:
                timestep = int(next_line().split()[0])
                if not next_line().startswith("ITEM: NUMBER OF ATOMS"):
                    raise InputError("expected 'ITEM: NUMBER OF ATOMS'", path, lineno)
                n_atoms = int(next_line().split()[0])
                box_line = next_line()
                if not box_line.startswith("ITEM: BOX BOUNDS"):
                    raise InputError("expected 'ITEM: BOX BOUNDS'", path, lineno)
                flags = box_line.split()[3:]
                triclinic = flags[:3] == ["xy", "xz", "yz"]
                flags = flags[3:] if triclinic else flags
                rows = [[float(w) for w in next_line().split()] for _ in range(3)]
            except (ValueError, IndexError):
                raise InputError("malformed dump header", path, lineno) from None
            if not np.isfinite([v for r in rows for v in r]).all():
                raise InputError("non-finite box bound in ITEM: BOX BOUNDS", path, lineno)
            file_pbc = np.array([f == "pp" for f in flags[:3]]) if len(flags) >= 3 else np.ones(3, bool)
            cell, origin = _dump_cell(rows, triclinic)
            atoms_line = next_line()
            if not atoms_line.startswith("ITEM: ATOMS"):
                raise InputError(f"expected 'ITEM: ATOMS', found {atoms_line.strip()!r}", path, lineno)
            columns = atoms_line.split()[2:]
            first = lineno + 1
            text = [next_line() for _ in range(n_atoms)]
            try:
                table = np.array([t.split() for t in text], dtype=object)
                if table.shape != (n_atoms, len(columns)):
                    raise ValueError
            except ValueError:
                bad = next((k for k, t in enumerate(text) if len(t.split()) != len(columns)), 0)
                raise InputError(
                    f"atom line does not have the {len(columns)} columns {columns}", path, first + bad
                ) from None
            yield _dump_frame(table, columns, cell, origin, file_pbc, type_map, dim, pbc,
                              timestep, path, first)


def _dump_cell(rows, triclinic):
    if triclinic:
        (xlo_b, xhi_b, xy), (ylo_b, yhi_b, xz), (zlo, zhi, yz) = rows
        xlo = xlo_b - min(0.0, xy, xz, xy + xz)
        xhi = xhi_b - max(0.0, xy, xz, xy + xz)
        ylo = ylo_b - min(0.0, yz)
        yhi = yhi_b - max(0.0, yz)
    else:
        (xlo, xhi), (ylo, yhi), (zlo, zhi) = (r[:2] for r in rows)
        xy = xz = yz = 0.0
    cell = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]])
    return cell, np.array([xlo, ylo, zlo])


def _dump_frame(table, columns, cell, origin, file_pbc, type_map, dim, pbc, timestep, path, first):
    def col(name, kind=float):
        try:
            return table[:, columns.index(name)].astype(kind)
        except ValueError:
            raise InputError(f"non-numeric value in column {name!r}", path, first) from None

    for names, scaled in ((("x", "y", "z"), False), (("xu", "yu", "zu"), False),
                          (("xs", "ys", "zs"), True), (("xsu", "ysu", "zsu"), True)):
        if all(n in columns for n in names):
            xyz = np.column_stack([col(n) for n in names])
            bad = np.flatnonzero(~np.isfinite(xyz).all(axis=1))
            if len(bad):
                raise _non_finite_atoms(xyz, bad, path, first + int(bad[0]), "the atom on this line")
            if scaled:
                xyz = xyz @ cell + origin
            used = list(names)
            break
    else:
        raise InputError(f"no position columns (x y z, xu yu zu, xs ys zs) in {columns}", path, first)
    if all(n in columns for n in ("ix", "iy", "iz")) and used[0] in ("x", "xs"):
        xyz = xyz + np.column_stack([col(n, int) for n in ("ix", "iy", "iz")]) @ cell
        used += ["ix", "iy", "iz"]
    if "element" in columns:
        species = table[:, columns.index("element")].astype(str)
        used.append("element")
    elif "type" in columns:
        types = col("type", int)
        missing = set(np.unique(types).tolist()) - set(type_map)
        if missing:
            raise InputError(f"atom types {sorted(missing)} missing from type map {type_map}", path, first)
        species = np.array([type_map[t] for t in types])
    else:
        raise InputError("no 'type' or 'element' column", path, first)
    arrays = {}
    for name in columns:
        if name in used:
            continue
        kind = int if name in ("id", "type", "mol") else float
        arrays[name] = col(name, kind)
    if "id" in arrays:
        order = np.argsort(arrays["id"])
        xyz, species = xyz[order], species[order]
        arrays = {k: v[order] for k, v in arrays.items()}
    structure = _assemble(xyz, species, cell, origin, file_pbc, pbc, dim, arrays, path)
    structure.info["timestep"] = timestep
    structure.info["source"] = str(path)
    return structure


def write_lammps_dump(structure: Structure, path, timestep: int = 0, columns=None,
                      append: bool = False, type_map: dict | None = None) -> None:
    """Write one frame (``id type x y z`` plus per-atom ``columns`` from ``arrays``).

    With ``append`` the frame is added to an existing trajectory (not atomic: the frame
    is built in memory and written in one call).
    """
    type_map = type_map or default_type_map(structure.species)
    type_of = {s: t for t, s in type_map.items()}
    s3 = structure.to_3d(1.0) if structure.dim == 2 else structure
    cell, origin = s3.box.cell, s3.box.origin
    triclinic = not np.allclose([cell[1, 0], cell[2, 0], cell[2, 1]], 0)
    flags = " ".join("pp" if p else "ff" for p in s3.box.pbc)
    lo = origin
    hi = origin + np.diag(cell)
    out = ["ITEM: TIMESTEP", str(timestep), "ITEM: NUMBER OF ATOMS", str(structure.n_atoms)]
    if triclinic:
        xy, xz, yz = cell[1, 0], cell[2, 0], cell[2, 1]
        out.append(f"ITEM: BOX BOUNDS xy xz yz {flags}")
        out.append(f"{lo[0] + min(0.0, xy, xz, xy + xz):.16g} {hi[0] + max(0.0, xy, xz, xy + xz):.16g} {xy:.16g}")
        out.append(f"{lo[1] + min(0.0, yz):.16g} {hi[1] + max(0.0, yz):.16g} {xz:.16g}")
        out.append(f"{lo[2]:.16g} {hi[2]:.16g} {yz:.16g}")
    else:
        out.append(f"ITEM: BOX BOUNDS {flags}")
        out += [f"{lo[a]:.16g} {hi[a]:.16g}" for a in range(3)]
    columns = list(columns or [])
    out.append("ITEM: ATOMS id type x y z " + " ".join(columns))
    extra = [np.asarray(structure.arrays[c]).reshape(structure.n_atoms, -1) for c in columns]
    for k in range(structure.n_atoms):
        x, y, z = s3.positions[k]
        fields = [str(k + 1), str(type_of[structure.species[k]]), f"{x:.16g}", f"{y:.16g}", f"{z:.16g}"]
        for arr in extra:
            fields += [f"{v:.10g}" for v in arr[k]]
        out.append(" ".join(fields))
    text = "\n".join(out) + "\n"
    if append:
        with open(path, "a") as handle:
            handle.write(text)
    else:
        with atomic_open(path) as handle:
            handle.write(text)
