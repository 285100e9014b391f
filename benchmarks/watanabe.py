"""Watanabe 2004 Si–O potential on the FC22 reference bilayer (3456 atoms).

    python benchmarks/watanabe.py [--quick]

Prints one JSON object per figure: the time of one energy + forces + virial evaluation
(median and best of many, one thread; CPU time next to it) with the pair list and triplets cached, with the
triplets rebuilt, and with the Verlet pair list (skin 1 Å) rebuilt too; and the deviations
from the LAMMPS reference (total energy against the stated −16038.230 eV and against the sum
of the per-atom energies, per-atom energies, largest force component).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from glassfrac import read
from glassfrac.core.threads import set_threads
from glassfrac.potentials import VerletList
from glassfrac.potentials.watanabe import Watanabe
from results import publish
from timing import timings

SAMPLE = Path(__file__).resolve().parents[2] / "shared/data/fc22-bilayer/sio2_initial.dump"
REFERENCE_ENERGY = -16038.230
"""Total energy of the sample in eV (LAMMPS, epsilon = 2.1672383 eV)."""


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    set_threads(1)
    repeats = 20 if args.quick else 200
    machine = "GPU" if torch.cuda.is_available() else "no GPU"
    structure = read(SAMPLE)
    pot = Watanabe()
    common = {"benchmark": "watanabe", "machine": machine, "threads": torch.get_num_threads(),
              "dataset": f"FC22 bilayer, {structure.n_atoms} atoms", "epsilon_eV": pot.epsilon}

    batch = pot.batch([structure])
    verlet = VerletList(pot.cutoff, skin=1.0)
    pairs = verlet.update(batch)

    def cached():
        pot.compute(batch, pairs)

    def new_triplets():  # a new instance has no cached triplets
        Watanabe().compute(batch, pairs)

    def new_pair_list():
        pot.compute(batch, verlet.update(batch, force=True))

    for figure, step, n in (("energy_forces_ms", cached, repeats),
                            ("energy_forces_with_triplet_build_ms", new_triplets, repeats // 4),
                            ("energy_forces_with_pair_list_and_triplet_build_ms", new_pair_list, repeats // 4)):
        t = timings(step, n)
        publish({**common, "figure": figure, "value": round(1e3 * t["wall_median"], 3), "unit": "ms",
                 "best": round(1e3 * t["wall_best"], 3), "cpu_median": round(1e3 * t["cpu_median"], 3),
                 "repeats": n, "extrapolated": False})

    res = pot.evaluate([structure], per_atom=True)[0]
    accuracy = {
        "energy_error_eV": res["energy"] - REFERENCE_ENERGY,
        "energy_error_vs_sum_of_c_peratom_eV": res["energy"] - float(structure.arrays["c_peratom"].sum()),
        "max_per_atom_energy_error_eV": float(np.abs(res["per_atom_energy"] - structure.arrays["c_peratom"]).max()),
        "max_force_component_eV_per_A": float(np.abs(res["forces"]).max()),
    }
    for figure, value in accuracy.items():
        publish({**common, "figure": figure, "value": float(f"{value:.3e}"),
                 "unit": "eV/Å" if figure.endswith("per_A") else "eV", "extrapolated": False})


if __name__ == "__main__":
    main()
