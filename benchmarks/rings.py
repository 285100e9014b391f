"""Ring analysis timing on a ~10^4-atom monolayer (a JuMol sample tiled n x n).

    python benchmarks/rings.py [--quick]

Prints one JSON object per figure: seconds for RingAnalysis().compute (Si–O bridges) and for
RingAnalysis(method="points").compute (Voronoi rule), best of 3 runs.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from glassfrac import Structure, read
from glassfrac.analysis import RingAnalysis
from glassfrac.core.threads import set_threads
from results import publish

SAMPLE = Path(__file__).resolve().parents[2] / "shared/data/jumol-2d-silica/sig_1.00_sample_0.data"


def tiled(structure, n):
    """``structure`` repeated n x n times in the plane."""
    cell = structure.box.cell
    shifts = np.array([[a, b] for a in range(n) for b in range(n)]) @ cell
    positions = (structure.positions[None] + shifts[:, None]).reshape(-1, 2)
    return Structure(positions, np.tile(structure.species, n * n), structure.box.with_cell(cell * n))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 x 2 tiling instead of 3 x 3")
    args = parser.parse_args()
    set_threads(1)
    n = 2 if args.quick else 3
    structure = tiled(read(SAMPLE), n)
    machine = "1 thread"
    for method in ("auto", "points"):
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            rings = RingAnalysis(method=method).compute(structure)
            best = min(best, time.perf_counter() - start)
        publish({
            "benchmark": "rings", "figure": f"compute_{rings.method_used}_{structure.n_atoms}_atoms",
            "value": round(best, 4), "unit": "s", "n_rings": rings.n_rings, "machine": machine,
            "extrapolated": False,
        })


if __name__ == "__main__":
    main()
