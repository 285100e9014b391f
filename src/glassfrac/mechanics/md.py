"""LAMMPS-backed molecular dynamics of 3D oxides, driven from Python.

:class:`LammpsMD` holds one LAMMPS instance loaded with a :class:`Structure` and a potential
(default :class:`~glassfrac.potentials.matsui.MatsuiPotential`). Each :class:`Stage` (NVE, NVT or
NPT Nosé–Hoover with velocity Verlet, linear temperature/pressure ramps, optional constant
strain rate along x) runs in chunks of ``thermo_every`` steps; thermo rows and frames come
back as numpy arrays and :class:`Structure` objects. :func:`thermal_trajectory` gives the
300 K frames of the p_hop labels and :func:`inherent_structure` the local minimum (CG at fixed
cell) of a frame. Units: metal (Å, ps, eV, K); pressures and stresses in GPa, stresses
tensile-positive, Voigt order xx yy zz xy xz yz.

Under ``mpirun -np N`` every rank runs the same Python code and LAMMPS spans all ranks;
gathers are collective and return the full arrays on every rank; write files on rank 0
only (:func:`glassfrac.campaign.oxide_config.mpi_rank`).
"""

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from glassfrac.core.errors import GlassfracError, InputError
from glassfrac.core.progress import progress
from glassfrac.core.units import BAR_IN_GPA
from glassfrac.potentials.lammps import box_lines, create_atoms, lammps_frame, mass_lines, open_lammps
from glassfrac.potentials.matsui import MatsuiPotential
from glassfrac.structure import Box, Structure

AMU_PER_A3_IN_G_CM3 = 1.66053906660
"""1 amu/Å³ in g/cm³."""
VOIGT = ("xx", "yy", "zz", "xy", "xz", "yz")
_THERMO = ("step time temp pe ke etotal press pxx pyy pzz pxy pxz pyz vol "
           "lx ly lz xy xz yz").split()


@dataclass
class Stage:
    """One MD stage.

    ``ensemble``: ``nve``, ``nvt`` or ``npt``; ``time_ps``: length (ps). Temperature (K) ramps
    linearly from ``T`` to ``T_stop`` (default ``T``), pressure (GPa) from ``P`` to ``P_stop``
    on the ``barostat`` axes: ``iso``, ``aniso`` or a subset such as ``"y z"`` (lateral
    barostat). ``erate`` (1/ps) stretches x at that engineering strain rate (``fix deform``).
    ``wall`` adds the potential's repulsive wall for this stage.
    """

    name: str
    ensemble: str
    time_ps: float
    T: float | None = None
    T_stop: float | None = None
    P: float | None = None
    P_stop: float | None = None
    barostat: str = "iso"
    erate: float | None = None
    wall: bool = False

    def __post_init__(self):
        if self.ensemble not in ("nve", "nvt", "npt"):
            raise InputError(f"stage {self.name!r}: ensemble must be nve, nvt or npt, not {self.ensemble!r}")
        if self.ensemble in ("nvt", "npt") and self.T is None:
            raise InputError(f"stage {self.name!r}: {self.ensemble} needs a temperature T")
        if self.ensemble == "npt" and self.P is None:
            raise InputError(f"stage {self.name!r}: npt needs a pressure P (GPa)")
        if self.time_ps < 0:
            raise InputError(f"stage {self.name!r}: time_ps must be >= 0")


@dataclass
class MDSettings:
    """Integrator and output settings: time step and thermostat/barostat damping times (ps),
    thermo row every ``thermo_every`` steps, velocity seed, neighbour skin (Å)."""

    timestep_ps: float = 0.001
    tdamp_ps: float = 0.1
    pdamp_ps: float = 1.0
    thermo_every: int = 100
    seed: int = 12345
    skin: float = 2.0


@dataclass
class StageResult:
    """Thermo rows (arrays keyed by quantity, units in the key) and frames of one stage."""

    stage: Stage
    thermo: dict
    frames: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict:
        """Stage description plus the final thermo row (JSON-ready)."""
        last = {k: (v[-1].tolist() if len(v) else None) for k, v in self.thermo.items()}
        return {**asdict(self.stage), "seconds": round(self.seconds, 3), "final": last}


