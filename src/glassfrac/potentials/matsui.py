"""Matsui (1994) rigid-ion potential for Al2O3, as LAMMPS ``born/coul/long`` coefficients.

    V(r) = q_i q_j e²/(4πε0 r) − C_i C_j / r⁶ + f (B_i + B_j) exp[(A_i + A_j − r)/(B_i + B_j)]

with f = 4.184 kJ mol⁻¹ Å⁻¹ (reference/potentials.md §3). LAMMPS ``born`` is
E = A exp((σ − r)/ρ) − C/r⁶ + D/r⁸, so A = f (B_i + B_j) [eV], ρ = B_i + B_j [Å],
σ = A_i + A_j [Å], C = C_i C_j [kJ mol⁻¹ Å⁶ → eV Å⁶], D = 0. (Equivalently σ = 0 and
A = f (B_i + B_j) exp((A_i + A_j)/(B_i + B_j)); the sheet's form keeps A small.) Every
coefficient is computed here from the element table; none is copied from an input file
(one public file has C 3.6 % too high; the tests pin C to C_i C_j in eV Å⁶).

The optional repulsive wall, for melt temperatures, is added per pair with
``pair_style hybrid/overlay ... lepton``:
E_wall = ε [(r_w/r)¹² − 2 (r_w/r)⁶ + 1] for r < r_w, zero (with zero slope) beyond. It
removes the unphysical collapse of the −C/r⁶ term at r → 0 and is inactive at r ≥ r_w.

:class:`MatsuiPotential` is a :class:`~glassfrac.potentials.base.Potential` evaluated by LAMMPS
(one instance per system of a batch, kept alive between calls), and the source of the LAMMPS
commands that :mod:`glassfrac.mechanics.md` runs MD with.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import erfc

from glassfrac.core.errors import InputError
from glassfrac.potentials.base import Potential, Results
from glassfrac.potentials.batch import Batch, Pairs
from glassfrac.potentials.lammps import LammpsEvaluator
from glassfrac.structure import Box, Structure

KJ_PER_MOL_IN_EV = 1000.0 / (6.02214076e23 * 1.602176634e-19)
"""1 kJ/mol in eV (exact SI constants)."""

COULOMB_EV_A = 14.399645
"""e²/(4πε0) in eV·Å, the value LAMMPS uses in metal units (``qqr2e``)."""

F_MATSUI = 4.184 * KJ_PER_MOL_IN_EV
"""f = 4.184 kJ mol⁻¹ Å⁻¹ in eV/Å (0.0433641)."""

ELEMENTS = {
    # symbol: (q in e, A in Å, B in Å, C in Å³ (kJ/mol)^½)
    "Al": (1.4175, 0.7852, 0.034, 36.82),
    "O": (-0.9450, 1.8215, 0.138, 90.61),
}
"""Matsui's table (reference/potentials.md §3)."""

SPECIES = ("Al", "O")
"""LAMMPS type order: Al = 1, O = 2."""


def born_coefficients(a: str, b: str) -> dict:
    """``born/coul/long`` coefficients of pair (a, b): A (eV), rho (Å), sigma (Å), C (eV Å⁶), D."""
    _, Aa, Ba, Ca = ELEMENTS[a]
    _, Ab, Bb, Cb = ELEMENTS[b]
    rho = Ba + Bb
    return {"A": F_MATSUI * rho, "rho": rho, "sigma": Aa + Ab,
            "C": Ca * Cb * KJ_PER_MOL_IN_EV, "D": 0.0}


def charges(species) -> np.ndarray:
    """Charges (e) of the given species symbols."""
    return np.array([ELEMENTS[s][0] for s in np.asarray(species).astype(str)])


def short_range(r, a: str, b: str):
    """Born–Mayer plus dispersion part of V for pair (a, b) at distances ``r`` (Å), eV."""
    c = born_coefficients(a, b)
    r = np.asarray(r, float)
    return c["A"] * np.exp((c["sigma"] - r) / c["rho"]) - c["C"] / r**6


