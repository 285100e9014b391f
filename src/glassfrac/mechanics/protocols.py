"""The two loading tests of the papers and their failure labels.

- :func:`tension_test` (FC22): uniaxial strain along x, lateral sizes fixed; labels: curve,
  small-strain modulus, peak stress, rupture strain (first bond break, bisected), rupture
  location (midpoint in the undeformed sample of the longest O–Si bond broken in the first
  break event; ``rupture_bonds`` lists every bond broken in it), crack atoms, and
  per-atom classes (``first_break``: atoms of the first broken bond; ``bond_changed``: atoms
  that lost a bond by the end of the test).
- :func:`shear_test` (LISTI25): area-preserving pure shear; labels: the first ``n_events``
  stress drops with strain, drop, location (the atom that moved most in the event, at its
  undeformed position) and the D²min field of each event.
"""

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from glassfrac.analysis.nonaffine import d2min
from glassfrac.files import atomic_open
from glassfrac.labels.bonds import (
    SILICA_BOND_CUTOFF,
    bond_midpoints,
    broken_bonds,
    crack_atoms,
    reference_bonds,
)
from glassfrac.mechanics.aqs import AQSDriver, AQSSettings, LoadingResult
from glassfrac.structure import Structure, write

TENSION_DEFAULTS = AQSSettings(path="uniaxial_strain", max_strain=0.3, step=0.005, precision=1e-4,
                               stress_drop=np.inf)
SHEAR_DEFAULTS = AQSSettings(path="pure_shear", max_strain=0.04, step=1e-4, precision=1e-5,
                             max_events=6, fracture_fraction=-np.inf)


def silica_bond_rule(reference: Structure):
    """Counter of broken Si–O bonds (FC22 rule) relative to ``reference``."""
    pairs, images = reference_bonds(reference, SILICA_BOND_CUTOFF)
    return lambda current: broken_bonds(current, pairs, images).count


def tension_test(structure: Structure, potential, settings: AQSSettings | None = None,
                 device="cpu", on_state=None) -> tuple[LoadingResult, dict]:
    """Uniaxial-strain tension to fracture; returns the run and its labels (dict).
    ``on_state``: see :class:`~glassfrac.mechanics.aqs.AQSDriver`."""
    driver = AQSDriver(potential, settings or TENSION_DEFAULTS, device=device, bond_rule=silica_bond_rule,
                       on_state=on_state)
    result = driver.run(structure)
    pairs, images = reference_bonds(result.reference, SILICA_BOND_CUTOFF)
    return result, tension_labels(result, pairs, images)


def tension_labels(result: LoadingResult, pairs, images) -> dict:
    """Labels of a tension run (see module docstring)."""
    ref = result.reference
    labels = {
        "peak_stress": result.peak_stress,
        "modulus": result.modulus(),
        "stress_unit": result.stress_unit,
        "fractured": result.fractured,
        "rupture_strain": None,
        "rupture_location": None,
        "rupture_atoms": [],
        "crack_atoms": [],
    }
    first_break = np.zeros(ref.n_atoms, dtype=np.int8)
    first = next((e for e in result.events if "bond_break" in e.kind), None)
    if first is not None:
        new = broken_bonds(first.after, pairs, images)
        lengths = np.linalg.norm(
            first.after.positions[new.pairs[:, 1]] + first.after.box.image_shift(new.images)
            - first.after.positions[new.pairs[:, 0]], axis=1)
        k = int(np.argmax(lengths))
        mid = bond_midpoints(ref, new.pairs[k:k + 1], new.images[k:k + 1])[0]
        labels["rupture_strain"] = first.strain
        labels["rupture_location"] = mid.tolist()
        labels["rupture_atoms"] = new.pairs[k].tolist()
        labels["rupture_bonds"] = new.pairs.tolist()
        first_break[new.pairs[k]] = 1
    final_breaks = broken_bonds(result.final, pairs, images)
    changed = np.zeros(ref.n_atoms, dtype=np.int8)
    changed[final_breaks.atoms()] = 1
    if result.fractured:
        labels["crack_atoms"] = crack_atoms(ref, final_breaks).tolist()
    labels["n_broken_bonds"] = final_breaks.count
    result.reference.set_array("first_break", first_break)
    result.reference.set_array("bond_changed", changed)
    crack = np.zeros(ref.n_atoms, dtype=np.int8)
    crack[labels["crack_atoms"]] = 1
    result.reference.set_array("crack", crack)
    return labels


def shear_test(structure: Structure, potential, settings: AQSSettings | None = None,
               device="cpu", d2min_cutoff: float = 4.0, on_state=None) -> tuple[LoadingResult, dict]:
    """Pure shear; returns the run and its labels, with the D²min field of each event (which
    needs the structures before and after each event, so they are kept whatever ``snapshots`` says)."""
    settings = replace(settings or SHEAR_DEFAULTS, snapshots=True)
    driver = AQSDriver(potential, settings, device=device, on_state=on_state)
    result = driver.run(structure)
    events = []
    for k, event in enumerate(result.events):
        field = d2min(event.before, event.after, cutoff=d2min_cutoff)
        result.reference.set_array(f"d2min_event_{k + 1}", field)
        item = event.summary()
        item["d2min_max"] = float(field.max())
        item["atom"] = int(np.argmax(np.linalg.norm(event.displacement, axis=1)))
        events.append(item)
    labels = {
        "peak_stress": result.peak_stress,
        "modulus": result.modulus(max_strain=0.005),
        "stress_unit": result.stress_unit,
        "events": events,
    }
    return result, labels


def save_run(result: LoadingResult, labels: dict, directory, kind: str) -> dict:
    """Write curve.csv, labels.json, snapshots (extxyz) and figures into ``directory``."""
    from glassfrac.report.loading import plot_sample_with_failure, plot_stress_strain

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    c = result.curve.arrays()
    with atomic_open(directory / "curve.csv") as handle:
        handle.write(f"strain,stress_{result.stress_unit.replace('/', '_per_')},energy_eV,iterations,converged\n")
        for row in zip(c["strain"], c["stress"], c["energy"], c["iterations"], c["converged"], strict=True):
            handle.write(f"{row[0]:.10g},{row[1]:.10g},{row[2]:.12g},{int(row[3])},{int(row[4])}\n")
    record = dict(labels)
    record["test"] = kind
    record["settings"] = {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                          for k, v in asdict(result.settings).items()}
    record["events"] = labels.get("events", [e.summary() for e in result.events])
    with atomic_open(directory / "labels.json") as handle:
        json.dump(_plain(record), handle, indent=1)
    write(result.reference, directory / "reference.xyz")
    write(result.final, directory / "final.xyz")
    for k, event in enumerate(result.events):
        if event.after is not None:
            write(event.after, directory / f"event_{k + 1:03d}.xyz")
    plot_stress_strain(result, directory / "stress_strain.png")
    plot_sample_with_failure(result, labels, directory / "sample.png")
    return record


def _plain(value):
    from glassfrac.cli import to_jsonable

    return to_jsonable(value)
