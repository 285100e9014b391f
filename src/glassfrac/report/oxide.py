"""Figures of the oxide stage: density and Al coordination versus quench pressure; stress–strain
curve with bond-switching fractions versus strain."""

import numpy as np
from matplotlib.figure import Figure

from glassfrac.analysis.oxide import SWITCH_CLASSES
from glassfrac.core.files import save_png


def plot_quench(pressures, densities, fractions, path) -> None:
    """Density (g/cm³) and fraction of 4-, 5-, 6-fold Al versus quench pressure (GPa) to a PNG."""
    fig = Figure(figsize=(8, 3.2))
    ax1, ax2 = fig.subplots(1, 2)
    order = np.argsort(pressures)
    p = np.asarray(pressures, float)[order]
    ax1.plot(p, np.asarray(densities)[order], "o-")
    ax1.set(xlabel="quench pressure (GPa)", ylabel="density (g/cm³)")
    for cn in ("4", "5", "6"):
        ax2.plot(p, [fractions[k].get(cn, 0.0) for k in order], "o-", label=f"Al{cn}")
    ax2.set(xlabel="quench pressure (GPa)", ylabel="fraction of Al")
    ax2.legend()
    save_png(fig, path, dpi=120)


def plot_tension(strain, stress_gpa, frame_strain, switching, path, title="") -> None:
    """σ_xx (GPa) versus strain, and bond-switching fractions (DC, IC, SC, UC) versus strain, to a PNG."""
    fig = Figure(figsize=(8, 3.2))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(strain, np.asarray(stress_gpa)[:, 0])
    ax1.set(xlabel="strain", ylabel="σ_xx (GPa)", title=title)
    for c in SWITCH_CLASSES:
        ax2.plot(frame_strain, switching[c], "o-", ms=3, label=c)
    ax2.set(xlabel="strain", ylabel="fraction of Al")
    ax2.legend()
    save_png(fig, path, dpi=120)


def plot_softness(curve, switching, path, strain=None, stress_gpa=None, title="") -> None:
    """Softness along a tension run to a PNG: mean softness ⟨S⟩ of the centre atoms (with σ_xx
    in GPa on a second axis when given), number and largest size of the high-softness clusters,
    and the bond-switching fractions, all versus strain. ``curve``: from
    :func:`glassfrac.learn.oxide_softness.softness_curve`; ``switching``: from
    :func:`glassfrac.analysis.oxide.switching_curve` on the same frames."""
    eps = curve["strain"]
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ax1.plot(eps, curve["mean_softness"], "o-", ms=3, color="C3", label="⟨S⟩")
    ax1.set(xlabel="strain", ylabel="mean softness ⟨S⟩", title=title)
    if strain is not None and stress_gpa is not None:
        twin = ax1.twinx()
        twin.plot(strain, np.asarray(stress_gpa)[:, 0], color="0.5", lw=1)
        twin.set_ylabel("σ_xx (GPa)", color="0.4")
    ax2.plot(eps, curve["n_clusters"], "o-", ms=3, label="clusters")
    ax2.plot(eps, curve["largest_cluster"], "s-", ms=3, label="largest cluster")
    top = curve["settings"]["top_fraction"]
    ax2.set(xlabel="strain", ylabel=f"high-softness clusters (top {100 * top:g} % Al)")
    ax2.legend()
    for c in SWITCH_CLASSES:
        ax3.plot(eps, switching[c], "o-", ms=3, label=c)
    ax3.set(xlabel="strain", ylabel="fraction of Al")
    ax3.legend()
    save_png(fig, path, dpi=120, tight=False)  # constrained layout
