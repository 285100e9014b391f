"""Export a campaign as plain arrays for the learning stages (``glassfrac dataset export``).

Two forms, same array names, no pickled objects (``np.load(path)`` with the default
``allow_pickle=False`` reads them):

- ``DATASET.npz``: all samples concatenated. Per-sample arrays have S rows (sample order of
  the campaign); per-atom arrays have N = Σ n_atoms rows, sample ``s`` owning rows
  ``atom_start[s]:atom_start[s + 1]``; events and curve points carry the row ``s`` of their
  sample in ``event_sample`` / ``curve_sample``.
- a folder: ``manifest.json`` (format, metadata, the sample files) and one
  ``<sample_id>.npz`` per sample, with the same names minus ``atom_start``, ``event_sample``
  and ``curve_sample``.

Arrays (units: Å, eV, strain dimensionless, stress in the test's ``stress_unit``, N/m for
sheets). Positions, locations and window centres are measured from the corner of the cell (``cell``), whatever
origin the sample's box had:

=========================  =======  ==========================================================
name                       shape    meaning
=========================  =======  ==========================================================
format, metadata           ()       format tag; JSON text (campaign definition, units, fields)
sample_id, kind            (S,)     str
index, dim, nx, ny, seed   (S,)     int64: sample index, 2 or 3, rings, generator seed
mu2, mu2_target            (S,)     measured ring-size variance; target (NaN if none)
rupture_strain             (S,)     strain of the first bond break (NaN: no break / no tension)
rupture_location           (S, 3)   midpoint of the first broken bond, undeformed sample
                                    (z = 0 for 2D; NaN if none)
cell, pbc                  (S,3,3)  cell vectors as rows (2D: z row zero); periodic flags (S, 3)
key_<name>                 (S,)     every other numeric key-value pair of the rows (NaN if absent)
atom_start                 (S+1,)   atom offsets (concatenated form only)
positions                  (N, 3)   relaxed undeformed positions (z = 0 for 2D samples)
species, numbers           (N,)     element symbols; atomic numbers
first_break, bond_changed, (N,)     per-atom labels (int8 classes, or floats), one name per
crack, ...                          per-atom array of the rows; −1 / NaN where a sample has none
event_sample, event_rank   (E,)     sample row; 1, 2, ... within the sample and test
event_test, event_kind     (E,)     "tension" | "shear"; kinds joined by "+"
event_strain(_before)      (E,)     event strain and the last event-free strain before it
event_stress_drop          (E,)     stress drop of the event
event_location             (E, 3)   event site in the undeformed sample (z = 0 for 2D)
event_atom                 (E,)     atom that moved most (−1 if not recorded)
curve_sample, curve_test   (C,)     stress–strain curves, point by point, sorted by strain
curve_strain, curve_stress (C,)
window_sample              (W,)     probed samples' threshold maps, window by window (grid order)
window_centre              (W, 2)   window centre in the undeformed sample, Å
window_threshold           (W,)     local shear-stress threshold Δτ of the window, N/m
=========================  =======  ==========================================================

The windows come from the probe stage's ``map.npz`` of each sample folder (the folder also holds
``structure.xyz`` and ``events.json`` in the layout :func:`glassfrac.learn.windows.load_probed` reads).
"""

import json
from pathlib import Path

import numpy as np

from glassfrac.campaign.store import CampaignStore, row_structure
from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_open
from glassfrac.core.outputs import OutputFolder, check_file
from glassfrac.core.provenance import now
from glassfrac.labels.probe import ThresholdMap

FORMAT = "glassfrac-dataset-2"
"""Format tag. Version 2: every position, location and window centre is measured from the cell's corner (the
frame of ``positions`` and ``cell``); version 1 gave the locations in the frame of the sample's box, whose corner
is at z = −height/2 for generated bilayers."""
TESTS = ("tension", "shear")
TABLES = {"event_": "event_test", "curve_": "curve_test", "window_": "window_threshold"}
"""Row tables of a dataset (name prefix → the column that counts a sample's rows); ``<prefix>sample`` gives
each row's sample in the concatenated form."""
_SAMPLE_FIELDS = ("sample_id", "kind", "index", "dim", "nx", "ny", "seed", "mu2", "mu2_target",
                  "rupture_strain", "rupture_location", "cell", "pbc")


