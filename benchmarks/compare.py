"""Which predictor to trust (issue 20): every per-atom predictor and simple baselines scored on the same
held-out samples with the same metrics, with their spread over samples.

    python benchmarks/compare.py [--datasets bilayer-tension monolayer-tension monolayer-shear bilayer-shear]
                                 [--samples N]

Samples: the test samples of each shipped dataset (``datasets/NAME/dataset.npz``, the samples whose index
is a test index of :func:`glassfrac.learn.recipes.role`: no shipped model trained on them), split into two
disorder levels at mu2 = 0.6. Predictors, each a score per atom (higher: more likely to break first):

- ``softness``: the shipped softness SVM of the dataset's potential (``softness-bilayer`` /
  ``softness-monolayer``);
- ``energy``, ``ring_defects``, ``largest_ring``, ``random``: the baselines of
  :func:`glassfrac.learn.scores.baseline_scores`;
- ``location_map``: the shipped heat-map location model's probability at the atom's pixel (the whole cell,
  fully convolutional, at the training pixel size);
- ``strain_windows``: minus the rupture strain the shipped image model predicts for the window centred nearest
  the atom, windows slid periodically over cells larger than the training ones (FC22's sliding window; on a
  cell of the training size there is one window and the score is constant).

Samples 4x larger than the training ones (``monolayer-tension-4x``, all held out) test FC22's sliding-window
figure: P(rupture inside the 25 % most probable area).

Shear and cross-task (``monolayer-shear``: its test samples; ``bilayer-shear``: all its samples; each loaded in
tension, in pure shear and probed):
the goodness C = 1 − 2F (LISTI25) of every predictor for shear events 1–6, per event and averaged, and at the
tension rupture site of the same sample. Per-atom scores are ranked over the atoms, threshold maps over their
windows (low Δτ: weak): ``probed_map`` (the probe stage's Δτ), ``listi_gnn`` (the shipped threshold-map GNN at
the same window centres), ``listi_cnn`` and ``listi_lstm`` (LISTI25's other two networks, trained on the GNN's
dataset and split by :func:`compared_listi_models`, not shipped; their held-out correlation is recorded too),
``strain_attention`` (Grad-CAM of the rupture-strain model over the whole cell),
softness, the location map and the baselines.

Metrics per predictor, dataset and disorder level (bootstrap over samples, 95 % interval): ROC AUC of the
first-broken-bond atoms per sample (mean) and pooled; the fraction of a sample's atoms, flagged highest score
first, needed to catch 50 % and 90 % of the first broken bonds; the rupture-location error of the top-scored
atom (in-plane periodic distance to the first broken bond's midpoint, Å); and P(rupture inside the top-k %
most probable area) for k = 5, 10, 25, 50, the area being the k % of the sample's atoms with the highest
scores (the rupture is inside when an atom of the first broken bond is among them). Records go to
``results/compare.jsonl``; the report and documentation pages quote them.
"""

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from glassfrac.imaging.prediction import ATTENTION_STAGE
from glassfrac.labels.probe import goodness
from glassfrac.learn.exports import export_structure, read_export, shear_event_sites
from glassfrac.learn.gradcam import attention, location_probability, render_for_model, scan
from glassfrac.learn.images import flips, fractional
from glassfrac.learn.listi import ListiModel
from glassfrac.learn.metrics import bootstrap_by_sample, bootstrap_mean, classification_metrics, flagged_fraction
from glassfrac.learn.recipes import RECIPES, dataset_roles, train_threshold_model
from glassfrac.learn.registry import Registry
from glassfrac.learn.scores import atom_goodness, baseline_scores, first_break_scores
from glassfrac.learn.training import atom_values
from glassfrac.potentials import get_potential
from glassfrac.report.html import write_page
from results import newest_records, publish, results_folder

ROOT = Path(__file__).resolve().parent.parent
LEVEL_SPLIT = 0.6
TOP = (5, 10, 25, 50)


