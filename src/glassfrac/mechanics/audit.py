"""Event audit: is an event of a loading run an instability of the branch being followed?

A quasistatic branch ends at a saddle-node bifurcation: an eigenvalue of the Hessian of the last
stable states goes to zero as the strain approaches the event, λ_c ≈ A (γ_c − γ)^½
(:mod:`glassfrac.mechanics.stability`), and its mode is localised where the event happens. If
instead every mode at the event's atoms stays stiff up to the event, the state was still a
minimum there when the run left it: the minimiser stepped over a barrier into another basin (a
*basin hop*), and the event is an artefact of the minimiser.

The critical mode need not be the lowest one: extended soft modes elsewhere in a large sample lie
below it until very close to the event (FC22's bilayer, a 4-atom event at strain 0.0327: λ of
the mode on its atoms 0.0073 eV/Å², four extended modes below it). So :func:`audit_event` takes
the :data:`MODES` lowest modes of each state and follows the one with the largest weight on the
event's atoms. The softening can be sharp: on a 768-atom bilayer at strain 0.2159 the critical
mode went from above 0.07 to 0.016 eV/Å² within the last 7.5e-5 of strain, a quarter of the
run's precision, so the audit first bisects the event's bracket :data:`REFINE` times (a state is
past the event when it has made more than half of the bracket's largest non-affine displacement)
to a width δ, then relaxes the branch at δ·2^j (j = 1 … ``levels``) below the refined last stable
strain, measures there and at that state, and fits the exponent.

An event is only recorded when something changes by more than a threshold within the bisection
precision (an atom's energy drops by 0.1 eV, the stress by 1e-3 N/m); a steep but continuous
stretch of the branch can do that too. The refined bracket tells: a discontinuity keeps most of
the displacement in it (``jump_share`` → 1), a continuous change leaves it about 2^−6 of it.

Verdicts: ``"undetermined"`` when the eigenvalues did not converge to :data:`RESIDUAL` within
:data:`ITERATIONS`; ``"continuous"`` when ``jump_share`` < :data:`JUMP_SHARE` (no instability
and no hop: the run's event thresholds were crossed on the branch); ``"instability"`` when λ_c
at the last stable state is below :data:`SOFTENING` × its value farthest from the event, the
fitted exponent lies in :data:`EXPONENTS` and the mode has at least :data:`WEIGHT` of its weight
on the event's atoms (or that mode's eigenvalue is already ≤ 0 at the last stable state: a relaxation
that slowed down next to the fold, with a loose force tolerance, stops just past it); ``"basin_hop"``
otherwise. The states inside the bracket come from the run's own descent: past the event, L-BFGS moves
(0.1 Å) land elsewhere than the flow (a 768-atom bilayer at strain 0.231: 19 times farther).
"""

from dataclasses import asdict, dataclass

import numpy as np

from glassfrac.mechanics.stability import lowest_modes, saddle_node_fit

SOFTENING = 0.4
"""Largest λ_min(last stable) / λ_min(farthest) of an instability (a square root gives 0.18 over 32 × the gap)."""
EXPONENTS = (0.2, 1.2)
"""Range of fitted exponents β of λ_c ∝ (γ_c − γ)^β accepted for an instability (saddle-node: ½)."""
MODES = 40
"""Lowest modes computed per state, among which the critical one is sought."""
WEIGHT = 0.2
"""Least weight Σ|v_i|² of the critical mode on the event's atoms (a unit mode has 1 in all)."""
ITERATIONS = 60
"""LOBPCG iterations per state. Converged states need 3–10 (FC22's bilayer, 40 modes: 124 products); where the
model Hessian is indefinite (Si–O bonds in Watanabe's switch window) 300 iterations ran over 20 minutes."""
RESIDUAL = 1e-3
"""Largest eigen-residual (eV/Å²) of a verdict; above it the verdict is ``"undetermined"``."""
REFINE = 6
"""Bisections of the event's bracket before the eigenvalues are measured (the bracket shrinks 2^6-fold)."""
JUMP_SHARE = 0.5
"""Least share of the bracket's non-affine displacement left in the refined bracket for a discontinuity."""


