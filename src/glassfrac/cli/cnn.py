"""``glassfrac cnn train|predict|scan`` and ``glassfrac explain``: image models (FC22).

``cnn train DATASET --target mu2|strain|location|crack -o MODEL``: DATASET is a folder of
extended XYZ files, one sample each, with the targets in ``info`` (``mu2`` — measured from the
rings if absent —, ``rupture_strain``, ``rupture_location`` in Å of the undeformed sample) and
the per-atom 0/1 array ``crack``; or a campaign export (``glassfrac dataset export``, ``.npz`` or
folder). Samples without the target are left out (listed under ``dropped``). Every sample is
rendered (FC22 photon model, :mod:`glassfrac.learn.images`), split 72/8/20 by sample, the
ResNet trained with Adam keeping the best validation epoch, and evaluated on the test samples
with 64 augmented copies each (R², MAE for scalars; periodic distance in Å for locations; MCC
per sample for cracks), next to a trivial baseline. A checkpoint ``MODEL.checkpoint`` is
written after every epoch; running the same command again resumes from it (a larger
``--epochs`` trains on, with ``--overwrite`` to replace the finished model file).

``cnn predict MODEL FILE``: the prediction for one structure (value; location in Å; for crack
the per-atom intensity, written as the array ``crack_score`` with ``-o``). ``predict`` and
``explain`` render a structure whose box is far from the training size (more than 25 % off in
pixel size, e.g. from a microscope image) at the training pixel size instead
(:func:`~glassfrac.learn.gradcam.render_for_model`).

``cnn scan MODEL DATASET...``: a strain model slid over larger samples (rendered at the training
pixel size); P(true rupture site inside the lowest-predicted fraction of the area; chance: the
fraction itself). A heat-map location model (``--head heatmap``) is applied to the whole larger
sample instead, and the area is selected from the most probable pixels down.

``cnn train`` options beyond FC22: ``--head heatmap`` (location: a logit per pixel and their
periodic centroid; the pooled FC22 head cannot follow shifts of the input by the network stride),
``--location-loss heatmap`` (cross-entropy against a periodic Gaussian of ``--heatmap-sigma`` px),
``--skips`` (crack: U-Net decoder), ``--crack-loss distribution`` (crack: cross-entropy of the map
against the noise-free target, normalised).

``explain MODEL FILE -o DIR``: Grad-CAM attention at every residual stage (averaged over the
64 copies), overlaid on the sample (``attention.png``; ``attention_field.png`` for location
models), the maps (``attention.npz``) and ``explain.json``: participation ratio, correlation
with the defect map, with the per-atom energy (``--potential``) and the distance from the
attention peak to the rupture site (when the file has ``rupture_location``).
"""

import json
from pathlib import Path

import numpy as np

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import (
    MODEL,
    PNG,
    STRUCTURE_OUTPUT,
    add_format,
    non_negative_int,
    positive_float,
    positive_int,
)
from glassfrac.core.errors import InputError
from glassfrac.core.jsonable import to_jsonable
from glassfrac.core.outputs import OutputFolder, check_file, check_files


