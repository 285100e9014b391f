"""Batched energy minimisation: FIRE, L-BFGS and nonlinear CG with per-system convergence.

:class:`Relaxer` minimises every system of a :class:`~glassfrac.potentials.Batch` in place.
Each system has its own optimiser state (FIRE time step and mixing,
:mod:`~glassfrac.mechanics.fire`; L-BFGS history or CG direction and its own line search,
:mod:`~glassfrac.mechanics.linesearch`) and stops on its own when its largest force on a free
atom is at most ``fmax`` (eV/Å) and, with cell relaxation, its controlled stress components
are within ``stress_tol`` of their targets (frozen atoms and the cell coordinates:
:mod:`~glassfrac.mechanics.objective`). Converged systems stop costing work: they stay
in place while the rest carries on, and when the atoms still moving fall below
``compact`` × the atoms evaluated, the batch is rebuilt from the unfinished systems only
(pairs are carried over, not rebuilt).

L-BFGS needs the fewest force evaluations to 1e-8 eV/Å on the glasses here (perturbed by
0.05 Å: Yukawa monolayer of 1350 atoms L-BFGS 641, FIRE 843, CG 1300; Watanabe bilayer L-BFGS
1681, FIRE 2026; probing windows, median L-BFGS 127, FIRE 216), so it is the default. With
``precondition`` L-BFGS starts each line from a sparse model Hessian of the sample
(:mod:`~glassfrac.mechanics.preconditioners`).

Usage::

    relaxer = Relaxer(potential, method="lbfgs", fmax=1e-8)
    stats = relaxer.run(batch)                           # positions relaxed in place
    stats = relaxer.run(batch, cell_mask=[False, True])  # and the cell, to σ_yy = 0
    stats.converged, stats.max_force, stats.energy       # per system
    [(structure, info), ...] = relax(potential, structures, cell=True)

A :class:`Relaxer` keeps the Verlet list of the last batch it ran, so repeated runs on the
same batch (warm starts, affine steps of a loading path) rebuild pairs only when needed.
"""

import functools
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from glassfrac.core.errors import ConvergenceError, InputError, NonFiniteError
from glassfrac.mechanics.finite import non_finite
from glassfrac.mechanics.fire import FireMethod, FireParameters
from glassfrac.mechanics.linesearch import LineSearchMethod
from glassfrac.mechanics.objective import Evaluation, Objective, free_cell_components, target_stresses
from glassfrac.mechanics.preconditioners import preconditioner
from glassfrac.mechanics.stability import lowest_modes
from glassfrac.potentials import (
    Batch,
    Potential,
    VerletList,
    stress_from_virial,
)

METHODS = ("fire", "lbfgs", "cg")
PRECON_REFRESH = 200
"""Evaluations after which a run rebuilds its preconditioner once the Verlet list has been
rebuilt (atoms moved by half the skin: in an avalanche, bonds broke and P's terms mislead). A
3456-atom bilayer's term-Hessian P costs ~2 s (~80 evaluations); an avalanche relaxation of it
took 1065 iterations with the P of its start, 470 with rebuilds after 200 evaluations. A P
built mid-run is not kept for the next run (it describes a passing geometry)."""


