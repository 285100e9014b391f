"""Watanabe 2004 Si–O potential ("WYTO"), the one of the FC22 silica bilayers.

Watanabe, Yamasaki, Tatsumura, Ohdomari, Appl. Surf. Sci. 234 (2004) 207: a Stillinger–Weber
form whose Si–O bonds soften with the coordination of their ends. Every number and
convention is that of reference/potentials.md §2 (distances below in units of
sigma = 2.0951 Å, energies in units of epsilon):

    E = sum_{i<j} eps g_ij f2(r_ij) + sum_i sum_{j<k} sum_{n=1,2} eps lambda_n(z_i) L_n Theta_n

- f2(r) = A (B r^-p - r^-q) exp[1/(r - a)] for r < a; g_ij = g_Si(z_Si) g_O(z_O) for Si–O
  pairs, 1 otherwise.
- z_i counts UNLIKE neighbours only (Si counts O, O counts Si) with a smooth switch fc
  (R = 1.2, D = 0.05).
- Triplets: every unordered pair {j, k} of neighbours of a centre i once; term n acts only
  when r_ij < aij_n and r_ik < aik_n; mixed Si centres are leg-specific (the "ij" parameters
  belong to the Si–Si leg); O centres have only Si–O–Si triplets.

The energy is written as a function of the pair vectors only and differentiated by autograd;
forces and virials follow from :func:`~glassfrac.potentials.base.forces_from_pair_gradient`.
Per-atom energies give each pair energy ½ to each end and each triplet energy ⅓ to each of
j, i, k (as LAMMPS ``pe/atom``). Per-atom virials come from the pair-gradient helper, which
gives half of each pair vector's share to each end: they sum exactly to the system virial,
but their split differs from LAMMPS's (which gives ⅓ of a triplet's virial to each atom).
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from glassfrac.core.errors import InputError
from glassfrac.potentials.base import Potential, Results, forces_from_pair_gradient
from glassfrac.potentials.batch import Batch, Pairs, VerletList

SIGMA = 2.0951
"""Length unit of the potential, Å."""
EPSILON = 2.1672383
"""Default energy unit, eV (3.4723e-19 J, reproduces the FC22 reference bilayer)."""
CUTOFF = 1.8 * SIGMA
"""Interaction range, Å (3.77118)."""

SI, O = 0, 1
"""Species codes, in the order of ``Watanabe.species``."""

# two-body, by pair type sp_i + sp_j (0 Si–Si, 1 Si–O, 2 O–O): A, B, p, q, a
TWO_BODY = (
    (7.04955, 0.60222, 4.0, 0.0, 1.8),
    (21.0, 0.038, 5.3, -1.1, 1.3),
    (-12.29, 0.0, 0.0, 2.24, 1.25),
)
# coordination switch (units of sigma)
FC_R, FC_D = 1.2, 0.05
# softening functions g_Si and g_O
P1, P2, P3, P4 = 0.303672895420570, 3.93232680731067, 0.253450103965147, 0.856344826609515
P5, P6, P7, P8, P9 = 5.2740, 0.7120, 0.5220, -0.0372, -4.52

C0 = -1.0 / 3.0
# three-body terms ("kinds"): mu, nu, xi, z0, aij, aik, gij, gik, c0, alpha
THREE_BODY = (
    (4.0, 0.0, 0.0, 0.0, 1.2, 1.2, 0.088, 0.088, C0, -1.35),  # 0: Si–Si–Si, n = 1
    (5.878, 1.6, 6.0, 0.0, 1.8, 1.8, 1.01, 1.01, C0, 0.3),  # 1: Si–Si–Si, n = 2
    (3.0, 3.6, 2.0, 2.6, 1.15, 1.10, 0.032, 0.124, C0, 0.3),  # 2: Si–Si–O, n = 1 (ij = Si–Si leg)
    (5.878, 0.0, 0.0, 0.0, 1.8, 1.5, 1.01, 1.082079, C0, 0.3),  # 3: Si–Si–O, n = 2
    (10.5, 0.0, 0.0, 0.0, 1.1, 1.1, 0.31, 0.31, C0, 0.0),  # 4: O–Si–O, n = 1
    (2.5, 0.0, 0.0, 0.0, 1.2, 1.2, 0.15, 0.15, -0.812, 1.6),  # 5: Si–O–Si (O centre), n = 1
)
NO_TERM = len(THREE_BODY)
"""Kind index of a missing term (its legs have range −inf)."""
# kind of term n = 1, 2 for each triplet type: 0 Si–Si–Si, 1 Si–Si–O, 2 O–Si–O, 3 Si–O–Si
TERM_KINDS = ((0, 1), (2, 3), (4, NO_TERM), (5, NO_TERM))
# longest leg a directed pair centre -> neighbour can have in a triplet (units of sigma);
# index 2 * species(centre) + species(neighbour); an O centre has no O neighbour
LEG_REACH = (1.8, 1.5, 1.2, -math.inf)
# longest range of anything a pair of type sp_i + sp_j takes part in (units of sigma)
PAIR_REACH = (1.8, 1.5, 1.25)


def g_si(z: torch.Tensor) -> torch.Tensor:
    """Softening of Si–O bonds by the coordination ``z`` of their Si end (dimensionless)."""
    below = z < 4.0
    zs = torch.where(below, z, torch.zeros_like(z))  # keeps the unused branch finite
    soft = (P1 * torch.sqrt(zs + P2) - P4) * torch.exp(P3 / (zs - 4.0)) + P4
    return torch.where(below, soft, torch.full_like(z, P4))


def g_o(z: torch.Tensor) -> torch.Tensor:
    """Softening of Si–O bonds by the coordination ``z`` of their O end (dimensionless)."""
    return P5 / (torch.exp((P6 - z) / P7) + 1.0) * torch.exp(P8 * (z - P9) ** 2)


def switch(r: torch.Tensor) -> torch.Tensor:
    """fc(r) inside the window R − D ≤ r < R + D (``r`` in units of sigma)."""
    x = (r - (FC_R - FC_D)) / FC_D
    return 1.0 - 0.5 * x + torch.sin(math.pi * x) / (2.0 * math.pi)


def _switch_window(ptype: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Indices of the Si–O pairs (``ptype`` 1) whose distance ``r`` (σ, detached) lies in the coordination
    switch window R − D ≤ r < R + D, the only pairs whose coordination share depends on their length."""
    return _flatnonzero((ptype == 1) & (r >= FC_R - FC_D) & (r < FC_R + FC_D))


