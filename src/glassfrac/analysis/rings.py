"""Rings of a 2D network glass: the faces of the planar (periodic) Si network.

Usage (freud style: configure, ``compute`` returns self, results are read-only)::

    rings = RingAnalysis().compute(structure)           # bonds from the file or from O bridges
    rings = RingAnalysis(method="points").compute(s)    # Si positions only (FC22 Voronoi rule)
    rings.n_rings, rings.ring_sizes, rings.mu2, rings.alpha, rings.defect_map

How the Si–Si network is built (``method``):

- ``"bonds"``: the structure's bond list; Si–Si bonds are used as they are, and two Si bonded
  to the same O (Si–O bonds in the list) are bonded through it;
- ``"bridges"``: two Si within ``cutoff`` of the same O are bonded (default cutoff 1.8 Å for a
  monolayer, 2.2 Å for a bilayer);
- ``"points"``: Si positions only, bonds by the Voronoi rule of FC22
  (:mod:`glassfrac.analysis.voronoi_bonds`);
- ``"auto"``: ``"bonds"`` if the structure has bonds, else ``"bridges"`` if it has O atoms,
  else ``"points"``.

Conventions and decisions:

- A 3D structure must be a sheet in the xy plane. If its Si spread over more than
  ``LAYER_GAP`` Å in z it is a bilayer: one layer is analysed (``layer="top"``: Si with z above
  the mean Si z; ``"bottom"``: below), projected to the plane; the other layer is its copy.
- The same pair of Si bridged twice with the same image counts as one bond (2-rings are not
  represented).
- Rings are found by walking the faces of the embedded graph: at every Si the neighbours are
  sorted by angle (with their periodic images), and each directed bond is walked once, turning
  to the next bond clockwise, so every ring is listed counter-clockwise. The ring size is the
  number of sides walked (a dangling bond inside a ring is walked twice and counts twice), so
  the ring sizes always add up to twice the number of bonds.
- Faces that are not rings are dropped: the outer face of every connected piece of a network
  with open boundaries (negative signed area) and any face that winds around a periodic axis
  (non-zero net image). ``n_dropped_faces`` counts them; a well-formed periodic network drops
  none and satisfies V − E + F = 0 (``euler_characteristic``).
- Ring atoms are indices into the given structure, listed from the smallest index onwards.
  Ring centres are the mean of the ring's (unwrapped) vertices, wrapped into the cell.
- Coordination (per species, expected value and number of violators): Si–Si in the network
  (``sides``, 3); when O atoms are present, O within ``cutoff`` of every Si (3 for a monolayer, 4 for a
  bilayer, counted over both layers) and Si within ``cutoff`` of every O (2).
- ``boundary_rings`` flags rings that contain a Si with fewer than 3 network bonds or (points
  method) a Si whose Voronoi cell is unbounded, or that share a bond with a dropped face. At
  an open edge (microscope patch) such rings may be cut or closed wrongly by the edge and
  are best left out of statistics; rings of a patch that are not flagged can still be wrong
  within about two Si spacings of the edge. ``distribution``, ``mu2`` and ``alpha`` are over
  all rings, boundary rings included (ring_statistics.py computes them).
"""

import copy
from dataclasses import dataclass

import numpy as np

from glassfrac.analysis.ring_statistics import (
    aboav_weaire_alpha,
    ring_size_distribution,
    ring_size_variance,
)
from glassfrac.analysis.voronoi_bonds import voronoi_bonds
from glassfrac.core.errors import InputError
from glassfrac.structure.box import Box
from glassfrac.structure.neighbors import neighbor_pairs
from glassfrac.structure.structure import Structure

LAYER_GAP = 1.0
"""Spread of Si z (Å) above which a 3D sheet is read as a bilayer."""

DEFAULT_CUTOFF = {"monolayer": 1.8, "bilayer": 2.2}
"""Default Si–O bond cutoff, Å (reference/protocols.md §1)."""

METHODS = ("auto", "bonds", "bridges", "points")


@dataclass(frozen=True)
class Network:
    """A 2D network: node ``positions`` (n, 2) Å in the plane of ``box`` (2D), ``atoms`` (n,)
    their indices in the source structure, ``bonds`` (E, 2) node indices with ``images``
    (E, 2): node ``j`` of a bond sits at ``positions[j] + images @ box.cell``."""

    positions: np.ndarray
    box: Box
    atoms: np.ndarray
    bonds: np.ndarray
    images: np.ndarray

    @property
    def vectors(self) -> np.ndarray:
        """Bond vectors from node i to node j (with image), Å, shape (E, 2)."""
        i, j = self.bonds.T
        return self.positions[j] + self.box.image_shift(self.images) - self.positions[i]

    @property
    def degree(self) -> np.ndarray:
        """Number of bonds per node."""
        return np.bincount(self.bonds.ravel(), minlength=len(self.positions))


