"""Local probing: shear-stress threshold maps (LISTI25 §4, after Patinet et al. PRL 2016).

At every point of a grid a disc is cut from the sample: atoms within ``r_free`` are free,
atoms out to ``r_free + shell`` (shell = the potential cutoff by default) are frozen and
everything beyond is removed (periodic images at the sample edges are used). The disc is
deformed in area-preserving pure shear about its centre, F = R diag(1 + e, 1/(1 + e)) Rᵀ,
R a rotation by the probe direction; frozen atoms follow F exactly, free atoms relax.

How the first stress drop is found (the fast path). Free atoms of a window are at most a few
hundred degrees of freedom, so the Hessian of every window is a small dense matrix and a
whole chunk of windows is one batched tensor. Each strain step maps the last stable minimum
affinely and runs damped Newton iterations; the window is still on its elastic branch when
Newton converges (max force below ``fmax``) with a positive-definite Hessian (Cholesky
succeeds), the non-affine jump of every free atom stays below ``max_jump`` and the stress
has not dropped. Otherwise the window's minimum has disappeared (a saddle-node: the first
rearrangement), and the step is bisected until the instability strain is known to
``precision``. The threshold is Δτ = τ_c − τ_in: the shear stress (σ_xx − σ_yy)/2 of the
free region at the last stable strain minus its value at zero strain, in N/m.

The free-region stress is the virial of all pairs with at least one free atom (half of a
free–frozen pair) over the free area π r_free². Defaults: ``max_newton`` = 12 iterations to
``fmax`` = 1e-6 eV/Å gave the same map as 60 iterations to 1e-9 eV/Å (within 1e-4 N/m) on a
JuMol sample; 8 iterations did not (false instabilities). Needs a pair potential that provides
``pair_derivatives(r, code) -> (V', V'')`` (the Yukawa potential does).
"""

from dataclasses import dataclass

import numpy as np
import torch

from glassfrac.potentials.batch import EV_PER_A2_IN_N_PER_M
from glassfrac.progress import progress
from glassfrac.structure import Box, Structure, neighbor_pairs


@dataclass
class ProbeSettings:
    """Probing settings: lengths in Å, strains dimensionless, forces in eV/Å, stress in N/m."""

    grid: int = 50
    r_free: float = 11.0
    shell: float | None = None
    directions: int = 1
    load_angle: float = 0.0
    step: float = 0.01
    precision: float = 1e-4
    max_strain: float = 0.25
    fmax: float = 1e-6
    max_newton: int = 12
    max_jump: float = 0.25
    stress_drop: float = 0.05
    chunk: int = 256
    skin: float = 0.5


@dataclass
class Windows:
    """Cut discs: for window w, atoms ``atoms[w]`` of the sample with positions relative to
    the centre ``rel[w]`` (Å) and ``free[w]`` masks."""

    centres: np.ndarray
    atoms: list
    rel: list
    free: list
    species: list


def grid_centres(box: Box, n: int) -> np.ndarray:
    """n × n probe centres at the middle of the cells of a regular grid over the box (Å)."""
    f = (np.arange(n) + 0.5) / n
    fx, fy = np.meshgrid(f, f, indexing="xy")
    frac = np.column_stack([fx.ravel(), fy.ravel()])
    return box.cartesian(frac) if box.dim == 2 else frac @ box.cell[:2, :2] + box.origin[:2]


def cut_windows(structure: Structure, centres, r_free: float, shell: float) -> Windows:
    """Discs around ``centres``: free atoms within ``r_free``, frozen out to ``r_free + shell``."""
    if structure.dim != 2:
        raise ValueError("local probing works on 2D structures (monolayers)")
    radius = r_free + shell
    atoms, rel, free, species = [], [], [], []
    for c in np.asarray(centres, float):
        d = structure.box.minimum_image(structure.positions - c)
        r = np.linalg.norm(d, axis=1)
        keep = np.flatnonzero(r < radius)
        if 2 * radius > np.min(structure.box.lengths[structure.box.pbc], initial=np.inf):
            raise ValueError(f"the sample is too small for windows of radius {radius} Å")
        order = np.argsort(r[keep] >= r_free, kind="stable")  # free atoms first
        keep = keep[order]
        atoms.append(keep)
        rel.append(d[keep])
        free.append(r[keep] < r_free)
        species.append(structure.species[keep])
    return Windows(np.asarray(centres, float), atoms, rel, free, species)


