"""Yukawa-type 2D silica (Roy, Heyde & Heuer, PCCP 2018), shifted and tilted at Rc.

    V(r)    = (sigma_ij / r)^12 + q_ij exp(-kappa r) / r                    (eV, r in Å)
    V_sf(r) = V(r) - V(Rc) - V'(Rc) (r - Rc)   for r < Rc, else 0

Parameters (reference/potentials.md §1): sigma Si–Si 2.250, Si–O 1.075, O–O 0.900 Å;
q Si–Si +1.500, Si–O −1.000, O–O +0.670 eV·Å; kappa = 1/5.649 Å⁻¹; Rc = 10 Å.

A pair potential, so the same code serves 2D (the physical case) and 3D. Forces are analytic:
one scalar ``g = V_sf'(r) / r`` per pair; the force on i is ``g r_ij`` and on j ``−g r_ij``.
The arithmetic runs in place on reused arrays, in chunks of :data:`CHUNK` pairs on a CPU;
sums over pairs (forces, per-atom energies and virials, per-system totals) are sparse matrix
products with incidence matrices built once per pair list (:class:`_Plan`), as are the
per-pair parameters. An instance is not safe to use from several threads at once.
"""

import math
import warnings

import numpy as np
import scipy.sparse
import torch

from glassfrac.core.errors import InputError
from glassfrac.potentials.base import Potential, Results
from glassfrac.potentials.batch import Batch, Pairs

CHUNK = 1 << 16
"""Pairs per pass of the element-wise arithmetic on a CPU, so that its work arrays stay in
cache (a quarter faster than whole-list passes on 4e5 pairs here; 2^14 to 2^17 do alike)."""

SPECIES = ("Si", "O")
SIGMA = {("Si", "Si"): 2.250, ("Si", "O"): 1.075, ("O", "O"): 0.900}
"""sigma_ij in Å."""
Q = {("Si", "Si"): 1.500, ("Si", "O"): -1.000, ("O", "O"): 0.670}
"""q_ij in eV·Å (pair products; no per-atom charges)."""
KAPPA = 1.0 / 5.649
"""Screening constant kappa in 1/Å."""
RC = 10.0
"""Cutoff Rc in Å."""


def _pair_key(key) -> tuple[str, str]:
    """``("Si", "O")``, ``"Si-O"`` or ``"O-Si"`` -> the canonical key of :data:`SIGMA`."""
    a, b = key.split("-") if isinstance(key, str) else key
    for k in ((a, b), (b, a)):
        if k in SIGMA:
            return k
    raise InputError(f"unknown pair {key!r}; pairs are {[f'{x}-{y}' for x, y in SIGMA]}")