def _flatnonzero(mask: torch.Tensor) -> torch.Tensor:
    """Indices of the True entries of a 1D mask (numpy's is ~7x faster than torch's on CPU)."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return torch.nonzero(mask).squeeze(1)


@dataclass
class _Topology:
    """What a pair list fixes for a while: the pairs that may act and the candidate triplets.

    Valid for the pair list ``source`` (and the same species) while no pair can have shrunk by
    ``margin`` Å since ``positions`` and ``cells``: with the cell change mapped back (see
    :meth:`valid_for`), as long as ``cutoff (s_max - 1) + 2 max |d| < margin``.
    ``pairs`` (A) are those of ``source`` within their reach + margin, ``ptype`` their types
    (0 Si–Si, 1 Si–O, 2 O–O). Directed pairs are indexed as (pairs i -> j, then j -> i), with
    ``centre`` and ``neighbour`` atoms (2A,). Triplet legs ``a`` and ``b`` (T,) are directed
    pairs from the same centre, ``a`` the Si leg of a mixed Si centre; ``kind`` (2, T) is the
    term kind of n = 1, 2 and ``reach_a``, ``reach_b`` (2, T) its aij, aik in units of sigma
    (−inf: no such term).
    """

    source: Pairs
    species: torch.Tensor
    cells: torch.Tensor
    positions: torch.Tensor
    margin: float
    pairs: Pairs
    ptype: torch.Tensor
    centre: torch.Tensor
    neighbour: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    kind: torch.Tensor
    reach_a: torch.Tensor
    reach_b: torch.Tensor

    def valid_for(self, batch: Batch, pairs: Pairs, margin: float) -> bool:
        """Whether every pair now within its reach was within reach + margin when built.

        A cell change H_ref -> H of a system with a periodic axis is mapped back by
        H^-1 H_ref; a pair vector then shrinks by at most ``cutoff (s_max - 1)`` (s_max: largest
        singular value of that map) plus twice the largest remaining displacement d.
        """
        if not (self.source is pairs and self.margin == margin
                and self.positions.shape == batch.positions.shape and self.cells.shape == batch.cells.shape
                and torch.equal(self.species, batch.species)):
            return False
        if batch.n_atoms == 0:
            return True
        positions, cells = batch.positions.detach(), batch.cells.detach()
        slack = torch.zeros(batch.n_systems, dtype=positions.dtype, device=positions.device)
        changed = (cells != self.cells).flatten(1).any(dim=1) & batch.pbc.any(dim=1)
        if changed.any():
            back, info = torch.linalg.solve_ex(cells[changed], self.cells[changed])
            if info.any():
                return False
            maps = torch.eye(3, dtype=cells.dtype, device=cells.device).repeat(batch.n_systems, 1, 1)
            maps[changed] = back
            positions = torch.einsum("na,nab->nb", positions, maps.index_select(0, batch.system))
            slack[changed] = CUTOFF * (torch.linalg.svdvals(back)[:, 0] - 1.0).clamp(min=0.0)
        moved = torch.linalg.vector_norm(positions - self.positions, dim=1)
        worst = torch.zeros_like(slack).scatter_reduce(0, batch.system, moved, reduce="amax")
        return bool(((slack + 2.0 * worst) < margin).all())


class Watanabe(Potential):
    """Watanabe 2004 Si–O potential (3D only); ``epsilon`` in eV.

    ``margin`` (Å) only tunes speed: which pairs may act and which triplets may form is
    cached per pair list and reused until atoms or the cell have moved enough that some pair
    could have shrunk by ``margin`` (or the pair list changed); results do not depend on it.
    """

    name = "watanabe"
    species = ("Si", "O")
    cutoff = CUTOFF
    bond_break_length = (FC_R - FC_D) * SIGMA  # 2.409 Å: the coordination switch begins to cut a Si–O bond
    abilities = frozenset({"term_hessians", "hessian"})
    caches = {"_tables": dict, "_cache": type(None)}

    def __init__(self, epsilon: float = EPSILON, margin: float = 0.5):
        self.epsilon = float(epsilon)
        self.margin = float(margin)
        self._tables = {}
        self._cache = None

    def parameters(self) -> dict:
        return {"name": self.name, "version": "Watanabe et al. 2004 (Appl. Surf. Sci. 234, 207)",
                "epsilon_eV": self.epsilon, "sigma_A": SIGMA, "cutoff_A": self.cutoff}

    def _table(self, device):
        """Constant tables on ``device``, one row per parameter (σ units).

        Two-body (5, 3) by pair type; three-body (10, 7) by kind (last: no term); term
        kinds (4, 2) by triplet type; leg reaches (4,) and pair reaches (3,).
        """
        if device not in self._tables:
            f64 = dict(dtype=torch.float64, device=device)
            none = (0.0,) * 4 + (-math.inf,) * 2 + (0.0,) * 4
            self._tables[device] = (
                torch.tensor(TWO_BODY, **f64).T.contiguous(),
                torch.tensor(THREE_BODY + (none,), **f64).T.contiguous(),
                torch.tensor(TERM_KINDS, device=device),
                torch.tensor(LEG_REACH, **f64),
                torch.tensor(PAIR_REACH, **f64),
            )
        return self._tables[device]

    def coordination(self, structures) -> list[np.ndarray]:
        """Coordination z of every atom (unlike neighbours, smooth switch), one array per structure."""
        structures = list(structures)
        batch = self.batch(structures)
        topo = self._topology(batch, VerletList(self.cutoff, skin=0.0).update(batch))
        r = torch.linalg.vector_norm(topo.pairs.vectors(batch), dim=1) / SIGMA
        return batch.split(self._coordination(batch, topo.pairs, topo.ptype, r))

    def compute(self, batch: Batch, pairs: Pairs, virial: bool = True,
                per_atom: bool = False) -> Results:
        two, three, *_ = self._table(batch.device)
        topo = self._topology(batch, pairs)
        sub, dev = topo.pairs, batch.device
        with torch.enable_grad():
            # pair vectors component-major (3, A): reductions over 3 components are fastest so
            v_t = sub.vectors(batch).detach().T.contiguous().requires_grad_()
            u = v_t / SIGMA
            r = torch.sqrt((u * u).sum(dim=0))
            z = self._coordination(batch, sub, topo.ptype, r)
            e2, within = self._two_body(batch, sub, topo.ptype, r, z, two)
            la, lb, kind = self._active_terms(topo, r.detach())
            centre = topo.centre.index_select(0, la)
            e3 = self._three_body(u, r, la, lb, kind, centre, z, three)
            total = e2.sum() + e3.sum()
            if total.requires_grad:
                (grad,) = torch.autograd.grad(total, v_t)
            else:  # nothing acts
                grad = torch.zeros_like(v_t)

        forces, w_sys, w_atom = forces_from_pair_gradient(batch, sub, v_t.detach().T, grad.T,
                                                          virial=virial, per_atom=per_atom)
        e2, e3 = e2.detach(), e3.detach()
        energy = torch.zeros(batch.n_systems, dtype=e2.dtype, device=dev)
        energy = energy.index_add(0, sub.system.index_select(0, within), e2)
        energy = energy.index_add(0, batch.system.index_select(0, centre), e3)
        e_atom = None
        if per_atom:
            e_atom = torch.zeros(batch.n_atoms, dtype=e2.dtype, device=dev)
            for atoms in (sub.i, sub.j):
                e_atom = e_atom.index_add(0, atoms.index_select(0, within), 0.5 * e2)
            for atoms in (centre, topo.neighbour.index_select(0, la), topo.neighbour.index_select(0, lb)):
                e_atom = e_atom.index_add(0, atoms, e3 / 3.0)
        return Results(energy, forces, w_sys, e_atom, w_atom)

    @staticmethod
    def _coordination(batch, sub, ptype, r):
        """Coordination z (N,) over unlike neighbours from pair distances ``r`` (σ) of ``sub``."""
        r0 = r.detach()
        dev = r.device
        unlike = ptype == 1
        inner = _flatnonzero(unlike & (r0 < FC_R - FC_D)).to(dev)
        ones = torch.ones(inner.numel(), dtype=r.dtype, device=dev)
        z = torch.zeros(batch.n_atoms, dtype=r.dtype, device=dev)
        z = z.index_add(0, sub.i.index_select(0, inner), ones).index_add(0, sub.j.index_select(0, inner), ones)
        win = _switch_window(ptype, r0).to(dev)
        if win.numel():
            fc = switch(r.index_select(0, win))
            z = z.index_add(0, sub.i.index_select(0, win), fc).index_add(0, sub.j.index_select(0, win), fc)
        return z

    def _two_body(self, batch, sub, ptype, r, z, two):
        """Pair energies (eV) and the indices of their pairs in ``sub``."""
        dev = r.device
        g_atom = torch.where(batch.species == SI, g_si(z), g_o(z))
        within = _flatnonzero(r.detach() < two[4].index_select(0, ptype)).to(dev)
        k = ptype.index_select(0, within)
        rw = r.index_select(0, within)
        big_a, big_b, p, q, a = (row.index_select(0, k) for row in two)
        log_r = torch.log(rw)
        f2 = big_a * (big_b * torch.exp(-p * log_r) - torch.exp(-q * log_r)) * torch.exp(1.0 / (rw - a))
        g = g_atom.index_select(0, sub.i.index_select(0, within)) \
            * g_atom.index_select(0, sub.j.index_select(0, within))
        g = torch.where(k == 1, g, torch.ones_like(g))
        return self.epsilon * g * f2, within

    @staticmethod
    def _active_terms(topo, r0):
        """Legs (directed pair indices) and kinds of the triplet terms acting at distances ``r0``."""
        r_dir = torch.cat([r0, r0])
        ra, rb = r_dir.index_select(0, topo.a), r_dir.index_select(0, topo.b)
        on = [_flatnonzero((ra < topo.reach_a[n]) & (rb < topo.reach_b[n])).to(r0.device) for n in range(2)]
        kind = torch.cat([topo.kind[n].index_select(0, on[n]) for n in range(2)])
        on = torch.cat(on)
        return topo.a.index_select(0, on), topo.b.index_select(0, on), kind

    def _three_body(self, u, r, la, lb, kind, centre, z, three):
        """Energies (eV) of the triplet terms with legs ``la``, ``lb`` and ``kind``."""
        unit = u / r
        unit = torch.cat([unit, -unit], dim=1)
        r = torch.cat([r, r])
        cos = (unit.index_select(1, la) * unit.index_select(1, lb)).sum(dim=0)
        return self._triplet_energy(r.index_select(0, la), r.index_select(0, lb), cos, kind, centre, z, three)

    def _triplet_energy(self, ra, rb, cos, kind, centre, z, three):
        """Energies (eV) of triplet terms from their leg lengths (σ) and the cosine between them."""
        aij, aik, gij, gik, c0, alpha = (row.index_select(0, kind) for row in three[4:])
        radial = torch.exp(gij / (ra - aij) + gik / (rb - aik))
        dc = cos - c0
        angular = dc * dc * (1.0 + alpha * dc)
        mu, nu, xi, z0 = three[:4, :-1]
        lam = self.epsilon * mu * (1.0 + nu * torch.exp(-xi * (z.unsqueeze(1) - z0) ** 2))
        lam = lam.reshape(-1).index_select(0, centre * mu.numel() + kind)
        return lam * radial * angular

    def term_hessians(self, batch: Batch, pairs: Pairs) -> list:
        """Hessians of the energy terms, each over its own atoms, with the coordination
        factors g(z) and lambda(z) held at their present values (eV/Å²).

        Returns [(atoms (P, 2), blocks (P, 2, 3, 2, 3)) of the pair terms, (atoms (T, 3):
        centre, j, k, blocks (T, 3, 3, 3, 3)) of the triplet terms]. Where no Si–O distance lies
        in the coordination switch window (2.41–2.62 Å: every bond shorter, every non-bond
        longer, as in a relaxed network) z is locally constant and the blocks sum to the exact
        Hessian. Used as a preconditioner (:class:`~glassfrac.mechanics.preconditioners.TermHessianPreconditioner`).
        """
        two, three, *_ = self._table(batch.device)
        topo = self._topology(batch, pairs)
        sub = topo.pairs
        v = sub.vectors(batch).detach()
        u = v.T.contiguous() / SIGMA
        r = torch.sqrt((u * u).sum(dim=0))
        z = self._coordination(batch, sub, topo.ptype, r)
        eye = torch.eye(3, dtype=v.dtype, device=v.device)
        with torch.enable_grad():  # pair terms: V'(r), V''(r) of eps g f2 at fixed g
            r_leaf = r.clone().requires_grad_()
            e2, within = self._two_body(batch, sub, topo.ptype, r_leaf, z, two)
            (d1,) = torch.autograd.grad(e2.sum(), r_leaf, create_graph=True)
            (d2,) = torch.autograd.grad(d1.sum(), r_leaf) if d1.requires_grad else (torch.zeros_like(d1),)
        d1, d2, rw = d1.detach()[within] / SIGMA, d2[within] / SIGMA ** 2, r[within] * SIGMA
        uw = v[within] / rw[:, None]
        uu = uw[:, :, None] * uw[:, None, :]
        k = d2[:, None, None] * uu + (d1 / rw)[:, None, None] * (eye - uu)
        pair_blocks = torch.stack([torch.stack([k, -k], 1), torch.stack([-k, k], 1)], 1).permute(0, 1, 3, 2, 4)
        pair_atoms = torch.stack([sub.i[within], sub.j[within]], 1)
        la, lb, kind = self._active_terms(topo, r)
        centre = topo.centre.index_select(0, la)
        legs = torch.cat([u, -u], dim=1)  # directed pair vectors centre -> neighbour (σ)
        va, vb = (legs.index_select(1, leg).requires_grad_() for leg in (la, lb))
        with torch.enable_grad():  # triplet terms: 6 x 6 Hessians in the leg vectors
            ra, rb = torch.sqrt((va * va).sum(dim=0)), torch.sqrt((vb * vb).sum(dim=0))
            e3 = self._triplet_energy(ra, rb, (va * vb).sum(dim=0) / (ra * rb), kind, centre, z, three)
            grad = torch.cat(torch.autograd.grad(e3.sum(), (va, vb), create_graph=True))
            rows = [torch.cat(torch.autograd.grad(grad[c].sum(), (va, vb), retain_graph=c < 5)) for c in range(6)]
        legs_hessian = torch.stack(rows).permute(2, 0, 1).reshape(-1, 2, 3, 2, 3) / SIGMA ** 2
        # legs = (x_j - x_i, x_k - x_i): atoms (i, j, k) enter leg s with coefficient C[s, atom]
        c = torch.tensor([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]], dtype=v.dtype, device=v.device)
        triplet_blocks = torch.einsum("sm,tn,xsatb->xmanb", c, c, legs_hessian)
        triplet_atoms = torch.stack([centre, topo.neighbour.index_select(0, la), topo.neighbour.index_select(0, lb)], 1)
        return [(pair_atoms, pair_blocks), (triplet_atoms, triplet_blocks)]

    def hessian(self, batch: Batch, pairs: Pairs) -> list:
        """The Hessian as term blocks (eV/Å²): :meth:`term_hessians`, exact where no Si–O distance
        lies in the coordination switch window (2.41–2.62 Å; there the z-dependence is left out)."""
        return self.term_hessians(batch, pairs)

    def hessian_gaps(self, batch: Batch, pairs: Pairs) -> torch.Tensor:
        """The ends of Si–O pairs in the coordination switch window: only there does z depend on positions,
        so every entry :meth:`hessian` leaves out has one of them as its row or column."""
        topo = self._topology(batch, pairs)
        sub = topo.pairs
        r = torch.linalg.vector_norm(sub.vectors(batch).detach(), dim=1) / SIGMA
        win = _switch_window(topo.ptype, r).to(batch.device)
        return torch.unique(torch.cat([sub.i.index_select(0, win), sub.j.index_select(0, win)]))

    def _topology(self, batch: Batch, pairs: Pairs) -> _Topology:
        """The acting pairs and candidate triplets of ``pairs``, cached while still valid."""
        if batch.dim != 3:
            raise InputError(f"the Watanabe potential needs 3D positions, got a {batch.dim}D batch "
                             "(load the bilayer as a 3D structure)")
        margin = self.margin
        if self._cache is not None and self._cache.valid_for(batch, pairs, margin):
            return self._cache
        _, three, kinds, leg_reach, pair_reach = self._table(batch.device)
        sp, dev = batch.species, batch.device
        slack = margin / SIGMA
        dist = torch.linalg.vector_norm(pairs.vectors(batch).detach(), dim=1) / SIGMA
        ptype = sp.index_select(0, pairs.i) + sp.index_select(0, pairs.j)
        keep = _flatnonzero(dist < pair_reach.index_select(0, ptype) + slack).to(dev)
        sub = Pairs(*(x.index_select(0, keep) for x in (pairs.i, pairs.j, pairs.images, pairs.system)))
        ptype, dist = ptype.index_select(0, keep), dist.index_select(0, keep)

        centre, neighbour = torch.cat([sub.i, sub.j]), torch.cat([sub.j, sub.i])
        d_dir = torch.cat([dist, dist])
        s_c, s_n = sp.index_select(0, centre), sp.index_select(0, neighbour)
        legs = _flatnonzero(d_dir < leg_reach.index_select(0, 2 * s_c + s_n) + slack).to(dev)
        legs = legs.index_select(0, torch.argsort(centre.index_select(0, legs), stable=True))
        c_legs = centre.index_select(0, legs)
        end = torch.cumsum(torch.bincount(c_legs, minlength=batch.n_atoms), 0).index_select(0, c_legs)
        rank = torch.arange(legs.numel(), device=dev)
        partners = end - 1 - rank  # later legs of the same centre
        first = torch.repeat_interleave(rank, partners)
        start = torch.cumsum(partners, 0) - partners
        second = first + 1 + torch.arange(first.numel(), device=dev) - torch.repeat_interleave(start, partners)
        a, b = legs.index_select(0, first), legs.index_select(0, second)
        sa, sb = s_n.index_select(0, a), s_n.index_select(0, b)
        swap = (sa == O) & (sb == SI)  # the Si leg goes first
        a, b = torch.where(swap, b, a), torch.where(swap, a, b)
        ttype = torch.where(s_c.index_select(0, a) == O, 3, sa + sb)
        kind = kinds.index_select(0, ttype)
        da, db = d_dir.index_select(0, a) - slack, d_dir.index_select(0, b) - slack
        keep = torch.zeros_like(da, dtype=torch.bool)
        for n in range(2):  # keep a triplet if some term may act
            k = kind[:, n]
            keep |= (da < three[4].index_select(0, k)) & (db < three[5].index_select(0, k))
        keep = _flatnonzero(keep).to(dev)
        kind = kind.index_select(0, keep).T.contiguous()
        reach_a, reach_b = (three[row].index_select(0, kind.reshape(-1)).view(kind.shape) for row in (4, 5))
        self._cache = _Topology(
            pairs, sp.clone(), batch.cells.detach().clone(), batch.positions.detach().clone(), margin,
            sub, ptype, centre, neighbour, a.index_select(0, keep), b.index_select(0, keep), kind, reach_a, reach_b,
        )
        return self._cache
