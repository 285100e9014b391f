"""Amorphous alumina MD cost: ns/day at the reduced default size, our driver against a plain
LAMMPS run of the same system, and the paper-size cost extrapolated from measured steps (CPU time per step).

    python benchmarks/oxides.py [--quick]

Prints one JSON object per figure. The reduced default is 300 atoms (Matsui, PPPM 1e-5,
10 Å cutoff, NVT at 3000 K: the liquid that most of a quench simulates), 1 thread, 1 rank.
The paper-size figures time 8100 atoms for a few hundred steps and scale them to the
865,000 steps of one pressure of configs/oxide-paper.toml (extrapolated, one core; divide by
the rank count for an ideal ``mpirun -np N`` run), and the cost of softness along tension
(DU21 descriptors of one 600-atom frame). Without --quick one reduced-default melt-quench
(0 GPa) is also timed end to end. Times are wall seconds with CPU seconds next to them
(``cpu_s``): on a shared machine wall time is inflated by the other processes.

The softness figures (held-out SVM accuracy next to DU21's 83 %, label counts, and labels per
CPU-minute of 300 K MD from the measured cost per ps) are read from the report that
``glassfrac oxide softness train`` wrote (``--softness-report``, default
bench-out/oxide-softness/softness_train.json); skipped if it is missing.
"""

import argparse
import json
import time
from pathlib import Path

from glassfrac.campaign.oxide_config import load_config
from glassfrac.core.threads import set_threads
from glassfrac.generate.quench import melt_quench, random_alumina
from glassfrac.learn.oxide_softness import du21_softness_descriptor
from glassfrac.mechanics.md import LammpsMD, MDSettings, Stage, n_steps
from glassfrac.mechanics.md_tension import replicate
from results import publish

PAPER_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "oxide-paper.toml"
MACHINE = "1 thread, 1 MPI rank"


def emit(figure, value, unit, **extra):
    publish({"benchmark": "oxides", "figure": figure, "value": value, "unit": unit, "machine": MACHINE,
             "extrapolated": False, **extra})


def driver_seconds(structure, potential, time_ps, thermo_every=100):
    """Wall and CPU seconds of ``time_ps`` NVT at 3000 K through LammpsMD (after 0.1 ps warm-up)."""
    with LammpsMD(structure, potential, MDSettings(thermo_every=thermo_every)) as md:
        md.velocities(3000.0)
        md.run(Stage("warm", "nvt", 0.1, 3000.0), show_progress=False)
        cpu = time.process_time()
        wall = md.run(Stage("timed", "nvt", time_ps, 3000.0), show_progress=False).seconds
        return wall, time.process_time() - cpu


def plain_seconds(structure, potential, time_ps):
    """The same, as one plain LAMMPS ``run`` (no chunks, no thermo extraction)."""
    with LammpsMD(structure, potential, MDSettings()) as md:
        md.velocities(3000.0)
        md.command("fix plain all nvt temp 3000 3000 0.1")
        md.command("run 100")
        tick = time.perf_counter()
        md.command(f"run {n_steps(time_ps, md.settings.timestep_ps)}")
        return time.perf_counter() - tick


