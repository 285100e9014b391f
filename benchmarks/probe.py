"""Local probing speed: windows per second and the time of a 50 × 50 map of a 10^4-atom monolayer.

Usage: python benchmarks/probe.py [--quick | --full] [--windows N] [--workers W] [--device DEV] [--compare]
       python benchmarks/probe.py --bilayer
       python benchmarks/probe.py --goodness DATASET [--figure PNG]

The sample is a JuMol monolayer (third-party, relaxed with the same Yukawa potential) tiled
2 × 4 (10,800 atoms, 156 × 324 Å). By default a random subset (seed 0) of 256 of the 2500 grid
windows is probed by ``--workers`` processes (default 2, one per core) and the full-map time
is extrapolated from the measured windows per second (``extrapolated: true``); ``--quick``
probes 32 windows, ``--full`` the whole 50 × 50 map (``extrapolated: false``, about 4–6 min on
2 quiet cores). Wall time includes starting the worker processes; ``cpu_seconds`` is the CPU
time of this process and its workers. ``--compare`` first probes the same windows with the settings
before the throughput issue (:data:`REFERENCE_METHOD`) and reports that rate and how the maps agree
(the same first event, or a lower / higher threshold strain).

``--bilayer`` probes a generated Watanabe bilayer instead (8 × 8 rings, 768 atoms, mu2 0.3, seed 1, relaxed
with its cell to a true minimum at 1e-8 eV/Å): a 16 × 16 map on one process (time, Δτ range) and its
goodness against the sample's own pure-shear events (``SHEAR_DEFAULTS`` but to strain 0.15, for six events:
the default 0.04 holds at most the first).

``--goodness DATASET`` scores existing maps instead: every ``DATASET/<sample>/`` folder with
map.npz, events.json and structure.xyz gives C = 1 − 2F(Δτ at the event site) per event
number; mean ± std over samples is printed next to LISTI25's values, and ``--figure`` draws the
first sample's heatmap with its events. Prints one JSON object per line.
"""

import argparse
import dataclasses
import resource
import time
from pathlib import Path

import numpy as np

from glassfrac import read
from glassfrac.core.threads import set_threads
from glassfrac.generate import generate
from glassfrac.labels.probe import ThresholdMap, event_locations, event_sites, goodness
from glassfrac.mechanics.probe import ProbeSettings, grid_centres, probe_map
from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, shear_test
from glassfrac.mechanics.relax import relax_to_minimum
from glassfrac.potentials import get_potential
from glassfrac.report.probe_plot import plot_threshold_map
from glassfrac.structure import Box, Structure
from results import publish

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "jumol-2d-silica" / "sig_1.00_sample_0.data"
REFERENCE = {"what": "LISTI25 probing, one sample map, M1 Ultra", "value": 17 * 3600, "unit": "s"}
GOODNESS_REFERENCE = {"what": "LISTI25 Fig. 3, 50 samples, mean goodness of probed maps",
                      "event_1": "close to 1", "event_6": "about 0.8"}


