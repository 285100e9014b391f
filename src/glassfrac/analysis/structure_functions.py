"""Radial and angular structure functions per atom (Behler–Parrinello / Cubuk et al. form).

For atom i, with neighbours j, k of species a, b (periodic images included, lengths in Å):

- radial ``G_a(i; μ) = Σ_{j of species a} exp(−(r_ij − μ)² / w²)``, one value per neighbour
  species a and centre μ (FC22: μ = 0.2…7.4 Å step 0.2, w = δ = 0.1 Å; DU21: μ = 0.6…10 Å
  step 0.2, w = L = 0.2 Å — reference/protocols.md §6);
- angular ``Ψ_ab(i; ξ, λ, ζ) = Σ_{unordered pairs {j, k}} exp(−(r_ij² + r_ik² + r_jk²)/ξ²)
  (1 + λ cos θ_jik)^ζ`` over neighbours closer than ``angular_cutoff``, one value per unordered
  neighbour-species pair {a, b} and parameter set (each pair {j, k} counted once, i.e. half the
  ordered double sum of Cubuk et al.).

Decisions recorded here:

- Features are grouped by neighbour species only, not by the species of atom i (the FC22
  count: 2 species × 37 centres × 2 structures = 148); train on one central species by
  selecting its rows.
- A radial term with |r − μ| > ``GAUSSIAN_REACH`` w (exp(−25) ≈ 1.4e-11) is dropped, so
  pairs beyond ``max(μ) + GAUSSIAN_REACH w`` are never searched even when ``cutoff`` is larger;
  dropped terms are below 1e-11 each. Angular terms use a hard cutoff on r_ij and r_ik.
- The load-aware descriptor (FC22) appends the same functions computed on an affinely
  deformed copy, x → F x with F = 1 + ``strain`` e_axis e_axisᵀ (diag(1 + ε, 1, 1) for
  axis 0); its feature names end in ``|strained``. Without ``strain`` the features are
  invariant to translations and rotations; with it they are not invariant to rotations.
- Works for 2D and 3D structures and any periodicity the neighbour list supports.

Angular parameter sets (DU21 cites "Cubuk et al." without the table): the (ξ/σ, λ, ζ) set
below is the one of the public RSoft code (R. Ivancic, github.com/Ivancic91/RSoft,
ARCHIVE/PYTHON/MakeRSoftSF.py), which describes its structure functions as those of
E. D. Cubuk, S. S. Schoenholz et al., Phys. Rev. Lett. 114, 108001 (2015) (see also
Schoenholz et al., Nature Physics 12, 469 (2016)) with slight modifications; ξ is in units of
the particle diameter σ there. We scale it with σ = ``CUBUK_SIGMA`` = 2.0 Å (about a cation–
anion bond plus margin) and cut triplets at 2.5 σ = 5 Å; σ and that cutoff are our choice.

Usage (scikit-learn transformer; X is a list of :class:`Structure`, rows are their atoms in
order, structure after structure)::

    sf = fc22_descriptor().fit(structures)        # species from the data unless given
    X = sf.transform(structures)                  # (total atoms, 148)
    sf.get_feature_names_out()
"""

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from glassfrac.core.errors import InputError
from glassfrac.structure import Structure, neighbor_pairs

GAUSSIAN_REACH = 5.0
"""Radial terms farther than this many widths from their centre are dropped."""

FC22_CENTERS = tuple(np.round(0.2 + 0.2 * np.arange(37), 10).tolist())
"""FC22 radial centres μ = 0.2…7.4 Å, step 0.2 (reference/protocols.md §6)."""

DU21_CENTERS = tuple(np.round(0.6 + 0.2 * np.arange(48), 10).tolist())
"""DU21 radial centres μ = 0.6…10 Å, step 0.2."""

CUBUK_SIGMA = 2.0
"""Length (Å) that scales the dimensionless ξ of :data:`CUBUK_ANGULAR_REDUCED`."""

CUBUK_ANGULAR_REDUCED = (
    (1.75, 1, 1), (1.75, 1, 2), (1.75, 1, 4), (1.75, 1, 16),
    (1.20, 1, 1), (1.20, 1, 2),
    (2.00, -1, 1), (2.00, -1, 2), (2.00, -1, 4), (2.00, -1, 16),
)
"""(ξ/σ, λ, ζ) of the RSoft angular set (module docstring)."""

CUBUK_ANGULAR = tuple((round(x * CUBUK_SIGMA, 10), lam, zeta) for x, lam, zeta in CUBUK_ANGULAR_REDUCED)
"""(ξ in Å, λ, ζ) with σ = 2 Å."""


