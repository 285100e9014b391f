"""LISTI predictors: dataset, training time, held-out correlation and goodness, time of a map.

    python benchmarks/listi.py [--quick] [--out bench-out/listi] [--samples N] [--grid N]

Dataset (built once and cached under OUT/data in the layout of ``glassfrac.learn.windows``, so
``glassfrac listi train OUT/data`` works on it too): ``--samples`` 2D silica monolayers from
``glassfrac.generate.generate`` (16 × 18 = 288 rings, 1440 atoms, log-normal ring sizes
with sigma factor 1 as LISTI25, seeds 1000 + k), relaxed with yukawa2d (L-BFGS to 1e-6 eV/Å,
cell relaxed), probed on ``--grid`` × ``--grid`` windows (``ProbeSettings`` defaults: R_free
11 Å, shell = cutoff, pure shear along x) and sheared (``shear_test``, first 6 events, ``SHEAR``:
up to strain 0.2 in steps of 1e-3 bisected to 5e-5, L-BFGS to 1e-6 eV/Å).
``--samples`` defaults to 36; a run stopped early leaves complete samples cached and the next
run adds the missing ones (each sample folder is written step by step, files renamed when whole).
Split by sample: ``OUT/data/split.json`` if it names every sample, else seeded (seed 0)
60 / 15 / 25 % of the samples there (train / validation / test); the dataset figure lists it.

Figures (one JSON object per line): dataset description; per model (gnn, cnn, lstm,
baseline) the training time, the held-out (test samples) correlation and RMSE of predicted vs
probed Δτ, the mean goodness per event 1–6 of predicted and of probed maps on the test samples
and on the training + validation samples, with LISTI25's figures; with ``--external``, the
same on a JuMol sample (external, validation only, probed and sheared the same way: about
10 CPU minutes more the first time); the time to map a 10^4-atom
sample (JuMol sample tiled 2 × 4, 10,800 atoms, 50 × 50 windows) with the models of
``--map-models`` (default gnn), best of 3.
``--quick``: 4 samples, 8 × 8 grids, a few epochs (checks that everything runs).
``--cached``: the dataset in OUT/data as it is (nothing generated, probed or sheared).
``--retime`` (after a full run, < 10 min on 2 quiet cores): the timing figures only, measured
again on the cached dataset: each model trained for a few epochs from scratch (no checkpoint),
its CPU and wall time per epoch extrapolated to the epochs of the full run (``extrapolated``:
true; the baseline is fitted whole), and the map of the 10^4-atom sample with the saved models of ``--map-models``.

Last full run (``--cached --samples 25 --models KIND``, one model at a time; GNN and CNN resumed
once from their checkpoints when the caps were raised to today's, which ends as a straight run
would; outputs in bench-out/listi/full/bench_KIND.jsonl): 25 samples (generation was stopped at
25 of 36 for time), 6,400 windows, split by sample 15 / 4 / 6 (3840 / 1024 / 1536 windows).
Test correlation (RMSE, N/m): GNN 0.864 (0.022), CNN 0.717 (0.030), LSTM 0.213 (0.042),
baseline 0.170 (0.043); LISTI25 GNN 0.96.
Mean goodness of the test maps, events 1–6: GNN 0.98 0.84 0.75 0.75 0.61 0.64, CNN 0.88 0.64
0.50 0.62 0.60 0.56, LSTM 0.19 0.63 0.22 0.42 0.04 0.31, baseline −0.19 −0.18 −0.02 −0.02 −0.11
−0.32; the probed maps 0.97 0.82 0.70 0.75 0.58 0.68 (LISTI25 first event: GNN 0.93, CNN 0.75,
RNN 0.50). Training, wall / CPU s on one thread: GNN 279 / 275 (158 epochs, best 128), CNN
1289 / 1156 (40, best 39: validation loss flat within noise from epoch 28), LSTM 239 / 235 (76,
best 51), baseline 1.7 / 1.6. Map of the 10,800-atom sample with the GNN: 1.29–1.44 s (goal 5 s).
"""

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from glassfrac import Structure, read, write
from glassfrac.core.files import atomic_open
from glassfrac.core.jsonable import to_jsonable
from glassfrac.core.threads import set_threads
from glassfrac.generate import generate
from glassfrac.labels import shear_labels
from glassfrac.labels.probe import ThresholdMap
from glassfrac.learn.listi import (
    EVENTS,
    KINDS,
    PUBLISHED,
    ListiModel,
    Trainer,
    TrainSettings,
    evaluate,
    split_by_sample,
)
from glassfrac.learn.windows import WindowSpec, build_windows, load_probed
from glassfrac.mechanics.probe import ProbeSettings, probe_map
from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, shear_test
from glassfrac.mechanics.relax import relax
from glassfrac.potentials import get_potential
from results import publish