def test_samples(name: str, limit: int | None = None, held_out_all: bool = False) -> list:
    """The test samples of dataset ``name`` (every sample with ``held_out_all``) with a first broken bond:
    (structure, first_break, location, mu2)."""
    path = ROOT / "datasets" / name / "dataset.npz"
    roles = dataset_roles(path)
    out = []
    for sample in read_export(path, ("first_break",)):
        if (roles[sample["sample_id"]] != "test" and not held_out_all) or not np.any(sample["first_break"] == 1):
            continue
        structure = export_structure(sample)
        out.append((structure, np.asarray(sample["first_break"]) == 1, np.asarray(sample["rupture_location"]),
                    float(sample["mu2"])))
        if limit and len(out) >= limit:
            break
    return out


def image_models(cards: dict, potential_name: str) -> dict:
    """The shipped rupture-location and rupture-strain image models of ``potential_name``, loaded, by kind."""
    return {card.kind: card.load() for card in cards.values()
            if card.training["potential"] == potential_name and card.kind in ("rupture-location", "rupture-strain")}


def image_scores(models: dict, structure, attention_maps: bool = False) -> dict:
    """Per-atom scores of the image ``models`` (:func:`image_models`; module docstring); with
    ``attention_maps``, also the Grad-CAM attention of the rupture-strain model over the whole cell."""
    out = {}
    for kind, model in models.items():
        rendered = render_for_model(model, structure)
        image = rendered.image.astype(np.float32)
        uv = fractional(rendered.pixel_map, structure.box.wrap(structure.positions)[:, :2])
        if kind == "rupture-location" and model.head == "heatmap":
            out["location_map"] = atom_values(location_probability(model, image), uv)
        elif kind == "rupture-strain":
            if image.shape[0] > model.image_settings.size:
                out["strain_windows"] = -atom_values(scan(model, image, stride=model.config.stride), uv)
            if attention_maps:
                maps = attention(model, image, transforms=flips(image.shape[-1]))
                out["strain_attention"] = atom_values(maps[min(maps, key=lambda r: abs(r - ATTENTION_STAGE))], uv)
    return out


def score(rows: list) -> dict:
    """Metrics with bootstrap spread from the per-sample rows of one predictor (module docstring)."""
    n = len(rows)
    index = np.arange(n)

    def boot(values):
        b = bootstrap_mean(values)
        return {k: b[k] for k in ("value", "low", "high")}

    def needed(fraction):
        def f(picked, _):
            q = np.sort(np.concatenate([rows[int(k)]["q_positive"] for k in picked]))
            return float(q[max(0, int(np.ceil(fraction * len(q))) - 1)])
        b = bootstrap_by_sample(f, index.astype(float), index, index)
        return {k: b[k] for k in ("value", "low", "high")}

    out = {"samples": n, "auc_per_sample": boot([r["auc"] for r in rows]),
           "flagged_to_catch_50": needed(0.5), "flagged_to_catch_90": needed(0.9),
           "location_error": boot([r["error"] for r in rows])}
    for k in TOP:
        out[f"inside_top{k}"] = boot([r["caught_at"] <= k / 100 for r in rows])
    return out


def pooled_auc(scores: list, positives: list) -> float:
    """ROC AUC over the atoms of all samples, each sample's scores as ranks (so scales do not mix)."""
    q = np.concatenate([1 - flagged_fraction(s) for s in scores])
    return classification_metrics(np.concatenate(positives).astype(int), q)["roc_auc"]


LARGER = {"monolayer-tension-4x": "monolayer-tension"}
"""Held-out datasets of larger samples and the dataset whose models they test (all their samples are held out)."""


