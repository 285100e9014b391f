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
event's atoms. It relaxes the branch at strains ``precision`` × 2^j (j = 1 … ``levels``) below
the last stable strain, measures there and at the last stable state, fits the exponent, and
gives a verdict: ``"instability"`` when λ_c at the last stable state is below
:data:`SOFTENING` × its value farthest from the event, the fitted exponent lies in
:data:`EXPONENTS` and the mode has at least :data:`WEIGHT` of its weight on the event's atoms;
``"basin_hop"`` otherwise; ``"undetermined"`` when the eigenvalues did not converge to
:data:`RESIDUAL` within :data:`ITERATIONS`.
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


@dataclass
class EventAudit:
    """Evidence for one event: strains (ascending) of stable states of the branch, their lowest
    eigenvalue ``lowest`` and that of the mode with most weight on the event's atoms ``critical``
    (eV/Å²) with that ``weight``; the fit λ_c = A (γ_c − γ)^β (γ_c: the event strain), λ_c(last) /
    λ_c(first) as ``softening``, the critical mode's centre atom and participation ratio at the
    last stable state, the largest eigen-residual of the states (eV/Å²) and the verdict."""

    event_strain: float
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
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def audit_event(potential, state_at, last_stable, event_strain: float, precision: float, atoms,
                levels: int = 5, frozen=None) -> EventAudit:
    """Audit one event. ``state_at(strain)``: the relaxed structure of the branch at a lower strain;
    ``last_stable``: (strain, structure) of the last stable state; ``event_strain``: the first strain
    found past the event; ``atoms``: the event's atoms (indices)."""
    strain0, stable = last_stable
    states = [(strain0 - precision * 2**j, state_at(strain0 - precision * 2**j)) for j in range(levels, 0, -1)]
    states.append((strain0, stable))
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
    fit = saddle_node_fit(strains, critical, event_strain)
    softening = critical[-1] / critical[0] if critical[0] > 0 else np.inf
    beta = fit["exponent"]
    real = (softening < SOFTENING and beta is not None and EXPONENTS[0] <= beta <= EXPONENTS[1]
            and weight[-1] >= WEIGHT)
    verdict = "undetermined" if residual > RESIDUAL else "instability" if real else "basin_hop"
    return EventAudit(float(event_strain), strains, lowest, critical, weight, beta, fit["amplitude"],
                      float(softening), modes.centre(c), modes.participation(c), residual, verdict)
