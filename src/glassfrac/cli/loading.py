"""CLI of the loading stage: ``glassfrac load tension|shear`` and ``glassfrac probe``."""

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import NPZ, add_format, from_file, positive_float, positive_int
from glassfrac.core.outputs import OutputFolder, check_files
from glassfrac.potentials import POTENTIALS, get_potential
from glassfrac.structure import read


def register(subparsers) -> None:
    _register_loading(subparsers)


def _load(args) -> dict:
    """Handler of ``glassfrac load tension|shear``."""
    import dataclasses

    from glassfrac.labels import shear_labels, tension_labels
    from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, TENSION_DEFAULTS, shear_test, tension_test
    from glassfrac.report.loading import RUN_FILES, save_run

    folder = OutputFolder(args.output, f"load {args.test}", args.overwrite, names=RUN_FILES)
    structure = read(args.file, format=args.format)
    potential = get_potential(args.potential)
    tension = args.test == "tension"
    defaults = TENSION_DEFAULTS if tension else SHEAR_DEFAULTS
    overrides = {k: v for k, v in (("max_strain", args.max_strain), ("step", args.step),
                                   ("precision", args.precision), ("fmax", args.fmax),
                                   ("max_events", args.events), ("descent_step", args.descent_step))
                 if v is not None}
    if not tension and args.mode == "simple":
        overrides["path"] = "simple_shear"
    if args.audit:
        overrides["audit"] = True
    if getattr(args, "stop_at_first_break", False):
        overrides["stop_at_first_break"] = True
    if args.fixed_steps:  # a bracket one step wide is never bisected (AQSDriver.run)
        overrides["precision"] = overrides.get("step", defaults.step)
    settings = dataclasses.replace(defaults, **overrides)
    with from_file(args.file):
        result = (tension_test if tension else shear_test)(structure, potential, settings)
    labels = (tension_labels if tension else shear_labels)(result)
    record = save_run(result, labels, folder)
    stale = folder.finish()
    events = record["events"]
    return {
        "test": args.test,
        "path": settings.path,
        "fixed_steps": bool(args.fixed_steps),
        "potential": potential.name,
        "rupture_strain": record.get("rupture_strain"),
        "rupture_location": record.get("rupture_location"),
        "peak_stress": record["peak_stress"],
        "peak_stress_before_break": record.get("peak_stress_before_break"),
        "modulus": record["modulus"],
        "stress_unit": record["stress_unit"],
        "events": [{k: e[k] for k in ("strain", "stress_drop", "location", "atoms", "audit") if k in e}
                   for e in events],
        "n_events": len(events),
        "crack_atoms": len(record.get("crack_atoms", [])),
        "fractured": bool(result.fractured),
        "output": str(args.output),
        "removed_stale": stale,
    }


def _probe(args) -> dict:
    """Handler of ``glassfrac probe``."""
    import time
    from pathlib import Path

    import numpy as np

    from glassfrac.labels.probe import ThresholdMap, event_locations
    from glassfrac.mechanics.probe import ProbeSettings, probe_map
    from glassfrac.report.probe_plot import plot_threshold_map

    check_files([args.output, Path(args.output).with_suffix(".png")], args.overwrite)
    structure = read(args.file, format=args.format)
    potential = get_potential(args.potential)
    events = None if args.events is None else event_locations(args.events)
    settings = ProbeSettings(grid=args.grid, r_free=args.r_free, directions=args.directions, workers=args.workers,
                             device=args.device)
    start = time.perf_counter()
    with from_file(args.file):
        result = probe_map(structure, potential, settings)
    seconds = time.perf_counter() - start
    windows = len(result["centres"]) * len(result["angles"])
    out = {
        "grid": [settings.grid, settings.grid],
        "threshold_min": float(np.min(result["threshold"])),
        "threshold_mean": float(np.mean(result["threshold"])),
        "threshold_max": float(np.max(result["threshold"])),
        "unit": "N/m",
        "windows": int(windows),
        "seconds": seconds,
        "windows_per_second": windows / seconds,
        "output": str(args.output),
    }
    threshold_map = ThresholdMap.from_result(result, settings, source=str(args.file), potential=potential.name,
                                             seconds=seconds)
    if events is not None:
        out["goodness"] = threshold_map.goodness(events, structure.box).tolist()
        out["events"] = str(args.events)
    threshold_map.info["goodness"] = out.get("goodness")
    threshold_map.save(args.output)
    figure = Path(args.output).with_suffix(".png")
    plot_threshold_map(result["threshold"], structure.box, events, figure)
    out["figure"] = str(figure)
    return out


