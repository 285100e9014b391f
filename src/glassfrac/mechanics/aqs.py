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

Branch following (the label rule): on the branch, any minimiser that stays in the basin finds the
same minimum, so steps and trials use L-BFGS with moves of at most ``max_step`` per iteration and
line searches that do not cross barriers. Past an instability the minimum is gone and what
follows is defined by the descent from the last stable state, the gradient flow; large L-BFGS
steps leave it (a 192-atom bilayer: 21 eV lower and four bonds broken where the flow breaks none).
So the state after every event comes from a small-step damped descent (``descent_step``), which
records the order in which bonds break; an event that this descent does not confirm was a hop of
the trials' minimiser and is dropped (the run goes on from that state). ``audit`` adds the
eigenvalue evidence per event (:mod:`glassfrac.mechanics.audit`).

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

The run stops at ``max_strain``, after ``max_events`` events, after the first bond break
(``stop_at_first_break``), or at fracture: the stress has
fallen below ``fracture_fraction`` of its peak after the peak, or (with a bond rule) the bonds
still intact no longer span the periodic cell along an axis they spanned: the sample is cut
through. On the flow branch Watanabe bonds that break stay in the switch window and still carry
some load, so the cut comes well before the stress falls.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from glassfrac.analysis.bonds import BondRule, bond_lengths
from glassfrac.core.errors import InputError, NonFiniteError
from glassfrac.core.progress import progress
from glassfrac.mechanics.audit import EventAudit, audit_event
from glassfrac.mechanics.deformation import DeformationPath
from glassfrac.mechanics.finite import check_finite
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
    max_step: float = 0.1
    """Largest move of one atom per minimiser iteration, Å (LAMMPS's ``dmax``). Larger steps hop over
    barriers: with 0.2 Å, L-BFGS took FC22's bilayer at strain 0.114 into a basin 1.54 eV lower that the
    branch does not reach (0.1 and 0.05 Å, and FIRE, stay on it)."""
    stress_drop: float = 1e-3
    energy_drop: float = 0.1
    max_jump: float = 0.25
    fracture_fraction: float = 0.2
    max_events: int | None = None
    stop_at_first_break: bool = False
    """End the run after the first event that breaks a bond: its labels (first broken bond, rupture strain
    and location, peak stress before the break, modulus) are complete then, at a fraction of the cost of
    loading to fracture (on the flow, Watanabe bilayers still carry load at strain 0.3)."""
    snapshots: bool = True
    """Keep the structures before and after every event (those of bond-break events are always kept)."""
    descent_step: float = 0.02
    """Largest move of one atom per step, Å, of the descent that gives the state after an event: FIRE to
    ``fmax`` (damped dynamics, as FC22 relaxed) from the last stable state mapped to the event strain,
    recording the order in which bonds break (:attr:`Event.break_order`). It ends where the gradient flow
    ends: on a 192-atom bilayer at strain 0.162, FIRE with these steps and the flow x' = F both reach
    E = −778.027 eV with no bond broken, while L-BFGS (0.1 Å steps) hops to −799.03 eV with four broken.
    It starts next to the vanished minimum, where the forces are tiny, so it cannot stop at a looser
    tolerance than ``fmax``."""
    audit: bool = False
    """Audit every event (:mod:`glassfrac.mechanics.audit`): is it an instability of the branch? Costs about
    six relaxations and Hessian eigenvalues per event."""

    def __post_init__(self):  # a zero step or precision would divide by zero and record NaN states
        for name in ("max_strain", "step", "precision", "fmax"):
            value = getattr(self, name)
            try:
                ok = bool(np.isfinite(float(value)) and float(value) > 0)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError(f"AQS setting {name} must be a positive number, got {value!r}")
        if self.max_events is not None and not (isinstance(self.max_events, int) and self.max_events >= 1):
            raise InputError(f"AQS setting max_events must be None or a positive integer, got {self.max_events!r}")


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
    audit: EventAudit | None = field(default=None, repr=False)
    break_order: tuple | None = field(default=None, repr=False)
    """Bond breaks only: the broken reference bonds (pairs (K, 2), images (K, d)) in the order they crossed
    the break criterion along the descent from the last stable state (:attr:`AQSSettings.descent_step`)."""

    @property
    def stress_drop(self) -> float:
        return self.stress_before - self.stress_after

    def summary(self) -> dict:
        out = {
            "strain": self.strain, "strain_before": self.strain_before,
            "stress_drop": self.stress_drop, "kind": self.kind,
            "location": self.location.tolist(), "atoms": self.atoms.tolist(),
        }
        if self.audit is not None:
            out["audit"] = self.audit.to_dict()
        if self.break_order is not None:
            out["break_order"] = self.break_order[0].tolist()
        return out


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
    break_order: tuple | None = None  # (pairs (K, 2), images (K, d)) in the order they broke along the descent


