"""Typed labels of the loading tests: made from a run without touching it, saved and loaded as one record."""

import dataclasses
import json
from dataclasses import dataclass

import numpy as np
import pytest

from glassfrac.analysis.bonds import bond_midpoints
from glassfrac.analysis.nonaffine import d2min
from glassfrac.core.errors import InputError
from glassfrac.generate import generate
from glassfrac.labels import LabelSet, ShearLabels, TensionLabels, first_break_site, shear_labels, tension_labels
from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, TENSION_DEFAULTS, shear_test, tension_test
from glassfrac.potentials import get_potential
from glassfrac.report.loading import save_run


@pytest.fixture(scope="module")
def sample():
    return generate((4, 4), mu2=0.3, kind="monolayer", seed=1)  # 80 atoms


@pytest.fixture(scope="module")
def tension_run(sample):
    settings = dataclasses.replace(TENSION_DEFAULTS, step=0.02, precision=1e-3, fmax=1e-6)
    return tension_test(sample, get_potential("yukawa2d"), settings)


@pytest.fixture(scope="module")
def shear_run(sample):
    settings = dataclasses.replace(SHEAR_DEFAULTS, step=0.005, precision=1e-3, fmax=1e-6, max_strain=0.15,
                                   max_events=2, snapshots=False)
    return shear_test(sample, get_potential("yukawa2d"), settings)


def _arrays_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_a_run_stopped_at_the_first_break_has_the_labels_of_the_full_run(sample, tension_run):
    settings = dataclasses.replace(tension_run.settings, stop_at_first_break=True)
    short = tension_test(sample, get_potential("yukawa2d"), settings)
    full, cut = tension_labels(tension_run), tension_labels(short)
    assert "bond_break" in short.events[-1].kind and sum("bond_break" in e.kind for e in short.events) == 1
    assert short.curve.strain[-1] == cut.rupture_strain < tension_run.curve.strain[-1]
    assert cut.rupture_strain == full.rupture_strain and cut.first_broken_bond == full.first_broken_bond
    np.testing.assert_array_equal(cut.first_break, full.first_break)
    np.testing.assert_array_equal(cut.rupture_location, full.rupture_location)
    assert cut.peak_stress_before_break == full.peak_stress_before_break and cut.modulus == full.modulus


def test_tension_labels_leave_the_run_alone_and_follow_the_first_break(tension_run):
    ref = tension_run.reference
    before = {name: values.copy() for name, values in ref.arrays.items()}
    labels = tension_labels(tension_run)
    assert _arrays_equal(dict(ref.arrays), before)  # nothing written into the result
    assert labels.fractured and labels.rupture_strain is not None and labels.stress_unit == "N/m"
    event, bonds, k = first_break_site(tension_run, tension_run.bond_rule.tracker(ref))
    assert labels.rupture_strain == event.strain == tension_run.events[0].strain
    curve = tension_run.curve.arrays()
    assert labels.peak_stress_before_break == curve["stress"][curve["strain"] <= event.strain_before].max()
    assert labels.peak_stress_before_break <= labels.peak_stress
    assert labels.first_broken_bond == tuple(bonds.pairs[k]) and list(labels.first_broken_bond) in bonds.pairs.tolist()
    assert np.array_equal(labels.rupture_bonds, bonds.pairs)
    assert np.array_equal(labels.rupture_location, bond_midpoints(ref, bonds.pairs[k:k + 1], bonds.images[k:k + 1])[0])
    assert np.flatnonzero(labels.first_break).tolist() == sorted(labels.first_broken_bond)
    assert np.array_equal(np.flatnonzero(labels.crack), labels.crack_atoms) and len(labels.crack_atoms) > 0
    assert set(labels.crack_atoms) <= set(np.flatnonzero(labels.bond_changed))
    assert {a.dtype for a in labels.arrays().values()} == {np.dtype(np.int8)}
    assert all(len(a) == ref.n_atoms for a in labels.arrays().values())
    assert [e.strain for e in labels.events] == [e.strain for e in tension_run.events]
    assert labels.to_dict()["events"] == [e.summary() for e in tension_run.events]