def tiled(structure: Structure, nx: int, ny: int) -> Structure:
    """The structure repeated nx × ny times (periodic)."""
    cell = structure.box.cell
    shifts = np.array([i * cell[0] + j * cell[1] for i in range(nx) for j in range(ny)])
    pos = (structure.positions[None] + shifts[:, None]).reshape(-1, 2)
    species = np.tile(structure.species, nx * ny)
    return Structure(pos, species, Box(np.diag([nx, ny]) @ cell, True))


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished children, s."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def score_dataset(folder: Path, figure=None):
    """Goodness per event number over the samples of ``folder`` (JSON lines)."""
    rows, names = [], []
    for sample in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not all((sample / f).is_file() for f in ("map.npz", "events.json", "structure.xyz")):
            continue
        structure, result = read(sample / "structure.xyz"), ThresholdMap.load(sample / "map.npz")
        events = event_locations(sample / "events.json")
        rows.append(result.goodness(events, structure.box))
        names.append(sample.name)
        if figure is not None and len(rows) == 1:
            plot_threshold_map(result.threshold, structure.box, events, figure,
                               title=f"{sample.name}: Δτ ({result.threshold.shape[0]}² grid) and shear events")
    if not rows:
        raise SystemExit(f"{folder}: no sample folder with map.npz, events.json and structure.xyz")
    width = max(len(r) for r in rows)
    table = np.full((len(rows), width), np.nan)
    for k, r in enumerate(rows):
        table[k, : len(r)] = r
    for n in range(width):
        column = table[:, n][np.isfinite(table[:, n])]
        publish({"benchmark": "probe", "figure": f"goodness_event_{n + 1}", "value": float(column.mean()),
                 "unit": "1", "std": float(column.std()), "samples": len(column),
                 "per_sample": dict(zip(names, np.round(table[:, n], 4).tolist(), strict=True)),
                 "dataset": str(folder), "reference": GOODNESS_REFERENCE})
    if figure is not None:
        publish({"benchmark": "probe", "figure": "goodness_heatmap", "value": str(figure), "unit": "path",
                 "sample": names[0]})


def bilayer():
    """The 16 × 16 map of a generated 768-atom Watanabe bilayer and its goodness (see the module text)."""
    potential = get_potential("watanabe")
    sample, _ = relax_to_minimum(potential, generate((8, 8), kind="bilayer", mu2=0.3, seed=1, progress=False),
                                 cell=True, fmax=1e-8, raise_on_failure=True)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    result = probe_map(sample, potential, ProbeSettings(grid=16))
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    threshold = result["threshold"]
    shear_cpu = time.process_time()
    test = shear_test(sample, potential, dataclasses.replace(SHEAR_DEFAULTS, max_strain=0.15, snapshots=False))
    shear_cpu = time.process_time() - shear_cpu
    events = [e.summary() for e in test.events]
    scores = goodness(threshold, result["centres"], event_sites(events), sample.box)
    publish({"benchmark": "probe", "figure": "bilayer_map_16x16_cpu_seconds", "value": round(cpu, 1), "unit": "s",
             "atoms": sample.n_atoms, "wall_seconds": round(seconds, 1), "windows": int(threshold.size),
             "threshold_min": float(threshold.min()), "threshold_max": float(threshold.max()),
             "threshold_mean": float(threshold.mean()), "machine": "1 process, device cpu"})
    publish({"benchmark": "probe", "figure": "bilayer_map_16x16_goodness_event_1",
             "value": round(float(scores[0]), 3) if len(scores) else None, "unit": "1",
             "per_event": [round(float(c), 3) for c in scores],
             "event_strains": [round(e["strain"], 4) for e in events],
             "shear_max_strain": 0.15, "shear_cpu_seconds": round(shear_cpu, 1), "atoms": sample.n_atoms})


REFERENCE_METHOD = {"step": 0.01, "placement": "bisection", "newton_tol": 0.0, "chunk": 64}
"""The probing settings before the throughput issue (coarse steps of 0.01 and halving; every solve ends on a
measured force below fmax; 64 windows in flight)."""


