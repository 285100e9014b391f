"""Shipped models: their held-out metrics and the cost of their datasets, as benchmark records.

    python benchmarks/models.py                 # the cards of the shipped registry (no training)
    python benchmarks/models.py --build NAME    # rebuild NAME from its dataset first (its recipe), then publish

Per shipped model (``glassfrac/models/NAME.json``): one record per held-out metric of its card (``value``,
``low`` and ``high`` of the bootstrap over test samples, ``n_samples``), and its training CPU seconds. Per
dataset of the repository (``datasets/NAME``, those the models come from and the held-out ones): samples,
labelled atoms and the CPU-hours of the campaign that made them (the sum of the per-sample run times, one
thread per sample; for the alumina dataset, its labelled Al and the CPU time of its samples). Records go to
``results/models.jsonl``; the README's model figures link to them.
``--map-time``: instead, the time of a 50 × 50 threshold map of a 10^4-atom monolayer with the shipped LISTI GNN
(a generated 40 × 50-ring Yukawa network, 10^4 atoms, as generated: the time does not depend on relaxation),
best of 3, one thread.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from glassfrac.core.threads import set_threads
from glassfrac.generate import generate
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
    card = json.loads((ROOT / folder / "card.json").read_text())
    name = Path(folder).name
    if card["format"] == "glassfrac-oxide-dataset-card-1":  # labelled Al of quenched alumina
        common = {"benchmark": "models", "dataset": folder, "atoms_per_sample": card["atoms_per_sample"],
                  "pressures_GPa": card["pressures_GPa"]}
        publish({**common, "figure": f"{name}_samples", "value": int(card["samples"]), "unit": "samples"})
        publish({**common, "figure": f"{name}_labels", "value": int(card["labels"]["labelled_al"]), "unit": "Al",
                 "rearranging": card["labels"]["rearranging"]})
        publish({**common, "figure": f"{name}_cpu_hours", "value": card["cpu_hours"], "unit": "CPU-h",
                 "per_sample_seconds": card["cpu_seconds_per_sample"]})
        return
    seconds = np.asarray(read_npz(ROOT / folder / "dataset.npz")["key_seconds"], float)
    common = {"benchmark": "models", "dataset": folder, "atoms_per_sample": card["atoms_per_sample"],
              "mu2": card["mu2"]}
    publish({**common, "figure": f"{name}_samples", "value": int(card["samples"]), "unit": "samples"})
    publish({**common, "figure": f"{name}_atoms", "value": int(card["atoms"]), "unit": "atoms"})
    publish({**common, "figure": f"{name}_cpu_hours", "value": float(seconds.sum() / 3600), "unit": "CPU-h",
             "per_sample_seconds": float(seconds.mean())})


def publish_map_time(card) -> None:
    structure = generate((40, 50), kind="monolayer", distribution="lognormal", sigma_factor=1.0, seed=0,
                         progress=False)
    model = card.load()
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        model.predict_map(structure, grid=50)
        seconds.append(time.perf_counter() - start)
    publish({"benchmark": "models", "model": card.name, "figure": f"{card.name}_map_50x50_seconds",
             "value": round(min(seconds), 2), "unit": "s", "atoms": structure.n_atoms, "all": seconds,
             "reference": {"what": "LISTI25: probing one such map", "value": 17 * 3600, "unit": "s"}})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", default=[], metavar="NAME",
                        help="rebuild this shipped model from its dataset first (repeatable)")
    parser.add_argument("--map-time", action="store_true", help="only time the shipped LISTI GNN on a 10^4-atom map")
    args = parser.parse_args(argv)
    set_threads(1)
    for name in args.build:
        build(name, SHIPPED, ROOT / recipe(name).dataset, overwrite=True)
    cards = Registry(SHIPPED).cards()
    if not cards:
        print("no shipped model", file=sys.stderr)
        return 1
    if args.map_time:
        for card in cards:
            if card.kind == "listi-gnn":
                publish_map_time(card)
        return 0
    for card in cards:
        publish_model(card)
    held_out = {f"datasets/{p.parent.name}" for p in (ROOT / "datasets").glob("*/card.json")}
    for folder in sorted({card.training["dataset"] for card in cards} | held_out):
        publish_dataset(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