ROOT = Path(__file__).resolve().parents[1]
JUMOL = ROOT.parent / "shared" / "data" / "jumol-2d-silica" / "sig_1.00_sample_0.data"
MACHINE = "1 thread, no GPU"
RINGS = (16, 18)
FRACTIONS = (0.60, 0.15, 0.25)
EPOCHS = {"gnn": 300, "cnn": 40, "lstm": 150, "baseline": 1}
"""Most epochs; early stopping on the validation loss after ``PATIENCE`` epochs without improvement
ends the GNN and LSTM runs before (about 30 CPU minutes for the four models on 25 samples)."""
PATIENCE = {"gnn": 30, "cnn": 8, "lstm": 25, "baseline": 1}
QUICK_EPOCHS = {"gnn": 4, "cnn": 2, "lstm": 4, "baseline": 1}
SHEAR = replace(SHEAR_DEFAULTS, max_strain=0.2, step=1e-3, precision=5e-5, fmax=1e-6, method="lbfgs")
"""Pure shear to the first 6 events. The default max_strain 0.04 finds no event in these samples
(the first comes at 0.06–0.09); coarser steps and tolerance than the default for CPU time."""
RETIME_EPOCHS = {"gnn": 5, "cnn": 2, "lstm": 5, "baseline": 1}
REFERENCE_TIME = {"what": "LISTI25: preprocess, train and predict one sample (GNN), M1 Ultra", "value": 2.25 * 3600,
                  "unit": "s"}


def emit(figure, value, unit=None, **extra):
    publish({"benchmark": "listi", "figure": figure, "value": value, "unit": unit, "machine": MACHINE, **extra})


def tiled(structure: Structure, nx: int, ny: int) -> Structure:
    """The structure repeated nx × ny times (periodic)."""
    cell = structure.box.cell
    shifts = np.array([i * cell[0] + j * cell[1] for i in range(nx) for j in range(ny)])
    positions = (structure.positions[None] + shifts[:, None]).reshape(-1, 2)
    return Structure(positions, np.tile(structure.species, nx * ny), structure.box.with_cell(np.diag([nx, ny]) @ cell))


# -- the dataset -------------------------------------------------------------------------------------

def probe_and_shear(structure, folder: Path, grid: int, potential, shear: bool = True) -> None:
    """map.npz and (``shear``) events.json of ``structure`` in ``folder`` unless they are there."""
    if not (folder / "map.npz").is_file():
        settings = ProbeSettings(grid=grid)
        start = time.perf_counter()
        result = probe_map(structure, potential, settings)
        ThresholdMap.from_result(result, settings, seconds=time.perf_counter() - start).save(folder / "map.npz")
    if shear and not (folder / "events.json").is_file():
        start = time.perf_counter()
        labels = shear_labels(shear_test(structure, potential, SHEAR))
        with atomic_open(folder / "events.json") as handle:
            json.dump(to_jsonable({"events": labels.to_dict()["events"], "seconds": time.perf_counter() - start}),
                      handle)


