"""``glassfrac rings``: ring statistics of a 2D network glass from a structure file.

Output: ``n_atoms``, ``n_si`` (all Si in the file), ``n_network_si`` (Si of the analysed
layer), ``method``, ``n_rings``, ``ring_sizes`` (size -> count), ``mu2``, ``alpha``,
``coordination_ok`` and the rest of :meth:`RingAnalysis.summary`.
"""

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import PNG, add_format, positive_float
from glassfrac.core.outputs import check_file


def register(subparsers) -> None:
    parser = add_command(subparsers, "rings", "ring statistics, coordination check and ring figure", _rings)
    parser.add_argument("file", help="structure file (LAMMPS data or dump, extended XYZ)")
    add_format(parser)
    parser.add_argument("--points-only", action="store_true",
                        help="ignore bonds and O: bonds from the Si positions (Voronoi rule of FC22)")
    parser.add_argument("--cutoff", type=positive_float, default=None,
                        help="Si–O cutoff in Å (default 1.8 for a monolayer, 2.2 for a bilayer)")
    parser.add_argument("--layer", choices=("top", "bottom"), default="top",
                        help="layer of a bilayer to analyse (default top)")
    parser.add_argument("--plot", metavar="PNG", type=PNG, default=None,
                        help="write the network with rings coloured by size to this PNG")
    add_overwrite(parser)


def _rings(args) -> dict:
    from glassfrac.analysis.rings import RingAnalysis
    from glassfrac.structure import read

    if args.plot:
        check_file(args.plot, args.overwrite, "--plot")
    structure = read(args.file, format=args.format)
    analysis = RingAnalysis(method="points" if args.points_only else "auto", cutoff=args.cutoff,
                            layer=args.layer).compute(structure)
    result = {"file": str(args.file), **analysis.summary()}
    if args.plot:
        from glassfrac.report.network_plot import plot_rings

        plot_rings(analysis, args.plot)
        result["plot"] = str(args.plot)
    return result