@dataclass
class RelaxStats:
    """Outcome of one :meth:`Relaxer.run`, one entry per system of the batch.

    ``energy`` eV and ``max_force`` eV/Å (largest |F| on a free atom) at the returned
    positions; ``iterations``: accepted steps (FIRE: every step); ``evaluations``: force
    evaluations; ``stress`` (tension positive, N/m for sheets, GPa for bulk, unit per system in
    ``stress_unit``; None if not asked for); ``stress_residual``: largest |σ − σ_target| over
    the relaxed cell components (0 without cell relaxation); ``seconds``: wall time of the run;
    ``compactions``: times the working batch was rebuilt from unfinished systems;
    ``neighbor_builds``: systems whose pairs were (re)built; ``notes``: what else to know;
    ``stopped``: systems stopped by ``stop_beyond`` (all False without it); ``non_finite``: below.
    """

    energy: np.ndarray
    max_force: np.ndarray
    iterations: np.ndarray
    evaluations: np.ndarray
    converged: np.ndarray
    stress_residual: np.ndarray
    stress: np.ndarray | None
    stress_unit: list
    method: str
    seconds: float
    fmax: float
    stress_tol: float
    compactions: int = 0
    neighbor_builds: int = 0
    notes: list = field(default_factory=list)
    stopped: np.ndarray | None = None
    non_finite: dict = field(default_factory=dict)
    """``{system: what is wrong}`` for systems with a NaN or infinite energy or force (overlapping atoms,
    :func:`glassfrac.mechanics.finite.non_finite`); they stop at once, the others go on (when every system
    of the batch starts so, :meth:`Relaxer.run` raises :class:`~glassfrac.core.errors.NonFiniteError`)."""

    def __len__(self) -> int:
        return len(self.energy)

    def system(self, k: int) -> dict:
        """Plain-Python summary of system ``k``."""
        out = {
            "energy": float(self.energy[k]),
            "max_force": float(self.max_force[k]),
            "iterations": int(self.iterations[k]),
            "evaluations": int(self.evaluations[k]),
            "converged": bool(self.converged[k]),
            "stress_residual": float(self.stress_residual[k]),
            "method": self.method,
            "fmax": self.fmax,
        }
        if self.stress is not None:
            out["stress"] = self.stress[k].tolist()
            out["stress_unit"] = self.stress_unit[k]
        return out


