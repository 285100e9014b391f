"""Structural analyses of 3D oxides (DU21): partial RDFs, Al–O coordination, bond switching,
cumulative non-affine displacement, Voronoi volumes and per-atom stress, p_hop, clusters of
high values of a per-atom field (softness).

Distances in Å, volumes in Å³, stresses in GPa (tensile-positive, Voigt xx yy zz xy xz yz),
times in ps. Structures compared with each other must be the same atoms in the same order.
"""

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull, Voronoi

from glassfrac.analysis.nonaffine import d2min
from glassfrac.core.errors import InputError
from glassfrac.structure import Structure, neighbor_pairs

AL_O_CUTOFF = 2.25
"""Al–O bond cutoff of DU21 (first minimum of g_AlO), Å."""

SWITCH_CLASSES = ("DC", "IC", "SC", "UC")
"""Bond-switching classes per Al: coordination Decreased, Increased, Swapped a neighbour at
the same coordination, Unchanged."""


# -- radial distribution and coordination ---------------------------------------------------

def partial_rdf(structure: Structure, r_max: float = 8.0, bins: int = 320) -> dict:
    """Partial g_ab(r) for every species pair: ``{"r": centres, "Al-O": g, ...}``.

    g_ab(r) = V n_ab(r) / (N_a N_b 4π r² dr) with n_ab the number of (a, b) pairs at r,
    each unordered pair counted from both ends for a = b; g → 1 in an ideal gas.
    """
    i, j, _, vec = neighbor_pairs(structure.positions, structure.box, r_max, full=True)
    r = np.linalg.norm(vec, axis=1)
    edges = np.linspace(0.0, r_max, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    volume = structure.box.volume
    out = {"r": centres}
    symbols = sorted(np.unique(structure.species))
    for k, a in enumerate(symbols):
        for b in symbols[k:]:
            mask = (structure.species[i] == a) & (structure.species[j] == b)
            counts, _ = np.histogram(r[mask], bins=edges)
            na, nb = structure.count(a), structure.count(b)
            out[f"{a}-{b}"] = counts * volume / (na * nb * shell)
    return out


def first_minimum(r, g) -> float:
    """Position (Å) of the first minimum of g(r) after its first peak (3-bin smoothing)."""
    g = np.convolve(np.asarray(g, float), np.ones(3) / 3, mode="same")
    peak = int(np.argmax(g))
    after = g[peak:]
    rising = np.flatnonzero(np.diff(after) > 0)
    k = peak + (int(rising[0]) if len(rising) else len(after) - 1)
    return float(np.asarray(r)[k])


def neighbor_lists(structure: Structure, center: str = "Al", neighbor: str = "O",
                   cutoff: float = AL_O_CUTOFF) -> list[frozenset]:
    """For every ``center`` atom (in order), the set of ``neighbor`` atom indices within ``cutoff``."""
    i, j, _, _ = neighbor_pairs(structure.positions, structure.box, cutoff, full=True)
    keep = (structure.species[i] == center) & (structure.species[j] == neighbor)
    i, j = i[keep], j[keep]
    order = np.argsort(i, kind="stable")
    i, j = i[order], j[order]
    centers = np.flatnonzero(structure.species == center)
    bounds = np.searchsorted(i, np.append(centers, structure.n_atoms))
    bounds[-1] = len(i)
    return [frozenset(j[bounds[k]:bounds[k + 1]].tolist()) for k in range(len(centers))]


def coordination(structure: Structure, center: str = "Al", neighbor: str = "O",
                 cutoff: float = AL_O_CUTOFF) -> np.ndarray:
    """Coordination number of every ``center`` atom (``neighbor`` atoms within ``cutoff`` Å)."""
    return np.array([len(s) for s in neighbor_lists(structure, center, neighbor, cutoff)], dtype=int)


def coordination_fractions(structure: Structure, cutoff: float = AL_O_CUTOFF) -> dict:
    """Fraction of Al with 3, 4, 5, 6 (and any other) O neighbours: ``{"4": 0.6, ...}``."""
    cn = coordination(structure, "Al", "O", cutoff)
    values, counts = np.unique(cn, return_counts=True)
    return {str(int(v)): round(float(c) / len(cn), 6) for v, c in zip(values, counts, strict=True)}


# -- bond switching -------------------------------------------------------------------------

def bond_switching(reference: Structure, current: Structure, cutoff: float = AL_O_CUTOFF) -> dict:
    """Bond-switching class of every Al between two configurations.

    Returns ``classes`` (array of "DC"/"IC"/"SC"/"UC" per Al, in order), ``cn_reference``,
    ``cn_current``, ``fractions`` over all Al and ``by_reference_cn`` (fractions per initial
    coordination, e.g. how many Al5 decreased).
    """
    before = neighbor_lists(reference, cutoff=cutoff)
    after = neighbor_lists(current, cutoff=cutoff)
    cn0 = np.array([len(s) for s in before])
    cn1 = np.array([len(s) for s in after])
    same = np.array([a == b for a, b in zip(before, after, strict=True)], dtype=bool)
    classes = np.where(cn1 < cn0, "DC", np.where(cn1 > cn0, "IC", np.where(same, "UC", "SC")))
    out = {"classes": classes, "cn_reference": cn0, "cn_current": cn1,
           "fractions": _class_fractions(classes), "by_reference_cn": {}}
    for cn in np.unique(cn0):
        out["by_reference_cn"][str(int(cn))] = _class_fractions(classes[cn0 == cn])
    return out


def _class_fractions(classes) -> dict:
    n = max(len(classes), 1)
    return {c: float(np.count_nonzero(classes == c)) / n for c in SWITCH_CLASSES}


# -- non-affine displacement --------------------------------------------------------------

def cumulative_nonaffine(frames, cutoff: float = 4.0) -> np.ndarray:
    """D_i = Σ_s sqrt(D²min,i between frames s−1 and s) in Å (DU21), per atom, for a sequence of
    frames (unwrapped positions, same atoms). Returns (len(frames), N): D after each frame."""
    out = np.zeros((len(frames), frames[0].n_atoms))
    for s in range(1, len(frames)):
        out[s] = out[s - 1] + np.sqrt(d2min(frames[s - 1], frames[s], cutoff=cutoff))
    return out


# -- Voronoi volumes and per-atom stress -------------------------------------------------

def voronoi_volumes(structure: Structure, margin: float = 6.0) -> np.ndarray:
    """Voronoi cell volume of every atom (Å³) of a periodic 3D structure (scipy/Qhull on the
    atoms plus periodic images within ``margin`` Å of the cell). Double precision throughout:
    freud's voro++ takes single-precision positions, and its volumes differ by ~1e-6 relative."""
    box = structure.box
    if box.dim != 3 or not box.pbc.all():
        raise InputError("voronoi_volumes needs a 3D structure periodic on every axis")
    frac = box.fractional(structure.positions)
    frac -= np.floor(frac)
    spacing = 1.0 / np.linalg.norm(np.linalg.inv(box.cell), axis=0)
    pad = margin / spacing
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    shifts = shifts[np.argsort(np.abs(shifts).sum(1), kind="stable")]  # (0, 0, 0) first
    points = [frac + s for s in shifts]
    points = np.concatenate([p[np.all((p > -pad) & (p < 1 + pad), axis=1)] for p in points])
    vor = Voronoi(points @ box.cell)
    volumes = np.empty(structure.n_atoms)
    for k in range(structure.n_atoms):
        region = vor.regions[vor.point_region[k]]
        if -1 in region or not region:
            raise ValueError(f"open Voronoi cell for atom {k}; increase margin")
        volumes[k] = ConvexHull(vor.vertices[region]).volume
    return volumes


def per_atom_stress(structure: Structure, volumes=None) -> np.ndarray:
    """Per-atom stress (N, 6) in GPa: ``arrays['stress_volume']`` (GPa·Å³, the per-atom virial
    from :meth:`LammpsMD.structure`) over the atom's Voronoi volume."""
    if "stress_volume" not in structure.arrays:
        raise InputError("structure has no arrays['stress_volume']; take it with LammpsMD.structure(per_atom=True)")
    volumes = voronoi_volumes(structure) if volumes is None else np.asarray(volumes, float)
    return structure.arrays["stress_volume"] / volumes[:, None]


# -- p_hop ------------------------------------------------------------------------------------

def phop(positions, dt: float, t_r: float = 6.0) -> np.ndarray:
    """Hop indicator p_hop (Å²) of Candelier et al. (PRL 105, 135702, 2010), as used by
    Smessaert & Rottler (PRE 88, 022314, 2013) and DU21.

    For atom i at frame t, with the windows A = [t − t_R/2, t] and B = [t, t + t_R/2],

        p_hop(i, t) = sqrt( ⟨(r_i − ⟨r_i⟩_B)²⟩_A · ⟨(r_i − ⟨r_i⟩_A)²⟩_B )

    ⟨·⟩_W averaging over the frames in W. An atom that jumps by a at t has p_hop ≈ a²;
    a vibrating atom has p_hop ≈ its mean-square vibration. ``positions`` (T, N, 3) are
    unwrapped and ``dt`` ps apart; returns (T − 2h, N) for the frames t = h … T − 1 − h,
    h = round(t_R / (2 dt)).
    """
    x = np.asarray(positions, float)
    h = int(round(t_r / (2 * dt)))
    if h < 1 or x.shape[0] < 2 * h + 1:
        raise InputError(f"need at least {2 * h + 1} frames for t_R = {t_r} ps at dt = {dt} ps")
    w = h + 1  # frames per half window, the centre frame in both
    c1 = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    c2 = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(np.sum(x**2, axis=-1), axis=0)])
    t = np.arange(h, x.shape[0] - h)
    mean_a = (c1[t + 1] - c1[t - h]) / w
    mean_b = (c1[t + h + 1] - c1[t]) / w
    sq_a = (c2[t + 1] - c2[t - h]) / w
    sq_b = (c2[t + h + 1] - c2[t]) / w
    # <(r - m)^2>_W = <r^2>_W - 2 <r>_W . m + m^2
    a_about_b = sq_a - 2 * np.sum(mean_a * mean_b, -1) + np.sum(mean_b**2, -1)
    b_about_a = sq_b - 2 * np.sum(mean_b * mean_a, -1) + np.sum(mean_a**2, -1)
    return np.sqrt(np.clip(a_about_b * b_about_a, 0.0, None))


