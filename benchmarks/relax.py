"""Relaxation to 1e-8 eV/Å with the batched minimisers, against LAMMPS where it has the method.

    python benchmarks/relax.py [--quick] [--skip-lammps]

(a) Yukawa monolayer: a JuMol sample tiled 2 x 4 (10800 atoms; --quick: 1 x 1, 1350 atoms),
    positions perturbed by 0.05 Å (Gaussian, seed 0), relaxed to max force 1e-8 eV/Å with
    our FIRE and with LAMMPS ``min_style fire`` (same structure, ``minimize 0 1e-8``,
    ``min_modify norm max``: the largest per-atom force, as ours; 1 process) in the same
    script. Both run the same dynamics: unit masses (LAMMPS ``mass * 1.0`` and time step
    dt·sqrt(1.0364e-4) ps), dt 0.1 → dt_max 0.5 (the Bitzek 10 × dt is above the stability
    limit of this potential), N_min 5, f_inc 1.1, f_dec 0.5, alpha 0.1, f_alpha 0.99, half
    step back, at most 0.2 Å per step; ours without its stability cap. Reports seconds and
    force evaluations of each and the ratio ours / LAMMPS, then our default FIRE (with the
    cap), L-BFGS and CG on the same start, each with its ratio to LAMMPS FIRE.
(b) Watanabe bilayer: the FC22 reference bilayer (3456 atoms) perturbed by 0.05 Å (seed 0),
    relaxed to 1e-8 eV/Å with L-BFGS and FIRE (FIRE skipped with --quick); and a bilayer from
    the generator (16 x 18 rings, mu2 0.3, seed 1; --quick 8 x 8), as generated (Si–O 1.65 Å),
    relaxed with its in-plane cell to 1e-8 eV/Å and 1e-6 N/m with L-BFGS.
(c) Local probing windows: discs around a grid of centres over the tiled sample (radius 21 Å:
    11 Å free, 10 Å frozen shell; non-periodic; ~290 atoms, ~80 free), pure shear of 1e-3 about
    each centre (frozen atoms follow it), all windows relaxed together to 1e-8 eV/Å: total
    seconds and windows per second: 256 windows (16 x 16 grid) with L-BFGS, FIRE, and L-BFGS
    without compacting the working set (finished windows masked but still evaluated); without
    --quick also the 2500 windows of a 50 x 50 map with L-BFGS. Batches of 256 windows.

Prints one JSON object per figure. The machine is shared: compare figures of one run.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from glassfrac.core.threads import set_threads  # noqa: E402
from glassfrac.mechanics.fire import FireParameters  # noqa: E402
from glassfrac.mechanics.relax import Relaxer  # noqa: E402
from glassfrac.potentials import get_potential  # noqa: E402
from glassfrac.potentials.lammps import lammps_input_lines, open_lammps  # noqa: E402
from glassfrac.structure import Box, Structure, read  # noqa: E402
from results import publish  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared/data"
SAMPLE = DATA / "jumol-2d-silica/sig_1.00_sample_0.data"
BILAYER = DATA / "fc22-bilayer/sio2_initial.dump"
FMAX = 1e-8
SAME_AS_LAMMPS = FireParameters(dt_max=0.5, dt_stability=None)  # plain FIRE 2.0, stable dt_max
MAX_STEP = 0.2
AMU_PS2_A2_IN_EV = 1.0364269e-4  # 1 amu Å^2 / ps^2 in eV: LAMMPS metal units


def emit(figure, value, unit, reference=None, **extra):
    publish({"benchmark": "relax", "figure": figure, "value": value, "unit": unit,
             "reference": reference or {}, "extrapolated": False, **extra})


def tiled(structure, nx, ny, noise, seed=0):
    """``structure`` repeated nx x ny times, positions perturbed by ``noise`` Å (Gaussian)."""
    cell = structure.box.cell
    shifts = np.array([[a, b] for a in range(nx) for b in range(ny)]) @ cell
    positions = (structure.positions[None] + shifts[:, None]).reshape(-1, structure.dim)
    positions += np.random.default_rng(seed).normal(0.0, noise, positions.shape)
    return Structure(positions, np.tile(structure.species, nx * ny),
                     Box(cell * np.array([[nx], [ny]]), True))


def relax_timed(potential, structure, method, **options):
    batch = potential.batch([structure])
    return Relaxer(potential, method=method, fmax=FMAX, max_step=MAX_STEP, **options).run(batch, stress=False)


# -- LAMMPS ----------------------------------------------------------------------------------

def lammps_fire(structure, potential, fire):
    """LAMMPS FIRE with the dynamics of ours; returns seconds, iterations, force evaluations,
    energy, max force and the LAMMPS version."""
    from glassfrac.structure.io import write_lammps_data

    lmp = open_lammps()
    with tempfile.TemporaryDirectory() as tmp:
        data, log = Path(tmp) / "in.data", Path(tmp) / "log.lammps"
        write_lammps_data(structure, data, type_map={k + 1: s for k, s in enumerate(potential.species)})
        timestep = fire.dt_start * np.sqrt(AMU_PS2_A2_IN_EV)
        lmp.commands_list([
            "units metal", "dimension 2", "atom_style atomic", "boundary p p p", f"read_data {data}",
            "mass * 1.0", *lammps_input_lines(potential), "neighbor 1.0 bin",
            "neigh_modify every 1 delay 0 check yes", f"timestep {float(timestep)!r}", "min_style fire",
            f"min_modify integrator eulerimplicit tmax {fire.dt_max / fire.dt_start} "
            f"tmin {fire.dt_min / fire.dt_start} delaystep {fire.n_min} dtgrow {fire.f_inc} "
            f"dtshrink {fire.f_dec} alpha0 {fire.alpha_start} alphashrink {fire.f_alpha} halfstepback yes",
            f"min_modify dmax {MAX_STEP} norm max", "thermo 0", "run 0", f"log {log}",
        ])
        start = time.perf_counter()
        lmp.command(f"minimize 0.0 {FMAX} 1000000 1000000")
        seconds = time.perf_counter() - start
        lmp.command("log none")
        counts = [line for line in log.read_text().splitlines() if "Iterations, force evaluations" in line]
        iterations, evaluations = (int(v) for v in counts[-1].split("=")[1].split())
    lmp.command("run 0")
    forces = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3)[:, :2]
    energy = lmp.get_thermo("pe")
    version = lmp.version()
    lmp.close()
    return seconds, iterations, evaluations, energy, float(np.linalg.norm(forces, axis=1).max()), version


def monolayer(args):
    potential = get_potential("yukawa2d")
    nx, ny = (1, 1) if args.quick else (2, 4)
    structure = tiled(read(SAMPLE), nx, ny, noise=0.05)
    n = structure.n_atoms
    name = f"yukawa_{n}_atoms"
    same = relax_timed(potential, structure, "fire", fire=SAME_AS_LAMMPS)
    emit(f"{name}_fire_same_as_lammps_seconds", round(same.seconds, 2), "s", **summary(same, n),
         fire={"dt_max": SAME_AS_LAMMPS.dt_max, "dt_stability": None})
    reference = None
    if not args.skip_lammps:
        seconds, iterations, evaluations, energy, fmax, version = lammps_fire(structure, potential, SAME_AS_LAMMPS)
        reference = {"what": f"LAMMPS {version} min_style fire, same dynamics and tolerance (norm max), "
                             f"pair_style lepton, 1 process", "value": round(seconds, 2), "unit": "s",
                     "evaluations": evaluations, "iterations": iterations, "energy_per_atom": energy / n,
                     "max_force": fmax}
        emit(f"{name}_lammps_fire_seconds", round(seconds, 2), "s", evaluations=evaluations,
             iterations=iterations, max_force=fmax, energy_per_atom=energy / n)
        emit(f"{name}_fire_same_as_lammps_ratio_to_lammps", round(same.seconds / seconds, 3), "ratio", reference,
             ms_per_evaluation_ours=round(1e3 * same.seconds / int(same.evaluations[0]), 2),
             ms_per_evaluation_lammps=round(1e3 * seconds / evaluations, 2))
    for method, label in (("fire", "fire_default"), ("lbfgs", "lbfgs"), ("cg", "cg")):
        stats = relax_timed(potential, structure, method)
        extra = {} if reference is None else {"ratio_to_lammps_fire": round(stats.seconds / reference["value"], 4)}
        emit(f"{name}_{label}_seconds", round(stats.seconds, 2), "s", reference or {}, **summary(stats, n), **extra)


def summary(stats, n):
    return {"evaluations": int(stats.evaluations[0]), "iterations": int(stats.iterations[0]),
            "converged": bool(stats.converged[0]), "max_force": float(stats.max_force[0]),
            "energy_per_atom": float(stats.energy[0]) / n}


def bilayer(args):
    potential = get_potential("watanabe")
    structure = read(BILAYER)
    structure.positions = structure.positions + np.random.default_rng(0).normal(0.0, 0.05, structure.positions.shape)
    for method in ("lbfgs",) if args.quick else ("lbfgs", "fire"):
        stats = relax_timed(potential, structure, method)
        emit(f"watanabe_bilayer_{structure.n_atoms}_atoms_{method}_seconds", round(stats.seconds, 2), "s",
             evaluations=int(stats.evaluations[0]), iterations=int(stats.iterations[0]),
             converged=bool(stats.converged[0]), max_force=float(stats.max_force[0]),
             energy=float(stats.energy[0]))
    from glassfrac.generate.network import generate

    rings = (8, 8) if args.quick else (16, 18)
    start = time.perf_counter()
    generated = generate(rings=rings, mu2=0.3, kind="bilayer", seed=1, progress=False)
    made = time.perf_counter() - start
    batch = potential.batch([generated])
    stats = Relaxer(potential, method="lbfgs", fmax=FMAX, max_step=MAX_STEP).run(batch, cell_mask=True)
    emit(f"generated_bilayer_{generated.n_atoms}_atoms_lbfgs_with_cell_seconds", round(stats.seconds, 2), "s",
         evaluations=int(stats.evaluations[0]), iterations=int(stats.iterations[0]),
         converged=bool(stats.converged[0]), max_force=float(stats.max_force[0]),
         stress_residual_n_per_m=float(stats.stress_residual[0]),
         energy_per_atom=float(stats.energy[0]) / generated.n_atoms, generation_seconds=round(made, 2),
         generator={"rings": list(rings), "mu2": 0.3, "seed": 1},
         relaxed_cell=[round(float(v), 4) for v in batch.cells[0, :2, :2].flatten()])


def windows(structure, n_side, free=11.0, shell=10.0, shear=1e-3):
    """Sheared open discs around an n_side x n_side grid of centres, with their frozen masks."""
    radius = free + shell
    lengths = np.diag(structure.box.cell)
    wrapped = np.mod(structure.positions, lengths)
    tree = cKDTree(wrapped, boxsize=lengths)
    grid = (np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij"), -1)
            .reshape(-1, 2) + 0.5) / n_side * lengths
    F = np.diag([1.0 + shear, 1.0 / (1.0 + shear)])
    out, frozen = [], []
    for centre, atoms in zip(grid, tree.query_ball_point(grid, radius), strict=True):
        d = wrapped[atoms] - centre
        d -= np.round(d / lengths) * lengths
        out.append(Structure(d @ F.T, structure.species[atoms], Box(np.eye(2) * 2 * radius, False)))
        frozen.append(np.linalg.norm(d, axis=1) >= free)
    return out, frozen


def probing_windows(args):
    potential = get_potential("yukawa2d")
    sample = tiled(read(SAMPLE), 2, 4, noise=0.0)
    chunk = 256
    runs = [("lbfgs", 0.5, 16), ("fire", 0.5, 16), ("lbfgs", 0.0, 16)]  # method, compact, grid side
    if not args.quick:
        runs.append(("lbfgs", 0.5, 50))  # a full 50 x 50 map
    for method, compact, n_side in runs:
        discs, frozen = windows(sample, n_side)
        n = len(discs)
        start = time.perf_counter()
        evaluations, converged = [], 0
        for lo in range(0, n, chunk):
            batch = potential.batch(discs[lo:lo + chunk], frozen=frozen[lo:lo + chunk])
            stats = Relaxer(potential, method=method, fmax=FMAX, compact=compact).run(batch, stress=False)
            evaluations += stats.evaluations.tolist()
            converged += int(stats.converged.sum())
        seconds = time.perf_counter() - start
        label = f"{method}" + ("_no_compaction" if compact == 0 else "")
        emit(f"windows_{n}_{label}_seconds", round(seconds, 2), "s", windows=n, converged=converged,
             atoms_per_window=round(float(np.mean([d.n_atoms for d in discs])), 1),
             free_atoms_per_window=round(float(np.mean([np.count_nonzero(~f) for f in frozen])), 1),
             batch_size=chunk, median_evaluations=float(np.median(evaluations)),
             max_evaluations=int(np.max(evaluations)))
        emit(f"windows_{n}_{label}_per_second", round(n / seconds, 3), "windows/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller systems, fewer windows")
    parser.add_argument("--skip-lammps", action="store_true", help="do not run the LAMMPS comparison")
    parser.add_argument("--only", choices=("monolayer", "bilayer", "windows"), default=None)
    args = parser.parse_args()
    set_threads(1)
    torch.set_num_threads(1)
    for name, part in (("monolayer", monolayer), ("bilayer", bilayer), ("windows", probing_windows)):
        if args.only in (None, name):
            part(args)


if __name__ == "__main__":
    main()
