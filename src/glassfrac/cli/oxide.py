"""``glassfrac oxide quench|tension|analyse|softness``: amorphous alumina (DU21) from the command line.

Under ``mpirun -np N glassfrac oxide ...`` every rank runs the command, LAMMPS spans all
ranks, and only rank 0 writes files and prints.
"""

import json
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import ase.io
import numpy as np

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import (
    STRUCTURE_OUTPUT,
    add_format,
    finite_float,
    non_negative_int,
    positive_float,
    positive_int,
    regex,
)
from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_open, atomic_path
from glassfrac.core.jsonable import to_jsonable
from glassfrac.core.outputs import OutputFolder, check_file
from glassfrac.structure import Structure, read, write


def register(subparsers) -> None:
    oxide = subparsers.add_parser("oxide", help="amorphous oxides in 3D (DU21 alumina): quench, tension, analyse, "
                                                "softness",
                                  description="Amorphous Al2O3 with the Matsui potential in LAMMPS.")
    sub = oxide.add_subparsers(dest="oxide_command", metavar="ACTION")
    sub.required = True

    p = add_command(sub, "quench", "melt-quench Al2O3 under pressure; density and Al coordination "
                                   "versus quench pressure", _quench)
    p.add_argument("--config", default=None, help="TOML config (default: the reduced size)")
    p.add_argument("--pressures", type=finite_float, nargs="+", default=None, help="quench pressures in GPa")
    p.add_argument("--seed", type=non_negative_int, default=None, help="seed of the random start and velocities")
    p.add_argument("--out", default="oxide-quench", help="output folder (default oxide-quench)")
    add_overwrite(p)

    p = add_command(sub, "tension", "tension at 300 K (plane stress and/or plane strain): stress–strain "
                                    "curves in GPa and bond switching versus strain", _tension)
    p.add_argument("file", help="quenched structure (extended XYZ from 'oxide quench', or LAMMPS data)")
    add_format(p)
    p.add_argument("--config", default=None, help="TOML config (default: the reduced size)")
    p.add_argument("--mode", choices=("plane_stress", "plane_strain", "both"), default=None,
                   help="loading mode (default: the config's modes)")
    p.add_argument("--softness", default=None, metavar="MODEL",
                   help="softness model (from 'oxide softness train'): also softness and high-softness "
                        "clusters versus strain")
    p.add_argument("--out", default="oxide-tension", help="output folder (default oxide-tension)")
    add_overwrite(p)

    p = add_command(sub, "analyse", "RDFs, Al–O coordination, per-atom stress, bond switching, "
                                    "non-affine displacement, p_hop and high-value clusters", _analyse)
    p.add_argument("file", help="structure (extended XYZ or LAMMPS data)")
    add_format(p)
    p.add_argument("--reference", default=None, help="earlier configuration of the same atoms: bond switching, D2min")
    p.add_argument("--trajectory", default=None,
                   help="multi-frame extended XYZ of the same atoms: cumulative D (and p_hop with --dt)")
    p.add_argument("--dt", type=positive_float, default=None, help="time between trajectory frames in ps (for p_hop)")
    p.add_argument("--t-r", type=positive_float, default=6.0, help="p_hop window t_R in ps (default 6)")
    p.add_argument("--cutoff", type=positive_float, default=None,
                   help="Al–O cutoff in Å (default 2.25, DU21; the RDF's first minimum is reported)")
    p.add_argument("--field", default=None, help="per-atom array (e.g. softness) for top-10 %% Al clusters")
    p.add_argument("--out", default=None, type=STRUCTURE_OUTPUT,
                   help="write the structure with per-atom results to this .xyz")
    add_overwrite(p)

    p = add_command(sub, "samples", "the softness dataset's samples (melt-quench, 300 K run, p_hop labels, DU21 "
                                    "features of each labelled Al), one file each in a run folder; then "
                                    "'glassfrac dataset part' and 'merge'", _samples)
    p.add_argument("--config", required=True, help="TOML config (e.g. configs/alumina-softness.toml)")
    p.add_argument("--out", required=True, help="run folder (made if new; a run of the same config resumes)")
    p.add_argument("--start", type=non_negative_int, default=0, help="first sample index (default 0)")
    p.add_argument("--stop", type=positive_int, required=True, help="one past the last sample index")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default 1)")

    softness = sub.add_parser("softness", help="softness from p_hop labels (DU21): train, or follow along tension",
                              description="Softness of amorphous Al2O3 (DU21): a linear SVM on the DU21 structure "
                                          "functions, trained on p_hop labels of 300 K trajectories.")
    ssub = softness.add_subparsers(dest="softness_command", metavar="ACTION")
    ssub.required = True
    p = add_command(ssub, "train", "300 K trajectories of quenched samples, p_hop labels, linear SVM with "
                                   "held-out accuracy over samples (DU21: 83 percent)", _softness_train)
    p.add_argument("samples", nargs="+",
                   help="quenched structures (.xyz or .data; a 300 K trajectory is run for each and saved in "
                        "--out as traj_<folder>_<stem>.npz, reused when present) or such .npz trajectories")
    p.add_argument("--config", default=None, help="TOML config (its [softness] table; default: the reduced size)")
    p.add_argument("--group", default=None, metavar="REGEX", type=regex,
                   help="CV group of a sample: the first match of REGEX in its name (default: the whole name); "
                        "samples of one group, e.g. quenched from one melt, are never split between train and test")
    p.add_argument("--out", default="oxide-softness", help="output folder (default oxide-softness)")
    add_overwrite(p)
    p = add_command(ssub, "tension", "softness of every atom of tension frames: mean softness and "
                                     "high-softness clusters versus strain, next to bond switching", _softness_tension)
    p.add_argument("model", help="softness model (.safetensors from 'oxide softness train')")
    p.add_argument("frames", help="multi-frame extended XYZ of a tension run (tension_<mode>_frames.xyz)")
    p.add_argument("--curve", default=None, help="stress–strain CSV of the same run (tension_<mode>.csv), plotted")
    p.add_argument("--config", default=None, help="TOML config (its [softness] cluster settings)")
    p.add_argument("--out", default="oxide-softness", help="output folder (default oxide-softness)")
    add_overwrite(p)