def compare(name: str, limit: int | None, seed: int = 0) -> None:
    trained_on = LARGER.get(name, name)
    recipe = next(r for r in RECIPES.values() if r.dataset == f"datasets/{trained_on}"
                  and r.kind.startswith("softness"))
    potential = get_potential(recipe.potential)
    models = {c.name: c for c in Registry.default().cards()}
    softness = models[recipe.name].load() if recipe.name in models else None
    images = image_models(models, recipe.potential)
    samples = test_samples(name, limit, held_out_all=name in LARGER)
    rng = np.random.default_rng(seed)
    levels = {"mu2<0.6": [s for s in samples if s[3] < LEVEL_SPLIT], "mu2>=0.6": [s for s in samples
                                                                               if s[3] >= LEVEL_SPLIT]}
    for level, members in levels.items():
        rows, raw = {}, {}
        for structure, positive, location, _ in members:
            scores = {**baseline_scores(structure, potential, rng), **image_scores(images, structure)}
            if softness is not None:
                scores = {"softness": softness.softness(structure), **scores}
            for predictor, s in scores.items():
                rows.setdefault(predictor, []).append(first_break_scores(s, positive, location, structure))
                raw.setdefault(predictor, ([], []))
                raw[predictor][0].append(s), raw[predictor][1].append(positive)
        for predictor, r in rows.items():
            metrics = score(r)
            publish({"benchmark": "compare", "figure": f"{name}_{level}_{predictor}_auc_per_sample",
                     "value": metrics["auc_per_sample"]["value"], "unit": "", "dataset": name, "level": level,
                     "predictor": predictor, "pooled_auc": pooled_auc(*raw[predictor]), **metrics,
                     "model": recipe.name if predictor == "softness" else None})


SHEARED = {"monolayer-shear": "monolayer-tension", "bilayer-shear": "bilayer-tension"}
"""Datasets loaded in shear, in tension and probed, and the dataset whose models they test. Their samples are held
out from those models; a threshold-map model trained on the sheared dataset itself (the LISTI GNN on
``monolayer-shear``) leaves only its test samples, else every sample is scored."""
EVENTS = 6
"""Shear events scored per sample (LISTI25: the first six)."""


def sheared_samples(name: str, limit: int | None = None) -> list:
    """The samples of dataset ``name`` with shear events and a probed map: (structure, rupture location, mu2,
    shear event locations in order, window centres, window thresholds)."""
    out = []
    path = ROOT / "datasets" / name / "dataset.npz"
    roles = dataset_roles(path)
    trained_on = threshold_recipe(name) is not None
    for sample in read_export(path, tables=("event_", "window_")):
        if trained_on and roles[sample["sample_id"]] != "test":  # a threshold-map model trains on the others
            continue
        events = shear_event_sites(sample)[:EVENTS]
        if not len(events) or not len(sample["window_threshold"]):
            continue
        out.append((export_structure(sample), np.asarray(sample["rupture_location"]), float(sample["mu2"]), events,
                    sample["window_centre"], sample["window_threshold"]))
        if limit and len(out) >= limit:
            break
    return out


COMPARED_LISTI = {"cnn": {"epochs": 60, "batch_size": 32, "patience": 10},
                  "lstm": {"epochs": 100, "batch_size": 32, "patience": 15}}
"""LISTI25's other two threshold-map networks, trained here (not shipped) on the shipped GNN's dataset and split, with
fewer epochs than the GNN's recipe (a CNN epoch costs about ten GNN epochs on one core)."""


def threshold_recipe(name: str):
    """The recipe of the shipped threshold-map model trained on dataset ``name``, or None."""
    return next((r for r in RECIPES.values() if r.kind == "listi-gnn" and r.dataset == f"datasets/{name}"), None)