class AQSDriver:
    """Drive one structure along a deformation path with a potential and a batched relaxer."""

    def __init__(self, potential: Potential, settings: AQSSettings | None = None, device="cpu",
                 bond_rule=None, on_state=None):
        self.potential = potential
        self.settings = settings or AQSSettings()
        self.device = device
        s = self.settings
        self.relaxer = Relaxer(potential, method=s.method, fmax=s.fmax, max_steps=s.max_relax_steps,
                               max_step=s.max_step, precondition=s.precondition if s.method == "lbfgs" else None)
        self.bond_rule = bond_rule  # a BondRule, or None: no bond-break events
        self.descender = Relaxer(potential, method="fire", fmax=s.fmax, max_steps=s.max_relax_steps,
                                 max_step=s.descent_step)
        # on_state(strain, stress, energy, events so far): called for every relaxed state
        # recorded, so that long runs can write their progress as they go
        self.on_state = on_state
        self._bonds = None  # the rule's tracker of the reference bonds, during a run

    # -- state handling --------------------------------------------------------------
    def _relaxed_state(self, batch, strain, mask, stop_beyond=None) -> _State:
        where = f"{self.path.kind} at strain {strain:.6g}"
        try:
            stats = self.relaxer.run(batch, cell_mask=mask, stop_beyond=stop_beyond)
            if stats.non_finite:
                raise NonFiniteError(stats.non_finite[0])
        except NonFiniteError as exc:  # the run stops here: say where along the path
            raise NonFiniteError(f"{where}: {exc}") from None
        for name in ("iterations", "evaluations"):
            self.work[name] += int(np.asarray(getattr(stats, name)).sum())
        self.work["relaxations"] += 1
        self.work["stopped"] += int(np.asarray(stats.stopped).sum())
        pairs = self._verlet.update(batch)
        res = self.potential.compute(batch, pairs, virial=True, per_atom=True)
        stress, _ = stress_from_virial(batch, res.virial)
        check_finite(batch, f"in the relaxed state, {where}", res.energy, stress, res.per_atom_energy[None],
                     forces=res.forces)
        tensor = stress[0]
        return _State(
            strain, batch.positions.detach().clone(), batch.cells.detach().clone(),
            self.path.measure(tensor), tensor, res.per_atom_energy.detach().clone(),
            float(res.energy[0]), int(np.asarray(stats.iterations).ravel()[0]),
            bool(np.asarray(stats.converged).ravel()[0]),
        )

    def _load(self, batch, state: _State):
        batch.positions = state.positions.clone()
        batch.cells = state.cell.clone()

    def _advance(self, batch, state: _State, strain: float, mask, trial: bool = False,
                 template: Structure | None = None) -> _State:
        """Relaxed state at ``strain``, reached from ``state`` by the affine map plus the
        tangent prediction of the non-affine displacement (``state.velocity``): on an elastic
        branch the relaxation then starts a second-order distance from its minimum. A
        ``trial`` only asks whether an event happens: its relaxation stops (``stopped``) as
        soon as an atom is ``max_jump`` from the prediction, which is a jump event already. With
        ``template``, the relaxation is the recorded descent (:meth:`_descend`)."""
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
        order = None if template is None else self._descend(batch, mask, template)
        new = self._relaxed_state(batch, strain, mask,
                                  stop_beyond=(predicted, self.settings.max_jump) if trial else None)
        new.break_order = order
        new.predicted = predicted
        new.velocity = (new.positions - affine) / (strain - state.strain)
        return new

    def _descend(self, batch, mask, template: Structure) -> tuple:
        """Damped dynamics with small steps (FIRE, ``descent_step``) from the batch's positions down to
        ``fmax``, noting the step at which each reference bond first counts as broken; returns the
        broken bonds (pairs, images) in that order (ties: the longer bond first, then the lower atom indices), or
        None without a bond rule."""
        if self._bonds is None:
            self.descender.run(batch, cell_mask=mask, stress=False)
            return None
        seen, rows = set(), []
        cell = batch.cells[0].detach().cpu().numpy()

        def note(info):
            current = template.copy()
            current.positions = info["positions"]().cpu().numpy()
            current.box = Box(cell, template.box.pbc, template.box.origin)
            breaks = self._bonds.broken(current)
            if breaks.count == 0:
                return
            # longer first; lengths equal to 1e-5 Å (mirror images in a symmetric bilayer, decided by round-off
            # otherwise: FC22's dump and an extxyz copy of it swapped two at strain 0.169) by atom indices
            lengths = np.round(bond_lengths(current, breaks.pairs, breaks.images), 5)
            for k in np.lexsort((breaks.pairs[:, 1], breaks.pairs[:, 0], -lengths)):
                key = (*breaks.pairs[k].tolist(), *breaks.images[k].tolist())
                if key not in seen:
                    seen.add(key)
                    rows.append(key)

        self.descender.run(batch, cell_mask=mask, callback=note, stress=False)
        table = np.asarray(rows, dtype=np.int64).reshape(len(rows), 2 + batch.dim)
        return table[:, :2], table[:, 2:]

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
        if self._bonds is not None and self._bonds.broken(self._structure(template, b)).count > self._breaks_so_far:
            kinds.append("bond_break")
        return kinds

    # -- the run -----------------------------------------------------------------------
    def run(self, structure: Structure, frozen=None) -> "LoadingResult":
        s = self.settings
        self.path = DeformationPath(s.path, dim=2)  # in-plane map; a sheet's z is never deformed
        mask = torch.as_tensor(self._embed_mask(self.path.cell_mask(), structure.dim))
        batch = self.potential.batch([structure], device=self.device,
                                     frozen=None if frozen is None else [frozen])
        self._frozen = frozen
        self._verlet = VerletList(self.potential.cutoff, skin=1.0)
        self._breaks_so_far = 0
        self.work = dict.fromkeys(("relaxations", "iterations", "evaluations", "stopped"), 0)
        state = self._relaxed_state(batch, 0.0, mask)
        reference = self._structure(structure, state)
        self._bonds = self.bond_rule.tracker(reference) if self.bond_rule else None
        curve = LoadingCurve()
        record = self._recorder(curve)
        events: list[Event] = []
        record(state, events)
        peak = state.stress
        fractured = cut = False
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
                # the state after the event: the recorded descent from the stable end (the trials'
                # minimiser may have hopped); a bracket without an event was a false alarm
                nxt = self._advance(batch, lo, hi.strain, mask, template=structure)
                kinds = self._events_between(lo, nxt, structure)
                if kinds:
                    events.append(self._event(lo, nxt, kinds, reference, structure))
                    if s.audit:
                        events[-1].audit = self._audit(batch, lo, nxt, events[-1], mask, structure)
                    nxt.velocity = None  # a new branch starts after the event
                    if "bond_break" in kinds:
                        after = self._structure(structure, nxt)
                        self._breaks_so_far = self._bonds.broken(after).count
                        cut = self._bonds.cut(after)
            record(nxt, events)
            bar.update(max(0, int(round(nxt.strain / s.step)) - bar.n))
            peak = max(peak, nxt.stress)
            fractured = cut or (peak > 0 and nxt.stress < s.fracture_fraction * peak)
            state = nxt
            if s.max_events is not None and len(events) >= s.max_events:
                break
            if s.stop_at_first_break and any("bond_break" in e.kind for e in events):
                break
        bar.close()
        return LoadingResult(
            settings=s, reference=reference, final=self._structure(structure, state), curve=curve,
            events=events, fractured=fractured, stress_unit="N/m" if batch.is_sheet()[0] else "GPa",
            work=dict(self.work), bond_rule=self.bond_rule,
        )

    def _audit(self, batch, lo: _State, after: _State, event: Event, mask, template: Structure) -> EventAudit:
        """Audit ``event`` from the branch below its last stable state ``lo`` (``after``: the state after it)."""
        def state_at(strain, descend=False):
            return self._structure(template, self._advance(batch, lo, strain, mask,
                                                           template=template if descend else None))

        return audit_event(self.potential, state_at, (lo.strain, self._structure(template, lo)),
                           (event.strain, self._structure(template, after)), event.atoms, frozen=self._frozen)

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
                     before if keep else None, after if keep else None, break_order=hi.break_order)


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
    bond_rule: BondRule | None = None
    """The rule that judged bond breaks (None: the run had none)."""

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