# -- quench ------------------------------------------------------------------------------------

def _quench(args) -> dict:
    from glassfrac.campaign.oxide_config import load_config, provenance
    from glassfrac.generate.quench import melt_quench
    from glassfrac.report.oxide import plot_quench

    root = _root_only()
    config = load_config(args.config)
    if args.pressures is not None:
        config.pressures_GPa = tuple(args.pressures)
    if args.seed is not None:
        config.md = replace(config.md, seed=args.seed)
    stems = [f"quench_P{pressure:g}GPa" for pressure in config.pressures_GPa]
    folder = OutputFolder(args.out, "oxide quench", args.overwrite, option="--out", names=[
        f"{stem}{end}" for stem in stems for end in (".xyz", ".data", "_thermo.npz")] + ["quench.png", "quench.json"])
    rows, outputs = [], []
    for pressure, stem in zip(config.pressures_GPa, stems, strict=True):
        result = melt_quench(pressure, config.quench, config.potential, config.md)
        rows.append(result.summary())
        if root:
            write(result.structure, folder.file(f"{stem}.xyz"))
            write(result.structure, folder.file(f"{stem}.data"), atom_style="charge", type_map={1: "Al", 2: "O"})
            _save_thermo(result.stages, folder.file(f"{stem}_thermo.npz"))
            outputs += [str(folder.path / f"{stem}.xyz"), str(folder.path / f"{stem}.data")]
    summary = {
        "pressures_GPa": list(config.pressures_GPa),
        "density_g_cm3": [r["density_g_cm3"] for r in rows],
        "al_coordination_fractions": [r["al_coordination_fractions"] for r in rows],
        "al5_plus_al6": [round(r["al_coordination_fractions"].get("5", 0.0)
                               + r["al_coordination_fractions"].get("6", 0.0), 6) for r in rows],
        "n_atoms": rows[0]["n_atoms"] if rows else 0,
        "quench_rate_K_per_ps": config.quench.quench_rate_K_per_ps,
        "wall_used": any(r["wall_used"] for r in rows),
        "md_seconds": round(sum(r["seconds"] for r in rows), 2),
    }
    if root:
        plot_quench(summary["pressures_GPa"], summary["density_g_cm3"], summary["al_coordination_fractions"],
                    folder.file("quench.png"))
        _write_json(folder.file("quench.json"), {**summary, "samples": rows, "provenance": provenance(config)})
        outputs += [str(folder.path / "quench.png"), str(folder.path / "quench.json")]
        folder.finish()
    return {**summary, "outputs": outputs}