def register(subparsers) -> None:
    cnn = subparsers.add_parser("cnn", help="image models: ResNet regressors and crack path (train, predict, scan)",
                                description="Image-based predictors of FC22: ResNet regressors and crack-path model.")
    sub = cnn.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    train = add_command(sub, "train", "train a ResNet on rendered images of a dataset, with test metrics", _train)
    train.add_argument("dataset", help="folder of .xyz files with targets in info, or a campaign export")
    train.add_argument("--target", required=True, choices=("mu2", "strain", "location", "crack"))
    train.add_argument("-o", "--output", required=True, type=MODEL, help="model file to write (.safetensors)")
    train.add_argument("--arch", default="small", choices=("small", "resnet18", "resnet50"),
                       help="network (default small, for CPU; FC22: resnet50)")
    train.add_argument("--epochs", type=positive_int, default=100)
    train.add_argument("--batch-size", type=positive_int, default=32)
    train.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    train.add_argument("--patience", type=positive_int, default=None,
                       help="stop after this many epochs without improvement")
    train.add_argument("--seed", type=non_negative_int, default=0, help="seed of split, augmentation, initial weights")
    train.add_argument("--shifts", type=non_negative_int, default=16, help="random translations per sample (x 4 flips)")
    train.add_argument("--copies-per-epoch", type=positive_int, default=1,
                       help="augmented copies of each sample per epoch")
    train.add_argument("--val-copies", type=positive_int, default=8, help="copies of each validation sample per epoch")
    train.add_argument("--size", type=positive_int, default=128, help="input image side, px (FC22: 128)")
    train.add_argument("--pixels", type=positive_int, default=256,
                       help="pixels across the box before rebinning (FC22: 256)")
    train.add_argument("--crop", default="square", choices=("square", "cell"),
                       help="image of the square at the cell corner (FC22) or of the whole cell resampled to a "
                            "square (non-square cells: every atom and rupture site inside)")
    train.add_argument("--head", default="regression", choices=("regression", "heatmap"),
                       help="location: pooled regression (FC22) or heat map with periodic centroid (default "
                            "regression; heatmap locates, the pooled head is blind to stride shifts)")
    train.add_argument("--location-loss", default="fc22", choices=("fc22", "heatmap"),
                       help="location: FC22 periodic loss on x, y, or cross-entropy of the heat map (--head heatmap)")
    train.add_argument("--heatmap-sigma", type=positive_float, default=2.0, help="σ of the heat-map target, px")
    train.add_argument("--crack-loss", default="mse", choices=("mse", "distribution"),
                       help="crack: MSE on the noisy target (FC22) or cross-entropy against it as a distribution")
    train.add_argument("--skips", action="store_true",
                       help="crack: U-Net decoder that concatenates the encoder stage maps")
    train.add_argument("--figure", metavar="PNG", type=PNG, default=None, help="test-set predictions figure")
    add_overwrite(train)

    predict = add_command(sub, "predict", "predict the target of one structure with a trained model", _predict)
    predict.add_argument("model", help="model file written by 'cnn train'")
    predict.add_argument("file", help="structure file (extended XYZ, LAMMPS data or dump)")
    add_format(predict)
    predict.add_argument("-o", "--output", default=None, type=STRUCTURE_OUTPUT,
                         help="crack models: structure file with 'crack_score'")
    add_overwrite(predict)

    scan_cmd = add_command(sub, "scan", "strain model slid over (or heat-map location model applied to) larger "
                                        "samples: P(rupture inside) vs area",
                           _scan)
    scan_cmd.add_argument("model", help="strain or heat-map location model written by 'cnn train'")
    scan_cmd.add_argument("dataset", nargs="+", help="larger samples with rupture_location in info (folders or "
                                                     "exports)")
    scan_cmd.add_argument("--stride", type=positive_int, default=16, help="window step, px")
    scan_cmd.add_argument("--figure", metavar="PNG", type=PNG, default=None, help="P(inside) against the area fraction")
    add_overwrite(scan_cmd)

    explain = add_command(subparsers, "explain", "Grad-CAM attention of an image model on one structure",
                          _explain)
    explain.add_argument("model", help="model file written by 'cnn train' (mu2, strain or location)")
    explain.add_argument("file", help="structure file")
    add_format(explain)
    explain.add_argument("-o", "--output", required=True, help="folder for figures, maps and explain.json")
    explain.add_argument("--potential", default=None,
                         help="potential for the per-atom energy U (yukawa2d, watanabe): correlation of G with U")
    add_overwrite(explain)


