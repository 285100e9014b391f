"""Learned predictors with scikit-learn's ``fit`` / ``predict``, and ``predict`` with the registered models
(:mod:`glassfrac.api`)."""


import numpy as np

from glassfrac.analysis.structure_functions import StructureFunctions, du21_descriptor, fc22_descriptor
from glassfrac.api.chain import LoadingTest
from glassfrac.core.errors import InputError
from glassfrac.imaging.prediction import ATTENTION_STAGE, Prediction, predict_file, predict_structure
from glassfrac.labels.probe import ThresholdMap
from glassfrac.learn.gradcam import attention as grad_cam
from glassfrac.learn.gradcam import render_for_model
from glassfrac.learn.images import ImageSettings, angstrom, images_from_structures
from glassfrac.learn.listi import ListiModel, Trainer, TrainSettings
from glassfrac.learn.registry import Registry
from glassfrac.learn.resnet import ResNetConfig
from glassfrac.learn.svm import AtomDataset, SoftnessModel, TrainingSettings
from glassfrac.learn.svm import train as _train_svm
from glassfrac.learn.training import ImageModel
from glassfrac.learn.training import Trainer as ImageTrainer
from glassfrac.learn.training import TrainSettings as ImageTrainSettings
from glassfrac.learn.windows import KINDS as THRESHOLD_MODELS
from glassfrac.learn.windows import ProbedSample, WindowSpec, build_windows
from glassfrac.structure import Structure

# -- learned predictors -------------------------------------------------------------------------------

DESCRIPTORS = {"fc22": fc22_descriptor, "du21": du21_descriptor}
"""Per-atom descriptors of :class:`SoftnessSVM` by name: FC22's load-aware radial set, DU21's radial + angular."""


def _per_atom_labels(structures, y, label: str) -> list:
    """One 0/1 array per structure from ``y``: loading tests (their ``label`` class), or arrays."""
    if y is None:
        missing = [k for k, s in enumerate(structures) if label not in s.arrays]
        if missing:
            raise InputError(f"structures {missing[:5]} carry no per-atom array {label!r}; pass the labels as y")
        return [np.asarray(s.arrays[label]) for s in structures]
    if len(y) != len(structures):
        raise InputError(f"one label set per structure is needed: {len(structures)} structures, {len(y)} labels")
    return [np.asarray(getattr(item.labels, label) if isinstance(item, LoadingTest) else item) for item in y]


