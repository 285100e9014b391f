"""FIRE, per system: its settings (:class:`FireParameters`) and its stepper (:class:`FireMethod`)."""

from dataclasses import dataclass

import torch


@dataclass
class FireParameters:
    """FIRE settings (Bitzek et al., PRL 97, 170201, 2006; with the FIRE 2.0 corrections of
    Guénolé et al., Comput. Mater. Sci. 175, 109584, 2020: semi-implicit Euler, a delay of
    ``n_min`` steps at the start, half a step back on uphill motion).

    Atoms have unit mass, so a time step is in Å/√eV (x += dt v, v += dt F); LAMMPS with
    every mass m amu and time step t ps is the same dynamics for dt = t √(m / 1.0364e-4).

    ``dt_stability`` (our addition; None turns it off): the time step is also kept below
    ``dt_stability`` × 2/√κ, the stability limit of the integrator, with κ (eV/Å^2) the
    largest curvature met along a step (the Rayleigh quotient −ΔF·Δx/|Δx|² of consecutive
    steps). Above that limit the stiffest vibrations grow until FIRE stops and restarts, over
    and over: on the Yukawa monolayer (κ ≈ 4.5, limit 0.94) dt_max 1.0 took 9000 evaluations
    to 1e-8 eV/Å and dt_max 0.5 took 770; the Watanabe bilayer (κ ≈ 107, limit 0.19) needs
    a five times smaller step. With the cap, one setting serves both.
    """

    dt_start: float = 0.1
    dt_max: float = 1.0
    dt_min: float = 0.002
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99
    half_step_back: bool = True
    dt_stability: float | None = 0.6


class FireMethod:
    """Per-system FIRE (see :class:`FireParameters`)."""

    def __init__(self, params: FireParameters, max_step: float):
        self.p = params
        self.max_step = max_step

    def start(self, obj, x, ev):
        b = obj.n_systems
        self.v = torch.zeros_like(x)
        self.dt = torch.full((b,), self.p.dt_start, dtype=x.dtype, device=x.device)
        self.alpha = torch.full_like(self.dt, self.p.alpha_start)
        self.dt_used = torch.zeros_like(self.dt)
        self.curvature = torch.zeros_like(self.dt)
        self.steps = torch.zeros(b, dtype=torch.long, device=x.device)
        self.last_negative = torch.zeros_like(self.steps)
        self.failed = ~torch.isfinite(ev.merit) | ~torch.isfinite(ev.fmax)
        self.x_eval, self.g_eval = x, ev.grad

    def select(self, systems, rows):
        for name in ("v", "x_eval", "g_eval"):
            setattr(self, name, getattr(self, name)[rows])
        for name in ("dt", "dt_used", "alpha", "curvature", "steps", "last_negative", "failed"):
            setattr(self, name, getattr(self, name)[systems])

    def propose(self, obj, x, ev, active):
        p, segs = self.p, obj.segs
        force = -ev.grad
        power = segs.dot(force, self.v)
        v_norm = segs.dot(self.v, self.v).sqrt()
        f_norm = segs.dot(force, force).sqrt()
        dt_max = torch.full_like(self.dt, p.dt_max)
        if p.dt_stability is not None:  # stay below the stability limit 2 / sqrt(curvature)
            limit = 2.0 * p.dt_stability / self.curvature.clamp(min=1e-300).sqrt()
            dt_max = torch.where(self.curvature > 0, torch.minimum(dt_max, limit), dt_max)
        uphill = (power <= 0) & active
        downhill = (power > 0) & active
        grow = downhill & (self.steps - self.last_negative > p.n_min)
        self.dt = torch.minimum(torch.where(grow, self.dt * p.f_inc, self.dt), dt_max)
        self.alpha = torch.where(grow, self.alpha * p.f_alpha, self.alpha)
        # uphill (or at rest): stop; after the start-up delay also shrink dt and reset alpha
        self.last_negative = torch.where(uphill, self.steps, self.last_negative)
        reset = uphill & (self.steps >= p.n_min)
        self.alpha = torch.where(reset, p.alpha_start, self.alpha)
        self.dt = torch.where(reset, torch.clamp(self.dt * p.f_dec, min=p.dt_min), self.dt)
        keep = segs.rows((~uphill).to(x.dtype))
        if p.half_step_back:  # undo half of the last move
            x = x - segs.rows(0.5 * self.dt_used * uphill) * self.v
        v = self.v * keep + segs.rows(self.dt) * force
        mix1 = torch.where(downhill, 1.0 - self.alpha, 1.0)
        mix2 = torch.where(downhill & (f_norm > 0), self.alpha * v_norm / f_norm.clamp(min=1e-300), 0.0)
        v = segs.where(active, v * segs.rows(mix1) + force * segs.rows(mix2), torch.zeros_like(v))
        longest = self.dt * segs.max(segs.norms(v))
        shrink = torch.where(longest > self.max_step, self.max_step / longest.clamp(min=1e-300), 1.0)
        self.dt_used = shrink * self.dt * active
        self.v = v
        self.steps = self.steps + active.long()
        return segs.where(active, x + segs.rows(self.dt_used) * v, x)

    def observe(self, obj, x, ev, active):
        segs = obj.segs
        broken = active & ~torch.isfinite(ev.merit)
        # curvature along the step from consecutive forces (a Rayleigh quotient of the Hessian),
        # from steps long enough (> 1e-8 Å) for force round-off not to matter
        dx = x - self.x_eval
        length2 = segs.dot(dx, dx)
        quotient = segs.dot(ev.grad - self.g_eval, dx) / length2.clamp(min=1e-300)
        seen = active & ~broken & (length2 > 1e-16)
        self.curvature = torch.where(seen, torch.maximum(self.curvature, quotient), self.curvature)
        if broken.any():  # stop the system at its last finite state
            self.failed |= broken
            self.x_eval = segs.where(broken, self.x_eval, x)
            self.g_eval = segs.where(broken, self.g_eval, ev.grad)
        else:
            self.x_eval, self.g_eval = x, ev.grad
        return active & ~broken

    def accepted(self, obj, x):
        """Coordinates to keep: the current ones, or the last finite ones of failed systems."""
        if self.failed.any():
            return obj.segs.where(self.failed, self.x_eval, x)
        return x