def _train(args) -> dict:
    from glassfrac.learn.images import ImageSettings, load_images
    from glassfrac.learn.resnet import ResNetConfig
    from glassfrac.learn.training import TrainSettings, train_and_evaluate

    check_file(args.output, args.overwrite)
    check_files([args.figure], args.overwrite, "--figure")
    image_settings = ImageSettings(size=args.size, pixels=args.pixels, render_seed=args.seed, crack_seed=args.seed,
                                   crop=args.crop)
    data = load_images(args.dataset, args.target, image_settings)
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                             seed=args.seed, n_shifts=args.shifts, copies_per_epoch=args.copies_per_epoch,
                             val_copies=args.val_copies, head=args.head, location_loss=args.location_loss,
                             heatmap_sigma=args.heatmap_sigma, crack_loss=args.crack_loss)
    output = Path(args.output)
    checkpoint = output.with_name(output.name + ".checkpoint")
    config = ResNetConfig.preset(args.arch, skips=args.skips)
    model, record = train_and_evaluate(data, config, settings, checkpoint)
    model.save(output)
    test = record["test"]
    if args.figure:
        _figure(args.figure, args.target, test)
    history = record["history"]
    return {"model": str(output), "checkpoint": str(checkpoint), "target": args.target, "arch": args.arch,
            "head": model.head, "skips": config.skips if args.target == "crack" else None,
            "n_samples": record["n_samples"], "dropped": len(record["dropped"]), "best_epoch": record["best_epoch"],
            "epochs_run": len(history), "images_per_second": _throughput(history),
            "test": {k: _short(v) for k, v in test.items() if k in ("model", "baseline")},
            "published": record["published"]}


def _throughput(history) -> float | None:
    seconds = sum(h["seconds"] for h in history)
    return sum(h["images"] for h in history) / seconds if seconds else None


def _short(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("errors", "mcc")}


def _figure(path, target, test) -> None:
    from glassfrac.report.attention import plot_mcc, plot_predictions

    if target == "crack":
        plot_mcc(test["model"]["mcc"], path, test["baseline"]["mean_mcc"])
        return
    metrics = {f"model {k}": v for k, v in test["model"].items() if k in ("r2", "mae", "mean_error", "mean_mcc")}
    plot_predictions(test["truth"], test["predicted"], path, target, metrics=metrics)


def _predict(args) -> dict:
    from glassfrac.learn.gradcam import render_for_model
    from glassfrac.learn.images import angstrom, fractional
    from glassfrac.learn.training import ImageModel, atom_values
    from glassfrac.structure import read, write

    check_files([args.output], args.overwrite)
    model = ImageModel.load(args.model)
    structure = read(args.file, format=args.format)
    rendered = render_for_model(model, structure)
    prediction = model.predict(rendered.image[None])[0]
    out = {"model": args.model, "file": args.file, "target": model.task}
    if model.task in ("mu2", "strain"):
        out["prediction"] = float(prediction)
    elif model.task == "location":
        out["prediction"] = angstrom(rendered.pixel_map, prediction)
        out["unit"] = "angstrom"
    else:
        values = atom_values(prediction, fractional(rendered.pixel_map, structure.positions[rendered.atoms, :2]))
        score = np.full(structure.n_atoms, np.nan)
        score[rendered.atoms] = values
        top = np.zeros(structure.n_atoms, np.int8)
        k = max(1, int(round(0.1 * len(values))))
        top[rendered.atoms[np.argsort(-values, kind="stable")[:k]]] = 1
        out.update(n_imaged_atoms=len(values), n_predicted_crack=int(top.sum()))
        if args.output:
            structure.set_array("crack_score", score)
            structure.set_array("crack_predicted", top)
            write(structure, args.output)
            out["output"] = args.output
    return out