@dataclass
class EventAudit:
    """Evidence for one event: the run's event strain and the refined ``bracket`` (last stable, first past),
    strains (ascending) of stable states of the branch, their lowest eigenvalue ``lowest`` and that of the
    mode with most weight on the event's atoms ``critical`` (eV/Å²) with that ``weight``; the fit
    λ_c = A (γ_c − γ)^β (γ_c: the bracket's upper end), λ_c(last) / λ_c(first) as ``softening``, the
    critical mode's centre atom and participation ratio at the last stable state, the largest
    eigen-residual of the states (eV/Å²), the share of the bracket's non-affine displacement left in the
    refined bracket (``jump_share``) and the verdict."""

    event_strain: float
    bracket: tuple
    strains: list
    lowest: list
    critical: list
    weight: list
    exponent: float | None
    amplitude: float | None
    softening: float
    mode_atom: int
    mode_participation: float
    residual: float
    jump_share: float
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def audit_event(potential, state_at, last_stable, after, atoms, levels: int = 5, refine: int = REFINE,
                frozen=None) -> EventAudit:
    """Audit one event. ``state_at(strain, descend)``: the relaxed structure reached from the last stable state
    at another strain (``descend``: by the run's descent, which decides where a state past the event lands);
    ``last_stable``: (strain, structure) of the last stable state; ``after``: (strain,
    structure) of the first state found past the event; ``atoms``: the event's atoms (indices).

    The event's bracket is first bisected ``refine`` times (a state is past the event when it has made more
    than half of the bracket's non-affine displacement) to width δ; the eigenvalues are measured at the
    refined last stable state and at δ·2^j (j = 1 … ``levels``) below it, where a sharp instability
    softens (a 768-atom bilayer: λ of the critical mode 0.063 → 0.016 eV/Å² over the last 5e-5 of strain)."""
    (lo, lo_state), (hi, hi_state) = last_stable, after
    total = max(largest_nonaffine(lo_state, hi_state), 1e-12)
    for _ in range(refine):
        mid = 0.5 * (lo + hi)
        state = state_at(mid, True)
        if largest_nonaffine(last_stable[1], state) > 0.5 * total:
            hi, hi_state = mid, state
        else:
            lo, lo_state = mid, state
    jump_share = largest_nonaffine(lo_state, hi_state) / total
    gap = hi - lo
    states = [(lo - gap * 2**j, state_at(lo - gap * 2**j)) for j in range(levels, 0, -1)] + [(lo, lo_state)]
    strains, lowest, critical, weight = [], [], [], []
    residual = 0.0
    for strain, structure in states:
        modes = lowest_modes(potential, structure, k=min(MODES, structure.n_atoms), frozen=frozen,
                             max_iterations=ITERATIONS)
        residual = max(residual, modes.residual)
        on_event = (modes.modes[:, atoms] ** 2).sum(axis=(1, 2))
        c = int(np.argmax(on_event))
        strains.append(float(strain))
        lowest.append(modes.lowest)
        critical.append(float(modes.eigenvalues[c]))
        weight.append(float(on_event[c]))
    fit = saddle_node_fit(strains, critical, hi)
    softening = critical[-1] / critical[0] if critical[0] > 0 else np.inf
    beta = fit["exponent"]
    folded = critical[-1] <= 0  # the last stable state is already past the fold (its relaxation slowed there)
    real = weight[-1] >= WEIGHT and (folded or (softening < SOFTENING and beta is not None
                                                and EXPONENTS[0] <= beta <= EXPONENTS[1]))
    verdict = ("undetermined" if residual > RESIDUAL else "continuous" if jump_share < JUMP_SHARE
               else "instability" if real else "basin_hop")
    return EventAudit(float(after[0]), (float(lo), float(hi)), strains, lowest, critical, weight, beta,
                      fit["amplitude"], float(softening), modes.centre(c), modes.participation(c), residual,
                      float(jump_share), verdict)


def largest_nonaffine(a, b) -> float:
    """Largest displacement (Å) of an atom from structure ``a`` to ``b`` beyond the affine map of a's cell
    onto b's (positions not re-wrapped between them)."""
    affine = np.linalg.solve(a.box.cell, b.box.cell)  # rows are cell vectors: cell_a @ affine = cell_b
    return float(np.linalg.norm(b.positions - a.positions @ affine, axis=1).max())