def _result(name: str, doc: str) -> property:
    def get(self):
        return self._computed()[name]

    return property(get, doc=doc)


class RingAnalysis:
    """Rings, ring statistics, coordination and defect map of a 2D network glass.

    ``method`` as in the module docstring; ``cutoff`` the Si–O cutoff in Å (default by
    monolayer/bilayer); ``node``/``bridge`` the species of network nodes and bridging atoms;
    ``layer`` which layer of a bilayer to analyse; ``sides`` the Si–Si coordination of the
    network (3): the expected value of the coordination check and, in the points method, the
    number of Voronoi sides each atom shares with bonded neighbours.
    """

    def __init__(self, method: str = "auto", cutoff: float | None = None, node: str = "Si",
                 bridge: str = "O", layer: str = "top", sides: int = 3):
        if method not in METHODS:
            raise InputError(f"method must be one of {METHODS}, got {method!r}")
        if layer not in ("top", "bottom"):
            raise InputError(f"layer must be 'top' or 'bottom', got {layer!r}")
        if cutoff is not None and cutoff <= 0:
            raise InputError(f"cutoff must be positive, got {cutoff}")
        self.method = method
        self.cutoff = cutoff
        self.node = node
        self.bridge = bridge
        self.layer = layer
        self.sides = sides
        self._results = None

    # -- results --------------------------------------------------------------------------
    network = _result("network", "The Si network analysed (:class:`Network`).")
    method_used = _result("method_used", "The method actually used ('bonds', 'bridges' or 'points').")
    n_atoms = _result("n_atoms", "Atoms in the structure.")
    n_rings = _result("n_rings", "Number of rings.")
    ring_sizes = _result("ring_sizes", "Size of each ring (n_rings,).")
    rings = _result("rings", "Atom indices (into the structure) of each ring, counter-clockwise.")
    ring_polygons = _result("ring_polygons", "Unwrapped vertex coordinates (n_k, 2) Å of each ring.")
    ring_centres = _result("ring_centres", "Ring centres (n_rings, 2) Å in the plane, wrapped into the cell.")
    ring_areas = _result("ring_areas", "Ring areas (n_rings,) Å^2.")
    ring_pairs = _result("ring_pairs", "Adjacent rings (P, 2), one row per shared bond (a ring next to its own "
                                       "periodic image gives a row (r, r)).")
    distribution = _result("distribution", "p_n: fraction of rings of each size.")
    mu2 = _result("mu2", "Ring-size variance mu2.")
    alpha = _result("alpha", "Aboav–Weaire alpha (normalised form; nan if all rings are equal).")
    coordination = _result("coordination", "Per bond type: expected coordination, violators, histogram.")
    coordination_ok = _result("coordination_ok", "True if no atom violates its expected coordination.")
    defect_rings = _result("defect_rings", "Per ring: True if the ring is not hexagonal.")
    defect_map = _result("defect_map", "Per atom of the structure: True if it belongs to a non-6 ring.")
    boundary_rings = _result("boundary_rings", "Per ring: True if it touches an open edge or an under-coordinated Si.")
    euler_characteristic = _result("euler_characteristic", "V − E + F over all faces (0 on a torus).")
    n_dropped_faces = _result("n_dropped_faces", "Faces that are not rings (outer or winding faces).")
    one_sided = _result("one_sided", "Points method: Voronoi sides (i, j) chosen by i only (atom indices).")

    # -- computation ----------------------------------------------------------------------
    def compute(self, structure: Structure) -> "RingAnalysis":
        """Find the rings of ``structure`` (2D, or a 3D sheet in the xy plane); returns self."""
        atoms, positions, box, bilayer = _in_plane(structure, self.node, self.layer)
        cutoff = self.cutoff or DEFAULT_CUTOFF["bilayer" if bilayer else "monolayer"]
        has_bridge = bool(np.any(structure.species == self.bridge))
        method = self.method
        if method == "auto":
            has_bonds = structure.bonds is not None and len(structure.bonds) > 0
            method = "bonds" if has_bonds else "bridges" if has_bridge else "points"
        one_sided = np.zeros((0, 2), np.int64)
        open_cell = np.zeros(0, np.int64)
        if method == "points":
            vb = voronoi_bonds(positions, box, self.sides)
            i, j, img = vb.bonds[:, 0], vb.bonds[:, 1], vb.images
            one_sided = atoms[vb.one_sided]
            open_cell = atoms[vb.open_cell]
        else:
            if method == "bonds":
                if structure.bonds is None or len(structure.bonds) == 0:
                    raise InputError("method 'bonds' needs a structure with bonds")
                pi, pj = structure.bonds.T
                pimg = structure.bond_images
            else:
                if not has_bridge:
                    raise InputError(f"method 'bridges' needs {self.bridge} atoms; none found")
                pi, pj, pimg, _ = neighbor_pairs(structure.positions, structure.box, cutoff)
            local = np.full(structure.n_atoms, -1)
            local[atoms] = np.arange(len(atoms))
            i, j, img = _node_edges(pi, pj, pimg, local, structure.species == self.bridge)
            if len(i) == 0:
                raise InputError(f"no {self.node}–{self.node} bonds found by method {method!r}")
        bonds, images = _canonical_edges(i, j, img[:, :2])
        network = Network(_frozen(positions), box, _frozen(atoms), _frozen(bonds), _frozen(images))
        results = _rings(network, structure.n_atoms, self.sides, open_cell)
        coordination = {f"{self.node}-{self.node}": _check(network.degree, self.sides, atoms)}
        if has_bridge:
            coordination.update(_bridge_coordination(structure, cutoff, self.node, self.bridge, bilayer))
        results.update(
            network=network, method_used=method, n_atoms=structure.n_atoms, one_sided=_frozen(one_sided),
            n_node_atoms=int(np.count_nonzero(structure.species == self.node)),
            coordination=coordination, cutoff=None if method == "points" and not has_bridge else cutoff,
            coordination_ok=all(c["violators"] == 0 for c in coordination.values()),
            layer=self.layer if bilayer else None,
        )
        self._results = results
        return self

    @property
    def results(self) -> dict:
        """A deep copy of every result, by name."""
        return copy.deepcopy(self._computed())

    def summary(self) -> dict:
        """The scalar results as a JSON-friendly dict (ring_sizes: size -> count)."""
        r = self._computed()
        sizes, counts = np.unique(r["ring_sizes"], return_counts=True)
        return {
            "n_atoms": r["n_atoms"],
            "n_si": r["n_node_atoms"],
            "n_network_si": len(r["network"].atoms),
            "method": r["method_used"],
            "layer": r["layer"],
            "cutoff": r["cutoff"],
            "n_bonds": len(r["network"].bonds),
            "n_rings": r["n_rings"],
            "ring_sizes": {int(s): int(c) for s, c in zip(sizes, counts, strict=True)},
            "distribution": dict(r["distribution"]),
            "mu2": r["mu2"],
            "alpha": r["alpha"],
            "coordination_ok": r["coordination_ok"],
            "coordination": {k: {key: copy.deepcopy(v[key]) for key in ("expected", "violators", "histogram")}
                             for k, v in r["coordination"].items()},
            "euler_characteristic": r["euler_characteristic"],
            "n_dropped_faces": r["n_dropped_faces"],
            "n_boundary_rings": int(r["boundary_rings"].sum()),
            "n_one_sided": len(r["one_sided"]),
        }

    def _computed(self) -> dict:
        if self._results is None:
            raise AttributeError("RingAnalysis results are not available before compute()")
        return self._results