def make_sample(k: int, folder: Path, grid: int, potential, shear: bool = True) -> None:
    """Generate, relax, probe and shear sample ``k`` into ``folder`` (cached step by step)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "structure.xyz"
    if not path.is_file():
        structure = generate(rings=RINGS, distribution="lognormal", sigma_factor=1.0, kind="monolayer", seed=1000 + k)
        (structure, _), = relax(potential, [structure], method="lbfgs", fmax=1e-6, cell=True, raise_on_failure=True)
        tmp = folder / "structure.part.xyz"
        write(structure, tmp)
        tmp.replace(path)
    probe_and_shear(read(path), folder, grid, potential, shear)


def covers(named: dict | None, samples) -> bool:
    """Whether a split.json names every one of ``samples`` (else it belongs to a smaller dataset)."""
    return named is not None and {s.name for s in samples} <= {n for part in named.values() for n in part}


def split_of(samples, named: dict | None) -> dict:
    """Sample numbers per part: the dataset's split.json (names) if it covers every sample, else seeded."""
    if not covers(named, samples):
        return split_by_sample(len(samples), FRACTIONS, seed=0)
    number = {s.name: k for k, s in enumerate(samples)}
    return {part: [number[n] for n in named[part] if n in number] for part in ("train", "validation", "test")}


def describe(samples, split, grid, data: Path, named: dict | None) -> dict:
    """The dataset figure: sizes, split, events, probing cost."""
    seconds = [ThresholdMap.load(data / s.name / "map.npz").info.get("seconds") for s in samples]
    atoms = [s.structure.n_atoms for s in samples]
    return {"atoms_per_sample": [min(atoms), max(atoms)], "grid": grid, "windows": grid * grid * len(samples),
            "split": {k: [samples[i].name for i in v] for k, v in split.items()},
            "events_per_sample": [0 if s.events is None else len(s.events) for s in samples],
            "probe_seconds_per_sample": float(np.mean([x for x in seconds if x is not None] or [np.nan])),
            "generator": f"glassfrac.generate.generate monolayer, rings {RINGS}, lognormal sigma 1, seeds 1000 + k",
            "split_from": "split.json" if covers(named, samples) else f"by sample, seed 0, fractions {FRACTIONS}"}


def time_map(model, big, kind: str) -> None:
    """The map figure: best of 3 predictions of the 50 × 50 map of ``big``."""
    times, cpu = [], []
    for _ in range(3):
        start, tic = time.perf_counter(), time.process_time()
        model.predict_map(big, grid=50)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - tic)
    emit(f"map_seconds_{kind}_{big.n_atoms}_atoms_50x50", min(times), "s", cpu_seconds=min(cpu),
         goal=5.0 if kind == "gnn" else None, symmetrized=model.symmetrize, reference=REFERENCE_TIME,
         extrapolated=False, note="best of 3, wall and CPU time, structure read excluded")


def retime(kinds, graphs, split, spec, out: Path, big, timed) -> None:
    """Timing figures again on the cached dataset (module docstring, ``--retime``)."""
    for kind in kinds:
        path = out / f"{kind}.safetensors"
        if not path.is_file():
            raise SystemExit(f"{path}: no trained model; run the full benchmark first")
        saved = ListiModel.load(path)
        epochs = saved.info.get("epochs_run") or 1
        settings = TrainSettings(epochs=RETIME_EPOCHS[kind], patience=RETIME_EPOCHS[kind])
        start, tic = time.perf_counter(), time.process_time()
        _, record = Trainer(kind, graphs, split, spec, settings, architecture=saved.architecture).run()
        wall, cpu = time.perf_counter() - start, time.process_time() - tic
        history = record["history"]
        if history:  # per-epoch time of the loop, times the epochs of the full run, plus the set-up
            loop_wall = sum(h["seconds"] for h in history)
            loop_cpu = sum(h["cpu_seconds"] for h in history)
            scale = epochs / len(history)
            wall, cpu = wall - loop_wall + loop_wall * scale, cpu - loop_cpu + loop_cpu * scale
        emit(f"train_seconds_{kind}", wall, "s", cpu_seconds=cpu, epochs=epochs, epochs_timed=len(history) or None,
             windows=record["windows"], extrapolated=bool(history),
             note="set-up plus the mean epoch of a fresh run times the epochs of the full run; wall and CPU")
        if big is not None and kind in timed:
            time_map(saved, big, kind)


