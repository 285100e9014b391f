"""Bond breaking and cracks, judged by geometry against the undeformed reference.

Silica rule (:class:`BondRule`): an O bonded to two Si in the reference (within 2.2 Å) has
*broken* one bond when that bond is longer than ``far`` while the O still holds its other Si
within ``near``. FC22 stated it with ``far`` = 2.2 Å and ``near`` = 1.7 Å for states reached by
damped dynamics, where a breaking bond opens fully and the O's other bond relaxes. Our label rule
follows the gradient flow instead (:mod:`glassfrac.mechanics.aqs`), and there Watanabe's
coordination switch holds a breaking bond inside its window: on FC22's reference bilayer at
strain 0.1405 two Si–O bonds jump from 2.20 to 2.52 Å and stay there (a true minimum) with their O's
other bond stretched to 1.81 Å, so FC22's numbers never count them, though the potential has begun
to cut them. Hence the rule used for labels: ``far`` is where the potential begins to cut a bond
(:attr:`glassfrac.potentials.Potential.bond_break_length`; Watanabe (R − D)·σ = 2.409 Å) or
FC22's 2.2 Å, whichever is longer, and ``near`` is the reference bond cutoff, 2.2 Å (the O keeps
its other Si as a bond). The general rule for any other network: a reference bond longer than
``far`` is broken (``near=None``). Current bond vectors use the reference's periodic images with
the current cell, so positions must not be re-wrapped between reference and current configuration.
"""

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from glassfrac.structure import Structure, neighbor_pairs

SILICA_BOND_CUTOFF = 2.2
"""Si–O bond cutoff in the undeformed sample, Å (FC22 coordination check), and FC22's break length."""


@dataclass
class BondBreaks:
    """Broken reference bonds: atom pairs (K, 2), images (K, d), and, for silica, the O index."""

    pairs: np.ndarray
    images: np.ndarray

    @property
    def count(self) -> int:
        return len(self.pairs)

    def atoms(self) -> np.ndarray:
        """Atoms that lost a bond (sorted, unique)."""
        return np.unique(self.pairs.ravel())


def reference_bonds(structure: Structure, cutoff: float = SILICA_BOND_CUTOFF, unlike_only: bool = True):
    """Bonds of the reference: pairs within ``cutoff`` (only between unlike species by default).

    Returns ``pairs`` (M, 2) and ``images`` (M, d) with the partner at x_j + images @ cell.
    """
    i, j, images, _ = neighbor_pairs(structure.positions, structure.box, cutoff)
    if unlike_only:
        keep = structure.species[i] != structure.species[j]
        i, j, images = i[keep], j[keep], images[keep]
    return np.column_stack([i, j]), images


def bond_lengths(structure: Structure, pairs, images) -> np.ndarray:
    """Current lengths (Å) of bonds given by pairs and reference images."""
    d = structure.positions[pairs[:, 1]] + structure.box.image_shift(images) - structure.positions[pairs[:, 0]]
    return np.linalg.norm(d, axis=1)


def broken_bonds(current: Structure, pairs, images, far: float = SILICA_BOND_CUTOFF,
                 near: float | None = SILICA_BOND_CUTOFF, species=None) -> BondBreaks:
    """Reference bonds broken in ``current``.

    With ``near`` (silica rule) a Si–O bond counts only if its O keeps its other Si within
    ``near``; with ``near=None`` every reference bond longer than ``far`` counts.
    """
    length = bond_lengths(current, pairs, images)
    broken = length > far
    if near is not None:
        species = current.species if species is None else species
        o_index = np.where(species[pairs[:, 0]] == "O", pairs[:, 0], pairs[:, 1])
        # shortest bond each O still has among its reference bonds
        shortest = np.full(current.n_atoms, np.inf)
        np.minimum.at(shortest, o_index, length)
        n_bonds = np.bincount(o_index, minlength=current.n_atoms)
        broken &= (shortest[o_index] < near) & (n_bonds[o_index] >= 2)
    return BondBreaks(pairs[broken], images[broken])


