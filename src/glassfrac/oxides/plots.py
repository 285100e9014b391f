"""Figures of the oxide stage: density and Al coordination versus quench pressure; stress–strain
curve with bond-switching fractions versus strain."""

import numpy as np

from glassfrac.files import atomic_path
from glassfrac.oxides.analysis import SWITCH_CLASSES


def plot_quench(pressures, densities, fractions, path) -> None:
    """Density (g/cm³) and fraction of 4-, 5-, 6-fold Al versus quench pressure (GPa) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
    order = np.argsort(pressures)
    p = np.asarray(pressures, float)[order]
    ax1.plot(p, np.asarray(densities)[order], "o-")
    ax1.set(xlabel="quench pressure (GPa)", ylabel="density (g/cm³)")
    for cn in ("4", "5", "6"):
        ax2.plot(p, [fractions[k].get(cn, 0.0) for k in order], "o-", label=f"Al{cn}")
    ax2.set(xlabel="quench pressure (GPa)", ylabel="fraction of Al")
    ax2.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def plot_tension(strain, stress_gpa, frame_strain, switching, path, title="") -> None:
    """σ_xx (GPa) versus strain, and bond-switching fractions (DC, IC, SC, UC) versus strain, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
    ax1.plot(strain, np.asarray(stress_gpa)[:, 0])
    ax1.set(xlabel="strain", ylabel="σ_xx (GPa)", title=title)
    for c in SWITCH_CLASSES:
        ax2.plot(frame_strain, switching[c], "o-", ms=3, label=c)
    ax2.set(xlabel="strain", ylabel="fraction of Al")
    ax2.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
