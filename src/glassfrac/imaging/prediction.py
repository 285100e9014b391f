"""Every applicable registered model on a structure or a microscope image (``glassfrac predict``).

The models come from a :class:`~glassfrac.learn.registry.Registry`; per task (first broken bond, rupture
strain, rupture location, crack, mu2, threshold map, oxide softness) the one chosen for the structure by
:meth:`~glassfrac.learn.registry.Registry.for_structure` predicts, marked ``in_domain`` or not with the
reasons. What each task gives (units: Å, N/m, strain dimensionless):

- ``first_break`` / ``oxide_softness`` (softness SVM): per-atom ``softness`` (signed distance to the SVM
  boundary, standardised descriptor units; NaN for atoms of other species than the model's; a model trained on
  inherent structures, the DU21 oxide softness, reads the inherent structure of the input: CG minimum at
  fixed cell in LAMMPS, ``features_on`` says how far the atoms moved), the
  predicted class (softness > 0), the top 10 % softest atoms and, for models built by their recipe
  (:mod:`glassfrac.learn.recipes`), ``first_break_probability``: a distribution over the atoms (sums to 1)
  of where the first broken bond starts. On an image, the summary is over the Si
  whose descriptor reach lies inside the imaged region (:class:`~glassfrac.imaging.predict.SoftnessPredictor`).
- ``rupture_strain`` / ``mu2`` (image ResNet), Grad-CAM attention beside the value. A periodic sheet is
  rendered as the training images were (:func:`~glassfrac.learn.gradcam.render_for_model`; at their pixel size
  when the cell is larger): a cell of the training size is one network input; a larger cell gets windows of
  the input size slid periodically over it (:func:`~glassfrac.learn.gradcam.scan`), and the prediction is
  their mean (mu2) or their minimum (rupture strain: the weakest window breaks first). An image (open
  edges): windows of the input side inside the imaged region, their mean
  (:class:`~glassfrac.imaging.predict.ResNetPredictor`). ``mu2`` also gives the measured ring mu2.
- ``rupture_location`` / ``crack`` (image ResNet, periodic sheets only): the location in Å (augmentation-
  averaged, periodic; for a cell larger than the training ones, the peak of the heat-map model's probability
  over the whole cell, :func:`~glassfrac.learn.gradcam.location_probability`) or the crack map (pixels of the
  rendered image). An open structure (an image) is not applicable: these models see whole periodic cells.
- ``threshold_map`` (LISTI): Δτ (N/m) of windows over the sample, the lowest ones (at least one radius
  apart) marked: on a periodic sheet, the probe grid with spacing about a quarter of the window radius;
  on an image, windows inside the imaged region (:class:`~glassfrac.imaging.predict.ListiPredictor`).
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_open
from glassfrac.imaging.build import BuiltStructure
from glassfrac.imaging.detect import IMAGE_SUFFIXES, read_image
from glassfrac.imaging.pipeline import analyse_image
from glassfrac.imaging.predict import (
    TOP_FRACTION,
    ListiPredictor,
    ResNetPredictor,
    SoftnessPredictor,
    separated_lowest,
)
from glassfrac.learn.gradcam import attention, location_probability, render_for_model, scan
from glassfrac.learn.images import angstrom, flips
from glassfrac.learn.registry import ModelCard, Registry, StructureFacts, describe
from glassfrac.mechanics.md import inherent_structure
from glassfrac.structure import Structure, read, write

ATTENTION_STAGE = 16
"""Grad-CAM resolution (px of the network input) shown for image models on periodic sheets."""
LISTI_MAX_GRID = 50
"""Largest threshold-map grid on a periodic sheet (the probe's default)."""


@dataclass
class TaskPrediction:
    """One model's prediction: its ``card``, ``domain``, JSON-able ``values`` and the ``arrays`` behind
    the figures (per atom, maps), ``seconds`` (wall and CPU)."""

    task: str
    card: ModelCard
    in_domain: bool
    reasons: tuple
    values: dict
    arrays: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"model": self.card.reference(), "in_domain": self.in_domain, "reasons": list(self.reasons),
                **self.values, "seconds": self.seconds}


