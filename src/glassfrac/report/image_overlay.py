"""Figures over a microscope image: Si detections (for checking and writing corrections) and
the predictions of trained models on the structure built from it.

The image is drawn as viewers show it (row 0 at the top) with axes in pixel coordinates
(x = column, y = row, pixel centres at integers), the coordinates of a corrections file.

- :func:`plot_detections`: detections are open cyan circles; atoms added by corrections green
  plus signs; removed ones red crosses; Si–Si bonds yellow lines; under-coordinated Si orange
  dots; the region of interest a dashed outline.
- :func:`plot_atom_values`: a value per atom (softness) as coloured dots, diverging around 0;
  atoms left out of the summary (too near the edge) as grey rings; marked atoms (the top 10 %)
  with a black rim.
- :func:`plot_field`: a map (Grad-CAM attention, threshold map) laid semi-transparently over
  the image with its extent in pixel coordinates, optional circles (the lowest-threshold
  windows, numbered from the lowest).
"""

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from glassfrac.core.files import atomic_path


def plot_detections(image, positions, path=None, roi=None, added=None, removed=None, bonds=None,
                    undercoordinated=None, title: str | None = None, dpi: int = 150):
    """Draw ``positions`` (N, 2) px on ``image``; write a PNG to ``path`` (atomically) if given.

    ``roi``: a :class:`~glassfrac.imaging.detect.Roi`; ``added``: indices into ``positions``;
    ``removed``: (K, 2) px; ``bonds``: (E, 2) index pairs into ``positions``;
    ``undercoordinated``: indices. Returns the matplotlib figure.
    """

    positions = np.asarray(positions, float).reshape(-1, 2)
    fig, ax = _image_axes(image)
    rows, cols = np.shape(image)
    size = max(4.0, 2400.0 / max(rows, cols))
    if bonds is not None and len(bonds):
        segments = positions[np.asarray(bonds, int)]
        ax.add_collection(LineCollection(segments, colors="#ffd000", linewidths=0.6, alpha=0.8))
    added = np.zeros(0, int) if added is None else np.asarray(added, int)
    original = np.setdiff1d(np.arange(len(positions)), added)
    ax.scatter(*positions[original].T, s=size, facecolors="none", edgecolors="#00e5ff", linewidths=0.7,
               label=f"detected ({len(original)})")
    if len(added):
        ax.scatter(*positions[added].T, s=size * 1.5, marker="+", c="#00ff40", linewidths=1.0,
                   label=f"added ({len(added)})")
    if removed is not None and len(removed):
        ax.scatter(*np.asarray(removed, float).reshape(-1, 2).T, s=size * 1.5, marker="x", c="#ff2020",
                   linewidths=1.0, label=f"removed ({len(removed)})")
    if undercoordinated is not None and len(undercoordinated):
        ax.scatter(*positions[np.asarray(undercoordinated, int)].T, s=size * 0.4, c="#ff8c00",
                   label=f"fewer than 3 bonds ({len(undercoordinated)})")
    if roi is not None:
        if roi.kind == "rect":
            x0, y0, x1, y1 = roi.values
            patch = Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", ec="#ff00ff", lw=1.0)
        else:
            cx, cy, r = roi.values
            patch = Circle((cx, cy), r, fill=False, ls="--", ec="#ff00ff", lw=1.0)
        ax.add_patch(patch)
    ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    return _finish(fig, ax, np.shape(image), path, title, dpi)


def plot_atom_values(image, positions, values, path=None, label: str = "softness", included=None, marked=None,
                     title: str | None = None, dpi: int = 150):
    """Atoms at ``positions`` (N, 2) px coloured by ``values`` (N,; NaN: not drawn) on ``image``.

    ``included`` (N,) bool: atoms of the summary (others drawn as grey rings); ``marked`` (N,)
    bool: atoms given a black rim. Writes a PNG to ``path`` if given; returns the figure.
    """

    positions = np.asarray(positions, float).reshape(-1, 2)
    values = np.asarray(values, float)
    fig, ax = _image_axes(image)
    rows, cols = np.shape(image)
    size = max(6.0, 3600.0 / max(rows, cols))
    shown = np.isfinite(values)
    included = shown if included is None else shown & np.asarray(included, bool)
    edge = shown & ~included
    if edge.any():
        ax.scatter(*positions[edge].T, s=size, facecolors="none", edgecolors="#b0b0b0", linewidths=0.6,
                   label=f"near the edge ({edge.sum()})")
    if included.any():
        v = values[included]
        m = max(float(np.max(np.abs(v))), 1e-12)
        norm = TwoSlopeNorm(0.0, -m, m) if v.min() < 0 < v.max() else None
        dots = ax.scatter(*positions[included].T, s=size, c=v, cmap="coolwarm", norm=norm,
                          vmin=None if norm else v.min(), vmax=None if norm else v.max(), edgecolors="none")
        fig.colorbar(dots, ax=ax, fraction=0.046, pad=0.02, label=label)
    if marked is not None and np.any(marked):
        mark = np.asarray(marked, bool) & shown
        ax.scatter(*positions[mark].T, s=size * 1.8, facecolors="none", edgecolors="black", linewidths=0.9,
                   label=f"top 10 % ({mark.sum()})")
    if edge.any() or (marked is not None and np.any(marked)):
        ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    return _finish(fig, ax, (rows, cols), path, title, dpi)


