"""Oxide run configuration from TOML, and the provenance written next to outputs.

A config has up to five tables, each overriding the defaults (the reduced size) of one
dataclass: ``[potential]`` (:class:`MatsuiPotential`), ``[md]`` (:class:`MDSettings`),
``[quench]`` (:class:`QuenchSchedule` plus ``pressures_GPa``), ``[tension]``
(:class:`TensionSettings` plus ``modes``) and ``[softness]`` (:class:`SoftnessSettings`).
Unknown keys are errors. See
configs/oxide-quick.toml and configs/oxide-paper.toml.
"""

import importlib.metadata
import os
from dataclasses import asdict, dataclass, field

from glassfrac.campaign import schemas
from glassfrac.core.config import TomlReader, read_toml
from glassfrac.core.errors import InputError
from glassfrac.core.provenance import collect
from glassfrac.core.schema import Key, Schema
from glassfrac.generate.quench import QuenchSchedule
from glassfrac.learn.oxide_softness import SoftnessSettings
from glassfrac.mechanics.md import MDSettings
from glassfrac.mechanics.md_tension import TensionSettings
from glassfrac.potentials.matsui import MatsuiPotential

DEFAULT_PRESSURES = (0.0, 2.0, 4.0)
MODES = ("plane_stress", "plane_strain")
TABLES = ("potential", "md", "quench", "tension", "softness")


@dataclass
class OxideConfig:
    """Everything an oxide run needs (defaults: the reduced size)."""

    potential: MatsuiPotential = field(default_factory=MatsuiPotential)
    md: MDSettings = field(default_factory=MDSettings)
    quench: QuenchSchedule = field(default_factory=QuenchSchedule)
    pressures_GPa: tuple = DEFAULT_PRESSURES
    tension: TensionSettings = field(default_factory=TensionSettings)
    modes: tuple = MODES
    softness: SoftnessSettings = field(default_factory=SoftnessSettings)

    def to_dict(self) -> dict:
        return {"potential": asdict(self.potential), "md": asdict(self.md),
                "quench": {**asdict(self.quench), "pressures_GPa": list(self.pressures_GPa)},
                "tension": {**asdict(self.tension), "modes": list(self.modes)},
                "softness": {**asdict(self.softness), "species": list(self.softness.species),
                             "C": list(self.softness.C) if isinstance(self.softness.C, tuple) else self.softness.C}}


def load_config(path=None) -> OxideConfig:
    """Read a TOML config (None: the defaults); every key is checked by its schema
    (:mod:`glassfrac.campaign.schemas`) before anything runs."""
    if path is None:
        return OxideConfig()
    data, _ = read_toml(path)
    r = TomlReader(path)
    Schema(tuple(Key(t, dict, None) for t in TABLES)).read(r, data)
    quench = schemas.QUENCH.read(r, r.table(data, "quench"), "quench", extra=(schemas.PRESSURES.name,))
    tension = schemas.TENSION.read(r, r.table(data, "tension"), "tension", extra=(schemas.MODES.name,))
    pressures = schemas.PRESSURES.validate(quench.pop("pressures_GPa"), "quench.pressures_GPa", r) \
        if "pressures_GPa" in quench else DEFAULT_PRESSURES
    modes = schemas.MODES.validate(tension.pop("modes"), "tension.modes", r) if "modes" in tension else MODES
    if "replicate" in tension:
        tension["replicate"] = tuple(tension["replicate"])
    softness = schemas.SOFTNESS.read(r, r.table(data, "softness"), "softness")
    return OxideConfig(
        potential=_build(r, MatsuiPotential, schemas.MATSUI.read(r, r.table(data, "potential"), "potential"),
                         "potential"),
        md=_build(r, MDSettings, schemas.MD.read(r, r.table(data, "md"), "md"), "md"),
        quench=_build(r, QuenchSchedule, quench, "quench"),
        pressures_GPa=tuple(pressures),
        tension=_build(r, TensionSettings, tension, "tension"),
        modes=tuple(modes),
        softness=_build(r, SoftnessSettings, softness, "softness"),
    )


def _build(r: TomlReader, cls, values: dict, table: str):
    """``cls(**values)`` of checked ``values``; a rule the dataclass itself enforces (an
    InputError) is reported with the file and ``table``."""
    try:
        return cls(**values)
    except InputError as exc:
        raise InputError(f"[{table}]: {exc}", r.source) from exc


def mpi_rank() -> int:
    """This process's MPI rank from the launcher's environment (0 when not under MPI)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def provenance(config: OxideConfig) -> dict:
    """Config, seed, package versions (LAMMPS included), git revision and host of a run."""
    out = {"config": config.to_dict(), "seed": config.md.seed, **collect()}
    try:
        out["versions"]["lammps"] = importlib.metadata.version("lammps")
    except importlib.metadata.PackageNotFoundError:
        out["versions"]["lammps"] = None
    return out