class LammpsMD:
    """One LAMMPS instance running MD on ``structure`` (3D, periodic, species of the potential).

    Atoms keep their order: LAMMPS ids are 1..N in the order of ``structure``; positions come
    back unwrapped (continuous across boundaries), so frames can be compared directly.
    """

    def __init__(self, structure: Structure, potential=None, settings: MDSettings | None = None,
                 lammps_args=None):
        if structure.dim != 3 or not structure.box.pbc.all():
            raise InputError("LammpsMD needs a 3D structure periodic along x, y and z")
        self.potential = potential or MatsuiPotential()
        self.settings = settings or MDSettings()
        missing = sorted(set(structure.species) - set(self.potential.species))
        if missing:
            raise InputError(f"species {missing} are not in the potential {self.potential.name} "
                             f"({list(self.potential.species)})")
        self.species = structure.species.copy()
        self.mass = float(structure.masses.sum())
        self.wall = False
        self.wall_used = False
        self._stage_bounds = None
        try:
            self.lmp = open_lammps(lammps_args or ())
        except ImportError as exc:  # LAMMPS missing: one clear line on the command line
            raise GlassfracError(str(exc)) from exc
        try:
            self._setup(structure)
        except Exception:
            self.close()
            raise

    # -- life cycle --------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None

    def command(self, line: str) -> None:
        """Send one LAMMPS command; an error becomes a GlassfracError naming the command."""
        try:
            self.lmp.command(line)
        except Exception as exc:
            raise GlassfracError(f"LAMMPS failed on {line!r}: {exc}") from exc

    # -- set-up -----------------------------------------------------------------------------
    def _setup(self, structure: Structure) -> None:
        s = self.settings
        cell = structure.box.cell
        if not np.allclose([cell[0, 1], cell[0, 2], cell[1, 2]], 0.0):
            raise InputError("LAMMPS needs a lower-triangular cell (a along x, b in the xy plane)")
        frame = lammps_frame(structure)
        types = self.potential.species
        for line in [*box_lines(frame, 3, structure.box.pbc, len(types), "charge"), *mass_lines(structure, types)]:
            self.command(line)
        try:
            create_atoms(self.lmp, frame, [types.index(sym) + 1 for sym in structure.species],
                         structure.arrays.get("velocities"))
        except RuntimeError as exc:
            raise GlassfracError(str(exc)) from exc
        for t, symbol in enumerate(types, start=1):
            self.command(f"set type {t} charge {self.potential.charge(symbol):.10g}")
        self.set_wall(False)
        self.command(f"neighbor {s.skin:g} bin")
        self.command("neigh_modify every 1 delay 0 check yes")
        self.command(f"timestep {s.timestep_ps:g}")
        self.command("thermo_style custom " + " ".join(_THERMO))
        self.command("thermo_modify norm no flush no lost error")
        self.command(f"thermo {10**9}")
        self.command("compute glassfrac_pe all pe/atom")
        self.command("compute glassfrac_stress all stress/atom NULL")

    def set_wall(self, wall: bool) -> None:
        """Switch the potential's repulsive wall on or off (recorded in :attr:`wall_used`)."""
        for line in self.potential.lammps_commands(wall=wall):
            self.command(line)
        self.wall = wall
        self.wall_used |= wall

    # -- state ------------------------------------------------------------------------------
    def box(self) -> Box:
        """The current cell."""
        lo, hi, xy, yz, xz, _, _ = self.lmp.extract_box()
        lx, ly, lz = (h - low for h, low in zip(hi, lo, strict=True))
        return Box([[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]], True, lo)

    def _gather(self, name: str, count: int, dtype: int = 1) -> np.ndarray:
        n = int(self.lmp.get_natoms())
        if name.startswith("c_"):
            data = self.lmp.gather(name, dtype, count)
        else:
            data = self.lmp.gather_atoms(name, dtype, count)
        kind = np.float64 if dtype == 1 else np.int32
        return np.ctypeslib.as_array(data).astype(kind).reshape(n, count) if count > 1 else \
            np.ctypeslib.as_array(data).astype(kind).reshape(n)

    def thermo(self) -> dict:
        """The current thermo values: step, time (ps), T (K), energies (eV), pressure and
        stress (GPa, stress tensile-positive), volume (Å³), density (g/cm³), cell lengths (Å)."""
        t = {k: float(self.lmp.get_thermo(k)) for k in _THERMO}
        return {
            "step": int(t["step"]), "time_ps": t["time"], "temperature_K": t["temp"],
            "pe_eV": t["pe"], "ke_eV": t["ke"], "etotal_eV": t["etotal"],
            "pressure_GPa": t["press"] * BAR_IN_GPA,
            "stress_GPa": [-t["p" + c] * BAR_IN_GPA for c in VOIGT],
            "volume_A3": t["vol"], "density_g_cm3": self.mass / t["vol"] * AMU_PER_A3_IN_G_CM3,
            "lengths_A": [t["lx"], t["ly"], t["lz"]],
        }

    def structure(self, per_atom: bool = False) -> Structure:
        """The current configuration: unwrapped positions (Å), ``velocities`` (Å/ps), ``charge``
        (e); with ``per_atom`` also ``pe`` (potential energy per atom, eV) and ``stress_volume`` (GPa·Å³, Voigt,
        tensile-positive; divide by an atomic volume for a stress), at the cost of one force
        evaluation (``run 0``)."""
        if per_atom:  # within a stage, keep its start/stop: fix deform and ramps depend on them
            bounds = f" start {self._stage_bounds[0]} stop {self._stage_bounds[1]}" if self._stage_bounds else ""
            self.command(f"run 0{bounds} post no")
        box = self.box()
        x = self._gather("x", 3)
        images = self._gather("image", 3, dtype=0)
        arrays = {"velocities": self._gather("v", 3), "charge": self._gather("q", 1)}
        if per_atom:
            arrays["pe"] = self._gather("c_glassfrac_pe", 1)
            arrays["stress_volume"] = self._gather("c_glassfrac_stress", 6) * BAR_IN_GPA
        info = {"step": int(self.lmp.get_thermo("step")), "time_ps": float(self.lmp.get_thermo("time")),
                **self.potential.describe(self.wall)}
        return Structure(x + images @ box.cell, self.species, box, arrays=arrays, info=info)

    # -- operations -------------------------------------------------------------------------
    def velocities(self, T: float, seed: int | None = None) -> None:
        """Draw Gaussian velocities at ``T`` K (zero total momentum and angular momentum)."""
        seed = self.settings.seed if seed is None else seed
        self.command(f"velocity all create {T:g} {int(seed)} mom yes rot yes dist gaussian")

    def scale_box(self, factors) -> None:
        """Scale the cell (and atoms) by ``factors`` (sx, sy, sz) about its centre."""
        sx, sy, sz = factors
        self.command(f"change_box all x scale {sx:.16g} y scale {sy:.16g} z scale {sz:.16g} remap units box")

    def set_density(self, density: float) -> None:
        """Scale the cell isotropically to ``density`` g/cm³."""
        now = self.mass / self.box().volume * AMU_PER_A3_IN_G_CM3
        self.scale_box([(now / density) ** (1 / 3)] * 3)

    def minimize(self, ftol: float = 1e-4, etol: float = 0.0, maxiter: int = 10000,
                 maxeval: int = 100000) -> dict:
        """Conjugate-gradient minimisation at fixed cell; returns the energy (eV) and max force (eV/Å)."""
        self.command("min_style cg")
        self.command(f"minimize {etol:g} {ftol:g} {maxiter} {maxeval}")
        forces = self._gather("f", 3)
        return {"pe_eV": float(self.lmp.get_thermo("pe")),
                "fmax_eV_A": float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0}

    def run(self, stage: Stage, frame_every_ps: float | None = None, per_atom_frames: bool = False,
            show_progress: bool = True) -> StageResult:
        """Run ``stage``; thermo every ``thermo_every`` steps, a frame every ``frame_every_ps``
        (and at the end), with per-atom energy/stress if ``per_atom_frames``."""
        s = self.settings
        steps = n_steps(stage.time_ps, s.timestep_ps)
        if stage.wall != self.wall:
            self.set_wall(stage.wall)
        self._fixes(stage)
        frame_every = None if frame_every_ps is None else max(1, int(round(frame_every_ps / s.timestep_ps)))
        start = int(self.lmp.get_thermo("step"))
        self._stage_bounds = (start, start + steps)
        rows, frames = [], []
        tick = time.perf_counter()
        bar = progress(total=steps, desc=stage.name, unit="step", disable=None if show_progress else True)
        try:
            done, first = 0, True
            while done < steps:
                chunk = min(s.thermo_every - done % s.thermo_every, steps - done)
                if frame_every:
                    chunk = min(chunk, frame_every - done % frame_every)
                self.command(f"run {chunk} start {start} stop {start + steps} pre {'yes' if first else 'no'} post no")
                first = False
                done += chunk
                bar.update(chunk)
                if done % s.thermo_every == 0 or done == steps:
                    rows.append(self.thermo())
                if frame_every and (done % frame_every == 0 or done == steps):
                    frames.append(self.structure(per_atom=per_atom_frames))
        finally:
            bar.close()
            self._stage_bounds = None
            self._unfix(stage)
        thermo = {k: np.array([r[k] for r in rows]) for k in (rows[0] if rows else {})}
        return StageResult(stage, thermo, frames, time.perf_counter() - tick)

    def _fixes(self, stage: Stage) -> None:
        s = self.settings
        T1 = stage.T if stage.T_stop is None else stage.T_stop
        temp = f"temp {stage.T:g} {T1:g} {s.tdamp_ps:g}" if stage.T is not None else ""
        if stage.ensemble == "nve":
            self.command("fix glassfrac_int all nve")
        elif stage.ensemble == "nvt":
            self.command(f"fix glassfrac_int all nvt {temp}")
        else:
            p0 = stage.P / BAR_IN_GPA
            p1 = (stage.P if stage.P_stop is None else stage.P_stop) / BAR_IN_GPA
            if stage.barostat in ("iso", "aniso", "tri"):
                baro = f"{stage.barostat} {p0:.10g} {p1:.10g} {s.pdamp_ps:g}"
            else:
                axes = stage.barostat.split()
                if not axes or set(axes) - {"x", "y", "z"}:
                    raise InputError(f"barostat must be iso, aniso, tri or axes like 'y z', got {stage.barostat!r}")
                if stage.erate is not None and "x" in axes:
                    raise InputError("the barostat cannot act on x while x is strained")
                baro = " ".join(f"{a} {p0:.10g} {p1:.10g} {s.pdamp_ps:g}" for a in axes) + " couple none"
            self.command(f"fix glassfrac_int all npt {temp} {baro}")
        if stage.erate is not None:
            self.command(f"fix glassfrac_deform all deform 1 x erate {stage.erate:.10g} remap x")

    def _unfix(self, stage: Stage) -> None:
        self.command("unfix glassfrac_int")
        if stage.erate is not None:
            self.command("unfix glassfrac_deform")