class Relaxer:
    """Batched minimiser, reusable across runs on the same batch (keeps its neighbour list).

    ``method``: ``"lbfgs"`` (default: the fastest to tight tolerances), ``"fire"`` or ``"cg"``;
    ``fmax``: force tolerance, eV/Å; ``max_steps``: cap on force evaluations per system;
    ``skin``: Verlet skin, Å; ``stress_tol``: tolerance on controlled stress components (N/m
    for sheets, GPa for bulk); ``max_step``: largest move of one atom (or cell coordinate)
    per step, Å; ``memory``: L-BFGS history length; ``curvature``: stiffness guess for the
    first (steepest-descent) step of the line-search methods, eV/Å^2; ``compact``: rebuild the
    working batch from the unfinished systems when they hold at most this fraction of its
    atoms (0 never); ``fire``: :class:`FireParameters`; ``precondition``: None, ``"bonds"``,
    ``"hessian"`` or ``"auto"`` (L-BFGS only; :func:`preconditioner`, kept between runs: for
    large samples and loading paths, not for many small windows, whose factors would be
    rebuilt every run).
    """

    def __init__(self, potential: Potential, method: str = "lbfgs", fmax: float = 1e-8,
                 max_steps: int = 100_000, skin: float = 1.0, stress_tol: float = 1e-6,
                 max_step: float = 0.2, memory: int = 10, curvature: float = 50.0,
                 compact: float = 0.5, fire: FireParameters | None = None, precondition: str | None = None):
        if method not in METHODS:
            raise InputError(f"unknown method {method!r}; choose one of {list(METHODS)}")
        if precondition is not None and method != "lbfgs":
            raise InputError(f"preconditioner {precondition!r} needs method 'lbfgs', not {method!r}")
        if fmax <= 0 or stress_tol <= 0 or max_step <= 0:
            raise InputError("fmax, stress_tol and max_step must be positive")
        self.potential = potential
        self.method = method
        self.fmax = float(fmax)
        self.max_steps = int(max_steps)
        self.skin = float(skin)
        self.stress_tol = float(stress_tol)
        self.max_step = float(max_step)
        self.memory = int(memory)
        self.curvature = float(curvature)
        self.compact = float(compact)
        self.fire = fire or FireParameters()
        self.precondition = precondition
        self.precon = preconditioner(precondition, potential)
        self._verlet = None
        self._verlet_batch = None

    def _optimizer(self):
        """A fresh optimiser state for one run (both kinds step as start, propose, observe,
        accepted, select; ``failed`` marks the systems they gave up on)."""
        if self.method == "fire":
            return FireMethod(self.fire, self.max_step)
        return LineSearchMethod(self.method, self.max_step, self.memory, self.curvature, self.precon)

    def neighbor_list(self, batch: Batch) -> VerletList:
        """The Verlet list this relaxer keeps for ``batch`` (a new one for a new batch)."""
        if self._verlet is None or self._verlet_batch is not batch:
            self._verlet = VerletList(self.potential.cutoff, self.skin)
            self._verlet_batch = batch
        return self._verlet

    def run(self, batch: Batch, cell_mask=None, target_stress=None, stress: bool = True,
            callback=None, stop_beyond=None) -> RelaxStats:
        """Relax ``batch`` in place (positions, and cells if ``cell_mask`` is given).

        ``cell_mask``: None (fixed cell), True (every component between periodic axes), or
        booleans of shape (d,) (normal components per axis), (d, d) (stress components; the
        lower triangle is folded onto the upper), or either with a leading axis per system.
        ``target_stress``: scalar, (d,), (d, d) or per system, tension positive, N/m for
        sheets and GPa for bulk (default 0). ``stress``: evaluate the final stress (one more
        evaluation when the cell does not relax). ``callback(info)`` is called after every
        evaluation with a dict: ``step``, ``active`` (systems still running), and per system
        ``energy`` (eV, plus the work of the target stress) and ``max_force`` (eV/Å) at its
        last accepted point (tensors, not to be modified), and ``positions()``, which returns the
        positions (N, d) of the whole batch at the last accepted points (a copy). ``stop_beyond`` = (reference
        positions (N, d), distance Å): a system stops, unconverged and marked ``stopped``, as
        soon as one of its atoms is farther than the distance from its reference position (to
        learn cheaply that a state has left its basin, as the AQS bisection does).
        """
        start = time.perf_counter()
        b, dev = batch.n_systems, batch.device
        mask = free_cell_components(batch, cell_mask)
        target = None
        if mask is not None:
            target = target_stresses(batch, target_stress)
        elif target_stress is not None:
            raise InputError("target_stress needs cell_mask")
        verlet = self.neighbor_list(batch)
        obj = Objective(self.potential, batch, verlet, mask, target, self.fmax, self.stress_tol)
        opt = self._optimizer()
        x = obj.start()
        ev = obj.evaluate(x)
        problems = non_finite(batch, "at the start of the relaxation", ev.energy, ev.fmax)
        if len(problems) == b:  # not one system can be relaxed
            k = min(problems)
            raise NonFiniteError((f"system {k} of {b}: " if b > 1 else "") + problems[k])
        opt.start(obj, x, ev)
        rec = _Record(ev)
        full = _Record(ev)
        index = torch.arange(b, device=dev)
        work, work_verlet, compactions, builds = batch, verlet, 0, -verlet.builds
        reference = None if stop_beyond is None else stop_beyond[0].to(batch.positions)
        step = built_at = 0
        while step < self.max_steps:
            active = ~rec.done & ~opt.failed & ~rec.stopped
            n_active = int(active.sum())
            if n_active == 0:
                break
            if self.compact > 0 and n_active < len(index) \
                    and int(work.counts[active].sum()) <= self.compact * work.n_atoms:
                obj.apply(opt.accepted(obj, x))
                _write_back(batch, work, index)
                rec.failed = opt.failed
                full.store(rec, index)
                keep = torch.nonzero(active).flatten()
                if reference is not None:
                    reference = reference[work.atoms_of(keep)]
                builds += work_verlet.builds if work_verlet is not verlet else 0
                sub = work.select(keep)
                work_verlet = work_verlet.select(keep.tolist(), work)
                obj, rows = obj.select(keep, sub, work_verlet)
                work = sub
                opt.select(keep, rows)
                if self.precon is not None:
                    self.precon.prepare(obj)
                rec.select(keep)
                x, ev, index, active = x[rows], ev.select(keep, rows), index[keep], active[keep]
                compactions += 1
            x = opt.propose(obj, x, ev, active)
            ev = obj.evaluate(x)
            step += 1
            if self.precon is not None and step - built_at >= PRECON_REFRESH:
                builds_before = self.precon.builds
                self.precon.prepare(obj)  # a new P only if the Verlet list was rebuilt
                built_at = step if self.precon.builds != builds_before else built_at
            rec.update(ev, active, opt.observe(obj, x, ev, active))
            if reference is not None:
                moved = (obj.positions(opt.accepted(obj, x)) - reference).norm(dim=1)
                farthest = torch.zeros(work.n_systems, dtype=moved.dtype, device=dev)
                farthest.scatter_reduce_(0, work.system, moved, reduce="amax")
                rec.stopped |= active & ~rec.done & (farthest > stop_beyond[1])
            if callback is not None:
                full.store(rec, index)
                callback({"step": step, "active": n_active, "energy": full.merit, "max_force": full.fmax,
                          "positions": functools.partial(_accepted_positions, batch, work, index, obj, opt, x)})
        x = opt.accepted(obj, x)
        obj.apply(x)
        _write_back(batch, work, index)
        if built_at > 0:  # P was built mid-run, at a passing geometry: the next run builds its own
            self.precon.forget()
        rec.failed = opt.failed
        full.store(rec, index)
        energy, fmax, virial = full.energy, full.fmax, full.virial
        problems = {**non_finite(batch, "at the end of the relaxation", energy, fmax), **problems}
        stress_out, units = None, ["N/m" if s else "GPa" for s in batch.is_sheet().tolist()]
        if stress and virial is None:  # one more evaluation, for the virial only
            virial = self.potential.compute(batch, verlet.update(batch), virial=True).virial.detach()
        if stress:
            stress_out, units = stress_from_virial(batch, virial)
        builds += verlet.builds + (work_verlet.builds if work_verlet is not verlet else 0)
        notes = []
        if bool(full.failed.any()):
            notes.append("stopped early (no downhill step found, or non-finite energy) for some systems")
        notes += [f"system {k}: {text}" for k, text in sorted(problems.items())]
        return RelaxStats(
            energy=energy.cpu().numpy(), max_force=fmax.cpu().numpy(),
            iterations=full.iterations.cpu().numpy(), evaluations=full.evaluations.cpu().numpy(),
            converged=full.done.cpu().numpy(), stress_residual=full.sres.cpu().numpy(),
            stress=stress_out, stress_unit=units, method=self.method,
            seconds=time.perf_counter() - start, fmax=self.fmax, stress_tol=self.stress_tol,
            compactions=compactions, neighbor_builds=builds, notes=notes, stopped=full.stopped.cpu().numpy(),
            non_finite=problems,
        )


