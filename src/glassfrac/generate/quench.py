"""Melt-quench of amorphous Al2O3 under pressure (DU21 schedule, reference/protocols.md §10).

Random start at ``initial_density``; NVT melt at ``melt_T``; NVT cooling to ``liquid_T`` and
hold; isotropic rescale to ``liquid_density`` and hold; NPT cooling to ``final_T`` at the quench
pressure P; NVT then NPT relaxation at ``final_T`` and ``relax_P``. Every time (ps), rate,
temperature (K), density (g/cm³) and pressure (GPa) is a field of :class:`QuenchSchedule`.
Defaults are a reduced size (300 atoms, 25 ps, quench at 270 K/ps) that runs in minutes on one core;
:meth:`QuenchSchedule.paper` gives DU21's 8100 atoms and full times.
"""

from dataclasses import asdict, dataclass, replace

import numpy as np

from glassfrac.analysis.oxide import coordination_fractions
from glassfrac.core.errors import InputError
from glassfrac.mechanics.md import AMU_PER_A3_IN_G_CM3, LammpsMD, MDSettings, Stage
from glassfrac.structure import MASSES, Box, Structure

UNIT_MASS = 2 * MASSES["Al"] + 3 * MASSES["O"]
"""Mass of one Al2O3 unit, amu."""


def density(structure: Structure) -> float:
    """Mass density in g/cm³."""
    return float(structure.masses.sum() / structure.box.volume * AMU_PER_A3_IN_G_CM3)


def random_alumina(n_units: int, density: float = 2.75, seed: int = 0, min_distance: float = 1.6) -> Structure:
    """``n_units`` Al2O3 units at random in a cubic periodic box of ``density`` g/cm³, no two
    atoms closer than ``min_distance`` Å (random sequential insertion)."""
    n = 5 * n_units
    length = (n_units * UNIT_MASS * AMU_PER_A3_IN_G_CM3 / density) ** (1 / 3)
    rng = np.random.default_rng(seed)
    positions = np.empty((n, 3))
    placed = 0
    for _ in range(200 * n):
        trial = rng.random(3) * length
        d = positions[:placed] - trial
        d -= length * np.round(d / length)
        if placed == 0 or np.einsum("ij,ij->i", d, d).min() >= min_distance**2:
            positions[placed] = trial
            placed += 1
            if placed == n:
                break
    else:
        raise InputError(f"could not place {n} atoms {min_distance} Å apart at {density} g/cm³")
    species = np.array(["Al"] * (2 * n_units) + ["O"] * (3 * n_units))
    return Structure(positions, species, Box([length] * 3), info={"seed": seed})


@dataclass
class QuenchSchedule:
    """DU21 melt-quench: times in ps, temperatures in K, densities in g/cm³, pressures in GPa.

    ``wall`` adds the potential's repulsive wall to every stage hotter than ``wall_min_T``.
    """

    n_units: int = 60
    initial_density: float = 2.75
    melt_T: float = 5000.0
    melt_ps: float = 3.0
    liquid_T: float = 3000.0
    cool_ps: float = 1.0
    liquid_ps: float = 3.0
    liquid_density: float = 3.175
    dense_ps: float = 3.0
    final_T: float = 300.0
    quench_ps: float = 10.0
    relax_nvt_ps: float = 2.0
    relax_npt_ps: float = 3.0
    relax_P: float = 0.0
    wall: bool = False
    wall_min_T: float = 2000.0

    @classmethod
    def paper(cls, **changes) -> "QuenchSchedule":
        """DU21: 1620 units (8100 atoms), 45 ps melt, 10 ps cooling, 45 + 45 ps holds, 650 ps quench
        (4.15 K/ps), 35 ps NVT and 35 ps NPT relaxation."""
        base = dict(n_units=1620, melt_ps=45.0, cool_ps=10.0, liquid_ps=45.0, dense_ps=45.0,
                    quench_ps=650.0, relax_nvt_ps=35.0, relax_npt_ps=35.0)
        return cls(**{**base, **changes})

    @property
    def quench_rate_K_per_ps(self) -> float:
        return (self.liquid_T - self.final_T) / self.quench_ps

    def stages(self, pressure: float) -> list[Stage]:
        """The stages at quench pressure ``pressure`` GPa; the rescale to ``liquid_density``
        happens before the stage named ``dense``."""
        def hot(*temps):
            return self.wall and max(temps) >= self.wall_min_T

        return [
            Stage("melt", "nvt", self.melt_ps, self.melt_T, wall=hot(self.melt_T)),
            Stage("cool", "nvt", self.cool_ps, self.melt_T, self.liquid_T, wall=hot(self.melt_T)),
            Stage("liquid", "nvt", self.liquid_ps, self.liquid_T, wall=hot(self.liquid_T)),
            Stage("dense", "nvt", self.dense_ps, self.liquid_T, wall=hot(self.liquid_T)),
            Stage("quench", "npt", self.quench_ps, self.liquid_T, self.final_T, pressure, pressure,
                  wall=hot(self.liquid_T)),
            Stage("relax_nvt", "nvt", self.relax_nvt_ps, self.final_T, wall=hot(self.final_T)),
            Stage("relax_npt", "npt", self.relax_npt_ps, self.final_T, P=self.relax_P, wall=hot(self.final_T)),
        ]


@dataclass
class QuenchResult:
    """Final structure (with per-atom energy and stress) and per-stage thermo of one quench."""

    pressure: float
    structure: Structure
    stages: list
    wall_used: bool
    seconds: float

    @property
    def density(self) -> float:
        return density(self.structure)

    def summary(self) -> dict:
        return {
            "quench_pressure_GPa": self.pressure, "density_g_cm3": round(self.density, 5),
            "n_atoms": self.structure.n_atoms, "wall_used": self.wall_used,
            "al_coordination_fractions": coordination_fractions(self.structure),
            "seconds": round(self.seconds, 2),
            "stages": [r.summary() for r in self.stages],
        }


def melt_quench(pressure: float, schedule: QuenchSchedule | None = None, potential=None,
                settings: MDSettings | None = None, seed: int | None = None) -> QuenchResult:
    """Melt-quench one sample at quench pressure ``pressure`` GPa (seeded by ``seed`` or
    ``settings.seed``: same seed, same sample)."""
    schedule = schedule or QuenchSchedule()
    settings = settings or MDSettings()
    if seed is not None:
        settings = replace(settings, seed=seed)
    start = random_alumina(schedule.n_units, schedule.initial_density, seed=settings.seed)
    results = []
    with LammpsMD(start, potential, settings) as md:
        md.velocities(schedule.melt_T)
        for stage in schedule.stages(pressure):
            if stage.name == "dense":
                md.set_density(schedule.liquid_density)
            results.append(md.run(stage))
        final = md.structure(per_atom=True)
        final.info.update({"quench_pressure_GPa": pressure, "schedule": asdict(schedule),
                           "seed": settings.seed, "wall_used": md.wall_used})
        wall_used = md.wall_used
    return QuenchResult(pressure, final, results, wall_used, sum(r.seconds for r in results))