def _register_loading(subparsers) -> None:
    load = subparsers.add_parser("load", help="quasistatic tension or shear test to failure, with labels",
                                 description="Quasistatic (AQS) tension or shear test to failure, with labels.")
    tests = load.add_subparsers(dest="test", metavar="TEST")
    tests.required = True
    for test, text in (("tension", "uniaxial-strain tension to fracture (FC22), with bond-break labels"),
                       ("shear", "shear up to the first stress drops (LISTI25), with event labels")):
        p = add_command(tests, test, text, _load)
        p.add_argument("file", help="structure file (extxyz, LAMMPS data or dump)")
        add_format(p)
        p.add_argument("--potential", required=True, choices=sorted(POTENTIALS))
        if test == "shear":
            p.add_argument("--mode", choices=("pure", "simple"), default="pure",
                           help="pure: area-preserving F = diag(1 + e, 1/(1 + e)), stress (sxx - syy)/2 "
                                "(LISTI25, default); simple: F = [[1, e], [0, 1]], stress sxy")
        p.add_argument("--max-strain", type=positive_float, default=None,
                       help="strain limit (default 0.3 tension, 0.04 shear)")
        p.add_argument("--step", type=positive_float, default=None,
                       help="coarse strain step (default 0.005 tension, 1e-4 shear)")
        steps = p.add_mutually_exclusive_group()
        steps.add_argument("--precision", type=positive_float, default=None,
                           help="precision of bisected event strains (default 1e-4 tension, 1e-5 shear)")
        steps.add_argument("--fixed-steps", action="store_true",
                           help="no bisection: every step is --step, and event strains are known to one step")
        p.add_argument("--fmax", type=positive_float, default=None, help="relaxation tolerance, eV/Å (default 1e-8)")
        p.add_argument("--events", type=positive_int, default=None,
                       help="stop after this many events (shear default 6)")
        if test == "tension":
            p.add_argument("--stop-at-first-break", action="store_true",
                           help="end the test after the first event that breaks a bond (first broken bond, rupture "
                                "strain and location, peak before the break; no crack path)")
        p.add_argument("--descent-step", type=positive_float, default=None,
                       help="largest atom move per step (Å) of the damped descent after each event (default 0.02: "
                            "the gradient flow's outcome; 0.1, LAMMPS's dmax, gives FC22's damped dynamics)")
        p.add_argument("--audit", action="store_true",
                       help="audit every event: the lowest Hessian eigenvalue of the mode on its atoms at strains "
                            "approaching it (an instability: it goes to zero as a square root; a basin hop of "
                            "the minimiser: it does not; undetermined where the eigenvalues do not converge), "
                            "in labels.json under each event's 'audit'")
        p.add_argument("-o", "--output", required=True,
                       help="output folder (made, or one made by an earlier run of this test; stale files of that "
                            "run are removed)")
        add_overwrite(p)

    p = add_command(subparsers, "probe", "local shear-stress threshold map (local probing)", _probe)
    p.add_argument("file", help="structure file: a 2D monolayer or a 3D sheet (bilayer, z not periodic)")
    add_format(p)
    p.add_argument("--potential", default="yukawa2d", choices=sorted(POTENTIALS),
                   help="a potential with the 'hessian' ability: yukawa2d (monolayers), watanabe (bilayers)")
    p.add_argument("--grid", type=positive_int, default=50, help="grid points per side")
    p.add_argument("--r-free", type=positive_float, default=11.0, help="radius of the free region, Å")
    p.add_argument("--directions", type=positive_int, default=1, help="probe directions (min projected threshold)")
    p.add_argument("--events", default=None, metavar="SHEAR_DIR",
                   help="output directory of a shear test (labels.json), or a folder or file with events.json: "
                        "adds the goodness per event and marks the events on the heatmap")
    p.add_argument("--workers", type=positive_int, default=1, help="CPU processes sharing the map (default 1)")
    p.add_argument("--device", default="cpu", help="torch device of the batched windows (cpu, cuda)")
    p.add_argument("-o", "--output", required=True, type=NPZ,
                   help="map file (.npz, a ThresholdMap); a .png heatmap is written "
                                                         "beside it")
    add_overwrite(p)
