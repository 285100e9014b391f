"""Figure of a 2D network glass: rings as filled polygons coloured by size, bonds on top.

Periodic structures are drawn as the cell: every ring and bond is drawn unwrapped next to
its atoms, together with its periodic copies that reach into the cell, and everything is
clipped to the cell outline. Open structures are drawn as they are; rings flagged as
boundary rings (cut or closed by an open edge) are drawn faded.
"""

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from glassfrac.core.files import atomic_path

SIZE_COLOURS = {
    4: "#6a3d9a", 5: "#1f78b4", 6: "#e6e6e6", 7: "#ffb000", 8: "#e31a1c", 9: "#33a02c", 10: "#8c510a",
}
"""Face colour per ring size; smaller rings use ``UNDER_COLOUR``, larger ``OVER_COLOUR``."""
UNDER_COLOUR = "#000000"
OVER_COLOUR = "#ff69b4"


def plot_rings(rings, path=None, ax=None, title: str | None = None, atoms: bool = True, dpi: int = 150,
               faces: bool = True):
    """Draw a computed :class:`~glassfrac.analysis.rings.RingAnalysis`.

    Writes a PNG (atomically) to ``path`` if given; draws into ``ax`` if given, else into a
    new figure. ``faces=False`` draws the bonds only (no ring colours, no colour bar).
    Returns the matplotlib figure.
    """

    network = rings.network
    box = network.box
    periodic = bool(box.pbc.all())
    if ax is None:
        fig = Figure(figsize=(7.0, 6.0))  # no pyplot: renders with Agg, leaves the backend alone
        ax = fig.add_subplot()
    else:
        fig = ax.figure

    sizes = sorted(SIZE_COLOURS)
    cmap = ListedColormap([SIZE_COLOURS[n] for n in sizes]).with_extremes(under=UNDER_COLOUR, over=OVER_COLOUR)
    norm = BoundaryNorm(np.arange(sizes[0] - 0.5, sizes[-1] + 1.0), cmap.N)

    polygons = list(rings.ring_polygons)
    ring_sizes = np.asarray(rings.ring_sizes)
    faded = np.asarray(rings.boundary_rings)
    segments = np.stack([network.positions[network.bonds[:, 0]],
                         network.positions[network.bonds[:, 0]] + network.vectors], axis=1)
    if periodic:
        centres = np.array([p.mean(axis=0) for p in polygons]).reshape(-1, 2)
        shift = box.wrap(centres) - centres if len(centres) else centres
        polygons = [p + s for p, s in zip(polygons, shift, strict=True)]
        mid = segments.mean(axis=1)
        segments = segments + (box.wrap(mid) - mid)[:, None, :]
        polygons, ring_sizes, faded = _with_copies(polygons, ring_sizes, faded, box)
        segments, _, _ = _with_copies(list(segments), np.zeros(len(segments)), np.zeros(len(segments)), box)

    collections = []
    for mask, alpha in ((~faded, 1.0), (faded, 0.3)) if faces else ():
        faces = PolyCollection([p for p, m in zip(polygons, mask, strict=True) if m], array=ring_sizes[mask],
                               cmap=cmap, norm=norm, edgecolors="none", alpha=alpha, zorder=1)
        ax.add_collection(faces)
        collections.append(faces)
    bonds = LineCollection(segments, colors="#303030", linewidths=0.8, zorder=2)
    ax.add_collection(bonds)
    collections.append(bonds)
    if atoms:
        ax.scatter(*box.wrap(network.positions).T if periodic else network.positions.T,
                   s=3, c="#303030", zorder=3, linewidths=0)
    if periodic:
        corners = box.cartesian(np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float))
        outline = Polygon(corners, closed=True, fill=False, edgecolor="k", linewidth=1.0, zorder=4)
        ax.add_patch(outline)
        for collection in collections:
            collection.set_clip_path(outline)
        lo, hi = corners.min(axis=0), corners.max(axis=0)
    else:
        allv = np.concatenate(polygons + [network.positions]) if polygons else network.positions
        lo, hi = allv.min(axis=0), allv.max(axis=0)
    pad = 0.02 * (hi - lo).max()
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    if faces:
        bar = fig.colorbar(collections[0], ax=ax, ticks=sizes, extend="both", fraction=0.046, pad=0.04)
        bar.set_label("ring size")
    if title is None:
        title = f"{rings.n_rings} rings, μ₂ = {_fmt(rings.mu2)}, α = {_fmt(rings.alpha)}"
    ax.set_title(title)
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return fig


