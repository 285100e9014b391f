"""Grad-CAM attention of the image regressors and its physics (FC22 §8).

Attention of one image at residual stage s (feature maps f^k, k = 1..K, of h × h px):

    I_k = Σ_ij ∂t/∂f^k_ij / Z  (Z = h², the number of positions),   G_ij = |Σ_k I_k f^k_ij|,

with t the network output ``output`` (for mu2/strain the standardised prediction, for location
the fractional x or y coordinate). Every stage map is upsampled to the input size by periodic
bilinear interpolation (the images are periodic), the transform of the copy is undone, and G is
averaged over the augmented copies (FC22: 64). For a 128 px input the stages give r = 32, 16,
8, 4.

Analyses:

- :func:`participation_ratio` φ = (Σ G²)² / (N² Σ G⁴) over the N × N pixels (1: uniform,
  1/N²: one pixel);
- :func:`defect_pixels`: pixel (i, j) is 1 if its centre lies inside a non-hexagonal ring
  (:class:`~glassfrac.analysis.rings.RingAnalysis`, the imaged layer), and :func:`pearson`
  correlates G with it across pixels;
- :func:`atom_correlation`: G at the pixel of every imaged atom against a per-atom quantity
  (FC22: potential energy U);
- :func:`peak_distance`: distance (Å, periodic) from the attention maximum to a location;
- :func:`attention_divergence`: divergence of the field (G_x, G_y) of the x- and y-location
  models, periodic central differences, per Å;
- :func:`scan` and :func:`inside_probability`: a training-size window slid over a larger
  sample (rendered at the training pixel size), the predicted rupture strain per window centre,
  and the probability that the true rupture site falls in the fraction of the area with the
  lowest predicted strain (FC22 Fig. 6b). Window crops are not periodic, so the prediction per
  window is averaged over the 4 flips only. A heat-map location model is fully convolutional:
  :func:`location_probability` applies it to the whole larger periodic image (rupture-site
  probability per pixel), and the area is then selected from the most probable pixels down.
"""

from dataclasses import replace

import numpy as np
import torch
from matplotlib.path import Path as Polygon
from torch.nn import functional as F

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.core.errors import GlassfracError, InputError
from glassfrac.learn.images import (
    angstrom,
    augmentations,
    flips,
    fractional,
    image_lengths,
    pixel_sizes,
    render_sample,
)
from glassfrac.learn.training import ImageModel, atom_values, periodic_difference


def stage_attention(model: ImageModel, images, output: int = 0) -> list:
    """Raw Grad-CAM maps G per stage: list of (B, h, h) arrays (module docstring)."""
    net = model.network
    if not hasattr(net, "head_from_maps"):
        raise InputError("Grad-CAM is defined here for the regression models (mu2, strain, location)")
    net.eval()
    x = model.standardise(images)
    maps = net.stage_maps(x)
    t = net.head_from_maps(maps)[:, output]
    grads = torch.autograd.grad(t.sum(), maps)
    out = []
    for f, g in zip(maps, grads, strict=True):
        importance = g.mean(dim=(2, 3), keepdim=True)
        out.append((importance * f).sum(dim=1).abs().detach().numpy())
    return out


def upsample_periodic(maps, size: int) -> np.ndarray:
    """Maps (B, h, h) → (B, size, size) by bilinear interpolation on the torus."""
    maps = torch.as_tensor(np.asarray(maps, np.float32))[:, None]
    h = maps.shape[-1]
    if size % h:
        raise InputError(f"size {size} is not a multiple of the map size {h}")
    f = size // h
    padded = F.pad(maps, (1, 1, 1, 1), mode="circular")
    up = F.interpolate(padded, scale_factor=f, mode="bilinear", align_corners=False)
    return up[:, 0, f:-f, f:-f].numpy()


def attention(model: ImageModel, image, output: int = 0, transforms=None, batch_size: int = 64) -> dict:
    """Grad-CAM G per resolution r (dict r → (size, size)), averaged over ``transforms`` (default:
    the model's 64 copies of sample 0) with each transform undone."""
    image = np.asarray(image, np.float32)
    size = image.shape[-1]
    transforms = transforms or model.transforms(1)[0]
    sums = {}
    for lo in range(0, len(transforms), batch_size):
        chunk = transforms[lo:lo + batch_size]
        stages = stage_attention(model, np.stack([t.image(image) for t in chunk]), output)
        for g in stages:
            r = g.shape[-1]
            up = upsample_periodic(g, size)
            back = sum(t.inverse_image(u) for t, u in zip(chunk, up, strict=True))
            sums[r] = sums.get(r, 0.0) + back
    return {r: s / len(transforms) for r, s in sums.items()}


def participation_ratio(G) -> float:
    """φ = (Σ G²)² / (N² Σ G⁴) over all N² pixels of ``G``."""
    g2 = np.asarray(G, float) ** 2
    return float(g2.sum() ** 2 / (g2.size * (g2**2).sum()))


