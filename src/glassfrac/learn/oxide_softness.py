"""Softness of amorphous oxides (DU21, reference/protocols.md §6 and §10): p_hop labels from
300 K trajectories, a linear SVM on the DU21 structure functions, and softness followed along
a tension test.

Labels. Each quenched sample runs NVT at ``T`` (:func:`hop_trajectory`); p_hop (Å²,
:func:`glassfrac.analysis.oxide.phop`, window t_R) is computed for every atom and frame and
turned into a :class:`glassfrac.labels.phop.PhopLabels` (``labels``):

- ``"frames"`` (default, DU21 / Cubuk et al.): at label times ``label_every_ps`` apart over
  the whole span where p_hop is defined (a sliding window), an atom of the centre species is
  rearranging (1) if p_hop > ``high_A2`` at that time, non-rearranging (0) if p_hop stays below
  ``low_A2`` over the whole trajectory, left out (−1) otherwise. One hop gives a label at every
  label time it spans (correlated labels: they stay in one CV group).
- ``"snapshots"``: snapshots every ``horizon_ps``; rearranging if p_hop crosses ``high_A2``
  from below within [t0, t0 + horizon) (one label per hop, the structure before it), quiet as
  above.

With ``balance`` (DU21: 8000 / 8000) each labelled time keeps all its positives and as many
negatives of the same time drawn at random (seeded); times without a positive are dropped.
With ``inherent`` (default) the descriptors are computed on the inherent structure at the
label time (CG minimisation at fixed cell, :func:`glassfrac.mechanics.md.inherent_structure`),
as in Cubuk et al.; tension frames are then minimised the same way before softness is
computed. ``inherent = false`` uses the instantaneous 300 K frames.

Training uses :func:`glassfrac.learn.svm.train` (standardised features, linear SVC, C = 1,
balanced class weights) with GroupKFold over samples (``groups``: all labels of one sample, or
of samples sharing a melt, in one group), so the held-out accuracy is measured on samples the
model never saw. Softness = signed distance to the hyperplane (standardised feature units).

Along tension, every frame gets the softness of its centre atoms; the curve holds the mean
and spread of softness, the fraction with S > 0, and the clusters of the top ``top_fraction``
softest Al linked within ``cluster_cutoff_A`` (DU21: 10 %, 3.7 Å).
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import GridSearchCV, GroupKFold

from glassfrac.analysis.oxide import high_value_clusters
from glassfrac.analysis.structure_functions import du21_descriptor
from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_path
from glassfrac.labels.phop import PhopLabels, phop_labels
from glassfrac.learn.metrics import classification_metrics
from glassfrac.learn.svm import AtomDataset, Evaluation, SoftnessModel, pipeline
from glassfrac.mechanics.md import inherent_structure, thermal_trajectory
from glassfrac.structure import Box, Structure

LABEL = "hop"
"""Name of the per-atom label array of the snapshots (1 / 0 / −1)."""

DU21_PUBLISHED = {"source": "DU21", "test_accuracy": 0.83, "train_accuracy": 0.84, "radial_only_accuracy": 0.79,
                  "voronoi_volume_only_accuracy": 0.56, "n_positive": 8000, "n_negative": 8000,
                  "note": "8100-atom samples, 300 K, t_R = 6 ps (reference/protocols.md §6)"}


@dataclass
class SoftnessSettings:
    """p_hop labels and SVM of :func:`train_softness`: trajectory temperature (K), equilibration
    and length (ps), frame spacing (ps); p_hop window t_R (ps), thresholds (Å²), snapshot
    spacing (ps, ``labels="snapshots"``); label mode, label-time spacing (ps, ``"frames"``),
    features on inherent structures and the CG force tolerance (eV/Å); centre species, SVM C
    (DU21: 1; a list is searched per fold by an inner grouped CV), CV folds, class balance and
    its seed; top fraction and link length (Å) of the high-softness clusters. Defaults: the
    reduced size, DU21's 300 K and thresholds."""

    T: float = 300.0
    equilibrate_ps: float = 1.0
    trajectory_ps: float = 80.0
    frame_every_ps: float = 0.1
    t_r_ps: float = 6.0
    high_A2: float = 0.2
    low_A2: float = 0.05
    horizon_ps: float = 2.0
    labels: str = "frames"
    label_every_ps: float = 0.5
    inherent: bool = True
    inherent_ftol: float = 1e-4
    species: tuple = ("Al",)
    C: float | tuple = 1.0
    n_splits: int = 5
    balance: bool = True
    seed: int = 0
    top_fraction: float = 0.1
    cluster_cutoff_A: float = 3.7

    def __post_init__(self):
        self.species = tuple(self.species)
        self.C = tuple(float(c) for c in self.C) if np.ndim(self.C) else float(self.C)
        if not 0 <= self.low_A2 < self.high_A2:
            raise InputError(f"need 0 <= low_A2 < high_A2, got {self.low_A2} and {self.high_A2}")
        if self.trajectory_ps < self.t_r_ps + self.horizon_ps:
            raise InputError(f"trajectory_ps ({self.trajectory_ps}) must cover t_r_ps + horizon_ps "
                             f"({self.t_r_ps} + {self.horizon_ps})")
        if self.frame_every_ps <= 0 or self.horizon_ps < self.frame_every_ps:
            raise InputError("need 0 < frame_every_ps <= horizon_ps")
        if self.labels not in ("frames", "snapshots"):
            raise InputError(f"labels must be 'frames' or 'snapshots', got {self.labels!r}")
        if self.label_every_ps < self.frame_every_ps:
            raise InputError("need label_every_ps >= frame_every_ps")