def compared_listi_models(name: str) -> dict:
    """The CNN and LSTM threshold-map models of dataset ``name`` (trained once, kept in
    ``bench-out/compare/``), by kind; none for a dataset without a shipped threshold-map recipe."""
    shipped = threshold_recipe(name)
    if shipped is None:
        return {}
    folder = ROOT / "bench-out" / "compare"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind, train in COMPARED_LISTI.items():
        path = folder / f"listi-{kind}-{name}.safetensors"
        if not path.is_file():
            r = replace(shipped, name=f"listi-{kind}-{name}", settings={"model": kind, "train": train})
            model, details, table = train_threshold_model(r, ROOT / shipped.dataset / "dataset.npz", 0)
            model.save(path)  # atomic: a killed run leaves no half-written model
            for metric, m in details["card_metrics"].items():
                publish({"benchmark": "compare", "figure": f"{name}_listi_{kind}_{metric}", "value": m["value"],
                         "dataset": name, "predictor": f"listi_{kind}",
                         "unit": "", "low": m["low"], "high": m["high"], "n_samples": m["n_samples"],
                         "train": train, "epochs_run": details["epochs_run"], "windows": table["labels"]})
        out[kind] = ListiModel.load(path)
    return out


def compare_shear(name: str, limit: int | None, seed: int = 0) -> None:
    """Shear rows and cross-task rows (module docstring) of dataset ``name``."""
    recipe = next(r for r in RECIPES.values() if r.dataset == f"datasets/{SHEARED[name]}"
                  and r.kind.startswith("softness"))
    potential = get_potential(recipe.potential)
    models = {c.name: c for c in Registry.default().cards()}
    softness = models[recipe.name].load() if recipe.name in models else None
    listi = next((c.load() for c in models.values() if c.kind == "listi-gnn" and c.training["dataset"] ==
                  f"datasets/{name}"), None)
    compared = compared_listi_models(name)
    images = image_models(models, recipe.potential)
    rng = np.random.default_rng(seed)
    samples = sheared_samples(name, limit)
    for level in ("mu2<0.6", "mu2>=0.6"):
        members = [s for s in samples if (s[2] < LEVEL_SPLIT) == (level == "mu2<0.6")]
        per_event, at_rupture = {}, {}
        for structure, location, _, events, centres, thresholds in members:
            scores = {**baseline_scores(structure, potential, rng),
                      **image_scores(images, structure, attention_maps=True)}
            if softness is not None:
                scores = {"softness": softness.softness(structure), **scores}
            c = {p: atom_goodness(v, structure, events) for p, v in scores.items()}
            maps = {"probed_map": thresholds}
            if listi is not None:
                maps["listi_gnn"] = listi.predict_map(structure, centres=centres)["threshold"]
            for kind, model in compared.items():
                maps[f"listi_{kind}"] = model.predict_map(structure, centres=centres)["threshold"]
            c.update({p: goodness(m, centres, events, structure.box) for p, m in maps.items()})
            site = {p: atom_goodness(v, structure, location[None])[0] for p, v in scores.items()}
            site.update({p: goodness(m, centres, location[None], structure.box)[0] for p, m in maps.items()})
            for p in c:
                per_event.setdefault(p, []).append(c[p])
                if np.all(np.isfinite(location)):
                    at_rupture.setdefault(p, []).append(site[p])
        for predictor, rows in per_event.items():
            by_rank = {}
            for k in range(EVENTS):
                values = [r[k] for r in rows if len(r) > k]
                if values:
                    b = bootstrap_mean(values)
                    by_rank[k + 1] = {"value": b["value"], "low": b["low"], "high": b["high"], "samples": len(values)}
            mean = bootstrap_mean([float(np.mean(r)) for r in rows])
            site = bootstrap_mean(at_rupture.get(predictor, [np.nan]))
            publish({"benchmark": "compare", "figure": f"{name}_{level}_{predictor}_shear_goodness",
                     "value": mean["value"], "unit": "", "dataset": name, "level": level, "predictor": predictor,
                     "samples": len(rows), "low": mean["low"], "high": mean["high"], "by_event": by_rank,
                     "tension_site_goodness": {k: site[k] for k in ("value", "low", "high")},
                     "tension_site_samples": len(at_rupture.get(predictor, [])),
                     "model": recipe.name if predictor == "softness" else None})