# -- dataset samples ---------------------------------------------------------------------------

def _samples(args) -> dict:
    from glassfrac.campaign.oxide_config import load_config
    from glassfrac.campaign.oxide_dataset import open_run, run_samples
    from glassfrac.core.progress import progress

    config = load_config(args.config)
    if args.stop <= args.start:
        raise InputError(f"--stop ({args.stop}) must be greater than --start ({args.start})")
    open_run(args.out, config)  # refuses another config's folder before any work
    with progress(total=args.stop - args.start, desc="samples", unit="sample") as bar:
        return run_samples(config, args.out, args.start, args.stop, args.workers, args.threads or 1,
                           progress=lambda _: bar.update())


# -- tension ----------------------------------------------------------------------------------

def _tension(args) -> dict:
    from glassfrac.analysis.oxide import cumulative_nonaffine, switching_curve
    from glassfrac.campaign.oxide_config import load_config, provenance
    from glassfrac.mechanics.md_tension import tension
    from glassfrac.report.oxide import plot_tension

    root = _root_only()
    config = load_config(args.config)
    modes = config.modes if args.mode is None else (("plane_stress", "plane_strain") if args.mode == "both"
                                                    else (args.mode,))
    runs = [f"tension_{mode}" for mode in modes]
    folder = OutputFolder(args.out, "oxide tension", args.overwrite, option="--out", names=[
        f"{run}{end}" for run in runs for end in (".csv", ".png", "_frames.xyz")
        + (("_softness.png", "_softness.npz", "_softness.json") if args.softness else ())] + ["tension.json"])
    structure = _oxide_structure(read(args.file, format=args.format), args.file)
    model = _load_model(args.softness) if args.softness else None
    out = folder.path
    results, outputs = {}, []
    for mode in modes:
        result = tension(structure, mode, config.tension, config.potential, config.md)
        switching = switching_curve(result.frames)
        d_mean = cumulative_nonaffine(result.frames).mean(axis=1)
        results[mode] = {**result.summary(), "frame_strain": result.frame_strain.round(5),
                         "switching": {k: v.round(5) for k, v in switching.items()},
                         "mean_cumulative_D_A": d_mean.round(5)}
        stem = out / f"tension_{mode}"
        if root:
            _write_curve(result.strain, result.stress_GPa, folder.file(f"{stem.name}.csv"))
            _write_frames(result.frames, folder.file(f"{stem.name}_frames.xyz"))
            plot_tension(result.strain, result.stress_GPa, result.frame_strain, switching,
                         folder.file(f"{stem.name}.png"), title=mode.replace("_", " "))
            outputs += [str(stem.with_suffix(s)) for s in (".csv", ".png")] + [f"{stem}_frames.xyz"]
        if model is not None:
            if root:  # record the files _softness_outputs writes
                for end in (".png", ".npz", ".json"):
                    folder.file(f"{stem.name}_softness{end}")
            results[mode]["softness"], files = _softness_outputs(
                model, result.frames, switching, config, stem.parent / f"{stem.name}_softness",
                result.strain, result.stress_GPa, mode.replace("_", " "), root)
            outputs += files
    if root:
        _write_json(folder.file("tension.json"), {"input": str(args.file), "modes": results,
                                                  "provenance": provenance(config)})
        outputs.append(str(out / "tension.json"))
        folder.finish()
    return {"input": str(args.file), **results, "outputs": outputs}


