"""The two loading tests of the papers; their labels are made from the run by :mod:`glassfrac.labels`.

- :func:`tension_test` (FC22): uniaxial strain along x, lateral sizes fixed, to fracture, with
  the silica bond-break rule of the potential (:meth:`glassfrac.analysis.bonds.BondRule.for_potential`)
  as an event and a cut through the bonded network as fracture (:func:`glassfrac.labels.tension_labels`).
- :func:`shear_test` (LISTI25): area-preserving pure shear up to the first ``max_events`` stress
  drops (:func:`glassfrac.labels.shear_labels`).
"""

from dataclasses import replace

import numpy as np

from glassfrac.analysis.bonds import BondRule
from glassfrac.mechanics.aqs import AQSDriver, AQSSettings, LoadingResult
from glassfrac.structure import Structure

TENSION_DEFAULTS = AQSSettings(path="uniaxial_strain", max_strain=0.3, step=0.005, precision=1e-4,
                               stress_drop=np.inf)
SHEAR_DEFAULTS = AQSSettings(path="pure_shear", max_strain=0.04, step=1e-4, precision=1e-5,
                             max_events=6, fracture_fraction=-np.inf)


def tension_test(structure: Structure, potential, settings: AQSSettings | None = None,
                 device="cpu", on_state=None) -> LoadingResult:
    """Uniaxial-strain tension to fracture (the structures after bond-break events are kept).
    ``on_state``: see :class:`~glassfrac.mechanics.aqs.AQSDriver`."""
    driver = AQSDriver(potential, settings or TENSION_DEFAULTS, device=device,
                       bond_rule=BondRule.for_potential(potential), on_state=on_state)
    return driver.run(structure)


def shear_test(structure: Structure, potential, settings: AQSSettings | None = None,
               device="cpu", on_state=None) -> LoadingResult:
    """Pure shear; keeps the structures before and after each event whatever ``snapshots`` says
    (the D²min labels need them)."""
    settings = replace(settings or SHEAR_DEFAULTS, snapshots=True)
    driver = AQSDriver(potential, settings, device=device, on_state=on_state)
    return driver.run(structure)
