"""2D network glass samples: honeycomb → bond-switching Monte Carlo → coordinates → decoration.

    s = generate(rings=(16, 18), mu2=0.3, kind="bilayer", seed=1)

Stages (reference/protocols.md §1): a periodic honeycomb of ``nx × ny`` rings
(:class:`~glassfrac.generate.dual.DualLattice`); Monte Carlo bond switching towards a target
ring-size distribution and Aboav–Weaire alpha (:mod:`~glassfrac.generate.montecarlo`, targets
in :mod:`~glassfrac.generate.targets`); coordinates once at the end
(:mod:`~glassfrac.generate.embed`); an independent check that the network is a valid
embedding with no crossing bonds (:mod:`~glassfrac.generate.checks`); decoration as a Si
network, a SiO2 monolayer or a SiO2 bilayer (:mod:`~glassfrac.generate.decorate`).
"""

import numpy as np

from glassfrac.analysis.ring_statistics import (
    aboav_weaire_alpha,
    ring_size_distribution,
    ring_size_variance,
)
from glassfrac.core import VERSION as __version__
from glassfrac.core.errors import ConvergenceError, InputError
from glassfrac.generate.checks import check_network
from glassfrac.generate.decorate import (
    SI_O_BILAYER,
    SI_SI_MONOLAYER,
    bilayer,
    monolayer,
    network_structure,
)
from glassfrac.generate.dual import DualLattice
from glassfrac.generate.embed import embed
from glassfrac.generate.montecarlo import ALPHA_WEIGHT, TEMPERATURE, bond_switch
from glassfrac.generate.targets import DEFAULT_SIZES, ring_size_target
from glassfrac.structure import Structure

KINDS = ("network", "monolayer", "bilayer")
"""What :func:`generate` returns: Si network (2D), SiO2 monolayer (2D), SiO2 bilayer (3D)."""


def generate(rings=(16, 18), mu2: float | None = None, distribution: str = "gamma",
             sigma_factor: float | None = None, alpha: float = 1 / 3, kind: str = "network",
             seed: int = 0, steps: int | None = None, sizes=DEFAULT_SIZES,
             si_si: float | None = None, anneal: bool = True,
             progress: bool | None = None) -> Structure:
    """A generated 2D silica sample (module docstring).

    ``rings``: honeycomb of nx × ny rings (nx ≥ 4, ny ≥ 4 even; cell nx·√3·d × ny·1.5·d
    before relaxation). ``mu2``/``distribution``/``sigma_factor``/``sizes``: the target
    ring-size distribution (:func:`~glassfrac.generate.targets.ring_size_target`). ``alpha``:
    Aboav–Weaire target. ``steps``: attempted switches (default 300 per ring; 0 keeps the
    honeycomb). ``si_si``: mean Si–Si distance in Å before relaxation (default 3.05 for network
    and monolayer, 2 × 1.65 for the bilayer). ``anneal``: see :mod:`montecarlo`.

    ``info`` records the parameters, the achieved statistics and the final cost;
    ``arrays['rings']`` the rings around each atom.
    """
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    nx, ny = (int(r) for r in rings)
    target = ring_size_target(distribution, mu2, sigma_factor, sizes)
    if not -1.0 <= alpha <= 2.0:
        raise InputError(f"Aboav-Weaire alpha target must be in [-1, 2], got {alpha}")
    dual = DualLattice.honeycomb(nx, ny)
    result = bond_switch(dual, target, alpha=alpha, steps=steps, rng=np.random.default_rng(seed),
                         anneal=anneal, progress=progress)
    emb = embed(dual)
    if si_si is None:
        si_si = 2.0 * SI_O_BILAYER if kind == "bilayer" else SI_SI_MONOLAYER
    net = network_structure(emb, si_si)
    report = check_network(net)
    if not report["valid"]:
        raise ConvergenceError(f"generated network is not a valid embedding: {report}")
    ring_sizes = dual.sizes
    ring_pairs = dual.edges()
    net.info.update({
        "generator": "glassfrac.generate", "glassfrac_version": __version__, "kind": kind,
        "rings_grid": [nx, ny], "n_rings": int(len(ring_sizes)), "seed": int(seed),
        "distribution": target.distribution, "mu2_target": target.mu2,
        "sigma_factor": float(target.params.get("sigma_factor", float("nan"))),
        "ring_size_range": [int(target.sizes[0]), int(target.sizes[-1])],
        "p_target": {str(k): v for k, v in target.as_dict().items()},
        "alpha_target": float(alpha), "alpha_weight": ALPHA_WEIGHT,
        "temperature": TEMPERATURE, "anneal": bool(anneal),
        "steps": result.steps, "accepted": result.accepted, "final_cost": result.cost,
        "mu2": ring_size_variance(ring_sizes),
        "alpha": aboav_weaire_alpha(ring_sizes, ring_pairs),
        "p": {str(k): v for k, v in ring_size_distribution(ring_sizes).items()},
        "ring_sizes": ring_sizes.tolist(), "si_si_mean": float(si_si),
        "geometry": emb.method,
    })
    if kind == "monolayer":
        return monolayer(net, si_si)
    if kind == "bilayer":
        out = bilayer(net, 0.5 * si_si)
        out.info["si_o"] = 0.5 * si_si
        return out
    return net