def n_steps(time_ps: float, timestep_ps: float) -> int:
    """Number of MD steps in ``time_ps`` (rounded to the nearest step)."""
    return int(math.floor(time_ps / timestep_ps + 0.5))


def thermal_trajectory(structure: Structure, T: float = 300.0, time_ps: float = 10.0, frame_every_ps: float = 0.1,
                       equilibrate_ps: float = 0.0, potential=None, settings: MDSettings | None = None) -> list:
    """Frames (unwrapped, ``frame_every_ps`` apart) of an NVT run at ``T`` K after an optional
    NVT equilibration: the input of :func:`glassfrac.analysis.oxide.phop` (DU21: 300 K)."""
    with LammpsMD(structure, potential, settings) as md:
        if "velocities" not in structure.arrays:
            md.velocities(T)
        if equilibrate_ps > 0:
            md.run(Stage("equilibrate", "nvt", equilibrate_ps, T))
        first = md.structure()
        frames = md.run(Stage("trajectory", "nvt", time_ps, T), frame_every_ps=frame_every_ps).frames
    return [first, *frames]


def inherent_structure(structure: Structure, potential=None, settings: MDSettings | None = None,
                       ftol: float = 1e-4, maxiter: int = 5000) -> Structure:
    """The inherent structure of ``structure``: the local energy minimum reached by conjugate
    gradients at fixed cell (LAMMPS, stop when the global force norm < ``ftol`` eV/Å).
    Atoms keep their order; the per-atom arrays and info of ``structure`` are kept (velocities
    dropped) and ``info`` gains the minimum energy ``inherent_pe_eV`` and ``inherent_fmax_eV_A``."""
    start = structure.copy()
    start.arrays.pop("velocities", None)
    with LammpsMD(start, potential, settings) as md:
        result = md.minimize(ftol=ftol, maxiter=maxiter, maxeval=10 * maxiter)
        minimum = md.structure()
    out = Structure(minimum.positions, structure.species, minimum.box,
                    arrays={k: v for k, v in start.arrays.items()}, info=dict(structure.info))
    out.info.update({"inherent_pe_eV": result["pe_eV"], "inherent_fmax_eV_A": result["fmax_eV_A"]})
    return out