def shear_map(e: float, angle: float) -> np.ndarray:
    """Pure-shear deformation gradient with stretch 1 + e along ``angle`` (rad)."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s], [s, c]])
    return R @ np.diag([1.0 + e, 1.0 / (1.0 + e)]) @ R.T


class _Chunk:
    """A batch of windows with dense per-window Hessians over their free coordinates."""

    def __init__(self, potential, windows: Windows, index, angles, settings: ProbeSettings):
        self.potential = potential
        self.windows = windows
        self.s = settings
        self.index = np.asarray(index)
        self.angle = torch.as_tensor(np.asarray(angles, float))
        codes = {name: k for k, name in enumerate(potential.species)}
        self.n_species = len(potential.species)
        self.nfree = np.array([windows.free[w].sum() for w in self.index])
        self.nf = int(self.nfree.max())
        self.D = 2 * self.nf
        C = len(self.index)
        self.C = C
        # reference positions (C, M, 2) padded; free atoms first in each window
        self.M = max(len(windows.atoms[w]) for w in self.index)
        ref = np.zeros((C, self.M, 2))
        code = np.zeros((C, self.M), dtype=np.int64)
        present = np.zeros((C, self.M), dtype=bool)
        for k, w in enumerate(self.index):
            n = len(windows.atoms[w])
            ref[k, :n] = windows.rel[w]
            code[k, :n] = [codes[x] for x in windows.species[w]]
            present[k, :n] = True
        self.ref = torch.as_tensor(ref)
        self.code = torch.as_tensor(code)
        self.present = torch.as_tensor(present)
        free = np.zeros((C, self.M), dtype=bool)
        for k in range(C):
            free[k, : self.nfree[k]] = True
        self.free = torch.as_tensor(free)
        self.area = np.pi * settings.r_free**2
        self.pos = self.ref.clone()  # current positions of all atoms (frozen ones affine)
        self._pairs_at = None

    def subset(self, rows) -> "_Chunk":
        """A chunk of the windows ``rows`` of this one, at their current positions."""
        rows = torch.as_tensor(rows)
        out = _Chunk(self.potential, self.windows, self.index[rows.numpy()], self.angle[rows].numpy(), self.s)
        out.pos = self.pos[rows, : out.M].clone()
        out.build_pairs()
        return out

    # -- geometry ------------------------------------------------------------------------
    def F(self, e) -> torch.Tensor:
        """(C, 2, 2) deformation gradients at strains ``e`` (C,)."""
        e = torch.as_tensor(e, dtype=torch.float64)
        c, s = torch.cos(self.angle), torch.sin(self.angle)
        R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
        D = torch.diag_embed(torch.stack([1.0 + e, 1.0 / (1.0 + e)], -1))
        return R @ D @ R.transpose(1, 2)

    def build_pairs(self):
        """Pairs (window, a, b) with a free, within cutoff + skin at the current positions."""
        cutoff = self.potential.cutoff + self.s.skin
        rows = []
        pos = self.pos.numpy()
        for k in range(self.C):
            n = int(self.present[k].sum())
            i, j, _, _ = neighbor_pairs(pos[k, :n], Box(np.eye(2), False), cutoff)
            nf = self.nfree[k]
            keep = (i < nf) | (j < nf)
            i, j = i[keep], j[keep]
            swap = i >= nf  # put the free atom first
            i, j = np.where(swap, j, i), np.where(swap, i, j)
            rows.append(np.column_stack([np.full(len(i), k), i, j]))
        p = torch.as_tensor(np.concatenate(rows))
        self.pw, self.pa, self.pb = p[:, 0], p[:, 1], p[:, 2]
        self.both_free = self.pb < torch.as_tensor(self.nfree)[self.pw]
        self.pcode = self.code[self.pw, self.pa] * self.n_species + self.code[self.pw, self.pb]
        self.weight = torch.where(self.both_free, 1.0, 0.5).to(torch.float64)
        # flat Hessian indices of the 2x2 blocks (aa, bb, ab, ba) of every pair
        D = self.D
        comp = torch.arange(2)
        ra = 2 * self.pa[:, None] + comp  # (P, 2)
        rb = 2 * self.pb[:, None] + comp
        base = self.pw[:, None, None] * D * D
        self.idx_aa = (base + ra[:, :, None] * D + ra[:, None, :]).reshape(-1)
        ff = self.both_free
        self.idx_bb = (base[ff] + rb[ff][:, :, None] * D + rb[ff][:, None, :]).reshape(-1)
        self.idx_ab = (base[ff] + ra[ff][:, :, None] * D + rb[ff][:, None, :]).reshape(-1)
        self.idx_ba = (base[ff] + rb[ff][:, :, None] * D + ra[ff][:, None, :]).reshape(-1)
        self.grad_a = (self.pw[:, None] * D + ra).reshape(-1)
        self.grad_b = (self.pw[ff][:, None] * D + rb[ff]).reshape(-1)
        self._pairs_at = self.pos.clone()

    def maybe_rebuild(self):
        moved = (self.pos - self._pairs_at).norm(dim=-1).amax() if self._pairs_at is not None else np.inf
        if moved > 0.5 * self.s.skin:
            self.build_pairs()

    # -- physics ---------------------------------------------------------------------------
    def evaluate(self, hessian=True):
        """Gradient (C, D), Hessian (C, D, D) or None, stress tensors (C, 2, 2) in eV/Å²."""
        r_vec = self.pos[self.pw, self.pb] - self.pos[self.pw, self.pa]
        r = r_vec.norm(dim=1)
        inside = r < self.potential.cutoff
        dv, d2v = self.potential.pair_derivatives(r, self.pcode)
        dv = torch.where(inside, dv, 0.0)
        d2v = torch.where(inside, d2v, 0.0)
        u = r_vec / r[:, None]
        # dE/dx_a = -V' u ; dE/dx_b = +V' u
        g_pair = dv[:, None] * u
        grad = torch.zeros(self.C * self.D, dtype=torch.float64)
        grad.index_add_(0, self.grad_a, (-g_pair).reshape(-1))
        grad.index_add_(0, self.grad_b, g_pair[self.both_free].reshape(-1))
        stress = torch.zeros(self.C, 2, 2, dtype=torch.float64)
        w = (self.weight * dv * r)[:, None, None] * (u[:, :, None] * u[:, None, :])
        stress.index_add_(0, self.pw, w)
        stress = stress / self.area
        H = None
        if hessian:
            uu = u[:, :, None] * u[:, None, :]
            eye = torch.eye(2, dtype=torch.float64)
            K = d2v[:, None, None] * uu + (dv / r)[:, None, None] * (eye - uu)
            H = torch.zeros(self.C * self.D * self.D, dtype=torch.float64)
            H.index_add_(0, self.idx_aa, K.reshape(-1))
            Kf = K[self.both_free].reshape(-1)
            H.index_add_(0, self.idx_bb, Kf)
            H.index_add_(0, self.idx_ab, -Kf)
            H.index_add_(0, self.idx_ba, -Kf)
            H = H.view(self.C, self.D, self.D)
            pad = torch.arange(self.D)[None, :] >= 2 * torch.as_tensor(self.nfree)[:, None]
            H = H + torch.diag_embed(pad.to(torch.float64))
        return grad.view(self.C, self.D), H, stress

    def tau(self, stress) -> torch.Tensor:
        """Shear stress (σ'_xx − σ'_yy)/2 in the probe frame, N/m."""
        c, s = torch.cos(self.angle), torch.sin(self.angle)
        sxx, syy, sxy = stress[:, 0, 0], stress[:, 1, 1], stress[:, 0, 1]
        rotated = 0.5 * (sxx - syy) * (c * c - s * s) + 2 * sxy * c * s
        return rotated * EV_PER_A2_IN_N_PER_M

    def set_strain(self, e, free_positions):
        """Frozen atoms to F(e) · reference; free atoms to ``free_positions`` (C, nf, 2)."""
        F = self.F(e)
        self.pos = torch.einsum("cab,cmb->cma", F, self.ref)
        self.pos[:, : self.nf][self.free[:, : self.nf]] = free_positions[self.free[:, : self.nf]]

    def newton(self, active):
        """Damped Newton on the active windows; returns (converged & PD, tau, iterations)."""
        iterations = 0
        for _ in range(self.s.max_newton):
            iterations += 1
            self.maybe_rebuild()
            grad, H, stress = self.evaluate()
            fmax = grad.abs().amax(dim=1)
            L, info = torch.linalg.cholesky_ex(H)
            pd = info == 0
            done = (fmax < self.s.fmax) & pd
            ok = done
            todo = active & ~done & pd
            if not todo.any():
                break
            step = torch.zeros_like(grad)
            step[todo] = -torch.cholesky_solve(grad[todo, :, None], L[todo]).squeeze(-1)
            step = step.view(self.C, self.nf, 2)
            biggest = step.norm(dim=-1).amax(dim=1).clamp(min=1e-300)
            step = step * (0.2 / biggest).clamp(max=1.0)[:, None, None]  # trust radius 0.2 Å
            self.pos[:, : self.nf] += torch.where(self.free[:, : self.nf, None], step, 0.0)
        tau = self.tau(stress)
        return ok & active, tau, iterations


def probe_map(structure: Structure, potential, settings: ProbeSettings | None = None, centres=None):
    """Threshold map of ``structure``; returns a dict of arrays (see :func:`save_map`)."""
    s = settings or ProbeSettings()
    if not hasattr(potential, "pair_derivatives"):
        raise ValueError(f"local probing needs a pair potential with pair_derivatives(); {potential.name} has none")
    shell = potential.cutoff if s.shell is None else s.shell
    if centres is None:
        centres = grid_centres(structure.box, s.grid)
    windows = cut_windows(structure, centres, s.r_free, shell)
    n = len(windows.atoms)
    angles = s.load_angle + np.arange(s.directions) * np.pi / max(s.directions, 1)
    jobs = [(w, a) for w in range(n) for a in angles]
    tau_in = np.zeros(len(jobs))
    tau_c = np.zeros(len(jobs))
    strain = np.zeros(len(jobs))
    newton_iterations = 0
    bar = progress(total=len(jobs), desc="probe windows", unit="win")
    for start in range(0, len(jobs), s.chunk):
        part = jobs[start:start + s.chunk]
        chunk = _Chunk(potential, windows, [w for w, _ in part], [a for _, a in part], s)
        lo = _track(chunk, s)
        sl = slice(start, start + len(part))
        tau_in[sl], tau_c[sl], strain[sl] = lo["tau_in"], lo["tau_c"], lo["strain"]
        newton_iterations += lo["iterations"]
        bar.update(len(part))
    bar.close()
    threshold = (tau_c - tau_in).reshape(n, len(angles))
    if len(angles) > 1:
        # Patinet's effective threshold: min over directions within 45° of the load of Δτ / cos 2(θ − θ_load)
        proj = np.cos(2 * (angles - s.load_angle))
        usable = proj > 1e-6
        effective = np.min(threshold[:, usable] / proj[usable], axis=1)
    else:
        effective = threshold[:, 0]
    shape = (s.grid, s.grid) if len(centres) == s.grid**2 else (len(centres),)
    return {
        "threshold": effective.reshape(shape),
        "threshold_per_direction": threshold,
        "tau_in": tau_in.reshape(n, -1),
        "tau_c": tau_c.reshape(n, -1),
        "strain_c": strain.reshape(n, -1),
        "centres": np.asarray(centres),
        "angles": angles,
        "newton_iterations": newton_iterations,
        "unit": "N/m",
    }


def _track(chunk: _Chunk, s: ProbeSettings) -> dict:
    """Follow every window of a chunk to its first instability, bisecting the strain.

    Windows that are done are dropped from the chunk whenever they make up half of it.
    """
    C = chunk.C
    chunk.build_pairs()
    ok, tau0, total = chunk.newton(torch.ones(C, dtype=torch.bool))
    result = {"tau_in": tau0.numpy().copy(), "tau_c": tau0.numpy().copy(), "strain": np.zeros(C)}
    rows = np.arange(C)  # chunk row -> position in the result arrays
    lo_e = torch.zeros(C, dtype=torch.float64)
    hi_e = torch.full((C,), np.inf, dtype=torch.float64)
    lo_tau = tau0.clone()
    lo_free = chunk.pos[:, : chunk.nf].clone()
    done = ~ok  # windows unstable even at zero strain keep Δτ = 0
    while not done.all():
        if done.sum() >= 0.5 * len(done) and len(done) > 8:
            keep = torch.nonzero(~done).squeeze(1)
            _store(result, rows[done.numpy()], lo_tau[done], lo_e[done])
            chunk = chunk.subset(keep)
            rows, lo_e, hi_e, lo_tau = rows[keep.numpy()], lo_e[keep], hi_e[keep], lo_tau[keep]
            lo_free = lo_free[keep, : chunk.nf]
            done = done[keep]
        bracket = torch.isfinite(hi_e)
        narrow = bracket & (hi_e - lo_e <= s.precision * (1 + 1e-9))
        # coarse step, bisection, or (bracket narrow enough) a confirming step straight to hi
        target = torch.where(~bracket, lo_e + s.step, torch.where(narrow, hi_e, 0.5 * (lo_e + hi_e)))
        target = torch.clamp(target, max=s.max_strain)
        # affine prediction from the last stable state
        G = chunk.F(target) @ torch.linalg.inv(chunk.F(lo_e))
        predicted = torch.einsum("cab,cmb->cma", G, lo_free)
        chunk.set_strain(target, predicted)
        run = ~done
        ok, tau, iters = chunk.newton(run)
        total += iters
        jump = (chunk.pos[:, : chunk.nf] - predicted).norm(dim=-1)
        jump = torch.where(chunk.free[:, : chunk.nf], jump, 0.0).amax(dim=1)
        stable = ok & (jump < s.max_jump) & (tau > lo_tau - s.stress_drop)
        up = run & stable
        lo_e = torch.where(up, target, lo_e)
        lo_tau = torch.where(up, tau, lo_tau)
        lo_free[up] = chunk.pos[up, : chunk.nf]
        # a confirming step that succeeds means the bracket was a false alarm: reopen it
        hi_e = torch.where(up & narrow, torch.inf, hi_e)
        hi_e = torch.where(run & ~stable, target, hi_e)
        done = done | (run & narrow & ~stable) | (up & (target >= s.max_strain))
    _store(result, rows, lo_tau, lo_e)
    result["iterations"] = total
    return result


def _store(result, rows, tau, strain):
    result["tau_c"][rows] = tau.numpy()
    result["strain"][rows] = strain.numpy()


def goodness(threshold_map, centres, event_locations, box: Box) -> np.ndarray:
    """C = 1 − 2 F(Δτ at the event site) per event; Δτ at the nearest grid point (periodic)."""
    values = np.asarray(threshold_map, float).ravel()
    order = np.sort(values)
    out = []
    for loc in np.atleast_2d(event_locations):
        d = np.linalg.norm(box.minimum_image(np.asarray(centres) - loc[:2]), axis=1)
        v = values[np.argmin(d)]
        F = np.searchsorted(order, v, side="right") / len(order)
        out.append(1.0 - 2.0 * F)
    return np.asarray(out)


def save_map(result: dict, path, settings: ProbeSettings, extra: dict | None = None) -> None:
    """Write a probe map to ``path`` (.npz, atomic): arrays of :func:`probe_map` plus settings."""
    import json
    from dataclasses import asdict

    from glassfrac.files import atomic_path

    meta = {"settings": asdict(settings), "unit": result["unit"], **(extra or {})}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **{k: np.asarray(v) for k, v in result.items() if k != "unit"},
                                meta=json.dumps(meta))


def load_map(path) -> dict:
    """Read a map written by :func:`save_map` (no code is executed: plain arrays + JSON)."""
    import json

    with np.load(path, allow_pickle=False) as data:
        out = {k: data[k] for k in data.files if k != "meta"}
        out["meta"] = json.loads(str(data["meta"]))
    return out