# -- trajectories -----------------------------------------------------------------------------

@dataclass
class Trajectory:
    """Unwrapped positions (T, N, 3) in Å, ``dt_ps`` apart, of the atoms of ``structure``
    (species and cell; NVT, so the cell is fixed)."""

    positions: np.ndarray
    dt_ps: float
    structure: Structure
    T: float = 300.0

    def frame(self, k: int) -> Structure:
        """Frame ``k`` as a structure (positions wrapped into the cell)."""
        s = Structure(self.positions[k], self.structure.species, self.structure.box,
                      info={"time_ps": k * self.dt_ps, "T_K": self.T})
        return s.wrapped()

    def save(self, path) -> None:
        """Compressed .npz (positions, species, cell, origin, dt_ps, T), written atomically."""
        box = self.structure.box
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, positions=self.positions, species=self.structure.species.astype(str),
                                cell=box.cell, origin=box.origin, dt_ps=self.dt_ps, T=self.T)

    @classmethod
    def load(cls, path) -> "Trajectory":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as d:
                x, species, cell, origin = d["positions"], d["species"], d["cell"], d["origin"]
                dt, T = float(d["dt_ps"]), float(d["T"])
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"not a glassfrac trajectory .npz (positions, species, cell, origin, dt_ps, T): "
                             f"{exc}", path) from exc
        if x.ndim != 3 or x.shape[1:] != (len(species), 3):
            raise InputError(f"positions must be (frames, {len(species)}, 3), got {x.shape}", path)
        return cls(x, dt, Structure(x[0], species, Box(cell, True, origin)), T)


def hop_trajectory(structure: Structure, settings: SoftnessSettings | None = None, potential=None,
                   md_settings=None) -> Trajectory:
    """NVT trajectory at ``settings.T`` (LAMMPS) of a quenched sample, after the equilibration."""
    settings = settings or SoftnessSettings()
    start = structure.copy()
    start.arrays.pop("velocities", None)  # fresh velocities at T
    frames = thermal_trajectory(start, settings.T, settings.trajectory_ps, settings.frame_every_ps,
                                settings.equilibrate_ps, potential, md_settings)
    return Trajectory(np.stack([f.positions for f in frames]), settings.frame_every_ps, frames[0], settings.T)


