"""How each shipped model is built from its dataset: ``glassfrac models NAME --build``.

A :class:`Recipe` names the registry entry, the kind of model (:data:`~glassfrac.learn.registry.KINDS`),
the dataset folder of the repository it trains from (``datasets/NAME/dataset.npz``, made by the campaign
tool and ``glassfrac dataset merge``) and its training settings. :func:`build` trains it, measures its
held-out metrics with their bootstrap spread over test samples, and registers the model file with its
card (:func:`~glassfrac.learn.registry.register_model`), whose ``rebuild`` is the command that did it.

Every model of a dataset uses one split by sample index (:func:`role`): 72 % training, 8 % validation,
20 % test; the card's metrics are on the test samples, with their bootstrap spread over those samples.

Softness SVMs (FC22's first broken bond), fitted on the training samples (C by cross-validation over
them): sensitivity and specificity at the SVM's own threshold (0), balanced accuracy (FC22's balanced test
set: as many negatives as positives, which is what balanced accuracy weighs), ROC AUC, the fraction of test
samples whose first broken bond has an atom among the 5 % and 10 % softest, and the mean log-probability
the calibrated first-break distribution gives the true first broken bond, beside uniform guessing's (nats;
the temperature of :func:`~glassfrac.learn.svm.fit_break_temperature` is fitted with the shipped model on
the validation samples). Training keeps all positives and ``negative_ratio`` times as many negatives per
training set (kernel SVMs scale as n²); test atoms are never subsampled.

Image models (FC22's ResNets on rendered images of the undeformed sample), trained by
:func:`~glassfrac.learn.training.train_and_evaluate` with the validation samples for early stopping;
metrics on the test samples (augmentation-averaged predictions) with their bootstrap spread over those samples:
R², MAE and the same for the training-mean baseline (``mu2``, ``rupture-strain``), the periodic location
error in Å and that of the training circular-mean location (``rupture-location``).

LISTI threshold-map GNN (LISTI25), trained on the probed windows of the dataset (its ``window_`` table: the
probe stage's Δτ maps) with the validation samples for early stopping: on the test samples, the Pearson
correlation and RMSE (N/m) of predicted and probed Δτ over their windows (bootstrap over samples), and the
mean goodness C of the predicted map for each sample's shear events (1–6) beside that of the probed map.
"""

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.core.provenance import now
from glassfrac.learn import images, listi, oxide_softness, svm, training
from glassfrac.learn.exports import export_structure, read_export, read_npz, shear_event_sites
from glassfrac.learn.metrics import bootstrap_by_sample, bootstrap_mean, flagged_fraction, regression_metrics
from glassfrac.learn.registry import IMAGE_TASKS, ModelCard, register_model
from glassfrac.learn.resnet import ResNetConfig
from glassfrac.learn.windows import ProbedSample, WindowSpec, build_windows


@dataclass(frozen=True)
class Recipe:
    """A shipped model: registry ``name``, ``kind``, the ``dataset`` folder it trains from (relative to the
    repository root), the ``potential`` and ``structure_kind`` of that dataset, and trainer ``settings``."""

    name: str
    kind: str
    dataset: str
    potential: str
    structure_kind: str
    settings: dict = field(default_factory=dict)
    version: str = "1"

    @property
    def image(self) -> bool:
        return self.kind in IMAGE_TASKS

    @property
    def rebuild(self) -> str:
        return f"glassfrac models {self.name} --build"


SOFTNESS_SETTINGS = {"kernel": "linear", "C": (0.001, 0.01, 0.1, 1.0), "negative_ratio": 5.0, "n_splits": 5}
"""Linear SVM, C by 5-fold cross-validation over the training samples, 5 negatives per positive in training
(FC22 trained on balanced sets; libsvm's time grows about as the square of the atoms: on the 720 training
monolayers 20 negatives per positive had not finished its grid in 9 CPU-minutes, 5 took 62 CPU-s)."""
IMAGE_SETTINGS = {"arch": "small", "image": {"crop": "cell", "size": 64, "pixels": 128},
                  "train": {"epochs": 150, "batch_size": 16, "copies_per_epoch": 4, "val_copies": 16, "patience": 20}}
