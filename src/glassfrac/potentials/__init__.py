"""Interatomic potentials behind one batched interface (see :mod:`.base`).

``get_potential(name, **parameters)`` returns a potential by its CLI name:
``yukawa2d`` (2D silica monolayer, Roy–Heyde–Heuer), ``watanabe`` (Si–O 2004, bilayer) or
``matsui`` (Al2O3 1994, 3D bulk, evaluated by LAMMPS).
"""

import importlib

from glassfrac.core.errors import InputError
from glassfrac.potentials.base import Potential, Results, stress_from_virial
from glassfrac.potentials.batch import Batch, Pairs, VerletList

POTENTIALS = {
    "yukawa2d": ("glassfrac.potentials.yukawa", "Yukawa2D"),
    "watanabe": ("glassfrac.potentials.watanabe", "Watanabe"),
    "matsui": ("glassfrac.potentials.matsui", "MatsuiPotential"),
}


def get_potential(name: str, **parameters) -> Potential:
    """The potential called ``name`` (one of ``POTENTIALS``) with optional parameters.

    Examples
    --------
    >>> import glassfrac as gf
    >>> s = gf.generate((4, 4), seed=1)
    >>> result = gf.get_potential("yukawa2d").evaluate([s])[0]
    >>> result["forces"].shape, result["stress_unit"]
    ((80, 2), 'N/m')
    """
    if name not in POTENTIALS:
        raise InputError(f"unknown potential {name!r}; choose one of {sorted(POTENTIALS)}")
    module, cls = POTENTIALS[name]
    return getattr(importlib.import_module(module), cls)(**parameters)


def default_potential(structure) -> str:
    """Name of the potential a structure is made for: ``yukawa2d`` for a 2D structure, ``watanabe`` for 3D
    silica (Si and O only; bilayer sheets), ``matsui`` for anything else (alumina)."""
    if structure.dim == 2:
        return "yukawa2d"
    if set(structure.species.tolist()) <= {"Si", "O"}:
        return "watanabe"
    return "matsui"


__all__ = ["Potential", "Results", "Batch", "Pairs", "VerletList", "get_potential", "default_potential",
           "stress_from_virial", "POTENTIALS"]
