"""Yukawa 2D silica: force evaluations of a 10^4-atom monolayer (ours and LAMMPS) and of a
batch of probing windows.

    python benchmarks/potentials.py [--quick]

(a) A JuMol sample tiled 2 x 4 (10800 atoms, perturbed by 0.02 Å): one evaluation with the
    Verlet list (skin 1 Å) given — forces only, and forces + energy + virial — and once more
    including a fresh list; LAMMPS (pair_style lepton, same expression, 1 process) in the same
    script: time per step of ``run`` without moving atoms (no list rebuild), with the energy
    and virial tallied on every step or, for forces only, on the last of 20. Times are the
    best of many interleaved repeats (the machine is shared); ratios are ours / LAMMPS.
(b) Windows as in local probing: discs of radius 21 Å (11 Å free + 10 Å shell) around a grid
    of centres over the tiled sample, non-periodic; the time to build their pair lists and of
    one batched evaluation (forces + energy + virial), as windows per second.

Prints one JSON object per figure, with the machine's 1-minute load average at that moment.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from glassfrac import Box, Structure, read  # noqa: E402
from glassfrac.core.threads import set_threads  # noqa: E402
from glassfrac.potentials import VerletList  # noqa: E402
from glassfrac.potentials.lammps import lammps_frame, lammps_input_lines, open_lammps  # noqa: E402
from glassfrac.potentials.yukawa import Yukawa2D  # noqa: E402
from results import publish  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "shared/data/jumol-2d-silica/sig_1.00_sample_0.data"


def emit(figure, value, unit, reference=None, **extra):
    publish({"benchmark": "potentials", "figure": figure, "value": value, "unit": unit,
             "reference": reference or {}, "extrapolated": False, "load_average": round(os.getloadavg()[0], 2),
             **extra})


def tiled(structure, nx, ny, noise, seed=0):
    """``structure`` repeated nx x ny times, positions perturbed by ``noise`` Å (Gaussian)."""
    cell = structure.box.cell
    shifts = np.array([[a, b] for a in range(nx) for b in range(ny)]) @ cell
    positions = (structure.positions[None] + shifts[:, None]).reshape(-1, 2)
    positions += np.random.default_rng(seed).normal(0.0, noise, positions.shape)
    return Structure(positions, np.tile(structure.species, nx * ny),
                     Box(cell * np.array([[nx], [ny]]), True))


def windows(structure, n_side, radius=21.0):
    """Open discs of ``radius`` Å around an n_side x n_side grid of centres (periodic images)."""
    lengths = np.diag(structure.box.cell)
    wrapped = np.mod(structure.positions, lengths)
    tree = cKDTree(wrapped, boxsize=lengths)
    grid = (np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side), indexing="ij"), -1)
            .reshape(-1, 2) + 0.5) / n_side * lengths
    out = []
    for centre, atoms in zip(grid, tree.query_ball_point(grid, radius), strict=True):
        d = wrapped[atoms] - centre
        d -= np.round(d / lengths) * lengths
        out.append(Structure(d, structure.species[atoms], Box(np.eye(2) * 2 * radius, False)))
    return out


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))


class Lammps:
    """One LAMMPS instance holding the structure, for timing force evaluations."""

    def __init__(self, structure, potential):
        cell, origin, x = lammps_frame(structure)[:3]
        hi = origin + np.diag(cell)
        self.lmp = open_lammps()
        self.lmp.commands_list([
            "units metal", "dimension 2", "atom_style atomic", "boundary p p p",
            "region cell prism " + " ".join(repr(float(v)) for v in (
                origin[0], hi[0], origin[1], hi[1], origin[2], hi[2], cell[1, 0], 0.0, 0.0)),
            "create_box 2 cell", "mass 1 28.0855", "mass 2 15.9994",
        ])
        types = [potential.species.index(s) + 1 for s in structure.species]
        n = structure.n_atoms
        self.lmp.create_atoms(n, list(range(1, n + 1)), types, x.ravel().tolist())
        self.lmp.commands_list([*lammps_input_lines(potential), "neighbor 1.0 bin",
                                "thermo_style custom step pe press", "run 0"])
        self.version = self.lmp.version()

    def step(self, tally_every, steps):
        """Seconds per step of ``run steps``, energy and virial tallied every ``tally_every``."""
        self.lmp.command(f"thermo {tally_every}")
        start = time.perf_counter()
        self.lmp.command(f"run {steps} pre no post no")
        return (time.perf_counter() - start) / steps

    def energy(self):
        return self.lmp.get_thermo("pe")


def monolayer(args, pot):
    sample = tiled(read(SAMPLE), 2, 4, noise=0.02)
    n = sample.n_atoms
    batch = pot.batch([sample])
    verlet = VerletList(pot.cutoff, skin=1.0)
    pairs = verlet.update(batch)
    res = pot.compute(batch, pairs)
    lmp = Lammps(sample, pot)
    energy_gap = abs(float(res.energy[0]) - lmp.energy()) / abs(lmp.energy())
    repeats = 5 if args.quick else 20
    ours_f, ours_fev, lammps_f, lammps_fev = [], [], [], []
    for _ in range(repeats):  # interleaved, so that both see the same load
        ours_f.append(best_of(lambda: pot.compute(batch, pairs, virial=False, energy=False), 5)[0])
        ours_fev.append(best_of(lambda: pot.compute(batch, pairs, virial=True), 5)[0])
        lammps_f.append(lmp.step(20, 20))
        lammps_fev.append(lmp.step(1, 5))

    def fresh():
        b = pot.batch([sample])
        pot.compute(b, VerletList(pot.cutoff, skin=1.0).update(b), virial=True)

    with_list = best_of(fresh, 3 if args.quick else 5)[0]
    lammps_ref = f"LAMMPS {lmp.version} pair_style lepton, same structure and machine, 1 process"
    what = {"atoms": n, "pairs_in_list": len(pairs.i), "relative_energy_difference_to_lammps": energy_gap}
    t_f, t_fev, l_f, l_fev = (min(v) * 1e3 for v in (ours_f, ours_fev, lammps_f, lammps_fev))
    emit(f"yukawa_{n}_atoms_forces", round(t_f, 2), "ms",
         {"what": lammps_ref + ", forces (energy/virial tallied on 1 step in 20)", "value": round(l_f, 2),
          "unit": "ms"}, **what)
    emit(f"yukawa_{n}_atoms_forces_energy_virial", round(t_fev, 2), "ms",
         {"what": lammps_ref + ", energy and virial tallied every step", "value": round(l_fev, 2), "unit": "ms"},
         **what)
    emit(f"yukawa_{n}_atoms_forces_ratio_to_lammps", round(t_f / l_f, 3), "ratio",
         {"what": "goal", "value": 1.0, "unit": "ratio"})
    emit(f"yukawa_{n}_atoms_forces_energy_virial_ratio_to_lammps", round(t_fev / l_fev, 3), "ratio",
         {"what": "goal", "value": 1.0, "unit": "ratio"})
    emit(f"yukawa_{n}_atoms_with_new_pair_list", round(with_list * 1e3, 1), "ms",
         {"what": "the same evaluation with the list given", "value": round(t_fev, 2), "unit": "ms"}, **what)
    lmp.lmp.close()
    return sample


def probing_windows(args, pot, sample):
    n_side = 16 if args.quick else 50
    cut = windows(sample, n_side)
    batch = pot.batch(cut)
    start = time.perf_counter()
    verlet = VerletList(pot.cutoff, skin=1.0)
    pairs = verlet.update(batch)
    t_list = time.perf_counter() - start
    start = time.perf_counter()
    pot.compute(batch, pairs, virial=True)
    t_first = time.perf_counter() - start
    t_eval = best_of(lambda: pot.compute(batch, pairs, virial=True), 2 if args.quick else 3)[0]
    what = {"what": f"{len(cut)} discs of radius 21 Å from the {sample.n_atoms}-atom sample, "
                    f"{batch.n_atoms / len(cut):.0f} atoms and {len(pairs.i) / len(cut):.0f} pairs "
                    f"(cutoff + skin) each"}
    emit(f"yukawa_{len(cut)}_windows_evaluations_per_second", round(len(cut) / t_eval, 1), "windows/s", what,
         seconds=round(t_eval, 3))
    emit(f"yukawa_{len(cut)}_windows_first_evaluation", round(t_first, 3), "s", what,
         note="includes the per-list set-up (species codes, incidence matrices, buffers)")
    emit(f"yukawa_{len(cut)}_windows_pair_lists", round(t_list, 3), "s", what, builds=verlet.builds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and 256 windows instead of 2500")
    args = parser.parse_args()
    set_threads(1)
    torch.set_num_threads(1)
    pot = Yukawa2D()
    sample = monolayer(args, pot)
    probing_windows(args, pot, sample)


if __name__ == "__main__":
    main()
