"""CLI of the loading stage: ``glassfrac load tension|shear`` and ``glassfrac probe``."""

from glassfrac.cli import add_command
from glassfrac.potentials import POTENTIALS, get_potential
from glassfrac.structure import read


def register(subparsers) -> None:
    _register_loading(subparsers)


def _load(args) -> dict:
    """Handler of ``glassfrac load tension|shear``."""
    import dataclasses

    from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, TENSION_DEFAULTS, save_run, shear_test, tension_test

    structure = read(args.file)
    potential = get_potential(args.potential)
    defaults = TENSION_DEFAULTS if args.test == "tension" else SHEAR_DEFAULTS
    overrides = {k: v for k, v in (("max_strain", args.max_strain), ("step", args.step),
                                   ("precision", args.precision), ("fmax", args.fmax),
                                   ("max_events", args.events)) if v is not None}
    settings = dataclasses.replace(defaults, **overrides)
    run = tension_test if args.test == "tension" else shear_test
    result, labels = run(structure, potential, settings)
    record = save_run(result, labels, args.output, args.test)
    events = record["events"]
    return {
        "test": args.test,
        "potential": potential.name,
        "rupture_strain": labels.get("rupture_strain"),
        "rupture_location": labels.get("rupture_location"),
        "peak_stress": labels["peak_stress"],
        "modulus": labels["modulus"],
        "stress_unit": labels["stress_unit"],
        "events": [{k: e[k] for k in ("strain", "stress_drop", "location", "atoms")} for e in events],
        "n_events": len(events),
        "crack_atoms": len(labels.get("crack_atoms", [])),
        "fractured": bool(result.fractured),
        "output": str(args.output),
    }


def _probe(args) -> dict:
    """Handler of ``glassfrac probe``."""
    import time
    from pathlib import Path

    import numpy as np

    from glassfrac.mechanics.probe import ProbeSettings, event_locations, goodness, probe_map, save_map
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
    if events is not None:
        out["goodness"] = goodness(result["threshold"], result["centres"], events, structure.box).tolist()
        out["events"] = str(args.events)
    save_map(result, args.output, settings, {"source": str(args.file), "potential": potential.name,
                                             "seconds": seconds, "goodness": out.get("goodness")})
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
    p.add_argument("file", help="2D monolayer structure file")
    p.add_argument("--potential", default="yukawa2d", choices=["yukawa2d"])
    p.add_argument("--grid", type=int, default=50, help="grid points per side")
    p.add_argument("--r-free", type=float, default=11.0, help="radius of the free region, Å")
    p.add_argument("--directions", type=int, default=1, help="probe directions (min projected threshold)")
    p.add_argument("--events", default=None, metavar="SHEAR_DIR",
                   help="output directory of a shear test (labels.json), or a folder or file with events.json: "
                        "adds the goodness per event and marks the events on the heatmap")
    p.add_argument("--workers", type=int, default=1, help="CPU processes sharing the map (default 1)")
    p.add_argument("--device", default="cpu", help="torch device of the batched windows (cpu, cuda)")
    p.add_argument("-o", "--output", required=True, help="map file (.npz); a .png heatmap is written beside it")
