"""Atom-level SVM classifier and softness (FC22 §6, DU21), trained with samples kept apart.

The chain is ``StructureFunctions`` (per-atom descriptors, :mod:`glassfrac.analysis.structure_functions`)
→ ``Pipeline(StandardScaler, SVC(kernel, class_weight="balanced"))``. Descriptors are
computed once per structure; the pipeline's C (and γ for RBF) are chosen by ``GridSearchCV``
with ``GroupKFold`` over samples, so the atoms of one sample never sit in both the training
and the validation part.

Decisions recorded here:

- Labels: any per-atom binary array of the structures (``first_break``, ``bond_changed``,
  ``crack`` from the loading stage, or one of your own), values 0/1. ``species`` restricts
  training and prediction to atoms of those central species (DU21 trains on Al only); the
  other atoms still enter as neighbours.
- Held-out evaluation (:func:`evaluate`) is nested: an outer ``GroupKFold`` over samples, a
  grid search with an inner ``GroupKFold`` on the training samples of each fold; every atom
  gets the score of the model that never saw its sample. Metrics are pooled over those atoms.
- ``negative_ratio`` (optional) keeps, in each training set only, all positives and at most
  that many times as many randomly chosen negatives (seeded): kernel SVMs scale as n², and
  positives can be < 0.1 % of atoms (FC22). Test atoms are never subsampled.
- Softness = signed distance to the decision boundary in the standardised feature space:
  f(x) / ‖w‖ with f the SVM decision value. For the linear kernel ‖w‖ is the norm of the
  weight vector (DU21's softness); for RBF it is the norm of w in the kernel's feature space,
  ‖w‖² = Σ_kl a_k a_l K(s_k, s_l) over support vectors s with dual coefficients a, so softness
  is the distance to the separating hyperplane in that space (same ranking as f).
- First-break probability (:meth:`SoftnessModel.break_probability`): one bond breaks first per sample,
  so the probability is a distribution over the atoms of a structure, p_i ∝ exp(−β q_i), q_i the fraction
  of the structure's atoms softer than atom i (:func:`break_distribution`), with the temperature β fitted
  on held-out samples (:func:`fit_break_temperature`) to make the mass on the atoms of the true first
  broken bond as likely as possible. The mass on the softest fraction q is (1 − e^(−βq)) / (1 − e^(−β)),
  whatever the number of atoms, so it does not depend on the size of the training samples (a per-atom
  logistic calibration would: its base rate is 2/N); and ranks are immune to the few atoms of extreme
  softness that would set the scale of exp(β s).
- A fitted model is held as arrays (scaler mean and scale; linear weights or support vectors,
  dual coefficients and γ; intercept) and evaluated with numpy, before and after saving, so a
  loaded model predicts exactly what the original did. Files (:mod:`glassfrac.learn.model_file`):
  safetensors with the arrays and a JSON header entry ``glassfrac`` (descriptor settings, feature names, label, training
  summary, versions); nothing is pickled or executed on load.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sklearn
from scipy.optimize import minimize_scalar
from scipy.spatial.distance import cdist
from scipy.special import logsumexp
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from glassfrac.analysis.structure_functions import StructureFunctions, fc22_descriptor
from glassfrac.core import VERSION
from glassfrac.core.config import TomlReader
from glassfrac.core.errors import InputError
from glassfrac.core.jsonable import to_jsonable
from glassfrac.core.schema import Key, Schema
from glassfrac.learn import model_file
from glassfrac.learn.exports import export_structure, read_export
from glassfrac.learn.metrics import (
    bootstrap_by_sample,
    classification_metrics,
    flagged_curve,
    plot_evaluation,
    rank_quantile,
    sensitivity_at_specificity,
)
from glassfrac.structure import Structure, read

MODEL_FORMAT = "glassfrac-softness-svm-1"

PUBLISHED = {"first_break": {
    "source": "FC22", "sensitivity": 0.994, "specificity": 0.96,
    "note": "2D silica bilayers of 3456 atoms, mu2 = 0.2; per the authors' code: 80/20 split by sample, "
            "training and test atoms subsampled to as many negatives as positives, samples whose first "
            "break broke more than one bond left out (reference/protocols.md §6)"}}
"""Published operating points per label, reported next to ours."""

DEFAULT_C = (0.01, 0.1, 1.0, 10.0)


# -- datasets ---------------------------------------------------------------------------------

@dataclass
class AtomDataset:
    """Samples for atom-level learning: ``structures`` carrying the per-atom binary array
    ``label`` (0/1; −1 leaves an atom out: it is a neighbour, never a centre), one unique
    ``names`` entry per structure. ``groups`` (default: the names) are the CV groups, one per
    structure: structures of one group (snapshots of one trajectory) never sit in both the
    training and the test part."""

    structures: list
    names: list
    label: str
    skipped: list = field(default_factory=list)
    groups: list | None = None

    def __post_init__(self):
        if len(self.structures) != len(self.names):
            raise InputError("one name per structure is needed")
        if len(set(self.names)) != len(self.names):
            raise InputError("sample names must be unique")
        self.groups = list(self.names if self.groups is None else self.groups)
        if len(self.groups) != len(self.names):
            raise InputError("one group per structure is needed")
        for s, name in zip(self.structures, self.names, strict=True):
            if self.label not in s.arrays:
                raise InputError(f"no per-atom array {self.label!r} (have {sorted(s.arrays)})", name)
            values = np.asarray(s.arrays[self.label])
            if not np.isin(values, (-1, 0, 1)).all():
                raise InputError(f"per-atom array {self.label!r} must hold 0/1 labels (-1: left out), found "
                                 f"{np.unique(values)[:5].tolist()}", name)

    @property
    def group_names(self) -> list:
        """The distinct groups, in order of first appearance."""
        return list(dict.fromkeys(self.groups))

    def masks(self, species=None) -> list:
        """Per sample: the atoms used as centres (labelled, of ``species``; all species if None)."""
        return [(np.asarray(s.arrays[self.label]) >= 0) & (species is None or np.isin(s.species, list(species)))
                for s in self.structures]

    def targets(self, species=None):
        """Labels (int8) and group index (into :attr:`group_names`) of the centre atoms,
        concatenated over samples."""
        masks = self.masks(species)
        y = np.concatenate([np.asarray(s.arrays[self.label])[m] for s, m in zip(self.structures, masks, strict=True)])
        index = {g: k for k, g in enumerate(self.group_names)}
        groups = np.concatenate([np.full(m.sum(), index[g]) for g, m in zip(self.groups, masks, strict=True)])
        return y.astype(np.int8), groups


def load_dataset(path, label: str) -> AtomDataset:
    """Samples from ``path``: a folder of extended XYZ files (``*.xyz``, ``*.extxyz``; one sample
    each, named by file stem), or a campaign export (``glassfrac dataset export``: a ``.npz``
    file or a folder with ``manifest.json``). Export samples whose ``label`` is missing (−1 or
    NaN) are skipped and listed in ``skipped``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        return _from_export(read_export(path, (label,)), label, path)
    if not path.is_dir():
        raise InputError("not a dataset: expected a folder of .xyz files, a campaign export folder "
                         "(manifest.json) or a .npz export", path)
    if (path / "manifest.json").is_file():
        return _from_export(read_export(path, (label,)), label, path)
    files = sorted(p for p in path.iterdir() if p.suffix in (".xyz", ".extxyz"))
    if not files:
        raise InputError("no .xyz/.extxyz files and no manifest.json in the folder", path)
    return AtomDataset([read(f) for f in files], [f.stem for f in files], label)