# -- network construction ---------------------------------------------------------------------

def _in_plane(structure, node, layer):
    """Node atom indices, their in-plane positions, the 2D box, and whether it is a bilayer."""
    atoms = np.flatnonzero(structure.species == node)
    if len(atoms) < 3:
        raise InputError(f"ring analysis needs at least 3 {node} atoms, found {len(atoms)}")
    box = structure.box
    if structure.dim == 2:
        return atoms, structure.positions[atoms].copy(), box, False
    cell = box.cell
    if np.abs(cell[:2, 2]).max() > 1e-9 or (box.pbc[2] and np.abs(cell[2, :2]).max() > 1e-9):
        raise InputError("a 3D structure must be a sheet in the xy plane (cell a, b in plane, c along z)")
    z = structure.positions[atoms, 2]
    bilayer = bool(np.ptp(z) > LAYER_GAP)
    if bilayer:
        atoms = atoms[z > z.mean()] if layer == "top" else atoms[z < z.mean()]
    plane = Box(cell[:2, :2], box.pbc[:2], box.origin[:2])
    return atoms, structure.positions[atoms, :2].copy(), plane, bilayer


def _node_edges(i, j, images, local, is_bridge):
    """Node–node edges from pairs (i, j, image): direct node–node pairs, and node pairs
    bonded to the same bridging atom. Returns local node indices and images."""
    li, lj = local[i], local[j]
    direct = (li >= 0) & (lj >= 0)
    # (bridge, node, image of the node seen from the bridge)
    a = (li >= 0) & is_bridge[j]
    b = is_bridge[i] & (lj >= 0)
    o = np.concatenate([j[a], i[b]])
    s = np.concatenate([li[a], lj[b]])
    n = np.concatenate([-images[a], images[b]])
    order = np.argsort(o, kind="stable")
    o, s, n = o[order], s[order], n[order]
    ei, ej, eimg = [li[direct]], [lj[direct]], [images[direct]]
    for off in range(1, len(o)):
        same = o[:-off] == o[off:]
        if not same.any():
            break
        k = np.flatnonzero(same)
        ei.append(s[k])
        ej.append(s[k + off])
        eimg.append(n[k + off] - n[k])
    return np.concatenate(ei), np.concatenate(ej), np.concatenate(eimg).astype(np.int64)


