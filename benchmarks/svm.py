"""Atom-level SVM (FC22): held-out accuracy of the first-break classifier on a tension dataset.

    python benchmarks/svm.py [--dataset EXPORT.npz] [--quick] [--out DIR]

The dataset is a ``glassfrac dataset export`` of a tension campaign; by default
``bench-out/svm/svm-tension.npz``, made by (about 18 min CPU)

    glassfrac campaign run configs/svm-tension.toml --output bench-out/svm/svm-tension
    glassfrac dataset export bench-out/svm/svm-tension -o bench-out/svm/svm-tension.npz

(44 Watanabe bilayers of 4 x 4 rings, 192 atoms, mu2 = 0.2; see the config). Each model is
trained through the command line, ``glassfrac softness train DATASET -o MODEL --json``:
descriptor + standard scaler + RBF SVC with balanced class weights; held-out figures come from
an outer 5-fold GroupKFold over samples (every atom scored by a model that never saw its
sample), with C and γ chosen by an inner GroupKFold grid search on the training samples.
Training sets keep all positives and a fixed number of random negatives per positive (seed 0;
20 for first_break, as many as fit in ~1500 atoms); test atoms are all kept.

Runs (:data:`RUNS`, all started at once, one process each): label ``first_break`` with the
``fc22`` descriptor (radial functions of the undeformed sample and of its copy stretched
affinely by 5 % along x, 148 features) and with ``fc22-unloaded`` (the undeformed half only,
74 features: FC22's argument for the affine copy); label ``bond_changed`` (every atom that lost
a bond by the end of the test) with ``fc22``. Figures (one JSON object each) per run:

- sensitivity, specificity, accuracy, balanced accuracy at the SVM's threshold (decision 0),
  sensitivity and specificity next to FC22's 99.4 % / 96 %; ROC AUC; the sensitivity read off
  the ROC at FC22's 96 % specificity;
- the flagged-fraction curve: fraction of positive atoms caught when the top 5 % and 10 % of
  each sample's atoms by softness are flagged, flagged fraction needed to catch 90 %, and the
  curve's area (0.5 random, 1 perfect); the PNG and the model are written to ``--out``;
- CPU seconds of the training process (descriptors, nested CV, final fit) and its wall time.

``--quick``: the fc22 / first_break run only, one C and γ (no inner search): under 1 min CPU.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from results import publish

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = ROOT / "bench-out/svm/svm-tension.npz"
GRID = {"C": "0.1,1,10", "gamma": "0.002,0.007,0.02,0.06,0.2"}
QUICK_GRID = {"C": "1", "gamma": "0.007"}
RUNS = (("fc22", "first_break", 20), ("fc22-unloaded", "first_break", 20), ("fc22", "bond_changed", 2))
"""(descriptor, label, negatives kept per positive in training sets) of the full benchmark; all
run at once, one process each. bond_changed has ~6 times more positives than first_break: its
ratio keeps the training sets at about the same size."""
FC22 = {"what": "FC22 SVM, held-out atoms of 3456-atom bilayers, mu2 = 0.2"}


def emit(figure, value, unit, reference=None, **extra):
    publish({"benchmark": "svm", "figure": figure, "value": value, "unit": unit,
             **({"reference": reference} if reference else {}), "machine": "1 thread", "extrapolated": False,
             **extra})


def describe(path: Path) -> dict:
    """Size and origin of an exported dataset."""
    with np.load(path, allow_pickle=False) as data:
        metadata = json.loads(str(data["metadata"]))
        label = data["first_break"]
        kinds, rings = sorted(set(data["kind"].tolist())), sorted({(int(a), int(b)) for a, b in
                                                                   zip(data["nx"], data["ny"], strict=True)})
        return {"path": str(path), "campaign": metadata.get("campaign"), "samples": int(len(data["sample_id"])),
                "atoms": int(len(label)), "positives": int(np.sum(label == 1)), "kind": kinds,
                "rings": [list(r) for r in rings], "mu2_target": sorted(set(np.round(data["mu2_target"], 3).tolist()))}


def launch(dataset: Path, descriptor: str, label: str, ratio: float, grid: dict, out: Path) -> tuple:
    """Start ``glassfrac softness train`` in a subprocess (stdout to a file); returns (process,
    stdout path, command, start time)."""
    name = run_name(descriptor, label)
    command = [str(Path(sys.executable).with_name("glassfrac")), "softness", "train", str(dataset),
               "-o", str(out / f"{name}.safetensors"), "--label", label, "--descriptor", descriptor,
               "--kernel", "rbf", "--C", grid["C"], "--gamma", grid["gamma"],
               "--negative-ratio", str(ratio), "--seed", "0", "--threads", "1",
               "--figure", str(out / f"{name}.png"), "--json"]
    stdout = out / f"{name}.json"
    with open(stdout, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.PIPE, text=True)
    return process, stdout, command, time.perf_counter()


def finish(process, stdout: Path, command: list, start: float) -> tuple[dict, float, float]:
    """Wait for a launched training; returns its JSON, CPU and wall seconds."""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    error = process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{error[-2000:]}")
    return json.loads(stdout.read_text()), usage.ru_utime + usage.ru_stime, wall


def run_name(descriptor: str, label: str) -> str:
    return descriptor if label == "first_break" else f"{descriptor}_{label}"


def report(result: dict, descriptor: str, label: str, ratio: float, dataset: dict, grid: dict, cpu: float,
           wall: float) -> None:
    h = result["held_out"]
    name = run_name(descriptor, label)
    search = "C and gamma fixed" if result["cv_score"] is None else "inner GroupKFold(5) grid search"
    what = {"descriptor": descriptor, "label": label, "n_features": result["n_features"], "kernel": result["kernel"],
            "dataset": {**dataset, "positives": result["n_positive"]}, "grid": grid,
            "split": f"outer GroupKFold(5) over samples, {search}", "chosen_final": result["chosen"],
            "negative_ratio": ratio, "seed": 0}
    published = h.get("published", {})
    for rate in ("sensitivity", "specificity"):
        ref = {**FC22, "value": published[rate], "unit": "1"} if rate in published else None
        emit(f"{name}_held_out_{rate}", round(h[rate], 4), "1", ref, confusion=h["confusion"], **what)
    for rate in ("accuracy", "balanced_accuracy", "roc_auc"):
        emit(f"{name}_held_out_{rate}", round(h[rate], 4), "1", **what)
    if "at_published_specificity" in h:
        p = h["at_published_specificity"]
        emit(f"{name}_held_out_sensitivity_at_fc22_specificity", round(p["sensitivity"], 4), "1",
             {**FC22, "value": published["sensitivity"], "unit": "1"}, specificity=round(p["specificity"], 4),
             flagged_fraction=round(p["flagged_fraction"], 4), **what)
    curve = h["flagged_curve"]
    for flagged in ("5%", "10%"):
        emit(f"{name}_caught_at_{flagged}_flagged", round(curve["caught_at"][flagged], 4), "1", **what)
    emit(f"{name}_flagged_to_catch_90%", round(curve["flagged_to_catch"]["90%"], 4), "1", **what)
    emit(f"{name}_flagged_curve_area", round(curve["area"], 4), "1", caught_at=curve["caught_at"],
         flagged=curve["flagged"], caught=curve["caught"], figure_file=result.get("figure"), **what)
    emit(f"{name}_train_cpu", round(cpu, 2), "s", wall_seconds=round(wall, 2), **what)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="exported tension dataset (.npz)")
    parser.add_argument("--quick", action="store_true", help="one C and gamma, fc22 descriptor only")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out/svm", help="models and figures go here")
    args = parser.parse_args()
    if not args.dataset.is_file():
        raise SystemExit(f"{args.dataset}: no such dataset; make it as the docstring of {__file__} says")
    args.out.mkdir(parents=True, exist_ok=True)
    dataset = describe(args.dataset)
    grid = QUICK_GRID if args.quick else GRID
    runs = RUNS[:1] if args.quick else RUNS
    launched = [launch(args.dataset, *run, grid, args.out) for run in runs]
    for run, job in zip(runs, launched, strict=True):
        result, cpu, wall = finish(*job)
        report(result, *run, dataset, grid, cpu, wall)

if __name__ == "__main__":
    main()
