"""``glassfrac generate``: a 2D silica sample by bond-switching Monte Carlo."""

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import (
    STRUCTURE_OUTPUT,
    finite_float,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from glassfrac.core.outputs import check_file
from glassfrac.generate.network import KINDS, generate
from glassfrac.structure import write


def register(subparsers) -> None:
    p = add_command(subparsers, "generate",
                    "generate a 2D silica network, monolayer or bilayer by bond-switching Monte "
                    "Carlo from a honeycomb", _run)
    p.add_argument("--rings", type=positive_int, nargs=2, required=True, metavar=("NX", "NY"),
                   help="honeycomb of NX x NY rings (NX >= 4, NY >= 4 and even)")
    p.add_argument("--mu2", type=non_negative_float, default=None,
                   help="target ring-size variance (gamma: required; lognormal: instead of "
                        "--sigma-factor)")
    p.add_argument("--distribution", choices=("gamma", "lognormal"), default="gamma",
                   help="target ring-size distribution: gamma of mean 6 (FC22) or log-normal "
                        "calibrated on imaged 2D silica (LISTI25) (default: gamma)")
    p.add_argument("--sigma-factor", type=positive_float, default=None,
                   help="lognormal width as a multiple of the measured 0.9576")
    p.add_argument("--alpha", type=finite_float, default=1 / 3,
                   help="Aboav-Weaire alpha target (default 1/3)")
    p.add_argument("--kind", choices=KINDS, required=True,
                   help="network: Si only (2D); monolayer: 2D SiO2; bilayer: 3D SiO2")
    p.add_argument("--seed", type=non_negative_int, required=True, help="random seed")
    p.add_argument("--steps", type=non_negative_int, default=None,
                   help="attempted switches (default 300 per ring; 0 keeps the honeycomb)")
    p.add_argument("--ring-sizes", type=positive_int, nargs=2, default=(4, 10), metavar=("MIN", "MAX"),
                   help="allowed ring sizes (default 4 10)")
    p.add_argument("--si-si", type=positive_float, default=None,
                   help="mean Si-Si distance in angstrom before relaxation (default 3.05; "
                        "3.30 for the bilayer, Si-O = 1.65)")
    p.add_argument("--constant-temperature", action="store_true",
                   help="switch at T = 1e-4 throughout (FC22) instead of annealing to it")
    p.add_argument("-o", "--output", required=True, type=STRUCTURE_OUTPUT,
                   help="output file (.xyz, .data or .dump)")
    add_overwrite(p)


def _run(args) -> dict:
    check_file(args.output, args.overwrite)
    s = generate(rings=args.rings, mu2=args.mu2, distribution=args.distribution,
                 sigma_factor=args.sigma_factor, alpha=args.alpha, kind=args.kind,
                 seed=args.seed, steps=args.steps, sizes=args.ring_sizes, si_si=args.si_si,
                 anneal=not args.constant_temperature)
    write(s, args.output)
    info = s.info
    out = {
        "output": str(args.output), "kind": args.kind, "n_atoms": s.n_atoms,
        "n_si": s.count("Si"), "n_o": s.count("O"), "n_rings": info["n_rings"],
        "box": [float(v) for v in s.box.lengths[:2]],
        "distribution": info["distribution"], "mu2_target": info["mu2_target"],
        "mu2": info["mu2"], "alpha_target": info["alpha_target"], "alpha": info["alpha"],
        "steps": info["steps"], "accepted": info["accepted"], "cost": info["final_cost"],
        "seed": info["seed"], "geometry": info["geometry"],
    }
    if info["distribution"] == "lognormal":
        out["sigma_factor"] = info["sigma_factor"]
    return out