class StructureFunctions(TransformerMixin, BaseEstimator):
    """Per-atom radial (+ angular) structure functions, optionally also on a strained copy.

    ``species``: neighbour species (order of the feature blocks); learned by :meth:`fit` from
    the data (sorted) if None. ``radial_centers`` μ (Å), ``radial_width`` w (Å), ``cutoff``
    (Å) of the radial sums; ``angular``: (ξ Å, λ, ζ) triples (empty: radial only) with
    ``angular_cutoff`` (Å) on r_ij and r_ik; ``strain`` ε and ``axis`` of the affine copy (None:
    no copy); ``max_triplets`` bounds the triplets held in memory at once.
    """

    def __init__(self, species=None, radial_centers=FC22_CENTERS, radial_width=0.1, cutoff=10.0,
                 angular=(), angular_cutoff=5.0, strain=None, axis=0, max_triplets=2_000_000):
        self.species = species
        self.radial_centers = radial_centers
        self.radial_width = radial_width
        self.cutoff = cutoff
        self.angular = angular
        self.angular_cutoff = angular_cutoff
        self.strain = strain
        self.axis = axis
        self.max_triplets = max_triplets

    def fit(self, X=None, y=None):
        """Fix the species blocks (from ``species`` or the species present in ``X``)."""
        if self.species is not None:
            species = tuple(str(s) for s in self.species)
        elif X is None:
            raise InputError("give species= or structures to fit on")
        else:
            species = tuple(sorted({str(s) for st in _as_list(X) for s in np.unique(st.species)}))
        if len(set(species)) != len(species) or not species:
            raise InputError(f"species must be distinct and non-empty, got {species}")
        if self.radial_width <= 0 or self.cutoff <= 0:
            raise InputError("radial_width and cutoff must be positive (Å)")
        self.species_ = species
        self.n_features_out_ = len(self._names())
        return self

    def transform(self, X) -> np.ndarray:
        """Features (total atoms, n_features) float64 of the structures in ``X``, in order."""
        self._check_fitted()
        rows = [self.transform_one(s) for s in _as_list(X)]
        return np.concatenate(rows) if rows else np.zeros((0, self.n_features_out_))

    def transform_one(self, structure: Structure) -> np.ndarray:
        """Features (N, n_features) of one structure."""
        self._check_fitted()
        blocks = [self._plain(structure)]
        if self.strain is not None:
            blocks.append(self._plain(structure.deformed(self.deformation(structure.dim))))
        return np.hstack(blocks)

    def deformation(self, dim: int) -> np.ndarray:
        """The affine map F of the strained copy (dim × dim)."""
        F = np.eye(dim)
        F[self.axis, self.axis] += float(self.strain or 0.0)
        return F

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        self._check_fitted()
        return np.array(self._names(), dtype=object)

    # -- internals ---------------------------------------------------------------------------
    def _plain(self, structure):
        out = [radial_functions(structure, self.species_, self.radial_centers, self.radial_width, self.cutoff)]
        if len(self.angular):
            out.append(angular_functions(structure, self.species_, self.angular, self.angular_cutoff,
                                         self.max_triplets))
        return np.hstack(out)

    def _names(self):
        names = [f"G[{a}](mu={m:.2f})" for a in self.species_ for m in self.radial_centers]
        names += [f"Psi[{a},{b}](xi={x:g},lambda={lam:g},zeta={z:g})"
                  for a, b in species_pairs(self.species_) for x, lam, z in self.angular]
        if self.strain is not None:
            names += [n + "|strained" for n in names]
        return names

    def _check_fitted(self):
        if not hasattr(self, "species_"):
            raise InputError("StructureFunctions is not fitted: call fit() first")


def fc22_descriptor(species=None) -> StructureFunctions:
    """FC22's load-aware radial set: 37 centres, δ = 0.1 Å, cutoff 10 Å, plus ε = 5 % along x."""
    return StructureFunctions(species=species, radial_centers=FC22_CENTERS, radial_width=0.1, cutoff=10.0,
                              strain=0.05, axis=0)


def du21_descriptor(species=None) -> StructureFunctions:
    """DU21's set: 48 radial centres (L = 0.2 Å) plus the Cubuk/RSoft angular set, no load."""
    return StructureFunctions(species=species, radial_centers=DU21_CENTERS, radial_width=0.2,
                              cutoff=DU21_CENTERS[-1] + GAUSSIAN_REACH * 0.2,
                              angular=CUBUK_ANGULAR, angular_cutoff=2.5 * CUBUK_SIGMA)


def species_pairs(species) -> list:
    """Unordered species pairs (a, b), a before b in ``species`` order."""
    return [(species[p], species[q]) for p in range(len(species)) for q in range(p, len(species))]


def radial_functions(structure: Structure, species, centers, width: float, cutoff: float) -> np.ndarray:
    """G_a(i; μ) (N, len(species) × len(centers)): blocks per neighbour species a, μ inside."""
    centers = np.asarray(centers, float)
    n, n_s, n_mu = structure.n_atoms, len(species), len(centers)
    out = np.zeros((n * n_s, n_mu))
    if n_mu == 0 or n == 0:
        return out.reshape(n, n_s * n_mu)
    reach = min(float(cutoff), float(centers.max()) + GAUSSIAN_REACH * width)
    # half list: each pair's Gaussian is evaluated once and added to both of its atoms
    i, j, _, vectors = neighbor_pairs(structure.positions, structure.box, reach)
    r = np.linalg.norm(vectors, axis=1)
    order = np.argsort(r, kind="stable")
    code = _species_codes(structure, species)
    r, row_i, row_j = r[order], (i * n_s + code[j])[order], (j * n_s + code[i])[order]
    for k, mu in enumerate(centers):
        lo, hi = np.searchsorted(r, [mu - GAUSSIAN_REACH * width, mu + GAUSSIAN_REACH * width], side="right")
        g = np.exp(-(((r[lo:hi] - mu) / width) ** 2))
        out[:, k] = (np.bincount(row_i[lo:hi], weights=g, minlength=n * n_s)
                     + np.bincount(row_j[lo:hi], weights=g, minlength=n * n_s))
    return out.reshape(n, n_s * n_mu)