# -- labels -----------------------------------------------------------------------------------

def trajectory_labels(trajectory: Trajectory, settings: SoftnessSettings | None = None) -> PhopLabels:
    """The p_hop labels of ``trajectory`` with the window, thresholds and label mode of
    ``settings``."""
    settings = settings or SoftnessSettings()
    return phop_labels(trajectory.positions, trajectory.dt_ps, trajectory.structure.species, settings.t_r_ps,
                       settings.high_A2, settings.low_A2, settings.labels, settings.label_every_ps,
                       settings.horizon_ps)


def balance_labels(labels, centre, rng) -> np.ndarray:
    """A copy of ``labels`` (N,) with −1 outside ``centre`` and, among the centre atoms, all
    positives and at most as many negatives (a random choice, the rest −1)."""
    out = np.where(centre, labels, -1).astype(np.int8)
    negatives = np.flatnonzero(out == 0)
    n_pos = int(np.count_nonzero(out == 1))
    if len(negatives) > n_pos:
        out[rng.choice(negatives, len(negatives) - n_pos, replace=False)] = -1
    return out


def hop_dataset(trajectories: dict, settings: SoftnessSettings | None = None, groups: dict | None = None,
                potential=None, md_settings=None):
    """Labelled structures of ``trajectories`` ({name: :class:`Trajectory`}) as an
    :class:`~glassfrac.learn.svm.AtomDataset` (label :data:`LABEL`), plus per-trajectory counts
    (label times, positives, negatives, distinct rearranging atoms, max p_hop).

    ``groups`` ({name: group}, default: the name) are the CV groups: trajectories of one sample
    (or of samples that share a melt) are never split between training and test. With
    ``settings.inherent`` every labelled frame is replaced by its inherent structure
    (:func:`glassfrac.mechanics.md.inherent_structure` with ``potential`` and ``md_settings``).
    """
    settings = settings or SoftnessSettings()
    groups = groups or {}
    rng = np.random.default_rng(settings.seed)
    structures, names, group_of, counts = [], [], [], []
    for name, traj in trajectories.items():
        if not np.isclose(traj.dt_ps, settings.frame_every_ps):
            raise InputError(f"trajectory {name}: frames {traj.dt_ps} ps apart, settings say {settings.frame_every_ps}")
        hops = trajectory_labels(traj, settings)
        centre = np.isin(traj.structure.species, settings.species)
        n_pos = n_neg = 0
        hopping = np.zeros(len(centre), bool)
        for frame, row in zip(hops.frames, hops.labels, strict=True):
            row = balance_labels(row, centre, rng) if settings.balance else np.where(centre, row, -1)
            if not (row >= 0).any() or (settings.balance and not (row == 1).any()):
                continue
            snap = traj.frame(frame)
            if settings.inherent:
                snap = inherent_structure(snap, potential, md_settings, ftol=settings.inherent_ftol)
            snap.set_array(LABEL, row)
            structures.append(snap)
            names.append(f"{name}@{snap.info['time_ps']:.2f}ps")
            group_of.append(groups.get(name, name))
            n_pos += int((row == 1).sum())
            n_neg += int((row == 0).sum())
            hopping |= row == 1
        summary = hops.counts(settings.species)
        counts.append({"sample": name, "group": groups.get(name, name), "n_atoms": traj.structure.n_atoms,
                       "frames": len(traj.positions), "label_times": summary["label_times"], "positive": n_pos,
                       "negative": n_neg, "positive_atoms": int(hopping.sum()),
                       **{k: summary[k] for k in ("max_phop_A2", "rearranging_atoms", "quiet_atoms")}})
    if not structures:
        raise InputError("no labelled snapshot: no atom rearranged or stayed quiet; use longer trajectories")
    return AtomDataset(structures, names, LABEL, groups=group_of), counts


# -- training ---------------------------------------------------------------------------------