MU2_SETTINGS = {**IMAGE_SETTINGS, "train": {**IMAGE_SETTINGS["train"], "scalar_loss": "huber"}}
"""The mu2 models train with the Huber loss: one monolayer of the 1000 (index 898, a bond lost in relaxation:
62 rings, mu2 4.1 where the others lie in 0.19–1.1) sits 13 σ off. On the same test samples, R² 0.904 → 0.938
and MAE 0.050 → 0.038 (monolayers), 0.837 → 0.878 and 0.065 → 0.051 (bilayers). The rupture-strain model keeps
the squared error: it gained nothing from the Huber loss (R² 0.828 → 0.818), nor from 128-px inputs (0.72)."""
LISTI_SETTINGS = {"model": "gnn", "train": {"epochs": 200, "batch_size": 32, "patience": 25}}
"""LISTI25's graph network; training stops 25 epochs after the best validation loss."""
OXIDE_SOFTNESS_SETTINGS = {"C": (0.001, 0.01, 0.1, 1.0), "n_splits": 5}
"""DU21's linear SVM on balanced p_hop labels; C by grouped 5-fold cross-validation over the training samples
(DU21 used C = 1)."""
LOCATION_SETTINGS = {**IMAGE_SETTINGS, "train": {**IMAGE_SETTINGS["train"], "head": "heatmap",
                                                 "location_loss": "heatmap"}}
RECIPES = {r.name: r for r in (
    Recipe("softness-bilayer", "softness-bilayer", "datasets/bilayer-tension", "watanabe", "bilayer",
           SOFTNESS_SETTINGS),
    Recipe("softness-monolayer", "softness-monolayer", "datasets/monolayer-tension", "yukawa2d", "monolayer",
           SOFTNESS_SETTINGS),
    Recipe("mu2-monolayer", "mu2", "datasets/monolayer-tension", "yukawa2d", "monolayer", MU2_SETTINGS),
    Recipe("rupture-strain-monolayer", "rupture-strain", "datasets/monolayer-tension", "yukawa2d", "monolayer",
           IMAGE_SETTINGS),
    Recipe("rupture-location-monolayer", "rupture-location", "datasets/monolayer-tension", "yukawa2d",
           "monolayer", LOCATION_SETTINGS),
    Recipe("mu2-bilayer", "mu2", "datasets/bilayer-tension", "watanabe", "bilayer", MU2_SETTINGS),
    Recipe("rupture-strain-bilayer", "rupture-strain", "datasets/bilayer-tension", "watanabe", "bilayer",
           IMAGE_SETTINGS),
    Recipe("rupture-location-bilayer", "rupture-location", "datasets/bilayer-tension", "watanabe", "bilayer",
           LOCATION_SETTINGS),
    Recipe("listi-gnn-monolayer", "listi-gnn", "datasets/monolayer-shear", "yukawa2d", "monolayer", LISTI_SETTINGS),
    Recipe("softness-alumina", "oxide-softness", "datasets/alumina-softness", "matsui", "bulk",
           OXIDE_SOFTNESS_SETTINGS),
)}
"""The recipes of the shipped models, by registry name."""