def test_tension_labels_round_trip_through_their_folder(tension_run, tmp_path):
    labels = tension_labels(tension_run)
    record = save_run(tension_run, labels, tmp_path / "run")
    assert json.loads((tmp_path / "run/labels.json").read_text()) == record
    assert list(record)[:11] == ["peak_stress", "modulus", "peak_stress_before_break", "stress_unit", "fractured",
                                 "rupture_strain", "rupture_location", "rupture_atoms", "crack_atoms", "rupture_bonds",
                                 "n_broken_bonds"]
    assert record["test"] == "tension" and record["settings"]["stress_drop"] is None  # inf in JSON: null
    assert {"curve.csv", "labels.npz", "reference.xyz", "final.xyz", "stress_strain.png", "sample.png"} <= {
        p.name for p in (tmp_path / "run").iterdir()}
    back = TensionLabels.load(tmp_path / "run/labels.npz")
    assert back.to_dict() == record and _arrays_equal(back.arrays(), labels.arrays())
    assert back.first_broken_bond == labels.first_broken_bond and back.rupture_bonds.shape == labels.rupture_bonds.shape


def test_tension_labels_without_a_break(sample):
    settings = dataclasses.replace(TENSION_DEFAULTS, max_strain=0.01, step=0.005, fmax=1e-6)
    labels = tension_labels(tension_test(sample, get_potential("yukawa2d"), settings))
    record = labels.to_dict()
    assert labels.rupture_strain is None and labels.first_broken_bond is None and not labels.fractured
    assert record["rupture_location"] is None and record["rupture_atoms"] == [] and "rupture_bonds" not in record
    assert labels.first_break.sum() == labels.crack.sum() == 0 and record["crack_atoms"] == []


def test_shear_labels_carry_each_event_d2min_and_round_trip(shear_run, tmp_path):
    assert all(e.before is not None for e in shear_run.events)  # shear_test keeps them whatever snapshots says
    names = set(shear_run.reference.arrays)
    labels = shear_labels(shear_run, d2min_cutoff=4.0)
    assert set(shear_run.reference.arrays) == names
    assert len(labels.events) == len(shear_run.events) >= 1
    for label, event in zip(labels.events, shear_run.events, strict=True):
        assert np.array_equal(label.d2min, d2min(event.before, event.after, cutoff=4.0))
        assert label.atom == int(np.argmax(np.linalg.norm(event.displacement, axis=1)))
        assert label.to_dict() == {**event.summary(), "d2min_max": float(label.d2min.max()), "atom": label.atom}
    record = labels.save(tmp_path / "labels.npz")
    assert list(record) == ["peak_stress", "modulus", "stress_unit", "events", "test", "settings"]
    back = ShearLabels.load(tmp_path / "labels.npz")
    assert back.to_dict() == record and _arrays_equal(back.arrays(), labels.arrays())
    assert sorted(back.arrays()) == [f"d2min_event_{k + 1}" for k in range(len(labels.events))]


def test_shear_labels_need_the_event_snapshots(shear_run):
    event = dataclasses.replace(shear_run.events[0], before=None)
    with pytest.raises(InputError, match="snapshots"):
        shear_labels(dataclasses.replace(shear_run, events=[event]))


@dataclass(frozen=True, eq=False)
class _Classes(LabelSet):
    """A label type of scalars and one per-atom array, as another stage would write."""

    threshold: float
    classes: np.ndarray

    def to_dict(self) -> dict:
        return {"threshold": self.threshold}

    def arrays(self) -> dict:
        return {"classes": self.classes}

    @classmethod
    def from_saved(cls, record, arrays):
        return cls(record["threshold"], arrays["classes"])


def test_any_label_type_saves_one_file_of_named_arrays_and_a_json_record(tmp_path):
    labels = _Classes(float("inf"), np.array([0, 1, 1], np.int8))
    assert labels.save(tmp_path / "classes.npz") == {"threshold": None}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.npz"]
    with np.load(tmp_path / "classes.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["classes", "meta"] and json.loads(str(data["meta"])) == {"threshold": None}
    back = _Classes.load(tmp_path / "classes.npz")
    assert back.threshold is None and np.array_equal(back.classes, labels.classes)
    with pytest.raises(InputError, match="missing.npz: no such label file"):
        _Classes.load(tmp_path / "missing.npz")
    (tmp_path / "foreign.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="foreign.npz: not a glassfrac label file"):
        _Classes.load(tmp_path / "foreign.npz")
