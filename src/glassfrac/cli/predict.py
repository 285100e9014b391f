"""``glassfrac models`` (the registered models and their cards; ``models NAME --build`` trains a shipped model
from its dataset, :mod:`glassfrac.learn.recipes`) and ``glassfrac predict FILE -o DIR``
(every applicable registered model on a structure file or a microscope image).

Models come from the shipped registry (``glassfrac/models/``), or from the folder ``--models`` or the
environment variable ``GLASSFRAC_MODELS`` names (:mod:`glassfrac.learn.registry`).

``predict`` writes into DIR (the output-folder rule of :mod:`glassfrac.core.outputs`):
``prediction.json`` (the printed object: per task its values, model name, version, training data and
``in_domain`` with the reasons; the tasks whose models do not apply and why), ``structure.extxyz`` (the
structure predicted on, with per-atom ``softness`` and ``soft_top10``), ``arrays.npz`` (per-atom values
and maps) and one figure per task (:mod:`glassfrac.report.prediction_plot`). Exit status 2 before any
work when no model is installed or the input cannot be read.
"""

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import add_format, positive_float

FILES = ("prediction.json", "structure.extxyz", "arrays.npz")
"""The files every ``predict`` run writes (figures besides)."""


def register(subparsers) -> None:
    m = add_command(subparsers, "models", "list the registered predictors and show each model card", _models)
    m.add_argument("--models", metavar="DIR", default=None,
                   help="registry folder (default: GLASSFRAC_MODELS, else the models shipped with glassfrac)")
    m.add_argument("name", nargs="?", default=None, help="show only this model")
    m.add_argument("--build", action="store_true",
                   help="train model NAME from its dataset (datasets/, run from the repository root) with its recipe, "
                        "measure its held-out metrics and register it with its card in the registry folder (default: "
                        "the package's own models folder)")
    m.add_argument("--dataset", metavar="DIR", default=None, help="with --build: the dataset folder (default: the "
                                                                  "recipe's)")
    add_overwrite(m)

    p = add_command(subparsers, "predict", "run every applicable registered model on a structure or an image",
                    _predict)
    p.add_argument("file", help="structure file (extxyz, LAMMPS data/dump, ...) or microscope image "
                                "(TIFF, PNG/JPEG, MRC, DM3/DM4, .npy; as 'glassfrac image')")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the prediction and figures")
    add_format(p)
    p.add_argument("--models", metavar="DIR", default=None,
                   help="registry folder (default: GLASSFRAC_MODELS, else the models shipped with glassfrac)")
    p.add_argument("--pixel-size", type=positive_float, default=None,
                   help="image input: Å per pixel (default: from the file, else estimated)")
    p.add_argument("--relax", action="store_true", help="image input: relax the built structure (Yukawa)")
    add_overwrite(p)


def _models(args) -> dict:
    from glassfrac.core.errors import InputError
    from glassfrac.learn.registry import SHIPPED, Registry

    if args.build:
        from glassfrac.learn.recipes import build

        if args.name is None:
            raise InputError("--build needs the NAME of the model to build")
        return build(args.name, args.models or SHIPPED, args.dataset, args.overwrite)
    if args.dataset is not None:
        raise InputError("--dataset goes with --build")
    registry = Registry.default(args.models)
    cards = [c.to_dict() for c in registry.cards() if args.name in (None, c.name)]
    if args.name is not None and not cards:
        raise InputError(f"no model named {args.name!r} in {registry.folder}")
    out = {"folder": str(registry.folder), "source": registry.source, "installed": len(cards), "models": cards}
    if not cards:
        out["message"] = ("no model is installed: the shipped models are trained from the repository's datasets "
                          "(datasets/) and none has been built yet")
    return out


def _predict(args) -> dict:
    import json

    from glassfrac.core.files import atomic_open
    from glassfrac.core.jsonable import to_jsonable
    from glassfrac.core.outputs import OutputFolder
    from glassfrac.imaging.prediction import predict_file, require_models, write_prediction_arrays
    from glassfrac.learn.registry import Registry
    from glassfrac.report.prediction_plot import figure_names, write_prediction_figures

    registry = Registry.default(args.models)
    require_models(registry)
    folder = OutputFolder(args.output, "predict", args.overwrite, names=FILES)
    prediction = predict_file(args.file, registry, args.format, args.pixel_size, args.relax)
    folder.check(figure_names(prediction).values())
    write_prediction_arrays(prediction, folder.file)
    out = {**prediction.to_dict(), "output": str(args.output),
           "figures": write_prediction_figures(prediction, folder.file)}
    with atomic_open(folder.file("prediction.json")) as handle:
        json.dump(to_jsonable(out), handle, indent=1)
    folder.finish(stale=False)
    return out
