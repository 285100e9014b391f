"""Shipped models: their held-out metrics and the cost of their datasets, as benchmark records.

    python benchmarks/models.py                 # the cards of the shipped registry (no training)
    python benchmarks/models.py --build NAME    # rebuild NAME from its dataset first (its recipe), then publish

Per shipped model (``glassfrac/models/NAME.json``): one record per held-out metric of its card (``value``,
``low`` and ``high`` of the bootstrap over test samples, ``n_samples``), and its training CPU seconds. Per
dataset of the repository (``datasets/NAME``, those the models come from and the held-out ones): samples,
labelled atoms and the CPU-hours of the campaign that made them (the sum of the per-sample run times, one
thread per sample). Records go to ``results/models.jsonl``; the README's model figures link to them.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from glassfrac.learn.exports import read_npz
from glassfrac.learn.recipes import build, recipe
from glassfrac.learn.registry import SHIPPED, Registry
from results import publish

ROOT = Path(__file__).resolve().parent.parent


def publish_model(card) -> None:
    common = {"benchmark": "models", "model": card.name, "kind": card.kind, "dataset": card.training["dataset"],
              "test_samples": card.training["test_samples"]}
    for metric, m in card.metrics.items():
        publish({**common, "figure": f"{card.name}_{metric}", "value": m["value"], "unit": "",
                 "low": m["low"], "high": m["high"], "n_samples": m["n_samples"]})
    publish({**common, "figure": f"{card.name}_training_cpu_seconds", "value": card.training_cpu_seconds,
             "unit": "s"})


def publish_dataset(folder: str) -> None:
    arrays = read_npz(ROOT / folder / "dataset.npz")
    seconds = np.asarray(arrays["key_seconds"], float)
    card = json.loads((ROOT / folder / "card.json").read_text())
    name = Path(folder).name
    common = {"benchmark": "models", "dataset": folder, "atoms_per_sample": card["atoms_per_sample"],
              "mu2": card["mu2"]}
    publish({**common, "figure": f"{name}_samples", "value": int(card["samples"]), "unit": "samples"})
    publish({**common, "figure": f"{name}_atoms", "value": int(card["atoms"]), "unit": "atoms"})
    publish({**common, "figure": f"{name}_cpu_hours", "value": float(seconds.sum() / 3600), "unit": "CPU-h",
             "per_sample_seconds": float(seconds.mean())})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", default=[], metavar="NAME",
                        help="rebuild this shipped model from its dataset first (repeatable)")
    args = parser.parse_args(argv)
    for name in args.build:
        build(name, SHIPPED, ROOT / recipe(name).dataset, overwrite=True)
    cards = Registry(SHIPPED).cards()
    if not cards:
        print("no shipped model", file=sys.stderr)
        return 1
    for card in cards:
        publish_model(card)
    held_out = {f"datasets/{p.parent.name}" for p in (ROOT / "datasets").glob("*/card.json")}
    for folder in sorted({card.training["dataset"] for card in cards} | held_out):
        publish_dataset(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
