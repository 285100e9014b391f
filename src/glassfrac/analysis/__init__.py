"""analysis stage: rings and ring statistics of 2D network glasses."""

from glassfrac.analysis.rings import Network, RingAnalysis
from glassfrac.analysis.voronoi_bonds import VoronoiBonds, voronoi_bonds

__all__ = ["Network", "RingAnalysis", "VoronoiBonds", "voronoi_bonds"]