@dataclass
class Prediction:
    """What :func:`predict_file` / :func:`predict_structure` found: the ``structure`` predicted on (built
    from the image for an image input), its ``facts``, the ``tasks`` (name → :class:`TaskPrediction`), the
    tasks whose models do not apply (``not_applicable``: per task the models and why), and for an image
    input the ``image`` (grey pixels), its ``built`` structure and the ``image_summary``."""

    source: str
    input: str
    structure: Structure
    facts: StructureFacts
    registry: str
    tasks: dict
    not_applicable: dict
    image: np.ndarray | None = None
    built: BuiltStructure | None = None
    image_summary: dict | None = None

    def __getitem__(self, task: str) -> TaskPrediction:
        return self.tasks[task]

    def to_dict(self) -> dict:
        """Every value, each with its model (name, version, training data) and ``in_domain``."""
        out = {"file": self.source, "input": self.input, "structure": self.facts.to_dict(),
               "models": self.registry, "predictions": {t: p.to_dict() for t, p in self.tasks.items()},
               "not_applicable": self.not_applicable}
        if self.image_summary is not None:
            out["image"] = self.image_summary
        return out

    def annotated(self) -> Structure:
        """A copy of the structure with the per-atom results as arrays (``softness``, ``soft_top10`` for
        the first break; ``oxide_softness``, ``oxide_soft_top10`` for the oxide model)."""
        out = self.structure.copy()
        for task, prefix in (("first_break", ""), ("oxide_softness", "oxide_")):
            if task in self.tasks:
                out.set_array(f"{prefix}softness", self.tasks[task].arrays["softness"])
                out.set_array(f"{prefix}soft_top10", self.tasks[task].arrays["top"].astype(np.int8))
        return out


def write_prediction_arrays(prediction: Prediction, path_of) -> None:
    """Write ``structure.extxyz`` (the structure with :meth:`Prediction.annotated`'s per-atom values) and
    ``arrays.npz`` (per task, its per-atom values and maps as ``TASK.NAME``); ``path_of(name)`` gives each
    file's path."""
    write(prediction.annotated(), path_of("structure.extxyz"))
    arrays = {f"{task}.{name}": np.asarray(value) for task, p in prediction.tasks.items()
              for name, value in p.arrays.items() if name != "pixel_map" and np.asarray(value).dtype != object}
    with atomic_open(path_of("arrays.npz"), "wb") as handle:
        np.savez_compressed(handle, **arrays)


