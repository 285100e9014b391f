"""Structures from a ring network: Si network, silica monolayer (LISTI25), bilayer (FC22).

Atom order: Si first (in the order of the network), then O. Per-atom ``arrays['rings']``
(N, 3) lists the rings an atom borders (ids 0..n_rings−1; for Si in CCW order, which
:func:`glassfrac.generate.checks.ring_cycles` relies on; −1 pads the two rings of an in-plane O).
"""

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.generate.embed import Embedding
from glassfrac.structure import Box, Structure

SI_SI_MONOLAYER = 3.05
"""Mean Si–Si distance (Å) of generated monolayers before relaxation (LISTI25)."""
SI_O_BILAYER = 1.65
"""Si–O distance (Å) of generated bilayers before relaxation (FC22); in-plane Si–Si = 2×."""
BILAYER_HEIGHT = 20.0
"""Extent (Å) of the non-periodic z axis of bilayer boxes (for output only)."""


def network_structure(embedding: Embedding, si_si: float = SI_SI_MONOLAYER) -> Structure:
    """The 2D Si network, scaled so that the mean Si–Si bond is ``si_si`` Å."""
    box = Box(embedding.cell)
    net = Structure(embedding.si_positions, np.full(len(embedding.si_positions), "Si"), box,
                    bonds=embedding.bonds, bond_images=embedding.bond_images,
                    arrays={"rings": embedding.si_rings.astype(np.int64)})
    return _scaled(net, si_si).wrapped()


def _scaled(structure: Structure, si_si: float) -> Structure:
    """A copy scaled so that the mean Si–Si bond of the network ``structure`` is ``si_si``."""
    if si_si <= 0:
        raise InputError(f"Si–Si distance must be positive, got {si_si}")
    mean = float(np.linalg.norm(structure.bond_vectors(), axis=1).mean())
    return structure.deformed(np.eye(structure.dim) * (si_si / mean))


def _oxygens(net: Structure):
    """In-plane O of a Si network: positions (M, 2) at bond midpoints, Si–O bonds (2M, 2) with
    O indices counted from 0, their images (2M, 2), and the two rings of each O (M, 2)."""
    i, j = net.bonds.T
    m = len(i)
    pos = net.positions[i] + 0.5 * net.bond_vectors()
    o = np.arange(m)
    bonds = np.concatenate([np.column_stack([i, o]), np.column_stack([j, o])])
    images = np.concatenate([np.zeros_like(net.bond_images), -net.bond_images])
    ri, rj = net.arrays["rings"][i], net.arrays["rings"][j]
    shared = (ri[:, :, None] == rj[:, None, :]).any(axis=2)  # exactly two per bond
    rings = ri[shared].reshape(m, 2)
    return pos, bonds, images, rings


def monolayer(network: Structure, si_si: float = SI_SI_MONOLAYER) -> Structure:
    """2D SiO2 monolayer: the network scaled to mean Si–Si ``si_si`` Å, O at every Si–Si
    midpoint; bonds are the Si–O bonds (Si 3-, O 2-coordinated)."""
    net = _scaled(network, si_si)
    n_si = net.n_atoms
    o_pos, o_bonds, o_images, o_rings = _oxygens(net)
    m = len(o_pos)
    rings = np.concatenate([net.arrays["rings"], np.column_stack([o_rings, np.full(m, -1)])])
    out = Structure(np.concatenate([net.positions, o_pos]),
                    np.concatenate([np.full(n_si, "Si"), np.full(m, "O")]), net.box,
                    bonds=o_bonds + [0, n_si], bond_images=o_images, arrays={"rings": rings},
                    info=dict(network.info))
    return out.wrapped()


def bilayer(network: Structure, si_o: float = SI_O_BILAYER,
            height: float = BILAYER_HEIGHT) -> Structure:
    """3D SiO2 bilayer (FC22): the network scaled to mean Si–Si 2·``si_o``; Si layers at
    z = ∓``si_o`` with O at the in-plane bond midpoints of each, and a bridging O at z = 0
    between each Si pair (Si 4-, O 2-coordinated). Periodic in x, y; z open, box ``height``.

    Atom order: Si bottom, Si top, O bottom, O top, O bridging; ``arrays['layer']`` is −1, +1
    and 0 for bottom, top and bridging atoms.
    """
    net = _scaled(network, 2.0 * si_o)
    n_si = net.n_atoms
    o_pos, o_bonds, o_images, o_rings = _oxygens(net)
    m = len(o_pos)

    def at_z(xy, z):
        return np.column_stack([xy, np.full(len(xy), z)])

    positions = np.concatenate([at_z(net.positions, -si_o), at_z(net.positions, si_o),
                                at_z(o_pos, -si_o), at_z(o_pos, si_o),
                                at_z(net.positions, 0.0)])
    species = np.concatenate([np.full(2 * n_si, "Si"), np.full(2 * m + n_si, "O")])
    images3 = np.column_stack([o_images, np.zeros(len(o_images), np.int64)])
    si = np.arange(n_si)
    bridge = np.column_stack([si, 2 * n_si + 2 * m + si])
    bonds = np.concatenate([
        o_bonds + [0, 2 * n_si],  # bottom layer
        o_bonds + [n_si, 2 * n_si + m],  # top layer
        bridge, bridge + [n_si, 0],
    ])
    images = np.concatenate([images3, images3, np.zeros((2 * n_si, 3), np.int64)])
    o_rings3 = np.column_stack([o_rings, np.full(m, -1)])
    si_rings = net.arrays["rings"]
    rings = np.concatenate([si_rings, si_rings, o_rings3, o_rings3, si_rings])
    layer = np.concatenate([np.full(n_si, -1), np.full(n_si, 1), np.full(m, -1), np.full(m, 1),
                            np.zeros(n_si, int)])
    cell = np.zeros((3, 3))
    cell[:2, :2] = net.box.cell
    cell[2, 2] = height
    box = Box(cell, pbc=(True, True, False), origin=(0.0, 0.0, -0.5 * height))
    out = Structure(positions, species, box, bonds=bonds, bond_images=images,
                    arrays={"rings": rings, "layer": layer}, info=dict(network.info))
    return out.wrapped()