def _from_export(samples, label, path) -> AtomDataset:
    structures, names, skipped = [], [], []
    for a in samples:
        values, sample_id = a[label], a["sample_id"]
        if values is None or np.isnan(np.asarray(values, float)).any() or (np.asarray(values) < 0).any():
            skipped.append(sample_id)
            continue
        structures.append(export_structure(a, {label: np.asarray(values).astype(np.int8)}, {"sample_id": sample_id}))
        names.append(sample_id)
    if not structures:
        raise InputError(f"no sample of the export has the per-atom label {label!r}", path)
    return AtomDataset(structures, names, label, skipped)


# -- the fitted model -------------------------------------------------------------------------

class SoftnessModel:
    """Descriptor + standard scaler + binary SVM, held as arrays (module docstring).

    Linear: ``weights`` (n_features,); RBF: ``support_vectors`` (n_sv, n_features),
    ``dual_coef`` (n_sv,) and ``gamma``. All in the standardised feature space.
    """

    def __init__(self, descriptor: StructureFunctions, mean, scale, intercept: float, kernel: str = "linear",
                 weights=None, support_vectors=None, dual_coef=None, gamma: float | None = None,
                 species=None, label: str | None = None, info: dict | None = None):
        if kernel not in ("linear", "rbf"):
            raise InputError(f"kernel must be 'linear' or 'rbf', got {kernel!r}")
        self.descriptor = descriptor
        self.mean = np.asarray(mean, float)
        self.scale = np.asarray(scale, float)
        self.intercept = float(intercept)
        self.kernel = kernel
        self.species = None if species is None else tuple(species)
        self.label = label
        self.info = dict(info or {})
        if kernel == "linear":
            self.weights = np.asarray(weights, float)
            self.norm = float(np.sqrt(self.weights @ self.weights))
        else:
            self.support_vectors = np.asarray(support_vectors, float)
            self.dual_coef = np.asarray(dual_coef, float).ravel()
            self.gamma = float(gamma)
            self.norm = float(np.sqrt(self.dual_coef @ self._kernel_sum(self.support_vectors)))

    @classmethod
    def from_pipeline(cls, descriptor, pipeline, species=None, label=None, info=None) -> "SoftnessModel":
        """Extract the arrays of a fitted ``Pipeline(StandardScaler, SVC)``."""
        scaler, svc = pipeline.named_steps["scale"], pipeline.named_steps["svm"]
        if list(svc.classes_) != [0, 1]:
            raise InputError(f"expected classes [0, 1], got {list(svc.classes_)}")
        common = dict(species=species, label=label, info=info)
        if svc.kernel == "linear":
            return cls(descriptor, scaler.mean_, scaler.scale_, svc.intercept_[0], "linear",
                       weights=svc.coef_[0], **common)
        return cls(descriptor, scaler.mean_, scaler.scale_, svc.intercept_[0], "rbf",
                   support_vectors=svc.support_vectors_, dual_coef=svc.dual_coef_[0], gamma=svc._gamma, **common)

    # -- evaluation on features -------------------------------------------------------------
    def decision_from_features(self, features) -> np.ndarray:
        """SVM decision value f(x) of descriptor rows (n, n_features); > 0: class 1."""
        z = (np.asarray(features, float) - self.mean) / self.scale
        if self.kernel == "linear":
            return z @ self.weights + self.intercept
        return self._kernel_sum(z) + self.intercept

    def softness_from_features(self, features) -> np.ndarray:
        """Signed distance f(x) / ‖w‖ to the boundary (standardised units)."""
        return self.decision_from_features(features) / self.norm

    def _kernel_sum(self, z, rows: int = 2048) -> np.ndarray:
        """Σ_k a_k K(z, s_k) for each row of ``z``, ``rows`` rows at a time."""
        out = np.empty(len(z))
        for a in range(0, len(z), rows):
            out[a:a + rows] = np.exp(-self.gamma * cdist(z[a:a + rows], self.support_vectors, "sqeuclidean")) \
                @ self.dual_coef
        return out

    # -- evaluation on structures -----------------------------------------------------------
    def centre_mask(self, structure: Structure) -> np.ndarray:
        """Atoms the model classifies (its central species; all if none were set)."""
        return np.ones(structure.n_atoms, bool) if self.species is None else np.isin(structure.species, self.species)

    def softness(self, structure: Structure) -> np.ndarray:
        """Softness per atom (N,); NaN for atoms of other species than the model's."""
        mask = self.centre_mask(structure)
        out = np.full(structure.n_atoms, np.nan)
        out[mask] = self.softness_from_features(self.descriptor.transform_one(structure)[mask])
        return out

    def break_probability(self, structure: Structure) -> np.ndarray:
        """Probability (N,) that the first broken bond starts at each atom (module docstring): sums to 1
        over the classified atoms, 0 elsewhere. Needs the temperature of :func:`fit_break_temperature`
        in ``info["calibration"]``."""
        if "calibration" not in self.info:
            raise InputError("this model has no first-break calibration (info['calibration']); models "
                             "built by 'glassfrac models NAME --build' have one")
        return break_distribution(self.softness(structure), self.info["calibration"]["temperature"])

    def annotate(self, structure: Structure) -> Structure:
        """A copy with per-atom ``softness`` (float, NaN where not classified) and ``predicted``
        (int8: 1 event, 0 none, −1 not classified), for colouring in OVITO."""
        s = self.softness(structure)
        out = structure.copy()
        out.set_array("softness", s)
        out.set_array("predicted", np.where(np.isnan(s), -1, s > 0).astype(np.int8))
        return out

    # -- files ------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the model file (arrays, JSON header entry ``glassfrac``), atomically."""
        tensors = {"scaler.mean": self.mean, "scaler.scale": self.scale, "svm.intercept": np.array([self.intercept])}
        if self.kernel == "linear":
            tensors["svm.weights"] = self.weights
        else:
            tensors.update({"svm.support_vectors": self.support_vectors, "svm.dual_coef": self.dual_coef,
                            "svm.gamma": np.array([self.gamma])})
        params = self.descriptor.get_params()
        params["species"] = list(self.descriptor.species_)
        meta = {"format": MODEL_FORMAT, "kernel": self.kernel, "label": self.label,
                "species": None if self.species is None else list(self.species),
                "descriptor": {"class": "StructureFunctions", "params": params,
                               "feature_names": self.descriptor.get_feature_names_out().tolist()},
                "info": self.info, "versions": _versions()}
        model_file.write(path, {k: np.asarray(v, np.float64) for k, v in tensors.items()}, meta)

    @classmethod
    def load(cls, path) -> "SoftnessModel":
        """Rebuild a model saved by :meth:`save` (no code is executed from the file)."""
        meta, tensors = model_file.read(path, MODEL_FORMAT, "softness model", MODEL_META)
        t = {k: v.numpy() for k, v in tensors.items()}
        reader = TomlReader(path)
        entry = DESCRIPTOR_META.read(reader, meta["descriptor"], "metadata.descriptor")
        params = DESCRIPTOR_PARAMS.read(reader, entry["params"], "metadata.descriptor.params")
        params["radial_centers"] = tuple(params["radial_centers"])
        params["angular"] = tuple(tuple(p) for p in params["angular"])
        params["species"] = tuple(params["species"])
        descriptor = StructureFunctions(**params).fit()
        if descriptor.get_feature_names_out().tolist() != entry["feature_names"]:
            raise InputError("the descriptor rebuilt from the file has other features than the saved ones", path)
        n = len(entry["feature_names"])
        vectors = {"scaler.mean": (n,), "scaler.scale": (n,), "svm.intercept": (1,)}
        if meta["kernel"] == "linear":
            vectors["svm.weights"] = (n,)
        else:
            k = len(t["svm.dual_coef"]) if "svm.dual_coef" in t else 0
            vectors.update({"svm.support_vectors": (k, n), "svm.dual_coef": (k,), "svm.gamma": (1,)})
        model_file.check_tensors(path, tensors, vectors)
        if not all(np.all(np.isfinite(v)) for v in t.values()) or np.any(t["scaler.scale"] <= 0):
            raise InputError("the model's arrays hold non-finite numbers or non-positive scales", path)
        common = dict(species=meta["species"], label=meta["label"], info=meta["info"])
        if meta["kernel"] == "linear":
            return cls(descriptor, t["scaler.mean"], t["scaler.scale"], t["svm.intercept"][0], "linear",
                       weights=t["svm.weights"], **common)
        return cls(descriptor, t["scaler.mean"], t["scaler.scale"], t["svm.intercept"][0], "rbf",
                   support_vectors=t["svm.support_vectors"], dual_coef=t["svm.dual_coef"],
                   gamma=t["svm.gamma"][0], **common)


