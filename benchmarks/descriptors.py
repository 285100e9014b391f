"""Structure-function throughput (atoms per second) on ~10^4-atom samples, one thread.

    python benchmarks/descriptors.py [--quick]

Prints one JSON object per figure: atoms per second of ``StructureFunctions.transform`` for
the FC22 set (radial, plus the 5 % strained copy: 148 features for Si/O) and the DU21 set
(48 radial centres + the Cubuk/RSoft angular set) on

- a 2D silica monolayer: a JuMol sample (1350 atoms) tiled 3 x 3 (12150 atoms);
- the FC22 bilayer (3456 atoms, 3D sheet) tiled 2 x 2 (13824 atoms);
- a synthetic 3D bulk at the number density of Al2O3 at 3.0 g/cm³ (0.0886 Å⁻³, DU21's glass):
  a jittered cubic lattice of 22³ = 10648 atoms, 40 % Al, 60 % O (seed 0). Only the
  neighbour counts matter for the timing, not the chemistry.

Best of 3 runs (1 with ``--quick``), after one warm-up call on the smallest sample.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from glassfrac import Box, Structure, read
from glassfrac.analysis.structure_functions import du21_descriptor, fc22_descriptor
from glassfrac.core.threads import set_threads
from results import publish

DATA = Path(__file__).resolve().parents[2] / "shared/data"
MONOLAYER = DATA / "jumol-2d-silica/sig_1.00_sample_0.data"
BILAYER = DATA / "fc22-bilayer/sio2_initial.dump"
ALUMINA_DENSITY = 3.0 * 6.02214076e23 * 5 / 101.961 / 1e24  # atoms per Å^3


def tiled(structure, reps):
    """``structure`` repeated ``reps`` times along its first axes (periodic ones)."""
    cell = structure.box.cell
    dim = structure.dim
    counts = list(reps) + [1] * (dim - len(reps))
    shifts = np.array(np.meshgrid(*[np.arange(c) for c in counts], indexing="ij")).reshape(dim, -1).T @ cell
    positions = (structure.positions[None] + shifts[:, None]).reshape(-1, dim)
    return Structure(positions, np.tile(structure.species, len(shifts)),
                     Box(cell * np.array(counts)[:, None], structure.box.pbc, structure.box.origin))


def bulk(n_side=22, seed=0):
    """Jittered cubic lattice at the alumina number density (module docstring)."""
    rng = np.random.default_rng(seed)
    a = (1.0 / ALUMINA_DENSITY) ** (1 / 3)
    grid = np.array(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij")).reshape(3, -1).T
    positions = (grid + rng.uniform(-0.12, 0.12, grid.shape)) * a
    species = np.where(rng.random(len(grid)) < 0.4, "Al", "O")
    return Structure(positions, species, Box(np.full(3, n_side * a), True))


def throughput(descriptor, structure, repeats):
    descriptor.fit([structure])
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        X = descriptor.transform([structure])
        best = min(best, time.perf_counter() - start)
    return best, X.shape[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one run per figure instead of best of 3")
    args = parser.parse_args()
    set_threads(1)
    repeats = 1 if args.quick else 3
    monolayer = read(MONOLAYER)
    fc22_descriptor().fit([monolayer]).transform([monolayer])  # warm-up (imports, neighbour-list library)
    samples = {"2d_monolayer": tiled(monolayer, (3, 3)), "3d_bilayer": tiled(read(BILAYER), (2, 2)),
               "3d_bulk": bulk()}
    machine = "1 thread"
    for name, structure in samples.items():
        for set_name, make in (("fc22", fc22_descriptor), ("du21", du21_descriptor)):
            seconds, n_features = throughput(make(), structure, repeats)
            publish({
                "benchmark": "descriptors", "figure": f"{set_name}_{name}_{structure.n_atoms}_atoms",
                "value": round(structure.n_atoms / seconds, 1), "unit": "atoms/s", "seconds": round(seconds, 3),
                "n_features": n_features, "machine": machine, "extrapolated": False,
            })


if __name__ == "__main__":
    main()