def sample_arrays(row, folder=None) -> dict:
    """The arrays of one stored sample (module docstring), without the concatenation fields; ``folder``: the
    sample's folder, whose ``map.npz`` (if the sample was probed) gives the window table."""
    structure = row_structure(row)
    atoms = row.toatoms()  # positions from the cell's corner: the labels' locations are moved to that frame
    corner = _xyz([structure.box.origin])[0]
    kvp, data = row.key_value_pairs, row.data
    n = structure.n_atoms
    tension = data.get("tension", {}).get("labels", {})
    location = tension.get("rupture_location")
    out = {
        "sample_id": np.array([row.sample_id]), "kind": np.array([row.kind]),
        "index": np.array([row.index], np.int64), "dim": np.array([structure.dim], np.int64),
        "nx": np.array([kvp.get("nx", -1)], np.int64), "ny": np.array([kvp.get("ny", -1)], np.int64),
        "seed": np.array([kvp.get("seed", -1)], np.int64),
        "mu2": np.array([kvp.get("mu2", np.nan)], float),
        "mu2_target": np.array([kvp.get("mu2_target", np.nan)], float),
        "rupture_strain": np.array([np.nan if tension.get("rupture_strain") is None else tension["rupture_strain"]]),
        "rupture_location": _xyz([location if location is not None else [np.nan] * 3]) - corner,
        "cell": np.array(atoms.cell[:])[None], "pbc": np.array(atoms.pbc)[None],
        "positions": np.array(atoms.positions), "species": np.array(atoms.get_chemical_symbols()),
        "numbers": np.array(atoms.numbers, np.int64),
    }
    for key, value in kvp.items():
        if key not in _SAMPLE_FIELDS and isinstance(value, (bool, int, float, np.number)):
            out[f"key_{key}"] = np.array([float(value)])
    for name, values in data.get("arrays", {}).items():
        values = np.asarray(values)
        if values.shape[:1] == (n,):
            out[name] = values
    events, curves = [], []
    for test in TESTS:
        entry = data.get(test)
        if not entry:
            continue
        for rank, e in enumerate(entry.get("events", []), start=1):
            events.append((test, rank, e))
        c = entry["curve"]
        curves.append((test, np.asarray(c["strain"], float), np.asarray(c["stress"], float)))
    out["event_test"] = np.array([t for t, _, _ in events], dtype=str).reshape(-1)
    out["event_rank"] = np.array([r for _, r, _ in events], np.int64)
    out["event_kind"] = np.array(["+".join(e.get("kind", [])) for _, _, e in events], dtype=str).reshape(-1)
    for name in ("strain", "strain_before", "stress_drop"):
        out[f"event_{name}"] = np.array([e.get(name, np.nan) for _, _, e in events], float)
    out["event_location"] = _xyz([e.get("location", [np.nan] * 3) for _, _, e in events]) - corner
    out["event_atom"] = np.array([e.get("atom", -1) for _, _, e in events], np.int64)
    out["curve_test"] = np.array([t for t, s, _ in curves for _ in s], dtype=str).reshape(-1)
    out["curve_strain"] = np.concatenate([s for _, s, _ in curves]) if curves else np.zeros(0)
    out["curve_stress"] = np.concatenate([y for _, _, y in curves]) if curves else np.zeros(0)
    probed = None if folder is None or not (Path(folder) / "map.npz").is_file() else ThresholdMap.load(
        Path(folder) / "map.npz")
    out["window_centre"] = (np.zeros((0, 2)) if probed is None
                            else np.asarray(probed.centres, float).reshape(-1, 2) - corner[:2])
    out["window_threshold"] = np.zeros(0) if probed is None else np.asarray(probed.threshold, float).ravel()
    return out


def _xyz(points) -> np.ndarray:
    """Points of 2 or 3 coordinates as (K, 3); a missing z is 0."""
    out = np.zeros((len(points), 3))
    for k, p in enumerate(points):
        p = np.asarray(p, float)
        out[k, : len(p)] = p
    return out


