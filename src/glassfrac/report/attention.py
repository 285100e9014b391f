"""Figures of the image models: Grad-CAM attention over the sample, attention field, test-set
predictions, crack maps, the distribution of crack MCC, P(rupture inside) versus selected area.

Images are drawn with ``origin="lower"`` and the ``extent`` of their pixel map, so they sit on
the sample's coordinates in Å (x right, y up) as in the other figures of glassfrac.
"""

import numpy as np
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from glassfrac.core.files import save_png


def _overlay(ax, image, G, pixel_map, defects=None, alpha=0.6):
    """Grey sample image with G (scaled from its minimum to its maximum) in transparent-to-yellow,
    defect rings outlined."""
    extent = pixel_map.extent
    ax.imshow(image, origin="lower", extent=extent, cmap="gray", interpolation="nearest")
    cmap = LinearSegmentedColormap.from_list("attention", [(1, 1, 0, 0), (1, 0.9, 0, 1)])
    span = float(G.max() - G.min())
    handle = ax.imshow((G - G.min()) / (span or 1.0), origin="lower", extent=extent, cmap=cmap, vmin=0, vmax=1,
                       alpha=alpha, interpolation="bilinear")
    if defects is not None and np.any(defects):
        ax.contour(defects, levels=[0.5], origin="lower", extent=extent, colors="tab:cyan", linewidths=0.6)
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    return handle


def plot_attention(image, maps: dict, pixel_map, path, defects=None, location=None, stats: dict | None = None,
                   title: str = "") -> None:
    """One panel per resolution r (dict r → G): the sample with its attention; defect rings
    (cyan) and the true rupture location (white square) when given; ``stats`` per r (φ, ρ) in
    the panel titles."""
    rs = sorted(maps, reverse=True)
    fig = Figure(figsize=(3.6 * len(rs), 3.8), dpi=120)
    axes = fig.subplots(1, len(rs), squeeze=False)
    for ax, r in zip(axes[0], rs, strict=True):
        _overlay(ax, image, maps[r], pixel_map, defects)
        label = f"r = {r}"
        if stats and r in stats:
            label += "  " + ", ".join(f"{k} = {v:.2f}" for k, v in stats[r].items() if v is not None)
        ax.set_title(label, fontsize=8)
        if location is not None:
            ax.plot(*location[:2], "s", mfc="none", mec="white", ms=9, mew=1.5)
    fig.suptitle(title, fontsize=9)
    save_png(fig, path)


