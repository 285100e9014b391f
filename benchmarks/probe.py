"""Local probing speed: windows per second and the time of a 50 × 50 map of a 10^4-atom monolayer.

Usage: python benchmarks/probe.py [--quick] [--windows N] [--workers W]

The sample is a JuMol monolayer (third-party, relaxed with the same potential) tiled 2 × 4
(10,800 atoms, 156 × 324 Å). A random subset of the 2500 grid windows is probed and the full
map time is extrapolated from the measured windows per second (``extrapolated: true``).
Prints one JSON object per line.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from glassfrac import read
from glassfrac.mechanics.probe import ProbeSettings, grid_centres, probe_map
from glassfrac.potentials import get_potential
from glassfrac.structure import Box, Structure
from glassfrac.threads import set_threads

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "jumol-2d-silica" / "sig_1.00_sample_0.data"
MACHINE = "2 cores, no GPU"
REFERENCE = {"what": "LISTI25 probing, one sample map, M1 Ultra", "value": 17 * 3600, "unit": "s"}


def tiled(structure: Structure, nx: int, ny: int) -> Structure:
    """The structure repeated nx × ny times (periodic)."""
    cell = structure.box.cell
    shifts = np.array([i * cell[0] + j * cell[1] for i in range(nx) for j in range(ny)])
    pos = (structure.positions[None] + shifts[:, None]).reshape(-1, 2)
    species = np.tile(structure.species, nx * ny)
    return Structure(pos, species, Box(np.diag([nx, ny]) @ cell, True))


def emit(figure, value, unit, **extra):
    print(json.dumps({"benchmark": "probe", "figure": figure, "value": value, "unit": unit,
                      "machine": MACHINE, **extra}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="probe 32 windows instead of 256")
    parser.add_argument("--windows", type=int, default=None)
    args = parser.parse_args()
    set_threads(1)
    n_windows = args.windows or (32 if args.quick else 256)
    sample = tiled(read(SAMPLE), 2, 4)
    potential = get_potential("yukawa2d")
    settings = ProbeSettings(grid=50, chunk=256)
    centres = grid_centres(sample.box, settings.grid)
    rng = np.random.default_rng(0)
    subset = centres[rng.choice(len(centres), size=n_windows, replace=False)]
    start = time.perf_counter()
    result = probe_map(sample, potential, settings, centres=subset)
    seconds = time.perf_counter() - start
    rate = n_windows / seconds
    emit("windows_per_second", rate, "1/s", atoms=sample.n_atoms, windows=n_windows,
         newton_iterations=int(result["newton_iterations"]))
    full = len(centres) / rate
    emit("map_50x50_10k_atoms", full, "s", atoms=sample.n_atoms, extrapolated=True,
         measured_windows=n_windows, reference=REFERENCE, speedup_vs_reference=REFERENCE["value"] / full)
    emit("threshold_mean", float(np.mean(result["threshold"])), "N/m", windows=n_windows)


if __name__ == "__main__":
    main()
