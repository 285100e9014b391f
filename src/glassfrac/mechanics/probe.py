"""Local probing: shear-stress threshold maps (LISTI25 §4, after Patinet et al. PRL 2016).

At every point of a grid a disc is cut from the sample: atoms within ``r_free`` are free,
atoms out to ``r_free + shell`` (:func:`default_shell`) are frozen and
everything beyond is removed (periodic images at the sample edges are used). The disc is
deformed in area-preserving pure shear about its centre, F = R diag(1 + e, 1/(1 + e)) Rᵀ,
R a rotation by the probe direction; frozen atoms follow F exactly, free atoms relax.

How the first stress drop is found (the fast path). Free atoms of a window are at most a few
hundred degrees of freedom, so the Hessian of every window is a small dense matrix and a
whole chunk of windows is one batched tensor. Each strain step maps the last stable minimum
affinely (or extrapolates, ``predictor``) and runs damped Newton iterations; the window is
still on its elastic branch when
Newton converges (max force below ``fmax``) with a positive-definite Hessian (Cholesky
succeeds), the non-affine jump of every free atom stays below ``max_jump`` and the stress
has not dropped. Otherwise the window's minimum has disappeared (a saddle-node: the first
rearrangement), and the step is bisected until the instability strain is known to
``precision``. With ``placement="saddle-node"`` (the default) the steps are placed by the normal
form of that instability instead of only halving: the lowest Hessian eigenvalue λ of each stable
state (inverse iteration on the Cholesky factor the solve already has, warm-started from the
previous state's mode) falls as λ² ∝ (γ_c − γ) near γ_c, so two stable states predict γ_c, and the
next trial goes ``approach`` (0.9) of the way there (at least ``precision``, at most ``step``, and
below the middle of a bracket). The bracket that ends a window is still a stable state and a failed
one ``precision`` apart: placement changes how many solves find it, not what counts as an
instability. The threshold is Δτ = τ_c − τ_in: the shear stress (σ_xx − σ_yy)/2 of the
free region at the last stable strain minus its value at zero strain, in N/m.

The free-region stress is the sum of the per-atom virials of the free atoms over the free
area π r_free² (for a pair potential: the virial of all pairs with at least one free atom,
half of a free–frozen pair). Defaults: ``max_newton`` = 12 iterations to ``fmax`` = 1e-6 eV/Å
gave the same map as 60 iterations to 1e-9 eV/Å (within 1e-4 N/m) on a JuMol sample; 8
iterations did not (false instabilities).

Windows are evaluated through the :class:`~glassfrac.potentials.base.Potential` interface:
forces and per-atom virials from ``potential.compute`` on a :class:`~glassfrac.potentials.batch.Batch`
of windows (one system per window, frozen atoms marked), and the Hessian from the potential's
declared ``"hessian"`` ability (term blocks, assembled here into one dense free-atom matrix per
window). Monolayers (2D) and sheets (3D with z non-periodic, as the bilayer: discs in x–y through
both layers, shear in-plane) are probed alike. The frozen shell must hold every atom that acts on
a free atom: the cutoff for a pair potential, twice the cutoff for a many-body one (the
Watanabe coordination z of a neighbour depends on that neighbour's own neighbours).

Scheduling: all windows in flight take one Newton iteration per tick (one batched evaluation
and Cholesky); a window whose solve ends is judged and sent to its next strain at once, and
finished windows are replaced from the queue, so no evaluation is spent on a window that is
waiting. Pair lists are Verlet lists per window (cutoff + ``skin``; pairs of two frozen atoms
are left out for a pair potential), rebuilt for the windows that need it in one neighbour
search with the windows laid side by side. The results are those of the first
(chunk-synchronous) implementation to 1e-14 N/m.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from glassfrac.core.errors import InputError, NonFiniteError
from glassfrac.core.progress import progress
from glassfrac.core.threads import set_threads
from glassfrac.core.units import EV_PER_A2_IN_N_PER_M
from glassfrac.mechanics.finite import check_structure
from glassfrac.potentials.batch import Batch, Pairs
from glassfrac.structure import Box, Structure, neighbor_pairs


@dataclass
class ProbeSettings:
    """Probing settings: lengths in Å, strains dimensionless, forces in eV/Å, stress in N/m.

    ``shell``: width of the frozen ring, Å (default :func:`default_shell`); ``chunk``: windows in flight
    at once (rows of the batched Hessians; on one CPU core 16–32 ran fastest, larger chunks spill the
    batched Hessians out of the cache; a GPU wants 1000 or more); ``predictor``: start of each Newton
    solve, "affine" (the last stable state mapped affinely, the first implementation's choice) or
    "secant" (linear extrapolation of the last two stable states in the reference frame: ~20 % fewer
    Newton iterations; the same Δτ to 2e-6 N/m on most windows, but ~2 % of windows, those whose first
    rearrangement is small (jumps of 0.05–0.25 Å), find a different event, as the affine path itself does
    with smaller steps; with the saddle-node placement it found later events, so it stays off by default);
    ``max_step``: Newton trust radius per atom, Å; ``placement``: "saddle-node" (trial strains
    from the normal form, module docstring) or "bisection" (coarse steps and halving only, the first
    implementation's); ``approach``: fraction of the predicted distance to the instability a trial goes;
    ``mode_iterations``: inverse iterations per stable state for the lowest mode; ``newton_tol``: a solve
    whose full Newton step is below this (Å) has converged (the gradient after it is of order the third
    derivative times the step squared, ~1e-7 eV/Å; 0 asks for ``fmax`` measured, one evaluation more per
    solve); ``workers``: CPU processes sharing the map; ``device``: torch device.

    The defaults against the first implementation (``step=0.01, placement="bisection", newton_tol=0``):
    ``benchmarks/probe.py --compare`` (README, Local probing): fewer Newton iterations per window and the
    same first event in most windows. In most of the others the new placement finds a lower threshold
    strain, where the bisection stepped across a saddle-node (λ → 0) whose jump stayed just under
    ``max_jump``; in a few it steps across such a small rearrangement itself.
    """

    grid: int = 50
    r_free: float = 11.0
    shell: float | None = None
    directions: int = 1
    load_angle: float = 0.0
    step: float = 0.02
    precision: float = 1e-4
    max_strain: float = 0.25
    fmax: float = 1e-6
    max_newton: int = 12
    max_jump: float = 0.25
    stress_drop: float = 0.05
    chunk: int = 24
    skin: float = 1.0
    max_step: float = 0.2
    predictor: str = "affine"
    placement: str = "saddle-node"
    approach: float = 0.9
    mode_iterations: int = 3
    newton_tol: float = 1e-4
    workers: int = 1
    device: str = "cpu"


@dataclass
class Windows:
    """Cut discs: for window w, atoms ``atoms[w]`` of the sample with positions relative to
    the centre ``rel[w]`` (Å, in-plane; z as in the sample) and ``free[w]`` masks."""

    centres: np.ndarray
    atoms: list
    rel: list
    free: list
    species: list


def default_shell(potential) -> float:
    """Frozen ring width, Å: the cutoff for a pair potential (``"pair_derivatives"``), twice the
    cutoff for a many-body one (a free atom's force depends on its neighbours' neighbours)."""
    return potential.cutoff if potential.can("pair_derivatives") else 2.0 * potential.cutoff


def frozen_shell(potential, settings: ProbeSettings) -> float:
    """The frozen ring width of ``settings`` for ``potential``, Å: its ``shell``, else :func:`default_shell`."""
    return default_shell(potential) if settings.shell is None else settings.shell


def grid_centres(box: Box, n: int) -> np.ndarray:
    """n × n probe centres at the middle of the cells of a regular grid over the box (Å)."""
    f = (np.arange(n) + 0.5) / n
    fx, fy = np.meshgrid(f, f, indexing="xy")
    frac = np.column_stack([fx.ravel(), fy.ravel()])
    return box.cartesian(frac) if box.dim == 2 else frac @ box.cell[:2, :2] + box.origin[:2]


def check_window_room(structure: Structure, r_free: float, shell: float) -> None:
    """An InputError unless ``structure`` can be probed with windows of ``r_free`` + ``shell`` (Å): a 2D
    structure or a 3D sheet (periodic in x and y, not z) whose periodic sides exceed the window's diameter."""
    box = structure.box
    if structure.dim == 3 and (box.pbc[2] or not box.pbc[:2].all()):
        raise InputError("local probing works on 2D structures and on 3D sheets (periodic in x and y, "
                         f"not in z); this box has pbc {box.pbc.tolist()}")
    radius = r_free + shell
    if 2 * radius > np.min(box.lengths[box.pbc], initial=np.inf):
        raise InputError(f"the sample is too small for windows of radius {radius:g} Å (r_free + shell): its periodic "
                         f"sides are {', '.join(f'{x:.1f}' for x in box.lengths[box.pbc])} Å, and a window needs "
                         f"more than {2 * radius:g} Å")


def cut_windows(structure: Structure, centres, r_free: float, shell: float) -> Windows:
    """Discs around ``centres`` (x, y): free atoms within ``r_free``, frozen out to
    ``r_free + shell`` (in-plane distances; a 3D sheet is cut through its whole thickness)."""
    check_window_room(structure, r_free, shell)
    box = structure.box
    radius = r_free + shell
    atoms, rel, free, species = [], [], [], []
    for c in np.asarray(centres, float):
        shift = np.zeros(structure.dim)
        shift[:2] = c
        d = box.minimum_image(structure.positions - shift)
        r = np.linalg.norm(d[:, :2], axis=1)
        keep = np.flatnonzero(r < radius)
        order = np.argsort(r[keep] >= r_free, kind="stable")  # free atoms first
        keep = keep[order]
        atoms.append(keep)
        rel.append(d[keep])
        free.append(r[keep] < r_free)
        species.append(structure.species[keep])
    return Windows(np.asarray(centres, float), atoms, rel, free, species)


class _Rows:
    """Windows in flight: per-row state tensors (first axis = row) and one flat pair list.

    Rows are independent; a row whose window is finished is dropped and the free slot is
    refilled from the queue, so every evaluation works on windows that still need it. State is
    padded, (C, M, d) positions with the free atoms first; :meth:`evaluate` gathers the rows
    into a flat :class:`Batch` (one system per row) for the potential.
    """

    STATE = ("job", "angle", "nfree", "natoms", "ref", "code", "pos", "phase", "iters", "target", "narrow",
             "lo_e", "hi_e", "lo_tau", "lo_free", "prev_e", "prev_free", "predicted", "tau_in", "built_F",
             "built_free", "mode", "lam", "lam_lo", "lam_prev")

    def __init__(self, potential, windows: Windows, jobs, s: ProbeSettings):
        self.potential, self.windows, self.jobs, self.s = potential, windows, jobs, s
        self.dev = torch.device(s.device)
        self.codes = {name: k for k, name in enumerate(potential.species)}
        used = sorted({w for w, _ in jobs})
        self.d = windows.rel[used[0]].shape[1]
        self.M = max(len(windows.atoms[w]) for w in used)
        self.NF = max(int(windows.free[w].sum()) for w in used)
        self.D = self.d * self.NF
        self.area = np.pi * s.r_free**2
        self.cutoff = float(potential.cutoff)
        self.pairwise = potential.can("pair_derivatives")  # pairs of two frozen atoms act on no free atom
        f64, i64, dev = torch.float64, torch.int64, self.dev
        M, NF, d = self.M, self.NF, self.d
        empty = {"job": ((0,), i64), "angle": ((0,), f64), "nfree": ((0,), i64), "natoms": ((0,), i64),
                 "ref": ((0, M, d), f64), "code": ((0, M), i64), "pos": ((0, M, d), f64), "phase": ((0,), i64),
                 "iters": ((0,), i64), "target": ((0,), f64), "narrow": ((0,), torch.bool), "lo_e": ((0,), f64),
                 "hi_e": ((0,), f64), "lo_tau": ((0,), f64), "lo_free": ((0, NF, d), f64), "prev_e": ((0,), f64),
                 "prev_free": ((0, NF, d), f64), "predicted": ((0, NF, d), f64), "tau_in": ((0,), f64),
                 "built_F": ((0, d, d), f64), "built_free": ((0, NF, d), f64), "mode": ((0, NF * d), f64),
                 "lam": ((0,), f64), "lam_lo": ((0,), f64), "lam_prev": ((0,), f64)}
        for name, (shape, dtype) in empty.items():
            setattr(self, name, torch.zeros(shape, dtype=dtype, device=dev))
        # pair list: row and the two atoms (local indices, the free one first)
        self.prow = torch.zeros(0, dtype=i64, device=dev)
        self.pa, self.pb = self.prow.clone(), self.prow.clone()
        self._flat = None

    @property
    def C(self) -> int:
        return len(self.job)

    # -- rows in and out --------------------------------------------------------------------
    def add(self, jobs):
        """Append rows for the job numbers ``jobs`` at zero strain and build their pairs."""
        R, M, NF, d, dev = len(jobs), self.M, self.NF, self.d, self.dev
        ref = np.zeros((R, M, d))
        code = np.zeros((R, M), dtype=np.int64)
        nfree = np.zeros(R, dtype=np.int64)
        natoms = np.zeros(R, dtype=np.int64)
        angle = np.zeros(R)
        for k, job in enumerate(jobs):
            w, angle[k] = self.jobs[job]
            n = natoms[k] = len(self.windows.atoms[w])
            ref[k, :n] = self.windows.rel[w]
            code[k, :n] = [self.codes[x] for x in self.windows.species[w]]
            nfree[k] = self.windows.free[w].sum()
        ref = torch.as_tensor(ref, device=dev)
        f64 = dict(dtype=torch.float64, device=dev)
        new = {"job": torch.as_tensor(np.asarray(jobs, dtype=np.int64), device=dev),
               "angle": torch.as_tensor(angle, device=dev), "nfree": torch.as_tensor(nfree, device=dev),
               "natoms": torch.as_tensor(natoms, device=dev),
               "ref": ref, "code": torch.as_tensor(code, device=dev), "pos": ref.clone(),
               "phase": torch.zeros(R, dtype=torch.int64, device=dev),
               "iters": torch.zeros(R, dtype=torch.int64, device=dev),
               "target": torch.zeros(R, **f64), "narrow": torch.zeros(R, dtype=torch.bool, device=dev),
               "lo_e": torch.zeros(R, **f64), "hi_e": torch.full((R,), np.inf, **f64),
               "lo_tau": torch.zeros(R, **f64), "lo_free": ref[:, :NF].clone(),
               "prev_e": torch.full((R,), np.nan, **f64), "prev_free": ref[:, :NF].clone(),
               "predicted": ref[:, :NF].clone(), "tau_in": torch.zeros(R, **f64),
               "built_F": torch.eye(d, **f64).expand(R, d, d).clone(), "built_free": ref[:, :NF].clone(),
               "mode": self._start_modes(nfree), "lam": torch.full((R,), np.nan, **f64),
               "lam_lo": torch.full((R,), np.nan, **f64), "lam_prev": torch.full((R,), np.nan, **f64)}
        first = self.C
        for name in self.STATE:
            setattr(self, name, torch.cat([getattr(self, name), new[name]]))
        self.build(torch.arange(first, self.C, device=dev))

    def _start_modes(self, nfree) -> torch.Tensor:
        """(R, D) unit start vectors of the inverse iteration: the same weight on every free coordinate
        (none on padding, whose identity blocks then never enter the mode)."""
        slots = (np.arange(self.NF)[None, :] < np.asarray(nfree)[:, None]).astype(float)
        x = torch.as_tensor(np.repeat(slots, self.d, axis=1), dtype=torch.float64, device=self.dev)
        return x / x.norm(dim=1, keepdim=True).clamp(min=1e-300)

    def lowest_modes(self, rows, L):
        """λ (eV/Å²) of the rows ``rows`` (bool) from the Cholesky factors ``L`` (C, D, D) of their Hessians:
        ``mode_iterations`` inverse iterations y = H⁻¹x from the row's last mode x, λ = xᵀy / yᵀy; stored in
        ``lam`` and ``mode`` (the other rows' factors may be partial: their results are dropped)."""
        x = self.mode
        for _ in range(self.s.mode_iterations):
            y = torch.cholesky_solve(x[:, :, None], L).squeeze(-1)
            lam = (x * y).sum(dim=1) / (y * y).sum(dim=1)
            x = y / y.norm(dim=1, keepdim=True)
        self.mode = torch.where(rows[:, None], x, self.mode)
        self.lam = torch.where(rows, lam, self.lam)

    def keep(self, rows):
        """Keep only the rows ``rows`` (bool mask), renumbering the pair list."""
        renumber = torch.cumsum(rows.to(torch.int64), 0) - 1
        for name in self.STATE:
            setattr(self, name, getattr(self, name)[rows])
        mine = rows[self.prow]
        for name in ("prow", "pa", "pb"):
            setattr(self, name, getattr(self, name)[mine])
        self.prow = renumber[self.prow]
        self._flat = None

    # -- pair lists -------------------------------------------------------------------------
    def build(self, rows):
        """(Re)build the pairs of ``rows`` (int tensor) within cutoff + skin at the current positions.

        One neighbour search for all of them: the windows are laid side by side, far apart.
        """
        if len(rows) == 0:
            return
        cutoff = self.cutoff + self.s.skin
        pos = self.pos[rows].cpu().numpy()
        nfree = self.nfree[rows].cpu().numpy()
        counts = self.natoms[rows].cpu().numpy()
        owner = np.repeat(np.arange(len(rows)), counts)
        local = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        spacing = 2.0 * np.abs(pos).max() + cutoff + 1.0
        xyz = pos[owner, local]
        xyz[:, 0] += owner * spacing
        i, j, _, _ = neighbor_pairs(xyz, Box(np.eye(self.d), False), cutoff)
        k, a, b = owner[i], local[i], local[j]
        nf = nfree[k]
        if self.pairwise:
            use = (a < nf) | (b < nf)
            k, a, b, nf = k[use], a[use], b[use], nf[use]
        a, b = np.where(a < nf, a, b), np.where(a < nf, b, a)  # the free atom first
        gone = torch.zeros(self.C, dtype=torch.bool, device=self.dev)
        gone[rows] = True
        stay = ~gone[self.prow]
        dev = self.dev
        new = {"prow": rows[torch.as_tensor(k, device=dev)], "pa": torch.as_tensor(a, device=dev),
               "pb": torch.as_tensor(b, device=dev)}
        for name, value in new.items():
            setattr(self, name, torch.cat([getattr(self, name)[stay], value]))
        self.built_F[rows] = self.F(self.target[rows], self.angle[rows])
        self.built_free[rows] = self.pos[rows, : self.NF]
        self._flat = None

    def refresh_pairs(self):
        """Rebuild the rows whose pairs may have moved by more than the skin since their build.

        A pair vector changes by at most ‖A − 1‖ (r_c + skin) + 2 max|w|, A the affine map since
        the build and w the non-affine displacement of the free atoms (frozen atoms are affine).
        """
        A = self.F(self.target, self.angle) @ torch.linalg.inv(self.built_F)
        eye = torch.eye(self.d, dtype=torch.float64, device=self.dev)
        w = self.pos[:, : self.NF] - torch.einsum("cab,cmb->cma", A, self.built_free)
        bound = torch.linalg.matrix_norm(A - eye, ord=2) * (self.cutoff + self.s.skin)
        bound = bound + 2.0 * w.norm(dim=-1).amax(dim=1)
        if (bound > self.s.skin).any():  # rows past half the skin go along: fewer, larger builds
            self.build(torch.nonzero(bound > 0.5 * self.s.skin).squeeze(1))

    def _layout(self):
        """The rows as one flat :class:`Batch` and its :class:`Pairs` (cached until rows or pairs
        change), with the gather/scatter indices between the padded state and the flat atoms."""
        if self._flat is not None:
            return self._flat
        C, M, NF, d, dev = self.C, self.M, self.NF, self.d, self.dev
        slot = torch.arange(M, device=dev)[None, :]
        real = slot < self.natoms[:, None]
        free = slot < self.nfree[:, None]
        padded = torch.arange(C * M, device=dev).view(C, M)
        flat_of = torch.full((C, M), -1, dtype=torch.int64, device=dev)
        flat_of[real] = torch.arange(int(real.sum()), device=dev)
        system = torch.arange(C, device=dev)[:, None].expand(C, M)[real]
        cells = torch.eye(d, dtype=torch.float64, device=dev).repeat(C, 1, 1)
        batch = Batch(self.pos.reshape(-1, d)[padded[real]], system, cells,
                      torch.zeros(C, d, dtype=torch.bool, device=dev), self.code[real], frozen=~free[real])
        i, j = flat_of[self.prow, self.pa], flat_of[self.prow, self.pb]
        pairs = Pairs(i, j, torch.zeros(len(i), d, dtype=torch.int64, device=dev), self.prow)
        # free atoms: flat index, padded free index (row * NF + k); every flat atom's padded free index or -1
        free_flat = flat_of[free]
        free_slot = (torch.arange(C, device=dev)[:, None] * NF + slot[:, :NF])[free[:, :NF]]
        free_of = torch.full((batch.n_atoms,), -1, dtype=torch.int64, device=dev)
        free_of[free_flat] = free_slot
        atom = torch.arange(NF, device=dev)
        pad = (atom[None, :] >= self.nfree[:, None]).reshape(-1)
        self._flat = {"batch": batch, "pairs": pairs, "gather": padded[real], "free_flat": free_flat,
                      "free_slot": free_slot, "free_of": free_of, "pad_slots": torch.nonzero(pad).squeeze(1)}
        every = torch.arange(C * NF, device=dev)
        self._flat["diag_into"] = self._block_into(every, every)
        return self._flat

    # -- geometry and physics ---------------------------------------------------------------
    def F(self, e, angle) -> torch.Tensor:
        """(R, d, d) in-plane pure-shear deformation gradients at strains ``e`` along ``angle`` (rad)."""
        c, s = torch.cos(angle), torch.sin(angle)
        R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
        D = torch.diag_embed(torch.stack([1.0 + e, 1.0 / (1.0 + e)], -1))
        F2 = R @ D @ R.transpose(1, 2)
        if self.d == 2:
            return F2
        F = torch.eye(self.d, dtype=F2.dtype, device=F2.device).repeat(len(F2), 1, 1)
        F[:, :2, :2] = F2
        return F

    def evaluate(self, hessian=True):
        """Gradient (C, D) in eV/Å, Hessian (C, D, D) in eV/Å² or None, in-plane stress (C, 3)
        xx, yy, xy of the free region in eV/Å² (tension positive)."""
        lay = self._layout()
        C, NF, D, d, dev = self.C, self.NF, self.D, self.d, self.dev
        batch, pairs = lay["batch"], lay["pairs"]
        batch.positions = self.pos.reshape(-1, d)[lay["gather"]]
        if hessian:
            res, terms = self.potential.forces_and_hessian(batch, pairs)
        else:
            res = self.potential.compute(batch, pairs, virial=False, per_atom=True)
        grad = torch.zeros(C * NF, d, dtype=torch.float64, device=dev)
        grad[lay["free_slot"]] = -res.forces[lay["free_flat"]]
        w = torch.zeros(C, d, d, dtype=torch.float64, device=dev)
        w.index_add_(0, batch.system[lay["free_flat"]], res.per_atom_virial[lay["free_flat"]])
        stress = -torch.stack([w[:, 0, 0], w[:, 1, 1], w[:, 0, 1]], 1) / self.area
        H = None
        if hessian:
            H = torch.zeros(C * D * D, dtype=torch.float64, device=dev)
            # diagonal d × d blocks of the free atoms, summed compactly first (one per padded free slot)
            diag = torch.zeros(C * NF, d, d, dtype=torch.float64, device=dev)
            diag[lay["pad_slots"]] = torch.eye(d, dtype=torch.float64, device=dev)  # padding: identity
            for k, (atoms, blocks) in enumerate(terms):
                if blocks.dim() == 3:  # pair form: +k on both diagonal blocks, −k off the diagonal
                    ends, off = self._pair_placement(k, atoms)
                    for slots, take in ends:
                        diag.index_add_(0, slots, blocks[take])
                    H.index_add_(0, off[0], blocks[off[1]].reshape(-1), alpha=-1.0)
                else:
                    into, take = self._term_placement(k, atoms)
                    H.index_add_(0, into, blocks.reshape(-1)[take])
            H[lay["diag_into"]] += diag.reshape(-1)
            H = H.view(C, D, D)
        return grad.view(C, D), H, stress

    def _cached(self, key, atoms, make):
        """``make(loc)`` for the k-th term list, kept while the potential returns the same ``atoms``;
        ``loc`` (T, m): each atom's padded free slot (row * NF + free index), or −1 for a frozen atom."""
        lay = self._flat
        cached = lay.get(key)
        if cached is not None and cached[0].shape == atoms.shape and torch.equal(cached[0], atoms):
            return cached[1]
        out = make(lay["free_of"][atoms])
        lay[key] = (atoms, out)
        return out

    def _block_into(self, la, lb):
        """Flat indices (n · d · d) of the d × d Hessian blocks of padded free slots ``la`` (rows) and ``lb``."""
        NF, D, d = self.NF, self.D, self.d
        span = torch.arange(d, device=self.dev)
        into = (la // NF) * D * D + (la % NF) * d * D + (lb % NF) * d
        return (into[:, None, None] + span[:, None] * D + span[None, :]).reshape(-1)

    def _pair_placement(self, k, atoms):
        """Pair-form blocks k (P, d, d) of ``atoms`` (P, 2) (see :class:`~glassfrac.potentials.base.Potential`):
        ``ends`` [(free slots, pairs)] for the +k diagonal blocks of each free end, and ``off`` (into, pairs)
        for the −k blocks between two free atoms (both orders)."""
        def make(loc):
            ends = []
            for end in range(2):
                take = torch.nonzero(loc[:, end] >= 0).squeeze(1)
                ends.append((loc[take, end], take))
            both = torch.nonzero((loc >= 0).all(dim=1)).squeeze(1)
            la, lb = loc[both, 0], loc[both, 1]
            return ends, (self._block_into(torch.cat([la, lb]), torch.cat([lb, la])), both.repeat(2))
        return self._cached(("pairs", k), atoms, make)

    def _term_placement(self, k, atoms):
        """Term blocks (T, m, d, m, d) of ``atoms`` (T, m): (into, take), the flat places in the (C, D, D)
        Hessian of the entries ``take`` that couple two free atoms."""
        d = self.d
        span = torch.arange(d, device=self.dev)

        def make(loc):
            T, m = loc.shape
            t, a, b = torch.nonzero((loc[:, :, None] >= 0) & (loc[:, None, :] >= 0), as_tuple=True)
            first = ((t * m + a) * d * m + b) * d
            take = (first[:, None, None] + span[:, None] * (m * d) + span[None, :]).reshape(-1)
            return self._block_into(loc[t, a], loc[t, b]), take
        return self._cached(("terms", k), atoms, make)

    def tau(self, stress) -> torch.Tensor:
        """Shear stress (σ'_xx − σ'_yy)/2 in the probe frame, N/m."""
        c, s = torch.cos(self.angle), torch.sin(self.angle)
        sxx, syy, sxy = stress[:, 0], stress[:, 1], stress[:, 2]
        return (0.5 * (sxx - syy) * (c * c - s * s) + 2 * sxy * c * s) * EV_PER_A2_IN_N_PER_M

    def free_mask(self) -> torch.Tensor:
        """(C, NF) True for the free atoms of each row."""
        return torch.arange(self.NF, device=self.dev)[None, :] < self.nfree[:, None]

    def strain_to(self, rows, target, predicted):
        """Rows ``rows`` (bool): frozen atoms to F(target) · reference, free atoms to ``predicted``."""
        F = self.F(target, self.angle)
        pos = torch.einsum("cab,cmb->cma", F, self.ref)
        pos[:, : self.NF] = torch.where(self.free_mask()[:, :, None], predicted, pos[:, : self.NF])
        self.pos = torch.where(rows[:, None, None], pos, self.pos)
        self.target = torch.where(rows, target, self.target)
        self.predicted = torch.where(rows[:, None, None], predicted, self.predicted)
        self.iters = torch.where(rows, 0, self.iters)

    def next_targets(self, rows):
        """Rows ``rows`` (bool) go on from their last stable state: a coarse step, a bisection of
        the bracket, or (bracket narrower than the precision) a confirming step to its top."""
        s = self.s
        bracket = torch.isfinite(self.hi_e)
        narrow = bracket & (self.hi_e - self.lo_e <= s.precision * (1 + 1e-9))
        ahead = torch.full_like(self.lo_e, s.step)
        if s.placement == "saddle-node":  # λ² falls linearly to 0 at the instability: extrapolate the last two
            falling = (self.lam_prev > self.lam_lo) & (self.lam_lo > 0) & torch.isfinite(self.prev_e)
            gap = (self.lo_e - self.prev_e) * self.lam_lo**2 / (self.lam_prev**2 - self.lam_lo**2)
            ahead = torch.where(falling, (s.approach * gap).clamp(min=s.precision, max=s.step), ahead)
        middle = 0.5 * (self.lo_e + self.hi_e)
        target = torch.where(~bracket, self.lo_e + ahead,
                             torch.where(narrow, self.hi_e, torch.minimum(middle, self.lo_e + ahead)))
        target = torch.clamp(target, max=s.max_strain)
        # prediction: the free atoms in the reference frame, Y = F⁻¹ x, kept (affine) or
        # extrapolated linearly through the last two stable states (secant)
        Flo_inv = torch.linalg.inv(self.F(self.lo_e, self.angle))
        Y = torch.einsum("cab,cmb->cma", Flo_inv, self.lo_free)
        if s.predictor == "secant":
            span = self.lo_e - self.prev_e
            use = torch.isfinite(span) & (span > 0)
            ratio = torch.where(use, (target - self.lo_e) / torch.where(use, span, 1.0), 0.0).clamp(max=2.0)
            Y_prev = torch.einsum("cab,cmb->cma", torch.linalg.inv(self.F(self.prev_e.nan_to_num(0.0), self.angle)),
                                  self.prev_free)
            Y = Y + ratio[:, None, None] * (Y - Y_prev)
        predicted = torch.einsum("cab,cmb->cma", self.F(target, self.angle), Y)
        self.narrow = torch.where(rows, narrow, self.narrow)
        self.strain_to(rows, target, predicted)


def probe_map(structure: Structure, potential, settings: ProbeSettings | None = None, centres=None):
    """Threshold map of ``structure``: a dict of arrays, ``threshold`` Δτ (N/m; (grid, grid) on the
    grid of :func:`grid_centres`, else (n,)), per direction, ``tau_in``, ``tau_c``, ``strain_c``,
    ``centres`` (Å), ``angles`` (rad), ``newton_iterations``, ``unit`` (the fields of
    :class:`glassfrac.labels.probe.ThresholdMap`).

    With ``settings.workers`` > 1 the centres are split between that many processes (CPU).
    """
    s = settings or ProbeSettings()
    if not potential.can("hessian"):
        raise InputError(f"local probing needs a potential with the 'hessian' ability; {potential.name} has none")
    if s.predictor not in ("secant", "affine"):
        raise InputError(f"predictor must be 'secant' or 'affine', got {s.predictor!r}")
    if s.placement not in ("saddle-node", "bisection"):
        raise InputError(f"placement must be 'saddle-node' or 'bisection', got {s.placement!r}")
    check_structure(potential, structure, "in the sample to probe")  # overlapping atoms: stop before the windows
    if centres is None:
        centres = grid_centres(structure.box, s.grid)
    centres = np.asarray(centres, float).reshape(-1, 2)
    n = len(centres)
    angles = s.load_angle + np.arange(s.directions) * np.pi / max(s.directions, 1)
    workers = max(1, min(int(s.workers), n))
    if workers > 1 and torch.device(s.device).type != "cpu":
        raise InputError("workers > 1 splits the map between CPU processes; use workers=1 on a GPU")
    if workers == 1:
        tau_in, tau_c, strain, evaluations = _probe_centres(structure, potential, s, centres, angles, progress_bar=True)
    else:
        parts = np.array_split(np.arange(n), workers)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=set_threads, initargs=(1,)) as pool:
            futures = [pool.submit(_probe_centres, structure, potential, s, centres[p], angles) for p in parts]
            done = [f.result() for f in futures]
        tau_in, tau_c, strain = (np.concatenate([d[k] for d in done]) for k in range(3))
        evaluations = sum(d[3] for d in done)
    tau_in, tau_c, strain = (x.reshape(n, len(angles)) for x in (tau_in, tau_c, strain))
    threshold = tau_c - tau_in
    bad = np.flatnonzero(~np.isfinite(threshold).all(axis=1))
    if len(bad):
        raise NonFiniteError(f"non-finite threshold in {len(bad)} of {n} windows (the first centred at "
                             f"{np.round(centres[bad[0]], 3).tolist()} Å)")
    if len(angles) > 1:
        # Patinet's effective threshold: min over directions within 45° of the load of Δτ / cos 2(θ − θ_load)
        proj = np.cos(2 * (angles - s.load_angle))
        usable = proj > 1e-6
        effective = np.min(threshold[:, usable] / proj[usable], axis=1)
    else:
        effective = threshold[:, 0]
    shape = (s.grid, s.grid) if n == s.grid**2 else (n,)
    return {
        "threshold": effective.reshape(shape),
        "threshold_per_direction": threshold,
        "tau_in": tau_in,
        "tau_c": tau_c,
        "strain_c": strain,
        "centres": centres,
        "angles": angles,
        "newton_iterations": evaluations,
        "unit": "N/m",
    }


def _probe_centres(structure, potential, s: ProbeSettings, centres, angles, progress_bar=False):
    """Thresholds of the windows at ``centres`` × ``angles`` (job order: centre-major)."""
    windows = cut_windows(structure, centres, s.r_free, frozen_shell(potential, s))
    jobs = [(w, a) for w in range(len(centres)) for a in angles]
    bar = progress(total=len(jobs), desc="probe windows", unit="win", disable=None if progress_bar else True)
    try:
        return _track(_Rows(potential, windows, jobs, s), s, bar)
    finally:
        bar.close()


def _track(rows: _Rows, s: ProbeSettings, bar) -> tuple:
    """Follow every job to its first instability, bisecting the strain; returns per job
    (τ_in, τ_c, strain at the drop) and the number of window evaluations (Newton iterations).

    One evaluation per tick for all rows in flight; a row whose Newton solve ends (converged,
    Hessian not positive definite, or out of iterations) is judged and sent to its next strain
    at once, and finished windows are replaced by new ones from the queue.
    """
    n = len(rows.jobs)
    tau_in, tau_c, strain = np.zeros(n), np.zeros(n), np.zeros(n)
    queue = list(range(n))[::-1]
    rows.add([queue.pop() for _ in range(min(s.chunk, n))])
    evaluations = 0
    while rows.C:
        rows.refresh_pairs()
        grad, H, stress = rows.evaluate()
        L, info = torch.linalg.cholesky_ex(H)
        pd = info == 0
        rows.iters += 1
        evaluations += rows.C
        ok = (grad.abs().amax(dim=1) < s.fmax) & pd
        ended = ok | ~pd | (rows.iters >= s.max_newton)
        live = rows.job >= 0
        todo = live & ~ended
        if todo.any():
            step = -torch.cholesky_solve(grad[:, :, None], L).squeeze(-1)
            step = torch.where(todo[:, None], step, 0.0).view(rows.C, rows.NF, rows.d)
            biggest = step.norm(dim=-1).amax(dim=1).clamp(min=1e-300)
            step = step * (s.max_step / biggest).clamp(max=1.0)[:, None, None]  # trust radius
            rows.pos[:, : rows.NF] += step
            # a full Newton step this small converges: the gradient after it is ~ (third derivative) × step²
            small = todo & (biggest < s.newton_tol)
            ok, ended = ok | small, ended | small
        if s.placement == "saddle-node" and (ok & live).any():
            rows.lowest_modes(ok & live, L)
        ended = live & ended
        if not ended.any():
            continue
        finished = _judge(rows, ended, ok, rows.tau(stress), s)
        if finished.any():
            jobs = rows.job[finished].cpu().numpy()
            tau_in[jobs] = rows.tau_in[finished].cpu().numpy()
            tau_c[jobs] = rows.lo_tau[finished].cpu().numpy()
            strain[jobs] = rows.lo_e[finished].cpu().numpy()
            rows.job[finished] = -1
            bar.update(len(jobs))
        idle = int((rows.job < 0).sum())
        if idle and (idle >= max(1, rows.C // 8) or idle == rows.C):
            rows.keep(rows.job >= 0)
            if queue:
                rows.add([queue.pop() for _ in range(min(s.chunk - rows.C, len(queue)))])
    return tau_in, tau_c, strain, evaluations


def _judge(rows: _Rows, ended, ok, tau, s: ProbeSettings) -> torch.Tensor:
    """Rows whose solve ``ended``: update their strain bracket, send the unfinished ones to their
    next strain; returns the finished rows (bool).

    A state is stable when Newton converged with a positive-definite Hessian, no free atom
    jumped more than ``max_jump`` from the prediction and the stress did not drop by more than
    ``stress_drop``. Zero strain unstable: Δτ = 0. A bracket narrower than the precision whose
    top failed from its bottom ends the window (if the top failed from a lower start, it is first
    confirmed from the bottom); a confirmation that turns out stable reopens the bracket.
    """
    NF = rows.NF
    first = ended & (rows.phase == 0)
    rows.tau_in = torch.where(first, tau, rows.tau_in)
    rows.lo_tau = torch.where(first, tau, rows.lo_tau)
    rows.lo_free = torch.where(first[:, None, None], rows.pos[:, :NF], rows.lo_free)
    rows.lam_lo = torch.where(first, rows.lam, rows.lam_lo)
    rows.phase = torch.where(first, 1, rows.phase)
    later = ended & ~first
    jump = torch.where(rows.free_mask(), (rows.pos[:, :NF] - rows.predicted).norm(dim=-1), 0.0).amax(dim=1)
    stable = ok & (jump < s.max_jump) & (tau > rows.lo_tau - s.stress_drop)
    up = later & stable
    rows.prev_e = torch.where(up, rows.lo_e, rows.prev_e)
    rows.prev_free = torch.where(up[:, None, None], rows.lo_free, rows.prev_free)
    rows.lam_prev = torch.where(up, rows.lam_lo, rows.lam_prev)
    rows.lam_lo = torch.where(up, rows.lam, rows.lam_lo)
    rows.lo_e = torch.where(up, rows.target, rows.lo_e)
    rows.lo_tau = torch.where(up, tau, rows.lo_tau)
    rows.lo_free = torch.where(up[:, None, None], rows.pos[:, :NF], rows.lo_free)
    rows.hi_e = torch.where(up & rows.narrow, torch.inf, rows.hi_e)
    rows.hi_e = torch.where(later & ~stable, rows.target, rows.hi_e)
    # a bracket narrower than the precision whose top failed from the present bottom needs no
    # confirming step: it would repeat that very solve
    settled = later & ~stable & (rows.hi_e - rows.lo_e <= s.precision * (1 + 1e-9))
    finished = (first & ~ok) | settled | (up & (rows.target >= s.max_strain))
    go_on = ended & ~finished
    if go_on.any():
        rows.next_targets(go_on)
    return finished