def agreement(old: dict, new: dict, precision: float) -> dict:
    """How two maps of the same windows agree: windows whose threshold strains are within 2 ``precision`` (the same
    event), the largest |ΔΔτ| among them (N/m), and the windows whose new strain is lower or higher."""
    a, b = old["strain_c"][:, 0], new["strain_c"][:, 0]
    same = np.abs(a - b) <= 2 * precision
    dtau = np.abs(old["threshold"].ravel() - new["threshold"].ravel())
    return {"same": int(same.sum()), "max_threshold_difference_same_event": float(dtau[same].max(initial=0.0)),
            "lower_strain": int((~same & (b < a)).sum()), "higher_strain": int((~same & (b > a)).sum()),
            "strain_differences": np.round(b[~same] - a[~same], 5).tolist()}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="probe 32 windows instead of 256")
    mode.add_argument("--full", action="store_true", help="probe the whole 50 × 50 map (no extrapolation)")
    parser.add_argument("--windows", type=int, default=None, help="size of the random subset")
    parser.add_argument("--workers", type=int, default=2, help="CPU processes (default 2)")
    parser.add_argument("--device", default="cpu", help="torch device (cuda: use --workers 1)")
    parser.add_argument("--chunk", type=int, default=None,
                        help="windows in flight (default: ProbeSettings' on CPU, 1024 else)")
    parser.add_argument("--bilayer", action="store_true", help="16 × 16 map of a generated Watanabe bilayer instead")
    parser.add_argument("--goodness", type=Path, default=None, metavar="DATASET",
                        help="score the maps of a dataset against its shear events instead of timing")
    parser.add_argument("--figure", type=Path, default=None, help="with --goodness: heatmap of the first sample")
    parser.add_argument("--compare", action="store_true",
                        help="also probe the same windows with the first implementation's settings (REFERENCE_METHOD) "
                             "in the same run: its rate and the agreement of the two maps")
    args = parser.parse_args()
    set_threads(1)
    if args.goodness is not None:
        score_dataset(args.goodness, args.figure)
        return
    if args.bilayer:
        bilayer()
        return
    sample = tiled(read(SAMPLE), 2, 4)
    potential = get_potential("yukawa2d")
    chunk = args.chunk or (ProbeSettings().chunk if args.device == "cpu" else 1024)
    settings = ProbeSettings(grid=50, workers=args.workers, device=args.device, chunk=chunk)
    centres = grid_centres(sample.box, settings.grid)
    if args.full:
        subset = centres
    else:
        n_windows = args.windows or (32 if args.quick else 256)
        subset = centres[np.random.default_rng(0).choice(len(centres), size=n_windows, replace=False)]
    machine = f"{args.workers} worker process(es), device {args.device}, chunk {chunk}"
    common = {"benchmark": "probe", "machine": machine, "atoms": sample.n_atoms}

    def emit(figure, value, unit, **extra):
        publish({**common, "figure": figure, "value": value, "unit": unit, **extra})

    def timed(s):
        start, cpu0 = time.perf_counter(), cpu_seconds()
        out = probe_map(sample, potential, s, centres=subset)
        return out, time.perf_counter() - start, cpu_seconds() - cpu0

    if args.compare:
        reference = dataclasses.replace(settings, **REFERENCE_METHOD)
        old, old_seconds, old_cpu = timed(reference)
    result, seconds, cpu = timed(settings)
    rate = len(subset) / seconds
    if args.compare:
        emit("windows_per_second_reference_method", len(subset) / old_seconds, "1/s", windows=len(subset),
             wall_seconds=old_seconds, cpu_seconds=old_cpu, settings=REFERENCE_METHOD,
             window_evaluations=int(old["newton_iterations"]))
        agree = agreement(old, result, reference.precision)
        emit("same_first_event_as_reference_method", agree["same"], "windows", windows=len(subset), **agree,
             speedup=old_seconds / seconds, cpu_speedup=old_cpu / cpu,
             evaluations_ratio=old["newton_iterations"] / result["newton_iterations"])

    emit("windows_per_second", rate, "1/s", windows=len(subset), wall_seconds=seconds, cpu_seconds=cpu,
         cpu_seconds_per_window=cpu / len(subset), window_evaluations=int(result["newton_iterations"]))
    full = len(centres) / rate
    emit("map_50x50_10k_atoms", full, "s", extrapolated=not args.full, measured_windows=len(subset),
         cpu_seconds=cpu * len(centres) / len(subset), reference=REFERENCE,
         speedup_vs_reference=REFERENCE["value"] / full, goal_s=600)
    emit("threshold_mean", float(np.mean(result["threshold"])), "N/m", windows=len(subset),
         strain_c_mean=float(np.mean(result["strain_c"])))


if __name__ == "__main__":
    main()