def is_image(path) -> bool:
    """Whether ``path`` names a microscope image (by its extension) rather than a structure file."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def predict_file(path, registry: Registry, file_format: str | None = None, pixel_size: float | None = None,
                 relax: bool = False) -> Prediction:
    """:func:`predict_structure` of a structure file (any format of :func:`glassfrac.structure.read`;
    ``file_format`` overrides the extension) or :func:`predict_image` of a microscope image
    (``pixel_size`` Å/px, None: from the file or estimated; ``relax``: relax the built structure)."""
    if is_image(path):
        return predict_image(path, registry, pixel_size, relax)
    return predict_structure(read(path, format=file_format), registry, source=str(path))


def predict_image(path, registry: Registry, pixel_size: float | None = None, relax: bool = False) -> Prediction:
    """Every applicable model on the structure built from a microscope image (the chain of
    ``glassfrac image``: :func:`~glassfrac.imaging.pipeline.analyse_image`)."""
    require_models(registry)
    loaded = read_image(path)
    analysis = analyse_image(loaded.image, pixel_size or loaded.pixel_size, build_options={"relax": relax},
                             source=path)
    built = analysis.built
    facts = describe(built.structure)
    prediction = _run(built.structure, facts, registry, str(path), "image", analysis.detections.pixel_size)
    prediction.image, prediction.built, prediction.image_summary = loaded.image, built, analysis.summary()
    return prediction


def predict_structure(structure: Structure, registry: Registry, source: str = "structure") -> Prediction:
    """Every applicable model of ``registry`` on ``structure`` (module docstring)."""
    require_models(registry)
    return _run(structure, describe(structure), registry, source, "structure", None)


def require_models(registry: Registry) -> None:
    if not registry.cards():
        raise InputError(f"no model installed in {registry.folder} ({registry.source}): the models are trained "
                         "from the repository's datasets (datasets/); put model files with their cards there, or "
                         "name a folder with --models / GLASSFRAC_MODELS")


def _run(structure, facts, registry, source, kind, pixel_size) -> Prediction:
    chosen = registry.for_structure(structure, pixel_size, facts)
    refused = chosen.pop("not_applicable", {})
    if not chosen:
        found = "; ".join(f"{r['model']}: {r['reason']}" for rs in refused.values() for r in rs)
        raise InputError(f"no installed model applies to this structure ({facts.kind}, {'-'.join(facts.species)}, "
                         f"{facts.n_atoms} atoms): {found}", source if source != "structure" else None)
    open_cell = kind == "image" or not bool(np.all(structure.box.pbc[:2]))
    tasks = {}
    for task, entry in sorted(chosen.items()):
        card, domain = entry["card"], entry["domain"]
        if task in ("rupture_location", "crack") and open_cell:
            refused[task] = [{"model": card.name, "reason": "the model sees whole periodic cells; this structure "
                                                            "has open edges"}]
            continue
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            values, arrays = RUNNERS[task](card, card.load(), structure, facts, kind)
        except InputError as exc:  # this model cannot take this structure (a sheared cell for an image model)
            refused[task] = [{"model": card.name, "reason": str(exc)}]
            continue
        seconds = {"wall": round(time.perf_counter() - wall, 3), "cpu": round(time.process_time() - cpu, 3)}
        tasks[task] = TaskPrediction(task, card, domain.in_domain, domain.reasons, values, arrays, seconds)
    return Prediction(source, kind, structure, facts, str(registry.folder), tasks, refused)


# -- per task ---------------------------------------------------------------------------------------

def _softness(card, model, structure, facts, kind):
    if kind == "image":
        r = SoftnessPredictor(model, card.path).predict_structure(structure)
        s = r["summary"]
        values = {k: s[k] for k in ("label", "species", "reach", "region", "atoms", "interior", "mean", "std", "min",
                                    "max", "positive_fraction", "top10")}
        return values, {"softness": r["softness"], "top": r["top"], "interior": r["interior"]}
    features_on = "the structure as given"
    if model.info.get("inherent"):  # a model that learnt on inherent structures (DU21 softness) reads one
        minimum = inherent_structure(structure, ftol=model.info["inherent_ftol"])
        moved = np.linalg.norm(minimum.box.minimum_image(minimum.positions - structure.positions), axis=1)
        features_on = {"inherent_structure": True, "fmax_eV_A": minimum.info["inherent_fmax_eV_A"],
                       "max_displacement_A": float(moved.max())}
        structure = minimum
    softness = model.softness(structure)
    scored = np.isfinite(softness)
    if not scored.any():
        raise InputError(f"model {card.name!r} classifies no atom of this structure (species {model.species})")
    k = max(1, int(round(TOP_FRACTION * scored.sum())))
    top = np.zeros(len(softness), bool)
    top[np.flatnonzero(scored)[np.argsort(-softness[scored], kind="stable")[:k]]] = True
    v = softness[scored]
    values = {"label": model.label, "species": model.species, "atoms": int(scored.sum()), "features_on": features_on,
              "predicted": int(np.sum(v > 0)), "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
              "max": float(v.max()), "positive_fraction": float(np.mean(v > 0)),
              "top10": {"atoms": k, "threshold": float(softness[top].min()),
                        "indices": np.flatnonzero(top)[np.argsort(-softness[top])].tolist()},
              "softest_atom": {"index": int(np.flatnonzero(scored)[np.argmax(v)]),
                               "position": structure.positions[np.flatnonzero(scored)[np.argmax(v)]].tolist()}}
    arrays = {"softness": softness, "top": top}
    if "calibration" in model.info:  # models built by their recipe: a first-break distribution over the atoms
        p = model.break_probability(structure)
        order = np.argsort(-p, kind="stable")
        arrays["first_break_probability"] = p
        values["first_break_probability"] = {
            "max": float(p[order[0]]), "atoms_for_half": int(np.searchsorted(np.cumsum(p[order]), 0.5) + 1),
            "temperature": model.info["calibration"]["temperature"]}
    return values, arrays


def _image_scalar(card, model, structure, facts, kind):
    """mu2 or rupture strain (module docstring): periodic windows over a periodic sheet, else windows inside the
    imaged region."""
    if kind == "image" or not bool(np.all(structure.box.pbc[:2])):
        return _sliding(card, model, structure, facts)
    rendered = render_for_model(model, structure)
    image, pm = rendered.image.astype(np.float32), rendered.pixel_map
    size = model.image_settings.size
    whole = image.shape == (size, size)
    values = {"whole_cell": whole, "pixel_size": pm.pixel_size}
    arrays = {"image": image, "pixel_map": pm}
    if whole:
        values["prediction"] = float(model.predict(image[None])[0])
        maps = attention(model, image)
    else:  # a larger cell: the network's windows slid periodically; the weakest window breaks first
        grid = scan(model, image, stride=model.config.stride)
        reduce = "min" if card.task == "rupture_strain" else "mean"
        spread = {"mean": float(grid.mean()), "std": float(grid.std()), "min": float(grid.min()),
                  "max": float(grid.max())}
        values.update(prediction=spread[reduce], windows=int(grid.size), input_side=size * pm.pixel_size,
                      reduce=reduce, window_values=spread)
        arrays["window_map"] = grid
        maps = attention(model, image, transforms=flips(image.shape[-1]))
    stage = min(maps, key=lambda r: abs(r - ATTENTION_STAGE))
    values["attention_stage"] = int(stage)
    arrays["attention"] = maps[stage]
    if card.task == "mu2":
        values["measured_mu2"] = facts.mu2
    return values, arrays


def _sliding(card, model, structure, facts):
    r = ResNetPredictor(model, card.path).predict_structure(structure)
    s = r["summary"]
    values = {"prediction": r["prediction"], "windows": s["windows"], "input_side": s["input_side"],
              "pixel_size": s["pixel_size"], "stride": s["stride"]}
    for key in ("reason", "rho_defects", "attention_stage", "window_values"):
        if key in s:
            values[key] = s[key]
    if card.task == "mu2":
        values["measured_mu2"] = facts.mu2
    pm = r["pixel_map"]
    return values, {"image": r["image"], "attention": r["attention"], "windows": r["windows"],
                    "window_values": r["values"], "pixel_origin": np.asarray(pm.origin), "pixel_size": pm.pixel_size,
                    "pixel_map": pm}


def _whole_cell(card, model, structure, facts, kind):
    rendered = render_for_model(model, structure)
    image = rendered.image.astype(np.float32)
    arrays = {"image": image, "pixel_map": rendered.pixel_map}
    if card.task == "rupture_location":
        if image.shape == (model.image_settings.size,) * 2:
            predicted = model.predict(image[None])[0]
        elif model.head == "heatmap":  # a larger cell: the fully convolutional heat map over all of it
            probability = location_probability(model, image)
            arrays["probability"] = probability
            row, col = np.unravel_index(np.argmax(probability), probability.shape)
            predicted = (np.array([col, row]) + 0.5) / np.array(probability.shape[::-1])
        else:
            raise InputError(f"model {card.name!r} (pooled regression head) takes cells of its training size only")
        xy = angstrom(rendered.pixel_map, predicted)
        return {"location": np.asarray(xy, float).tolist(), "fraction": np.asarray(predicted, float).tolist(),
                "unit": "Å", "whole_cell": "probability" not in arrays}, {**arrays, "location": np.asarray(xy, float)}
    predicted = model.predict(image[None])[0]
    crack = np.asarray(predicted, float)
    return {"map_shape": list(crack.shape), "max": float(crack.max()), "mean": float(crack.mean()),
            "high_fraction": float(np.mean(crack > 0.5 * crack.max())) if crack.max() > 0 else 0.0}, \
        {**arrays, "crack": crack}


def _threshold_map(card, model, structure, facts, kind):
    if kind == "image":
        r = ListiPredictor(model, card.path).predict_structure(structure)
        s = r["summary"]
        values = {k: s[k] for k in ("kind", "radius", "spacing", "windows", "unit", "min", "mean", "max", "lowest",
                                    "reason") if k in s}
        return values, {"threshold": r["threshold"], "centres": r["centres"], "lowest": r["lowest"]}
    radius = float(model.spec.radius)
    side = float(np.min(np.diag(structure.box.cell)[:2]))
    grid = int(min(LISTI_MAX_GRID, max(2, np.ceil(side / (radius / 4)))))
    result = model.predict_map(structure, grid=grid)
    threshold = np.asarray(result["threshold"], float)
    centres = np.asarray(result["centres"], float)
    flat = threshold.ravel()
    lowest = separated_lowest(flat, centres, 5, radius)
    values = {"kind": model.kind, "radius": radius, "grid": grid, "unit": "N/m", "min": float(flat.min()),
              "mean": float(flat.mean()), "max": float(flat.max()),
              "lowest": [{"centre": centres[k].tolist(), "threshold": float(flat[k])} for k in lowest]}
    return values, {"threshold": threshold, "centres": centres, "lowest": lowest}


RUNNERS = {"first_break": _softness, "oxide_softness": _softness, "rupture_strain": _image_scalar, "mu2": _image_scalar,
           "rupture_location": _whole_cell, "crack": _whole_cell, "threshold_map": _threshold_map}
"""Per task, ``(card, model, structure, facts, input kind) → (values, arrays)``."""