def du21_softness_descriptor(radial_only: bool = False, species=("Al", "O")):
    """DU21's structure functions for Al2O3: 2 × 48 radial + 3 × 10 angular = 126 features
    (radial only: 96)."""
    descriptor = du21_descriptor(species=species)
    if radial_only:
        descriptor.set_params(angular=())
    return descriptor.fit()


def softness_features(dataset, species=("Al",)):
    """DU21 features (n, 126) of the labelled ``species`` atoms of ``dataset``, concatenated over
    its structures: the radial block (96 columns) first, then the angular one."""
    descriptor = du21_softness_descriptor()
    masks = dataset.masks(species)
    return np.concatenate([descriptor.transform_one(s)[m] for s, m in zip(dataset.structures, masks, strict=True)])


def fit_linear_svm(X, y, groups, settings: SoftnessSettings):
    """Standardised linear SVC (balanced class weights) with C = ``settings.C``, or the best C
    of a list by GroupKFold over ``groups``; returns (fitted pipeline, chosen C)."""
    if not isinstance(settings.C, tuple) or len(settings.C) == 1:
        C = float(np.atleast_1d(settings.C)[0])
        return pipeline("linear", C).fit(X, y), C
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise InputError("a search over C needs at least 2 training groups; give one C")
    search = GridSearchCV(pipeline("linear"), {"svm__C": list(settings.C)}, scoring="balanced_accuracy",
                          cv=GroupKFold(n_splits=min(settings.n_splits, n_groups)), n_jobs=1)
    search.fit(X, y, groups=groups)
    return search.best_estimator_, float(search.best_params_["svm__C"])


def train_softness(dataset, settings: SoftnessSettings | None = None, radial_only: bool = False, features=None):
    """Linear SVM (C = ``settings.C``) on the DU21 descriptors of ``dataset`` with grouped CV.

    ``features`` (from :func:`softness_features`, full descriptor) skips the descriptor
    evaluation; with ``radial_only`` its radial columns are used. Returns ``(model, evaluation,
    report)``: the :class:`~glassfrac.learn.svm.SoftnessModel` fitted on all groups, its held-out
    :class:`~glassfrac.learn.svm.Evaluation` (each group scored by the fold that did not train
    on it), and a JSON-ready report (held-out and training accuracy, dataset size, DU21's figures).
    """
    settings = settings or SoftnessSettings()
    descriptor = du21_softness_descriptor(radial_only)
    n_features = int(descriptor.n_features_out_)
    X = softness_features(dataset, settings.species) if features is None else np.asarray(features, float)
    X = X[:, :n_features]
    y, groups = dataset.targets(settings.species)
    if len(X) != len(y):
        raise ValueError(f"{len(X)} feature rows for {len(y)} labelled atoms")
    if len(np.unique(y)) != 2:
        raise InputError(f"label {dataset.label!r} needs both classes among the centre atoms")
    n_groups = len(dataset.group_names)
    if n_groups < 2:
        raise InputError("held-out evaluation needs at least 2 sample groups")
    n_splits = min(settings.n_splits, n_groups)
    scores, folds = np.full(len(y), np.nan), []
    for train_idx, test_idx in GroupKFold(n_splits=n_splits).split(X, y, groups):
        if len(np.unique(y[train_idx])) < 2:
            raise InputError("a training fold has only one class; use more samples or fewer splits")
        estimator, C = fit_linear_svm(X[train_idx], y[train_idx], groups[train_idx], settings)
        scores[test_idx] = SoftnessModel.from_pipeline(None, estimator).softness_from_features(X[test_idx])
        folds.append({"test_samples": [dataset.group_names[g] for g in np.unique(groups[test_idx])],
                      "train_samples": [dataset.group_names[g] for g in np.unique(groups[train_idx])],
                      "chosen": {"svm__C": C}})
    evaluation = Evaluation(y, scores, groups, dataset.group_names, dataset.label, folds)
    held_out = evaluation.summary()
    estimator, C = fit_linear_svm(X, y, groups, settings)
    info = {"n_samples": n_groups, "samples": dataset.group_names, "n_atoms": int(len(y)), "n_positive": int(y.sum()),
            "chosen": {"svm__C": C},
            "held_out": {k: held_out[k] for k in ("sensitivity", "specificity", "accuracy", "balanced_accuracy",
                                                  "roc_auc", "confusion")}}
    model = SoftnessModel.from_pipeline(descriptor, estimator, settings.species, dataset.label, info)
    in_sample = classification_metrics(y, model.softness_from_features(X))
    report = {
        "descriptor": "DU21 radial only" if radial_only else "DU21 radial + angular",
        "n_features": n_features, "centre_species": list(settings.species),
        "svm": {"kernel": "linear", "C": settings.C, "chosen_C": {"svm__C": C}, "class_weight": "balanced"},
        "labels": {k: getattr(settings, k) for k in ("labels", "T", "t_r_ps", "high_A2", "low_A2", "label_every_ps",
                                                     "horizon_ps", "inherent", "balance")},
        "n_samples": n_groups, "n_snapshots": len(dataset.structures), "n_atoms": int(len(y)),
        "n_positive": int(y.sum()), "n_negative": int(len(y) - y.sum()),
        "cv": f"GroupKFold({n_splits}) over sample groups: the labelled frames of one group are never split",
        "test_accuracy": held_out["accuracy"], "test_balanced_accuracy": held_out["balanced_accuracy"],
        "test_roc_auc": held_out["roc_auc"], "test_sensitivity": held_out["sensitivity"],
        "test_specificity": held_out["specificity"],
        "train_accuracy": in_sample["accuracy"], "train_balanced_accuracy": in_sample["balanced_accuracy"],
        "per_sample": held_out["per_sample"], "folds": held_out["folds"], "published": DU21_PUBLISHED,
    }
    return model, evaluation, report


