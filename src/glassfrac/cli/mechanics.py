"""``glassfrac relax``: minimise the energy of one structure file, optionally with its cell.

Output: ``energy`` (eV), ``energy_per_atom`` (eV), ``max_force`` (eV/Å, largest force on an
atom), ``iterations`` (accepted steps), ``evaluations`` (force evaluations), ``converged``,
``stress`` (tension positive) with ``stress_unit`` (N/m for sheets, GPa for bulk),
``lowest_eigenvalue`` (eV/Å², the lowest non-trivial eigenvalue of the Hessian at the fixed
final cell: positive at a true minimum, :func:`glassfrac.mechanics.stability.lowest_modes`; with
``minimum`` true or false; both None when the relaxation did not converge or with
``--keep-saddle``), ``saddle_escapes`` (the saddles the relaxation was pushed off, with their energy
and eigenvalue: :func:`glassfrac.mechanics.relax.relax_to_minimum`), ``method``, ``seconds`` and
``output``.

Not reaching the tolerance is a result, not an error: the relaxed-so-far structure is written,
the command exits 0 with ``converged: false`` and prints a warning on stderr, so that scripts
can decide (for example to continue from the output). Bad input still exits 2.
"""

import sys

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import STRUCTURE_OUTPUT, add_format, from_file, positive_float, positive_int
from glassfrac.core.outputs import check_file


def register(subparsers) -> None:
    parser = add_command(subparsers, "relax", "minimise the energy of a structure (FIRE, L-BFGS or CG)", _relax)
    parser.add_argument("file", help="structure file (LAMMPS data or dump, extended XYZ)")
    add_format(parser)
    parser.add_argument("--potential", required=True, choices=("yukawa2d", "watanabe"),
                        help="interatomic potential")
    parser.add_argument("--method", choices=("fire", "lbfgs", "cg"), default="lbfgs",
                        help="minimiser (default lbfgs, the fastest to tight tolerances)")
    parser.add_argument("--precondition", choices=("none", "bonds", "hessian", "auto"), default="none",
                        help="L-BFGS preconditioner: bonds = sparse spring model of the sample, hessian = the "
                             "potential's own Hessian (yukawa2d: short-range pairs; watanabe: its terms), "
                             "auto = hessian where possible; fewer evaluations on large samples (default none)")
    parser.add_argument("--cell", action="store_true",
                        help="also relax the cell to zero stress along every periodic axis")
    parser.add_argument("--fmax", type=positive_float, default=1e-8,
                        help="force tolerance in eV/Å (default 1e-8)")
    parser.add_argument("--stress-tol", type=positive_float, default=1e-6,
                        help="stress tolerance with --cell, N/m for sheets or GPa for bulk (default 1e-6)")
    parser.add_argument("--max-steps", type=positive_int, default=100_000,
                        help="cap on force evaluations (default 100000)")
    parser.add_argument("--keep-saddle", action="store_true",
                        help="stop where the minimiser converges, even on a saddle (default: while the lowest "
                             "Hessian eigenvalue is negative, push along its mode and relax again)")
    parser.add_argument("-o", "--output", required=True, type=STRUCTURE_OUTPUT,
                        help="relaxed structure file (format from the extension)")
    add_overwrite(parser)


def _relax(args) -> dict:
    from glassfrac.mechanics.relax import relax, relax_to_minimum
    from glassfrac.potentials import get_potential
    from glassfrac.structure import read, write

    check_file(args.output, args.overwrite)
    structure = read(args.file, format=args.format)
    potential = get_potential(args.potential)
    options = dict(method=args.method, fmax=args.fmax, max_steps=args.max_steps, cell=True if args.cell else None,
                   stress_tol=args.stress_tol, precondition=None if args.precondition == "none" else args.precondition)
    with from_file(args.file):
        if args.keep_saddle:
            (relaxed, info), = relax(potential, [structure], **options)
        else:
            relaxed, info = relax_to_minimum(potential, structure, **options)
    write(relaxed, args.output)
    if not info["converged"]:
        print(f"glassfrac relax: warning: did not converge in {args.max_steps} evaluations "
              f"(max force {info['max_force']:.3g} eV/Å, tolerance {args.fmax:g}); "
              f"wrote the last state to {args.output}", file=sys.stderr)
    return {
        "energy": info["energy"],
        "energy_per_atom": info["energy"] / structure.n_atoms,
        "max_force": info["max_force"],
        "iterations": info["iterations"],
        "evaluations": info["evaluations"],
        "converged": info["converged"],
        "stress": info["stress"],
        "stress_unit": info["stress_unit"],
        "lowest_eigenvalue": info.get("lowest_eigenvalue"),
        "minimum": info.get("minimum"),
        "saddle_escapes": info.get("saddle_escapes"),
        "cell": relaxed.box.cell.tolist() if args.cell else None,
        "method": args.method,
        "precondition": args.precondition,
        "potential": potential.parameters(),
        "seconds": info["seconds"],
        "output": str(args.output),
    }