class SoftnessSVM:
    """Atom-level SVM in scikit-learn style: which atoms take part in the first bond break (FC22) or
    rearrange (DU21), from per-atom structure functions; its signed distance to the boundary is the
    softness (:mod:`glassfrac.learn.svm`).

    Parameters
    ----------
    descriptor : {"fc22", "du21"} or StructureFunctions
        Per-atom descriptor: FC22's radial set with a copy strained 5 % along x (cutoff 10 Å), DU21's radial
        and angular set, or your own.
    label : {"first_break", "bond_changed", "crack"}
        The per-atom class taken from tension tests passed to :meth:`fit`.
    kernel : {"linear", "rbf"}
        SVM kernel.
    C : float or sequence of float
        Penalty; several values are chosen among by grid search with folds over samples.
    species : sequence of str, optional
        Classify only atoms of these species (DU21: ``("Al",)``); the others still enter as neighbours.
    folds : int
        Folds over samples (GroupKFold) of the grid search and of the held-out evaluation.
    evaluate : bool
        Also score every atom with a model that never saw its sample (:attr:`evaluation_`).
    negative_ratio : float, optional
        Keep at most this many negative atoms per positive one in training sets.
    seed : int
        Seed of that subsampling.

    Attributes
    ----------
    model_ : SoftnessModel
        The fitted descriptor, scaler and SVM, as arrays.
    evaluation_ : Evaluation or None
        Held-out scores (``evaluation_.summary()``: sensitivity, specificity, ROC AUC...), with ``evaluate``.

    Examples
    --------
    >>> import glassfrac as gf
    >>> samples = [gf.relax(gf.generate((4, 4), seed=k)) for k in (1, 2)]
    >>> tests = [gf.tension(s, step=0.02, precision=2e-3) for s in samples]
    >>> svm = gf.SoftnessSVM(C=1.0).fit(samples, tests)
    >>> classes = svm.predict(samples[0])      # 1: predicted to break first, 0: not
    >>> classes.shape, sorted(set(classes.tolist())) <= [0, 1], svm.softness(samples[0]).dtype
    ((80,), True, dtype('float64'))
    """

    def __init__(self, descriptor="fc22", label: str = "first_break", kernel: str = "linear",
                 C=(0.01, 0.1, 1.0, 10.0), species=None, folds: int = 5, evaluate: bool = False,
                 negative_ratio: float | None = None, seed: int = 0):
        self.descriptor, self.label, self.kernel, self.C = descriptor, label, kernel, C
        self.species, self.folds, self.evaluate = species, folds, evaluate
        self.negative_ratio, self.seed = negative_ratio, seed

    def _descriptor(self) -> StructureFunctions:
        if isinstance(self.descriptor, StructureFunctions):
            return self.descriptor
        if self.descriptor not in DESCRIPTORS:
            raise InputError(f"unknown descriptor {self.descriptor!r}; choose from {sorted(DESCRIPTORS)} "
                             "or pass a StructureFunctions")
        return DESCRIPTORS[self.descriptor]()

    def fit(self, structures, y=None) -> "SoftnessSVM":
        """Fit on the atoms of ``structures`` (relaxed, undeformed samples).

        Parameters
        ----------
        structures : list of Structure
            The samples; each is one group of the folds.
        y : list, optional
            Per structure: its :class:`LoadingTest` (the ``label`` class is used) or a per-atom 0/1 array
            (−1 leaves an atom out). None: each structure carries the per-atom array ``label``.

        Returns
        -------
        SoftnessSVM
            This estimator, fitted.
        """
        structures = list(structures)
        labelled = []
        for s, values in zip(structures, _per_atom_labels(structures, y, self.label), strict=True):
            copy = s.copy()
            copy.set_array(self.label, values.astype(np.int8))
            labelled.append(copy)
        dataset = AtomDataset(labelled, [f"sample_{k}" for k in range(len(labelled))], self.label)
        C = (self.C,) if np.isscalar(self.C) else tuple(self.C)
        settings = TrainingSettings(kernel=self.kernel, C=C, n_splits=self.folds,
                                    negative_ratio=self.negative_ratio, seed=self.seed)
        species = None if self.species is None else tuple(self.species)
        self.model_, self.evaluation_ = _train_svm(dataset, self._descriptor(), species, settings, self.evaluate)
        return self

    def _fitted(self) -> SoftnessModel:
        if not hasattr(self, "model_"):
            raise InputError("this SoftnessSVM is not fitted yet: call fit(structures, y) or SoftnessSVM.load(path)")
        return self.model_

    def softness(self, structure: Structure) -> np.ndarray:
        """Softness per atom (N,): signed distance to the SVM boundary in standardised descriptor units;
        positive: predicted class 1; NaN for atoms of other species than ``species``."""
        return self._fitted().softness(structure)

    def predict(self, structure: Structure) -> np.ndarray:
        """Predicted class per atom (int8, (N,)): 1 (softness > 0), 0, or −1 for atoms not classified."""
        s = self.softness(structure)
        return np.where(np.isnan(s), -1, s > 0).astype(np.int8)

    def save(self, path) -> None:
        """Write the fitted model (safetensors with a JSON header; nothing pickled)."""
        self._fitted().save(path)

    @classmethod
    def load(cls, path) -> "SoftnessSVM":
        """A fitted estimator from a file written by :meth:`save` or ``glassfrac softness train``."""
        model = SoftnessModel.load(path)
        estimator = cls(descriptor=model.descriptor, label=model.label or "first_break", kernel=model.kernel,
                        species=model.species)
        estimator.model_, estimator.evaluation_ = model, None
        return estimator