def concatenate(samples: list) -> dict:
    """One dataset from per-sample arrays (module docstring)."""
    counts = np.array([len(s["positions"]) for s in samples])
    out = {"atom_start": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)}
    for prefix, counter in TABLES.items():
        lengths = [len(s.get(counter, ())) for s in samples]  # samples exported before a table existed: none
        out[f"{prefix}sample"] = np.repeat(np.arange(len(samples)), lengths).astype(np.int64)
    for name in sorted(set().union(*samples)):
        if name.startswith(tuple(TABLES)):
            template = next(s[name] for s in samples if name in s)
            out[name] = np.concatenate([s.get(name, template[:0]) for s in samples])
        elif name in _SAMPLE_FIELDS or name.startswith("key_"):
            out[name] = np.concatenate([s.get(name, np.array([np.nan])) for s in samples])
        else:  # per atom; samples without this array get -1 (integer labels) or NaN
            template = next(s[name] for s in samples if name in s)
            integer = np.issubdtype(template.dtype, np.integer)
            parts = [s[name] if name in s else np.full((c,) + template.shape[1:], -1 if integer else np.nan,
                                                       template.dtype if integer else float)
                     for s, c in zip(samples, counts, strict=True)]
            out[name] = np.concatenate(parts)
    return out


def split(arrays: dict) -> list:
    """The per-sample arrays of a concatenated dataset (the inverse of :func:`concatenate`); ``format``,
    ``metadata`` and the offsets are left out."""
    start = np.asarray(arrays["atom_start"])
    n = len(start) - 1
    rows = {prefix: np.asarray(arrays[f"{prefix}sample"]) for prefix in TABLES if f"{prefix}sample" in arrays}
    out = []
    for s in range(n):
        atoms = slice(int(start[s]), int(start[s + 1]))
        sample = {}
        for name, values in arrays.items():
            if name in ("format", "metadata", "atom_start") or name in {f"{p}sample" for p in TABLES}:
                continue
            prefix = next((p for p in TABLES if name.startswith(p)), None)
            if prefix is not None:
                sample[name] = values[rows[prefix] == s]
            elif name in _SAMPLE_FIELDS or name.startswith("key_"):
                sample[name] = values[s:s + 1]
            else:
                sample[name] = values[atoms]
        out.append(sample)
    return out


def export_dataset(store: CampaignStore, output, overwrite: bool = False) -> dict:
    """Write the campaign in ``store`` to ``output`` (``.npz``: one file; else a folder).

    The rule of :mod:`glassfrac.core.outputs`, checked before anything is read: an existing ``.npz`` is
    replaced only with ``overwrite``; a folder is used if it is new, empty or made by an earlier export
    (whose sample files that this export does not write again are removed), any other folder only with
    ``overwrite`` (then the export's files go beside its files, none of which is deleted); the campaign's
    own folder is refused.
    """
    output = Path(output)
    if output.resolve() == store.directory.resolve():
        raise InputError("this is the campaign's own folder; export into another folder or a .npz file", output)
    folder = None
    if output.suffix == ".npz":
        check_file(output, overwrite)
    else:
        folder = OutputFolder(output, "dataset export", overwrite, names=("manifest.json",))
    rows = store.rows()
    if not rows:
        raise InputError("no complete samples to export", store.directory)
    if folder is not None:
        folder.check(f"{row.sample_id}.npz" for row in rows)
    samples = [sample_arrays(row, store.sample_dir(row.sample_id)) for row in rows]
    metadata = {"format": FORMAT, "campaign": store.name, "definition": store.definition(),
                "units": rows[0].data.get("units", {}), "n_samples": len(rows), "exported": now()}
    head = {"format": np.array(FORMAT), "metadata": np.array(json.dumps(metadata, default=str))}
    if folder is None:
        with atomic_open(output, "wb") as handle:
            np.savez_compressed(handle, **head, **concatenate(samples))
    else:
        _write_folder(folder, samples, metadata, head)
    return {"output": str(output), "samples": len(samples), "atoms": int(sum(len(s["positions"]) for s in samples)),
            "events": int(sum(len(s["event_test"]) for s in samples)), "form": "npz" if output.suffix == ".npz"
            else "folder"}


def _write_folder(folder: OutputFolder, samples, metadata, head) -> None:
    """One .npz per sample plus manifest.json (written last), each atomically, into ``folder``; stale sample
    files of an earlier export into it are removed."""
    files = []
    for s in samples:
        name = f"{s['sample_id'][0]}.npz"
        with atomic_open(folder.file(name), "wb") as handle:
            np.savez_compressed(handle, **head, **s)
        files.append({"sample_id": str(s["sample_id"][0]), "file": name})
    with atomic_open(folder.file("manifest.json")) as handle:
        json.dump({**metadata, "samples": files}, handle, indent=1, default=str)
    folder.finish()
