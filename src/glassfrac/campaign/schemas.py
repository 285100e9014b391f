"""Schemas (:mod:`glassfrac.core.schema`) of the settings objects that configs fill in: AQS
loading, local probing, the potentials' parameters, and the oxide MD, melt-quench, tension and
softness settings. The campaign config (:mod:`.config`) and the oxide config
(:mod:`.oxide_config`) read their tables through these, so a key means the same and is checked
the same in every file. Each schema's keys and defaults match its dataclass (a test checks it).
"""

import torch

from glassfrac.core.schema import Key, Schema
from glassfrac.mechanics.deformation import PATHS
from glassfrac.mechanics.relax import METHODS
from glassfrac.potentials.matsui import SPECIES as ALUMINA
from glassfrac.potentials.watanabe import EPSILON
from glassfrac.potentials.yukawa import KAPPA, RC
from glassfrac.potentials.yukawa import SPECIES as SILICA


def _order(*names):
    """A rule: the keys ``names`` (each given or defaulted) must not decrease, e.g.
    precision <= step <= max_strain."""
    def rule(values):
        for small, large in zip(names, names[1:], strict=False):
            a, b = values.get(small), values.get(large)
            if a is not None and b is not None and a > b:
                return small, f"{small} <= {large} ({b}), got {a}"
        return None
    return rule


def _pairs(species):
    """A check: every key of a table is a pair ``"A-B"`` of ``species``."""
    names = [f"{a}-{b}" for i, a in enumerate(species) for b in species[i:]]

    def check(table):
        bad = [k for k in table if k.count("-") != 1 or not set(k.split("-")) <= set(species)]
        return f"keys that are pairs among {names}" if bad else None
    return check


def _device(name):
    """A check: a torch device name (cpu, cuda, cuda:1, mps)."""
    try:
        torch.device(name)
    except RuntimeError:
        return "a torch device name such as 'cpu' or 'cuda'"
    return None


AQS = Schema((
    Key("path", str, "uniaxial_strain", "deformation path", choices=PATHS),
    Key("max_strain", float, 0.3, "strain at which the test stops", "strain", positive=True),
    Key("step", float, 0.005, "coarse strain step", "strain", positive=True),
    Key("precision", float, 1e-4, "precision of the bisected event strains", "strain", positive=True),
    Key("fmax", float, 1e-8, "relaxation force tolerance", "eV/Å", positive=True),
    Key("method", str, "lbfgs", "minimiser", choices=METHODS),
    Key("precondition", str, "auto", "L-BFGS preconditioner", choices=("bonds", "hessian", "auto")),
    Key("max_relax_steps", int, 100_000, "force evaluations per relaxation", positive=True),
    Key("max_step", float, 0.1, "largest move of one atom per minimiser iteration", "Å", positive=True),
    Key("stress_drop", float, 1e-3, "stress drop that is an event (inf: off)", "N/m (2D) or GPa (3D)",
        positive=True, finite=False),
    Key("energy_drop", float, 0.1, "per-atom energy drop that is an event", "eV", positive=True),
    Key("max_jump", float, 0.25, "atom jump that is an event", "Å", positive=True),
    Key("fracture_fraction", float, 0.2, "stop when the stress falls below this fraction of its peak "
        "(-inf: never)", hi=1.0, finite=False),
    Key("max_events", int, None, "stop after this many events", positive=True),
    Key("stop_at_first_break", bool, False, "stop after the first event that breaks a bond (its labels are "
        "complete then; no crack path)"),
    Key("snapshots", bool, True, "keep the structures before and after every event"),
    Key("descent_step", float, 0.02, "largest move of one atom per step of the damped descent after each event "
        "(0.02 follows the gradient flow; 0.1 gives FC22's dynamics)", "Å", positive=True),
    Key("audit", bool, False, "audit every event (instability of the branch)"),
), rules=(_order("precision", "step", "max_strain"),))
"""``glassfrac.mechanics.aqs.AQSSettings`` (campaign ``[tests.tension]``, ``[tests.shear]``)."""