# -- softness along tension ---------------------------------------------------------------------

def softness_curve(model, frames, settings: SoftnessSettings | None = None, cluster_species: str = "Al",
                   inherent: bool | None = None, potential=None, md_settings=None) -> dict:
    """Softness of every atom of ``frames`` (same atoms, e.g. a tension run) and its summary per
    frame: strain (x length over the first frame's, −1), mean, std and 90th percentile of the
    centre atoms' softness, fraction with S > 0, and the clusters of the top
    ``top_fraction`` softest ``cluster_species`` atoms (count, largest size). ``softness``
    (frames, N) is NaN for atoms the model does not classify. With ``inherent`` (default:
    ``settings.inherent``; use the model's training setting) softness is computed on the
    inherent structure of each frame, as in training."""
    settings = settings or SoftnessSettings()
    inherent = settings.inherent if inherent is None else inherent
    if inherent:
        frames = [inherent_structure(f, potential, md_settings, ftol=settings.inherent_ftol) for f in frames]
    length0 = float(frames[0].box.cell[0, 0])
    rows, per_atom = [], []
    for frame in frames:
        s = model.softness(frame)
        centre = ~np.isnan(s)
        clusters = high_value_clusters(frame, np.where(centre, s, -np.inf), settings.top_fraction,
                                       settings.cluster_cutoff_A, cluster_species)
        rows.append({"strain": float(frame.box.cell[0, 0]) / length0 - 1.0, "mean_softness": float(s[centre].mean()),
                     "std_softness": float(s[centre].std()),
                     "p90_softness": float(np.percentile(s[centre], 90)),
                     "fraction_soft": float((s[centre] > 0).mean()), "n_clusters": clusters["n_clusters"],
                     "largest_cluster": clusters["largest"], "n_selected": clusters["n_selected"]})
        per_atom.append(s)
    curve = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    kept = {k: v for k, v in asdict(settings).items() if k in ("top_fraction", "cluster_cutoff_A")}
    return {**curve, "softness": np.array(per_atom), "settings": {**kept, "inherent": bool(inherent)}}
