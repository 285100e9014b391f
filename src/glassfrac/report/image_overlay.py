"""Figure of Si detections on a microscope image, for checking and writing corrections.

The image is drawn as viewers show it (row 0 at the top) with axes in pixel coordinates
(x = column, y = row, pixel centres at integers), the coordinates of a corrections file.
Detections are open cyan circles; atoms added by corrections green plus signs; removed ones
red crosses; Si–Si bonds yellow lines; under-coordinated Si orange dots; the region of
interest a dashed outline.
"""

import numpy as np

from glassfrac.files import atomic_path


def plot_detections(image, positions, path=None, roi=None, added=None, removed=None, bonds=None,
                    undercoordinated=None, title: str | None = None, dpi: int = 150):
    """Draw ``positions`` (N, 2) px on ``image``; write a PNG to ``path`` (atomically) if given.

    ``roi``: a :class:`~glassfrac.imaging.detect.Roi`; ``added``: indices into ``positions``;
    ``removed``: (K, 2) px; ``bonds``: (E, 2) index pairs into ``positions``;
    ``undercoordinated``: indices. Returns the matplotlib figure.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    image = np.asarray(image, float)
    positions = np.asarray(positions, float).reshape(-1, 2)
    rows, cols = image.shape
    fig = Figure(figsize=(7.0, 7.0 * rows / cols))
    ax = fig.add_subplot()
    lo, hi = np.percentile(image, [0.5, 99.5])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, origin="upper",
              extent=(-0.5, cols - 0.5, rows - 0.5, -0.5), interpolation="nearest")
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
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xlabel("x (pixel column)")
    ax.set_ylabel("y (pixel row)")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    return fig