PROBE = Schema((
    Key("grid", int, 50, "grid points per side", positive=True),
    Key("r_free", float, 11.0, "radius of the free region", "Å", positive=True),
    Key("shell", float, None, "width of the frozen ring (default: from the potential's cutoff)", "Å",
        positive=True),
    Key("directions", int, 1, "probe directions", positive=True),
    Key("load_angle", float, 0.0, "direction of the first probe", "degrees"),
    Key("step", float, 0.02, "strain step", "strain", positive=True),
    Key("precision", float, 1e-4, "precision of the threshold strain", "strain", positive=True),
    Key("max_strain", float, 0.25, "largest local strain", "strain", positive=True),
    Key("fmax", float, 1e-6, "Newton force tolerance", "eV/Å", positive=True),
    Key("max_newton", int, 12, "Newton iterations per step", positive=True),
    Key("max_jump", float, 0.25, "atom jump that is an event", "Å", positive=True),
    Key("stress_drop", float, 0.05, "stress drop that is an event", "N/m", positive=True),
    Key("chunk", int, 24, "windows in flight at once", positive=True),
    Key("skin", float, 1.0, "neighbour-list skin", "Å", lo=0.0),
    Key("max_step", float, 0.2, "Newton trust radius per atom", "Å", positive=True),
    Key("predictor", str, "affine", "start of each Newton solve", choices=("affine", "secant")),
    Key("placement", str, "saddle-node", "how trial strains are placed", choices=("saddle-node", "bisection")),
    Key("approach", float, 0.9, "fraction of the predicted distance to the instability per trial", positive=True,
        hi=1.0),
    Key("mode_iterations", int, 3, "inverse iterations per stable state for the lowest mode", positive=True),
    Key("newton_tol", float, 1e-4, "a full Newton step below this converges", "Å", lo=0.0),
    Key("workers", int, 1, "CPU processes sharing the map", positive=True),
    Key("device", str, "cpu", "torch device", check=_device),
), rules=(_order("precision", "step", "max_strain"),))
"""``glassfrac.mechanics.probe.ProbeSettings`` (campaign ``[tests.probe]``)."""

MATSUI = Schema((
    Key("cutoff", float, 10.0, "real-space cutoff of the Born and Coulomb terms", "Å", positive=True),
    Key("kspace", str, "pppm", "long-range Coulomb solver", choices=("pppm", "ewald")),
    Key("kspace_accuracy", float, 1e-5, "relative accuracy of the long-range forces", positive=True, hi=0.1),
    Key("wall_radius", dict, {}, "wall radius per pair (default: the barrier of V(r))", "Å", items=float,
        positive=True, check=_pairs(ALUMINA)),
    Key("wall_epsilon", dict, {}, "wall strength per pair", "eV", items=float, positive=True,
        check=_pairs(ALUMINA)),
    Key("wall", bool, False, "add the repulsive wall to every evaluation"),
))
"""``glassfrac.potentials.matsui.MatsuiPotential`` (oxide ``[potential]``, campaign ``parameters``)."""

POTENTIALS = {
    "yukawa2d": Schema((
        Key("sigma", dict, None, "σ per pair", "Å", items=float, positive=True, check=_pairs(SILICA)),
        Key("q", dict, None, "q per pair", "eV·Å", items=float, check=_pairs(SILICA)),
        Key("kappa", float, KAPPA, "screening constant", "1/Å", lo=0.0),
        Key("rc", float, RC, "cutoff", "Å", positive=True),
    )),
    "watanabe": Schema((
        Key("epsilon", float, EPSILON, "energy unit", "eV", positive=True),
        Key("margin", float, 0.5, "pair-cache margin (speed only)", "Å", lo=0.0),
    )),
    "matsui": MATSUI,
}
"""Parameters of each potential of :func:`glassfrac.potentials.get_potential`, by name."""

MD = Schema((
    Key("timestep_ps", float, 0.001, "time step", "ps", positive=True, hi=0.01),
    Key("tdamp_ps", float, 0.1, "thermostat damping time", "ps", positive=True),
    Key("pdamp_ps", float, 1.0, "barostat damping time", "ps", positive=True),
    Key("thermo_every", int, 100, "steps between thermo rows", positive=True),
    Key("seed", int, 12345, "velocity seed (LAMMPS: a positive integer)", lo=1, hi=900_000_000),
    Key("skin", float, 2.0, "neighbour skin", "Å", positive=True),
))
"""``glassfrac.mechanics.md.MDSettings`` (oxide ``[md]``)."""

