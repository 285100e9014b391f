"""Window datasets of the LISTI predictors (LISTI25 §5): the Si network around each probe centre
as a graph, an image or a padded sequence, plus ring statistics for a physics-free baseline.

Decisions recorded here:

- The network: Si (centres of the SiO3 triangles) and Si–Si bonds through a shared O, from
  :class:`~glassfrac.analysis.rings.RingAnalysis` (method ``auto``: bonds of the file, else O
  bridges, else the Voronoi rule for Si-only structures such as microscope data).
- A window holds the Si within ``radius`` of its centre (default 11 Å = LISTI25's free region
  R_free: 30–38 Si, as in the paper; the frozen shell is not part of it). Bonds join Si that
  are both inside. R_free predicted better than R_free + shell: GNN trained 40 epochs on 4
  probed 1440-atom samples (16 × 16 grids), correlation on a held-out sample 0.78 at 11 Å,
  0.74 at 16 Å, 0.66 at 21 Å (R_free + shell), at 1×, 1.8× and 3.3× the training time.
- Everything is expressed in the load frame: coordinates relative to the centre, rotated by
  −``load_angle`` so that x is the stretch direction of the probe. Translating a window, or
  rotating it together with the load, gives the same numbers up to rounding; rotating the
  window alone does not (the threshold depends on the load direction).
- Pure shear along x is unchanged by the mirrors x → −x and y → −y, so a window and its
  mirror images have the same threshold; :meth:`GraphSet.mirrored` and the image/sequence
  builders apply them exactly (training augmentation, symmetrised prediction).
- Graph (PyTorch Geometric ``Data``): ``pos`` (n, 2) Å; node features ``x`` = x/R, y/R, r/R,
  (n_k − 6)/2 for the three rings around the Si (sizes sorted, 6 where a ring is missing at an
  open edge), degree − 3, the smallest and largest angle between consecutive Si–Si bonds
  minus 120°, in units of 10° (bond-angle strain; the whole network, so exact at window edges);
  edges in both directions with ``edge_attr`` = unit vector (ux, uy),
  cos 2θ, sin 2θ of the bond angle θ to the load axis, (L − 3.0 Å)/0.05 Å (bond length
  deviation; relaxed Si–Si bonds are 3.01 ± 0.03 Å). Stored concatenated (``node_ptr``,
  ``edge_ptr``) so that a batch of thousands of windows is a few array gathers.
- Image (:func:`window_images`): ``size`` × ``size`` pixels over the square [−R, R]² (default
  64 px, 0.34 Å/px; LISTI25 used 220 px, too slow for CPU training here); a Si is a Gaussian
  spot of σ 0.6 Å, a bond a line of Gaussian profile σ 0.3 Å; intensity = the largest of them,
  in [0, 1] (LISTI25: grayscale min–max normalised).
- Sequence (:func:`window_sequences`): Si coordinates (x/R, y/R), padded to ``length`` (38,
  LISTI25) with a length for masking. Order as LISTI25's rows of the starting lattice: rows of
  ``row_height`` (2.6 Å ≈ the honeycomb row spacing) from top to bottom, left to right in a row.
  A window with more Si keeps the ``length`` nearest to its centre (``truncated`` counts them).
- Baseline features (:func:`ring_features`): number of rings of size 4, 5, 6, 7, 8, ≥ 9 whose
  centre lies in the window, their mean size and variance mu2 around 6, and the Si count.

Dataset layout (:func:`load_probed`), one folder per sample::

    DATASET/<sample>/structure.xyz   relaxed undeformed structure (any format ``read`` knows)
    DATASET/<sample>/map.npz         probe map (:class:`glassfrac.labels.probe.ThresholdMap`)
    DATASET/<sample>/events.json     optional: {"events": [{"location": [x, y], ...}, ...]},
                                     the shear events (``shear_test`` labels, Å)
    DATASET/split.json               optional: {"train": [...], "validation": [...], "test": [...]}
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.core.errors import InputError
from glassfrac.labels.probe import ThresholdMap, event_sites
from glassfrac.structure import Box, Structure, neighbor_pairs, read

KINDS = ("gnn", "cnn", "lstm", "baseline")
"""The LISTI window models (:mod:`glassfrac.learn.listi`): graph, image and sequence networks, and a
gradient-boosted baseline on ring statistics."""

NODE_FEATURES = ("x/R", "y/R", "r/R", "ring_1", "ring_2", "ring_3", "degree", "angle_min", "angle_max")
EDGE_FEATURES = ("ux", "uy", "cos2theta", "sin2theta", "dlength")
BOND_LENGTH = 3.0
"""Reference Si–Si distance of the bond-length feature, Å."""
BOND_SCALE = 0.05
"""Scale of the bond-length feature, Å."""
ANGLE_SCALE = np.radians(10.0)
"""Scale of the bond-angle features, rad (relaxed Si–Si–Si angles are 120° ± about 10°)."""
RING_SIZES = (4, 5, 6, 7, 8, 9)
"""Ring sizes counted by the baseline features (the last bin holds 9 and larger)."""
BASELINE_FEATURES = tuple(f"rings_{n}" for n in RING_SIZES[:-1]) + ("rings_9+", "mean_ring", "mu2", "n_si")

# per-feature sign under the mirrors x -> -x and y -> -y (indices of NODE_FEATURES, EDGE_FEATURES)
_NODE_ODD = ((0,), (1,))
_EDGE_ODD = ((0, 3), (1, 3))


@dataclass(frozen=True)
class WindowSpec:
    """Window geometry and renderings: lengths in Å, image size in pixels."""

    radius: float = 11.0
    image_size: int = 64
    sequence_length: int = 38
    spot_sigma: float = 0.6
    line_sigma: float = 0.3
    row_height: float = 2.6

    def to_dict(self) -> dict:
        return asdict(self)


# -- the Si network of a sample -----------------------------------------------------------------

@dataclass(frozen=True)
class SiNetwork:
    """Si positions (n, 2) Å with their bonds (E, 2) and periodic images (E, 2), the sorted sizes
    of the three rings around each Si (n, 3), Si degree (n,), ring centres (R, 2) Å and sizes,
    and the smallest and largest angle (n, 2) rad between consecutive bonds of each Si."""

    positions: np.ndarray
    box: Box
    bonds: np.ndarray
    images: np.ndarray
    rings: np.ndarray
    degree: np.ndarray
    ring_centres: np.ndarray
    ring_sizes: np.ndarray
    angles: np.ndarray

    @classmethod
    def from_structure(cls, structure: Structure, method: str = "auto") -> "SiNetwork":
        """The Si network of a 2D structure (module docstring)."""
        analysis = RingAnalysis(method=method).compute(structure)
        net = analysis.network
        node = np.full(structure.n_atoms, -1)
        node[net.atoms] = np.arange(len(net.atoms))
        members = analysis.rings
        sizes = np.asarray(analysis.ring_sizes)
        rings = np.full((len(net.atoms), 3), 6, np.int64)
        if members:
            ring_id = np.repeat(np.arange(len(members)), [len(m) for m in members])
            pairs = np.unique(np.column_stack([node[np.concatenate(members)], ring_id]), axis=0)
            si, size = pairs[:, 0], sizes[pairs[:, 1]]
            order = np.lexsort((size, si))
            si, size = si[order], size[order]
            start = np.searchsorted(si, si)
            rank = np.arange(len(si)) - start
            keep = rank < 3
            rings[si[keep], rank[keep]] = size[keep]
            rings.sort(axis=1)
        return cls(np.asarray(net.positions, float), net.box, np.asarray(net.bonds), np.asarray(net.images),
                   rings, np.asarray(net.degree), np.asarray(analysis.ring_centres, float).reshape(-1, 2), sizes,
                   _bond_angles(len(net.atoms), np.asarray(net.bonds).reshape(-1, 2), net.vectors))


def _bond_angles(n: int, bonds, vectors) -> np.ndarray:
    """Smallest and largest angle (n, 2) rad between angularly consecutive bonds of each node
    (2π/3 for nodes with fewer than two bonds)."""
    out = np.full((n, 2), 2 * np.pi / 3)
    if len(bonds) == 0:
        return out
    node = np.concatenate([bonds[:, 0], bonds[:, 1]])
    vectors = np.asarray(vectors, float).reshape(-1, 2)
    direction = np.arctan2(*np.concatenate([vectors, -vectors])[:, ::-1].T)
    order = np.lexsort((direction, node))
    node, direction = node[order], direction[order]
    first = np.flatnonzero(np.r_[True, node[1:] != node[:-1]])
    count = np.diff(np.r_[first, len(node)])
    gap = np.diff(direction, append=0.0)
    last = first + count - 1
    gap[last] = direction[first] + 2 * np.pi - direction[last]  # around to the first bond
    many = count >= 2
    out[node[first[many]], 0] = np.minimum.reduceat(gap, first)[many]
    out[node[first[many]], 1] = np.maximum.reduceat(gap, first)[many]
    return out


def _members(box: Box, centres, points, radius: float):
    """Points within ``radius`` of each centre: (window, point, vector from centre) sorted by
    window then point; vectors are minimum images, Å."""
    centres = np.asarray(centres, float).reshape(-1, 2)
    points = np.asarray(points, float).reshape(-1, 2)
    periodic = box.lengths[box.pbc]
    if len(periodic) and 2 * radius >= periodic.min():
        raise InputError(f"windows of radius {radius} Å need a periodic box longer than {2 * radius} Å")
    C = len(centres)
    i, j, _, vec = neighbor_pairs(np.concatenate([centres, points]), box, radius, full=True)
    keep = (i < C) & (j >= C)
    w, p, vec = i[keep], j[keep] - C, vec[keep]
    order = np.lexsort((p, w))
    return w[order], p[order], vec[order]


def _rotation(load_angle: float) -> np.ndarray:
    """Matrix taking lab-frame vectors (as rows, v @ M) into the load frame."""
    c, s = np.cos(load_angle), np.sin(load_angle)
    return np.array([[c, -s], [s, c]])


# -- graphs ---------------------------------------------------------------------------------------

@dataclass
class GraphSet:
    """Window graphs stored concatenated (module docstring). Graph g owns nodes
    ``node_ptr[g]:node_ptr[g+1]`` and edges ``edge_ptr[g]:edge_ptr[g+1]``; ``edge_index`` holds
    node numbers local to each graph. ``y``: Δτ (N/m, NaN if unknown); ``sample``: sample
    number; ``centres`` (G, 2) Å in the lab frame; ``ring_features`` (G, 9) baseline features."""

    x: np.ndarray
    pos: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    node_ptr: np.ndarray
    edge_ptr: np.ndarray
    y: np.ndarray
    sample: np.ndarray
    centres: np.ndarray
    ring_features: np.ndarray
    radius: float

    def __len__(self) -> int:
        return len(self.node_ptr) - 1

    @property
    def n_nodes(self) -> np.ndarray:
        return np.diff(self.node_ptr)

    def data(self, g: int):
        """Window ``g`` as a PyTorch Geometric ``Data`` (x, pos, edge_index, edge_attr, y)."""
        from torch_geometric.data import Data  # here: PyTorch Geometric takes ~1.4 s to import

        n = slice(self.node_ptr[g], self.node_ptr[g + 1])
        e = slice(self.edge_ptr[g], self.edge_ptr[g + 1])
        return Data(x=torch.as_tensor(self.x[n]), pos=torch.as_tensor(self.pos[n]),
                    edge_index=torch.as_tensor(self.edge_index[:, e]), edge_attr=torch.as_tensor(self.edge_attr[e]),
                    y=torch.as_tensor(self.y[g:g + 1]))

    def batch(self, index, flips=None) -> dict:
        """Graphs ``index`` as one disjoint graph: arrays x, pos, edge_index (global), edge_attr,
        batch (graph of each node), n_graphs. ``flips`` (len(index),) codes 0–3 mirror each
        window (bit 0: x → −x, bit 1: y → −y)."""
        index = np.asarray(index, np.int64)
        nodes, node_graph = _ranges(self.node_ptr, index)
        edges, edge_graph = _ranges(self.edge_ptr, index)
        counts = np.diff(self.node_ptr)[index]
        offset = np.cumsum(counts) - counts
        x, pos, attr = self.x[nodes], self.pos[nodes], self.edge_attr[edges]
        if flips is not None:
            flips = np.asarray(flips)
            x, pos, attr = x.copy(), pos.copy(), attr.copy()
            for bit in (0, 1):
                on = (flips >> bit) & 1 == 1
                n_on, e_on = on[node_graph], on[edge_graph]
                for col in _NODE_ODD[bit]:
                    x[n_on, col] *= -1
                for col in _EDGE_ODD[bit]:
                    attr[e_on, col] *= -1
                pos[n_on, bit] *= -1
        return {"x": x, "pos": pos, "edge_index": self.edge_index[:, edges] + offset[edge_graph],
                "edge_attr": attr, "batch": node_graph, "n_graphs": len(index)}

    def mirrored(self, flip: int) -> "GraphSet":
        """All windows mirrored (``flip`` as in :meth:`batch`)."""
        b = self.batch(np.arange(len(self)), np.full(len(self), flip))
        return GraphSet(b["x"], b["pos"], self.edge_index, b["edge_attr"], self.node_ptr, self.edge_ptr, self.y,
                        self.sample, self.centres, self.ring_features, self.radius)

    def subset(self, index) -> "GraphSet":
        """The windows ``index`` (in that order)."""
        index = np.asarray(index, np.int64)
        b = self.batch(index)
        node_ptr = np.concatenate([[0], np.cumsum(np.diff(self.node_ptr)[index])])
        edge_ptr = np.concatenate([[0], np.cumsum(np.diff(self.edge_ptr)[index])])
        local = b["edge_index"] - node_ptr[:-1][np.repeat(np.arange(len(index)), np.diff(edge_ptr))]
        return GraphSet(b["x"], b["pos"], local, b["edge_attr"], node_ptr, edge_ptr, self.y[index],
                        self.sample[index], self.centres[index], self.ring_features[index], self.radius)

    @staticmethod
    def concatenate(sets) -> "GraphSet":
        """One set of the windows of ``sets`` in order (same radius)."""
        sets = list(sets)
        if len({s.radius for s in sets}) > 1:
            raise InputError("cannot concatenate windows of different radii")

        def ptr(name):
            parts, total = [np.zeros(1, np.int64)], 0
            for s in sets:
                p = getattr(s, name)
                parts.append(p[1:] + total)
                total += p[-1]
            return np.concatenate(parts)

        return GraphSet(*(np.concatenate([getattr(s, k) for s in sets], axis=a) for k, a in
                          (("x", 0), ("pos", 0), ("edge_index", 1), ("edge_attr", 0))),
                        ptr("node_ptr"), ptr("edge_ptr"),
                        *(np.concatenate([getattr(s, k) for s in sets]) for k in
                          ("y", "sample", "centres", "ring_features")), sets[0].radius)


def _ranges(ptr, index):
    """Concatenated ranges ptr[i]:ptr[i+1] for i in ``index``, and the position in ``index`` of each."""
    counts = np.diff(ptr)[index]
    owner = np.repeat(np.arange(len(index)), counts)
    start = np.cumsum(counts) - counts
    return ptr[index][owner] + np.arange(counts.sum()) - start[owner], owner


def window_graphs(network: SiNetwork, centres, load_angle: float = 0.0, spec: WindowSpec | None = None,
                  targets=None, sample: int = 0) -> GraphSet:
    """Window graphs of ``network`` around ``centres`` (C, 2) Å (module docstring)."""
    spec = spec or WindowSpec()
    centres = np.asarray(centres, float).reshape(-1, 2)
    R = spec.radius
    w, s, rel = _members(network.box, centres, network.positions, R)
    C, n = len(centres), len(network.positions)
    p = rel @ _rotation(load_angle)
    node_count = np.bincount(w, minlength=C)
    node_ptr = np.concatenate([[0], np.cumsum(node_count)])
    # bonds (a, b) with both ends in a window: windows holding a, then look up (window, b)
    key = w * n + s
    a, b = network.bonds.T if len(network.bonds) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    by_si = np.argsort(s, kind="stable")
    si_ptr = np.concatenate([[0], np.cumsum(np.bincount(s, minlength=n))])
    src, bond_of = _ranges(si_ptr, a)
    src = by_si[src]
    dst = np.searchsorted(key, w[src] * n + b[bond_of])
    dst = np.minimum(dst, len(key) - 1)
    found = key[dst] == w[src] * n + b[bond_of]
    src, dst = src[found], dst[found]
    src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    edge_w = w[src]
    vec = p[dst] - p[src]
    L = np.linalg.norm(vec, axis=1)
    u = vec / np.maximum(L, 1e-12)[:, None]
    edge_attr = np.column_stack([u, u[:, 0] ** 2 - u[:, 1] ** 2, 2 * u[:, 0] * u[:, 1], (L - BOND_LENGTH) / BOND_SCALE])
    r = np.linalg.norm(p, axis=1)
    x = np.column_stack([p / R, r / R, (network.rings[s] - 6) / 2.0, network.degree[s] - 3.0,
                         (network.angles[s] - 2 * np.pi / 3) / ANGLE_SCALE])
    y = np.full(C, np.nan) if targets is None else np.asarray(targets, float).ravel()
    if len(y) != C:
        raise InputError(f"{len(y)} targets for {C} windows")
    edge_ptr = np.concatenate([[0], np.cumsum(np.bincount(edge_w, minlength=C))])
    return GraphSet(x.astype(np.float32), p.astype(np.float32),
                    np.stack([src, dst]) - node_ptr[edge_w], edge_attr.astype(np.float32), node_ptr, edge_ptr,
                    y.astype(np.float32), np.full(C, sample, np.int64), centres,
                    ring_features(network, centres, R, node_count), R)


def ring_features(network: SiNetwork, centres, radius: float, si_count=None) -> np.ndarray:
    """Baseline features (C, 9) of the windows (module docstring; names in BASELINE_FEATURES);
    ``si_count`` (C,): Si per window if already known."""
    centres = np.asarray(centres, float).reshape(-1, 2)
    C = len(centres)
    w, ring, _ = _members(network.box, centres, network.ring_centres, radius)
    size = network.ring_sizes[ring]
    out = np.zeros((C, len(BASELINE_FEATURES)))
    binned = np.minimum(size, RING_SIZES[-1])
    for k, n in enumerate(RING_SIZES):
        out[:, k] = np.bincount(w[binned == n], minlength=C)
    count = np.maximum(np.bincount(w, minlength=C), 1)
    out[:, 6] = np.bincount(w, weights=size, minlength=C) / count
    out[:, 7] = np.bincount(w, weights=(size - 6.0) ** 2, minlength=C) / count
    if si_count is None:
        si_count = np.bincount(_members(network.box, centres, network.positions, radius)[0], minlength=C)
    out[:, 8] = si_count
    return out


# -- images and sequences -------------------------------------------------------------------------

def window_images(graphs: GraphSet, spec: WindowSpec | None = None, flip: int = 0, chunk: int = 256) -> np.ndarray:
    """Grayscale images (G, size, size) float32 in [0, 1]; row i is y, column j is x
    (module docstring). ``flip`` mirrors the windows first (codes of :meth:`GraphSet.batch`).
    Each spot and line is drawn on the pixels within 3σ of it (beyond, the Gaussian is < 0.011)."""
    spec = spec or WindowSpec()
    size, R = spec.image_size, graphs.radius
    h = 2 * R / size
    out = torch.zeros(len(graphs) * size * size)
    for lo in range(0, len(graphs), chunk):
        index = np.arange(lo, min(lo + chunk, len(graphs)))
        b = graphs.batch(index, np.full(len(index), flip))
        pos = torch.as_tensor(b["pos"], dtype=torch.float64)
        src, dst = (torch.as_tensor(e) for e in b["edge_index"])
        half = src < dst
        owner = torch.as_tensor(b["batch"]) + lo
        p0, p1 = pos[src[half]], pos[dst[half]]
        reach = int(np.ceil(3 * spec.spot_sigma / h))
        _stamp(out, size, h, R, owner, pos, pos, reach, spec.spot_sigma)
        longest = float((p1 - p0).norm(dim=1).max()) if len(p0) else 0.0
        reach = int(np.ceil((longest / 2 + 3 * spec.line_sigma) / h))
        _stamp(out, size, h, R, owner[src[half]], p0, p1, reach, spec.line_sigma)
    return out.view(len(graphs), size, size).numpy()


def _stamp(out, size, h, R, owner, p0, p1, reach, sigma):
    """Draw segments p0–p1 (points when equal) of Gaussian profile ``sigma`` into the flat
    images ``out`` (max), on the (2 reach + 1)² pixels around each midpoint."""
    if len(p0) == 0:
        return
    mid = torch.floor((0.5 * (p0 + p1) + R) / h).long()  # (k, 2) pixel (column, row) of the midpoint
    offsets = torch.arange(-reach, reach + 1)
    col = mid[:, 0, None, None] + offsets[None, None, :]
    row = mid[:, 1, None, None] + offsets[None, :, None]
    col, row = torch.broadcast_tensors(col, row)
    centre = torch.stack([-R + (col + 0.5) * h, -R + (row + 0.5) * h], -1)  # (k, n, n, 2) Å
    d = (p1 - p0)[:, None, None, :]
    t = ((centre - p0[:, None, None, :]) * d).sum(-1) / (d**2).sum(-1).clamp(min=1e-12)
    closest = p0[:, None, None, :] + t.clamp(0, 1)[..., None] * d
    value = torch.exp(-((centre - closest) ** 2).sum(-1) / (2 * sigma**2)).float()
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    flat = (owner[:, None, None] * size + row) * size + col
    out.scatter_reduce_(0, flat[inside], value[inside], reduce="amax")


def window_sequences(graphs: GraphSet, spec: WindowSpec | None = None, flip: int = 0):
    """Padded Si coordinate sequences (G, length, 2) float32 (x/R, y/R, zero padding) and lengths
    (G,) (module docstring); windows with more Si keep the nearest ones (``truncated`` count)."""
    spec = spec or WindowSpec()
    G, L = len(graphs), spec.sequence_length
    b = graphs.batch(np.arange(G), np.full(G, flip))
    pos, owner = b["pos"].astype(float), b["batch"]
    r = np.linalg.norm(pos, axis=1)
    start = graphs.node_ptr[:-1][owner]
    by_distance = np.lexsort((r, owner))
    near_rank = np.empty(len(owner), np.int64)
    near_rank[by_distance] = np.arange(len(owner)) - start[by_distance]
    keep = near_rank < L
    row = np.floor((graphs.radius - pos[:, 1]) / spec.row_height)
    order = np.lexsort((pos[:, 0], row, owner))
    order = order[keep[order]]
    lengths = np.minimum(graphs.n_nodes, L)
    first = np.cumsum(lengths) - lengths
    slot = np.arange(len(order)) - first[owner[order]]
    seq = np.zeros((G, L, 2), np.float32)
    seq[owner[order], slot] = pos[order] / graphs.radius
    return seq, lengths.astype(np.int64), int((graphs.n_nodes > L).sum())


# -- probed samples on disk ---------------------------------------------------------------------------

@dataclass
class ProbedSample:
    """One probed sample: structure, Δτ per grid point (N/m) at ``centres`` (Å), the load angle
    (rad) of the probe and, if known, the shear event locations (k, 2) Å."""

    name: str
    structure: Structure
    threshold: np.ndarray
    centres: np.ndarray
    load_angle: float
    events: np.ndarray | None = None


def load_probed(directory) -> tuple[list, dict | None]:
    """Samples of a dataset folder (module docstring) in name order, and its split (or None)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("not a dataset folder (expected one subfolder per sample with structure + map.npz)",
                         directory)
    samples = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        if not (folder / "map.npz").is_file():
            continue
        files = sorted(folder.glob("structure.*"))
        if not files:
            raise InputError("no structure.* file next to map.npz", folder)
        m = ThresholdMap.load(folder / "map.npz")
        events = None
        if (folder / "events.json").is_file():
            listed = json.loads((folder / "events.json").read_text()).get("events", [])
            events = event_sites(listed)
        samples.append(ProbedSample(folder.name, read(files[0]), np.asarray(m.threshold, float).ravel(),
                                    np.asarray(m.centres, float), m.load_angle, events))
    if not samples:
        raise InputError("no sample folder with a map.npz", directory)
    split = None
    if (directory / "split.json").is_file():
        split = json.loads((directory / "split.json").read_text())
        names = {s.name for s in samples}
        unknown = sorted(set(sum((list(v) for v in split.values()), [])) - names)
        if unknown:
            raise InputError(f"split.json names samples that are not in the folder: {unknown[:5]}", directory)
    return samples, split


def build_windows(samples, spec: WindowSpec | None = None) -> GraphSet:
    """Window graphs of all ``samples`` (:class:`ProbedSample`), targets Δτ, sample numbers in order."""
    parts = []
    for k, s in enumerate(samples):
        network = SiNetwork.from_structure(s.structure)
        parts.append(window_graphs(network, s.centres, s.load_angle, spec, s.threshold, sample=k))
    return GraphSet.concatenate(parts)