class ThresholdPredictor:
    """Learned local yield-threshold maps in scikit-learn style (LISTI25): a model of the window around each
    grid point predicts the Δτ (N/m) that local probing (:func:`probe`) would measure there, so a map costs
    a forward pass (:mod:`glassfrac.learn.listi`).

    Parameters
    ----------
    model : {"gnn", "cnn", "lstm", "baseline"}
        Graph network with attention, image CNN, LSTM over the Si sequence, or gradient-boosted trees on ring
        statistics.
    radius : float
        Window radius, Å (the probe's ``r_free``).
    epochs : int
        Most training epochs.
    patience : int
        Epochs without a better validation loss before training stops.
    batch_size : int
        Windows per minibatch.
    validation : float
        Fraction of the samples kept for validation (at least one sample).
    seed : int
        Seed of the split, the initial weights and the batches.

    Attributes
    ----------
    model_ : ListiModel
        The trained model (best validation weights).
    record_ : dict
        The training record (losses per epoch, split, windows, seconds).

    Examples
    --------
    >>> import glassfrac as gf
    >>> samples = [gf.relax(gf.generate((6, 6), seed=k)) for k in (1, 2)]
    >>> maps = [gf.probe(s, grid=2, r_free=5.0, shell=3.5, step=0.02, precision=1e-3) for s in samples]
    >>> predictor = gf.ThresholdPredictor("baseline", radius=5.0).fit(samples, maps)
    >>> m = predictor.predict(samples[0], grid=3)
    >>> m.threshold.shape, m.unit
    ((3, 3), 'N/m')
    """

    def __init__(self, model: str = "gnn", radius: float = 11.0, epochs: int = 300, patience: int = 30,
                 batch_size: int = 32, validation: float = 0.2, seed: int = 0):
        if model not in THRESHOLD_MODELS:
            raise InputError(f"unknown threshold model {model!r}; choose from {THRESHOLD_MODELS}")
        self.model, self.radius, self.epochs, self.patience = model, radius, epochs, patience
        self.batch_size, self.validation, self.seed = batch_size, validation, seed

    def fit(self, structures, maps) -> "ThresholdPredictor":
        """Train on probed samples.

        Parameters
        ----------
        structures : list of Structure
            Relaxed 2D samples (at least two: the split is by sample).
        maps : list of ThresholdMap
            Their probed maps (:func:`probe`), one per structure.

        Returns
        -------
        ThresholdPredictor
            This estimator, fitted.
        """
        structures, maps = list(structures), list(maps)
        if len(structures) != len(maps) or len(structures) < 2:
            raise InputError(f"fit needs at least two structures and one map each, got {len(structures)} "
                             f"structures and {len(maps)} maps")
        samples = [ProbedSample(f"sample_{k}", s, np.asarray(m.threshold, float).ravel(),
                                np.asarray(m.centres, float), m.load_angle) for k, (s, m) in
                   enumerate(zip(structures, maps, strict=True))]
        spec = WindowSpec(radius=float(self.radius))
        split = _validation_split(len(samples), self.validation, self.seed)
        settings = TrainSettings(epochs=self.epochs, patience=self.patience, batch_size=self.batch_size,
                                 seed=self.seed)
        self.model_, self.record_ = Trainer(self.model, build_windows(samples, spec), split, spec, settings).run()
        return self

    def predict(self, structure: Structure, grid: int = 50, load_angle: float = 0.0) -> ThresholdMap:
        """The threshold map of ``structure`` on a grid × grid lattice of windows, as :func:`probe` gives it.

        Parameters
        ----------
        structure : Structure
            A relaxed 2D sample.
        grid : int
            Windows per side.
        load_angle : float
            Direction of the pure-shear stretch, rad.

        Returns
        -------
        ThresholdMap
            ``threshold`` Δτ (N/m, grid × grid) at ``centres`` (Å); ``info["seconds"]`` the prediction time.
        """
        if not hasattr(self, "model_"):
            raise InputError("this ThresholdPredictor is not fitted yet: call fit(structures, maps) or load(path)")
        result = self.model_.predict_map(structure, grid=int(grid), load_angle=float(load_angle))
        settings = {"grid": int(grid), "r_free": self.model_.spec.radius, "load_angle": float(load_angle)}
        return ThresholdMap.from_result(result, settings, source=f"learned {self.model_.kind}",
                                        seconds=result["seconds"])

    def save(self, path) -> None:
        """Write the trained model (safetensors with a JSON header; nothing pickled)."""
        self.model_.save(path)

    @classmethod
    def load(cls, path) -> "ThresholdPredictor":
        """A fitted predictor from a file written by :meth:`save` or ``glassfrac listi train``."""
        model = ListiModel.load(path)
        predictor = cls(model.kind, radius=model.spec.radius)
        predictor.model_, predictor.record_ = model, dict(model.info)
        return predictor