def angular_functions(structure: Structure, species, params, cutoff: float,
                      max_triplets: int = 2_000_000) -> np.ndarray:
    """Ψ_ab(i; ξ, λ, ζ) (N, n_pairs × len(params)): blocks per unordered neighbour-species pair.

    Triplets are built as index arrays: for every centre, all unordered pairs of its neighbour
    entries (periodic images distinct); centres are processed in chunks of at most
    ``max_triplets`` triplets (one chunk per centre if a single centre exceeds it).
    """
    params = [(float(x), float(lam), float(z)) for x, lam, z in params]
    n, n_s = structure.n_atoms, len(species)
    pairs = species_pairs(list(range(n_s)))
    n_pairs = len(pairs)
    pair_index = np.zeros((n_s, n_s), dtype=np.int64)
    for p, (a, b) in enumerate(pairs):
        pair_index[a, b] = pair_index[b, a] = p
    out = np.zeros((n * n_pairs, len(params)))
    if not params or n == 0:
        return out.reshape(n, n_pairs * len(params))
    i, j, _, vectors = neighbor_pairs(structure.positions, structure.box, cutoff, full=True)
    r = np.linalg.norm(vectors, axis=1)
    order = np.argsort(i, kind="stable")
    i, j, vectors, r = i[order], j[order], vectors[order], r[order]
    code = _species_codes(structure, species)
    counts = np.bincount(i, minlength=n)
    start = np.concatenate([[0], np.cumsum(counts)])
    per_atom = counts * (counts - 1) // 2
    for a0, a1 in _chunks(per_atom, max_triplets):
        first, second = _triplets(start[a0:a1 + 1], counts[a0:a1])
        v1, v2 = vectors[first], vectors[second]
        r1, r2 = r[first], r[second]
        r3sq = np.sum((v2 - v1) ** 2, axis=1)
        cos = np.clip(np.einsum("ij,ij->i", v1, v2) / (r1 * r2), -1.0, 1.0)
        row = i[first] * n_pairs + pair_index[code[j[first]], code[j[second]]]
        dist2 = r1**2 + r2**2 + r3sq
        for xi in sorted({p[0] for p in params}):
            radial = np.exp(-dist2 / xi**2)
            for k, (x, lam, zeta) in enumerate(params):
                if x == xi:
                    out[:, k] += np.bincount(row, weights=radial * (1.0 + lam * cos) ** zeta, minlength=n * n_pairs)
    return out.reshape(n, n_pairs * len(params))


def _triplets(start, counts):
    """Index pairs (first, second), first < second, of the neighbour entries of each centre;
    the entries of centre c are ``start[c] .. start[c] + counts[c] - 1`` (contiguous)."""
    entries = np.arange(start[0], start[-1])
    owner = np.repeat(np.arange(len(counts)), counts)
    local = entries - start[:-1][owner]
    later = counts[owner] - local - 1  # partners after each entry in its centre's block
    first = np.repeat(entries, later)
    run_start = np.repeat(np.cumsum(later) - later, later)
    second = first + 1 + (np.arange(len(first)) - run_start)
    return first, second


def _chunks(per_atom, limit):
    """Consecutive atom ranges [a0, a1) whose triplet counts add up to at most ``limit``
    (a single atom above the limit gets a range of its own)."""
    bounds = [0]
    total = 0
    cumulative = np.cumsum(per_atom)
    n = len(per_atom)
    while bounds[-1] < n:
        a0 = bounds[-1]
        a1 = int(np.searchsorted(cumulative, total + limit, side="right"))
        a1 = max(a1, a0 + 1)
        total = int(cumulative[a1 - 1])
        bounds.append(a1)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _species_codes(structure, species):
    present, inverse = np.unique(structure.species, return_inverse=True)
    missing = [s for s in present if s not in species]
    if missing:
        raise InputError(f"species {missing} not among {tuple(species)}")
    return np.array([list(species).index(s) for s in present], dtype=np.int64)[inverse]


def _as_list(X) -> list:
    if isinstance(X, Structure):
        return [X]
    if isinstance(X, Sequence) or hasattr(X, "__iter__"):
        out = list(X)
        if not all(isinstance(s, Structure) for s in out):
            raise TypeError("X must be a Structure or a sequence of Structures")
        return out
    raise TypeError("X must be a Structure or a sequence of Structures")