@dataclass(frozen=True)
class BondRule:
    """When a reference bond of silica counts as broken: longer than ``far`` (Å) while its O keeps its other
    Si within ``near`` (Å); see the module's text for why these numbers."""

    far: float = SILICA_BOND_CUTOFF
    near: float | None = SILICA_BOND_CUTOFF

    @classmethod
    def for_potential(cls, potential) -> "BondRule":
        """The label rule with the potential's own break length where it has one (Watanabe: 2.409 Å)."""
        return cls(far=max(SILICA_BOND_CUTOFF, potential.bond_break_length or 0.0))

    def tracker(self, reference: Structure) -> "BondTracker":
        """The reference bonds of ``reference``, judged by this rule in later structures."""
        return BondTracker(self, *reference_bonds(reference, SILICA_BOND_CUTOFF))

    def to_dict(self) -> dict:
        return {"far_A": self.far, "near_A": self.near}


@dataclass
class BondTracker:
    """A rule with the reference bonds (pairs (M, 2), images (M, d)) it judges."""

    rule: BondRule
    pairs: np.ndarray
    images: np.ndarray

    def __post_init__(self):
        n_atoms = int(self.pairs.max()) + 1 if len(self.pairs) else 0
        self.wraps = wrapping_axes(n_atoms, self.pairs, self.images, self.images.shape[1])

    def broken(self, current: Structure) -> BondBreaks:
        """The reference bonds broken in ``current``."""
        return broken_bonds(current, self.pairs, self.images, self.rule.far, self.rule.near)

    def cut(self, current: Structure) -> bool:
        """Whether the bonds still shorter than ``far`` no longer wrap the periodic cell along an axis the
        reference network wrapped along: the sample is cut through (FC22's final fracture)."""
        intact = bond_lengths(current, self.pairs, self.images) <= self.rule.far
        after = wrapping_axes(current.n_atoms, self.pairs[intact], self.images[intact], current.dim)
        return bool(np.any(self.wraps & ~after))


def bond_midpoints(structure: Structure, pairs, images) -> np.ndarray:
    """Midpoints (Å) of bonds in ``structure``, wrapped into its cell."""
    a = structure.positions[pairs[:, 0]]
    b = structure.positions[pairs[:, 1]] + structure.box.image_shift(images)
    return structure.box.wrap(0.5 * (a + b))


def wrapping_axes(n_atoms: int, pairs, images, dim: int) -> np.ndarray:
    """(dim,) bool: along which axes the bonded network wraps around the periodic cell.

    A network that no longer wraps along the loading axis has been cut through: fractured.
    Found by a breadth-first walk that gives every atom an image offset; a bond closing a loop
    with a non-zero net image wraps along that image's axes.
    """
    neighbours = [[] for _ in range(n_atoms)]
    for (a, b), s in zip(pairs, images, strict=True):
        neighbours[a].append((b, s))
        neighbours[b].append((a, -s))
    offset = np.full((n_atoms, dim), np.iinfo(np.int64).min, dtype=np.int64)
    wraps = np.zeros(dim, dtype=bool)
    for start in range(n_atoms):
        if offset[start, 0] != np.iinfo(np.int64).min:
            continue
        offset[start] = 0
        queue = deque([start])
        while queue:
            a = queue.popleft()
            for b, s in neighbours[a]:
                if offset[b, 0] == np.iinfo(np.int64).min:
                    offset[b] = offset[a] + s
                    queue.append(b)
                else:
                    wraps |= (offset[a] + s - offset[b]) != 0
    return wraps


def crack_atoms(reference: Structure, breaks: BondBreaks, link: float = 6.0) -> np.ndarray:
    """Atoms bounding the main crack: ends of the largest cluster of broken bonds.

    Broken bonds are linked when their midpoints in the reference lie within ``link`` Å
    (about one ring across), periodic; the largest linked cluster is the crack.
    """
    if breaks.count == 0:
        return np.zeros(0, dtype=np.int64)
    mid = bond_midpoints(reference, breaks.pairs, breaks.images)
    i, j, _, _ = neighbor_pairs(mid, reference.box, link)
    label = _components(len(mid), i, j)
    biggest = np.argmax(np.bincount(label))
    return np.unique(breaks.pairs[label == biggest].ravel())


def _components(n, i, j) -> np.ndarray:
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]