def pearson(a, b) -> float:
    """Pearson correlation of two arrays of equal size (nan if one is constant)."""
    a, b = np.ravel(a).astype(float), np.ravel(b).astype(float)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def defect_pixels(structure, pixel_map, rings=None) -> np.ndarray:
    """(rows, cols) 0/1: pixel centre inside a non-hexagonal ring (with periodic images)."""
    rings = rings or RingAnalysis().compute(structure)
    rows, cols = pixel_map.shape
    gx, gy = np.meshgrid(np.arange(cols), np.arange(rows))
    centres = pixel_map.to_angstrom(np.column_stack([gx.ravel(), gy.ravel()]))
    cell = structure.box.cell[:2, :2]
    pbc = structure.box.pbc[:2]
    shifts = [np.array([a, b]) @ cell for a in ((-1, 0, 1) if pbc[0] else (0,))
              for b in ((-1, 0, 1) if pbc[1] else (0,))]
    out = np.zeros(rows * cols, bool)
    lo, hi = centres.min(axis=0), centres.max(axis=0)
    for polygon, defect in zip(rings.ring_polygons, rings.defect_rings, strict=True):
        if not defect:
            continue
        for shift in shifts:
            p = np.asarray(polygon)[:, :2] + shift
            if np.any(p.max(axis=0) < lo) or np.any(p.min(axis=0) > hi):
                continue
            near = np.all((centres >= p.min(axis=0)) & (centres <= p.max(axis=0)), axis=1)
            if near.any():
                out[near] |= Polygon(p).contains_points(centres[near])
    return out.reshape(rows, cols).astype(np.int8)


def atom_correlation(G, uv, values) -> float:
    """Pearson correlation between G at the atoms (fractional image coordinates ``uv``) and ``values``."""
    return pearson(atom_values(np.asarray(G), np.asarray(uv)), values)


def peak_distance(G, pixel_map, location) -> float:
    """Distance (Å) from the pixel of maximum G to ``location`` (Å), periodic over the image."""
    G = np.asarray(G)
    rows, cols = G.shape
    row, col = np.unravel_index(int(np.argmax(G)), G.shape)
    peak = np.array([(col + 0.5) / cols, (row + 0.5) / rows])
    d = periodic_difference(fractional(pixel_map, np.asarray(location, float)[:2]), peak)
    return float(np.linalg.norm(d * image_lengths(pixel_map)))


def attention_divergence(gx, gy, pixel_size) -> np.ndarray:
    """∂G_x/∂x + ∂G_y/∂y (per Å) of the attention field, periodic central differences;
    ``pixel_size`` Å, one number or (x, y)."""
    px, py = np.broadcast_to(np.asarray(pixel_size, float), (2,))
    dgx = (np.roll(gx, -1, axis=1) - np.roll(gx, 1, axis=1)) / (2 * px)
    dgy = (np.roll(gy, -1, axis=0) - np.roll(gy, 1, axis=0)) / (2 * py)
    return dgx + dgy


# -- sliding window over larger samples ---------------------------------------------------------

def render_like_training(model: ImageModel, structure, pixel_size: float, seed: int = 0):
    """Render ``structure`` so that its pixels are ``pixel_size`` Å (the training images'; along
    x for ``crop="cell"``, whose y pixels are then Ly / Lx as large)."""
    settings = model.image_settings
    ratio = settings.pixels / settings.size
    lengths = np.diag(structure.box.cell)[:2]
    native = pixel_size / ratio
    pixels = int(round(lengths[0] / native))
    side = pixels if settings.crop == "cell" else int(np.floor(min(lengths) / (lengths[0] / pixels) + 1e-9))
    return render_sample(structure, replace(settings, pixels=pixels, size=int(round(side / ratio))), seed)


PIXEL_TOLERANCE = 0.25
"""Relative pixel-size mismatch up to which :func:`render_for_model` keeps the training rendering."""