# -- analyse ----------------------------------------------------------------------------------

def _analyse(args) -> dict:
    from glassfrac.analysis import oxide as an
    from glassfrac.analysis.nonaffine import d2min
    from glassfrac.generate.quench import density

    if args.out:
        check_file(args.out, args.overwrite, "--out")
    structure = _oxide_structure(read(args.file, format=args.format), args.file)
    rdf = an.partial_rdf(structure)
    cutoff = an.AL_O_CUTOFF if args.cutoff is None else args.cutoff
    cn = an.coordination(structure, cutoff=cutoff)
    result = {
        "file": str(args.file), "n_atoms": structure.n_atoms, "density_g_cm3": round(density(structure), 5),
        "al_o_rdf_first_minimum_A": an.first_minimum(rdf["r"], rdf["Al-O"]), "al_o_cutoff_A": cutoff,
        "al_coordination_fractions": an.coordination_fractions(structure, cutoff), "mean_al_cn": float(cn.mean()),
    }
    al = structure.species == "Al"
    per_atom_cn = np.full(structure.n_atoms, -1)
    per_atom_cn[al] = cn
    structure.set_array("coordination", per_atom_cn)
    if "stress_volume" in structure.arrays:
        volumes = an.voronoi_volumes(structure)
        stress = an.per_atom_stress(structure, volumes)
        structure.set_array("voronoi_volume", volumes)
        structure.set_array("stress_GPa", stress)
        hydro = stress[:, :3].mean(axis=1)
        result["per_atom_hydrostatic_stress_GPa"] = {"mean": float(hydro.mean()), "std": float(hydro.std())}
        result["volume_weighted_stress_GPa"] = (stress * volumes[:, None]).sum(0) / volumes.sum()
    if args.reference:
        reference = read(args.reference)
        if reference.n_atoms != structure.n_atoms:
            raise InputError(f"the reference has {reference.n_atoms} atoms, {args.file} has {structure.n_atoms}; "
                             f"give an earlier configuration of the same atoms", args.reference)
        switching = an.bond_switching(reference, structure, cutoff)
        result["bond_switching"] = {k: switching[k] for k in ("fractions", "by_reference_cn")}
        d2 = d2min(reference, structure, cutoff=4.0)
        structure.set_array("d2min", d2)
        result["mean_d2min_A2"] = float(d2.mean())
    if args.trajectory:
        frames = _read_frames(args.trajectory)
        d = an.cumulative_nonaffine(frames)
        result["n_frames"] = len(frames)
        result["mean_cumulative_D_A"] = float(d[-1].mean())
        if args.dt:
            values = an.phop(np.stack([f.positions for f in frames]), args.dt, args.t_r)
            labels = an.hop_labels(values)
            result["phop"] = {"t_R_ps": args.t_r, "max_A2": float(values.max()),
                              "rearranging": int((labels == 1).sum()), "non_rearranging": int((labels == 0).sum()),
                              "left_out": int((labels == -1).sum())}
    if args.field:
        if args.field not in structure.arrays:
            raise InputError(f"{args.file} has no per-atom array {args.field!r} "
                             f"(has {sorted(structure.arrays)})")
        clusters = an.high_value_clusters(structure, structure.arrays[args.field])
        result["clusters"] = {k: clusters[k] for k in ("n_selected", "n_clusters", "largest")}
    if args.out:
        write(structure, args.out)
        result["output"] = str(args.out)
    return result


# -- softness ---------------------------------------------------------------------------------

