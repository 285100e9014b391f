"""Quasistatic loading: speed of the AQS tests, ensemble figures, event locations.

    python benchmarks/loading.py [--quick] [--only speed|tension_speed|shear_speed|ensemble|shear_events|fc22|saddle|
                                  shear_lammps]
                                  [--out DIR]

(a) speed: wall and CPU time of (1) a full tension test to fracture (FC22 settings: strain
    steps 0.005, events bisected to 1e-4, L-BFGS to 1e-8 eV/Å) of a generated 3456-atom
    Watanabe bilayer (16 × 18 rings, mu2 0.2, seed 0, relaxed with its in-plane cell), and (2)
    a 400-step pure shear (steps 1e-4, LISTI25; events bisected to 1e-5, relaxation to 1e-8
    eV/Å) of a generated 10^4-atom Yukawa monolayer (40 × 50 rings, log-normal ring sizes
    with sigma factor 1.0, seed 0, relaxed with its cell). Goal ≤ 10 min each. --quick runs the
    first part of each (tension to strain 0.05, shear 40 steps) and extrapolates linearly in
    the number of strain steps ("extrapolated": true, with the measured part in the record).
    ``--first-break``: the tension test ends at the first bond break, as the datasets' tension does (its labels
    are complete there; on the flow a bilayer still carries load at strain 0.3).
(b) ensemble (not with --quick): tension of generated bilayers of 8 × 8 rings (768 atoms, Watanabe;
    ``--kind monolayer``: Yukawa monolayers of 8 × 8 rings, 320 atoms), relaxed with their cell, at mu2
    0.2 and 1.0, seeds 0–3 (``--audit``: every event audited, and the fraction of events that are
    instabilities of the branch per mu2; with ``--max-step`` / ``--descent-step`` also how far the
    rupture site (midpoint of the first broken bond in the unstrained sample) moved from the
    default rule's, Å, on the seeds both rules ran): per sample the small-strain
    modulus (N/m, fit to strain ≤ 0.02), peak stress, strain at the peak, rupture strain
    (first bond break), and how gradual the failure is: strain from the peak to the first state
    below half the peak stress, and the precursors (:func:`precursors`: events before the peak,
    their summed stress drops, strain from the first event and from the first bond break to
    the peak); then means and spreads per mu2 and a figure of the curves
    (``DIR/ensemble_curves.png``). Relaxation to 1e-6 eV/Å, events to 5e-4.
(c) shear_events: pure shear of generated Yukawa monolayers (12 × 12 rings, 720 atoms,
    sigma factor 1.0, seeds 0–9; --quick: seed 0) to 6 events or strain 0.04: the fraction of events whose
    located atom (largest displacement in the event) is among the 10 % of atoms with the
    largest D²min of that event, and its mean D²min percentile (``--audit``: the fraction of events
    that are instabilities of the branch).
``--max-step`` / ``--descent-step`` run (b) and (c) with another minimiser rule than the default
(0.1 Å moves, descent after events in 0.02 Å steps, the gradient flow), e.g. 0.2 / 0.2 for large
steps that hop, as before issue #22; their records are kept apart.
(d) fc22 (only with --only fc22): the full tension run of the FC22 reference bilayer
    (/work/shared/data/fc22-bilayer), labels and curve written to ``DIR/fc22``.
(e) saddle (only with --only saddle): the generated 3456-atom bilayer ``--rings 16 18 --mu2 0.2 --kind bilayer
    --seed 11`` (an earlier generator's version of it stopped on a saddle) relaxed with its cell to 1e-8 eV/Å:
    its lowest non-trivial Hessian eigenvalue (eV/Å²) where the relaxation first converged, and what
    :func:`relax_to_minimum` makes of it (escapes, energy gained, eV, the eigenvalue at the minimum).
(f) shear_lammps (only with --only shear_lammps): the 400-step pure shear of (a) in fixed steps (no bisection:
    the precision is the step) to 1e-8 eV/Å, ours and LAMMPS (``change_box`` + ``minimize`` per step, CG with
    ``dmax`` 0.1 Å and the largest per-atom force as the norm, the same structure and Yukawa form through
    ``pair_style lepton``), one process each, in the same run: CPU seconds of each and the ratio ours / LAMMPS
    (issue #21 asks for at most 0.25), LAMMPS's iterations per step and the largest force it ended each step at.
    ``--quick``: 40 steps; ``--steps N``: N. Our state after an event is the small-step
    descent of the label rule; LAMMPS's is its CG minimum, so the paths may part after the first event.

Per-sample records are appended to ``DIR/records.jsonl`` as they finish and reused on a
re-run (delete the file to start afresh); ``--seed`` (and ``--mu2``) runs one sample only, so
that samples can run in parallel before a final run collects them. Prints one JSON object
per figure.
"""

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from glassfrac.core.threads import set_threads  # noqa: E402
from glassfrac.generate import generate  # noqa: E402
from glassfrac.labels import shear_labels, tension_labels  # noqa: E402
from glassfrac.learn.scores import in_plane_distance  # noqa: E402
from glassfrac.mechanics.protocols import (  # noqa: E402
    SHEAR_DEFAULTS,
    TENSION_DEFAULTS,
    shear_test,
    tension_test,
)
from glassfrac.mechanics.relax import relax_to_minimum  # noqa: E402
from glassfrac.potentials import get_potential  # noqa: E402
from glassfrac.report.loading import save_run  # noqa: E402
from glassfrac.structure import read, write  # noqa: E402
from results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/data"
FC22 = DATA / "fc22-bilayer/sio2_initial.dump"