def pair_energy(r, a: str, b: str):
    """Full bare pair potential V(r) (eV) of an isolated pair, Coulomb included."""
    return COULOMB_EV_A * ELEMENTS[a][0] * ELEMENTS[b][0] / np.asarray(r, float) + short_range(r, a, b)


def barrier(a: str, b: str) -> float | None:
    """Position (Å) of the maximum of V(r) below its well, where −C/r⁶ starts to win; None if
    V rises monotonically towards r → 0 on (0.3, 3) Å."""
    r = np.linspace(0.3, 3.0, 27001)
    dv = np.diff(pair_energy(r, a, b))
    top = np.flatnonzero((dv[:-1] > 0) & (dv[1:] <= 0))
    return float(r[top[0] + 1]) if len(top) else None


@dataclass
class MatsuiPotential(Potential):
    """Matsui Al2O3 with long-range Coulomb in LAMMPS.

    ``cutoff`` (Å) is the real-space cutoff of both the Born and the Coulomb terms;
    ``kspace`` is ``"pppm"`` (DU21, accuracy 1e-5) or ``"ewald"`` (tests). The wall (see the
    module docstring) starts at ``wall_radius[pair]`` Å (default: the barrier of V(r), where
    there is one) with strength ``wall_epsilon[pair]`` eV (default r_w² |V''(r_w)| / 36: twice
    what cancels the curvature of V at its barrier, so V + wall falls monotonically from
    r → 0 to the well); :meth:`compute` adds it if ``wall`` is set, MD stages choose their own
    (``wall=True`` of :meth:`lammps_commands`).

    As a :class:`Potential` it evaluates 3D periodic systems only (long-range Coulomb), reads
    nothing from ``pairs`` (ability ``"ignores_pairs"``) and has no pair derivatives or term
    Hessians. Call :meth:`close` to free its LAMMPS instances early.
    """

    cutoff: float = 10.0
    kspace: str = "pppm"
    kspace_accuracy: float = 1e-5
    wall_radius: dict = field(default_factory=dict)
    wall_epsilon: dict = field(default_factory=dict)
    wall: bool = False

    name = "matsui1994"
    species = SPECIES
    abilities = frozenset({"ignores_pairs"})
    caches = {"_lammps": dict}  # LAMMPS instances stay with their process

    def __post_init__(self):
        self._lammps = {}  # system index -> (commands, LammpsEvaluator)

    @staticmethod
    def charge(symbol: str) -> float:
        """Charge (e) of ``symbol``."""
        return ELEMENTS[symbol][0]

    def wall_radii(self) -> dict:
        """Wall radius (Å) per pair ``"Al-O"``; pairs without a barrier get no wall."""
        out = {}
        for i, a in enumerate(SPECIES):
            for b in SPECIES[i:]:
                key = f"{a}-{b}"
                r_w = self.wall_radius.get(key, barrier(a, b))
                if r_w is not None:
                    out[key] = float(r_w)
        return out

    def wall_epsilons(self) -> dict:
        """Wall strength (eV) per pair with a wall."""
        out = {}
        for key, r_w in self.wall_radii().items():
            if key in self.wall_epsilon:
                out[key] = float(self.wall_epsilon[key])
                continue
            a, b = key.split("-")
            h = 1e-4
            curvature = (pair_energy(r_w + h, a, b) - 2 * pair_energy(r_w, a, b) + pair_energy(r_w - h, a, b)) / h**2
            out[key] = float(r_w**2 * abs(curvature) / 36)
        return out

    def wall_energy(self, r, a: str, b: str):
        """Wall energy (eV) of pair (a, b) at ``r`` Å (zero where there is no wall)."""
        r = np.asarray(r, float)
        key = f"{a}-{b}" if f"{a}-{b}" in self.wall_radii() else f"{b}-{a}"
        if key not in self.wall_radii():
            return np.zeros_like(r)
        r_w, eps = self.wall_radii()[key], self.wall_epsilons()[key]
        x6 = (r_w / r) ** 6
        return np.where(r < r_w, eps * (x6 * x6 - 2 * x6 + 1), 0.0)

    def lammps_commands(self, wall: bool = False) -> list[str]:
        """``pair_style``/``pair_coeff``/``kspace_style`` lines; types 1 = Al, 2 = O, charges set
        separately (``set type``)."""
        if self.kspace not in ("pppm", "ewald"):
            raise InputError(f"kspace must be 'pppm' or 'ewald', got {self.kspace!r}")
        radii = self.wall_radii() if wall else {}
        eps = self.wall_epsilons() if wall else {}
        style = f"born/coul/long {self.cutoff:g}"
        lines = [f"pair_style hybrid/overlay {style} lepton {max(radii.values()):g}" if radii
                 else f"pair_style {style}"]
        sub = "born/coul/long " if radii else ""
        for i, a in enumerate(SPECIES):
            for j in range(i, len(SPECIES)):
                b = SPECIES[j]
                c = born_coefficients(a, b)
                lines.append(f"pair_coeff {i + 1} {j + 1} {sub}{c['A']:.10g} {c['rho']:.10g} "
                             f"{c['sigma']:.10g} {c['C']:.10g} {c['D']:g}")
        for key, r_w in radii.items():
            a, b = key.split("-")
            i, j = sorted((SPECIES.index(a) + 1, SPECIES.index(b) + 1))
            lines.append(f'pair_coeff {i} {j} lepton "eps*((rw/r)^12-2*(rw/r)^6+1);'
                         f'eps={eps[key]:.10g};rw={r_w:.10g}" {r_w:.10g}')
        lines.append(f"kspace_style {self.kspace} {self.kspace_accuracy:g}")
        return lines

    def parameters(self) -> dict:
        return {"name": self.name, "cutoff_A": self.cutoff, "kspace": self.kspace,
                "kspace_accuracy": self.kspace_accuracy, "wall": self.wall}

    def compute(self, batch: Batch, pairs: Pairs | None = None, virial: bool = True,
                per_atom: bool = False) -> Results:
        """Energy (B,) eV, forces (N, 3) eV/Å, virial (B, 3, 3) eV and, with ``per_atom``,
        per-atom energies and virials, by LAMMPS ``run 0`` (``pairs`` is not read)."""
        names = np.array(self.species)
        cells, pbc = batch.cells.detach().cpu().numpy(), batch.pbc.cpu().numpy()
        parts = []
        for k, (x, code) in enumerate(zip(batch.split(batch.positions), batch.split(batch.species), strict=True)):
            structure = Structure(x, names[code], Box(cells[k], pbc[k]))
            parts.append(self._evaluator(k, structure).evaluate(structure, per_atom))
        f64 = dict(dtype=torch.float64, device=batch.device)
        res = Results(torch.tensor([p["energy"] for p in parts], **f64),
                      torch.tensor(np.concatenate([p["forces"] for p in parts]), **f64),
                      torch.tensor(np.stack([p["virial"] for p in parts]), **f64))
        if per_atom:
            res.per_atom_energy = torch.tensor(np.concatenate([p["per_atom_energy"] for p in parts]), **f64)
            res.per_atom_virial = torch.tensor(np.concatenate([p["per_atom_virial"] for p in parts]), **f64)
        return res

    def _evaluator(self, k: int, structure: Structure) -> LammpsEvaluator:
        """The LAMMPS instance of system ``k``, made anew when the atoms or parameters changed."""
        if structure.dim != 3 or not structure.box.pbc.all():
            raise InputError("the Matsui potential needs 3D systems periodic along x, y and z")
        commands = [*(f"set type {t} charge {self.charge(s):.10g}" for t, s in enumerate(SPECIES, start=1)),
                    *self.lammps_commands(wall=self.wall)]
        held = self._lammps.get(k)
        if held is not None and held[0] == commands and held[1].holds(structure):
            return held[1]
        if held is not None:
            held[1].close()
        evaluator = LammpsEvaluator(structure, SPECIES, commands, atom_style="charge")
        self._lammps[k] = (commands, evaluator)
        return evaluator

    def close(self) -> None:
        """Close the LAMMPS instances (a later :meth:`compute` opens new ones)."""
        for _, evaluator in self._lammps.values():
            evaluator.close()
        self._lammps.clear()

    def describe(self, wall: bool = False) -> dict:
        """JSON-ready description (what a run's outputs record)."""
        out = {"potential": self.name, "cutoff_A": self.cutoff, "kspace": self.kspace,
               "kspace_accuracy": self.kspace_accuracy, "wall": bool(wall)}
        if wall:
            out["wall_radius_A"] = self.wall_radii()
            out["wall_epsilon_eV"] = self.wall_epsilons()
        return out