class Yukawa2D(Potential):
    """The shifted-and-tilted Yukawa-type 2D silica potential, any dimension, batched.

    ``sigma`` (Å) and ``q`` (eV·Å) override the defaults per pair (keys like ``"Si-O"``),
    ``kappa`` is in 1/Å, ``rc`` in Å.
    """

    name = "yukawa2d"
    species = SPECIES
    abilities = frozenset({"pair_derivatives", "hessian"})
    caches = {"_plans": list, "_scratches": dict}

    def __init__(self, sigma: dict | None = None, q: dict | None = None,
                 kappa: float = KAPPA, rc: float = RC):
        self.sigma = dict(SIGMA)
        self.q = dict(Q)
        for table, override in ((self.sigma, sigma), (self.q, q)):
            for key, value in (override or {}).items():
                table[_pair_key(key)] = float(value)
        self.kappa = float(kappa)
        self.rc = float(rc)
        if self.rc <= 0 or self.kappa < 0:
            raise InputError(f"need rc > 0 and kappa >= 0, got rc={rc}, kappa={kappa}")
        self.cutoff = self.rc
        # per species-pair code c = s_i * n + s_j: sigma^12, q, and the shift a + b r
        n = len(self.species)
        self._table = torch.zeros(4, n * n, dtype=torch.float64)
        for (x, y) in SIGMA:
            s12, qq = self.sigma[(x, y)] ** 12, self.q[(x, y)]
            a, b = self._shift(s12, qq)
            for c in (self.species.index(x) * n + self.species.index(y),
                      self.species.index(y) * n + self.species.index(x)):
                self._table[:, c] = torch.tensor([s12, qq, a, b], dtype=torch.float64)
        self._plans = []
        self._scratches = {}

    def _shift(self, s12: float, q: float) -> tuple[float, float]:
        """Constants a (eV), b (eV/Å) with V_sf(r) = V(r) + a + b r."""
        rc, k = self.rc, self.kappa
        v = s12 / rc**12 + q * math.exp(-k * rc) / rc
        dv = -12.0 * s12 / rc**13 - q * math.exp(-k * rc) * (k * rc + 1.0) / rc**2
        return -v + dv * rc, -dv

    def pair_energy(self, r, a: str = "Si", b: str = "O"):
        """V_sf(r) in eV for the pair ``a``–``b`` at distances ``r`` (Å; array or float)."""
        key = _pair_key((a, b))
        s12, q = self.sigma[key] ** 12, self.q[key]
        shift, tilt = self._shift(s12, q)
        r = torch.as_tensor(r, dtype=torch.float64)
        v = s12 / r**12 + q * torch.exp(-self.kappa * r) / r + shift + tilt * r
        return torch.where(r < self.rc, v, 0.0)

    def pair_derivatives(self, r: torch.Tensor, code: torch.Tensor):
        """V_sf'(r) (eV/Å) and V_sf''(r) (eV/Å²) per pair; ``code`` = s_i · n_species + s_j.

        Used by the pair-Hessian preconditioner; pairs beyond ``rc`` must be masked by the caller.
        """
        s12, q, _, b = self._table.to(r.device)[:, code]
        return self._derivatives(r, s12, q, b)

    def _derivatives(self, r, s12, q, b):
        """V_sf' and V_sf'' at distances ``r`` for per-pair parameters sigma^12, q and tilt b."""
        k = self.kappa
        inv = 1.0 / r
        screen = q * torch.exp(-k * r) * inv
        lj = s12 * inv**12
        dv = -12.0 * lj * inv - screen * (k * r + 1.0) * inv + b
        d2v = 156.0 * lj * inv * inv + screen * (k * k * r * r + 2.0 * k * r + 2.0) * inv * inv
        return dv, d2v

    def hessian(self, batch: Batch, pairs: Pairs) -> list:
        """The exact Hessian in pair form (eV/Å², see :class:`Potential`): [(atoms (P, 2), k (P, d, d))],
        k = V'' u uᵀ + (V'/r)(1 − u uᵀ) per pair (0 beyond rc), the pair's block [[k, −k], [−k, k]]."""
        plan = self._plan(batch, pairs)
        v, tangential, radial = self._pair_curvatures(plan, batch)
        return [(torch.stack([pairs.i, pairs.j], 1), self._pair_blocks(v, tangential, radial))]

    def forces_and_hessian(self, batch: Batch, pairs: Pairs):
        """Forces, per-atom virials and :meth:`hessian` from one pass over the pairs (see
        :meth:`Potential.forces_and_hessian`)."""
        plan = self._plan(batch, pairs)
        v, tangential, radial = self._pair_curvatures(plan, batch)
        grad = v * tangential[:, None]  # dE/dr_ij = (V'/r) r_ij, (P, d)
        dim = batch.dim
        w_pair = torch.mul(grad[:, :, None], v[:, None, :]).neg_().view(-1, dim * dim)
        results = Results(None, plan.incidence @ grad, None, None, (plan.halves @ w_pair).view(-1, dim, dim))
        return results, [(torch.stack([pairs.i, pairs.j], 1), self._pair_blocks(v, tangential, radial))]

    def _pair_curvatures(self, plan: "_Plan", batch: Batch):
        """Pair vectors r_ij (P, d) Å, V'/r (P,) eV/Å² and (V'' − V'/r)/r² (P,) eV/Å⁴, both 0 beyond rc."""
        v = plan.vectors(batch).T
        r = torch.sqrt((v * v).sum(dim=1))
        s12, q, _, b = plan.params
        dv, d2v = self._derivatives(r, s12, q, b)
        inside = r < self.rc
        tangential = torch.where(inside, dv / r, 0.0)
        radial = torch.where(inside, d2v, 0.0).sub_(tangential).div_(r * r)
        return v, tangential, radial

    @staticmethod
    def _pair_blocks(v, tangential, radial):
        """k = radial · r rᵀ + tangential · 1 per pair, (P, d, d) eV/Å²."""
        k = torch.mul(v[:, :, None], v[:, None, :]).mul_(radial[:, None, None])
        k.diagonal(dim1=1, dim2=2).add_(tangential[:, None])
        return k

    def parameters(self) -> dict:
        """sigma (Å), q (eV·Å) per pair, kappa (1/Å), rc (Å) and the functional form."""
        return {
            "name": self.name,
            "form": "V(r) = (sigma/r)^12 + q exp(-kappa r)/r, shifted and tilted at rc",
            "sigma": {f"{x}-{y}": v for (x, y), v in self.sigma.items()},
            "q": {f"{x}-{y}": v for (x, y), v in self.q.items()},
            "kappa": self.kappa,
            "rc": self.rc,
        }

    def _plan(self, batch: Batch, pairs: Pairs) -> "_Plan":
        for plan in self._plans:
            if plan.matches(batch, pairs):
                return plan
        plan = _Plan(batch, pairs, self._table, len(self.species))
        self._plans = [plan] + self._plans[:1]
        return plan

    def compute(self, batch: Batch, pairs: Pairs, virial: bool = True,
                per_atom: bool = False, energy: bool = True) -> Results:
        """Energies (B,) eV, forces (N, d) eV/Å, virials (B, d, d) eV; per-atom parts if asked.

        ``energy=False`` skips the energies (``Results.energy`` is None) when only forces
        (and virials) are needed, as in FIRE steps.
        """
        plan = self._plan(batch, pairs)
        dim = batch.dim
        params = plan.params
        grad = plan.buffer("grad", (plan.n_pairs, dim))          # dE/dr_ij = g r_ij, (P, dim)
        e_pair = plan.buffer("e_pair", (plan.n_pairs,)) if energy or per_atom else None
        cols = batch.positions.detach().T.contiguous()
        shifts = plan.shifts(batch)
        w = self._scratch(dim, batch.positions, plan.chunk)
        for lo, hi, local, s_lo, s_hi in plan.chunks:
            n = hi - lo
            d, r, inv_r, inv_r2, lj, ey, g, inside = (x[..., :n] for x in w)
            for c in range(dim):  # r_ij = x_j - x_i (+ image shift)
                torch.index_select(cols[c], 0, plan.j[lo:hi], out=d[c])
                d[c].sub_(torch.index_select(cols[c], 0, plan.i[lo:hi], out=g))
            if s_hi > s_lo:
                d.index_add_(1, local, shifts[:, s_lo:s_hi])
            s12, q, a, b = params[:, lo:hi]
            torch.mul(d[0], d[0], out=r)
            for c in range(1, dim):
                r.addcmul_(d[c], d[c])
            torch.lt(r, self.rc * self.rc, out=inside)          # 1.0 within rc, else 0.0
            r.sqrt_()
            torch.reciprocal(r, out=inv_r).mul_(inside)         # 1/r, and 0 beyond rc:
            torch.mul(inv_r, inv_r, out=inv_r2)                 # so lj, ey and g vanish there
            torch.mul(inv_r2, inv_r2, out=lj)
            lj.mul_(inv_r2).mul_(lj).mul_(s12)                  # sigma^12 / r^12
            torch.mul(r, -self.kappa, out=ey)
            torch.sub(ey, 1.0, out=g)                           # -kappa r - 1
            ey.exp_().mul_(q).mul_(inv_r)                       # q exp(-kappa r) / r
            # g = V_sf'(r) / r = (-(kappa r + 1) ey - 12 lj) / r^2 + b / r
            g.mul_(ey).sub_(lj, alpha=12.0).mul_(inv_r2).addcmul_(b, inv_r)
            for c in range(dim):
                torch.mul(d[c], g, out=grad[lo:hi, c])
            if e_pair is not None:  # V_sf = lj + ey + (a + b r) within rc
                torch.add(lj, ey, out=e_pair[lo:hi]).addcmul_(inside, torch.addcmul(a, b, r, out=inv_r2))
        forces = plan.incidence @ grad
        w_sys = w_atom = e_atom = None
        if virial:
            w_sys = plan.virial(batch, forces, grad)
        if per_atom:
            d = plan.vectors(batch)
            w_pair = torch.empty(plan.n_pairs, dim * dim, dtype=grad.dtype, device=grad.device)
            for k in range(dim):
                for m in range(dim):
                    torch.mul(grad[:, k], d[m], out=w_pair[:, k * dim + m]).neg_()
            w_atom = (plan.halves @ w_pair).view(-1, dim, dim)
            e_atom = (plan.halves @ e_pair.unsqueeze(1)).squeeze(1)
        e_sys = plan.per_system(e_pair) if energy else None
        return Results(e_sys, forces, w_sys, e_atom, w_atom)

    def _scratch(self, dim: int, like: torch.Tensor, size: int) -> list[torch.Tensor]:
        """Work arrays for one chunk of pairs: (dim, size) vectors and seven (size,) scalars."""
        key = (dim, like.dtype, like.device)
        if key not in self._scratches or self._scratches[key][1].shape[0] < size:
            new = dict(dtype=like.dtype, device=like.device)
            self._scratches[key] = [torch.empty(dim, size, **new)] + [torch.empty(size, **new) for _ in range(7)]
        return self._scratches[key]


