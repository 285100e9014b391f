"""Labels of the two loading tests, made from a :class:`~glassfrac.mechanics.aqs.LoadingResult`.

- :func:`tension_labels` (FC22): small-strain modulus, peak stress, rupture strain (first bond
  break, bisected), rupture location (midpoint in the undeformed sample of the first O–Si bond
  to break along the descent of the first break event; ``rupture_bonds`` lists every bond broken
  in it), crack atoms and per-atom classes (``first_break``: atoms of that bond; ``bond_changed``:
  atoms that lost a bond by the end of the test; ``crack``: the crack atoms). The rule is
  :func:`first_break_site`, with the run's bond rule (:class:`~glassfrac.analysis.bonds.BondRule`,
  recorded in ``settings["bond_rule"]``).
- :func:`shear_labels` (LISTI25): the stress drops of a pure-shear run with strain, drop,
  location (the atom that moved most in the event, at its undeformed position) and the D²min
  field of each event.

Stresses are in the run's ``stress_unit`` (N/m for sheets, GPa in 3D); lengths in Å; strains
dimensionless. ``to_dict`` gives the record of ``labels.json``: the labels, ``test``, the run's
``settings`` and its ``events``.
"""

from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from glassfrac.analysis.bonds import (
    BondBreaks,
    BondRule,
    BondTracker,
    bond_lengths,
    bond_midpoints,
    crack_atoms,
)
from glassfrac.analysis.nonaffine import d2min
from glassfrac.core.errors import InputError
from glassfrac.core.jsonable import to_jsonable
from glassfrac.labels.base import LabelSet


@dataclass(frozen=True, eq=False)
class EventLabel:
    """One event of a loading test: ``strain`` (upper end of its bisected interval) and
    ``strain_before`` (the last event-free strain), ``stress_drop`` (the test's stress unit),
    ``kind`` (names of what happened), ``location`` (Å, undeformed sample) and the ``atoms`` involved;
    where the run has them, ``break_order`` (the reference bonds (K, 2) in the order they broke along the
    descent after the event) and ``audit`` (:class:`~glassfrac.mechanics.audit.EventAudit` as a dict)."""

    strain: float
    strain_before: float
    stress_drop: float
    kind: tuple
    location: np.ndarray
    atoms: np.ndarray
    break_order: np.ndarray | None = field(default=None, kw_only=True)
    audit: dict | None = field(default=None, kw_only=True)

    @classmethod
    def _fields_of(cls, event) -> dict:
        return {"strain": event.strain, "strain_before": event.strain_before, "stress_drop": event.stress_drop,
                "kind": tuple(event.kind), "location": np.asarray(event.location), "atoms": np.asarray(event.atoms),
                "break_order": None if event.break_order is None else np.asarray(event.break_order[0]),
                "audit": None if event.audit is None else event.audit.to_dict()}

    @classmethod
    def of(cls, event) -> "EventLabel":
        """The label of an :class:`~glassfrac.mechanics.aqs.Event`."""
        return cls(**cls._fields_of(event))

    def to_dict(self) -> dict:
        out = {"strain": self.strain, "strain_before": self.strain_before, "stress_drop": self.stress_drop,
               "kind": list(self.kind), "location": self.location.tolist(), "atoms": self.atoms.tolist()}
        if self.audit is not None:
            out["audit"] = self.audit
        if self.break_order is not None:
            out["break_order"] = self.break_order.tolist()
        return out

    @classmethod
    def _fields_from(cls, record: dict) -> dict:
        order = record.get("break_order")
        return {"strain": record["strain"], "strain_before": record["strain_before"],
                "stress_drop": record["stress_drop"], "kind": tuple(record["kind"]),
                "location": np.asarray(record["location"], float), "atoms": np.asarray(record["atoms"], np.int64),
                "break_order": None if order is None else np.asarray(order, np.int64).reshape(-1, 2),
                "audit": record.get("audit")}

    @classmethod
    def from_dict(cls, record: dict) -> "EventLabel":
        return cls(**cls._fields_from(record))


@dataclass(frozen=True, eq=False)
class ShearEvent(EventLabel):
    """A shear event with the ``atom`` that moved most in it and its D²min field ``d2min`` (N,) in Å²
    (:func:`glassfrac.analysis.nonaffine.d2min` between the states before and after it)."""

    atom: int
    d2min: np.ndarray

    @property
    def d2min_max(self) -> float:
        """Largest D²min of the event, Å²."""
        return float(self.d2min.max())

    def to_dict(self) -> dict:
        return {**super().to_dict(), "d2min_max": self.d2min_max, "atom": self.atom}