def _canonical_edges(i, j, images):
    """Each undirected edge once (i < j, or i == j with a positive image); self-bonds dropped."""
    images = np.asarray(images, np.int64)
    negative = (images[:, 0] < 0) | ((images[:, 0] == 0) & (images[:, 1] < 0))
    flip = (i > j) | ((i == j) & negative)
    i, j = np.where(flip, j, i), np.where(flip, i, j)
    images = np.where(flip[:, None], -images, images)
    keep = (i != j) | images.any(axis=1)
    rows = np.unique(np.column_stack([i, j, images])[keep], axis=0)
    return rows[:, :2].copy(), rows[:, 2:].copy()


# -- faces ------------------------------------------------------------------------------------

def _rings(network: Network, n_atoms: int, expected: int, edge_atoms) -> dict:
    """Walk the faces of ``network`` and derive every ring result (``edge_atoms``: atom
    indices that make their rings boundary rings, besides those with fewer than ``expected``
    bonds)."""
    bonds, n_nodes = network.bonds, len(network.positions)
    m = len(bonds)
    vec = network.vectors
    tail = np.concatenate([bonds[:, 0], bonds[:, 1]])
    hvec = np.concatenate([vec, -vec])
    himg = np.concatenate([network.images, -network.images])
    h = 2 * m
    angle = np.arctan2(hvec[:, 1], hvec[:, 0])
    order = np.lexsort((angle, tail))
    rank = np.empty(h, np.int64)
    rank[order] = np.arange(h)
    degree = np.bincount(tail, minlength=n_nodes)
    start = np.cumsum(degree) - degree
    twin = (np.arange(h) + m) % h
    at = tail[twin]  # the node a half-edge arrives at
    nxt = order[start[at] + (rank[twin] - start[at] - 1) % degree[at]]  # next clockwise

    cycles = _cycles(nxt.tolist(), tail.tolist())
    sizes = np.array([len(c) for c in cycles], np.int64)
    walk = np.concatenate(cycles) if cycles else np.zeros(0, np.int64)
    first = np.cumsum(sizes) - sizes
    face = np.repeat(np.arange(len(cycles)), sizes)
    v = hvec[walk]
    csum = np.cumsum(v, axis=0)
    rel = csum - v - (csum[first] - v[first])[face]  # vertex k relative to vertex 0 of its face
    area = 0.5 * np.add.reduceat(rel[:, 0] * v[:, 1] - rel[:, 1] * v[:, 0], first) if len(walk) else np.zeros(0)
    net = np.add.reduceat(himg[walk], first, axis=0) if len(walk) else np.zeros((0, 2), np.int64)
    scale = network.box.area / max(n_nodes, 1) if network.box.pbc.all() else 1.0
    ring_face = np.flatnonzero(~net.any(axis=1) & (area > 1e-9 * scale))
    ring_of_face = np.full(len(cycles), -1)
    ring_of_face[ring_face] = np.arange(len(ring_face))

    verts = network.positions[tail[walk[first]]][face] + rel
    polygons, rings = [], []
    for f in ring_face:
        sl = slice(first[f], first[f] + sizes[f])
        polygons.append(_frozen(verts[sl]))
        rings.append(_frozen(network.atoms[tail[walk[sl]]]))
    ring_sizes = sizes[ring_face]
    centres = np.array([p.mean(axis=0) for p in polygons]).reshape(-1, 2)
    if len(centres) and network.box.pbc.any():  # an open box may have no cell to wrap with
        centres = network.box.wrap(centres)

    place = np.argsort(walk)  # position of each half-edge in the walk
    half_ring = ring_of_face[face[place]]  # ring of each half-edge (−1: dropped face)
    r1, r2 = half_ring[:m], half_ring[m:]
    # a bond with the same ring on both sides separates it from its own periodic image, unless
    # both sides are walked at the same place (a dangling bond inside the ring)
    gap = rel[place[m:]] - rel[place[:m]] - vec
    shared = (r1 >= 0) & (r2 >= 0) & ((r1 != r2) | (np.linalg.norm(gap, axis=1) > 1e-6))
    ring_pairs = np.sort(np.column_stack([r1[shared], r2[shared]]), axis=1)

    defect_rings = ring_sizes != 6
    defect_map = np.zeros(n_atoms, bool)
    if defect_rings.any():
        defect_map[np.concatenate([rings[k] for k in np.flatnonzero(defect_rings)])] = True
    edge_atom = np.zeros(n_atoms, bool)
    edge_atom[network.atoms[network.degree < expected]] = True
    edge_atom[edge_atoms] = True
    boundary = np.array([edge_atom[r].any() for r in rings], bool)
    outer = (r1 < 0) ^ (r2 < 0)  # bonds between a ring and a dropped face
    boundary[np.concatenate([r1[outer & (r1 >= 0)], r2[outer & (r2 >= 0)]])] = True
    n_rings = len(rings)
    return {
        "n_rings": n_rings,
        "ring_sizes": _frozen(ring_sizes),
        "rings": tuple(rings),
        "ring_polygons": tuple(polygons),
        "ring_centres": _frozen(centres),
        "ring_areas": _frozen(area[ring_face]),
        "ring_pairs": _frozen(ring_pairs),
        "distribution": ring_size_distribution(ring_sizes) if n_rings else {},
        "mu2": ring_size_variance(ring_sizes) if n_rings else float("nan"),
        "alpha": aboav_weaire_alpha(ring_sizes, ring_pairs) if len(ring_pairs) else float("nan"),
        "defect_rings": _frozen(defect_rings),
        "defect_map": _frozen(defect_map),
        "boundary_rings": _frozen(boundary),
        "euler_characteristic": int(n_nodes - m + len(cycles)),
        "n_dropped_faces": int(len(cycles) - n_rings),
    }


