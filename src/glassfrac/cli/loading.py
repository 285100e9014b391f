"""CLI of the loading stage: ``glassfrac load tension|shear`` and ``glassfrac probe``."""

from glassfrac.cli import add_command
from glassfrac.potentials import POTENTIALS, get_potential
from glassfrac.structure import read


def register(subparsers) -> None:
    _register_loading(subparsers)


def _load(args) -> dict:
    """Handler of ``glassfrac load tension|shear``."""
    import dataclasses

    from glassfrac.labels import shear_labels, tension_labels
    from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, TENSION_DEFAULTS, shear_test, tension_test
    from glassfrac.report.loading import save_run

    structure = read(args.file)
    potential = get_potential(args.potential)
    tension = args.test == "tension"
    defaults = TENSION_DEFAULTS if tension else SHEAR_DEFAULTS
    overrides = {k: v for k, v in (("max_strain", args.max_strain), ("step", args.step),
                                   ("precision", args.precision), ("fmax", args.fmax),
                                   ("max_events", args.events)) if v is not None}
    settings = dataclasses.replace(defaults, **overrides)
    result = (tension_test if tension else shear_test)(structure, potential, settings)
    labels = (tension_labels if tension else shear_labels)(result)
    record = save_run(result, labels, args.output)
    events = record["events"]
    return {
        "test": args.test,
        "potential": potential.name,
        "rupture_strain": record.get("rupture_strain"),
        "rupture_location": record.get("rupture_location"),
        "peak_stress": record["peak_stress"],
        "modulus": record["modulus"],
        "stress_unit": record["stress_unit"],
        "events": [{k: e[k] for k in ("strain", "stress_drop", "location", "atoms")} for e in events],
        "n_events": len(events),
        "crack_atoms": len(record.get("crack_atoms", [])),
        "fractured": bool(result.fractured),
        "output": str(args.output),
    }


def _probe(args) -> dict:
    """Handler of ``glassfrac probe``."""
    import time
    from pathlib import Path

    import numpy as np

    from glassfrac.labels.probe import ThresholdMap, event_locations
    from glassfrac.mechanics.probe import ProbeSettings, probe_map
    from glassfrac.report.probe_plot import plot_threshold_map

    structure = read(args.file)
    potential = get_potential(args.potential)
    events = None if args.events is None else event_locations(args.events)
    settings = ProbeSettings(grid=args.grid, r_free=args.r_free, directions=args.directions, workers=args.workers,
                             device=args.device)
    start = time.perf_counter()
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
    p = add_command(subparsers, "load", "quasistatic tension or shear test to failure, with labels", _load)
    p.add_argument("test", choices=["tension", "shear"])
    p.add_argument("file", help="structure file (extxyz, LAMMPS data or dump)")
    p.add_argument("--potential", required=True, choices=sorted(POTENTIALS))
    p.add_argument("--max-strain", type=float, default=None, help="strain limit (default 0.3 tension, 0.04 shear)")
    p.add_argument("--step", type=float, default=None, help="coarse strain step")
    p.add_argument("--precision", type=float, default=None, help="precision of bisected event strains")
    p.add_argument("--fmax", type=float, default=None, help="relaxation tolerance, eV/Å (default 1e-8)")
    p.add_argument("--events", type=int, default=None, help="stop after this many events (shear default 6)")
    p.add_argument("-o", "--output", required=True, help="output directory")

    p = add_command(subparsers, "probe", "local shear-stress threshold map (local probing)", _probe)
    p.add_argument("file", help="structure file: a 2D monolayer or a 3D sheet (bilayer, z not periodic)")
    p.add_argument("--potential", default="yukawa2d", choices=sorted(POTENTIALS),
                   help="a potential with the 'hessian' ability: yukawa2d (monolayers), watanabe (bilayers)")
    p.add_argument("--grid", type=int, default=50, help="grid points per side")
    p.add_argument("--r-free", type=float, default=11.0, help="radius of the free region, Å")
    p.add_argument("--directions", type=int, default=1, help="probe directions (min projected threshold)")
    p.add_argument("--events", default=None, metavar="SHEAR_DIR",
                   help="output directory of a shear test (labels.json), or a folder or file with events.json: "
                        "adds the goodness per event and marks the events on the heatmap")
    p.add_argument("--workers", type=int, default=1, help="CPU processes sharing the map (default 1)")
    p.add_argument("--device", default="cpu", help="torch device of the batched windows (cpu, cuda)")
    p.add_argument("-o", "--output", required=True, help="map file (.npz, a ThresholdMap); a .png heatmap is written "
                                                         "beside it")