PREDICTORS = ("softness", "probed_map", "listi_gnn", "listi_cnn", "listi_lstm", "location_map", "strain_windows",
              "strain_attention", "energy", "ring_defects", "largest_ring", "random")
"""Row order of the tables: the learned and probed predictors first, then the baselines."""


def _cell(m) -> str:
    """A metric with its 95 % interval: ``0.93 [0.90, 0.95]`` (– when there is none)."""
    if not isinstance(m, dict) or m.get("value") is None or not np.isfinite(m["value"]):
        return "–"
    return f"{m['value']:.2f} [{m['low']:.2f}, {m['high']:.2f}]"


def tables(records: dict) -> list:
    """The comparison tables (``{"caption", "columns", "rows"}``) from the newest ``compare`` records."""
    mine = sorted((r for (benchmark, figure), r in records.items() if benchmark == "compare"
                   and figure.endswith(("_auc_per_sample", "_shear_goodness"))),
                  key=lambda r: (r["dataset"], r["level"], PREDICTORS.index(r["predictor"])
                                 if r["predictor"] in PREDICTORS else len(PREDICTORS), r["predictor"]))
    tension = [r for r in mine if r["figure"].endswith("_auc_per_sample")]
    shear = [r for r in mine if r["figure"].endswith("_shear_goodness")]
    return [
        {"caption": "Tension: the first broken bond and the rupture site (held-out samples; mean [95 % bootstrap "
                    "interval over samples])",
         "columns": ["dataset", "μ₂", "predictor", "samples", "ROC AUC per sample", "pooled ROC AUC",
                     "atoms flagged to catch 50 %", "90 %", "top atom to rupture (Å)",
                     *[f"rupture in top {k} %" for k in TOP]],
         "rows": [[r["dataset"], r["level"], r["predictor"], r["samples"], _cell(r["auc_per_sample"]),
                   f"{r['pooled_auc']:.3f}", _cell(r["flagged_to_catch_50"]), _cell(r["flagged_to_catch_90"]),
                   _cell(r["location_error"]), *[_cell(r[f"inside_top{k}"]) for k in TOP]] for r in tension]},
        {"caption": "Shear events and cross-task: goodness C = 1 − 2F of each predictor for shear events 1–6 "
                    "(LISTI25; 1: the event is where the predictor ranks the sample weakest, 0: random) and at "
                    "the tension rupture site of the same sample",
         "columns": ["dataset", "μ₂", "predictor", "samples", *[f"event {k}" for k in range(1, EVENTS + 1)],
                     "mean over events", "tension rupture site"],
         "rows": [[r["dataset"], r["level"], r["predictor"], r["samples"],
                   *[_cell(r["by_event"].get(str(k), r["by_event"].get(k))) for k in range(1, EVENTS + 1)],
                   _cell(r), _cell(r["tension_site_goodness"])] for r in shear]},
    ]


def write_tables() -> None:
    """``results/compare.html`` (the report page) and ``results/compare.tables.json`` (the documentation's
    tables) from the newest records."""
    folder = results_folder()
    made = [t for t in tables(newest_records(folder)) if t["rows"]]
    text = ("Every predictor and the simple baselines scored on the same held-out samples with the same metrics: "
            "mean and 95 % bootstrap interval over samples. Generated by benchmarks/compare.py from the newest "
            "records of results/compare.jsonl; its docstring defines the predictors and the metrics.")
    write_page(folder / "compare.html", "Which predictor to trust", text, made)
    (folder / "compare.tables.json").write_text(json.dumps(made, ensure_ascii=False, indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["bilayer-tension", "monolayer-tension",
                                                          "monolayer-tension-4x", *SHEARED])
    parser.add_argument("--samples", type=int, default=None, help="at most this many test samples per dataset")
    args = parser.parse_args(argv)
    for name in args.datasets:
        (compare_shear if name in SHEARED else compare)(name, args.samples)
    write_tables()
    return 0


if __name__ == "__main__":
    sys.exit(main())
