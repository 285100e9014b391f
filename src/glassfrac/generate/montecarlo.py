"""Monte Carlo bond switching towards a target ring-size distribution and Aboav–Weaire alpha.

Cost (reference/protocols.md §1):

    C = w · |alpha − alpha_t| + Σ_n |p_n − p_n,t| / max(p_n,t, 1/N)

over the allowed ring sizes n, N = number of rings. The floor 1/N on the denominator is our
choice for sizes whose target is (nearly) zero: a ring of such a size costs about 1, as much
as in a size expected once, instead of a divergent or vanishing penalty. Metropolis at
temperature T (1e-4, FC22); a move switches one random dual edge (``DualLattice.switch``)
and is refused outright if a ring would leave the allowed size window.

Alpha (normalised Aboav–Weaire, ``glassfrac.analysis.ring_statistics``) is updated in O(1) per
move: with d_i = n_i − 6 and a mean ring size of exactly 6 (true for any periodic
3-coordinated planar network), the weighted least-squares slope reduces to

    alpha = −A / (3 B),   A = Σ_edges d_i d_j,   B = Σ_rings d_i²  (= N·mu2),

and a switch changes d only on its four rings, so A and B change by sums over their
neighbours. Both are integers, so they never drift. When B = 0 (perfect honeycomb) alpha is
undefined and counts as 0 in the cost.

Annealing (our addition; ``anneal=False`` gives FC22's constant T): a move costs of order
1/N, so a fixed T is relatively hotter for larger samples, and at a constant T = 1e-4 the
switching gets stuck with alpha ≈ 0.30–0.31 instead of 1/3 (measured, 288 and 2000 rings).
By default the temperature therefore falls geometrically from 3/N to T over the first 80 % of
the steps and stays at T for the rest; with 300 attempted switches per ring this reaches
alpha = 0.33 ± 0.01 at 288 and 2000 rings for mu2 from 0.2 to 1.0 (benchmarks/generate.py).
"""

import math
from dataclasses import dataclass

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.core.progress import progress as progress_bar
from glassfrac.generate.dual import DualLattice
from glassfrac.generate.targets import RingSizeTarget

TEMPERATURE = 1e-4
"""Metropolis temperature of the cost (FC22)."""
ALPHA_WEIGHT = 10.0
"""Weight w of the Aboav–Weaire term in the cost (FC22 and LISTI25 codes)."""
STEPS_PER_RING = 300
"""Default number of attempted switches per ring (FC22: 1e4 for 288 rings, ≈ 35)."""
ANNEAL_START = 3.0
"""Starting temperature of the anneal times the number of rings."""


@dataclass
class SwitchResult:
    """Outcome of :func:`bond_switch`: attempted and accepted moves, final cost and statistics."""

    steps: int
    accepted: int
    cost: float
    mu2: float
    alpha: float


def alpha_from_sizes(sizes, edges) -> float:
    """Normalised Aboav–Weaire alpha = −Σ_edges d_i d_j / (3 Σ_i d_i²), d = n − 6 (module
    docstring); nan for a perfect honeycomb. Valid when the mean ring size is 6."""
    d = np.asarray(sizes, dtype=np.int64) - 6
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    b = int(np.sum(d * d))
    if b == 0:
        return float("nan")
    return -float(np.sum(d[edges[:, 0]] * d[edges[:, 1]])) / (3.0 * b)


def switch_cost(sizes, edges, target: RingSizeTarget, alpha: float = 1 / 3,
                weight: float = ALPHA_WEIGHT) -> float:
    """The cost C of a ring network (module docstring), evaluated from scratch."""
    sizes = np.asarray(sizes, dtype=np.int64)
    n = len(sizes)
    a = alpha_from_sizes(sizes, edges)
    p = np.array([np.count_nonzero(sizes == s) for s in target.sizes]) / n
    den = np.maximum(target.p, 1.0 / n)
    return weight * abs((0.0 if math.isnan(a) else a) - alpha) + float(
        np.sum(np.abs(p - target.p) / den))


def default_steps(n_rings: int) -> int:
    """Default number of attempted switches: ``STEPS_PER_RING`` per ring."""
    return STEPS_PER_RING * int(n_rings)


def temperature_schedule(steps: int, n_rings: int, temperature: float = TEMPERATURE,
                         anneal: bool = True) -> np.ndarray:
    """Temperature of each step (module docstring): geometric cooling from
    ``ANNEAL_START / n_rings`` to ``temperature`` over the first 80 % of the steps, then
    constant; constant throughout without ``anneal`` or if the start would be colder."""
    temps = np.full(steps, float(temperature))
    t_start = ANNEAL_START / n_rings
    if anneal and t_start > temperature:
        n_cool = int(0.8 * steps)
        temps[:n_cool] = t_start * (temperature / t_start) ** (np.arange(n_cool) / max(n_cool, 1))
    return temps