# -- numpy reference: direct Ewald sum + Born terms (for tests and checks) ------------------

def ewald_energy(positions, charges, cell, accuracy: float = 1e-12) -> float:
    """Coulomb energy (eV) of a neutral periodic 3D point-charge system by the Ewald sum.

    Splitting parameter α = √π (N/V²)^(1/6) (balanced cost); real and reciprocal sums are
    cut where their terms fall below ``accuracy`` (relative to exp(−x²)).
    """
    x = np.asarray(positions, float)
    q = np.asarray(charges, float)
    cell = np.asarray(cell, float)
    if abs(q.sum()) > 1e-8:
        raise InputError(f"the system must be neutral (total charge {q.sum():.3g} e)")
    volume = abs(np.linalg.det(cell))
    alpha = np.sqrt(np.pi) * (len(q) / volume**2) ** (1 / 6)
    s = np.sqrt(-np.log(accuracy))
    r_cut, k_cut = s / alpha, 2 * alpha * s
    d = x[None, :, :] - x[:, None, :]
    qq = q[:, None] * q[None, :]
    real = 0.0
    for n in _lattice_points(cell, r_cut + np.linalg.norm(np.ptp(x, axis=0))):
        r = np.linalg.norm(d + n, axis=-1)
        mask = (r > 1e-12) & (r < r_cut)
        real += 0.5 * np.sum(qq[mask] * erfc(alpha * r[mask]) / r[mask])
    recip_cell = 2 * np.pi * np.linalg.inv(cell).T
    k = _lattice_points(recip_cell, k_cut)
    k = k[np.linalg.norm(k, axis=1) > 1e-12]
    k2 = np.sum(k**2, axis=1)
    structure_factor = np.abs(np.exp(1j * x @ k.T).T @ q) ** 2
    recip = 2 * np.pi / volume * np.sum(np.exp(-k2 / (4 * alpha**2)) / k2 * structure_factor)
    self_term = -alpha / np.sqrt(np.pi) * np.sum(q**2)
    return float(COULOMB_EV_A * (real + recip + self_term))


def _lattice_points(cell, radius):
    """Lattice vectors n @ cell with |n @ cell| <= radius (rows)."""
    plane = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)
    reach = np.ceil(radius / plane).astype(int)
    grid = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in reach], indexing="ij"), -1).reshape(-1, 3)
    v = grid @ cell
    return v[np.linalg.norm(v, axis=1) <= radius]


def reference_energy(structure: Structure, cutoff: float = 10.0) -> float:
    """Matsui energy (eV) of a periodic 3D structure: Ewald Coulomb plus the Born terms of all
    pairs (all images) closer than ``cutoff`` Å, as LAMMPS ``born/coul/long`` truncates them."""
    x = structure.positions
    species = structure.species
    cell = structure.box.cell
    energy = ewald_energy(x, charges(species), cell)
    d = x[None, :, :] - x[:, None, :]
    for n in _lattice_points(cell, cutoff + np.linalg.norm(np.ptp(x, axis=0))):
        r = np.linalg.norm(d + n, axis=-1)
        for a in SPECIES:
            for b in SPECIES:
                mask = (species[:, None] == a) & (species[None, :] == b) & (r > 1e-12) & (r < cutoff)
                energy += 0.5 * np.sum(short_range(r[mask], a, b))
    return float(energy)
