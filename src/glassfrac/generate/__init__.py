"""generate stage: 2D network glass samples by bond-switching Monte Carlo (protocols.md §1)."""

from glassfrac.generate.checks import check_network, find_crossing_bonds, ring_cycles
from glassfrac.generate.decorate import bilayer, monolayer, network_structure
from glassfrac.generate.dual import DualLattice
from glassfrac.generate.embed import embed
from glassfrac.generate.montecarlo import bond_switch
from glassfrac.generate.network import KINDS, generate
from glassfrac.generate.targets import (
    RingSizeTarget,
    gamma_target,
    lognormal_target,
    ring_size_target,
)

__all__ = [
    "generate", "KINDS", "DualLattice", "bond_switch", "embed", "network_structure",
    "monolayer", "bilayer", "check_network", "find_crossing_bonds", "ring_cycles",
    "RingSizeTarget", "ring_size_target", "gamma_target", "lognormal_target",
]
