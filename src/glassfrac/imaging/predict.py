"""Trained predictors on a structure built from a microscope image (FC22 §9, LISTI25).

Thin adapters over the models of :mod:`glassfrac.learn`, each with ``predict_structure(structure)
→ dict`` for :func:`~glassfrac.imaging.build.apply_predictors`:

- :class:`SoftnessPredictor` (``softness``, :class:`~glassfrac.learn.svm.SoftnessModel`): the
  softness of every atom of the model's species;
- :class:`ResNetPredictor` (``cnn``, :class:`~glassfrac.learn.training.ImageModel`, mu2 or
  strain): the scalar of the model and its Grad-CAM attention map;
- :class:`ListiPredictor` (``listi``, :class:`~glassfrac.learn.listi.ListiModel`): the local
  shear-stress threshold Δτ (N/m) of windows over the sample.

The imaged region is the convex hull of the detected Si (before relaxation, which can push
edge atoms outwards by several Å). An input that reaches past its edge sees a
cut network (edge Si with partners missing), which no model was trained on, so:

- softness: a Si is ``interior`` when the descriptor's reach (its radial cutoff, at most the
  last radial centre + 5 widths, or the angular cutoff if larger; × 1 + ε for a descriptor
  with a strained copy) lies inside the hull; the
  summary is over interior Si (over all when there are none: ``region`` says which);
- ResNet: the structure is rendered with the FC22 photon model at the pixel size of the
  model's training images (``info["pixel_size"]``, the model's background photons per Å²,
  seed ``render_seed``) over a square holding the hull (square pixels; a model trained with
  ``crop="cell"`` saw pixels stretched along y by its cells' Ly / Lx, about 1); square
  windows of the model's input size, ``stride`` px apart, are kept where they lie inside
  the hull. Each window's value is
  the mean over its 4 flips (a crop is not periodic, so no translations), the prediction the
  mean over windows. Grad-CAM (:func:`glassfrac.learn.gradcam.attention`, finest stage, the 4
  flips undone) is averaged where windows overlap, each window weighted by a sin² taper
  (0.05 at its border, 1 at its centre), since a crop's border meets the network's periodic
  padding; NaN outside every window. ``rho_defects``: its Pearson correlation with the
  pixels inside non-hexagonal rings (FC22's ρ(G, D));
- LISTI: window centres on a square grid ``spacing`` Å apart, anchored at the lowest Si
  coordinates (so the grid moves with the image content), kept where the window disc
  (the model's radius) lies inside the hull. The ``lowest`` windows reported and marked
  are the lowest-threshold ones at least one radius apart (distinct weak spots rather than
  the neighbouring windows of one).

Positions are those of the structure given: apply them to the relaxed build (``--relax``),
as the models were trained on relaxed samples (Si–Si ≈ 3.0 Å for the Yukawa potential; the
bond-length feature of the LISTI graphs is in units of 0.05 Å).
"""

from dataclasses import replace
from pathlib import Path

import numpy as np

from glassfrac.analysis.structure_functions import GAUSSIAN_REACH
from glassfrac.core.errors import GlassfracError, InputError
from glassfrac.imaging.build import hull_depth
from glassfrac.learn.gradcam import attention, defect_pixels, pearson
from glassfrac.learn.images import flips
from glassfrac.learn.listi import ListiModel
from glassfrac.learn.render import PixelMap, render
from glassfrac.learn.svm import SoftnessModel
from glassfrac.learn.training import ImageModel
from glassfrac.structure import Box, Structure

TOP_FRACTION = 0.10
"""Fraction of the softest atoms reported (FC22, DU21: the top 10 %)."""


def _si_xy(structure: Structure) -> np.ndarray:
    """Si positions (Å) whose hull is the imaged region: the detections (``pixel_xy`` at the
    build's ``angstrom_per_pixel``) for a structure built from an image, which relaxation does
    not move; else the Si positions."""
    si = structure.species == "Si"
    if not si.any():
        raise InputError("the structure has no Si (the imaged region is the hull of the Si)")
    scale = structure.info.get("angstrom_per_pixel")
    if "pixel_xy" in structure.arrays and scale:
        return PixelMap(float(scale)).to_angstrom(structure.arrays["pixel_xy"][si])
    return structure.positions[si, :2]