def render_for_model(model: ImageModel, structure, seed: int | None = None):
    """Render ``structure`` for ``model``: as in training (``pixels`` across the box) when that
    gives pixels within ``PIXEL_TOLERANCE`` of the training pixel size (``info["pixel_size"]``),
    else at the training pixel size (:func:`render_like_training`; a sample of another size, e.g.
    from a microscope image), cropped to a multiple of the network's total stride (≥ 1 stride)."""
    seed = model.image_settings.render_seed if seed is None else seed
    rendered = render_sample(structure, model.image_settings, seed)
    pixel = model.info.get("pixel_size")
    if pixel is None or abs(rendered.pixel_map.pixel_size / pixel - 1.0) <= PIXEL_TOLERANCE:
        return rendered

    rendered = render_like_training(model, structure, pixel, seed)
    stride = model.config.stride
    side = max(stride, rendered.image.shape[0] // stride * stride)
    if side > rendered.image.shape[0]:
        raise InputError(f"the sample is smaller than one network stride ({stride} px of {pixel:.3g} Å)")
    return replace(rendered, image=rendered.image[:side, :side],
                   pixel_map=replace(rendered.pixel_map, shape=(side, side)))


def scan(model: ImageModel, image, stride: int = 16, batch_size: int = 64) -> np.ndarray:
    """Predicted value of windows of the model's size slid periodically over ``image`` (a larger
    periodic image): (rows / stride, cols / stride), entry (a, b) for the window centred on the
    cell of pixels [a·stride, (a+1)·stride) × [b·stride, (b+1)·stride); averaged over the 4 flips."""
    if model.task not in ("mu2", "strain"):
        raise InputError("scan needs a scalar model (mu2 or strain)")
    image = np.asarray(image, np.float32)
    size = model.image_settings.size
    rows, cols = image.shape
    if rows % stride or cols % stride:
        raise InputError(f"the image ({rows} × {cols} px) must be a multiple of the stride {stride}")
    four = flips(size)
    c = stride // 2
    windows = [np.roll(image, (size // 2 - a - c, size // 2 - b - c), (0, 1))[:size, :size]
               for a in range(0, rows, stride) for b in range(0, cols, stride)]
    values = model.predict_raw(np.stack([t.image(w) for w in windows for t in four]), batch_size)
    return values.reshape(rows // stride, cols // stride, len(four)).mean(axis=2)


def location_probability(model: ImageModel, image, n_shifts: int = 16, seed: int = 0) -> np.ndarray:
    """Rupture-site probability per pixel (sums to 1) of a periodic ``image`` of any size (a
    multiple of the network stride) from a heat-map location model: softmax of the logits over
    the pixels, averaged over ``n_shifts`` random periodic shifts × 4 flips, each undone."""
    if model.head != "heatmap":
        raise InputError("location_probability needs a heat-map location model (head='heatmap')")
    image = np.asarray(image, np.float32)
    transforms = augmentations(image.shape[-1], n_shifts, seed)
    net = model.network.eval()
    out = np.zeros(image.shape)
    for lo in range(0, len(transforms), 16):
        chunk = transforms[lo:lo + 16]
        with torch.no_grad():
            logits = net.heatmap(model.standardise(np.stack([t.image(image) for t in chunk])))[:, 0]
        p = torch.softmax(logits.reshape(len(chunk), -1), dim=1).reshape(logits.shape).numpy()
        out += sum(t.inverse_image(q) for t, q in zip(chunk, p, strict=True))
    return out / len(transforms)


def inside_probability(maps, locations, fractions) -> np.ndarray:
    """P(true location inside the ``fraction`` of the area with the lowest map value), per fraction.

    ``maps``: per sample a (a, b) map (e.g. :func:`scan`) covering the periodic image;
    ``locations``: per sample fractional image coordinates (x, y). A window-grid cell is selected
    when its value is at most the ``fraction`` quantile of the map (ties included).
    """
    out = np.zeros(len(fractions))
    for m, u in zip(maps, locations, strict=True):
        m = np.asarray(m, float)
        here = atom_values(m, np.asarray(u, float)[None])[0]
        rank = (np.sum(m < here) + np.sum(m == here)) / m.size  # fraction needed to include this cell
        out += rank <= np.asarray(fractions) + 1e-12
    return out / len(maps)


# -- one structure --------------------------------------------------------------------------------

def explain(model: ImageModel, structure, energies=None, rings=None, render_seed: int | None = None) -> dict:
    """Prediction, Grad-CAM maps per resolution and their statistics for one structure
    (rendered by :func:`render_for_model`).

    Returns ``image``, ``pixel_map``, ``prediction`` (target units; location in Å), ``maps``
    (per output — "t", or "x" and "y" for a location model — a dict r → G), ``defects`` (pixel
    defect map, None if the rings cannot be found), ``divergence`` (location models) and
    ``stats``: per output and r, φ, ρ(G, D) and, when given, ρ(G, U) with ``energies`` per atom
    (eV) and the peak-to-rupture distance (Å) when ``info`` has ``rupture_location``.
    """
    rendered = render_for_model(model, structure, render_seed)
    image, pm = rendered.image, rendered.pixel_map
    prediction = model.predict(image[None])[0]
    if model.task == "location":
        prediction = angstrom(pm, prediction)
    outputs = {"x": 0, "y": 1} if model.task == "location" else {"t": 0}
    transforms = model.transforms(1)[0]
    maps = {name: attention(model, image, k, transforms) for name, k in outputs.items()}
    try:
        defects = defect_pixels(structure, pm, rings)
    except GlassfracError:
        defects = None
    uv = fractional(pm, structure.positions[rendered.atoms, :2])
    location = structure.info.get("rupture_location")
    stats = {}
    for name, by_r in maps.items():
        stats[name] = {}
        for r, G in by_r.items():
            item = {"phi": participation_ratio(G),
                    "rho_defects": None if defects is None else pearson(G, defects)}
            if energies is not None:
                item["rho_energy"] = atom_correlation(G, uv, np.asarray(energies)[rendered.atoms])
            if location is not None:
                item["peak_distance"] = peak_distance(G, pm, location)
            stats[name][r] = item
    out = {"image": image, "pixel_map": pm, "prediction": prediction, "maps": maps, "defects": defects,
           "stats": stats, "atoms": rendered.atoms}
    if model.task == "location":
        r = max(maps["x"])
        out["divergence"] = attention_divergence(maps["x"][r], maps["y"][r], pixel_sizes(pm))
    return out
