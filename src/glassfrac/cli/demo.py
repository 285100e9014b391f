"""``glassfrac demo``: the main job on built-in defaults, in a few minutes on a laptop.

A small campaign (:data:`DEMO_CONFIG`: four 500-atom 2D silica monolayers at two disorder
levels, relaxed, loaded in tension and in pure shear, and one sample per level probed
locally on an 8 × 8 grid), then the post-campaign steps of :data:`STEPS` in order:

- ``dataset``: the learning dataset (``dataset.npz``, :mod:`glassfrac.campaign.export`);
- ``predictor``: FC22's atom-level SVM (:mod:`glassfrac.learn.svm`, load-aware radial
  descriptor, linear kernel, C by grid search over samples) trained on that dataset to find
  the atoms of the first broken bond in tension, evaluated leave-one-sample-out: every atom
  is scored by a model that never saw its sample (``predictor/``: model, ROC and
  flagged-fraction curves, held-out softness maps, ``report.json``);
- ``report``: the HTML report (``report.html``) with the figures of every stage.

Everything is written into one folder (default ``./glassfrac-demo``); running the demo again
resumes or reuses the finished samples. A non-empty folder that is not a demo's is refused unless
``--overwrite`` (then the demo writes beside its files: :mod:`glassfrac.core.outputs`).
"""

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

DEMO_CONFIG = """
[campaign]
name = "demo"
seed = 7

[[samples]]
kind = "monolayer"
rings = [10, 10]
distribution = "gamma"
mu2 = [0.3, 1.0]
count = 2

[relax]
method = "lbfgs"
fmax = 1e-5

[tests]
run = ["tension", "shear", "probe"]

[tests.tension]
max_strain = 0.3
step = 0.01
precision = 0.001

[tests.shear]
max_strain = 0.15
step = 0.005
precision = 0.001
max_events = 3

[tests.probe]
grid = 8
samples = 1
"""

PREDICTOR_LABEL = "first_break"
"""Per-atom label the demo's predictor learns: the two atoms of the first broken bond."""


def _dataset(store, results: dict) -> None:
    from glassfrac.campaign.export import export_dataset

    results["dataset"] = str((store.directory / "dataset.npz").resolve())
    export_dataset(store, results["dataset"], overwrite=True)  # the demo's own file in its own folder