def _stats(values) -> dict:
    values = np.asarray(values, float)
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "max": float(values.max())}


# -- softness -------------------------------------------------------------------------------------

class SoftnessPredictor:
    """Softness per atom from a :class:`~glassfrac.learn.svm.SoftnessModel` (module docstring)."""

    def __init__(self, model, path=None):
        self.model = model
        self.path = None if path is None else str(path)

    @classmethod
    def load(cls, path) -> "SoftnessPredictor":
        return cls(SoftnessModel.load(path), path)

    @property
    def reach(self) -> float:
        """How far (Å) the descriptor looks from an atom (times 1 + ε when it adds a strained copy)."""

        d = self.model.descriptor
        radial = min(d.cutoff, max(d.radial_centers) + GAUSSIAN_REACH * d.radial_width)
        reach = max(radial, d.angular_cutoff if d.angular else 0.0)
        return float(reach * (1.0 + abs(d.strain or 0.0)))

    def predict_structure(self, structure: Structure) -> dict:
        """``softness`` (N,) (NaN for other species), ``interior`` and ``top`` (N,) bool (the
        ``TOP_FRACTION`` softest of the summarised atoms), ``summary``."""
        softness = self.model.softness(structure)
        scored = np.isfinite(softness)
        depth = hull_depth(structure.positions[:, :2], _si_xy(structure))
        interior = scored & (depth >= self.reach)
        region = "interior" if interior.any() else "all"
        pool = interior if interior.any() else scored
        values = softness[pool]
        k = max(1, int(round(TOP_FRACTION * len(values))))
        top = np.zeros(len(softness), bool)
        top[np.flatnonzero(pool)[np.argsort(-values, kind="stable")[:k]]] = True
        summary = {"model": self.path, "label": self.model.label, "species": self.model.species,
                   "reach": self.reach, "region": region, "atoms": int(scored.sum()), "interior": int(interior.sum()),
                   **_stats(values), "positive_fraction": float(np.mean(values > 0)),
                   "top10": {"atoms": k, "threshold": float(np.min(softness[top])),
                             "mean": float(np.mean(softness[top]))}}
        return {"softness": softness, "interior": interior, "top": top, "summary": summary}


# -- ResNet ---------------------------------------------------------------------------------------