MODEL_META = Schema((
    Key("kernel", str, help="SVM kernel", choices=("linear", "rbf")),
    Key("label", (str, type(None)), None, "per-atom label the model learnt"),
    Key("species", (list, type(None)), None, "centre species (null: all)", items=str, nonempty=True),
    Key("descriptor", dict, help="the descriptor: class, params, feature_names"),
    Key("info", dict, {}),
))
"""Metadata of a softness-model file (:meth:`SoftnessModel.load`)."""

DESCRIPTOR_META = Schema((
    Key("class", str, help="descriptor class", choices=("StructureFunctions",)),
    Key("params", dict, help="its parameters"),
    Key("feature_names", list, help="its feature names, in order", items=str, nonempty=True),
))

DESCRIPTOR_PARAMS = Schema((
    Key("species", list, help="species blocks", items=str, nonempty=True),
    Key("radial_centers", list, help="radial centres", unit="Å", items=float, nonempty=True),
    Key("radial_width", float, help="radial width", unit="Å", positive=True),
    Key("cutoff", float, help="radial cutoff", unit="Å", positive=True),
    Key("angular", list, (), "(ξ, λ, ζ) triples", items=list,
        check=lambda v: None if all(len(t) == 3 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                         for x in t) for t in v) else "triples of numbers"),
    Key("angular_cutoff", float, 5.0, "angular cutoff", "Å", positive=True),
    Key("strain", (float, type(None)), None, "strain of the affine copy"),
    Key("axis", int, 0, "axis of the affine copy", lo=0, hi=2),
    Key("max_triplets", int, 2_000_000, "triplets per pass", positive=True),
))