def softness_figures(path: Path, cpu_s_per_atom_ps: float) -> None:
    """Emit the held-out softness accuracy of a training report next to DU21's, and its labels."""
    if not path.is_file():
        emit("softness_svm_test_accuracy", None, "fraction", note=f"no training report at {path}")
        return
    r = json.loads(path.read_text())
    atom_ps = sum(c["n_atoms"] * (c["frames"] - 1) * 0.1 for c in r["samples"])  # frames 0.1 ps apart
    common = {"report": str(path), "n_groups": r["n_samples"], "n_trajectories": len(r["samples"]),
              "n_positive": r["n_positive"], "n_negative": r["n_negative"],
              "distinct_rearranging_atoms": sum(c.get("positive_atoms", 0) for c in r["samples"]),
              "labels": r.get("labels"), "cv": r["cv"]}
    emit("softness_svm_test_accuracy", round(r["test_accuracy"], 4), "fraction",
         test_roc_auc=round(r["test_roc_auc"], 4), test_sensitivity=round(r["test_sensitivity"], 4),
         test_specificity=round(r["test_specificity"], 4), train_accuracy=round(r["train_accuracy"], 4),
         radial_only_test_accuracy=round(r["radial_only"]["test_accuracy"], 4),
         reference={"what": "DU21 held-out accuracy (train 84 %, radial only 79 %)", "value": 0.83,
                    "n_labels": 16000}, **common)
    minutes = atom_ps * cpu_s_per_atom_ps / 60
    emit("softness_labels_per_cpu_minute", round(r["n_positive"] / minutes, 2), "positives/CPU-minute",
         extrapolated=True, trajectory_atom_ps=round(atom_ps), md_cpu_minutes=round(minutes, 1),
         note="positive labels over the 300 K MD they came from, costed at this run's CPU time per atom-ps",
         **common)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter timings, no end-to-end quench")
    parser.add_argument("--softness-report", type=Path, default=Path("bench-out/oxide-softness/softness_train.json"),
                        help="softness_train.json of 'glassfrac oxide softness train' (softness figures)")
    args = parser.parse_args()
    set_threads(1)
    quick = load_config(PAPER_CONFIG.with_name("oxide-quick.toml"))
    paper = load_config(PAPER_CONFIG)
    potential = quick.potential

    small = random_alumina(quick.quench.n_units, 3.0, seed=1)
    time_ps = 0.3 if args.quick else 1.0
    ours, ours_cpu = driver_seconds(small, potential, time_ps)
    plain = plain_seconds(small, potential, time_ps)
    per_day = time_ps * 1e-3 / (ours / 86400)
    emit("md_ns_per_day_default_size", round(per_day, 3), "ns/day", n_atoms=small.n_atoms,
         steps=n_steps(time_ps, 0.001), potential=potential.describe(),
         cpu_ns_per_day=round(time_ps * 1e-3 / (ours_cpu / 86400), 3))
    emit("md_ns_per_day_plain_lammps_default_size", round(time_ps * 1e-3 / (plain / 86400), 3), "ns/day",
         n_atoms=small.n_atoms)
    emit("driver_over_plain_lammps_time", round(ours / plain, 3), "ratio", n_atoms=small.n_atoms,
         note="chunked runs of thermo_every=100 steps plus thermo extraction, versus one LAMMPS run")

    big = random_alumina(paper.quench.n_units, 3.0, seed=1)
    big_ps = 0.05 if args.quick else 0.2
    seconds, cpu = driver_seconds(big, paper.potential, big_ps)
    per_step = cpu / n_steps(big_ps, 0.001)  # core-hours below are CPU time, not inflated by other processes
    emit("md_ms_per_step_paper_size", round(seconds / n_steps(big_ps, 0.001) * 1e3, 2), "ms/step",
         n_atoms=big.n_atoms, steps=n_steps(big_ps, 0.001), cpu_ms_per_step=round(per_step * 1e3, 2))
    steps = sum(n_steps(s.time_ps, paper.md.timestep_ps) for s in paper.quench.stages(0.0))
    emit("paper_quench_core_hours_per_pressure", round(steps * per_step / 3600, 1), "core-hours",
         extrapolated=True, steps=steps, config=str(PAPER_CONFIG.relative_to(PAPER_CONFIG.parents[1])),
         run="mpirun -np N glassfrac oxide quench --config configs/oxide-paper.toml --out runs/alumina --json",
         reference={"what": "DU21 schedule, 8100 atoms", "value": steps, "unit": "MD steps"})
    t = paper.tension
    tension_steps = n_steps(t.equilibrate_ps, 0.001) + n_steps(t.max_strain / (t.strain_rate_per_s * 1e-12), 0.001)
    emit("paper_plane_stress_core_hours", round(tension_steps * per_step * 2 / 3600, 1), "core-hours",
         extrapolated=True, steps=tension_steps, n_atoms=2 * big.n_atoms,
         note="doubled sample: cost per step taken as twice the 8100-atom figure")
    s = paper.softness
    label_steps = n_steps(s.equilibrate_ps, 0.001) + n_steps(s.trajectory_ps, 0.001)
    emit("paper_softness_trajectory_core_hours_per_sample", round(label_steps * per_step / 3600, 1), "core-hours",
         extrapolated=True, steps=label_steps, n_atoms=big.n_atoms,
         note="300 K NVT trajectory for the p_hop labels of one sample ([softness] of oxide-paper.toml)")

    softness_figures(args.softness_report, ours_cpu / time_ps / small.n_atoms)

    frame = replicate(small, quick.tension.replicate)
    descriptor = du21_softness_descriptor()
    tick, cpu = time.perf_counter(), time.process_time()
    features = descriptor.transform_one(frame)
    emit("softness_seconds_per_frame_default_size", round(time.perf_counter() - tick, 3), "s",
         cpu_s=round(time.process_time() - cpu, 3), n_atoms=frame.n_atoms, n_features=features.shape[1],
         note="DU21 structure functions of one tension frame; the SVM adds one dot product per atom")

    if not args.quick:
        tick, cpu = time.perf_counter(), time.process_time()
        result = melt_quench(0.0, quick.quench, potential, quick.md)
        emit("reduced_quench_seconds", round(time.perf_counter() - tick, 1), "s", n_atoms=small.n_atoms,
             cpu_s=round(time.process_time() - cpu, 1),
             simulated_ps=sum(s.time_ps for s in quick.quench.stages(0.0)),
             density_g_cm3=round(result.density, 4),
             al_coordination_fractions=result.summary()["al_coordination_fractions"])


if __name__ == "__main__":
    main()