def bond_switch(dual: DualLattice, target: RingSizeTarget, alpha: float = 1 / 3,
                steps: int | None = None, rng=None, weight: float = ALPHA_WEIGHT,
                temperature: float = TEMPERATURE, anneal: bool = True,
                progress: bool | None = None) -> SwitchResult:
    """Run ``steps`` attempted switches on ``dual`` in place (module docstring).

    ``rng`` is a numpy Generator or a seed. ``steps`` defaults to :func:`default_steps`.
    """

    rng = np.random.default_rng(rng)
    nbr = dual.neighbours
    n = len(nbr)
    steps = default_steps(n) if steps is None else int(steps)
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    lo, hi = int(target.sizes[0]), int(target.sizes[-1])
    sizes = dual.sizes
    if sizes.min() < lo or sizes.max() > hi:
        raise InputError(f"ring sizes {sizes.min()}..{sizes.max()} outside the allowed "
                         f"{lo}..{hi}")
    edge_list = dual.edges().tolist()
    # cost of the ring-size term of size s with c rings: table[s][c]
    table = [[0.0] * (n + 1) for _ in range(hi + 2)]
    for s, p in zip(target.sizes.tolist(), target.p.tolist(), strict=True):
        table[s] = (np.abs(np.arange(n + 1) / n - p) / max(p, 1.0 / n)).tolist()
    counts = [0] * (hi + 2)
    for s in sizes.tolist():
        counts[s] += 1
    d = (sizes - 6).tolist()
    big_a = sum(d[i] * d[j] for i, j in edge_list)
    big_b = sum(x * x for x in d)
    cost_alpha = weight * abs((-big_a / (3.0 * big_b) if big_b else 0.0) - alpha)
    picks = rng.integers(0, len(edge_list), size=steps).tolist()
    # Metropolis: accept when delta <= -T ln(u), u uniform in (0, 1]
    thresholds = (-temperature_schedule(steps, n, temperature, anneal)
                  * np.log1p(-rng.random(steps))).tolist()
    accepted = 0
    dget = d.__getitem__
    bar = progress_bar(total=steps, desc="bond switching", unit="step",
                       disable=None if progress is None else not progress)
    chunk = 1000
    c = counts
    for t in range(steps):
        if t % chunk == chunk - 1:
            bar.update(chunk)
        k = picks[t]
        u, v = edge_list[k]
        nu, nv = nbr[u], nbr[v]
        if len(nu) <= lo or len(nv) <= lo:
            continue
        # u and v must share exactly two neighbours, a (after v around u) and b (before v),
        # and a, b must not be adjacent yet (a double edge)
        if len(set(nu).intersection(nv)) != 2:
            continue
        p = nu.index(v)
        a, b = nu[p + 1 - len(nu)], nu[p - 1]
        na, nb = nbr[a], nbr[b]
        if len(na) >= hi or len(nb) >= hi or b in na:
            continue
        du, dv, da, db = d[u], d[v], d[a], d[b]
        # ring-size term: four sizes move by one (applied to the counts, undone if rejected)
        su, sv, sa, sb = du + 6, dv + 6, da + 6, db + 6
        touched = {su, su - 1, sv, sv - 1, sa, sa + 1, sb, sb + 1}
        delta = -sum([table[s][c[s]] for s in touched])
        c[su] -= 1
        c[su - 1] += 1
        c[sv] -= 1
        c[sv - 1] += 1
        c[sa] -= 1
        c[sa + 1] += 1
        c[sb] -= 1
        c[sb + 1] += 1
        delta += sum([table[s][c[s]] for s in touched])
        # Aboav-Weaire sums: edges to rings outside {u, v, a, b}, then edges among them
        new_a = (big_a - sum(map(dget, nu)) - sum(map(dget, nv)) + sum(map(dget, na))
                 + sum(map(dget, nb)) + 2 * (da + db) - (du + dv)
                 + (da + 1) * (db + 1) + (du + dv - 2) * (da + db + 2)
                 - du * dv - (du + dv) * (da + db))
        new_b = big_b + 2 * (da + db - du - dv) + 4
        new_alpha_cost = weight * abs((-new_a / (3.0 * new_b) if new_b else 0.0) - alpha)
        delta += new_alpha_cost - cost_alpha
        if delta > thresholds[t]:
            c[su] += 1
            c[su - 1] -= 1
            c[sv] += 1
            c[sv - 1] -= 1
            c[sa] += 1
            c[sa + 1] -= 1
            c[sb] += 1
            c[sb + 1] -= 1
            continue
        dual.switch(u, v, a, b)
        edge_list[k] = [a, b]
        d[u], d[v], d[a], d[b] = du - 1, dv - 1, da + 1, db + 1
        big_a, big_b, cost_alpha = new_a, new_b, new_alpha_cost
        accepted += 1
    bar.update(steps % chunk)
    bar.close()
    sizes = dual.sizes
    edges = np.array(edge_list, dtype=np.int64).reshape(-1, 2)
    return SwitchResult(
        steps=steps, accepted=accepted,
        cost=switch_cost(sizes, edges, target, alpha, weight),
        mu2=float(np.mean((sizes - sizes.mean()) ** 2)),
        alpha=alpha_from_sizes(sizes, edges),
    )
