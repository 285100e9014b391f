"""``glassfrac softness train|predict``: atom-level SVM classifier and softness.

``train DATASET -o MODEL``: DATASET is a folder of extended XYZ files carrying the per-atom
0/1 array ``--label`` (one sample per file), or a campaign export (``glassfrac dataset
export``: ``.npz`` or folder). Output: the model file (safetensors) and, unless
``--no-evaluate``, held-out metrics from samples never seen in training (``held_out``:
sensitivity, specificity, accuracy, ROC AUC, confusion counts, flagged-fraction curve,
per-sample figures, and ``published`` figures for the label where a paper gives them).

``predict MODEL FILE -o OUT``: per-atom ``softness`` and ``predicted`` arrays written to OUT
(extended XYZ keeps them, for colouring in OVITO); if FILE carries the model's label, the
metrics on it are reported too.
"""

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import MODEL, PNG, STRUCTURE_OUTPUT, add_format, at_least, non_negative_int, positive_float
from glassfrac.core.errors import InputError
from glassfrac.core.outputs import check_file, check_files

DESCRIPTORS = ("fc22", "du21", "fc22-unloaded")


def register(subparsers) -> None:
    softness = subparsers.add_parser("softness", help="atom-level SVM classifier and softness (train, predict)",
                                     description="Atom-level SVM classifier and softness (FC22, DU21).")
    sub = softness.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    train = add_command(sub, "train", "train descriptor + SVM on per-atom labels, with held-out metrics", _train)
    train.add_argument("dataset", help="folder of .xyz files with the label array, or a campaign export")
    train.add_argument("-o", "--output", required=True, type=MODEL, help="model file to write (.safetensors)")
    train.add_argument("--label", default="first_break", help="per-atom 0/1 array to learn (default first_break)")
    train.add_argument("--descriptor", choices=DESCRIPTORS, default="fc22",
                       help="fc22: radial, strained copy (148 features for Si/O); du21: radial + angular; "
                            "fc22-unloaded: fc22 without the strained copy (default fc22)")
    train.add_argument("--species", default=None,
                       help="comma-separated central species to train on (default: all atoms)")
    train.add_argument("--kernel", choices=("linear", "rbf"), default="linear")
    train.add_argument("--C", default="0.01,0.1,1,10", help="comma-separated grid of C (default 0.01,0.1,1,10)")
    train.add_argument("--gamma", default="scale", help="comma-separated grid of gamma for rbf ('scale' or numbers)")
    train.add_argument("--folds", type=at_least(2), default=5, help="GroupKFold splits over samples (default 5)")
    train.add_argument("--scoring", default="balanced_accuracy", help="grid-search score (scikit-learn name)")
    train.add_argument("--negative-ratio", type=positive_float, default=None,
                       help="keep at most this many negatives per positive in training sets (default: all)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="seed of the negative subsampling")
    train.add_argument("--figure", metavar="PNG", type=PNG, default=None,
                       help="write ROC and flagged-fraction curves here")
    train.add_argument("--no-evaluate", action="store_true", help="skip the held-out (nested CV) evaluation")
    add_overwrite(train)

    predict = add_command(sub, "predict", "softness and predicted class of every atom of a structure", _predict)
    predict.add_argument("model", help="model file written by 'softness train'")
    predict.add_argument("file", help="structure file (extended XYZ, LAMMPS data or dump)")
    add_format(predict)
    predict.add_argument("-o", "--output", required=True, type=STRUCTURE_OUTPUT,
                         help="structure file to write (.xyz keeps the arrays)")
    add_overwrite(predict)


def descriptor_by_name(name: str):
    from glassfrac.analysis.structure_functions import du21_descriptor, fc22_descriptor

    if name == "fc22":
        return fc22_descriptor()
    if name == "du21":
        return du21_descriptor()
    if name == "fc22-unloaded":
        return fc22_descriptor().set_params(strain=None)
    raise InputError(f"unknown descriptor {name!r}; choose from {DESCRIPTORS}")


def _grid(text: str, name: str, allow_scale: bool = False) -> tuple:
    values = []
    for item in text.split(","):
        item = item.strip()
        if allow_scale and item in ("scale", "auto"):
            values.append(item)
            continue
        try:
            values.append(float(item))
        except ValueError:
            raise InputError(f"--{name} takes comma-separated numbers, got {item!r}") from None
    return tuple(values)


def _train(args) -> dict:
    from glassfrac.learn.svm import TrainingSettings, load_dataset, train

    check_file(args.output, args.overwrite)
    check_files([None if args.no_evaluate else args.figure], args.overwrite, "--figure")
    dataset = load_dataset(args.dataset, args.label)
    species = None if args.species is None else tuple(s.strip() for s in args.species.split(","))
    settings = TrainingSettings(kernel=args.kernel, C=_grid(args.C, "C"), gamma=_grid(args.gamma, "gamma", True),
                                n_splits=args.folds, scoring=args.scoring, negative_ratio=args.negative_ratio,
                                seed=args.seed)
    model, evaluation = train(dataset, descriptor_by_name(args.descriptor), species, settings,
                              evaluate=not args.no_evaluate)
    model.save(args.output)
    out = {"model": str(args.output), "dataset": str(args.dataset), "label": args.label,
           "descriptor": args.descriptor, "n_features": model.descriptor.n_features_out_,
           "species": None if species is None else list(species), "kernel": args.kernel,
           "n_samples": model.info["n_samples"], "n_atoms": model.info["n_atoms"],
           "n_positive": model.info["n_positive"], "skipped_samples": dataset.skipped,
           "chosen": model.info["chosen"], "cv_score": model.info["cv_score"]}
    if evaluation is not None:
        out["held_out"] = evaluation.summary()
        if args.figure:
            evaluation.plot(args.figure)
            out["figure"] = str(args.figure)
    return out


def _predict(args) -> dict:
    import numpy as np

    from glassfrac.learn.metrics import classification_metrics
    from glassfrac.learn.svm import SoftnessModel
    from glassfrac.structure import read, write

    check_file(args.output, args.overwrite)
    model = SoftnessModel.load(args.model)
    structure = read(args.file, format=args.format)
    annotated = model.annotate(structure)
    write(annotated, args.output)
    s = annotated.arrays["softness"]
    classified = ~np.isnan(s)
    out = {"file": str(args.file), "output": str(args.output), "n_atoms": structure.n_atoms,
           "n_classified": int(classified.sum()), "n_predicted": int((s[classified] > 0).sum()),
           "softness": {"min": float(np.min(s[classified])), "mean": float(np.mean(s[classified])),
                        "max": float(np.max(s[classified]))} if classified.any() else None,
           "label": model.label}
    if model.label in structure.arrays:
        metrics = classification_metrics(np.asarray(structure.arrays[model.label])[classified], s[classified])
        out["metrics"] = metrics
    return out