# -- main --------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 samples, 8 x 8 grids, a few epochs")
    parser.add_argument("--out", default=str(ROOT / "bench-out" / "listi"), help="cache and model folder")
    parser.add_argument("--samples", type=int, default=None, help="number of samples (default 36; quick 4)")
    parser.add_argument("--grid", type=int, default=None, help="probe grid per side (default 16; quick 8)")
    parser.add_argument("--models", default=",".join(KINDS), help="comma-separated model kinds")
    parser.add_argument("--retime", action="store_true", help="timing figures only, on the cached full run")
    parser.add_argument("--cached", action="store_true",
                        help="use OUT/data as it is: generate, probe and shear nothing (samples without events.json "
                             "count for the correlation only)")
    parser.add_argument("--external", action="store_true", help="also probe, shear and score a JuMol sample")
    parser.add_argument("--map-models", default="gnn", help="comma-separated models whose map time is measured")
    args = parser.parse_args()
    set_threads(1)

    n_samples = args.samples or (4 if args.quick else 36)
    grid = args.grid or (8 if args.quick else 16)
    out = Path(args.out) / ("quick" if args.quick else "full")
    data = out / "data"
    potential = get_potential("yukawa2d")
    for k in range(0 if args.retime or args.cached else n_samples):
        make_sample(k, data / f"sample_{k:03d}", grid, potential)
    samples, named = load_probed(data)
    samples = samples[:n_samples]
    split = split_of(samples, named)
    emit("dataset", len(samples), "samples", **describe(samples, split, grid, data, named))
    spec = WindowSpec()
    graphs = build_windows(samples, spec)
    seen = split["train"] + split["validation"]
    big = tiled(read(JUMOL), 2, 4) if JUMOL.is_file() else None
    timed = set(args.map_models.split(","))
    if args.retime:
        retime(args.models.split(","), graphs, split, spec, out, big, timed)
        return

    jumol = None
    if args.external and JUMOL.is_file():
        folder = out / "jumol" / JUMOL.stem
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "structure.xyz").is_file():
            write(read(JUMOL), folder / "structure.xyz")
        probe_and_shear(read(folder / "structure.xyz"), folder, grid, potential)
        jumol_samples, _ = load_probed(folder.parent)
        jumol = (jumol_samples, build_windows(jumol_samples, spec))

    for kind in args.models.split(","):
        epochs = (QUICK_EPOCHS if args.quick else EPOCHS)[kind]
        settings = TrainSettings(epochs=epochs, patience=PATIENCE[kind])
        model, record = Trainer(kind, graphs, split, spec, settings, checkpoint=out / f"{kind}.checkpoint").run()
        model.save(out / f"{kind}.safetensors")
        history = record["history"]
        wall = sum(h["seconds"] for h in history) if history else record["train_seconds"]
        cpu = sum(h.get("cpu_seconds", 0.0) for h in history) if history else record["train_cpu_seconds"]
        emit(f"train_seconds_{kind}", wall, "s", cpu_seconds=cpu, epochs=len(history) or None,
             best_epoch=record.get("best_epoch"), windows=record["windows"],
             note="sum over the epochs of the checkpointed run (resumed runs included); wall and CPU time")
        test = evaluate(model, samples, graphs, split["test"])
        train_val = evaluate(model, samples, graphs, seen)
        published = PUBLISHED.get(kind, {})
        emit(f"test_correlation_{kind}", test["correlation"], None, rmse=test["rmse"], rmse_unit="N/m",
             windows=test["windows"], samples=test["samples"],
             reference={"what": "LISTI25 GNN correlation", "value": PUBLISHED["gnn"]["correlation"]},
             train_val_correlation=train_val["correlation"])
        if "goodness" in test:
            emit(f"test_goodness_{kind}", test["goodness"]["predicted"], None,
                 probed_maps=test["goodness"]["probed"], samples_per_event=test["goodness_samples"],
                 train_val=train_val.get("goodness"), events=list(range(1, EVENTS + 1)),
                 reference={"what": f"LISTI25 {kind} goodness of the first event",
                            "train_val": published.get("goodness_event1_train_val"),
                            "test": published.get("goodness_event1_test")})
        if jumol is not None:
            external = evaluate(model, jumol[0], jumol[1], [0])
            emit(f"jumol_{kind}", external["correlation"], None, rmse=external["rmse"],
                 goodness=external.get("goodness"), sample=JUMOL.name, note="external sample, validation only")
        if big is not None and kind in timed:
            time_map(model, big, kind)


if __name__ == "__main__":
    main()