def _predictor(store, results: dict) -> None:
    """Train and evaluate the SVM on the exported dataset (module docstring)."""
    from glassfrac.analysis.rings import RingAnalysis
    from glassfrac.core.files import atomic_open
    from glassfrac.learn.svm import TrainingSettings, load_dataset, train
    from glassfrac.report.network_plot import plot_rings_marked

    out = store.directory / "predictor"
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(results["dataset"], PREDICTOR_LABEL)
    n = len(dataset.names)
    model, evaluation = train(dataset, settings=TrainingSettings(kernel="linear", n_splits=n))
    model.save(out / "svm_first_break.safetensors")
    evaluation.plot(out / "evaluation.png")
    summary = evaluation.summary()
    figures = [{"title": "held-out ROC and flagged-fraction curves", "path": "predictor/evaluation.png"}]
    targets = {row.sample_id: row.get("mu2_target") for row in store.rows(include_data=False)}
    levels = {}
    for k, name in enumerate(dataset.names):
        levels.setdefault(targets.get(name), k)  # the first sample of each disorder level
    for k in levels.values():
        structure, name = dataset.structures[k], dataset.names[k]
        mask = evaluation.groups == k
        labelled = np.flatnonzero(structure.arrays[PREDICTOR_LABEL])
        per_sample = next(p for p in summary["per_sample"] if p["sample"] == name)
        path = f"predictor/softness_{name}.png"
        plot_rings_marked(RingAnalysis().compute(structure), store.directory / path, dpi=100,
                          values=("held-out softness (high: predicted to break)", structure.positions,
                                  evaluation.scores[mask]),
                          points=[("atoms of the first broken bond", structure.positions[labelled], False)],
                          title=f"{name}: held-out softness (ROC AUC {per_sample['roc_auc']:.2f})").clear()
        figures.append({"title": f"{name}: softness from the model that never saw it; circles: first broken "
                                 f"bond", "path": path})
    curve = summary.get("flagged_curve", {})
    metrics = {
        "label": PREDICTOR_LABEL, "samples": n, "atoms": summary["n_atoms"], "positives": summary["n_positive"],
        "roc_auc": summary["roc_auc"], "flagged_curve_area": curve.get("area"),
        "flagged_to_catch_50%": curve.get("flagged_to_catch", {}).get("50%"),
        "sensitivity": summary["sensitivity"], "specificity": summary["specificity"],
        "per_sample_roc_auc": [p["roc_auc"] for p in summary["per_sample"]],
        "chosen_C": [f["chosen"].get("svm__C") for f in summary["folds"]],
    }
    table = [
        ["samples, atoms, positive atoms", f"{n}, {metrics['atoms']}, {metrics['positives']}"],
        ["held-out ROC AUC, pooled (0.5: random, 1: perfect)", metrics["roc_auc"]],
        ["held-out ROC AUC per sample", metrics["per_sample_roc_auc"]],
        ["area under the flagged-fraction curve (0.5: random, 1: perfect)", metrics["flagged_curve_area"]],
        ["fraction of a sample's atoms flagged to catch half of the first breaks", metrics["flagged_to_catch_50%"]],
        ["sensitivity, specificity at softness > 0", [metrics["sensitivity"], metrics["specificity"]]],
        ["C chosen in each fold", metrics["chosen_C"]],
    ]
    section = {
        "title": "Predictor: where does the first bond break?",
        "text": (f"FC22's atom-level SVM (load-aware radial symmetry functions, linear kernel, C chosen by "
                 f"grid search over samples) trained on the label {PREDICTOR_LABEL!r} of the {n} samples and "
                 f"evaluated leave-one-sample-out: every atom is scored by the model that did not see its sample. "
                 f"ROC AUC 0.5 is a random ranking, 1 a perfect one; the flagged-fraction curve shows how many "
                 f"atoms of a sample must be inspected, highest softness first, to find its first broken bond. "
                 f"With {summary['n_positive']} positive atoms these numbers are rough; FC22 trained on thousands "
                 f"of samples. Model: predictor/svm_first_break.safetensors."),
        "table": table,
        "figures": figures,
    }
    from glassfrac.core.jsonable import to_jsonable

    with atomic_open(out / "report.json") as handle:
        json.dump(to_jsonable(section), handle, indent=1)
    results["predictor"] = metrics


def _report(store, results: dict) -> None:
    from glassfrac.campaign.runner import report_campaign

    results["report"] = str(report_campaign(store).resolve())


STEPS = [("dataset", _dataset), ("predictor", _predictor), ("report", _report)]
"""Steps after the campaign: ``(name, step(store, results))``, each adding to ``results``."""


def run_demo(output="glassfrac-demo", workers: int | None = None, overwrite: bool = False) -> dict:
    """Run the demo campaign into ``output`` and the :data:`STEPS`; returns paths, counts,
    the predictor's held-out metrics, wall seconds and CPU seconds (this process and its
    finished worker processes). ``output`` must be new, empty or a demo's folder, or any folder
    with ``overwrite`` (whose files are kept: :mod:`glassfrac.core.outputs`)."""
    import resource
    import time

    from glassfrac.campaign.config import parse_config
    from glassfrac.campaign.runner import open_store, run_campaign

    def cpu() -> float:
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + child.ru_utime + child.ru_stime

    start, cpu_start = time.perf_counter(), cpu()
    directory = Path(output)
    config = replace(parse_config(DEMO_CONFIG, source="glassfrac demo (built-in config)"), directory=directory)
    summary = run_campaign(config, workers=workers, overwrite=overwrite, command="demo")
    store = open_store(config)
    results = {"samples": summary["done"], "failed": summary["failed"], "campaign_seconds": summary["run_seconds"]}
    for name, step in STEPS:
        print(f"glassfrac demo: {name}", file=sys.stderr)
        step(store, results)
    results["seconds"] = round(time.perf_counter() - start, 3)
    results["cpu_seconds"] = round(cpu() - cpu_start, 3)
    results["directory"] = str(directory.resolve())
    return results
