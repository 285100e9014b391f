"""Figures of a :class:`~glassfrac.imaging.prediction.Prediction` (``glassfrac predict``), one PNG per task.

Over the structure (structure input): the per-atom softness over the ring network with the top 10 %
ringed (``first_break.png``), the predicted rupture location on the rings (``rupture_location.png``), the
threshold map with its lowest windows numbered (``threshold_map.png``), and the rendered image with the
Grad-CAM attention (``rupture_strain.png``, ``mu2.png``) or the crack map (``crack.png``) laid over it.
Over the original image (image input): the figures of ``glassfrac image``
(:func:`~glassfrac.report.image_overlay.write_image_figures`), named ``TASK.softness.png``,
``TASK.attention.png``, ``TASK.listi.png``. A 3D oxide's softness is drawn as the
Al atoms, wrapped into the cell, projected on the xy plane, coloured by softness.
"""

import textwrap
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.core.errors import GlassfracError
from glassfrac.core.files import atomic_path
from glassfrac.imaging.prediction import Prediction
from glassfrac.report.image_overlay import plot_field, write_image_figures
from glassfrac.report.network_plot import plot_rings_marked
from glassfrac.report.probe_plot import plot_threshold_map

IMAGE_FIGURES = {"first_break": "softness", "rupture_strain": "cnn", "mu2": "cnn", "threshold_map": "listi"}
"""Tasks drawn over the original image, and the name :func:`write_image_figures` knows them by."""
_SUFFIXES = {"softness": ".softness.png", "cnn": ".attention.png", "listi": ".listi.png"}
"""The file endings :func:`write_image_figures` gives its figures."""


def figure_names(prediction: Prediction) -> dict:
    """Task → file name of its figure (those :func:`write_prediction_figures` will write)."""
    names = {}
    for task in prediction.tasks:
        if prediction.input == "image":
            if task in IMAGE_FIGURES:
                names[task] = f"{task}{_SUFFIXES[IMAGE_FIGURES[task]]}"
        else:
            names[task] = f"{task}.png"
    return names


def write_prediction_figures(prediction: Prediction, path_of) -> dict:
    """Write the figures; ``path_of(name)`` gives the path of each file (e.g. an
    :class:`~glassfrac.core.outputs.OutputFolder`'s ``file``). Returns task → path."""
    names = figure_names(prediction)
    if prediction.input == "image":
        return _image_figures(prediction, names, path_of)
    rings = None
    if prediction.facts.geometry == "sheet" and "Si" in prediction.facts.species:
        try:
            rings = RingAnalysis().compute(prediction.structure)
        except GlassfracError:
            rings = None
    out = {}
    title = f"{Path(prediction.source).name}: "
    for task, name in names.items():
        p = prediction.tasks[task]
        label = f"{p.card.name} {p.card.version}" + ("" if p.in_domain else " (outside its training domain)")
        path = path_of(name)
        if _draw(task, p, prediction.structure, rings, path, textwrap.fill(f"{title}{label}", 60)):
            out[task] = str(path)
    return out


def _draw(task, p, structure, rings, path, title) -> bool:
    a, v = p.arrays, p.values
    if task in ("first_break", "oxide_softness"):
        xy = structure.wrapped().positions[:, :2]  # in the cell (MD output is often unwrapped)
        shown = np.isfinite(a["softness"])
        if rings is not None:
            plot_rings_marked(rings, path, points=[("top 10 % softest", xy[a["top"]], False)],
                              values=("softness", xy[shown], a["softness"][shown]), title=title)
        else:
            _scatter(xy[shown], a["softness"][shown], a["top"][shown], path, title)
        return True
    if task == "rupture_location":
        if rings is None:
            return False
        plot_rings_marked(rings, path, points=[("predicted rupture location", np.atleast_2d(a["location"]), False)],
                          title=title)
        return True
    if task == "threshold_map":
        lowest = a["centres"][np.asarray(a["lowest"], int)]
        fig = Figure(figsize=(5.5, 5), dpi=120)
        ax = fig.subplots()
        plot_threshold_map(a["threshold"], structure.box, events=lowest, ax=ax,
                           title=f"{title}\npredicted Δτ, lowest windows numbered")
        _save(fig, path)
        return True
    field = a.get("attention") if task in ("rupture_strain", "mu2") else a.get("crack")
    if field is None or not np.isfinite(field).any():
        return False
    rows, cols = np.shape(a["image"])
    label = "Grad-CAM attention" if task != "crack" else "predicted crack map"
    value = "" if task == "crack" else f"; predicted {v['prediction']:.3f}" if v.get("prediction") is not None else ""
    plot_field(a["image"], field, (-0.5, cols - 0.5, -0.5, rows - 0.5), path, label, title=f"{title}{value}")
    return True


def _scatter(xy, values, top, path, title) -> None:
    fig = Figure(figsize=(6, 5), dpi=120)
    ax = fig.subplots()
    dots = ax.scatter(*xy.T, c=values, s=14, cmap="YlOrRd")
    ax.scatter(*xy[top].T, s=40, facecolors="none", edgecolors="k", linewidths=0.8, label="top 10 % softest")
    fig.colorbar(dots, ax=ax, label="softness")
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    _save(fig, path)


def _save(fig, path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _image_figures(prediction, names, path_of) -> dict:
    """The figures over the original image: :func:`write_image_figures` once per task, with the task as the
    file prefix (so that two image models each get their attention figure)."""
    out = {}
    for task, name in names.items():
        p = prediction.tasks[task]
        key = IMAGE_FIGURES[task]
        result = {"summary": {**p.values, "task": p.card.task}, "prediction": p.values.get("prediction"), **p.arrays}
        stem = str(path_of(name))[: -len(_SUFFIXES[key])]
        written = write_image_figures(prediction.image, prediction.built, {key: result}, stem,
                                      f"{prediction.source}: {p.card.name} {p.card.version}")
        if key in written:
            out[task] = written[key]
    return out