class ResNetPredictor:
    """Scalar (mu2 or rupture strain) and Grad-CAM of an :class:`~glassfrac.learn.training.ImageModel`
    slid over the rendered structure (module docstring); ``stride`` px (default a quarter of the
    model's input side)."""

    def __init__(self, model, path=None, stride: int | None = None):
        if model.task not in ("mu2", "strain"):
            raise InputError(f"the image model predicts {model.task!r}; on images, mu2 and strain models are "
                             "supported", path)
        if "pixel_size" not in model.info:
            raise InputError("the model file does not record the pixel size of its training images", path)
        self.model = model
        self.path = None if path is None else str(path)
        self.size = int(model.image_settings.size)
        self.stride = int(stride or max(1, self.size // 4))
        if self.stride < 1:
            raise InputError(f"stride must be positive, got {stride}")

    @classmethod
    def load(cls, path, stride: int | None = None) -> "ResNetPredictor":
        return cls(ImageModel.load(path), path, stride)

    @property
    def pixel_size(self) -> float:
        """Å per pixel of the network input (that of the training images)."""
        return float(self.model.info["pixel_size"])

    def render(self, structure: Structure):
        """The structure rendered as the training images were (module docstring), over an open
        square box holding its atoms: a :class:`~glassfrac.learn.render.RenderedImage`."""
        settings = self.model.image_settings
        xy = structure.positions[:, :2]
        lo = xy.min(axis=0) - 2.0
        out = int(np.ceil((np.ptp(xy, axis=0).max() + 4.0) / self.pixel_size))
        side = out * self.pixel_size
        native = max(1, int(round(out * settings.pixels / settings.size)))
        square = Structure(xy, structure.species, Box([side, side], pbc=False, origin=lo))
        rs = replace(settings.render_settings(side * side), pixels=native, output=out)
        return render(square, rs, seed=settings.render_seed)

    def windows(self, structure: Structure, pixel_map: PixelMap) -> np.ndarray:
        """(W, 2) (row, col) of the top-left pixel of the windows inside the hull of the Si."""
        rows, cols = pixel_map.shape
        r0 = np.arange(0, rows - self.size + 1, self.stride)
        c0 = np.arange(0, cols - self.size + 1, self.stride)
        corners = np.array([[r, c] for r in r0 for c in c0], int).reshape(-1, 2)
        if not len(corners):
            return corners
        lo = np.asarray(pixel_map.origin) + pixel_map.pixel_size * corners[:, ::-1]
        square = self.size * pixel_map.pixel_size * np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
        points = (lo[:, None, :] + square[None]).reshape(-1, 2)
        inside = (hull_depth(points, _si_xy(structure)) >= 0).reshape(-1, 4).all(axis=1)
        return corners[inside]

    def predict_structure(self, structure: Structure) -> dict:
        """``prediction`` (mean over windows, target units; None without a window), ``windows``
        (W, 4) (x0, y0, x1, y1) Å, ``values`` (W,), ``attention`` (rows, cols) Grad-CAM on the
        rendered ``image`` with its ``pixel_map`` (Å), ``summary``."""

        rendered = self.render(structure)
        image, pm = rendered.image.astype(np.float32), rendered.pixel_map
        corners = self.windows(structure, pm)
        n = self.size
        four = flips(n)
        summary = {"model": self.path, "task": self.model.task, "input_side": n * pm.pixel_size,
                   "pixel_size": pm.pixel_size, "stride": self.stride, "windows": int(len(corners))}
        out = {"image": image, "pixel_map": pm, "windows": np.zeros((0, 4)), "values": np.zeros(0),
               "attention": np.full(image.shape, np.nan), "prediction": None}
        if not len(corners):
            w, h = np.ptp(_si_xy(structure), axis=0)
            summary.update(prediction=None, reason=f"the imaged area ({w:.1f} × {h:.1f} Å) holds no square of the "
                                                   f"model's input side {n * pm.pixel_size:.1f} Å")
            return {**out, "summary": summary}
        crops = np.stack([image[r:r + n, c:c + n] for r, c in corners])
        values = self.model.predict_raw(np.stack([t.image(w) for w in crops for t in four])).reshape(-1, 4).mean(1)
        taper = 0.05 + 0.95 * np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2
        weight = np.outer(taper, taper)
        total, count = np.zeros(image.shape), np.zeros(image.shape)
        stage = None
        for (r, c), crop in zip(corners, crops, strict=True):
            maps = attention(self.model, crop, 0, four)
            stage = max(maps)
            total[r:r + n, c:c + n] += weight * maps[stage]
            count[r:r + n, c:c + n] += weight
        lo = np.asarray(pm.origin) + pm.pixel_size * corners[:, ::-1]
        boxes = np.column_stack([lo, lo + n * pm.pixel_size])
        prediction = float(values.mean())
        field = np.full(image.shape, np.nan)
        covered = count > 0
        field[covered] = total[covered] / count[covered]
        summary.update(prediction=prediction, window_values=_stats(values), attention_stage=stage,
                       rho_defects=_defect_correlation(structure, pm, field),
                       model_test=self.model.info.get("test", {}).get("model"))
        return {**out, "windows": boxes, "values": values, "attention": field, "prediction": prediction,
                "summary": summary}


def _defect_correlation(structure, pixel_map, field) -> float | None:
    """Pearson correlation (FC22) over the covered pixels between the attention and the pixel
    map of non-hexagonal rings; None when the rings cannot be found."""

    try:
        defects = defect_pixels(structure, pixel_map)
    except GlassfracError:
        return None
    covered = np.isfinite(field)
    return pearson(field[covered], defects[covered])


# -- LISTI ----------------------------------------------------------------------------------------

class ListiPredictor:
    """Δτ map of a :class:`~glassfrac.learn.listi.ListiModel` over the windows inside the imaged
    region (module docstring); ``spacing`` Å between centres (default a quarter of the window
    radius), ``load_angle`` radians, ``lowest`` windows marked."""

    def __init__(self, model, path=None, spacing: float | None = None, load_angle: float = 0.0, lowest: int = 5):
        self.model = model
        self.path = None if path is None else str(path)
        self.radius = float(model.spec.radius)
        self.spacing = float(spacing or self.radius / 4)
        if self.spacing <= 0:
            raise InputError(f"spacing must be positive, got {spacing}")
        self.load_angle = float(load_angle)
        self.lowest = int(lowest)

    @classmethod
    def load(cls, path, **options) -> "ListiPredictor":
        return cls(ListiModel.load(path), path, **options)  # weights that do not fit: an InputError

    def centres(self, structure: Structure) -> np.ndarray:
        """(n, 2) Å: grid points whose window disc lies inside the hull of the Si."""
        si = _si_xy(structure)
        lo, hi = si.min(axis=0), si.max(axis=0)
        gx = lo[0] + np.arange(0.0, hi[0] - lo[0] + 1e-9, self.spacing)
        gy = lo[1] + np.arange(0.0, hi[1] - lo[1] + 1e-9, self.spacing)
        grid = np.column_stack([a.ravel() for a in np.meshgrid(gx, gy, indexing="xy")])
        return grid[hull_depth(grid, si) >= self.radius]

    def predict_structure(self, structure: Structure) -> dict:
        """``threshold`` (n,) N/m at ``centres`` (n, 2) Å, ``lowest`` indices (ascending
        threshold, each window at least one radius from the lower ones), ``summary``."""
        centres = self.centres(structure)
        summary = {"model": self.path, "kind": self.model.kind, "radius": self.radius, "spacing": self.spacing,
                   "load_angle_degrees": float(np.degrees(self.load_angle)), "windows": int(len(centres)),
                   "unit": "N/m"}
        if not len(centres):
            w, h = np.ptp(_si_xy(structure), axis=0)
            summary["reason"] = (f"the imaged area ({w:.1f} × {h:.1f} Å) holds no window of radius "
                                 f"{self.radius:.1f} Å")
            return {"threshold": np.zeros(0), "centres": centres, "lowest": np.zeros(0, int), "summary": summary}
        result = self.model.predict_map(structure, centres=centres, load_angle=self.load_angle)
        threshold = np.asarray(result["threshold"], float)
        lowest = separated_lowest(threshold, centres, self.lowest, self.radius)
        summary.update(_stats(threshold), seconds=result["seconds"],
                       lowest=[{"centre": centres[k].tolist(), "threshold": float(threshold[k])} for k in lowest])
        return {"threshold": threshold, "centres": centres, "lowest": lowest, "summary": summary}


def separated_lowest(values, centres, k: int, distance: float) -> np.ndarray:
    """Up to ``k`` indices in ascending ``values``, skipping centres closer than ``distance`` to a
    chosen one (distinct low-threshold regions rather than one region's neighbouring windows)."""
    chosen = []
    for i in np.argsort(values, kind="stable"):
        if len(chosen) == k:
            break
        if all(np.linalg.norm(centres[i] - centres[j]) >= distance for j in chosen):
            chosen.append(int(i))
    return np.array(chosen, int)


def load_predictors(softness=None, cnn=None, listi=None, stride: int | None = None, spacing: float | None = None,
                    load_angle: float = 0.0) -> dict:
    """``{name: predictor}`` for the model files (or folders holding one) given; None: left out."""
    out = {}
    if softness is not None:
        out["softness"] = SoftnessPredictor.load(_model_file(softness, "softness"))
    if cnn is not None:
        out["cnn"] = ResNetPredictor.load(_model_file(cnn, "ResNet"), stride)
    if listi is not None:
        out["listi"] = ListiPredictor.load(_model_file(listi, "LISTI"), spacing=spacing, load_angle=load_angle)
    return out


def _model_file(path, what: str) -> Path:
    """``path`` itself, or the one ``.safetensors`` file of a folder."""
    path = Path(path)
    if not path.is_dir():
        return path
    files = sorted(path.glob("*.safetensors"))
    if len(files) != 1:
        raise InputError(f"expected one {what} model (.safetensors) in the folder, found {len(files)}", path)
    return files[0]