def recipe(name: str) -> Recipe:
    """The recipe called ``name`` (an :class:`InputError` naming the known ones otherwise)."""
    if name not in RECIPES:
        raise InputError(f"no recipe for a model named {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def build(name: str, registry, dataset=None, overwrite: bool = False, seed: int = 0) -> dict:
    """Train the model of recipe ``name`` from ``dataset`` (a dataset folder; default: the recipe's, relative
    to the working directory), register it in the folder ``registry`` and return its card and the details
    of the evaluation (JSON values)."""
    r = recipe(name)
    folder = Path(dataset if dataset is not None else r.dataset)
    path = folder / "dataset.npz"
    if not path.is_file():
        raise InputError(f"dataset file not found (build it with 'glassfrac dataset merge {folder}')", path)
    target = Path(registry)
    for suffix in (".safetensors", ".json"):  # refuse before the training, not after it
        if (target / f"{r.name}{suffix}").exists() and not overwrite:
            raise InputError("model file exists (pass --overwrite to replace it)", target / f"{r.name}{suffix}")
    cpu = time.process_time()
    trainer = (_image if r.image else train_threshold_model if r.kind == "listi-gnn"
               else _oxide_softness if r.kind == "oxide-softness" else _softness)
    model, details, table = trainer(r, path, seed)
    seconds = time.process_time() - cpu
    card = {"name": r.name, "version": r.version, "kind": r.kind, "description": "",
            "training": {**table, "dataset": str(folder)}, "metrics": details.pop("card_metrics"),
            "training_cpu_seconds": round(seconds, 1), "rebuild": r.rebuild, "created": now()}
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / f"{r.name}.safetensors"
        model.save(file)
        registered: ModelCard = register_model(file, card, target, overwrite=overwrite)
    return {"card": registered.to_dict(), "evaluation": details}


def role(index: int) -> str:
    """Where sample ``index`` of a dataset goes in every recipe: ``"test"`` (index % 5 == 4: 20 %),
    ``"validation"`` (index % 25 in {0, 13}: 8 %) or ``"train"`` (72 %). One split for every model of a dataset,
    by sample index, so the models of a dataset are compared on the same held-out samples
    (``benchmarks/compare.py``) and a grown dataset keeps the roles of its earlier samples."""
    if index % 5 == 4:
        return "test"
    return "validation" if index % 25 in (0, 13) else "train"


def dataset_roles(path) -> dict:
    """``{sample_id: role}`` of the samples of the dataset file ``path`` (:func:`role`)."""
    arrays = read_npz(path)
    return {str(name): role(int(index)) for name, index in zip(np.atleast_1d(arrays["sample_id"]),
                                                               np.atleast_1d(arrays["index"]), strict=True)}


def _softness(r: Recipe, path: Path, seed: int):
    """The softness SVM of ``r`` fitted on the training samples of the dataset file ``path`` (C by
    cross-validation over them), its first-break probability calibrated on the validation samples and its
    metrics measured on the test samples: (model, details, training table)."""
    dataset = svm.load_dataset(path, "first_break")
    roles = dataset_roles(path)
    index = {part: [k for k, name in enumerate(dataset.names) if roles[name] == part]
             for part in ("train", "validation", "test")}
    if min(len(v) for v in index.values()) < 2:
        raise InputError(f"the dataset has {', '.join(f'{len(v)} {k}' for k, v in index.items())} samples; each "
                         "part needs 2 or more", path)

    def subset(part):
        return svm.AtomDataset([dataset.structures[k] for k in index[part]], [dataset.names[k] for k in index[part]],
                               dataset.label)

    settings = svm.TrainingSettings(**{**r.settings, "seed": seed})
    model, _ = svm.train(subset("train"), settings=settings, evaluate=False)
    validation = subset("validation")
    y_val, g_val = validation.targets()
    s_val = np.concatenate([model.softness(s) for s in validation.structures])
    calibration = svm.fit_break_temperature(s_val, y_val, g_val)
    model.info["calibration"] = calibration
    test = index["test"]
    held_out = subset("test")
    y, groups = held_out.targets()
    scores = np.concatenate([model.softness(s) for s in held_out.structures])
    tested = svm.Evaluation(y, scores, groups, held_out.group_names, held_out.label, [])
    metrics = tested.bootstrap()
    caught = _caught_per_sample(y, scores, groups)
    for percent in (5, 10):
        metrics[f"first_break_in_top{percent}"] = bootstrap_mean((caught <= percent / 100).astype(float))
    broken = [g for g in np.unique(groups) if y[groups == g].any()]
    metrics["first_break_log_likelihood"] = bootstrap_mean(
        [_log_mass(scores[groups == g], y[groups == g] == 1, calibration["temperature"]) for g in broken])
    metrics["first_break_log_likelihood_uniform"] = bootstrap_mean(
        [np.log(np.mean(y[groups == g] == 1)) for g in broken])
    metrics = {k: {kk: v[kk] for kk in ("value", "low", "high", "std", "n_samples")} for k, v in metrics.items()}
    facts = _dataset_facts(path, dataset.names)
    table = {"potential": r.potential, "structure_kind": r.structure_kind, "species": facts["species"],
             "atoms": facts["atoms"], "mu2": facts["mu2"], "samples": len(dataset.names),
             "labels": int(sum(s.n_atoms for s in dataset.structures)), "test_samples": len(test)}
    summary = tested.summary()
    details = {"card_metrics": metrics, "calibration": calibration, "chosen": model.info["chosen"],
               "flagged_to_catch": summary.get("flagged_curve", {}).get("flagged_to_catch"),
               "at_published_specificity": summary.get("at_published_specificity"),
               "test_samples_without_break": int(len(test) - len(caught)), "skipped_samples": dataset.skipped}
    return model, details, table


def _oxide_softness(r: Recipe, path: Path, seed: int):
    """DU21's softness SVM fitted on the labelled Al of the training and validation samples of the oxide dataset
    file ``path`` (:mod:`glassfrac.campaign.oxide_dataset`; C by GroupKFold over those samples, nothing to stop
    early), measured on its test samples: accuracy (DU21's figure; the labels are balanced per label time),
    balanced accuracy, sensitivity, specificity and ROC AUC with their bootstrap spread over test samples, and
    the accuracy of the same SVM on the radial structure functions alone (DU21: 0.79)."""
    arrays = read_npz(path)
    index = np.asarray(arrays["index"])
    sample_of = np.repeat(np.arange(len(index)), np.diff(np.asarray(arrays["label_start"])))
    X, y = np.asarray(arrays["features"], float), np.asarray(arrays["label"]).astype(np.int8)
    test = np.array([role(int(i)) == "test" for i in index])[sample_of]
    if len(np.unique(sample_of[test])) < 2 or len(np.unique(sample_of[~test])) < 2:
        raise InputError("the dataset needs labelled Al in 2 or more training and 2 or more test samples", path)
    settings = oxide_softness.SoftnessSettings(C=r.settings["C"], n_splits=r.settings["n_splits"], seed=seed)
    names = [f"sample {int(i)}" for i in index]

    def fit(columns):
        estimator, C = oxide_softness.fit_linear_svm(X[~test, :columns], y[~test], sample_of[~test], settings)
        scores = svm.SoftnessModel.from_pipeline(None, estimator).softness_from_features(X[test, :columns])
        return estimator, C, svm.Evaluation(y[test], scores, sample_of[test], names, oxide_softness.LABEL, [])

    def accuracy(truth, scores):
        return float(np.mean((scores > 0) == (truth == 1)))

    estimator, C, tested = fit(X.shape[1])
    _, radial_C, radial = fit(oxide_softness.du21_softness_descriptor(radial_only=True).n_features_out_)
    metrics = {"accuracy": bootstrap_by_sample(accuracy, tested.y, tested.scores, tested.groups), **tested.bootstrap(),
               "radial_only_accuracy": bootstrap_by_sample(accuracy, radial.y, radial.scores, radial.groups)}
    metrics = {k: {kk: v[kk] for kk in ("value", "low", "high", "std", "n_samples")} for k, v in metrics.items()}
    labels = json.loads(str(arrays["metadata"]))["definition"]["softness"]
    info = {"n_atoms": int((~test).sum()), "n_positive": int(y[~test].sum()), "chosen": {"svm__C": C},
            "inherent": bool(labels["inherent"]), "inherent_ftol": float(labels["inherent_ftol"])}
    model = svm.SoftnessModel.from_pipeline(oxide_softness.du21_softness_descriptor(), estimator, ("Al",),
                                            oxide_softness.LABEL, info)
    sizes = np.diff(np.asarray(arrays["atom_start"]))
    table = {"potential": r.potential, "structure_kind": r.structure_kind,
             "species": sorted({str(x) for x in np.unique(arrays["species"])}),
             "atoms": [int(sizes.min()), int(sizes.max())], "mu2": None, "samples": len(index), "labels": int(len(y)),
             "test_samples": int(len(np.unique(sample_of[test])))}
    details = {"card_metrics": metrics, "chosen_C": C, "radial_only_C": radial_C, "train_labels": int((~test).sum()),
               "test_labels": int(test.sum()), "pressures_GPa": sorted({float(p) for p in arrays["pressure_GPa"]}),
               "published": oxide_softness.DU21_PUBLISHED}
    return model, details, table


def _log_mass(scores, positive, temperature) -> float:
    """log of the first-break probability mass on the atoms ``positive`` of one sample (nats)."""
    p = svm.break_distribution(scores, temperature)
    return float(np.log(p[positive].sum()))


def _image(r: Recipe, path: Path, seed: int):
    """The image model of ``r`` trained on the dataset file ``path``: (model, details, training table)."""
    task = IMAGE_TASKS[r.kind]
    image_settings = images.ImageSettings(**r.settings["image"], render_seed=seed, crack_seed=seed)
    data = images.load_images(path, task, image_settings)
    roles = dataset_roles(path)
    split = {part: [k for k, name in enumerate(data.names) if roles[name] == part]
             for part in ("train", "validation", "test")}
    settings = training.TrainSettings(**r.settings["train"], seed=seed)
    model, record = training.train_and_evaluate(data, ResNetConfig.preset(r.settings["arch"]), settings, split=split)
    test = record["test"]
    truth, predicted = np.asarray(test["truth"], float), np.asarray(test["predicted"], float)
    index = np.arange(len(truth))
    if task == "location":
        errors = np.asarray(test["model"]["errors"])
        baseline = np.asarray(test["baseline"]["errors"])
        metrics = {"mean_error": bootstrap_mean(errors), "baseline_mean_error": bootstrap_mean(baseline)}
    else:
        position = {name: k for k, name in enumerate(data.names)}
        mean = float(np.mean(data.values[[position[name] for name in record["split"]["train"]]]))

        def r2(t, p):
            return regression_metrics(t, p)["r2"]

        metrics = {"r2": bootstrap_by_sample(r2, truth, predicted, index),
                   "mae": bootstrap_mean(np.abs(truth - predicted)),
                   "baseline_r2": bootstrap_by_sample(r2, truth, np.full(len(truth), mean), index)}
    metrics = {k: {kk: v[kk] for kk in ("value", "low", "high", "std", "n_samples")} for k, v in metrics.items()}
    used = [name for names in record["split"].values() for name in names]
    facts = _dataset_facts(path, used)
    table = {"potential": r.potential, "structure_kind": r.structure_kind, "species": facts["species"],
             "atoms": facts["atoms"], "mu2": facts["mu2"], "samples": len(used), "labels": len(used),
             "test_samples": len(truth), "pixel_size": record["pixel_size"]}
    details = {"card_metrics": metrics, "n_samples": record["n_samples"], "dropped": len(record["dropped"]),
               "best_epoch": record["best_epoch"], "epochs_run": len(record["history"]),
               "test": {k: {kk: vv for kk, vv in v.items() if kk not in ("errors",)} for k, v in test.items()
                        if k in ("model", "baseline")}, "published": record["published"]}
    return model, details, table


def train_threshold_model(r: Recipe, path: Path, seed: int):
    """The threshold-map network of ``r`` (``settings["model"]``: gnn, cnn, lstm or baseline) trained on the probed
    windows of the dataset file ``path``, split by sample as every model of the dataset: (model, details with the
    held-out metrics under ``card_metrics``, training table). The shipped GNN's recipe uses it, and so does
    ``benchmarks/compare.py`` for the CNN and LSTM it compares but does not ship."""
    metadata = json.loads(str(read_npz(path)["metadata"]))
    probe = metadata["definition"]["test_settings"].get("probe", {})
    angle, radius = float(np.radians(probe.get("load_angle", 0.0))), float(probe.get("r_free", 11.0))
    samples, roles = [], []
    for sample in read_export(path, tables=("event_", "window_")):
        if not len(sample.get("window_threshold", ())):
            continue
        samples.append(ProbedSample(sample["sample_id"], export_structure(sample), sample["window_threshold"],
                                    sample["window_centre"], angle, shear_event_sites(sample)))
        roles.append(role(sample["index"]))
    split = {part: [k for k, x in enumerate(roles) if x == part] for part in ("train", "validation", "test")}
    if min(len(v) for v in split.values()) < 2:
        raise InputError(f"the dataset has {', '.join(f'{len(v)} {k}' for k, v in split.items())} probed samples; "
                         "each part needs 2 or more", path)
    spec = WindowSpec(radius=radius)
    graphs = build_windows(samples, spec)
    settings = listi.TrainSettings(**r.settings["train"], seed=seed)
    model, record = listi.Trainer(r.settings["model"], graphs, split, spec, settings).run()
    test, predicted = listi.predict_windows_of(model, graphs, split["test"])
    evaluation = listi.evaluate(model, samples, graphs, split["test"], predicted)
    probed, groups = graphs.y[test].astype(float), graphs.sample[test]
    metrics = {"correlation": bootstrap_by_sample(lambda t, p: np.corrcoef(t, p)[0, 1], probed, predicted, groups),
               "rmse": bootstrap_by_sample(lambda t, p: np.sqrt(np.mean((t - p) ** 2)), probed, predicted, groups)}
    if "per_sample_goodness" in evaluation:  # test samples with shear events
        per_sample = evaluation["per_sample_goodness"]
        metrics.update(goodness=bootstrap_mean(per_sample["predicted"]),
                       probed_goodness=bootstrap_mean(per_sample["probed"]))
    metrics = {k: {kk: v[kk] for kk in ("value", "low", "high", "std", "n_samples")} for k, v in metrics.items()}
    facts = _dataset_facts(path, [s.name for s in samples])
    table = {"potential": r.potential, "structure_kind": r.structure_kind, "species": facts["species"],
             "atoms": facts["atoms"], "mu2": facts["mu2"], "samples": len(samples), "labels": len(graphs.y),
             "test_samples": len(split["test"])}
    details = {"card_metrics": metrics, "windows": record["windows"], "epochs_run": record.get("epochs_run"),
               "best_val_loss": record.get("best_val_loss"),
               "evaluation": evaluation}
    return model, details, table


def _caught_per_sample(y, scores, groups) -> np.ndarray:
    """Per sample with a first broken bond: the smallest fraction of its atoms, flagged softest first, that
    includes an atom of that bond (ties count against the model)."""
    out = []
    for g in np.unique(groups):
        m = groups == g
        if y[m].any():
            out.append(flagged_fraction(scores[m])[y[m] == 1].min())
    return np.asarray(out)


def _dataset_facts(path: Path, samples) -> dict:
    """Element set, atom-count range and measured mu2 range of the samples (ids) ``samples`` of the dataset."""
    arrays = read_npz(path)
    ids = np.asarray(arrays["sample_id"]).astype(str)
    keep = np.isin(ids, list(samples))
    start = np.asarray(arrays["atom_start"])
    sizes = np.diff(start)[keep]
    species = sorted({str(x) for k in np.flatnonzero(keep)
                      for x in np.unique(arrays["species"][start[k]:start[k + 1]])})
    mu2 = np.asarray(arrays["mu2"], float)[keep] if "mu2" in arrays else np.array([np.nan])
    return {"species": species, "atoms": [int(sizes.min()), int(sizes.max())],
            "mu2": [round(float(np.nanmin(mu2)), 4), round(float(np.nanmax(mu2)), 4)] if np.isfinite(mu2).any()
            else None}