def _settings_record(settings) -> dict:
    """AQS settings as JSON values (non-finite floats as None)."""
    return to_jsonable(asdict(settings))


@dataclass(frozen=True, eq=False)
class TensionLabels(LabelSet):
    """Labels of a tension test (module docstring).

    ``peak_stress`` and ``modulus`` (stress unit, stress unit per unit strain, modulus fitted to
    strain 0.02), ``peak_stress_before_break`` (the largest stress of the states before the first bond
    break, the figure FC22 reports as the peak; None in labels saved before it existed), ``stress_unit``,
    ``fractured``; ``rupture_strain`` (None without a bond break),
    ``rupture_location`` (d,) Å in the undeformed sample, ``first_broken_bond`` (atom pair) and
    ``rupture_bonds`` (K, 2) of the first break event; ``crack_atoms`` (indices, empty unless
    fractured), ``n_broken_bonds`` at the end of the test; per-atom int8 classes ``first_break``,
    ``bond_changed``, ``crack`` (N,); the run's ``events`` and ``settings`` (JSON values)."""

    test: ClassVar[str] = "tension"

    peak_stress: float
    modulus: float
    peak_stress_before_break: float | None
    stress_unit: str
    fractured: bool
    rupture_strain: float | None
    rupture_location: np.ndarray | None
    first_broken_bond: tuple | None
    rupture_bonds: np.ndarray
    crack_atoms: np.ndarray
    n_broken_bonds: int
    first_break: np.ndarray
    bond_changed: np.ndarray
    crack: np.ndarray
    events: tuple
    settings: dict

    def to_dict(self) -> dict:
        record = {
            "peak_stress": self.peak_stress, "modulus": self.modulus,
            "peak_stress_before_break": self.peak_stress_before_break, "stress_unit": self.stress_unit,
            "fractured": self.fractured, "rupture_strain": self.rupture_strain,
            "rupture_location": None if self.rupture_location is None else self.rupture_location.tolist(),
            "rupture_atoms": [] if self.first_broken_bond is None else list(self.first_broken_bond),
            "crack_atoms": self.crack_atoms.tolist(),
        }
        if self.rupture_strain is not None:
            record["rupture_bonds"] = self.rupture_bonds.tolist()
        record.update(n_broken_bonds=self.n_broken_bonds, test=self.test, settings=self.settings,
                      events=[e.to_dict() for e in self.events])
        return record

    def arrays(self) -> dict:
        """The per-atom classes ``first_break``, ``bond_changed``, ``crack`` (int8, (N,))."""
        return {"first_break": self.first_break, "bond_changed": self.bond_changed, "crack": self.crack}

    @classmethod
    def from_saved(cls, record: dict, arrays: dict) -> "TensionLabels":
        location = record["rupture_location"]
        pair = record["rupture_atoms"]
        return cls(
            peak_stress=record["peak_stress"], modulus=record["modulus"],
            peak_stress_before_break=record.get("peak_stress_before_break"), stress_unit=record["stress_unit"],
            fractured=record["fractured"], rupture_strain=record["rupture_strain"],
            rupture_location=None if location is None else np.asarray(location, float),
            first_broken_bond=tuple(pair) if pair else None,
            rupture_bonds=np.asarray(record.get("rupture_bonds", []), np.int64).reshape(-1, 2),
            crack_atoms=np.asarray(record["crack_atoms"], np.int64), n_broken_bonds=record["n_broken_bonds"],
            first_break=arrays["first_break"], bond_changed=arrays["bond_changed"], crack=arrays["crack"],
            events=tuple(EventLabel.from_dict(e) for e in record["events"]), settings=record["settings"],
        )


@dataclass(frozen=True, eq=False)
class ShearLabels(LabelSet):
    """Labels of a pure-shear test (module docstring): ``peak_stress`` (stress unit), ``modulus``
    (stress unit per unit strain, fitted to strain 0.005), ``stress_unit``, the ``events``
    (:class:`ShearEvent`, D²min fields saved as arrays ``d2min_event_<k>``, k from 1) and the run's
    ``settings`` (JSON values)."""

    test: ClassVar[str] = "shear"

    peak_stress: float
    modulus: float
    stress_unit: str
    events: tuple
    settings: dict

    def to_dict(self) -> dict:
        return {"peak_stress": self.peak_stress, "modulus": self.modulus, "stress_unit": self.stress_unit,
                "events": [e.to_dict() for e in self.events], "test": self.test, "settings": self.settings}

    def arrays(self) -> dict:
        """The D²min field (Å², (N,)) of event k as ``d2min_event_<k>``."""
        return {f"d2min_event_{k + 1}": e.d2min for k, e in enumerate(self.events)}

    @classmethod
    def from_saved(cls, record: dict, arrays: dict) -> "ShearLabels":
        events = tuple(ShearEvent(**ShearEvent._fields_from(e), atom=e["atom"], d2min=arrays[f"d2min_event_{k + 1}"])
                       for k, e in enumerate(record["events"]))
        return cls(peak_stress=record["peak_stress"], modulus=record["modulus"], stress_unit=record["stress_unit"],
                   events=events, settings=record["settings"])


