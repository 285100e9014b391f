"""Threshold-map heatmap with the remote shear events overlaid (LISTI25's figure)."""

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patheffects import withStroke

from glassfrac.core.files import atomic_path


def plot_threshold_map(threshold, box, events=None, path=None, title=None, ax=None):
    """Heatmap of Δτ (N/m) over the sample, red = low threshold; events numbered in white.

    ``threshold`` is (n, n) on the grid of :func:`glassfrac.mechanics.probe.grid_centres`;
    ``events`` an (k, 2) array of event locations (Å) in the undeformed sample.
    """

    own = ax is None
    if own:
        fig = Figure(figsize=(5.5, 5), dpi=120)
        ax = fig.subplots()
    cell = box.cell[:2, :2]
    origin = box.origin[:2]
    extent = [origin[0], origin[0] + cell[0, 0], origin[1], origin[1] + cell[1, 1]]
    image = ax.imshow(np.asarray(threshold), origin="lower", extent=extent, cmap=colormaps["RdYlBu"],
                      interpolation="bicubic")
    if events is not None:
        outline = [withStroke(linewidth=3.5, foreground="black")]  # legible on pale and dark colours alike
        for k, loc in enumerate(np.atleast_2d(events)):
            ax.plot(loc[0], loc[1], "o", ms=11, mfc="none", mec="white", mew=2, path_effects=outline)
            ax.annotate(str(k + 1), loc[:2], xytext=(7, 7), textcoords="offset points", color="white",
                        fontsize=9, fontweight="bold", path_effects=outline)
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_title(title or "shear stress threshold Δτ")
    ax.figure.colorbar(image, ax=ax, label="Δτ (N/m)", shrink=0.85)
    if own and path is not None:
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    return ax
