"""Uniaxial tension along x of amorphous oxides at finite temperature (DU21, protocols.md §10).

Both modes replicate the sample (DU21: twice along x), draw new velocities at ``T`` (so that
the replicas do not move in step), equilibrate it (NPT at ``T``, 0 GPa), then load it:

- plane stress: constant engineering strain rate along x (``fix deform``) with a Nosé–Hoover
  barostat at 0 GPa on y and z;
- plane strain: x stretched in steps of ``step_strain`` of the equilibrated length, each step
  minimised at fixed cell, then held ``step_nvt_ps`` in NVT at ``T``; y and z stay fixed.
  The step stress is the mean over the second half of the hold. Loading stops at
  ``max_strain`` or, after the peak, when σ_xx < ``stop_fraction`` × peak (fractured).

Strain is engineering (L/L0 − 1), stress in GPa, tensile-positive (Voigt xx yy zz xy xz yz).
"""

from dataclasses import dataclass, field

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.mechanics.md import LammpsMD, MDSettings, Stage
from glassfrac.structure import Structure

PER_S_IN_PER_PS = 1e-12


@dataclass
class TensionSettings:
    """Tension protocol: replication, temperature (K), equilibration (ps), strain rate (1/s)
    and maximum strain (plane stress), strain step, hold (ps) and stop rule (plane strain),
    frame spacing in strain. Defaults are the reduced size; :meth:`paper` is DU21."""

    replicate: tuple = (2, 1, 1)
    T: float = 300.0
    equilibrate_ps: float = 5.0
    strain_rate_per_s: float = 5e10
    max_strain: float = 0.5
    frame_every_strain: float = 0.02
    step_strain: float = 0.02
    step_nvt_ps: float = 0.5
    stop_fraction: float = 0.1

    @classmethod
    def paper(cls, **changes) -> "TensionSettings":
        """DU21: 100 ps equilibration, 1 % steps with 10 ps holds (5·10¹⁰ s⁻¹ to 50 % strain)."""
        base = dict(equilibrate_ps=100.0, frame_every_strain=0.01, step_strain=0.01, step_nvt_ps=10.0)
        return cls(**{**base, **changes})


@dataclass
class TensionResult:
    """Stress–strain curve, frames at recorded strains (per-atom energy and stress) and thermo."""

    mode: str
    strain: np.ndarray
    stress_GPa: np.ndarray
    frames: list
    frame_strain: np.ndarray
    equilibrated: Structure
    wall_used: bool = False
    stages: list = field(default_factory=list)

    def summary(self) -> dict:
        sxx = self.stress_GPa[:, 0]
        k = int(np.argmax(sxx)) if len(sxx) else 0
        return {"mode": self.mode, "n_atoms": self.equilibrated.n_atoms,
                "peak_stress_GPa": float(sxx[k]) if len(sxx) else None,
                "strain_at_peak": float(self.strain[k]) if len(sxx) else None,
                "final_strain": float(self.strain[-1]) if len(sxx) else 0.0,
                "n_frames": len(self.frames), "wall_used": self.wall_used,
                "stress_unit": "GPa", "strain": "engineering, along x"}


def replicate(structure: Structure, reps) -> Structure:
    """``structure`` repeated ``reps`` = (nx, ny, nz) times along its cell vectors (per-atom
    arrays repeated too)."""
    reps = np.asarray(reps, dtype=int)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in reps], indexing="ij"), -1).reshape(-1, 3)
    shifts = grid @ structure.box.cell
    positions = (structure.positions[None] + shifts[:, None]).reshape(-1, 3)
    k = len(grid)
    arrays = {name: np.concatenate([v] * k) for name, v in structure.arrays.items()}
    return Structure(positions, np.tile(structure.species, k),
                     structure.box.with_cell(structure.box.cell * reps[:, None]),
                     arrays=arrays, info=dict(structure.info))


def tension(structure: Structure, mode: str = "plane_stress", settings: TensionSettings | None = None,
            potential=None, md_settings: MDSettings | None = None) -> TensionResult:
    """Replicate, equilibrate and load ``structure`` in ``mode`` ``plane_stress`` or ``plane_strain``."""
    if mode not in ("plane_stress", "plane_strain"):
        raise InputError(f"mode must be 'plane_stress' or 'plane_strain', got {mode!r}")
    settings = settings or TensionSettings()
    sample = replicate(structure, settings.replicate)
    with LammpsMD(sample, potential, md_settings) as md:
        md.velocities(settings.T)  # fresh velocities: the replicas must not move in step
        eq = md.run(Stage("equilibrate", "npt", settings.equilibrate_ps, settings.T, P=0.0))
        start = md.structure(per_atom=True)
        length0 = float(start.box.cell[0, 0])
        load = _plane_stress if mode == "plane_stress" else _plane_strain
        strain, stress, frames, stages = load(md, settings, length0)
        strain = np.concatenate([[0.0], strain])  # the equilibrated state opens the curve
        stress = np.vstack([eq.thermo["stress_GPa"][-1], stress])
        frames.insert(0, start)
        frame_strain = np.array([f.box.cell[0, 0] / length0 - 1.0 for f in frames])
        return TensionResult(mode, strain, stress, frames, frame_strain, start, md.wall_used, [eq, *stages])


def _plane_stress(md: LammpsMD, settings: TensionSettings, length0: float):
    erate = settings.strain_rate_per_s * PER_S_IN_PER_PS
    stage = Stage("plane_stress", "npt", settings.max_strain / erate, settings.T, P=0.0,
                  barostat="y z", erate=erate)
    result = md.run(stage, frame_every_ps=settings.frame_every_strain / erate, per_atom_frames=True)
    strain = result.thermo["lengths_A"][:, 0] / length0 - 1.0
    return strain, result.thermo["stress_GPa"], result.frames, [result]


def _plane_strain(md: LammpsMD, settings: TensionSettings, length0: float):
    strains, stresses, frames, stages = [], [], [], []
    n_max = int(np.floor(settings.max_strain / settings.step_strain + 1e-9))
    peak = -np.inf
    for k in range(1, n_max + 1):
        length = float(md.box().cell[0, 0])
        md.scale_box((length0 * (1 + k * settings.step_strain) / length, 1.0, 1.0))
        md.minimize()
        hold = md.run(Stage(f"strain_{k}", "nvt", settings.step_nvt_ps, settings.T))
        rows = hold.thermo["stress_GPa"]
        stress = rows[len(rows) // 2:].mean(axis=0)
        strains.append(k * settings.step_strain)
        stresses.append(stress)
        frames.append(md.structure(per_atom=True))
        stages.append(hold)
        peak = max(peak, stress[0])
        if stress[0] < settings.stop_fraction * peak and peak > 0:
            break
    return np.array(strains), np.array(stresses).reshape(-1, 6), frames, stages
