"""Campaign exports (``glassfrac dataset export``) read back for the learning stages, checked.

An export is one ``.npz`` (samples concatenated, ``atom_start`` offsets) or a folder with
``manifest.json`` and one ``.npz`` per sample (:mod:`glassfrac.campaign.export` lists the
arrays). Before any structure is built, :func:`read_export` checks that the file is an ``.npz``
of plain arrays, that the arrays every reader needs are there with the right shapes, types and
finite values, and that the offsets and the manifest hold together; anything else is an
:class:`~glassfrac.core.errors.InputError` naming the file and the array.
"""

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.structure import Box, Structure

SAMPLE_ARRAYS = {"sample_id": "U", "dim": "i", "cell": "f", "pbc": "b"}
"""Per-sample arrays every export has (kind: U text, i integer, f number, b boolean)."""
ATOM_ARRAYS = {"positions": "f", "species": "U"}
"""Per-atom arrays every export has."""
OPTIONAL_SAMPLE = ("mu2", "rupture_strain", "rupture_location")
"""Per-sample arrays read when present (NaN: not known)."""
_TRAILING = {"cell": (3, 3), "pbc": (3,), "positions": (3,), "rupture_location": (3,)}
_KINDS = {"U": "US", "i": "iu", "f": "iuf", "b": "biu"}
_UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def read_npz(path) -> dict:
    """All arrays of the ``.npz`` file ``path``; a file that is not an ``.npz`` of plain arrays
    (pickled objects included) is an InputError naming it."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError("expected a .npz archive of named arrays, got a single .npy array", path)
        with data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except _UNREADABLE as exc:
        raise InputError(f"not a readable .npz archive of arrays ({type(exc).__name__}: {exc})", path) from None


def read_export(path, per_atom=(), tables=()) -> list:
    """The samples of the export at ``path``: dicts with ``sample_id`` (str), ``index``, ``dim``, ``cell``
    (3, 3), ``pbc`` (3,), ``positions`` (n, 3), ``species`` (n,), the arrays of
    :data:`OPTIONAL_SAMPLE` present, each name of ``per_atom`` (n,) or None if absent, and the rows of the
    sample in each row table named by its prefix in ``tables`` (``"event_"``, ``"curve_"``, ``"window_"``: every
    array of that table; none if the export has no such table)."""
    path = Path(path)
    if path.is_dir():
        return _folder(path, per_atom, tables)
    arrays = read_npz(path)
    if "atom_start" not in arrays:
        raise InputError("not a concatenated dataset export: no 'atom_start' array", path)
    return _samples(arrays, path, per_atom, tables)


def _folder(path: Path, per_atom, tables) -> list:
    manifest_path = path / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a dataset manifest (JSON): {exc}", manifest_path) from None
    entries = manifest.get("samples") if isinstance(manifest, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("file"), str)
                                                for e in entries):
        raise InputError("expected a JSON object with 'samples': a list of {\"file\": ..., \"sample_id\": ...}",
                         manifest_path)
    out = []
    for entry in entries:
        file = path / entry["file"]
        if not file.resolve().is_relative_to(path.resolve()) or not file.is_file():
            raise InputError(f"lists {entry['file']!r}, which is not a file in the folder", manifest_path)
        arrays = read_npz(file)
        n = len(np.atleast_1d(arrays.get("species", [])))
        arrays["atom_start"] = np.array([0, n])
        for prefix in tables:  # a sample file holds its own rows only
            column = next((k for k in arrays if k.startswith(prefix)), None)
            arrays[f"{prefix}sample"] = np.zeros(0 if column is None else len(arrays[column]), np.int64)
        out += _samples(arrays, file, per_atom, tables)
    return out


def _samples(arrays: dict, path, per_atom, tables=()) -> list:
    """Check the arrays of a concatenated export (module docstring) and split them per sample."""
    missing = [k for k in (*SAMPLE_ARRAYS, *ATOM_ARRAYS) if k not in arrays]
    if missing:
        raise InputError(f"not a dataset export: no {missing} array(s)", path)
    n_samples = len(np.atleast_1d(arrays["sample_id"]))
    start = arrays["atom_start"]
    if start.ndim != 1 or start.dtype.kind not in "iu" or len(start) != n_samples + 1 or start[0] != 0 \
            or np.any(np.diff(start) < 0):
        raise InputError(f"array 'atom_start': expected {n_samples + 1} non-decreasing offsets from 0, got "
                         f"{start.dtype} {start.shape}", path)
    n_atoms = int(start[-1])
    wanted = {**{k: (n_samples, v) for k, v in SAMPLE_ARRAYS.items()},
              **{k: (n_atoms, v) for k, v in ATOM_ARRAYS.items()},
              **{k: (n_samples, "f") for k in OPTIONAL_SAMPLE if k in arrays},
              **{k: (n_atoms, "f") for k in per_atom if k in arrays}}
    for name, (rows, kind) in wanted.items():
        a = arrays[name]
        shape = (rows, *_TRAILING.get(name, ()))
        if a.shape != shape or a.dtype.kind not in _KINDS[kind]:
            raise InputError(f"array {name!r}: expected shape {shape} of {_kind_name(kind)}, got {a.dtype} "
                             f"{a.shape}", path)
        if name in ("cell", "positions") and not np.all(np.isfinite(a)):
            raise InputError(f"array {name!r} holds non-finite numbers", path)
    if not np.all(np.isin(arrays["dim"], (2, 3))):
        raise InputError(f"array 'dim': expected 2 or 3 per sample, got {np.unique(arrays['dim']).tolist()}", path)
    out = []
    for s in range(n_samples):
        atoms = slice(int(start[s]), int(start[s + 1]))
        item = {"sample_id": str(arrays["sample_id"][s]), "dim": int(arrays["dim"][s]),
                "cell": np.asarray(arrays["cell"][s], float), "pbc": np.asarray(arrays["pbc"][s], bool),
                "positions": np.asarray(arrays["positions"][atoms], float),
                "species": arrays["species"][atoms].astype(str), "source": str(path)}
        item.update({k: np.asarray(arrays[k][s], float) for k in OPTIONAL_SAMPLE if k in arrays})
        item.update({k: arrays[k][atoms] if k in arrays else None for k in per_atom})
        if "index" in arrays:
            item["index"] = int(arrays["index"][s])
        for prefix in tables:
            rows = np.asarray(arrays.get(f"{prefix}sample", np.zeros(0, np.int64))) == s
            item.update({k: v[rows] for k, v in arrays.items() if k.startswith(prefix) and k != f"{prefix}sample"})
        out.append(item)
    return out


def shear_event_sites(sample: dict) -> np.ndarray:
    """(k, 3) locations (Å; the atom that moved most, in the undeformed sample) of the shear events of a sample
    read with the ``"event_"`` table, in order; maps use their first two axes, per-atom scores all three."""
    shear = sample["event_test"] == "shear"
    return sample["event_location"][shear][np.argsort(sample["event_rank"][shear])]


def _kind_name(kind: str) -> str:
    return {"U": "text", "i": "integers", "f": "numbers", "b": "booleans"}[kind]


def export_structure(sample: dict, arrays: dict | None = None, info: dict | None = None) -> Structure:
    """The structure of one sample of :func:`read_export` (its first ``dim`` axes), with
    ``arrays`` and ``info``; a sample the structure refuses (a degenerate cell, unknown
    species) is an InputError naming the file and the sample."""
    dim = sample["dim"]
    try:
        box = Box(sample["cell"][:dim, :dim], sample["pbc"][:dim])
        return Structure(sample["positions"][:, :dim], sample["species"], box, arrays=arrays or {}, info=info or {})
    except InputError as exc:
        raise InputError(f"sample {sample['sample_id']!r}: {exc}", sample["source"]) from None