class _Record:
    """Per-system results at each system's last accepted point (``done``: converged)."""

    names = ("energy", "merit", "fmax", "sres", "virial", "iterations", "evaluations", "done", "failed", "stopped")

    def __init__(self, ev: Evaluation):
        self.energy, self.merit = ev.energy.clone(), ev.merit.clone()
        self.fmax, self.sres = ev.fmax.clone(), ev.sres.clone()
        self.virial = None if ev.virial is None else ev.virial.clone()
        self.iterations = torch.zeros(len(ev.energy), dtype=torch.long, device=ev.energy.device)
        self.evaluations = torch.ones_like(self.iterations)
        self.done = ev.converged.clone()
        self.failed = torch.zeros_like(self.done)
        self.stopped = torch.zeros_like(self.done)

    def update(self, ev: Evaluation, active, accepted):
        self.evaluations += active
        self.iterations += accepted
        for name in ("energy", "merit", "fmax", "sres"):
            setattr(self, name, torch.where(accepted, getattr(ev, name), getattr(self, name)))
        if self.virial is not None:
            self.virial = torch.where(accepted[:, None, None], ev.virial, self.virial)
        self.done |= accepted & ev.converged

    def select(self, systems):
        for name in self.names:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[systems])

    def store(self, other: "_Record", index):
        """Copy ``other`` (a working subset) into rows ``index`` of this record."""
        for name in self.names:
            value = getattr(self, name)
            if value is not None:
                value[index] = getattr(other, name)


def _accepted_positions(batch: Batch, work: Batch, index, obj, opt, x) -> torch.Tensor:
    """Positions of every atom of ``batch`` at each system's last accepted point (a copy), Å."""
    out = batch.positions.detach().clone()
    out[batch.atoms_of(index) if work is not batch else slice(None)] = obj.positions(opt.accepted(obj, x)).detach()
    return out


def _write_back(batch: Batch, work: Batch, index):
    if work is batch:
        return
    atoms = batch.atoms_of(index)
    batch.positions[atoms] = work.positions.detach()
    batch.cells[index] = work.cells.detach()


