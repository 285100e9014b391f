"""Figures of loading tests: stress–strain curve with events, sample with the failure marked."""

import numpy as np

from glassfrac.files import save_png


def _figure(width=6.0, height=4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(width, height), dpi=120)


def plot_stress_strain(result, path) -> None:
    """Stress measure versus strain, events marked by their kind."""
    plt, fig, ax = _figure()
    c = result.curve.arrays()
    ax.plot(c["strain"], c["stress"], "-", color="0.2", lw=1.2, marker=".", ms=3)
    colours = {"bond_break": "tab:red", "stress_drop": "tab:blue", "energy_drop": "tab:orange"}
    seen = set()
    for e in result.events:
        kind = "bond_break" if "bond_break" in e.kind else e.kind[0]
        ax.axvline(e.strain, color=colours.get(kind, "k"), ls=":", lw=1,
                   label=None if kind in seen else kind.replace("_", " "))
        seen.add(kind)
    ax.set_xlabel("strain")
    ax.set_ylabel(f"stress ({result.stress_unit})")
    ax.set_title(f"{result.settings.path.replace('_', ' ')}: {len(result.events)} events")
    if seen:
        ax.legend(frameon=False, fontsize=8)
    save_png(fig, path)


def plot_sample_with_failure(result, labels, path) -> None:
    """Undeformed sample (top layer for sheets) with crack atoms, first break and events."""
    plt, fig, ax = _figure(6.0, 6.0)
    ref = result.reference
    pos = ref.box.wrap(ref.positions)
    top = pos[:, 2] >= np.median(pos[:, 2]) if ref.dim == 3 else np.ones(ref.n_atoms, bool)
    si = (ref.species == "Si") & top
    ax.scatter(pos[si, 0], pos[si, 1], s=4, c="0.6", lw=0, label="Si")
    crack = np.asarray(labels.get("crack_atoms", []), dtype=int)
    if len(crack):
        ax.scatter(pos[crack, 0], pos[crack, 1], s=10, c="tab:red", lw=0, label="crack atoms")
    if labels.get("rupture_location") is not None:
        x, y = labels["rupture_location"][:2]
        ax.scatter([x], [y], s=160, facecolors="none", edgecolors="k", lw=2, label="first break")
    for k, e in enumerate(result.events[:9]):
        if "bond_break" not in e.kind:
            ax.annotate(str(k + 1), e.location[:2], color="tab:blue", fontsize=9, ha="center", va="center",
                        bbox=dict(boxstyle="circle", fc="white", ec="tab:blue", lw=1))
    cell = ref.box.cell[:2, :2]
    corners = np.array([[0, 0], cell[0], cell[0] + cell[1], cell[1], [0, 0]]) + ref.box.origin[:2]
    ax.plot(corners[:, 0], corners[:, 1], "k-", lw=0.8)
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    save_png(fig, path)


def plot_curves(curves, path, xlabel: str, ylabel: str, title: str = "") -> None:
    """Several stress–strain curves, ``curves`` = [(strain, stress, group label)], one colour per group."""
    plt, fig, ax = _figure()
    groups = list(dict.fromkeys(label for _, _, label in curves))
    colours = {g: plt.get_cmap("tab10")(k % 10) for k, g in enumerate(groups)}
    seen = set()
    for strain, stress, label in curves:
        ax.plot(strain, stress, "-", color=colours[label], lw=1.0, alpha=0.8, label=None if label in seen else label)
        seen.add(label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    save_png(fig, path)