def first_break_site(result, bonds: BondTracker):
    """The rupture rule: in the first event with a bond break (by the rule of ``bonds``, which tracks the
    reference bonds), the bonds broken and the index of the first broken bond, which locates the rupture;
    None if no bond broke.

    The first broken bond is the first to cross the break criterion along the descent from the last
    stable state (:attr:`~glassfrac.mechanics.aqs.Event.break_order`), not the longest after the event:
    an event breaks several bonds at once, and which ends longest depends on the round-off of the input
    (FC22's bilayer read from its dump or from an extxyz copy). Runs without a recorded descent fall
    back to the longest."""
    first = next((e for e in result.events if "bond_break" in e.kind), None)
    if first is None:
        return None
    new = bonds.broken(first.after)
    if first.break_order is not None:
        for pair, image in zip(*first.break_order, strict=True):
            match = np.flatnonzero((new.pairs == pair).all(axis=1) & (new.images == image).all(axis=1))
            if len(match):
                return first, new, int(match[0])
    return first, new, int(np.argmax(bond_lengths(first.after, new.pairs, new.images)))


def tension_labels(result) -> TensionLabels:
    """Labels of a tension run (:func:`glassfrac.mechanics.protocols.tension_test`) of silica."""
    ref = result.reference
    rule = result.bond_rule or BondRule()
    bonds = rule.tracker(ref)
    first_break = np.zeros(ref.n_atoms, dtype=np.int8)
    strain = location = pair = None
    rupture = BondBreaks(np.zeros((0, 2), np.int64), np.zeros((0, ref.dim), np.int64))
    site = first_break_site(result, bonds)
    if site is not None:
        event, rupture, k = site
        strain = event.strain
        location = bond_midpoints(ref, rupture.pairs[k:k + 1], rupture.images[k:k + 1])[0]
        pair = tuple(rupture.pairs[k].tolist())
        first_break[rupture.pairs[k]] = 1
    final_breaks = bonds.broken(result.final)
    changed = np.zeros(ref.n_atoms, dtype=np.int8)
    changed[final_breaks.atoms()] = 1
    cracked = crack_atoms(ref, final_breaks) if result.fractured else np.zeros(0, np.int64)
    crack = np.zeros(ref.n_atoms, dtype=np.int8)
    crack[cracked] = 1
    curve = result.curve.arrays()
    before_break = curve["stress"][curve["strain"] < strain] if strain is not None else curve["stress"]
    return TensionLabels(
        peak_stress=result.peak_stress, modulus=result.modulus(),
        peak_stress_before_break=float(before_break.max()) if len(before_break) else None,
        stress_unit=result.stress_unit,
        fractured=result.fractured, rupture_strain=strain, rupture_location=location, first_broken_bond=pair,
        rupture_bonds=rupture.pairs, crack_atoms=cracked, n_broken_bonds=final_breaks.count,
        first_break=first_break, bond_changed=changed, crack=crack,
        events=tuple(EventLabel.of(e) for e in result.events),
        settings=_settings_record(result.settings) | {"bond_rule": rule.to_dict()},
    )


def shear_labels(result, d2min_cutoff: float = 4.0) -> ShearLabels:
    """Labels of a pure-shear run (:func:`glassfrac.mechanics.protocols.shear_test`, which keeps the
    structures before and after each event); D²min with neighbours within ``d2min_cutoff`` Å."""
    events = []
    for k, event in enumerate(result.events):
        if event.before is None or event.after is None:
            raise InputError(f"event {k + 1} of the shear run kept no snapshots: the D²min labels need them "
                             "(run it with shear_test or snapshots=True)")
        atom = int(np.argmax(np.linalg.norm(event.displacement, axis=1)))
        events.append(ShearEvent(**ShearEvent._fields_of(event), atom=atom,
                                 d2min=d2min(event.before, event.after, cutoff=d2min_cutoff)))
    return ShearLabels(peak_stress=result.peak_stress, modulus=result.modulus(max_strain=0.005),
                       stress_unit=result.stress_unit, events=tuple(events), settings=_settings_record(result.settings))