def _scan(args) -> dict:
    from glassfrac.learn.gradcam import inside_probability, location_probability, render_like_training, scan
    from glassfrac.learn.images import location_fraction, read_structures
    from glassfrac.learn.training import ImageModel

    check_files([args.figure], args.overwrite, "--figure")
    model = ImageModel.load(args.model)
    if "pixel_size" not in model.info:
        raise InputError("the model file does not record its training pixel size", args.model)
    structures, names = [], []
    for path in args.dataset:
        more, more_names = read_structures(path)
        structures += more
        names += [f"{Path(path).stem}/{name}" for name in more_names] if len(args.dataset) > 1 else more_names
    maps, locations, used = [], [], []
    for structure, name in zip(structures, names, strict=True):
        location = structure.info.get("rupture_location")
        if location is None:
            continue
        rendered = render_like_training(model, structure, model.info["pixel_size"], model.image_settings.render_seed)
        step = model.config.stride if model.task == "location" else args.stride
        side = rendered.image.shape[0] // step * step
        u = location_fraction(structure, rendered.pixel_map, location)
        if u is None or side < model.image_settings.size:
            continue
        image = rendered.image[:side, :side]
        maps.append(-location_probability(model, image) if model.task == "location" else scan(model, image,
                                                                                               args.stride))
        locations.append(u * rendered.image.shape[0] / side)
        used.append(name)
    if not maps:
        raise InputError(f"no sample of {', '.join(map(str, args.dataset))} with a rupture_location inside its "
                         f"image and at least the model's size")
    fractions = np.linspace(0.05, 1.0, 20)
    p = inside_probability(maps, locations, fractions)
    if args.figure:
        from glassfrac.report.attention import plot_inside_probability

        plot_inside_probability(fractions, p, args.figure)
    return {"model": args.model, "samples": used, "fractions": fractions, "p_inside": p,
            "p_inside_at_25_percent": float(np.interp(0.25, fractions, p)), "chance_at_25_percent": 0.25,
            "published": {"source": "FC22", "p_inside_at_25_percent": 0.75}}


def _explain(args) -> dict:
    from glassfrac.core.files import atomic_open, atomic_path
    from glassfrac.learn.gradcam import explain
    from glassfrac.learn.training import ImageModel
    from glassfrac.report.attention import plot_attention, plot_attention_field
    from glassfrac.structure import read

    folder = OutputFolder(args.output, "explain", args.overwrite, names=("attention.npz", "explain.json"))
    model = ImageModel.load(args.model)
    structure = read(args.file, format=args.format)
    energies = None
    if args.potential:
        from glassfrac.potentials import get_potential

        energies = get_potential(args.potential).evaluate([structure], per_atom=True)[0]["per_atom_energy"]
        energies = np.asarray(energies, float)
    result = explain(model, structure, energies)
    location = structure.info.get("rupture_location")
    figures = []
    for name, maps in result["maps"].items():
        path = folder.file("attention.png" if name == "t" else f"attention_{name}.png")
        plot_attention(result["image"], maps, result["pixel_map"], path, result["defects"], location,
                       {r: {"φ": s["phi"], "ρ(G,D)": s["rho_defects"]} for r, s in result["stats"][name].items()},
                       title=f"{model.task} model, prediction {np.round(result['prediction'], 3)}")
        figures.append(str(path))
    if "divergence" in result:
        r = max(result["maps"]["x"])
        path = folder.file("attention_field.png")
        plot_attention_field(result["image"], result["maps"]["x"][r], result["maps"]["y"][r], result["divergence"],
                             result["pixel_map"], path, location, result["prediction"])
        figures.append(str(path))
    arrays = {"image": result["image"]}
    for name, maps in result["maps"].items():
        arrays.update({f"G_{name}_r{r}": g for r, g in maps.items()})
    if result["defects"] is not None:
        arrays["defects"] = result["defects"]
    with atomic_path(folder.file("attention.npz")) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    summary = {"model": args.model, "file": args.file, "target": model.task, "prediction": result["prediction"],
               "pixel_size": result["pixel_map"].pixel_size, "stats": result["stats"], "figures": figures}
    with atomic_open(folder.file("explain.json")) as handle:
        json.dump(to_jsonable(summary), handle, indent=1)
    summary["removed_stale"] = folder.finish()
    return summary