# -- training and held-out evaluation ---------------------------------------------------------

def pipeline(kernel: str = "linear", C: float = 1.0, gamma="scale"):
    """``Pipeline(StandardScaler, SVC(kernel, C, gamma, class_weight="balanced"))``."""
    return Pipeline([("scale", StandardScaler()),
                     ("svm", SVC(kernel=kernel, C=C, gamma=gamma, class_weight="balanced"))])


@dataclass
class TrainingSettings:
    """Hyper-parameter grid and CV of :func:`train`. ``gamma`` is used by RBF only ("scale":
    1 / (n_features · variance), i.e. 1 / n_features after standardising)."""

    kernel: str = "linear"
    C: tuple = DEFAULT_C
    gamma: tuple = ("scale",)
    n_splits: int = 5
    scoring: str = "balanced_accuracy"
    negative_ratio: float | None = None
    seed: int = 0

    def grid(self) -> dict:
        grid = {"svm__C": [float(c) for c in self.C]}
        if self.kernel == "rbf":
            grid["svm__gamma"] = list(self.gamma)
        return grid


@dataclass
class Evaluation:
    """Held-out scores (softness) of every centre atom, from the fold that did not train on its
    sample; ``folds`` records each fold's test samples and chosen hyper-parameters."""

    y: np.ndarray
    scores: np.ndarray
    groups: np.ndarray
    names: list
    label: str
    folds: list

    def summary(self) -> dict:
        """Pooled metrics, the flagged-fraction curve, per-sample metrics and published figures."""
        out = classification_metrics(self.y, self.scores)
        if self.y.any():
            curve = flagged_curve(self.y, self.scores, self.groups)
            out["flagged_curve"] = {"area": curve["area"], "flagged_to_catch": curve["flagged_to_catch"],
                                    "caught_at": curve["caught_at"],
                                    "flagged": curve["flagged"][::10], "caught": curve["caught"][::10]}
        out["per_sample"] = []
        for k, name in enumerate(self.names):
            m = self.groups == k
            if m.any():
                s = classification_metrics(self.y[m], self.scores[m])
                out["per_sample"].append({"sample": name, **{key: s[key] for key in (
                    "n_atoms", "n_positive", "sensitivity", "specificity", "accuracy", "roc_auc")}})
        out["folds"] = self.folds
        if self.label in PUBLISHED:
            out["published"] = PUBLISHED[self.label]
            if self.y.any() and not self.y.all():
                out["at_published_specificity"] = sensitivity_at_specificity(
                    self.y, self.scores, PUBLISHED[self.label]["specificity"])
        return out

    def bootstrap(self, n_resamples: int = 1000, seed: int = 0) -> dict:
        """Sensitivity, specificity, balanced accuracy and ROC AUC (threshold 0) with their spread over
        the held-out samples (:func:`~glassfrac.learn.metrics.bootstrap_by_sample`): the card metrics."""
        def rate(cls):
            return lambda y, s: float(np.mean((s[y == cls] > 0) == bool(cls))) if np.any(y == cls) else np.nan

        metrics = {"sensitivity": rate(1), "specificity": rate(0),
                   "balanced_accuracy": lambda y, s: (rate(1)(y, s) + rate(0)(y, s)) / 2,
                   "roc_auc": lambda y, s: classification_metrics(y, s)["roc_auc"]}
        return {name: bootstrap_by_sample(f, self.y, self.scores, self.groups, n_resamples, seed)
                for name, f in metrics.items()}

    def plot(self, path) -> None:
        plot_evaluation(self.y, self.scores, path, self.groups,
                        title=f"label {self.label!r}, held-out samples ({len(self.names)})",
                        reference=PUBLISHED.get(self.label))