QUENCH = Schema((
    Key("n_units", int, 60, "Al2O3 units (5 atoms each)", positive=True),
    Key("initial_density", float, 2.75, "density of the random start", "g/cm³", positive=True),
    Key("melt_T", float, 5000.0, "melt temperature", "K", positive=True),
    Key("melt_ps", float, 3.0, "melt time", "ps", lo=0.0),
    Key("liquid_T", float, 3000.0, "liquid temperature", "K", positive=True),
    Key("cool_ps", float, 1.0, "cooling time to liquid_T", "ps", positive=True),
    Key("liquid_ps", float, 3.0, "liquid hold", "ps", lo=0.0),
    Key("liquid_density", float, 3.175, "density of the compressed liquid", "g/cm³", positive=True),
    Key("dense_ps", float, 3.0, "hold at liquid_density", "ps", lo=0.0),
    Key("final_T", float, 300.0, "temperature after the quench", "K", positive=True),
    Key("quench_ps", float, 10.0, "quench time", "ps", positive=True),
    Key("relax_nvt_ps", float, 2.0, "NVT relaxation after the quench", "ps", lo=0.0),
    Key("relax_npt_ps", float, 3.0, "NPT relaxation after the quench", "ps", lo=0.0),
    Key("relax_P", float, 0.0, "pressure of the NPT relaxation", "GPa"),
    Key("wall", bool, False, "repulsive wall in stages at or above wall_min_T"),
    Key("wall_min_T", float, 2000.0, "coldest stage with the wall", "K", lo=0.0),
))
"""``glassfrac.generate.quench.QuenchSchedule`` (oxide ``[quench]``, plus ``pressures_GPa``)."""

PRESSURES = Key("pressures_GPa", list, [0.0, 2.0, 4.0], "quench pressures", "GPa", items=float, nonempty=True)

TENSION = Schema((
    Key("replicate", list, [2, 1, 1], "copies of the sample along x, y, z", items=int, length=3, positive=True),
    Key("T", float, 300.0, "temperature", "K", positive=True),
    Key("equilibrate_ps", float, 5.0, "equilibration before straining", "ps", lo=0.0),
    Key("strain_rate_per_s", float, 5e10, "strain rate (plane stress)", "1/s", positive=True),
    Key("max_strain", float, 0.5, "largest strain", "strain", positive=True),
    Key("frame_every_strain", float, 0.02, "strain between frames", "strain", positive=True),
    Key("step_strain", float, 0.02, "strain per step (plane strain)", "strain", positive=True),
    Key("step_nvt_ps", float, 0.5, "NVT hold per step (plane strain)", "ps", lo=0.0),
    Key("stop_fraction", float, 0.1, "stop when the stress falls below this fraction of its peak", lo=0.0,
        hi=1.0),
), rules=(_order("frame_every_strain", "max_strain"), _order("step_strain", "max_strain")))
"""``glassfrac.mechanics.md_tension.TensionSettings`` (oxide ``[tension]``, plus ``modes``)."""

MODES = Key("modes", list, ["plane_stress", "plane_strain"], "loading modes", items=str, nonempty=True,
            choices=("plane_stress", "plane_strain"))

SOFTNESS = Schema((
    Key("T", float, 300.0, "trajectory temperature", "K", positive=True),
    Key("equilibrate_ps", float, 1.0, "equilibration before the trajectory", "ps", lo=0.0),
    Key("trajectory_ps", float, 80.0, "trajectory length", "ps", positive=True),
    Key("frame_every_ps", float, 0.1, "time between frames", "ps", positive=True),
    Key("t_r_ps", float, 6.0, "p_hop window t_R", "ps", positive=True),
    Key("high_A2", float, 0.2, "p_hop above which an atom rearranges", "Å²", positive=True),
    Key("low_A2", float, 0.05, "p_hop below which an atom does not", "Å²", lo=0.0),
    Key("horizon_ps", float, 2.0, "snapshot spacing (labels = 'snapshots')", "ps", positive=True),
    Key("labels", str, "frames", "label mode", choices=("frames", "snapshots")),
    Key("label_every_ps", float, 0.5, "spacing of the label times (labels = 'frames')", "ps", positive=True),
    Key("inherent", bool, True, "features on inherent structures"),
    Key("inherent_ftol", float, 1e-4, "CG force tolerance of the inherent structures", "eV/Å", positive=True),
    Key("species", list, ["Al"], "centre species of the SVM", items=str, nonempty=True, choices=ALUMINA),
    Key("C", (float, list), 1.0, "SVM C (a list: searched per fold)", items=float, positive=True, nonempty=True),
    Key("n_splits", int, 5, "cross-validation folds", lo=2),
    Key("balance", bool, True, "as many non-rearranging as rearranging atoms"),
    Key("seed", int, 0, "seed of the class balance", lo=0),
    Key("top_fraction", float, 0.1, "fraction of atoms in the high-softness clusters", positive=True, hi=1.0),
    Key("cluster_cutoff_A", float, 3.7, "link length of the clusters", "Å", positive=True),
))
"""``glassfrac.learn.oxide_softness.SoftnessSettings`` (oxide ``[softness]``)."""