class _Plan:
    """What one pair list lets us compute once and reuse while the list lives.

    ``incidence`` (N, P) sparse has +1 at (i, p) and −1 at (j, p), so forces are
    ``incidence @ grad``; ``halves`` has ½ at both ends (per-atom sums). Pairs with a periodic
    image are listed in ``shifted`` with their images. Per-pair parameters and output buffers
    are kept too: fresh arrays of this size cost a page fault per 4 kB, as much as the
    arithmetic on them.
    """

    def __init__(self, batch: Batch, pairs: Pairs, table: torch.Tensor, n_species: int):
        self.pairs = pairs
        self.species = batch.species
        self.n_atoms = batch.n_atoms
        self.n_systems = batch.n_systems
        self.dim = batch.dim
        self.dtype = batch.positions.dtype
        dev = self.device = batch.device
        self.i, self.j = pairs.i, pairs.j
        self.n_pairs = n_pairs = len(pairs.i)
        code = batch.species.index_select(0, pairs.i).mul_(n_species).add_(batch.species.index_select(0, pairs.j))
        self.params = torch.empty(len(table), n_pairs, dtype=self.dtype, device=dev)  # rows of table per pair
        for row, out in zip(table.to(dev, self.dtype), self.params, strict=True):
            torch.index_select(row, 0, code, out=out)
        del code
        moved = pairs.images.any(dim=1)
        self.shifted = torch.nonzero(moved).squeeze(1)
        self.images = pairs.images[moved].to(self.dtype)
        self.image_system = pairs.system[moved]
        self.incidence = _incidence(pairs.i, pairs.j, self.n_atoms, self.dtype)
        self.system = pairs.system
        # (lo, hi, shifted pairs in [lo, hi) counted from lo, their range in shifted); on a GPU,
        # one pass over all pairs
        self.chunk = CHUNK if dev.type == "cpu" else max(n_pairs, 1)
        self.chunks = []
        for lo in range(0, n_pairs, self.chunk):
            hi = min(lo + self.chunk, n_pairs)
            s_lo, s_hi = (int(torch.searchsorted(self.shifted, k)) for k in (lo, hi))
            self.chunks.append((lo, hi, self.shifted[s_lo:s_hi] - lo, s_lo, s_hi))
        self._halves = None
        self._buffers = {}

    @property
    def halves(self) -> torch.Tensor:
        """(N, P) sparse, ½ at (i, p) and (j, p): per-atom shares of pair quantities."""
        if self._halves is None:
            a = self.incidence
            self._halves = _csr(a.crow_indices(), a.col_indices(), torch.full_like(a.values(), 0.5), a.shape)
        return self._halves

    def matches(self, batch: Batch, pairs: Pairs) -> bool:
        return (pairs is self.pairs and batch.n_atoms == self.n_atoms
                and batch.n_systems == self.n_systems and batch.positions.dtype == self.dtype
                and batch.device == self.device
                and (batch.species is self.species or torch.equal(batch.species, self.species)))

    def buffer(self, name: str, shape) -> torch.Tensor:
        """A per-list array kept between calls (overwritten by each :meth:`compute`)."""
        if name not in self._buffers:
            self._buffers[name] = torch.empty(shape, dtype=self.dtype, device=self.device)
        return self._buffers[name]

    def shifts(self, batch: Batch) -> torch.Tensor:
        """Image shifts images @ cell (d, Q) of the pairs listed in ``shifted``, Å."""
        cells = batch.cells.detach()
        if self.n_systems == 1:
            return cells[0].T @ self.images.T
        return torch.einsum("qa,qab->bq", self.images, cells.index_select(0, self.image_system))

    def vectors(self, batch: Batch) -> torch.Tensor:
        """Pair vectors r_ij = x_j + images @ cell − x_i, (d, P), Å."""
        x = batch.positions.detach().T
        d = x.index_select(1, self.j) - x.index_select(1, self.i)
        return d.index_add_(1, self.shifted, self.shifts(batch))

    def virial(self, batch: Batch, forces: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """W = −Σ_p r_p ⊗ ∂E/∂r_p per system (B, d, d), eV, from atoms and shifted pairs only.

        With r_p = x_j − x_i + s_p, the pair sum is Σ_i x_i ⊗ F_i − Σ_p s_p ⊗ ∂E/∂r_p, so only
        pairs with a periodic image are visited. Positions are taken relative to each
        system's first atom, which keeps the rounding of Σ x_i ⊗ F_i small.
        """
        x = batch.positions.detach()
        if self.n_systems > 1:
            first = batch.offsets[:-1].clamp(max=max(batch.n_atoms - 1, 0))  # empty systems
            x = x - x.index_select(0, first).repeat_interleave(batch.counts, dim=0)
        else:
            x = x - x[:1]
        w_atoms = x.unsqueeze(2) * forces.unsqueeze(1)
        if self.n_systems == 1:
            w = w_atoms.sum(0, keepdim=True)
        else:
            w = torch.zeros(self.n_systems, batch.dim, batch.dim, dtype=x.dtype, device=x.device)
            w.index_add_(0, batch.system, w_atoms)
        if len(self.shifted):
            cells = batch.cells.detach()
            g = grad.index_select(0, self.shifted)
            if self.n_systems == 1:
                w -= ((self.images @ cells[0]).T @ g).unsqueeze(0)
            else:
                s = torch.einsum("qa,qab->qb", self.images, cells.index_select(0, self.image_system))
                w.index_add_(0, self.image_system, -s.unsqueeze(2) * g.unsqueeze(1))
        return w

    def per_system(self, values: torch.Tensor) -> torch.Tensor:
        """Sums of per-pair ``values`` (P,) per system: (B,)."""
        if self.n_systems == 1:
            return values.sum(0, keepdim=True)
        out = torch.zeros(self.n_systems, dtype=values.dtype, device=values.device)
        return out.index_add_(0, self.system, values)


def _incidence(i: torch.Tensor, j: torch.Tensor, n_atoms: int, dtype) -> torch.Tensor:
    """(N, P) CSR with +1 at (i_p, p) and −1 at (j_p, p).

    Its transpose has two entries per row, so on the CPU it is built as that transpose and
    converted by scipy's counting sort (linear in P); elsewhere see :func:`_incidence_sorted`.
    """
    if i.device.type != "cpu":
        return _incidence_sorted(i, j, n_atoms, dtype)
    n_pairs = len(i)
    index = np.int32 if 2 * n_pairs < 2**31 and n_atoms < 2**31 else np.int64
    ends = np.empty(2 * n_pairs, dtype=index)
    ends[0::2], ends[1::2] = i.numpy(), j.numpy()
    signs = np.empty(2 * n_pairs, dtype=np.int8)
    signs[0::2], signs[1::2] = 1, -1
    by_pair = scipy.sparse.csr_matrix((signs, ends, np.arange(0, 2 * n_pairs + 1, 2, dtype=index)),
                                      shape=(n_pairs, n_atoms), copy=False)
    a = by_pair.tocsc()  # the same numbers stored by atom: the CSR of the (N, P) matrix
    return _csr(torch.from_numpy(a.indptr), torch.from_numpy(a.indices),
                torch.from_numpy(a.data).to(dtype), (n_atoms, n_pairs))


def _incidence_sorted(i: torch.Tensor, j: torch.Tensor, n_atoms: int, dtype) -> torch.Tensor:
    """:func:`_incidence` by a stable argsort of the pair ends, on the tensors' device."""
    n_pairs = len(i)
    index = torch.int32 if 2 * n_pairs < 2**31 else torch.int64
    ends = torch.cat([i, j])
    order = torch.argsort(ends, stable=True)
    counts = torch.bincount(ends, minlength=n_atoms)
    rows = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]).to(index)
    signs = torch.where(order < n_pairs, 1.0, -1.0).to(dtype)
    return _csr(rows, torch.remainder(order, n_pairs).to(index), signs, (n_atoms, n_pairs))


def _csr(rows, columns, values, size):
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the product is stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(rows, columns, values, size, check_invariants=False)