def _softness_train(args) -> dict:
    from glassfrac.campaign.oxide_config import load_config, provenance
    from glassfrac.learn.oxide_softness import (
        Trajectory,
        hop_dataset,
        hop_trajectory,
        softness_features,
        train_softness,
    )

    root = _root_only()
    config = load_config(args.config)
    settings = config.softness
    saved_names = {sample: f"traj_{Path(sample).parent.resolve().name}_{Path(sample).stem}.npz"
                   for sample in args.samples if Path(sample).suffix != ".npz"}
    folder = OutputFolder(args.out, "oxide softness train", args.overwrite, option="--out",
                          names=[*saved_names.values(), "softness.safetensors", "softness_evaluation.png",
                                 "softness_train.json"])
    out = folder.path
    trajectories, outputs = {}, []
    for sample in args.samples:
        path = Path(sample)
        if path.suffix == ".npz":
            name = path.stem.removeprefix("traj_")
            trajectories[name] = Trajectory.load(path)
            continue
        name = f"{path.parent.resolve().name}_{path.stem}"
        saved = out / saved_names[sample]
        if saved.is_file():  # resume: a trajectory of an earlier run with these settings
            trajectories[name] = Trajectory.load(saved)
            if root:
                folder.keep(saved.name)
            continue
        traj = hop_trajectory(read(path), settings, config.potential, config.md)
        if root:
            traj.save(folder.file(saved.name))
            outputs.append(str(saved))
        trajectories[name] = traj
    groups = {}
    for name in trajectories:
        match = re.search(args.group, name) if args.group else None
        groups[name] = match.group(0) if match else name
    dataset, counts = hop_dataset(trajectories, settings, groups, config.potential, config.md)
    features = softness_features(dataset, settings.species)  # once: the radial-only model takes its columns
    model, evaluation, report = train_softness(dataset, settings, features=features)
    _, _, radial = train_softness(dataset, settings, radial_only=True, features=features)
    report["radial_only"] = {k: radial[k] for k in ("n_features", "test_accuracy", "test_balanced_accuracy",
                                                    "test_roc_auc", "train_accuracy")}
    report["samples"] = counts
    model.info.update({"softness_settings": config.to_dict()["softness"]})
    if root:
        model.save(folder.file("softness.safetensors"))
        evaluation.plot(folder.file("softness_evaluation.png"))
        _write_json(folder.file("softness_train.json"), {**report, "provenance": provenance(config)})
        outputs += [str(out / f) for f in ("softness.safetensors", "softness_evaluation.png", "softness_train.json")]
        for name in sorted(folder.previous):  # trajectories of other samples stay for later runs
            if name.startswith("traj_") and (out / name).is_file():
                folder.keep(name)
        folder.finish()
    summary = {k: report[k] for k in ("n_samples", "n_snapshots", "n_atoms", "n_positive", "n_negative",
                                      "n_features", "test_accuracy", "test_balanced_accuracy", "test_roc_auc",
                                      "train_accuracy")}
    return {**summary, "radial_only": report["radial_only"], "published": report["published"],
            "samples": counts, "outputs": outputs}


def _softness_tension(args) -> dict:
    from glassfrac.analysis.oxide import switching_curve
    from glassfrac.campaign.oxide_config import load_config

    run = Path(args.frames).stem.removesuffix("_frames")
    folder = OutputFolder(args.out, "oxide softness tension", args.overwrite, option="--out",
                          names=[f"{run}_softness{end}" for end in (".png", ".npz", ".json")])
    config = load_config(args.config)
    model = _load_model(args.model)
    frames = _read_frames(args.frames)
    strain = stress = None
    if args.curve:
        strain, stress = _read_curve(args.curve)
    switching = switching_curve(frames)
    stem = folder.path / f"{run}_softness"
    for end in (".png", ".npz", ".json"):
        folder.file(f"{stem.name}{end}")
    curve, outputs = _softness_outputs(model, frames, switching, config, stem, strain, stress,
                                       run.replace("_", " "), True)
    folder.finish(stale=False)  # the files of other tension runs are no earlier outputs of this one
    return {"frames": str(args.frames), "model": str(args.model), "n_frames": len(frames), **curve,
            "switching": {k: v.round(5) for k, v in switching.items()}, "outputs": outputs}