def _cycles(nxt: list, tail: list) -> list:
    """Cycles of the permutation ``nxt``, each rotated to start at its smallest tail node."""
    seen = [False] * len(nxt)
    out = []
    for h0 in range(len(nxt)):
        if seen[h0]:
            continue
        cycle = []
        h = h0
        while not seen[h]:
            seen[h] = True
            cycle.append(h)
            h = nxt[h]
        k = min(range(len(cycle)), key=lambda q: tail[cycle[q]])
        out.append(np.array(cycle[k:] + cycle[:k], np.int64))
    return out


# -- coordination -----------------------------------------------------------------------------

def _check(counts, expected, atoms) -> dict:
    """Coordination summary: expected value, violators (count and atom indices), histogram."""
    bad = counts != expected
    values, number = np.unique(counts, return_counts=True)
    return {
        "expected": expected,
        "violators": int(bad.sum()),
        "atoms": _frozen(atoms[bad]),
        "histogram": {int(v): int(c) for v, c in zip(values, number, strict=True)},
    }


def _bridge_coordination(structure, cutoff, node, bridge, bilayer) -> dict:
    """Node–bridge and bridge–node coordination within ``cutoff`` (all layers)."""
    i, j, _, _ = neighbor_pairs(structure.positions, structure.box, cutoff)
    species = structure.species
    nodes = np.flatnonzero(species == node)
    bridges = np.flatnonzero(species == bridge)
    cross = ((species[i] == node) & (species[j] == bridge)) | ((species[i] == bridge) & (species[j] == node))
    count = np.bincount(np.concatenate([i[cross], j[cross]]), minlength=structure.n_atoms)
    return {
        f"{node}-{bridge}": _check(count[nodes], 4 if bilayer else 3, nodes),
        f"{bridge}-{node}": _check(count[bridges], 2, bridges),
    }


def _frozen(array) -> np.ndarray:
    array = np.asarray(array)
    array.flags.writeable = False
    return array
