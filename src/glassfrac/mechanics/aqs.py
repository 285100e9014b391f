"""Athermal quasistatic (AQS) loading with adaptive, bisected strain steps.

Each step maps the relaxed configuration affinely to the next strain and relaxes it (only
the cell components of the path's ``cell_mask`` relax). Far from events the step is
``step``; a step in which an event happens is bisected until the event strain is known to
``precision``: the driver keeps the last event-free state at the lower end, so the recorded
event strain is the first strain (within ``precision``) at which the event has happened.
Steps and bisection trials only need to know whether an event happens, so their relaxation
stops as soon as an atom is ``max_jump`` from its tangent prediction (a jump event already);
the state after the event is then relaxed fully, once, from the last event-free state. On the
3456-atom bilayer in tension this cut the relaxations after the first bond break several-fold
(a trial past an avalanche stops after 10–80 iterations instead of 300–2000).

Events, judged between consecutive relaxed states:

- a drop of the path's stress measure by more than ``stress_drop`` (N/m or GPa);
- a drop of any atom's potential energy by more than ``energy_drop`` (0.1 eV, FC22);
- a jump: an atom ends more than ``max_jump`` Å from the tangent prediction of its position
  (the residual is second order in the step on an elastic branch). Without it, coarse steps
  miss events whose energy drop is masked by the elastic rise over the step: on a 192-atom
  bilayer, steps of 0.02 put the first bond break at strain 0.1875, fixed steps of 1e-3 at 0.124;
- for tension of silica, a bond break by the geometric rule of :mod:`glassfrac.analysis.bonds`.

Relaxation defaults to L-BFGS: on a 1350-atom Yukawa monolayer in pure shear (steps of 1e-4,
1e-8 eV/Å) it needed ~150 iterations per step against 250–900 for FIRE, with the tangent
predictor of :meth:`AQSDriver._advance` (without it, ~320), and ~43 with the bond-spring
preconditioner (``precondition="bonds"``; its factor is reused along the path). On the
3456-atom FC22 bilayer in tension (steps 0.005) that preconditioner takes a step from ~440
iterations to ~65. The default ``"auto"`` uses the potential's own Hessian where it has one:
the short-range pair Hessian of Yukawa (25–28 iterations per step of a 10^4-atom monolayer in
pure shear against 135–145 with the springs) and the term Hessians of Watanabe (the bilayer's
steps to strain 0.05 in 200 iterations against 634) (:mod:`glassfrac.mechanics.relax`).

The run stops at ``max_strain``, after ``max_events`` events, or at fracture: the stress has
fallen below ``fracture_fraction`` of its peak after the peak.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from glassfrac.core.progress import progress
from glassfrac.mechanics.deformation import DeformationPath
from glassfrac.mechanics.relax import Relaxer
from glassfrac.potentials import Potential, VerletList, stress_from_virial
from glassfrac.structure import Box, Structure


@dataclass
class AQSSettings:
    """Settings of an AQS run; strains are dimensionless, tolerances in eV/Å."""

    path: str = "uniaxial_strain"
    max_strain: float = 0.3
    step: float = 0.005
    precision: float = 1e-4
    fmax: float = 1e-8
    method: str = "lbfgs"
    precondition: str | None = "auto"
    max_relax_steps: int = 100_000
    stress_drop: float = 1e-3
    energy_drop: float = 0.1
    max_jump: float = 0.25
    fracture_fraction: float = 0.2
    max_events: int | None = None
    snapshots: bool = True
    """Keep the structures before and after every event (those of bond-break events are always kept)."""


@dataclass
class Event:
    """One event: the strain (upper end of its bisected interval), its stress drop and site."""

    strain: float
    strain_before: float
    stress_before: float
    stress_after: float
    kind: list
    location: np.ndarray
    atoms: np.ndarray
    displacement: np.ndarray = field(repr=False)
    before: Structure | None = field(default=None, repr=False)
    after: Structure | None = field(default=None, repr=False)

    @property
    def stress_drop(self) -> float:
        return self.stress_before - self.stress_after

    def summary(self) -> dict:
        return {
            "strain": self.strain, "strain_before": self.strain_before,
            "stress_drop": self.stress_drop, "kind": self.kind,
            "location": self.location.tolist(), "atoms": self.atoms.tolist(),
        }


@dataclass
class LoadingCurve:
    """Relaxed states along the path: strain, stress measure, full stress tensor, energy.

    Only states the run went on from: bisection trials that had already passed an event
    (each relaxed from the last event-free state, not from the path) are left out."""

    strain: list = field(default_factory=list)
    stress: list = field(default_factory=list)
    stress_tensor: list = field(default_factory=list)
    energy: list = field(default_factory=list)
    iterations: list = field(default_factory=list)
    converged: list = field(default_factory=list)

    def append(self, strain, stress, tensor, energy, iterations, converged):
        self.strain.append(float(strain))
        self.stress.append(float(stress))
        self.stress_tensor.append(np.asarray(tensor))
        self.energy.append(float(energy))
        self.iterations.append(int(iterations))
        self.converged.append(bool(converged))

    def arrays(self) -> dict:
        order = np.argsort(self.strain, kind="stable")
        return {k: np.asarray(getattr(self, k))[order]
                for k in ("strain", "stress", "energy", "iterations", "converged")}


@dataclass
class _State:
    strain: float
    positions: torch.Tensor
    cell: torch.Tensor
    stress: float
    tensor: np.ndarray
    per_atom_energy: torch.Tensor
    energy: float
    iterations: int
    converged: bool
    velocity: torch.Tensor | None = None  # non-affine displacement per unit strain (Å)
    predicted: torch.Tensor | None = None  # tangent prediction this state was relaxed from
    stopped: bool = False  # relaxation stopped once an atom left the prediction by max_jump
    source_strain: float | None = None  # strain of the state it was advanced from


class AQSDriver:
    """Drive one structure along a deformation path with a potential and a batched relaxer."""

    def __init__(self, potential: Potential, settings: AQSSettings | None = None, device="cpu",
                 bond_rule=None, on_state=None):
        self.potential = potential
        self.settings = settings or AQSSettings()
        self.device = device
        s = self.settings
        self.relaxer = Relaxer(potential, method=s.method, fmax=s.fmax, max_steps=s.max_relax_steps,
                               precondition=s.precondition if s.method == "lbfgs" else None)
        # bond_rule(reference) -> counter(current) -> number of broken reference bonds
        self.bond_rule = bond_rule
        # on_state(strain, stress, energy, events so far): called for every relaxed state
        # recorded, so that long runs can write their progress as they go
        self.on_state = on_state
        self._count_breaks = None

    # -- state handling --------------------------------------------------------------
    def _relaxed_state(self, batch, strain, mask, stop_beyond=None) -> _State:
        stats = self.relaxer.run(batch, cell_mask=mask, stop_beyond=stop_beyond)
        for name in ("iterations", "evaluations"):
            self.work[name] += int(np.asarray(getattr(stats, name)).sum())
        self.work["relaxations"] += 1
        self.work["stopped"] += int(np.asarray(stats.stopped).sum())
        pairs = self._verlet.update(batch)
        res = self.potential.compute(batch, pairs, virial=True, per_atom=True)
        stress, _ = stress_from_virial(batch, res.virial)
        tensor = stress[0]
        return _State(
            strain, batch.positions.detach().clone(), batch.cells.detach().clone(),
            self.path.measure(tensor), tensor, res.per_atom_energy.detach().clone(),
            float(res.energy[0]), int(np.asarray(stats.iterations).ravel()[0]),
            bool(np.asarray(stats.converged).ravel()[0]), stopped=bool(np.asarray(stats.stopped).ravel()[0]),
        )

    def _load(self, batch, state: _State):
        batch.positions = state.positions.clone()
        batch.cells = state.cell.clone()

    def _advance(self, batch, state: _State, strain: float, mask, trial: bool = False) -> _State:
        """Relaxed state at ``strain``, reached from ``state`` by the affine map plus the
        tangent prediction of the non-affine displacement (``state.velocity``): on an elastic
        branch the relaxation then starts a second-order distance from its minimum. A
        ``trial`` only asks whether an event happens: its relaxation stops (``stopped``) as
        soon as an atom is ``max_jump`` from the prediction, which is a jump event already."""
        self._load(batch, state)
        G = torch.as_tensor(self.path.increment(state.strain, strain), dtype=batch.positions.dtype,
                            device=batch.device)
        G = self._embed(G, batch.dim)
        affine = batch.positions @ G.T
        batch.positions = affine.clone()
        if state.velocity is not None:
            batch.positions += (strain - state.strain) * (state.velocity @ G.T)
        batch.cells = batch.cells @ G.T
        predicted = batch.positions.detach().clone()
        new = self._relaxed_state(batch, strain, mask,
                                  stop_beyond=(predicted, self.settings.max_jump) if trial else None)
        new.predicted, new.source_strain = predicted, state.strain
        new.velocity = (new.positions - affine) / (strain - state.strain)
        return new

    @staticmethod
    def _embed(G, dim):
        if G.shape[0] == dim:
            return G
        out = torch.eye(dim, dtype=G.dtype, device=G.device)
        out[: G.shape[0], : G.shape[0]] = G
        return out

    def _structure(self, template: Structure, state: _State) -> Structure:
        out = template.copy()
        out.positions = state.positions.cpu().numpy()
        out.box = Box(state.cell[0].cpu().numpy(), template.box.pbc, template.box.origin)
        out.set_array("potential_energy", state.per_atom_energy.cpu().numpy())
        return out

    def _events_between(self, a: _State, b: _State, template) -> list:
        """Event kinds between state ``a`` and state ``b`` advanced from it."""
        kinds = []
        if b.predicted is not None and (b.positions - b.predicted).norm(dim=1).max() > self.settings.max_jump:
            kinds.append("jump")
        if a.stress - b.stress > self.settings.stress_drop:
            kinds.append("stress_drop")
        if torch.max(a.per_atom_energy - b.per_atom_energy) > self.settings.energy_drop:
            kinds.append("energy_drop")
        if self._count_breaks is not None and self._count_breaks(self._structure(template, b)) > self._breaks_so_far:
            kinds.append("bond_break")
        return kinds

    # -- the run -----------------------------------------------------------------------
    def run(self, structure: Structure, frozen=None) -> "LoadingResult":
        s = self.settings
        self.path = DeformationPath(s.path, dim=2)  # in-plane map; a sheet's z is never deformed
        mask = torch.as_tensor(self._embed_mask(self.path.cell_mask(), structure.dim))
        batch = self.potential.batch([structure], device=self.device,
                                     frozen=None if frozen is None else [frozen])
        self._verlet = VerletList(self.potential.cutoff, skin=1.0)
        self._breaks_so_far = 0
        self.work = dict.fromkeys(("relaxations", "iterations", "evaluations", "stopped"), 0)
        state = self._relaxed_state(batch, 0.0, mask)
        reference = self._structure(structure, state)
        self._count_breaks = self.bond_rule(reference) if self.bond_rule else None
        curve = LoadingCurve()
        record = self._recorder(curve)
        events: list[Event] = []
        record(state, events)
        peak = state.stress
        fractured = False
        bar = progress(total=int(np.ceil(s.max_strain / s.step)), desc=f"AQS {s.path}", unit="step")
        while state.strain < s.max_strain - 1e-12 and not fractured:
            target = min(state.strain + s.step, s.max_strain)
            nxt = self._advance(batch, state, target, mask, trial=True)
            kinds = self._events_between(state, nxt, structure)
            if kinds:
                lo, hi = state, nxt
                while hi.strain - lo.strain > s.precision * (1 + 1e-9):
                    mid = self._advance(batch, lo, 0.5 * (lo.strain + hi.strain), mask, trial=True)
                    if self._events_between(lo, mid, structure):
                        hi = mid
                    else:  # on the path: the run goes on from here
                        record(mid, events)
                        lo = mid
                # the state after the event: a full relaxation from the stable end (the last
                # trial if it was one); a bracket without an event was a false alarm
                nxt = hi
                if hi.stopped or hi.source_strain != lo.strain:
                    nxt = self._advance(batch, lo, hi.strain, mask)
                kinds = self._events_between(lo, nxt, structure)
                if kinds:
                    events.append(self._event(lo, nxt, kinds, reference, structure))
                    nxt.velocity = None  # a new branch starts after the event
                    if "bond_break" in kinds:
                        self._breaks_so_far = self._count_breaks(self._structure(structure, nxt))
            record(nxt, events)
            bar.update(max(0, int(round(nxt.strain / s.step)) - bar.n))
            peak = max(peak, nxt.stress)
            fractured = peak > 0 and nxt.stress < s.fracture_fraction * peak
            state = nxt
            if s.max_events is not None and len(events) >= s.max_events:
                break
        bar.close()
        return LoadingResult(
            settings=s, reference=reference, final=self._structure(structure, state), curve=curve,
            events=events, fractured=fractured, stress_unit="N/m" if batch.is_sheet()[0] else "GPa",
            work=dict(self.work),
        )

    def _recorder(self, curve):
        def record(state: _State, events):
            curve.append(state.strain, state.stress, state.tensor, state.energy, state.iterations, state.converged)
            if self.on_state is not None:
                self.on_state(state.strain, state.stress, state.energy, events)
        return record

    @staticmethod
    def _embed_mask(mask2, dim):
        out = np.zeros((dim, dim), dtype=bool)
        out[:2, :2] = mask2
        return out

    def _event(self, lo: _State, hi: _State, kinds, reference: Structure, template: Structure) -> Event:
        before, after = self._structure(template, lo), self._structure(template, hi)
        G = self._embed(torch.as_tensor(self.path.increment(lo.strain, hi.strain)), template.dim).numpy()
        nonaffine = after.positions - before.positions @ G.T
        size = np.linalg.norm(nonaffine, axis=1)
        drop = (lo.per_atom_energy - hi.per_atom_energy).cpu().numpy()
        site = int(np.argmax(size))
        atoms = np.flatnonzero((size > 0.5 * size[site]) | (drop > self.settings.energy_drop))
        location = reference.box.wrap(reference.positions[site][None])[0]
        keep = self.settings.snapshots or "bond_break" in kinds  # the labels read the broken bonds from ``after``
        return Event(hi.strain, lo.strain, lo.stress, hi.stress, kinds, location, atoms, nonaffine,
                     before if keep else None, after if keep else None)


@dataclass
class LoadingResult:
    """Everything an AQS run produced (curves, events, reference and final structures)."""

    settings: AQSSettings
    reference: Structure
    final: Structure
    curve: LoadingCurve
    events: list
    fractured: bool
    stress_unit: str
    work: dict = field(default_factory=dict)
    """Relaxations, iterations and force evaluations of the whole run, bisection trials included,
    and how many trials were ``stopped`` early."""

    def modulus(self, max_strain: float = 0.02) -> float:
        """Small-strain slope of the stress measure (stress unit per unit strain), fit through
        the relaxed states with strain ≤ ``max_strain`` before the first event."""
        c = self.curve.arrays()
        limit = min([max_strain] + [e.strain_before for e in self.events])
        sel = c["strain"] <= limit + 1e-12
        if sel.sum() < 2:
            sel = np.argsort(c["strain"])[:2]
        x, y = c["strain"][sel], c["stress"][sel]
        return float(np.polyfit(x, y, 1)[0])

    @property
    def peak_stress(self) -> float:
        return float(np.max(self.curve.stress))