def plot_rings_marked(rings, path=None, atoms=(), points=(), values=None, title: str | None = None,
                      dpi: int = 150):
    """:func:`plot_rings` with marks on top, for failure, event and prediction figures.

    ``atoms``: ``(label, positions (k, ≥ 2) Å, colour)`` triples, drawn as dots with a dark
    edge; ``points``: ``(label, locations (k, ≥ 2) Å, numbered)`` triples, drawn as open circles,
    numbered 1, 2, ... if ``numbered``; ``values``: ``(label, positions (n, ≥ 2) Å, values (n,))``,
    atoms coloured by value (pale yellow up to the median, dark red for the top 0.5 %; colour
    bar ``label``) over the bonds, instead of the ring colours.
    Positions are wrapped into the cell of periodic structures. Writes a PNG (atomically) to
    ``path`` if given; returns the figure.
    """
    fig = plot_rings(rings, title=title, faces=values is None, atoms=values is None)
    ax = fig.axes[0]
    box = rings.network.box
    periodic = bool(box.pbc.all())

    def plane(xy):
        xy = np.asarray(xy, float)
        if not len(xy):
            return np.zeros((0, 2))
        xy = xy.reshape(len(xy), -1)[:, :2]
        return box.wrap(xy) if periodic else xy

    if values is not None:
        label, xy, v = values
        v = np.asarray(v, float)
        # the colour scale spans the median to the 99.5th percentile: the highest values stand out
        lo, hi = np.nanpercentile(v, [50, 99.5]) if np.isfinite(v).any() else (0.0, 1.0)
        dots = ax.scatter(*plane(xy).T, s=22, c=v, cmap="YlOrRd", vmin=lo, vmax=max(hi, lo + 1e-12),
                          edgecolors="0.4", linewidths=0.3, zorder=4)
        fig.colorbar(dots, ax=ax, fraction=0.046, pad=0.04, extend="both").set_label(label)
    for label, xy, colour in atoms:
        xy = plane(xy)
        if len(xy):
            ax.scatter(*xy.T, s=28, c=colour, edgecolors="k", linewidths=0.6, zorder=5, label=f"{label} ({len(xy)})")
    for label, xy, numbered in points:
        xy = plane(xy)
        if len(xy):
            ax.scatter(*xy.T, s=200 if numbered else 120, facecolors="none", edgecolors="k",
                       linewidths=2.0 if numbered else 1.5, zorder=6, label=label)
        for k, (x, y) in enumerate(xy if numbered and len(xy) > 1 else []):
            ax.annotate(str(k + 1), (x, y), xytext=(9, 9), textcoords="offset points", fontsize=9, zorder=7,
                        fontweight="bold", bbox=dict(boxstyle="circle,pad=0.15", fc="white", ec="k", lw=0.8))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=3, fontsize=8, frameon=False)
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return fig


def _with_copies(shapes, values, flags, box):
    """``shapes`` (list of (k, 2) arrays) and their periodic copies that reach into the cell,
    with the ``values`` and ``flags`` of each."""
    out, vals, out_flags = [], [], []
    images = np.array([[a, b] for a in (-1, 0, 1) for b in (-1, 0, 1)], float)
    for shape, value, flag in zip(shapes, values, flags, strict=True):
        f = box.fractional(shape)
        for s in images:
            g = f + s
            if (g.max(axis=0) > 0).all() and (g.min(axis=0) < 1).all():
                out.append(shape + box.image_shift(s))
                vals.append(value)
                out_flags.append(flag)
    return out, np.asarray(vals), np.asarray(out_flags, bool)


def _fmt(value) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3f}"
