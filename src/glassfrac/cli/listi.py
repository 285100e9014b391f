"""``glassfrac listi train|map``: learned local stress-threshold maps (LISTI25).

``train DATASET --model gnn|cnn|lstm|baseline -o MODEL``: DATASET is a folder of probed samples
(layout in :mod:`glassfrac.learn.windows`: one subfolder per sample with ``structure.*``,
``map.npz`` and optionally ``events.json``; ``split.json`` optional, else a seeded split by
sample). Output: the model file (safetensors + JSON) and held-out figures on the test samples
(correlation and RMSE of Δτ, goodness of predicted and probed maps per event), next to the
published ones.

``map MODEL FILE -o MAP.npz``: the threshold map of a structure, in the format of probe maps
(:class:`glassfrac.labels.probe.ThresholdMap`), with ``seconds`` (prediction wall time).
"""

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import (
    MODEL,
    NPZ,
    PNG,
    add_format,
    finite_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from glassfrac.core.errors import InputError
from glassfrac.core.outputs import check_file, check_files
from glassfrac.learn.windows import KINDS


def register(subparsers) -> None:
    listi = subparsers.add_parser("listi", help="learned local stress-threshold maps (train, map)",
                                  description="LISTI predictors of local shear-stress thresholds (LISTI25).")
    sub = listi.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    train = add_command(sub, "train", "train a LISTI model on probed samples, with held-out figures", _train)
    train.add_argument("dataset", help="folder of probed samples (<sample>/structure.xyz + map.npz)")
    train.add_argument("--model", choices=KINDS, default="gnn", help="model kind (default gnn)")
    train.add_argument("-o", "--output", required=True, type=MODEL, help="model file to write (.safetensors)")
    train.add_argument("--epochs", type=positive_int, default=300, help="most epochs (default 300)")
    train.add_argument("--patience", type=positive_int, default=30, help="epochs without improvement before stopping")
    train.add_argument("--batch-size", type=positive_int, default=32)
    train.add_argument("--seed", type=non_negative_int, default=0, help="seed of initialisation, batches, split")
    train.add_argument("--radius", type=positive_float, default=11.0, help="window radius in Å (default 11, R_free)")
    train.add_argument("--image-size", type=positive_int, default=64, help="CNN image size in pixels (default 64)")
    train.add_argument("--fractions", default="0.7,0.15,0.15",
                       help="train,validation,test fractions of samples when there is no split.json")
    train.add_argument("--checkpoint", default=None, help="checkpoint file: written every epoch, resumed from")
    train.add_argument("--no-augment", action="store_true", help="do not mirror windows during training")
    train.add_argument("--no-symmetrize", action="store_true", help="predict without averaging over mirrors")
    add_overwrite(train)

    mapping = add_command(sub, "map", "threshold map of a structure predicted by a LISTI model", _map)
    mapping.add_argument("model", help="model file written by 'listi train'")
    mapping.add_argument("file", help="structure file (extended XYZ, LAMMPS data or dump)")
    add_format(mapping)
    mapping.add_argument("-o", "--output", required=True, type=NPZ, help="map file to write (.npz, as probe maps)")
    mapping.add_argument("--grid", type=positive_int, default=50, help="grid points per side (default 50)")
    mapping.add_argument("--load-angle", type=finite_float, default=0.0,
                         help="stretch direction in degrees (default 0)")
    mapping.add_argument("--figure", metavar="PNG", type=PNG, default=None, help="write the heatmap here")
    add_overwrite(mapping)


def _fractions(text: str) -> tuple:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--fractions takes three comma-separated numbers, got {text!r}") from None
    if len(values) != 3:
        raise InputError(f"--fractions takes three comma-separated numbers, got {text!r}")
    return values


def _train(args) -> dict:
    from glassfrac.learn.listi import PUBLISHED, Trainer, TrainSettings, evaluate, split_by_sample
    from glassfrac.learn.windows import WindowSpec, build_windows, load_probed

    check_file(args.output, args.overwrite)
    samples, named = load_probed(args.dataset)
    if named is None:
        split = split_by_sample(len(samples), _fractions(args.fractions), args.seed)
    else:
        number = {s.name: k for k, s in enumerate(samples)}
        split = {part: [number[n] for n in named.get(part, [])] for part in ("train", "validation", "test")}
    spec = WindowSpec(radius=args.radius, image_size=args.image_size)
    graphs = build_windows(samples, spec)
    settings = TrainSettings(epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, seed=args.seed,
                             augment=not args.no_augment, symmetrize=not args.no_symmetrize)
    model, record = Trainer(args.model, graphs, split, spec, settings, checkpoint=args.checkpoint).run()
    held_out = evaluate(model, samples, graphs, split["test"]) if split["test"] else {}
    model.info["held_out"] = held_out
    model.save(args.output)
    names = {part: [samples[k].name for k in v] for part, v in split.items()}
    return {"model": str(args.output), "kind": args.model, "dataset": str(args.dataset), "samples": names,
            "windows": record["windows"], "best_epoch": record.get("best_epoch"),
            "epochs_run": record.get("epochs_run"), "best_val_loss": record["best_val_loss"],
            "train_seconds": record["train_seconds"], "train_cpu_seconds": record["train_cpu_seconds"],
            "held_out": held_out,
            "published": PUBLISHED.get(args.model), "published_source": PUBLISHED["source"]}


def _map(args) -> dict:
    import numpy as np

    from glassfrac.labels.probe import ThresholdMap
    from glassfrac.learn.listi import ListiModel
    from glassfrac.mechanics.probe import ProbeSettings
    from glassfrac.structure import read

    check_file(args.output, args.overwrite)
    check_files([args.figure], args.overwrite, "--figure")
    model = ListiModel.load(args.model)
    structure = read(args.file, format=args.format)
    angle = float(np.radians(args.load_angle))
    result = model.predict_map(structure, grid=args.grid, load_angle=angle)
    seconds = result.pop("seconds")
    settings = ProbeSettings(grid=args.grid, r_free=model.spec.radius, load_angle=angle)
    ThresholdMap.from_result(result, settings, predicted_by={"model": str(args.model), "kind": model.kind}).save(
        args.output)
    out = {"file": str(args.file), "model": str(args.model), "kind": model.kind, "output": str(args.output),
           "grid": args.grid, "n_atoms": structure.n_atoms, "seconds": seconds,
           "threshold": {"min": float(result["threshold"].min()), "mean": float(result["threshold"].mean()),
                         "max": float(result["threshold"].max()), "unit": "N/m"}}
    if args.figure:
        from glassfrac.report.probe_plot import plot_threshold_map

        plot_threshold_map(result["threshold"], structure.box, path=args.figure,
                           title=f"LISTI {model.kind}: predicted Δτ")
        out["figure"] = str(args.figure)
    return out