def train(dataset: AtomDataset, descriptor: StructureFunctions | None = None, species=None,
          settings: TrainingSettings | None = None, evaluate: bool = True):
    """Fit descriptor + SVM on all samples; with ``evaluate``, also the held-out evaluation.

    Returns ``(model, evaluation)`` (``evaluation`` is None without ``evaluate``). The
    descriptor defaults to FC22's; its species are those of the dataset unless already set.
    """
    settings = settings or TrainingSettings()
    descriptor = descriptor if descriptor is not None else fc22_descriptor()
    descriptor.fit(dataset.structures)
    masks = dataset.masks(species)
    X = np.concatenate([descriptor.transform_one(s)[m] for s, m in zip(dataset.structures, masks, strict=True)])
    y, groups = dataset.targets(species)
    if len(np.unique(y)) != 2:
        raise InputError(f"label {dataset.label!r} needs both classes among the centre atoms, "
                         f"found only {np.unique(y).tolist()}")
    evaluation = _evaluate(X, y, groups, dataset, settings) if evaluate else None
    estimator, chosen, cv_score = _search(X, y, groups, settings, np.arange(len(y)))
    info = {"n_samples": len(dataset.names), "samples": list(dataset.names), "n_atoms": int(len(y)),
            "n_positive": int(y.sum()), "settings": to_jsonable(settings.__dict__), "chosen": chosen,
            "cv_score": cv_score}
    if evaluation is not None:
        s = evaluation.summary()
        info["held_out"] = {k: s[k] for k in ("sensitivity", "specificity", "accuracy", "balanced_accuracy",
                                              "roc_auc", "confusion")}
    model = SoftnessModel.from_pipeline(descriptor, estimator, species, dataset.label, info)
    return model, evaluation