def relax(potential: Potential, structures, method: str = "lbfgs", fmax: float = 1e-8,
          max_steps: int = 100_000, cell=None, target_stress=None, frozen=None,
          raise_on_failure: bool = False, device="cpu", **options):
    """Relax ``structures`` in one batch; returns a list of ``(Structure, stats dict)``.

    ``cell``: None/False, True (all periodic components) or a mask as in :meth:`Relaxer.run`;
    ``frozen``: a list of per-atom boolean masks (or None); ``options`` go to
    :class:`Relaxer`. The stats dict is :meth:`RelaxStats.system` plus ``seconds`` of the
    whole batch. With ``raise_on_failure``, systems left unconverged raise
    :class:`~glassfrac.core.errors.ConvergenceError` (after the whole batch has run). A system with a
    non-finite energy or force (overlapping atoms) always raises
    :class:`~glassfrac.core.errors.NonFiniteError`, naming its atoms.
    """
    structures = list(structures)
    relaxer = Relaxer(potential, method=method, fmax=fmax, max_steps=max_steps, **options)
    batch = potential.batch(structures, device=device, frozen=frozen)
    stats = relaxer.run(batch, cell_mask=cell, target_stress=target_stress)
    if stats.non_finite:  # a NaN result is never returned
        k = min(stats.non_finite)
        raise NonFiniteError((f"system {k} of {len(structures)}: " if len(structures) > 1 else "")
                             + stats.non_finite[k])
    if raise_on_failure and not stats.converged.all():
        bad = np.flatnonzero(~stats.converged)
        raise ConvergenceError(
            f"{len(bad)} of {len(structures)} systems did not reach max force {fmax:g} eV/Å "
            f"in {max_steps} evaluations (systems {bad[:10].tolist()}; largest forces "
            f"{stats.max_force[bad[:10]].tolist()} eV/Å)"
        )
    out = []
    for k, new in enumerate(batch.to_structures(structures)):
        info = stats.system(k)
        info["seconds"] = stats.seconds
        out.append((new, info))
    return out


def relax_to_minimum(potential: Potential, structure, push: float = 0.05, max_escapes: int = 5, **options):
    """Relax ``structure`` (options as :func:`relax`, one structure) to a true minimum: while the lowest
    non-trivial Hessian eigenvalue is negative (a saddle, :func:`~glassfrac.mechanics.stability.lowest_modes`),
    push the atoms along that mode (largest move ``push`` Å, the sign that lowers the energy) and relax again,
    at most ``max_escapes`` times. Returns ``(structure, info)``; ``info`` adds ``lowest_eigenvalue`` (eV/Å²),
    ``minimum`` and ``saddle_escapes`` (with the energy, eV, of each saddle left).

    A flat relaxed sheet can be a saddle: the generated bilayer ``--rings 16 18 --mu2 0.2 --seed 11`` relaxed
    with its cell has λ = −2.1e-4 eV/Å², an extended out-of-plane mode that its mirror symmetry keeps the
    minimiser from following; a push of 0.05 Å along it and a new relaxation lower the energy by 0.102 eV
    to a minimum (λ = +0.0015 eV/Å²) with atoms up to 2.0 Å away. Unconverged relaxations are returned as
    they are (eigenvalue None).
    """
    (current, info), = relax(potential, [structure], **options)
    escaped = []
    while True:
        if not info["converged"]:
            return current, {**info, "lowest_eigenvalue": None, "minimum": None, "saddle_escapes": escaped}
        modes = lowest_modes(potential, current)
        if modes.lowest > 0 or len(escaped) >= max_escapes:
            return current, {**info, "lowest_eigenvalue": modes.lowest, "minimum": modes.lowest > 0,
                             "saddle_escapes": escaped}
        escaped.append({"energy": info["energy"], "lowest_eigenvalue": modes.lowest})
        step = push * modes.modes[0] / np.abs(modes.modes[0]).max()
        trials = []
        for sign in (1.0, -1.0):
            trial = current.copy()
            trial.positions = current.positions + sign * step
            trials.append((potential.evaluate([trial])[0]["energy"], sign, trial))
        _, _, start = min(trials, key=lambda t: t[0])
        (current, info), = relax(potential, [start], **options)