def hop_labels(phop_values, high: float = 0.2, low: float = 0.05) -> np.ndarray:
    """Per-atom labels from p_hop (T, N) (DU21): 1 if p_hop ever exceeds ``high`` Å²
    (rearranging), 0 if it stays below ``low`` Å² throughout, −1 otherwise (left out)."""
    peak = np.asarray(phop_values).max(axis=0)
    return np.where(peak > high, 1, np.where(peak < low, 0, -1))


# -- clusters of high values ----------------------------------------------------------------

def high_value_clusters(structure: Structure, values, fraction: float = 0.1, cutoff: float = 3.7,
                        species: str | None = "Al") -> dict:
    """Clusters of the atoms with the top ``fraction`` of a per-atom field (e.g. softness),
    among ``species`` (all atoms if None), linked when closer than ``cutoff`` Å (DU21: top
    10 % softness Al, 3.7 Å). Returns the count, the largest size, the sizes and a label per
    atom (−1 for atoms not selected)."""
    values = np.asarray(values, float)
    if values.shape != (structure.n_atoms,):
        raise InputError(f"values must have one entry per atom ({structure.n_atoms}), got {values.shape}")
    pool = np.flatnonzero(structure.species == species) if species else np.arange(structure.n_atoms)
    n_top = int(round(fraction * len(pool)))
    chosen = pool[np.argsort(-values[pool], kind="stable")[:n_top]]
    labels = np.full(structure.n_atoms, -1)
    if n_top == 0:
        return {"n_selected": 0, "n_clusters": 0, "largest": 0, "sizes": [], "labels": labels}
    sub = structure.select(chosen)
    i, j, _, _ = neighbor_pairs(sub.positions, sub.box, cutoff)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n_top, n_top))
    n_clusters, sub_labels = connected_components(graph, directed=False)
    labels[chosen] = sub_labels
    sizes = np.sort(np.bincount(sub_labels))[::-1]
    return {"n_selected": n_top, "n_clusters": int(n_clusters), "largest": int(sizes[0]),
            "sizes": sizes.tolist(), "labels": labels}


def switching_curve(frames, cutoff: float = AL_O_CUTOFF) -> dict:
    """Bond-switching fractions of every frame relative to the first: ``{"DC": array, ...}``
    (one value per frame; the first frame is all UC)."""
    rows = [bond_switching(frames[0], f, cutoff)["fractions"] for f in frames]
    return {c: np.array([r[c] for r in rows]) for c in SWITCH_CLASSES}
