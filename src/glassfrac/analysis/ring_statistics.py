"""Ring-size statistics of a 2D network: distribution p_n, variance mu2, Aboav–Weaire alpha.

Aboav–Weaire is used in the normalised form of reference/protocols.md §1,

    n · m_n = 36 + mu2 + 6 (1 − alpha) (n − 6),

where m_n is the mean size of the rings adjacent (sharing an edge) to n-rings. ``alpha``
is the least-squares slope fit of that line through the point (6, 36 + mu2), each ring size
weighted by its number of rings. With this normalisation alpha = 1/3 is the value observed in
2D silica (FC22), and mu2 is the variance of the ring-size distribution itself (not of the
edge-weighted one, a known slip in one public code).
"""

import numpy as np


def ring_size_distribution(sizes) -> dict[int, float]:
    """p_n: fraction of rings of each size n (sizes sorted)."""
    sizes = np.asarray(sizes, dtype=int)
    values, counts = np.unique(sizes, return_counts=True)
    return {int(v): float(c) / len(sizes) for v, c in zip(values, counts, strict=True)}


def ring_size_variance(sizes) -> float:
    """mu2 = sum_n p_n (n − <n>)^2 (equals sum p_n (n − 6)^2 when the mean is 6)."""
    sizes = np.asarray(sizes, dtype=float)
    return float(np.mean((sizes - sizes.mean()) ** 2))


def neighbour_mean_sizes(sizes, ring_pairs) -> dict[int, float]:
    """m_n: mean size of the rings adjacent to n-rings.

    ``ring_pairs`` (E, 2) lists adjacent rings once per shared edge (a pair that shares two
    edges, possible in small periodic cells, counts twice).
    """
    sizes = np.asarray(sizes, dtype=int)
    pairs = np.asarray(ring_pairs, dtype=int).reshape(-1, 2)
    a, b = pairs[:, 0], pairs[:, 1]
    centre = np.concatenate([sizes[a], sizes[b]])
    neighbour = np.concatenate([sizes[b], sizes[a]])
    out = {}
    for n in np.unique(centre):
        out[int(n)] = float(neighbour[centre == n].mean())
    return out


def aboav_weaire_alpha(sizes, ring_pairs) -> float:
    """alpha of the normalised Aboav–Weaire law (module docstring); nan if all rings are equal."""
    sizes = np.asarray(sizes, dtype=int)
    mu2 = ring_size_variance(sizes)
    m = neighbour_mean_sizes(sizes, ring_pairs)
    p = ring_size_distribution(sizes)
    n = np.array([k for k in m if k != 6], dtype=float)
    if len(n) == 0:
        return float("nan")
    w = np.array([p[int(k)] for k in n])
    y = np.array([k * m[int(k)] for k in n]) - 36.0 - mu2
    slope = np.sum(w * (n - 6) * y) / np.sum(w * (n - 6) ** 2)
    return float(1.0 - slope / 6.0)
