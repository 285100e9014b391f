"""A shifted-force Lennard-Jones binary mixture (Kob–Andersen ratios) for the minimiser tests."""

import numpy as np
import torch

from glassfrac.potentials.base import Potential, Results, forces_from_pair_gradient
from glassfrac.structure import Box, Structure


class LennardJones(Potential):
    """V(r) − V(rc) − V'(rc)(r − rc) for r < rc = 2.5 σ_AA; species A, B.

    ``epsilon`` eV and ``sigma`` Å of A–A; A–B and B–B follow Kob & Andersen (1.5, 0.8;
    0.5, 0.88).
    """

    name = "lj-test"
    species = ("A", "B")

    def __init__(self, epsilon=0.5, sigma=2.0):
        e = torch.tensor([[1.0, 1.5], [1.5, 0.5]], dtype=torch.float64) * epsilon
        s = torch.tensor([[1.0, 0.8], [0.8, 0.88]], dtype=torch.float64) * sigma
        self.eps, self.sig = e, s
        self.cutoff = 2.5 * sigma

    @staticmethod
    def _v(r, e, s):
        x6 = (s / r) ** 6
        return 4 * e * (x6 * x6 - x6)

    @staticmethod
    def _dv(r, e, s):
        x6 = (s / r) ** 6
        return 4 * e * (-12 * x6 * x6 + 6 * x6) / r

    def compute(self, batch, pairs, virial=True, per_atom=False):
        vec = pairs.vectors(batch)
        r = vec.norm(dim=1)
        a, b = batch.species[pairs.i], batch.species[pairs.j]
        e, s = self.eps[a, b], self.sig[a, b]
        rc = torch.full_like(r, self.cutoff)
        inside = r < self.cutoff
        energy_p = torch.where(inside, self._v(r, e, s) - self._v(rc, e, s) - self._dv(rc, e, s) * (r - rc), 0.0)
        slope = torch.where(inside, self._dv(r, e, s) - self._dv(rc, e, s), 0.0)
        grad = (slope / r).unsqueeze(1) * vec
        energy = torch.zeros(batch.n_systems, dtype=r.dtype).index_add_(0, pairs.system, energy_p)
        forces, w, w_atom = forces_from_pair_gradient(batch, pairs, vec, grad, virial, per_atom)
        e_atom = None
        if per_atom:
            e_atom = torch.zeros(batch.n_atoms, dtype=r.dtype)
            e_atom.index_add_(0, pairs.i, 0.5 * energy_p).index_add_(0, pairs.j, 0.5 * energy_p)
        return Results(energy, forces, w, e_atom, w_atom)

    def lattice_energy(self, a):
        """Energy per atom (eV) of a triangular A crystal with nearest-neighbour distance a (Å)."""
        n = int(np.ceil(self.cutoff / a)) + 2
        i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1))
        r = a * np.hypot(i + 0.5 * j, np.sqrt(3) / 2 * j).ravel()
        r = r[(r > 0) & (r < self.cutoff)]
        e, s, rc = float(self.eps[0, 0]), float(self.sig[0, 0]), self.cutoff
        v = 4 * e * ((s / r) ** 12 - (s / r) ** 6)
        v_rc = 4 * e * ((s / rc) ** 12 - (s / rc) ** 6)
        dv_rc = 4 * e * (-12 * (s / rc) ** 12 + 6 * (s / rc) ** 6) / rc
        return 0.5 * np.sum(v - v_rc - dv_rc * (r - rc))


def glass(n_atoms, seed, dim=2, density=None, pbc=True):
    """Random binary (80:20) configuration without overlaps: a disordered start (Å)."""
    rng = np.random.default_rng(seed)
    density = density or (0.26 if dim == 2 else 0.12)
    length = (n_atoms / density) ** (1 / dim)
    box = Box(np.full(dim, length), pbc)
    positions = []
    while len(positions) < n_atoms:
        p = rng.uniform(0, length, dim)
        if positions:
            d = np.asarray(positions) - p
            if pbc:
                d -= length * np.round(d / length)
            if np.min(np.linalg.norm(d, axis=1)) < 1.5:
                continue
        positions.append(p)
    species = np.where(np.arange(n_atoms) < 0.8 * n_atoms, "A", "B")
    return Structure(np.asarray(positions), species, box)
