"""report stage: figures."""

from glassfrac.report.network_plot import plot_rings

__all__ = ["plot_rings"]
