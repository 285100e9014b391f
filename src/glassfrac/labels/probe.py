"""Local-probing labels: the threshold map Δτ (N/m) of a sample, its file, and its goodness.

A :class:`ThresholdMap` is made from the dict of :func:`glassfrac.mechanics.probe.probe_map`
(:meth:`ThresholdMap.from_result`) and saved as every label type is (:class:`~glassfrac.labels.base.LabelSet`):
one ``.npz`` of its arrays plus a JSON record ``meta`` (settings, unit, and any extra keys such as the
source or the seconds taken); every ``map.npz`` written so far has this format.
The goodness of a map for an event (LISTI25) is C = 1 − 2F(Δτ at the event site), F the
cumulative distribution of Δτ over the map: 1 when the event is where Δτ is lowest, 0 at random.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.labels.base import LabelSet
from glassfrac.mechanics.probe import ProbeSettings
from glassfrac.structure import Box

PER_WINDOW = ("threshold_per_direction", "tau_in", "tau_c", "strain_c", "newton_iterations")
"""Per-window arrays of a probe result kept in a map besides Δτ."""


@dataclass(eq=False)
class ThresholdMap(LabelSet):
    """Δτ (N/m) at ``centres`` (k, 2) Å: ``threshold`` (grid, grid) on the grid of
    :func:`~glassfrac.mechanics.probe.grid_centres` or (k,); ``angles`` (rad) of the probe
    directions; ``settings`` (the :class:`ProbeSettings` as a dict); ``arrays``: the other
    per-window arrays of the probe (``tau_in``, ``tau_c``, ``strain_c`` per direction...);
    ``info``: extra record keys (source, potential, seconds, goodness...)."""

    threshold: np.ndarray
    centres: np.ndarray
    angles: np.ndarray
    settings: dict
    unit: str = "N/m"
    per_window: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @classmethod
    def from_result(cls, result: dict, settings: ProbeSettings | dict, **info) -> "ThresholdMap":
        """The map of a :func:`~glassfrac.mechanics.probe.probe_map` result (or any dict with ``threshold`` and
        ``centres``, such as a learned map) made with ``settings``."""
        settings = settings if isinstance(settings, dict) else asdict(settings)
        angles = result.get("angles", [settings.get("load_angle", 0.0)])
        return cls(np.asarray(result["threshold"], float), np.asarray(result["centres"], float),
                   np.asarray(angles, float), settings, result.get("unit", "N/m"),
                   {k: np.asarray(result[k]) for k in PER_WINDOW if k in result}, info)

    @property
    def load_angle(self) -> float:
        """The load direction of the probe, rad."""
        return float(self.settings.get("load_angle", 0.0))

    def goodness(self, event_locations, box: Box) -> np.ndarray:
        """C per event (see :func:`goodness`)."""
        return goodness(self.threshold, self.centres, event_locations, box)

    def to_dict(self) -> dict:
        return {"settings": self.settings, "unit": self.unit, **self.info}

    def arrays(self) -> dict:
        return {"threshold": self.threshold, "centres": self.centres, "angles": self.angles, **self.per_window}

    @classmethod
    def from_saved(cls, record: dict, arrays: dict) -> "ThresholdMap":
        record, arrays = dict(record), dict(arrays)
        settings = record.pop("settings", {})
        unit = record.pop("unit", "N/m")
        angles = arrays.pop("angles", np.array([settings.get("load_angle", 0.0)]))
        return cls(arrays.pop("threshold"), arrays.pop("centres"), angles, settings, unit, arrays, record)


def goodness(threshold_map, centres, event_locations, box: Box) -> np.ndarray:
    """C = 1 − 2 F(Δτ at the event site) per event; Δτ at the nearest centre (periodic, in-plane).

    ``threshold_map``: values at ``centres`` (any shape, k values); ``event_locations`` (e, ≥ 2) Å.
    """
    values = np.asarray(threshold_map, float).ravel()
    order = np.sort(values)
    out = []
    for loc in np.atleast_2d(event_locations):
        d = np.linalg.norm(_in_plane_image(box, np.asarray(centres) - loc[:2]), axis=1)
        v = values[np.argmin(d)]
        F = np.searchsorted(order, v, side="right") / len(order)
        out.append(1.0 - 2.0 * F)
    return np.asarray(out)


def _in_plane_image(box: Box, d: np.ndarray) -> np.ndarray:
    """Minimum images of in-plane vectors ``d`` (k, 2) Å in a 2D box or a 3D sheet's x–y cell."""
    if box.dim == 2:
        return box.minimum_image(d)
    full = np.column_stack([d, np.zeros(len(d))])
    return box.minimum_image(full)[:, :2]


def event_sites(events) -> np.ndarray:
    """(k, 2) in-plane locations (Å, undeformed sample) of a test's event records (dicts with ``location``)."""
    return np.array([e["location"][:2] for e in events], float).reshape(-1, 2)


def event_locations(path) -> np.ndarray:
    """(k, 2) locations (Å, undeformed sample) of the events of a shear test, in order.

    ``path``: the output directory of ``glassfrac load shear`` (labels.json), a dataset sample
    folder (events.json) or either JSON file.
    """
    path = Path(path)
    if path.is_dir():
        found = [path / name for name in ("labels.json", "events.json") if (path / name).is_file()]
        if not found:
            raise FileNotFoundError(f"{path}: no labels.json (glassfrac load shear) or events.json in this folder")
        path = found[0]
    try:
        events = json.loads(path.read_text())["events"]
        return event_sites(events)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InputError(f"{path}: expected {{\"events\": [{{\"location\": [x, y], ...}}, ...]}} ({exc})") from exc
