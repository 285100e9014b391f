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
from dataclasses import asdict, dataclass, field, fields

from glassfrac.core.config import TomlReader, read_toml
from glassfrac.core.errors import InputError
from glassfrac.core.provenance import collect
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
    """Read a TOML config (None: the defaults)."""
    if path is None:
        return OxideConfig()
    data, _ = read_toml(path)
    r = TomlReader(path)
    r.keys(data, "", TABLES)
    quench = dict(r.table(data, "quench"))
    tension = dict(r.table(data, "tension"))
    pressures = tuple(float(p) for p in quench.pop("pressures_GPa", DEFAULT_PRESSURES))
    modes = tuple(tension.pop("modes", MODES))
    if set(modes) - set(MODES):
        r.fail("tension.modes", f"modes among {MODES}, got {list(modes)}")
    if "replicate" in tension:
        tension["replicate"] = tuple(tension["replicate"])
    return OxideConfig(
        potential=_build(r, MatsuiPotential, r.table(data, "potential"), "potential"),
        md=_build(r, MDSettings, r.table(data, "md"), "md"),
        quench=_build(r, QuenchSchedule, quench, "quench"),
        pressures_GPa=pressures,
        tension=_build(r, TensionSettings, tension, "tension"),
        modes=modes,
        softness=_build(r, SoftnessSettings, r.table(data, "softness"), "softness"),
    )


def _build(r: TomlReader, cls, values: dict, table: str):
    """``cls(**values)``; unknown keys and values the dataclass refuses name ``table``."""
    r.keys(values, table, [f.name for f in fields(cls)])
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
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