def _softness_outputs(model, frames, switching, config, stem, strain, stress, title, root):
    """Softness curve of ``frames`` (on inherent structures if the model was trained on them);
    on rank 0 also ``<stem>.png`` (next to bond switching), ``<stem>.npz`` (per-atom softness of
    every frame) and ``<stem>.json``. Returns the JSON-ready curve and the files written."""
    from glassfrac.learn.oxide_softness import softness_curve
    from glassfrac.report.oxide import plot_softness

    inherent = bool(model.info.get("softness_settings", {}).get("inherent", False))
    curve = softness_curve(model, frames, config.softness, inherent=inherent, potential=config.potential,
                           md_settings=config.md)
    summary = {k: (np.round(v, 5) if isinstance(v, np.ndarray) else v) for k, v in curve.items() if k != "softness"}
    if not root:
        return summary, []
    plot_softness(curve, switching, stem.with_suffix(".png"), strain, stress, title)
    with atomic_path(stem.with_suffix(".npz")) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, strain=curve["strain"], softness=curve["softness"],
                            species=frames[0].species.astype(str))
    _write_json(stem.with_suffix(".json"), {**summary, "switching": switching,
                                            "model": model.info.get("held_out", {})})
    return summary, [str(stem.with_suffix(s)) for s in (".png", ".npz", ".json")]


def _load_model(path):
    from glassfrac.learn.svm import SoftnessModel

    return SoftnessModel.load(path)


def _read_curve(path):
    """Strain and stress (GPa, Voigt) of a tension CSV written by :func:`_write_curve`."""
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a tension CSV (strain,sxx_GPa,...,syz_GPa): {exc}", path) from exc
    if data.shape[1] != 7:
        raise InputError(f"expected 7 columns (strain and 6 stresses), found {data.shape[1]}", path)
    return data[:, 0], data[:, 1:]


# -- helpers ----------------------------------------------------------------------------------

def _oxide_structure(structure, path):
    """``structure`` if it is a 3D structure of Al and O atoms (amorphous alumina), else :class:`InputError`."""
    species = sorted(set(structure.species.tolist()))
    if structure.dim != 3 or not {"Al", "O"} <= set(species) or not set(species) <= {"Al", "O"}:
        raise InputError(f"the oxide commands need a 3D structure of Al and O atoms (amorphous Al2O3); this one is "
                         f"{structure.dim}D with species {species}", path)
    return structure


def _root_only() -> bool:
    """True on MPI rank 0; other ranks get a silent stdout (the CLI prints on every rank)."""
    from glassfrac.campaign.oxide_config import mpi_rank

    if mpi_rank() == 0:
        return True
    sys.stdout = open(os.devnull, "w")  # kept open for the life of the process
    return False


def _write_json(path, data) -> None:
    with atomic_open(path) as handle:
        json.dump(to_jsonable(data), handle, indent=1)


def _save_thermo(stages, path) -> None:
    """Thermo arrays of every stage as ``<stage>/<quantity>`` entries of one .npz."""
    arrays = {f"{r.stage.name}/{k}": v for r in stages for k, v in r.thermo.items()}
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _write_curve(strain, stress, path) -> None:
    data = np.column_stack([strain, stress])
    with atomic_open(path) as handle:
        np.savetxt(handle, data, delimiter=",", fmt="%.8g",
                   header="strain,sxx_GPa,syy_GPa,szz_GPa,sxy_GPa,sxz_GPa,syz_GPa", comments="")


def _write_frames(frames, path) -> None:
    with atomic_path(path) as tmp:
        ase.io.write(tmp, [f.to_ase() for f in frames], format="extxyz")


def _read_frames(path):
    try:
        return [Structure.from_ase(a) for a in ase.io.read(path, index=":", format="extxyz")]
    except Exception as exc:  # ASE raises many types; report them uniformly
        raise InputError(f"not a readable multi-frame extended XYZ file ({exc})", path) from exc