def emit(figure, value, unit, reference=None, extrapolated=False, **extra):
    publish({"benchmark": "loading", "figure": figure, "value": value, "unit": unit,
             "reference": reference or {}, "extrapolated": extrapolated, **extra})


class Records:
    """Finished per-sample records in a JSON-lines file, appended one at a time."""

    def __init__(self, path: Path):
        self.path = path
        self.items = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    item = json.loads(line)
                    self.items[item["key"]] = item

    def get(self, key):
        return self.items.get(key)

    def add(self, item):
        self.items[item["key"]] = item
        with open(self.path, "a") as handle:  # one line per record: a partial file stays readable
            handle.write(json.dumps(item) + "\n")


def sample(out: Path, kind: str, rings, seed: int, **target):
    """A generated sample relaxed with its periodic cell to a true minimum at 1e-8 eV/Å (cached in ``out``)."""
    name = f"{kind}_{rings[0]}x{rings[1]}_" + "_".join(f"{k}{v}" for k, v in target.items()) + f"_seed{seed}.xyz"
    path = out / "samples" / name
    if path.exists():
        return read(path), 0.0
    start = time.process_time()
    structure = generate(rings, kind=kind, seed=seed, progress=False, **target)
    potential = get_potential("watanabe" if kind == "bilayer" else "yukawa2d")
    relaxed, info = relax_to_minimum(potential, structure, cell=True, fmax=1e-8, raise_on_failure=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(relaxed, path)
    return relaxed, time.process_time() - start


def timed(function, *args, **kwargs):
    cpu, wall = time.process_time(), time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def run_stats(result) -> dict:
    c = result.curve.arrays()
    return {"recorded_states": int(len(c["strain"])), "n_events": len(result.events),
            "all_converged": bool(c["converged"].all()), **result.work}


# -- (a) speed ---------------------------------------------------------------------------------

def tension_speed(args, out: Path):
    bilayer, made = sample(out, "bilayer", (16, 18), 0, mu2=0.2)
    settings = dataclasses.replace(TENSION_DEFAULTS, stop_at_first_break=args.first_break)
    if args.quick:
        settings = dataclasses.replace(settings, max_strain=0.05)
    result, cpu, wall = timed(tension_test, bilayer, get_potential("watanabe"), settings)
    labels = tension_labels(result)
    stats = run_stats(result)
    steps_done = result.curve.arrays()["strain"].max() / settings.step
    full_steps = (labels.rupture_strain or 0.2) / settings.step if args.quick else steps_done
    factor = full_steps / steps_done
    end = "first_break" if args.first_break else "fracture"
    emit(f"tension_{bilayer.n_atoms}_atoms_to_{end}_wall_seconds", round(wall * factor, 1), "s",
         {"what": "FC22 published run, 16 MPI ranks", "value": 2.6 * 3600, "unit": "s"}, args.quick,
         cpu_seconds=round(cpu * factor, 1), measured={"wall": round(wall, 1), "cpu": round(cpu, 1),
                                                       "max_strain": float(result.curve.arrays()["strain"].max())},
         goal_seconds=600, rupture_strain=labels.rupture_strain, peak_stress=labels.peak_stress,
         modulus=labels.modulus, fractured=result.fractured, sample_cpu_seconds=round(made, 1),
         settings={"step": settings.step, "precision": settings.precision, "fmax": settings.fmax}, **stats)


def shear_speed(args, out: Path):
    monolayer, made = sample(out, "monolayer", (40, 50), 0, distribution="lognormal", sigma_factor=1.0)
    steps = 40 if args.quick else 400
    settings = dataclasses.replace(SHEAR_DEFAULTS, max_strain=steps * SHEAR_DEFAULTS.step, max_events=None,
                                   snapshots=False)
    result, cpu, wall = timed(shear_test, monolayer, get_potential("yukawa2d"), settings)
    factor = 400 / steps
    emit(f"pure_shear_400_steps_{monolayer.n_atoms}_atoms_wall_seconds", round(wall * factor, 1), "s",
         {"what": "LISTI25 remote loading (time not published)"}, args.quick,
         cpu_seconds=round(cpu * factor, 1), measured={"wall": round(wall, 1), "cpu": round(cpu, 1), "steps": steps},
         goal_seconds=600, sample_cpu_seconds=round(made, 1),
         settings={"step": settings.step, "precision": settings.precision, "fmax": settings.fmax}, **run_stats(result))


def shear_lammps(args, out: Path):
    """Our AQS pure shear against LAMMPS on the same protocol (module docstring, (f))."""
    from glassfrac.potentials.lammps import lammps_input_lines, open_lammps
    from glassfrac.structure.io import write_lammps_data

    monolayer, _ = sample(out, "monolayer", (40, 50), 0, distribution="lognormal", sigma_factor=1.0)
    potential = get_potential("yukawa2d")
    steps = args.steps or (40 if args.quick else 400)
    step, fmax = SHEAR_DEFAULTS.step, 1e-8
    settings = dataclasses.replace(SHEAR_DEFAULTS, max_strain=steps * step, precision=step, fmax=fmax,
                                   max_events=None, snapshots=False)
    result, ours_cpu, ours_wall = timed(shear_test, monolayer, potential, settings)
    lmp = open_lammps()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "in.data"
        write_lammps_data(monolayer, data, type_map={k + 1: x for k, x in enumerate(potential.species)})
        lmp.commands_list(["units metal", "dimension 2", "atom_style atomic", "boundary p p p", f"read_data {data}",
                           "mass * 1.0", *lammps_input_lines(potential), "neighbor 1.0 bin",
                           "neigh_modify every 1 delay 0 check yes", "min_style cg", "min_modify dmax 0.1 norm max",
                           "thermo 0", "log none"])
        cpu, wall = time.process_time(), time.perf_counter()
        iterations, largest = [], []
        for k in range(steps):
            ratio = (1.0 + (k + 1) * step) / (1.0 + k * step)
            before = lmp.get_thermo("step")
            lmp.command(f"change_box all x scale {ratio!r} y scale {1.0 / ratio!r} remap units box")
            lmp.command(f"minimize 0.0 {fmax} 100000 1000000")
            iterations.append(int(lmp.get_thermo("step") - before))
            forces = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(-1, 3)[:, :2]
            largest.append(float(np.linalg.norm(forces, axis=1).max()))
        lammps_cpu, lammps_wall = time.process_time() - cpu, time.perf_counter() - wall
        lammps_stress = 0.5 * (lmp.get_thermo("pxx") - lmp.get_thermo("pyy"))
    version = lmp.version()
    lmp.close()
    c = result.curve.arrays()
    emit("pure_shear_ratio_to_lammps", round(ours_cpu / lammps_cpu, 4), "ratio",
         {"what": "issue #21 goal", "value": 0.25}, steps < 400, atoms=monolayer.n_atoms, steps=steps,
         ours_cpu_seconds=round(ours_cpu, 1), ours_wall_seconds=round(ours_wall, 1),
         lammps_cpu_seconds=round(lammps_cpu, 1), lammps_wall_seconds=round(lammps_wall, 1),
         ours_400_steps_cpu_seconds=round(ours_cpu * 400 / steps, 1), lammps_version=version,
         ours_final_shear_stress=float(c["stress"][-1]), lammps_final_pressure_difference_bar=lammps_stress,
         lammps_iterations_per_step=iterations, lammps_final_max_force=largest,
         lammps_steps_converged=int(sum(f <= fmax for f in largest)), ours_iterations=result.work["iterations"],
         ours_events=len(result.events), settings={"step": step, "fmax": fmax, "fixed_steps": True,
                                                     "lammps": "min_style cg, dmax 0.1, norm max"})


# -- (b) ensemble ------------------------------------------------------------------------------

ENSEMBLE = dataclasses.replace(TENSION_DEFAULTS, fmax=1e-6, precision=5e-4, snapshots=False)
ENSEMBLE_SEEDS = 4
SHEAR_SEEDS = 10
"""Samples of (c): at the LISTI25 strain of 0.04 a 720-atom monolayer has 0–1 events."""


def failure_width(strain, stress) -> float | None:
    """Strain from the peak stress to the first later state below half of it (None if none)."""
    k = int(np.argmax(stress))
    below = np.flatnonzero(stress[k:] < 0.5 * stress[k])
    return float(strain[k + below[0]] - strain[k]) if len(below) else None


def precursors(result, labels) -> dict:
    """How much the sample yields before its peak: events before the peak stress, their summed
    stress drops over the peak stress, and the strain from the first event of any kind and from
    the first bond break (rupture strain) to the peak."""
    c = result.curve.arrays()
    k = int(np.argmax(c["stress"]))
    peak_strain, peak = float(c["strain"][k]), float(c["stress"][k])
    before = [e for e in result.events if e.strain <= peak_strain + 1e-12]
    rupture = labels.rupture_strain
    return {"events_before_peak": len(before),
            "stress_drop_before_peak_fraction": float(sum(max(e.stress_drop, 0.0) for e in before) / peak),
            "first_event_to_peak_strain": float(peak_strain - before[0].strain_before) if before else 0.0,
            "rupture_to_peak_strain": None if rupture is None else float(max(peak_strain - rupture, 0.0))}


def rule_settings(args) -> dict:
    """The AQS settings of the minimiser rule chosen on the command line (empty: the defaults)."""
    return {name: getattr(args, name) for name in ("max_step", "descent_step") if getattr(args, name) is not None}


def rule_suffix(args) -> str:
    """Record-key suffix of a non-default minimiser rule (records of different rules are kept apart)."""
    return "".join(f"_{name}_{value}" for name, value in rule_settings(args).items())


def bond_midpoint(structure, i: int, j: int) -> np.ndarray:
    """Midpoint of atoms i and j (minimum image), Å."""
    return structure.positions[i] + 0.5 * structure.box.minimum_image(structure.positions[j] - structure.positions[i])


def rupture_site(structure, labels) -> list | None:
    """Midpoint of the first broken bond in the unstrained ``structure`` (Å), or None without a break."""
    if labels.first_broken_bond is None:
        return None
    return bond_midpoint(structure, *(int(a) for a in labels.first_broken_bond)).tolist()


def ensemble(args, out: Path, records: Records):
    potential = get_potential("watanabe" if args.kind == "bilayer" else "yukawa2d")
    prefix = "ensemble" if args.kind == "bilayer" else "ensemble_monolayer"
    label = "8x8_bilayer" if args.kind == "bilayer" else "8x8_monolayer"
    rows = []
    for mu2 in (0.2, 1.0):
        for seed in range(ENSEMBLE_SEEDS):
            key = ensemble_key(prefix, mu2, seed, args.audit) + rule_suffix(args)
            item = records.get(key)
            if args.seed is not None and (seed != args.seed or mu2 != args.mu2) or (item is None and args.collect):
                continue
            if item is None:
                structure, made = sample(out, args.kind, (8, 8), seed, mu2=mu2)
                settings = dataclasses.replace(ENSEMBLE, audit=args.audit, **rule_settings(args))
                result, cpu, wall = timed(tension_test, structure, potential, settings)
                labels = tension_labels(result)
                c = result.curve.arrays()
                item = {"key": key, "mu2": mu2, "seed": seed, "atoms": structure.n_atoms,
                        "rupture_site": rupture_site(structure, labels), "box": structure.box.lengths.tolist(),
                        "mu2_achieved": structure.info.get("mu2"), "modulus": labels.modulus,
                        "peak_stress": labels.peak_stress, "peak_stress_before_break": labels.peak_stress_before_break,
                        "peak_strain": float(c["strain"][np.argmax(c["stress"])]),
                        "rupture_strain": labels.rupture_strain, "fractured": result.fractured,
                        "failure_width": failure_width(c["strain"], c["stress"]),
                        **precursors(result, labels),
                        "cpu_seconds": cpu, "wall_seconds": wall, "curve": [c["strain"].tolist(), c["stress"].tolist()],
                        "verdicts": [e.audit.verdict for e in result.events if e.audit is not None],
                        **run_stats(result)}
                records.add(item)
            rows.append(item)
            if args.seed is not None:
                return
            emit(f"{key}_rupture_strain", item["rupture_strain"], "strain", atoms=item["atoms"],
                 rule=rule_settings(args),
                 events=item.get("n_events", item.get("events")),
                 **{k: item[k] for k in ("modulus", "peak_stress", "peak_strain", "failure_width", "fractured",
                                         "cpu_seconds", "relaxations")})
    for mu2 in (0.2, 1.0):
        sel = [r for r in rows if r["mu2"] == mu2]
        verdicts = [v for r in sel for v in r.get("verdicts", [])]
        if rule_suffix(args):  # how far the rupture site moved from the default rule's on the same samples
            shifts = rupture_site_shifts(sel, [records.get(ensemble_key(prefix, r["mu2"], r["seed"], args.audit))
                                               for r in sel])
            emit(f"ensemble_{label}_mu2_{mu2}{rule_suffix(args)}_rupture_site_shift_mean",
                 round(float(np.mean(shifts)), 3) if shifts else None, "Å", shifts=[round(d, 3) for d in shifts],
                 same_site=int(sum(d < 1.0 for d in shifts)), n=len(shifts))
        if verdicts:  # --audit: how many events are instabilities of the branch (issue #22)
            emit(f"ensemble_{label}_mu2_{mu2}{rule_suffix(args)}_instability_fraction",
                 round(verdicts.count("instability") / len(verdicts), 4), "fraction of events", events=len(verdicts),
                 basin_hops=verdicts.count("basin_hop"), undetermined=verdicts.count("undetermined"))
        for name, unit, ref in (("modulus", "N/m", {"what": "FC22 E/h", "value": 146, "unit": "N/m"}),
                                ("peak_stress", "N/m", {"what": "FC22 reference run", "value": 15.6, "unit": "N/m"}),
                                ("peak_stress_before_break", "N/m", {"what": "FC22 reference run", "value": 15.6,
                                                                     "unit": "N/m"}),
                                ("rupture_strain", "strain", {"what": "FC22 mu2 0.2 range", "value": [0.12, 0.2]}),
                                ("failure_width", "strain", {}),
                                ("events_before_peak", "events", {"what": "FC22: more ductile at high disorder"}),
                                ("stress_drop_before_peak_fraction", "fraction of peak stress", {}),
                                ("first_event_to_peak_strain", "strain", {}),
                                ("rupture_to_peak_strain", "strain", {})):
            values = np.array([r[name] for r in sel if r.get(name) is not None], dtype=float)
            emit(f"ensemble_{label}_mu2_{mu2}{rule_suffix(args)}_{name}_mean",
                 round(float(values.mean()), 4) if len(values) else None,
                 unit, ref, sd=round(float(values.std(ddof=1)), 4) if len(values) > 1 else None,
                 n=int(len(values)), of=len(sel), seeds=[r["seed"] for r in sel])
    from glassfrac.report.loading import plot_curves

    figure = out / f"{prefix}_curves.png"
    title = "8 × 8-ring Watanabe bilayers" if args.kind == "bilayer" else "8 × 8-ring Yukawa monolayers"
    plot_curves([(np.array(r["curve"][0]), np.array(r["curve"][1]), f"mu2 {r['mu2']}") for r in rows], figure,
                "uniaxial strain", "stress (N/m)", title)
    emit("ensemble_figure", str(figure), "path")


def ensemble_key(prefix: str, mu2: float, seed: int, audit: bool) -> str:
    """Record key of an ensemble sample on the default minimiser rule (other rules append :func:`rule_suffix`)."""
    return f"{prefix}_mu2_{mu2}_seed_{seed}" + ("_audit" if audit else "")


def rupture_site_shifts(rows, defaults) -> list[float]:
    """Distances (Å, in-plane minimum image) between each row's rupture site and that of ``defaults`` (the default
    rule's record of the same sample, or None), where both have one."""
    shifts = []
    for row, default in zip(rows, defaults, strict=True):
        if default is None or row.get("rupture_site") is None or default.get("rupture_site") is None:
            continue
        delta = np.subtract(row["rupture_site"], default["rupture_site"])[:2]  # in plane; the cells are rectangular
        lengths = np.asarray(row["box"][:2])
        shifts.append(float(np.linalg.norm(delta - lengths * np.round(delta / lengths))))
    return shifts


# -- (c) shear events ------------------------------------------------------------------------

def shear_events(args, out: Path, records: Records):
    potential = get_potential("yukawa2d")
    settings = dataclasses.replace(SHEAR_DEFAULTS, snapshots=True, audit=args.audit, **rule_settings(args))
    inside, percentiles, verdicts = [], [], []
    for seed in (0,) if args.quick else range(SHEAR_SEEDS):
        if args.seed is not None and seed != args.seed:
            continue
        key = f"shear_events_12x12_seed_{seed}" + ("_audit" if args.audit else "") + rule_suffix(args)
        item = records.get(key)
        if item is None and args.collect:
            continue
        if item is None:
            structure, made = sample(out, "monolayer", (12, 12), seed, distribution="lognormal", sigma_factor=1.0)
            result, cpu, wall = timed(shear_test, structure, potential, settings)
            events = []
            for label in shear_labels(result, d2min_cutoff=4.0).events:
                field, site = label.d2min, label.atom
                events.append({"strain": label.strain, "stress_drop": label.stress_drop, "atom": site,
                               "d2min_percentile": float((field < field[site]).mean()),
                               "in_top_10_percent": bool(field[site] >= np.quantile(field, 0.9))})
            item = {"key": key, "seed": seed, "atoms": structure.n_atoms, "events": events, "cpu_seconds": cpu,
                    "wall_seconds": wall, "verdicts": [e.audit.verdict for e in result.events if e.audit is not None],
                    **run_stats(result)}
            records.add(item)
        if args.seed is not None:  # one sample of a parallel run: recorded; the collecting run reports
            return
        inside += [e["in_top_10_percent"] for e in item["events"]]
        percentiles += [e["d2min_percentile"] for e in item["events"]]
        verdicts += item.get("verdicts", [])
        emit(f"{key}_events", len(item["events"]), "events", atoms=item["atoms"], cpu_seconds=item["cpu_seconds"],
             strains=[e["strain"] for e in item["events"]], stress_drops=[e["stress_drop"] for e in item["events"]])
    if verdicts:  # --audit: how many shear events are instabilities of the branch (issue #22)
        emit(f"shear_events_12x12{rule_suffix(args)}_instability_fraction",
             round(verdicts.count("instability") / len(verdicts), 4), "fraction of events", events=len(verdicts),
             basin_hops=verdicts.count("basin_hop"), undetermined=verdicts.count("undetermined"))
    emit(f"shear_event_site_in_top_10_percent_d2min_fraction{rule_suffix(args)}",
         round(float(np.mean(inside)), 3) if inside else None,
         "fraction", {"what": "LISTI25: location = atom of largest displacement"}, events=len(inside),
         mean_d2min_percentile=round(float(np.mean(percentiles)), 4) if percentiles else None)


# -- (d) FC22 reference bilayer -----------------------------------------------------------------

class Progress:
    """Appends each relaxed state (strain, stress, energy, CPU s) and each new event to ``directory``."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.states, self.events = directory / "progress.csv", directory / "progress_events.jsonl"
        self.states.write_text("strain,stress,energy_eV,cpu_seconds\n")
        self.events.write_text("")
        self.seen = 0
        self.start = time.process_time()

    def __call__(self, strain, stress, energy, events):
        with open(self.states, "a") as handle:
            handle.write(f"{strain:.10g},{stress:.10g},{energy:.12g},{time.process_time() - self.start:.1f}\n")
        with open(self.events, "a") as handle:
            for event in events[self.seen:]:
                handle.write(json.dumps({k: v for k, v in event.summary().items() if k != "atoms"}) + "\n")
        self.seen = len(events)


FC22_BOND = (268, 994)
"""The bond FC22's own run broke first, at strain 0.138 (its ``bondbreak.dat``): Si 268 – O 994, counted from 0 in
the dump's order as glassfrac counts atoms (a 1.70 Å bond centred at (26.5, 36.1) Å)."""


def _length(structure, i: int, j: int) -> float:
    """Distance of atoms i and j, Å (minimum image)."""
    return float(np.linalg.norm(structure.box.minimum_image(structure.positions[j] - structure.positions[i])))


def fc22_bond_lengths(result, labels, structure) -> dict:
    """What the README says of the FC22 run's bonds (Å): FC22's first broken bond before and after our event in
    (0.1375, 0.1381] and that event's in-plane distance to it; our first broken bond after its event, with its O's
    other Si–O bond, and its distance to FC22's (distances between sites in the undeformed ``structure``)."""
    out = {}
    mine = [e for e in result.events if 0.1375 < e.strain <= 0.1381 and e.before is not None]
    i, j = FC22_BOND
    fc22_site = bond_midpoint(structure, i, j)
    if mine:
        e = mine[0]
        out["fc22_bond_event"] = {"strain": e.strain, "length_before": _length(e.before, i, j),
                                  "length_after": _length(e.after, i, j),
                                  "distance": float(in_plane_distance(structure, [e.location], fc22_site)[0])}
    breaks = [e for e in result.events if "bond_break" in e.kind and e.after is not None]
    if breaks and labels.first_broken_bond is not None:
        after = breaks[0].after
        a, b = (int(x) for x in labels.first_broken_bond)
        oxygen = b if after.species[b] == "O" else a
        silicon = a if oxygen == b else b
        others = [k for k in range(after.n_atoms) if after.species[k] == "Si" and k != silicon
                  and _length(after, oxygen, k) < 2.2]
        out["first_break_bond"] = {"length_after": _length(after, a, b),
                                   "oxygen_other_bond": min((_length(after, oxygen, k) for k in others), default=None),
                                   "distance_to_fc22_bond": float(in_plane_distance(
                                       structure, [labels.rupture_location], fc22_site)[0])}
    return out


def fc22(args, out: Path):
    structure = read(args.fc22_input)
    settings = dataclasses.replace(TENSION_DEFAULTS, max_strain=args.max_strain or TENSION_DEFAULTS.max_strain)
    result, cpu, wall = timed(tension_test, structure, get_potential("watanabe"), settings,
                              on_state=Progress(out / "fc22"))
    labels = tension_labels(result)
    save_run(result, labels, out / "fc22")
    c = result.curve.arrays()
    at = {e: float(np.interp(e, c["strain"], c["stress"])) for e in (0.05, 0.10)}
    emit("fc22_reference_bilayer_rupture_strain", labels.rupture_strain, "strain",
         {"what": "FC22 reference run: first break 0.138, peak 15.6 N/m at 0.135, 6.2 / 12.0 N/m at 0.05 / 0.10, "
                  "modulus 124 N/m"}, **fc22_bond_lengths(result, labels, structure),
         peak_stress=labels.peak_stress, peak_stress_before_break=labels.peak_stress_before_break,
         first_broken_bond=None if labels.first_broken_bond is None else [int(a) for a in labels.first_broken_bond],
         rupture_location=None if labels.rupture_location is None else labels.rupture_location.tolist(),
         input=str(args.fc22_input), max_strain=settings.max_strain, fractured=labels.fractured,
         events=[{"strain": e.strain, "kind": e.kind, "atoms": len(e.atoms), "location": e.location}
                 for e in result.events],
         modulus=labels.modulus, stress_at_0_05=at[0.05],
         stress_at_0_10=at[0.10], cpu_seconds=round(cpu, 1), wall_seconds=round(wall, 1), **run_stats(result))


def saddle(args, out: Path):
    structure = generate((16, 18), kind="bilayer", mu2=0.2, seed=11, progress=False)
    start = time.process_time()
    _, found = relax_to_minimum(get_potential("watanabe"), structure, cell=True, fmax=1e-8, raise_on_failure=True)
    first = found["saddle_escapes"][0] if found["saddle_escapes"] else found  # the state the relaxation first reached
    emit("bilayer_16x18_seed_11_relaxed_lowest_eigenvalue", first["lowest_eigenvalue"], "eV/Å²",
         {"what": "a minimum has a positive lowest non-trivial eigenvalue"}, atoms=structure.n_atoms,
         energy=first["energy"], minimum_energy=found["energy"], energy_gained=first["energy"] - found["energy"],
         minimum_lowest_eigenvalue=found["lowest_eigenvalue"], saddle_escapes=len(found["saddle_escapes"]),
         cpu_seconds=round(time.process_time() - start, 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="speed by extrapolation, fewer samples")
    parser.add_argument("--only", choices=("speed", "tension_speed", "shear_speed", "ensemble", "shear_events", "fc22",
                                                "saddle", "shear_lammps"),
                        default=None, help="one part (speed = tension_speed and shear_speed)")
    parser.add_argument("--out", default=str(ROOT / "bench-out/loading"), help="output directory")
    parser.add_argument("--fc22-input", type=Path, default=FC22,
                        help="with --only fc22: the structure file (default FC22's dump; an extxyz copy of it "
                             "checks that the labels do not depend on the input's round-off)")
    parser.add_argument("--max-strain", type=float, default=None,
                        help="with --only fc22: stop at this strain (default 0.3, FC22's settings; on the flow branch "
                             "the bilayer still carries 20 N/m at 0.2, so a run to the first break stops at 0.145)")
    parser.add_argument("--seed", type=int, default=None,
                        help="ensemble / shear_events: only this sample (records it; run in parallel, then without)")
    parser.add_argument("--mu2", type=float, default=0.2, help="ensemble: mu2 of the --seed sample")
    parser.add_argument("--kind", choices=("bilayer", "monolayer"), default="bilayer",
                        help="ensemble: Watanabe bilayers (default) or Yukawa monolayers")
    parser.add_argument("--collect", action="store_true", help="ensemble / shear_events: report finished samples only")
    parser.add_argument("--max-step", type=float, default=None,
                        help="ensemble: the minimiser's largest move per iteration, Å (default the AQS default, 0.1)")
    parser.add_argument("--descent-step", type=float, default=None,
                        help="ensemble: the descent's largest move after an event, Å (default 0.02, the gradient flow; "
                             "0.1: FC22's damped dynamics; 0.2: large steps that hop, as the rule before #22)")
    parser.add_argument("--steps", type=int, default=None,
                        help="shear_lammps: strain steps on both sides (default 400; --quick 40)")
    parser.add_argument("--first-break", action="store_true",
                        help="tension_speed: stop at the first bond break (the datasets' protocol, where the labels "
                             "of FC22 are complete) instead of at fracture or strain 0.3")
    parser.add_argument("--audit", action="store_true",
                        help="ensemble / shear_events: audit every event (glassfrac.mechanics.audit) and report the "
                             "fraction that are instabilities of the branch (records kept apart from unaudited ones)")
    args = parser.parse_args()
    set_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = Records(out / "records.jsonl")
    if args.only in (None, "speed", "tension_speed"):
        tension_speed(args, out)
    if args.only in (None, "speed", "shear_speed"):
        shear_speed(args, out)
    if args.only == "ensemble" or (args.only is None and not args.quick):
        ensemble(args, out, records)
    if args.only in (None, "shear_events"):
        shear_events(args, out, records)
    if args.only == "fc22":
        fc22(args, out)
    if args.only == "saddle":
        saddle(args, out)
    if args.only == "shear_lammps":
        shear_lammps(args, out)


if __name__ == "__main__":
    main()