def predict(structure_or_path, models=None, pixel_size: float | None = None, relax: bool = False,
            format: str | None = None) -> Prediction:
    """Run every applicable registered model (softness SVMs, image models, LISTI, oxide softness) on a
    structure or a microscope image, as ``glassfrac predict`` does (:mod:`glassfrac.imaging.prediction`).

    Parameters
    ----------
    structure_or_path : Structure, str or Path
        A structure, a structure file (extxyz, LAMMPS data or dump...) or a microscope image file.
    models : str or Path, optional
        Registry folder of model files and their cards (default: ``GLASSFRAC_MODELS``, else the models
        shipped with glassfrac, :mod:`glassfrac.learn.registry`).
    pixel_size : float, optional
        Image input: Å per pixel (default: from the file, else estimated).
    relax : bool
        Image input: relax the structure built from it (Yukawa 2D silica).
    format : str, optional
        Format of a structure file (default: from its extension).

    Returns
    -------
    Prediction
        ``tasks``: per task (``first_break``, ``rupture_strain``, ``rupture_location``, ``crack``, ``mu2``,
        ``threshold_map``, ``oxide_softness``) the values (softness in standardised descriptor units,
        locations in Å, thresholds Δτ in N/m, strains dimensionless), the per-atom arrays, the model card and
        ``in_domain`` with its ``reasons``; ``to_dict()`` the JSON object of ``glassfrac predict``.
        No installed model, or none that applies (a 3D oxide given only 2D models): an InputError.

    Examples
    --------
    >>> import glassfrac as gf, os
    >>> os.makedirs("no-models")
    >>> gf.predict(gf.generate((4, 4), seed=1), models="no-models")   # a 2D monolayer, 80 atoms in a ~21 Å cell
    Traceback (most recent call last):
    ...
    glassfrac.core.errors.InputError: no model installed in no-models (given folder): the models are trained ...
    """
    registry = Registry.default(models)
    if isinstance(structure_or_path, Structure):
        return predict_structure(structure_or_path, registry)
    return predict_file(structure_or_path, registry, format, pixel_size, relax)


def _validation_split(n: int, fraction: float, seed: int) -> dict:
    """Sample indices for training a final model on everything: ``validation`` (a seeded ``fraction`` of the
    ``n`` samples, at least one, and one fewer than all) for early stopping, the rest ``train``, no ``test``."""
    order = np.random.default_rng(seed).permutation(n)
    n_validation = min(n - 1, max(1, round(fraction * n)))
    return {"train": sorted(order[n_validation:].tolist()), "validation": sorted(order[:n_validation].tolist()),
            "test": []}


IMAGE_TARGETS = {"strain": "rupture_strain", "location": "rupture_location", "mu2": "mu2"}
"""Targets of :class:`ImagePredictor` and the label of a :class:`LoadingTest` (or ``info`` key) each reads."""


