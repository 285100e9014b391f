"""Which predictor to trust (issue 20): every per-atom predictor and simple baselines scored on the same
held-out samples with the same metrics, with their spread over samples.

    python benchmarks/compare.py [--datasets bilayer-tension monolayer-tension] [--samples N]

Samples: the test samples of each shipped dataset (``datasets/NAME/dataset.npz``, the samples whose index
is a test index of :func:`glassfrac.learn.recipes.role`: no shipped model trained on them), split into two
disorder levels at mu2 = 0.6. Predictors, each a score per atom (higher: more likely to break first):

- ``softness``: the shipped softness SVM of the dataset's potential (``softness-bilayer`` /
  ``softness-monolayer``);
- ``energy``: the atom's potential energy in the undeformed sample, standardised within its species (high =
  strained);
- ``ring_defects``: the summed |n − 6| of the rings whose centres lie within 5 Å of the atom in the plane;
- ``largest_ring``: minus the in-plane distance to the centre of the sample's largest ring (Å);
- ``random``: uniform random numbers (seeded);
- ``location_map``: the shipped heat-map location model's probability at the atom's pixel (the whole cell,
  fully convolutional, at the training pixel size);
- ``strain_windows``: minus the rupture strain the shipped image model predicts for the window centred nearest
  the atom, windows slid periodically over cells larger than the training ones (FC22's sliding window; on a
  cell of the training size there is one window and the score is constant).

Samples 4x larger than the training ones (``monolayer-tension-4x``, all held out) test FC22's sliding-window
figure: P(rupture inside the 25 % most probable area).

Metrics per predictor, dataset and disorder level (bootstrap over samples, 95 % interval): ROC AUC of the
first-broken-bond atoms per sample (mean) and pooled; the fraction of a sample's atoms, flagged highest score
first, needed to catch 50 % and 90 % of the first broken bonds; the rupture-location error of the top-scored
atom (in-plane periodic distance to the first broken bond's midpoint, Å); and P(rupture inside the top-k %
most probable area) for k = 5, 10, 25, 50, the area being the k % of the sample's atoms with the highest
scores (the rupture is inside when an atom of the first broken bond is among them). Records go to
``results/compare.jsonl``; the report and documentation pages quote them.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.learn.exports import export_structure, read_export
from glassfrac.learn.gradcam import location_probability, render_for_model, scan
from glassfrac.learn.images import fractional
from glassfrac.learn.metrics import bootstrap_by_sample, bootstrap_mean, classification_metrics, flagged_fraction
from glassfrac.learn.recipes import RECIPES, dataset_roles
from glassfrac.learn.registry import Registry
from glassfrac.learn.training import atom_values
from glassfrac.potentials import get_potential
from results import publish

ROOT = Path(__file__).resolve().parent.parent
RING_RADIUS = 5.0
"""Å: rings whose centres lie this close to an atom (in the plane) make its ring-defect score."""
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


def _in_plane_distance(structure, points, centre) -> np.ndarray:
    d = np.zeros((len(points), structure.dim))
    d[:, :2] = np.asarray(points)[:, :2] - np.asarray(centre)[:2]
    return np.linalg.norm(structure.box.minimum_image(d)[:, :2], axis=1)


def baselines(structure, potential, rng) -> dict:
    """The baseline scores of ``structure`` (module docstring)."""
    energy = np.asarray(potential.evaluate([structure], per_atom=True)[0]["per_atom_energy"], float)
    for species in np.unique(structure.species):  # Si and O energies differ by eV: compare within a species
        m = structure.species == species
        energy[m] = (energy[m] - energy[m].mean()) / (energy[m].std() or 1.0)
    rings = RingAnalysis().compute(structure)
    sizes, centres = np.asarray(rings.ring_sizes), np.asarray(rings.ring_centres)
    defects = np.zeros(structure.n_atoms)
    for size, centre in zip(sizes, centres, strict=True):
        if size != 6:
            near = _in_plane_distance(structure, structure.positions, centre) < RING_RADIUS
            defects[near] += abs(int(size) - 6)
    largest = int(np.lexsort((np.asarray(rings.ring_areas), sizes))[-1])
    return {"energy": energy, "ring_defects": defects,
            "largest_ring": -_in_plane_distance(structure, structure.positions, centres[largest]),
            "random": rng.random(structure.n_atoms)}


def image_scores(cards: dict, structure, potential_name: str) -> dict:
    """Per-atom scores of the shipped image models of ``potential_name`` (module docstring)."""
    out = {}
    uv = None
    for card in cards.values():
        if card.training["potential"] != potential_name or card.kind not in ("rupture-location", "rupture-strain"):
            continue
        model = card.load()
        rendered = render_for_model(model, structure)
        image = rendered.image.astype(np.float32)
        uv = fractional(rendered.pixel_map, structure.box.wrap(structure.positions)[:, :2])
        if card.kind == "rupture-location" and model.head == "heatmap":
            out["location_map"] = atom_values(location_probability(model, image), uv)
        elif card.kind == "rupture-strain":
            if image.shape[0] > model.image_settings.size:
                out["strain_windows"] = -atom_values(scan(model, image, stride=model.config.stride), uv)
    return out


def per_sample(scores, positive, location, structure) -> dict:
    """The per-sample quantities of one predictor on one sample."""
    q = flagged_fraction(scores)
    top = int(np.argmax(scores))
    error = float(_in_plane_distance(structure, structure.positions[top:top + 1], location)[0])
    return {"auc": classification_metrics(positive.astype(int), scores)["roc_auc"], "q_positive": q[positive],
            "caught_at": float(q[positive].min()), "error": error}


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
    samples = test_samples(name, limit, held_out_all=name in LARGER)
    rng = np.random.default_rng(seed)
    levels = {"mu2<0.6": [s for s in samples if s[3] < LEVEL_SPLIT], "mu2>=0.6": [s for s in samples
                                                                               if s[3] >= LEVEL_SPLIT]}
    for level, members in levels.items():
        rows, raw = {}, {}
        for structure, positive, location, _ in members:
            scores = {**baselines(structure, potential, rng), **image_scores(models, structure, recipe.potential)}
            if softness is not None:
                scores = {"softness": softness.softness(structure), **scores}
            for predictor, s in scores.items():
                rows.setdefault(predictor, []).append(per_sample(s, positive, location, structure))
                raw.setdefault(predictor, ([], []))
                raw[predictor][0].append(s), raw[predictor][1].append(positive)
        for predictor, r in rows.items():
            metrics = score(r)
            publish({"benchmark": "compare", "figure": f"{name}_{level}_{predictor}_auc_per_sample",
                     "value": metrics["auc_per_sample"]["value"], "unit": "", "dataset": name, "level": level,
                     "predictor": predictor, "pooled_auc": pooled_auc(*raw[predictor]), **metrics,
                     "model": recipe.name if predictor == "softness" else None})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["bilayer-tension", "monolayer-tension",
                                                          "monolayer-tension-4x"])
    parser.add_argument("--samples", type=int, default=None, help="at most this many test samples per dataset")
    args = parser.parse_args(argv)
    for name in args.datasets:
        compare(name, args.samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