def _evaluate(X, y, groups, dataset, settings) -> Evaluation:
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise InputError("held-out evaluation needs at least 2 samples")
    scores = np.full(len(y), np.nan)
    folds = []
    for train_idx, test_idx in GroupKFold(n_splits=min(settings.n_splits, n_groups)).split(X, y, groups):
        if len(np.unique(y[train_idx])) < 2:
            raise InputError("a training fold has only one class; use more samples or fewer splits")
        estimator, chosen, cv_score = _search(X, y, groups, settings, train_idx)
        scores[test_idx] = SoftnessModel.from_pipeline(None, estimator).softness_from_features(X[test_idx])
        folds.append({"test_samples": [dataset.group_names[g] for g in np.unique(groups[test_idx])],
                      "train_samples": [dataset.group_names[g] for g in np.unique(groups[train_idx])],
                      "chosen": chosen, "cv_score": cv_score})
    return Evaluation(y, scores, groups, dataset.group_names, dataset.label, folds)


def _search(X, y, groups, settings, idx):
    """Fit on the atoms ``idx`` (negatives subsampled if asked), choosing the grid point by
    GroupKFold over samples; returns (fitted pipeline, chosen parameters, CV score or None)."""
    idx = _subsample(idx, y, settings.negative_ratio, settings.seed)
    grid = settings.grid()
    if all(len(v) == 1 for v in grid.values()):
        chosen = {k: v[0] for k, v in grid.items()}
        return pipeline(settings.kernel).set_params(**chosen).fit(X[idx], y[idx]), to_jsonable(chosen), None
    n_groups = len(np.unique(groups[idx]))
    if n_groups < 2:
        raise InputError("a grid search over samples needs at least 2 training samples; give one C (and gamma)")
    search = GridSearchCV(pipeline(settings.kernel), grid, scoring=settings.scoring,
                          cv=GroupKFold(n_splits=min(settings.n_splits, n_groups)), n_jobs=1)
    search.fit(X[idx], y[idx], groups=groups[idx])
    return search.best_estimator_, to_jsonable(search.best_params_), float(search.best_score_)