def plot_field(image, field, extent, path=None, label: str = "", cmap: str = "inferno", alpha: float = 0.55,
               circles=None, radius: float | None = None, title: str | None = None, dpi: int = 150):
    """``field`` (r, c) (NaN: transparent) over ``image``; ``extent`` (x0, x1, y0, y1): the pixel
    coordinates of the outer edges of the field's first and last columns and rows (row 0 at
    y0). ``circles`` (K, 2) px centres of circles of ``radius`` px, numbered 1..K."""

    fig, ax = _image_axes(image)
    field = np.ma.masked_invalid(np.asarray(field, float))
    x0, x1, y0, y1 = extent
    shown = ax.imshow(field, cmap=cmap, alpha=alpha, origin="upper", extent=(x0, x1, y1, y0),
                      interpolation="nearest")
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02, label=label)
    bar.formatter.set_useOffset(False)
    bar.update_ticks()
    if circles is not None:
        for k, (cx, cy) in enumerate(np.asarray(circles, float).reshape(-1, 2)):
            ax.add_patch(Circle((cx, cy), radius, fill=False, ec="#00ff60", lw=1.2))
            ax.plot(cx, cy, "+", color="#00ff60", ms=6)
            ax.annotate(str(k + 1), (cx, cy), xytext=(4, 4), textcoords="offset points", color="#00ff60", fontsize=8)
    return _finish(fig, ax, np.shape(image), path, title, dpi)


def _image_axes(image):
    """Figure and axes with ``image`` in grey, pixel coordinates, row 0 at the top."""

    image = np.asarray(image, float)
    rows, cols = image.shape
    fig = Figure(figsize=(7.0, 7.0 * rows / cols))
    ax = fig.add_subplot()
    lo, hi = np.percentile(image, [0.5, 99.5])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, origin="upper",
              extent=(-0.5, cols - 0.5, rows - 0.5, -0.5), interpolation="nearest")
    return fig, ax


def _finish(fig, ax, shape, path, title, dpi):
    rows, cols = shape
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xlabel("x (pixel column)")
    ax.set_ylabel("y (pixel row)")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    return fig


# -- figures over the original image --------------------------------------------------------------

def write_image_figures(image, built, results: dict, prefix, title: str = "") -> dict:
    """PNG figures of ``results`` (:func:`~glassfrac.imaging.build.apply_predictors` of the
    predictors of :mod:`glassfrac.imaging.predict`) over the original ``image``, at ``PREFIX.softness.png``,
    ``PREFIX.attention.png`` and ``PREFIX.listi.png``; returns their paths by predictor name.

    Atoms are drawn at their detected pixels (``pixel_xy``); maps in Å are placed with the
    inverse of the build's scale, pixel = x / (Å per pixel) − 0.5 (:meth:`BuiltStructure.pixel_map`).
    """
    to_px = built.pixel_map(np.shape(image)).to_pixels
    prefix = str(prefix)
    head = f"{title}\n" if title else ""
    paths = {}
    mu2 = built.summary()["mu2"]
    measured = "n/a" if mu2 is None else f"{mu2:.3f}"
    if "softness" in results:
        r = results["softness"]
        s = r["summary"]
        paths["softness"] = f"{prefix}.softness.png"
        plot_atom_values(image, built.structure.arrays["pixel_xy"], r["softness"], paths["softness"], "softness",
                         included=r["interior"], marked=r["top"],
                         title=f"{head}softness: mean {s['mean']:.2f} over {s['interior']} interior Si "
                               f"({s['reach']:.1f} Å from the edge); ringed: top 10 %")
    if "cnn" in results and results["cnn"]["prediction"] is not None:
        r = results["cnn"]
        pm = r["pixel_map"]
        x0, x1, y0, y1 = pm.extent
        (a, b), (c, d) = to_px(np.array([[x0, y0], [x1, y1]]))
        paths["cnn"] = f"{prefix}.attention.png"
        s = r["summary"]
        plot_field(image, r["attention"], (a, c, b, d), paths["cnn"], f"Grad-CAM G (stage r = {s['attention_stage']})",
                   title=f"{head}{s['task']} predicted {r['prediction']:.3f} (mean of {s['windows']} windows of "
                         f"{s['input_side']:.1f} Å), measured mu2 {measured}"
                         + ("" if s["rho_defects"] is None else f"; ρ(G, defects) {s['rho_defects']:.2f}"))
    if "listi" in results and len(results["listi"]["centres"]):
        r = results["listi"]
        s = r["summary"]
        centres, spacing = r["centres"], s["spacing"]
        lo = centres.min(axis=0)
        index = np.rint((centres - lo) / spacing).astype(int)
        grid = np.full(index.max(axis=0)[::-1] + 1, np.nan)
        grid[index[:, 1], index[:, 0]] = r["threshold"]
        (a, b), (c, d) = to_px(np.array([lo - spacing / 2, lo + (index.max(axis=0) + 0.5) * spacing]))
        paths["listi"] = f"{prefix}.listi.png"
        plot_field(image, grid, (a, c, b, d), paths["listi"], "predicted Δτ (N/m)", cmap="viridis", alpha=0.6,
                   circles=to_px(centres[r["lowest"]]), radius=s["radius"] / built.angstrom_per_pixel,
                   title=f"{head}LISTI {s['kind']}: Δτ min {s['min']:.3f}, mean {s['mean']:.3f} N/m; "
                         f"circles: the {len(r['lowest'])} lowest separate windows (r = {s['radius']:.0f} Å)")
    return paths