class ImagePredictor:
    """FC22's image model in scikit-learn style: a ResNet reads a rendered image of the undeformed sample
    (photon model, periodic augmentation) and predicts its rupture strain, its rupture location (Å, heat-map
    head) or its ring-size disorder mu2; Grad-CAM shows where it looks (:mod:`glassfrac.learn.training`).

    Parameters
    ----------
    target : {"strain", "location", "mu2"}
        What to learn: the rupture strain (first bond break, dimensionless), the rupture location (x, y) in Å,
        or mu2 (measured from the rings when no label is given).
    arch : {"small", "resnet18", "resnet50"}
        Encoder size.
    size, pixels : int
        Network input side and rendered pixels across the cell before rebinning (px).
    epochs, patience, batch_size, copies_per_epoch : int
        Training loop: Adam for at most ``epochs``, stopped after ``patience`` epochs without a better
        validation loss; ``copies_per_epoch`` augmented copies of each sample per epoch.
    validation : float
        Fraction of the samples kept for validation (early stopping); the split is by sample.
    seed : int
        Seed of the split, the augmentations, the photon noise and the initial weights.

    Attributes
    ----------
    model_ : ImageModel
        The trained network with its image settings and training record.

    Examples
    --------
    >>> import glassfrac as gf
    >>> samples = [gf.generate((4, 4), mu2=m, seed=k) for k, m in enumerate((0.3, 0.5, 0.7, 0.9))]
    >>> cnn = gf.ImagePredictor("mu2", size=32, pixels=64, epochs=2).fit(samples)    # mu2 from the rings
    >>> value = cnn.predict(samples[0]); g = cnn.attention(samples[0])   # ~21 Å cell: 0.66 Å per pixel
    >>> isinstance(value, float), g.shape
    (True, (32, 32))
    """

    def __init__(self, target: str = "strain", arch: str = "small", size: int = 64, pixels: int = 128,
                 epochs: int = 150, patience: int = 20, batch_size: int = 16, copies_per_epoch: int = 4,
                 validation: float = 0.2, seed: int = 0):
        if target not in IMAGE_TARGETS:
            raise InputError(f"unknown target {target!r}; choose from {sorted(IMAGE_TARGETS)}")
        self.target, self.arch, self.size, self.pixels = target, arch, size, pixels
        self.epochs, self.patience, self.batch_size = epochs, patience, batch_size
        self.copies_per_epoch, self.validation, self.seed = copies_per_epoch, validation, seed

    def fit(self, structures, y=None) -> "ImagePredictor":
        """Train on periodic samples with rectangular cells.

        Parameters
        ----------
        structures : list of Structure
            Undeformed samples (at least two: the split is by sample).
        y : list, optional
            Per structure a :class:`LoadingTest` (its rupture strain or location), a number (strain, mu2) or an
            (x, y) location in Å; None: ``mu2`` from the rings, else the ``info`` entry of each structure.

        Returns
        -------
        ImagePredictor
            This estimator, fitted.
        """
        structures = [s.copy() for s in structures]
        if len(structures) < 2:
            raise InputError("fit needs at least two structures (the split is by sample)")
        if y is not None:
            if len(y) != len(structures):
                raise InputError(f"one label per structure is needed: {len(structures)} structures, {len(y)} labels")
            key = IMAGE_TARGETS[self.target]
            for s, item in zip(structures, y, strict=True):
                value = getattr(item.labels, key) if isinstance(item, LoadingTest) else item
                s.info[key] = None if value is None else np.asarray(value, float).tolist()
        settings = ImageSettings(size=self.size, pixels=self.pixels, crop="cell", render_seed=self.seed,
                                 crack_seed=self.seed)
        data = images_from_structures(structures, [f"sample_{k}" for k in range(len(structures))], self.target,
                                      settings, progress=False)
        loop = ImageTrainSettings(epochs=self.epochs, patience=self.patience, batch_size=self.batch_size,
                                  copies_per_epoch=self.copies_per_epoch, seed=self.seed,
                                  head="heatmap" if self.target == "location" else "regression",
                                  location_loss="heatmap" if self.target == "location" else "fc22")
        trainer = ImageTrainer(data, ResNetConfig.preset(self.arch), loop,
                               split=_validation_split(len(data), self.validation, self.seed))
        self.model_, _ = trainer.run()
        return self

    def _fitted(self):
        if not hasattr(self, "model_"):
            raise InputError("this ImagePredictor is not fitted yet: call fit(structures, y) or load(path)")
        return self.model_

    def _image(self, structure: Structure) -> np.ndarray:
        return render_for_model(self._fitted(), structure).image.astype(np.float32)

    def predict(self, structure: Structure):
        """The rupture strain or mu2 (float), or the rupture location (x, y) in Å, of one periodic sample of the
        training size (augmentation-averaged)."""
        model = self._fitted()
        rendered = render_for_model(model, structure)
        value = model.predict(rendered.image.astype(np.float32)[None])[0]
        if self.target == "location":
            return np.asarray(angstrom(rendered.pixel_map, value), float)
        return float(value)

    def attention(self, structure: Structure) -> np.ndarray:
        """Grad-CAM of the prediction at the input resolution (size × size; the 16 px stage, as ``glassfrac
        predict`` shows), transforms undone."""
        maps = grad_cam(self._fitted(), self._image(structure))
        return maps[min(maps, key=lambda r: abs(r - ATTENTION_STAGE))]

    def save(self, path) -> None:
        """Write the trained model (safetensors with a JSON header; nothing pickled)."""
        self._fitted().save(path)

    @classmethod
    def load(cls, path) -> "ImagePredictor":
        """A fitted predictor from a file written by :meth:`save`, ``glassfrac cnn train`` or a recipe."""
        model = ImageModel.load(path)
        if model.task not in IMAGE_TARGETS:
            raise InputError(f"the image model predicts {model.task!r}; ImagePredictor takes strain, location, mu2",
                             path)
        predictor = cls(model.task, size=model.image_settings.size, pixels=model.image_settings.pixels)
        predictor.model_ = model
        return predictor