def _subsample(idx, y, ratio, seed):
    """All positives of ``idx`` and at most ``ratio`` × as many negatives (sorted indices)."""
    if ratio is None:
        return idx
    pos, neg = idx[y[idx] == 1], idx[y[idx] == 0]
    keep = int(np.ceil(ratio * len(pos)))
    if keep < len(neg):
        neg = np.random.default_rng(seed).choice(neg, keep, replace=False)
    return np.sort(np.concatenate([pos, neg]))


def softness_rank(scores, groups=None) -> np.ndarray:
    """Per entry, the fraction of the finite entries of its group (all one group if ``groups`` is None) with a
    higher score: 0 for the softest atom of a sample; NaN stays NaN."""
    scores = np.asarray(scores, float)
    groups = np.zeros(len(scores), int) if groups is None else np.asarray(groups)
    out = np.full(len(scores), np.nan)
    m = np.isfinite(scores)
    if m.any():
        quantile, size = rank_quantile(scores[m], groups[m])
        out[m] = quantile - 1.0 / size
    return out


def softmax_by_sample(values, temperature: float, groups=None) -> np.ndarray:
    """exp(β v) normalised over the finite entries of each group (all one group if ``groups`` is None); 0 where
    ``values`` is NaN."""
    values = np.asarray(values, float)
    groups = np.zeros(len(values), int) if groups is None else np.asarray(groups)
    out = np.zeros(len(values))
    for g in np.unique(groups):
        m = (groups == g) & np.isfinite(values)
        if m.any():
            z = temperature * values[m]
            w = np.exp(z - z.max())
            out[m] = w / w.sum()
    return out


def break_distribution(scores, temperature: float, groups=None) -> np.ndarray:
    """First-break probability of each atom from its softness ``scores`` (module docstring): exp(−β q) over the
    atoms of each sample, q from :func:`softness_rank`."""
    return softmax_by_sample(-softness_rank(scores, groups), temperature, groups)


def fit_break_temperature(scores, y, groups) -> dict:
    """Temperature β ≥ 0 of :func:`break_distribution` from held-out ``scores`` (softness) and labels ``y`` of the
    atoms of samples ``groups``: the β that maximises the mean over samples with a positive of
    log Σ_{positives} p_i. Returns ``temperature``, the mean log-likelihood per sample ``log_likelihood`` and
    that of uniform guessing ``log_likelihood_uniform`` (nats), ``samples``."""
    scores, y, groups = np.asarray(scores, float), np.asarray(y), np.asarray(groups)
    kept = [g for g in np.unique(groups) if y[groups == g].any()]
    if not kept:
        raise InputError("no held-out sample has a positive atom: the first-break temperature needs some")
    members = [(-softness_rank(scores[groups == g]), y[groups == g] == 1) for g in kept]

    def loss(beta):
        return float(np.mean([logsumexp(beta * q) - logsumexp(beta * q[pos]) for q, pos in members]))

    best = minimize_scalar(loss, bounds=(0.0, 1000.0), method="bounded", options={"xatol": 1e-3})
    uniform = float(np.mean([np.log(pos.sum() / len(q)) for q, pos in members]))
    return {"temperature": float(best.x), "log_likelihood": float(-best.fun), "log_likelihood_uniform": uniform,
            "samples": len(members)}


def _versions() -> dict:
    return {"glassfrac": VERSION, "numpy": np.__version__, "scikit-learn": sklearn.__version__}