def plot_attention_field(image, gx, gy, divergence, pixel_map, path, location=None, predicted=None,
                         step: int = 8) -> None:
    """Attention field (G_x, G_y) as arrows over the divergence (blue < 0 < red); true location
    (circle) and predicted one (star)."""
    fig = Figure(figsize=(5.5, 5.0), dpi=120)
    ax = fig.subplots()
    extent = pixel_map.extent
    ax.imshow(image, origin="lower", extent=extent, cmap="gray", interpolation="nearest", alpha=0.5)
    lim = np.abs(divergence).max() or 1.0
    handle = ax.imshow(divergence, origin="lower", extent=extent, cmap="coolwarm", vmin=-lim, vmax=lim, alpha=0.6)
    rows, cols = gx.shape
    y, x = np.mgrid[step // 2:rows:step, step // 2:cols:step]
    xy = pixel_map.to_angstrom(np.column_stack([x.ravel(), y.ravel()]))
    ax.quiver(xy[:, 0], xy[:, 1], gx[y, x].ravel(), gy[y, x].ravel(), color="k", width=0.003)
    if location is not None:
        ax.plot(*location[:2], "o", mfc="none", mec="k", ms=10, mew=1.5, label="true")
    if predicted is not None:
        ax.plot(*predicted[:2], "*", color="gold", mec="k", ms=12, label="predicted")
    if location is not None or predicted is not None:
        ax.legend(frameon=False, fontsize=8, loc="upper right")
    fig.colorbar(handle, ax=ax, label="div G (1/Å)")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    save_png(fig, path)


def plot_predictions(truth, predicted, path, label: str, baseline=None, metrics: dict | None = None) -> None:
    """Test-set predictions against the truth (one panel per component), diagonal, optional
    constant baseline line."""
    truth, predicted = np.atleast_2d(np.asarray(truth, float).T).T, np.atleast_2d(np.asarray(predicted, float).T).T
    n = truth.shape[1]
    fig = Figure(figsize=(4.0 * n, 4.0), dpi=120)
    axes = fig.subplots(1, n, squeeze=False)
    for k, ax in enumerate(axes[0]):
        t, p = truth[:, k], predicted[:, k]
        lo, hi = min(t.min(), p.min()), max(t.max(), p.max())
        ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
        if baseline is not None:
            ax.axhline(np.atleast_1d(baseline)[k], color="tab:red", ls=":", lw=1, label="baseline")
            ax.legend(frameon=False, fontsize=8)
        ax.plot(t, p, "o", ms=3, alpha=0.7)
        ax.set_xlabel(f"true {label}{'' if n == 1 else ' ' + 'xy'[k]}")
        ax.set_ylabel("predicted")
    if metrics:
        fig.suptitle(", ".join(f"{k} = {v:.3g}" for k, v in metrics.items()), fontsize=9)
    save_png(fig, path)


def plot_crack(image, prediction, pixel_map, atoms_xy, labels, path, mcc: float | None = None) -> None:
    """Predicted crack intensity (green) over the sample, true crack atoms in magenta."""
    fig = Figure(figsize=(5.0, 5.0), dpi=120)
    ax = fig.subplots()
    extent = pixel_map.extent
    ax.imshow(image, origin="lower", extent=extent, cmap="gray", interpolation="nearest")
    ax.imshow(prediction, origin="lower", extent=extent, cmap="Greens", alpha=0.5)
    crack = np.asarray(labels, bool)
    ax.scatter(atoms_xy[crack, 0], atoms_xy[crack, 1], s=8, c="magenta", lw=0)
    ax.set_title("crack path" + ("" if mcc is None else f", MCC = {mcc:.2f}"), fontsize=9)
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    save_png(fig, path)


def plot_mcc(mcc, path, baseline: float | None = None, reference: str | None = None) -> None:
    """Histogram of the crack MCC per test sample, the mean marked; ``baseline`` mean MCC of a
    random ranking of the atoms."""
    mcc = np.asarray(mcc, float)
    fig = Figure(figsize=(4, 3.5), dpi=120)
    ax = fig.subplots()
    ax.hist(mcc, bins=24, range=(-0.2, 1.0), color="tab:blue")
    ax.axvline(mcc.mean(), color="k", lw=1, label=f"mean {mcc.mean():.2f}")
    if baseline is not None:
        ax.axvline(baseline, color="tab:red", ls="--", lw=1, label=f"random {baseline:.2f}")
    ax.set_xlabel("MCC per test sample (top 10 % of atoms)")
    ax.set_ylabel("samples")
    ax.set_title(reference or f"crack path, {len(mcc)} samples", fontsize=9)
    ax.legend(fontsize=8)
    save_png(fig, path)


def plot_inside_probability(fractions, probability, path, reference=(0.25, 0.75)) -> None:
    """P(rupture inside the selected area) against the selected area fraction; chance = diagonal;
    FC22's point (25 %, ≈ 75 %) marked."""
    fig = Figure(figsize=(4.2, 4.0), dpi=120)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, label="chance")
    ax.plot(fractions, probability, "o-", ms=3, label="this model")
    if reference is not None:
        ax.plot(*reference, "*", color="tab:red", ms=10, label="FC22")
    ax.set_xlabel("selected area fraction")
    ax.set_ylabel("P(rupture site inside)")
    ax.legend(frameon=False, fontsize=8)
    save_png(fig, path)
