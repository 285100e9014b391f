"""L-BFGS and Polak–Ribière+ CG with a strong-Wolfe line search per system (:class:`LineSearchMethod`).

The line searches accept a step on the strong Wolfe conditions; where energy differences are
below the round-off of the total energy (about 1e-12 relative), they are estimated from the
forces (trapezoid rule along the line), so that both methods reach 1e-8 eV/Å. L-BFGS may be
preconditioned (:mod:`glassfrac.mechanics.preconditioners`).

A line search must not cross a barrier, or a loading run leaves the branch it follows: a trial
still going downhill whose energy and slopes, joined by the Hermite cubic from the line's start,
imply a maximum between them (the energy rose and fell again) is treated as too far, and the
search falls back inside (:meth:`LineSearchMethod._crossed`).
"""

import math

import torch


class LineSearchMethod:
    """L-BFGS or Polak–Ribière+ CG, each system with its own strong-Wolfe line search.

    L-BFGS keeps its pairs in one ring shared by all systems (so the two-loop recursion reads
    slices): a slot written while a system is still searching its line holds no pair for it.
    """

    c1 = 1e-4
    max_trials = 30
    noise = 1e-12

    def __init__(self, method: str, max_step: float, memory: int, curvature: float, precon=None):
        self.precon = precon
        self.method = method
        self.max_step = max_step
        self.memory = memory
        self.curvature = curvature
        self.c2 = 0.9 if method == "lbfgs" else 0.1

    # -- state -------------------------------------------------------------------------
    def start(self, obj, x, ev):
        b, dev = obj.n_systems, x.device
        self.mask = obj.mask
        if self.precon is not None:
            self.precon.prepare(obj)
        self.x0, self.g0, self.e0 = x.clone(), ev.grad.clone(), ev.merit.clone()
        self.d = torch.zeros_like(x)
        self.g_lo = torch.zeros_like(x)
        zeros = torch.zeros_like(self.e0)
        self.dg0, self.alpha, self.alpha_max = zeros.clone(), zeros.clone(), zeros.clone()
        self.lo, self.e_lo, self.dg_lo = zeros.clone(), zeros.clone(), zeros.clone()
        self.hi, self.e_hi, self.dg_hi = torch.full_like(zeros, math.nan), zeros.clone(), zeros.clone()
        self.gamma = torch.full_like(zeros, 1.0 / self.curvature)
        self.trials = torch.zeros(b, dtype=torch.long, device=dev)
        self.steepest = torch.ones(b, dtype=torch.bool, device=dev)
        self.steepest_now = torch.ones(b, dtype=torch.bool, device=dev)
        self.failed = ~torch.isfinite(ev.merit) | ~torch.isfinite(ev.fmax)
        if self.method == "lbfgs":
            self.s_hist = x.new_zeros((self.memory,) + x.shape)
            self.y_hist = x.new_zeros((self.memory,) + x.shape)
            self.rho = x.new_zeros(self.memory, b)
            self.ptr = 0
            if self.precon is not None:
                self.py_hist = torch.zeros_like(self.y_hist)
                self.pg0 = self._solve(self.g0)
                self.precon_builds = self.precon.builds
        else:
            self.g_prev = None
            self.alpha_prev, self.dg_prev = zeros.clone(), zeros.clone()
        self._new_direction(obj, torch.ones(b, dtype=torch.bool, device=dev))

    def select(self, systems, rows):
        for name in ("x0", "g0", "d", "g_lo"):
            setattr(self, name, getattr(self, name)[rows])
        self.mask = None if self.mask is None else self.mask[rows]
        for name in ("e0", "dg0", "alpha", "alpha_max", "lo", "e_lo", "dg_lo", "hi", "e_hi",
                     "dg_hi", "gamma", "trials", "steepest", "steepest_now", "failed"):
            setattr(self, name, getattr(self, name)[systems])
        if self.method == "lbfgs":
            self.s_hist, self.y_hist = self.s_hist[:, rows], self.y_hist[:, rows]
            self.rho = self.rho[:, systems]
            if self.precon is not None:
                self.py_hist, self.pg0 = self.py_hist[:, rows], self.pg0[rows]
        else:
            self.g_prev = None if self.g_prev is None else self.g_prev[rows]
            self.alpha_prev, self.dg_prev = self.alpha_prev[systems], self.dg_prev[systems]

    # -- directions --------------------------------------------------------------------
    def _two_loop(self, segs, g):
        """-H g by the two-loop recursion. With P, P^-1 q = P^-1 g − Σ a P^-1 y is carried
        along from the stored P^-1 g and P^-1 y: one sparse solve per accepted point."""
        m, q, coef = self.memory, g.clone(), []
        pq = None if self.precon is None else self.pg0.clone()
        for age in range(m):
            slot = (self.ptr - 1 - age) % m
            a = self.rho[slot] * segs.dot(self.s_hist[slot], q)
            q -= segs.rows(a) * self.y_hist[slot]
            if pq is not None:
                pq -= segs.rows(a) * self.py_hist[slot]
            coef.append((slot, a))
        r = (q if pq is None else pq) * segs.rows(self.gamma)
        for slot, a in reversed(coef):
            beta = self.rho[slot] * segs.dot(self.y_hist[slot], r)
            r += segs.rows(a - beta) * self.s_hist[slot]
        return -r

    def _solve(self, q):
        """P^-1 q, masked."""
        r = self.precon.solve(q)
        return r if self.mask is None else r * self.mask

    def _sync_precon(self):
        """Redo the stored P^-1 g and P^-1 y when P was rebuilt (after a compaction)."""
        if self.precon is not None and self.method == "lbfgs" and self.precon.builds != self.precon_builds:
            self.pg0 = self._solve(self.g0)
            self.py_hist = torch.stack([self._solve(y) for y in self.y_hist])
            self.precon_builds = self.precon.builds

    def _new_direction(self, obj, which):
        """New search direction and first trial step for the systems in ``which``."""
        segs, g = obj.segs, self.g0
        if self.method == "lbfgs":
            d = self._two_loop(segs, g)
        elif self.g_prev is None:
            d = -g
        else:
            beta = segs.dot(g, g - self.g_prev) / segs.dot(self.g_prev, self.g_prev).clamp(min=1e-300)
            d = -g + segs.rows(beta.clamp(min=0.0)) * self.d
        dg = segs.dot(d, g)
        bad = (dg >= -1e-10 * (segs.dot(g, g) * segs.dot(d, d)).sqrt()) | ~torch.isfinite(dg)
        restart = which & (bad | self.steepest)
        if restart.any():  # steepest descent, scaled by the last curvature estimate
            if self.method == "lbfgs":
                self.rho[:, restart] = 0.0
            h0g = (g if self.precon is None else self.pg0) * segs.rows(self.gamma)
            d = segs.where(restart, -h0g, d)
            dg = torch.where(restart, segs.dot(d, g), dg)
        self.d = segs.where(which, d, self.d)
        self.dg0 = torch.where(which, dg, self.dg0)
        alpha_max = self.max_step / segs.max(segs.norms(self.d)).clamp(min=1e-300)
        if self.method == "lbfgs":
            first = torch.ones_like(alpha_max)
        else:  # CG: expect the same first-order decrease as on the previous line
            ratio = self.alpha_prev * self.dg_prev / torch.where(dg < 0, dg, -1.0)
            first = torch.where(restart | (self.dg_prev >= 0), 1.0, ratio).clamp(min=1e-12)
        self.alpha_max = torch.where(which, alpha_max, self.alpha_max)
        self.alpha = torch.where(which, torch.minimum(first, alpha_max), self.alpha)
        self.lo = torch.where(which, 0.0, self.lo)
        self.e_lo = torch.where(which, self.e0, self.e_lo)
        self.dg_lo = torch.where(which, self.dg0, self.dg_lo)
        self.hi = torch.where(which, math.nan, self.hi)
        self.trials = torch.where(which, 0, self.trials)
        self.steepest = self.steepest & ~which
        self.steepest_now = torch.where(which, restart, self.steepest_now)

    def _remember(self, obj, which, s, y, py=None):
        """Store the pair (s, y) of the systems in ``which``; ``py`` = P^-1 y with P."""
        segs = obj.segs
        sy, yy, ss = segs.dot(s, y), segs.dot(y, y), segs.dot(s, s)
        good = which & (sy > 1e-12 * (yy * ss).sqrt()) & (yy > 0)
        # H0 = gamma P^-1 fitted to the last pair: gamma = s·y / y·P^-1 y (P = I without one;
        # s·P s / s·y instead saves nothing: its first trial steps fail more often)
        self.gamma = torch.where(good, sy / segs.dot(y, y if py is None else py).clamp(min=1e-300), self.gamma)
        if self.method != "lbfgs" or not good.any():
            return
        slot = self.ptr
        self.s_hist[slot] = segs.where(good, s, self.s_hist[slot])
        self.y_hist[slot] = segs.where(good, y, self.y_hist[slot])
        if py is not None:
            self.py_hist[slot] = segs.where(good, py, self.py_hist[slot])
        self.rho[slot] = torch.where(good, 1.0 / sy.clamp(min=1e-300), 0.0)
        self.ptr = (slot + 1) % self.memory

    # -- iteration ---------------------------------------------------------------------
    def propose(self, obj, x, ev, active):
        return obj.segs.where(active, self.x0 + obj.segs.rows(self.alpha) * self.d, self.x0)

    def _difference(self, e_a, dg_a, a, e_b, dg_b, b):
        """merit(b) − merit(a), from the energies unless round-off swamps them."""
        de = e_b - e_a
        estimate = 0.5 * (b - a) * (dg_a + dg_b)
        small = de.abs() <= self.noise * torch.maximum(e_a.abs(), e_b.abs())
        return torch.where(small, estimate, de)

    def observe(self, obj, x, ev, active):
        """Judge the trial of each active system; returns the systems now at an accepted point."""
        self._sync_precon()
        segs, alpha = obj.segs, self.alpha
        dg = segs.dot(ev.grad, self.d)
        finite = torch.isfinite(ev.merit) & torch.isfinite(dg)
        zero = torch.zeros_like(alpha)
        fall = self._difference(self.e0, self.dg0, zero, ev.merit, dg, alpha)  # merit(alpha) − merit(0)
        armijo = finite & (fall <= self.c1 * alpha * self.dg0)
        better = self._difference(self.e_lo, self.dg_lo, self.lo, ev.merit, dg, alpha) <= 0
        curvature = dg.abs() <= self.c2 * self.dg0.abs()
        capped = (alpha >= self.alpha_max * (1 - 1e-12)) & (dg < 0)
        crossed = finite & self._crossed(fall, dg, alpha)
        accept = active & finite & ~crossed & (ev.converged | (armijo & better & (curvature | capped)))
        reject = active & ~accept
        # bracket update (Nocedal & Wright, algorithm 3.6; lo is the best point so far)
        worse = reject & (~(armijo & better) | crossed)
        self.hi = torch.where(worse, alpha, self.hi)
        self.e_hi = torch.where(worse, ev.merit, self.e_hi)
        self.dg_hi = torch.where(worse, dg, self.dg_hi)
        improve = reject & armijo & better
        open_end = torch.isnan(self.hi)
        flip = improve & torch.where(open_end, dg > 0, dg * (self.hi - self.lo) >= 0)
        self.hi = torch.where(flip, self.lo, self.hi)
        self.e_hi = torch.where(flip, self.e_lo, self.e_hi)
        self.dg_hi = torch.where(flip, self.dg_lo, self.dg_hi)
        self.lo = torch.where(improve, alpha, self.lo)
        self.e_lo = torch.where(improve, ev.merit, self.e_lo)
        self.dg_lo = torch.where(improve, dg, self.dg_lo)
        if improve.any():
            self.g_lo = segs.where(improve, ev.grad, self.g_lo)
        self.alpha = torch.where(reject, self._next_trial(), self.alpha)
        self.trials = self.trials + reject.long()
        # a line search that finds no step: move to its best point and restart downhill,
        # or stop the system if that was already a steepest-descent line
        width = (self.hi - self.lo).abs()
        failed = reject & ((self.trials >= self.max_trials)
                           | (width <= 1e-10 * torch.maximum(self.lo, self.hi).abs()))
        if failed.any():
            moved = failed & (self.lo > 0)
            self.failed |= failed & ~moved & self.steepest_now
            self.steepest |= failed
            self.x0 = segs.where(moved, self.x0 + segs.rows(self.lo) * self.d, self.x0)
            self.g0 = segs.where(moved, self.g_lo, self.g0)
            if self.precon is not None and moved.any():
                self.pg0 = segs.where(moved, self._solve(self.g0), self.pg0)
            self.e0 = torch.where(moved, self.e_lo, self.e0)
            self._new_direction(obj, failed & ~self.failed)
        if accept.any():
            pg = None if self.precon is None else self._solve(ev.grad)
            self._remember(obj, accept, x - self.x0, ev.grad - self.g0, None if pg is None else pg - self.pg0)
            if pg is not None:
                self.pg0 = segs.where(accept, pg, self.pg0)
            if self.method == "cg":
                self.g_prev = segs.where(accept, self.g0, self.g0 if self.g_prev is None else self.g_prev)
                self.alpha_prev = torch.where(accept, alpha, self.alpha_prev)
                self.dg_prev = torch.where(accept, self.dg0, self.dg_prev)
            self.x0 = segs.where(accept, x, self.x0)
            self.g0 = segs.where(accept, ev.grad, self.g0)
            self.e0 = torch.where(accept, ev.merit, self.e0)
            self._new_direction(obj, accept & ~ev.converged)
        return accept

    def _crossed(self, de, dg, alpha):
        """Systems whose trial at ``alpha`` (merit ``de`` above the line's start, slope ``dg`` along the line)
        lies beyond a barrier: still downhill, but the Hermite cubic p(t), t in [0, 1], through the start and
        the trial has a local maximum inside (p' < 0 at both ends and > 0 at the vertex of the quadratic p')."""
        a1, a_dg = alpha * self.dg0, alpha * dg
        a2 = 3.0 * de - 2.0 * a1 - a_dg
        a3 = -2.0 * de + a1 + a_dg
        safe = torch.where(a3 < 0, a3, -1.0)
        vertex = -a2 / (3.0 * safe)
        peak = a1 - a2 * a2 / (3.0 * safe)
        return (dg < 0) & (a3 < 0) & (vertex > 0) & (vertex < 1) & (peak > 0)

    def _next_trial(self):
        """Next step length: expand while no bracket, else a safeguarded cubic (or secant on the
        slope where the energies are within round-off) inside the bracket."""
        lo, hi = self.lo, self.hi
        width = hi - lo
        safe = torch.where(width == 0, 1.0, width)
        d1 = self.dg_lo + self.dg_hi + 3.0 * (self.e_lo - self.e_hi) / safe
        disc = d1 * d1 - self.dg_lo * self.dg_hi
        d2 = torch.sign(width) * disc.clamp(min=0).sqrt()
        cubic = hi - width * (self.dg_hi + d2 - d1) / (self.dg_hi - self.dg_lo + 2 * d2)
        secant = lo - self.dg_lo * width / (self.dg_hi - self.dg_lo)
        noisy = (self.e_hi - self.e_lo).abs() <= self.noise * torch.maximum(self.e_lo.abs(), self.e_hi.abs())
        guess = torch.where(noisy | (disc < 0), secant, cubic)
        t = ((guess - lo) / safe).nan_to_num(0.5).clamp(0.1, 0.9)
        return torch.where(torch.isnan(hi), torch.minimum(4.0 * self.alpha, self.alpha_max), lo + t * width)

    def accepted(self, obj, x):
        """Coordinates to keep: each system's last accepted point."""
        return self.x0
