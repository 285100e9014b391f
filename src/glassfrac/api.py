"""The Python API for scripts and notebooks: one function per task, re-exported as ``glassfrac.<name>``.

Thin glue over the stages (generate → relax → rings → tension / shear / probe), so that the whole chain is a
few lines::

    import glassfrac as gf
    s = gf.generate(rings=(16, 18), mu2=0.3, kind="bilayer", seed=1)
    s = gf.relax(s, potential="watanabe")
    t = gf.tension(s, potential="watanabe")       # curve, events, typed labels
    m = gf.probe(gf.relax(gf.generate((8, 8), mu2=0.3, kind="monolayer")), grid=4)

Learned predictors follow scikit-learn's ``fit`` / ``predict``: :class:`SoftnessSVM` (per-atom first break,
FC22; softness, DU21) and :class:`ThresholdPredictor` (threshold maps, LISTI25). Campaigns run many samples
through the chain and store them: :func:`run_campaign`, :func:`open_campaign`, :func:`export_dataset`.

Units are LAMMPS "metal" (eV, Å, ps, amu); stresses of sheets (2D structures and bilayers) in N/m, of bulk
in GPa. ``potential`` is a name (``"yukawa2d"``, ``"watanabe"``, ``"matsui"``), a
:class:`~glassfrac.potentials.Potential`, or None for the default of the structure: ``yukawa2d`` for 2D
structures, ``watanabe`` for 3D silica, ``matsui`` for alumina. This module sits at the top layer (beside
the CLI); ``glassfrac/__init__.py`` imports it on first use so that ``import glassfrac`` stays light.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.analysis.structure_functions import StructureFunctions, du21_descriptor, fc22_descriptor
from glassfrac.campaign.config import CampaignConfig, load_config, parse_config
from glassfrac.campaign.export import export_dataset as _export_dataset
from glassfrac.campaign.runner import run_campaign as _run_campaign
from glassfrac.campaign.store import CampaignStore
from glassfrac.core.errors import InputError
from glassfrac.generate import generate as _generate
from glassfrac.imaging.prediction import Prediction, predict_file, predict_structure
from glassfrac.labels import ShearLabels, TensionLabels, shear_labels, tension_labels
from glassfrac.labels.probe import ThresholdMap
from glassfrac.learn.listi import ListiModel, Trainer, TrainSettings
from glassfrac.learn.registry import Registry
from glassfrac.learn.svm import AtomDataset, SoftnessModel, TrainingSettings
from glassfrac.learn.svm import train as _train_svm
from glassfrac.learn.windows import KINDS as THRESHOLD_MODELS
from glassfrac.learn.windows import ProbedSample, WindowSpec, build_windows
from glassfrac.mechanics.aqs import LoadingResult
from glassfrac.mechanics.probe import ProbeSettings, probe_map
from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, TENSION_DEFAULTS, shear_test, tension_test
from glassfrac.mechanics.relax import relax_to_minimum
from glassfrac.potentials import Potential, default_potential, get_potential
from glassfrac.potentials.ase_calculator import GlassfracCalculator, to_atoms
from glassfrac.structure import Structure

__all__ = ["generate", "relax", "rings", "tension", "shear", "probe", "get_potential", "calculator", "to_atoms",
           "LoadingTest", "SoftnessSVM", "ThresholdPredictor", "predict", "run_campaign", "open_campaign",
           "export_dataset"]


def _potential(potential, structure: Structure) -> Potential:
    """``potential`` as a :class:`Potential`; None picks the default of ``structure`` (module docstring)."""
    if isinstance(potential, Potential):
        return potential
    if potential is None:
        potential = default_potential(structure)
    if not isinstance(potential, str):
        raise InputError(f"potential must be a name, a glassfrac Potential or None, got {type(potential).__name__}")
    return get_potential(potential)


def generate(rings=(16, 18), mu2: float | None = 0.3, kind: str = "monolayer", seed: int = 0,
             **options) -> Structure:
    """Generate a 2D silica sample by bond-switching Monte Carlo (FC22's generator).

    Parameters
    ----------
    rings : (int, int)
        Honeycomb of nx × ny rings to start from (nx ≥ 4, ny ≥ 4 and even); cell about
        nx·5.3 Å × ny·4.6 Å for the monolayer.
    mu2 : float
        Target variance of the ring-size distribution (dimensionless; 0.3 is a typical glass).
    kind : {"monolayer", "bilayer", "network"}
        2D Si–O monolayer (for ``yukawa2d``), 3D bilayer sheet (for ``watanabe``) or the Si network only.
    seed : int
        Seed of every random choice.
    **options
        Further options of :func:`glassfrac.generate.generate` (``distribution``, ``alpha``, ``steps``...).

    Returns
    -------
    Structure
        Positions in Å, bonds, ``info`` with the achieved ring statistics; not yet relaxed.

    Examples
    --------
    >>> import glassfrac as gf
    >>> s = gf.generate(rings=(4, 4), mu2=0.3, kind="monolayer", seed=1)
    >>> s.n_atoms, s.dim
    (80, 2)
    """
    return _generate(rings, mu2=mu2, kind=kind, seed=seed, **options)


def relax(structure: Structure, potential=None, cell=False, fmax: float = 1e-8, method: str = "lbfgs",
          **options) -> Structure:
    """Relax a structure to a local energy minimum (a true one: saddles are left along their negative mode,
    :func:`glassfrac.mechanics.relax.relax_to_minimum`).

    Parameters
    ----------
    structure : Structure
        The structure to relax (not modified).
    potential : str, Potential or None
        Name, potential object, or None for the structure's default (module docstring).
    cell : bool or array of bool
        Also relax the periodic cell to zero stress (True), or the components of a mask; False keeps it.
    fmax : float
        Largest force left on any atom, eV/Å.
    method : {"lbfgs", "fire", "cg"}
        Minimiser.
    **options
        Further options of :func:`glassfrac.mechanics.relax.relax` (``max_steps``, ``frozen``...).

    Returns
    -------
    Structure
        A relaxed copy; ``info["relax"]`` records ``energy`` (eV), ``max_force`` (eV/Å), ``converged``,
        ``lowest_eigenvalue`` (eV/Å²), ``minimum``, ``saddle_escapes``, ``iterations`` and the rest of the
        relaxer's summary.

    Examples
    --------
    >>> import glassfrac as gf
    >>> s = gf.relax(gf.generate((4, 4), seed=1), potential="yukawa2d")
    >>> s.info["relax"]["converged"], s.info["relax"]["max_force"] < 1e-8, s.info["relax"]["minimum"]
    (True, True, True)
    """
    relaxed, info = relax_to_minimum(_potential(potential, structure), structure, method=method, fmax=fmax,
                                     cell=cell, **options)
    relaxed.info["relax"] = {k: v for k, v in info.items() if k != "seconds"}
    return relaxed


def rings(structure: Structure, **options) -> RingAnalysis:
    """Rings of a 2D network glass (monolayer, bilayer or Si network) and their statistics.

    Parameters
    ----------
    structure : Structure
        The sample.
    **options
        Options of :class:`glassfrac.analysis.rings.RingAnalysis` (``cutoff`` in Å, ``layer``...).

    Returns
    -------
    RingAnalysis
        Computed, read-only results: ``ring_sizes``, ``rings`` (atom indices), ``ring_centres`` (Å),
        ``ring_areas`` (Å²), and ``summary()`` (distribution, μ2, Aboav–Weaire α...).

    Examples
    --------
    >>> import glassfrac as gf
    >>> r = gf.rings(gf.generate((4, 4), seed=1))
    >>> r.n_rings, int(r.ring_sizes.sum())
    (16, 96)
    """
    return RingAnalysis(**options).compute(structure)


@dataclass(frozen=True)
class LoadingTest:
    """A tension or shear test: the run (``result``) and its typed ``labels``
    (:class:`~glassfrac.labels.TensionLabels` or :class:`~glassfrac.labels.ShearLabels`). Strains are
    dimensionless, stresses in N/m for sheets and GPa for bulk (:attr:`stress_unit`), energies in eV.

    Examples
    --------
    >>> import glassfrac as gf
    >>> t = gf.tension(gf.relax(gf.generate((4, 4), seed=1)), max_strain=0.02, step=0.01)
    >>> t.curve["strain"].tolist(), t.stress_unit
    ([0.0, 0.01, 0.02], 'N/m')
    """

    result: LoadingResult
    labels: TensionLabels | ShearLabels

    @property
    def curve(self) -> dict:
        """The relaxed states by strain: ``strain`` (dimensionless), ``stress`` (stress unit), ``energy`` (eV),
        ``iterations``, ``converged`` (arrays)."""
        return self.result.curve.arrays()

    @property
    def strain(self) -> np.ndarray:
        """Strain of each relaxed state (dimensionless)."""
        return self.curve["strain"]

    @property
    def stress(self) -> np.ndarray:
        """Stress measure of each relaxed state (:attr:`stress_unit`; tension positive)."""
        return self.curve["stress"]

    @property
    def stress_unit(self) -> str:
        """``"N/m"`` for sheets, ``"GPa"`` for bulk."""
        return self.result.stress_unit

    @property
    def events(self) -> list:
        """The events of the run (strain, stress drop, location in Å, atoms), in order."""
        return self.result.events


def _aqs_settings(defaults, max_strain, step, settings):
    overrides = {k: v for k, v in (("max_strain", max_strain), ("step", step)) if v is not None}
    return replace(defaults, **overrides, **settings)


def tension(structure: Structure, potential=None, max_strain: float | None = None, step: float | None = None,
            **settings) -> LoadingTest:
    """Uniaxial-strain tension along x to fracture, quasistatic (FC22), with bond-break labels.

    Parameters
    ----------
    structure : Structure
        A relaxed sample.
    potential : str, Potential or None
        Name, potential object, or None for the structure's default (module docstring).
    max_strain : float, optional
        Largest strain (dimensionless; default 0.3).
    step : float, optional
        Strain step (default 0.005); events are bisected to ``precision``.
    **settings
        Further :class:`glassfrac.mechanics.aqs.AQSSettings` (``precision``, ``fmax`` in eV/Å...).

    Returns
    -------
    LoadingTest
        ``curve``, ``events`` and :class:`~glassfrac.labels.TensionLabels` (``rupture_strain``,
        ``rupture_location`` in Å, ``crack_atoms``, ``peak_stress``...).

    Examples
    --------
    >>> import glassfrac as gf
    >>> t = gf.tension(gf.relax(gf.generate((4, 4), seed=1)), max_strain=0.02, step=0.01)
    >>> bool(t.stress[-1] > t.stress[0]), t.labels.rupture_strain is None
    (True, True)
    """
    settings = _aqs_settings(TENSION_DEFAULTS, max_strain, step, settings)
    result = tension_test(structure, _potential(potential, structure), settings)
    return LoadingTest(result, tension_labels(result))


def shear(structure: Structure, potential=None, max_strain: float | None = None, step: float | None = None,
          events: int | None = None, **settings) -> LoadingTest:
    """Area-preserving pure shear, quasistatic (LISTI25), up to the first ``events`` stress drops.

    Parameters
    ----------
    structure : Structure
        A relaxed sample.
    potential : str, Potential or None
        Name, potential object, or None for the structure's default (module docstring).
    max_strain : float, optional
        Largest strain (dimensionless; default 0.04).
    step : float, optional
        Strain step (default 1e-4).
    events : int, optional
        Stop after this many stress drops (default 6).
    **settings
        Further :class:`glassfrac.mechanics.aqs.AQSSettings` (``path="simple_shear"``, ``precision``...).

    Returns
    -------
    LoadingTest
        ``curve``, ``events`` and :class:`~glassfrac.labels.ShearLabels` (events with D²min fields in Å²).

    Examples
    --------
    >>> import glassfrac as gf
    >>> t = gf.shear(gf.relax(gf.generate((4, 4), seed=1)), max_strain=0.004, step=0.002)
    >>> len(t.strain), t.labels.test
    (3, 'shear')
    """
    if events is not None:
        settings["max_events"] = events
    settings = _aqs_settings(SHEAR_DEFAULTS, max_strain, step, settings)
    result = shear_test(structure, _potential(potential, structure), settings)
    return LoadingTest(result, shear_labels(result))


def probe(structure: Structure, potential=None, grid=50, r_free: float = 11.0, **settings) -> ThresholdMap:
    """Local yield-threshold map by probing windows in shear (LISTI25).

    Parameters
    ----------
    structure : Structure
        A relaxed 2D sample or bilayer sheet.
    potential : str, Potential or None
        A potential with a Hessian (``yukawa2d``, ``watanabe``); None for the structure's default.
    grid : int or (int, int)
        Windows on a grid × grid lattice over the cell (a pair must have equal entries).
    r_free : float
        Radius of the free part of each window, Å.
    **settings
        Further :class:`glassfrac.mechanics.probe.ProbeSettings` (``directions``, ``workers``, ``device``...).

    Returns
    -------
    ThresholdMap
        ``threshold`` Δτ (N/m, grid × grid), ``centres`` (Å), ``angles`` (rad); ``save(path)`` writes it.

    Examples
    --------
    >>> import glassfrac as gf
    >>> s = gf.relax(gf.generate((4, 4), seed=1))
    >>> m = gf.probe(s, grid=2, r_free=5.0, shell=3.5, step=0.02, precision=1e-3)  # tiny and coarse
    >>> m.threshold.shape, m.unit, bool((m.threshold > 0).all())
    ((2, 2), 'N/m', True)
    """
    if not isinstance(grid, (int, np.integer)):
        sides = tuple(int(g) for g in grid)
        if len(sides) != 2 or sides[0] != sides[1]:
            raise InputError(f"grid must be one number or two equal numbers, got {grid!r}")
        grid = sides[0]
    potential = _potential(potential, structure)
    s = ProbeSettings(grid=int(grid), r_free=r_free, **settings)
    return ThresholdMap.from_result(probe_map(structure, potential, s), s, potential=potential.name)


def calculator(potential="yukawa2d", **parameters) -> GlassfracCalculator:
    """An ASE calculator for one of our potentials (energy eV, forces eV/Å, stress eV/Å³ in ASE's convention,
    per-atom ``energies``); see :mod:`glassfrac.potentials.ase_calculator` for 2D sheets.

    Parameters
    ----------
    potential : {"yukawa2d", "watanabe", "matsui"} or Potential
        The potential (``matsui`` needs the LAMMPS Python module).
    **parameters
        Parameters of the potential (for example ``cutoff`` in Å for ``matsui``).

    Returns
    -------
    GlassfracCalculator
        An ``ase.calculators.calculator.Calculator``.

    Examples
    --------
    >>> import glassfrac as gf
    >>> atoms = gf.to_atoms(gf.relax(gf.generate((4, 4), seed=1)))
    >>> atoms.calc = gf.calculator("yukawa2d")
    >>> bool(abs(atoms.get_forces()).max() < 1e-6), atoms.get_stress().shape
    (True, (6,))
    """
    if isinstance(potential, Potential):
        if parameters:
            raise InputError("parameters go with a potential's name, not with a Potential object")
        return GlassfracCalculator(potential)
    return GlassfracCalculator(get_potential(potential, **parameters))


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
        order = np.random.default_rng(self.seed).permutation(len(samples))
        n_validation = min(len(samples) - 1, max(1, round(self.validation * len(samples))))
        split = {"train": sorted(order[n_validation:].tolist()), "validation": sorted(order[:n_validation].tolist()),
                 "test": []}
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


# -- campaigns ----------------------------------------------------------------------------------------

def _campaign_config(config) -> CampaignConfig:
    if isinstance(config, CampaignConfig):
        return config
    if isinstance(config, str) and "\n" in config:
        return parse_config(config)
    return load_config(config)


def run_campaign(config, workers: int | None = 0, **options) -> dict:
    """Run a campaign: many samples through generate → relax → tests (tension, shear, probe), each stored
    once in ``DIR/campaign.db`` (an ASE database) and ``DIR/samples/``; a second call resumes (README,
    :mod:`glassfrac.campaign`).

    Parameters
    ----------
    config : str, Path or CampaignConfig
        A TOML file, TOML text (a string with a line break), or a parsed config; its keys, with units, are
        listed in :mod:`glassfrac.campaign.config`. ``[output] directory`` names the campaign folder.
    workers : int or None
        0: serially in this process; N: a local Dask cluster of N workers; None: the config's
        ``[runner] workers``, else as many as the cores allow.
    **options
        Further options of :func:`glassfrac.campaign.runner.run_campaign`: ``scheduler`` (a Dask address),
        ``slurm_jobs`` (dask-jobqueue on SLURM), ``retry_failed``, ``store_wait`` (s), ``overwrite``.

    Returns
    -------
    dict
        ``directory``, ``done``, ``failed``, ``pending``, ``ran``, ``run_seconds`` (s), ``samples_per_hour``...
        The stored labels carry units: energies in eV, sheet stresses in N/m, locations in Å.

    Examples
    --------
    >>> import glassfrac as gf
    >>> config = '''
    ... [campaign]
    ... name = "tiny"
    ... seed = 1
    ... [[samples]]
    ... kind = "monolayer"
    ... rings = [4, 4]
    ... mu2 = [0.3]
    ... count = 2
    ... [relax]
    ... fmax = 1e-4
    ... [tests]
    ... run = ["tension"]
    ... [tests.tension]
    ... max_strain = 0.02
    ... step = 0.01
    ... precision = 0.005
    ... '''
    >>> summary = gf.run_campaign(config, workers=0, show_progress=False)
    >>> summary["done"], summary["failed"], summary["directory"]
    (2, 0, 'tiny')
    """
    config = _campaign_config(config)
    summary = _run_campaign(config, workers=workers, **options)
    return {"directory": str(config.directory), **summary}


def open_campaign(directory) -> CampaignStore:
    """The store of a campaign folder: its database rows (``rows()``: ASE rows of the relaxed structures whose
    keys are the inputs and scalar labels, such as ``mu2``, ``relax_energy`` in eV, ``tension_modulus`` and
    ``tension_peak_stress`` in N/m; curves and per-atom labels in ``row.data``), ``count()``, ``failures()``
    and ``sample_dir(sample_id)``.

    Parameters
    ----------
    directory : str or Path
        A folder written by :func:`run_campaign` or ``glassfrac campaign run``.

    Returns
    -------
    CampaignStore
        The store, read from the folder's SQLite database (or the PostgreSQL one it names).

    Examples
    --------
    >>> import glassfrac as gf
    >>> store = gf.open_campaign("tiny")                 # made by the example of run_campaign
    >>> row = store.rows()[0]
    >>> store.count(), row.kind, bool(row.tension_modulus > 0)   # modulus in N/m
    (2, 'monolayer', True)
    """
    return CampaignStore.open(directory)


def export_dataset(campaign, output, overwrite: bool = False) -> dict:
    """Export a campaign's samples for the learning stages: one ``.npz`` (concatenated atoms with offsets,
    per-sample scalars, per-atom labels, event and curve tables; positions in Å, stresses in N/m) or a
    folder with one ``.npz`` per sample (:mod:`glassfrac.campaign.export`).

    Parameters
    ----------
    campaign : str, Path or CampaignStore
        The campaign folder or its store.
    output : str or Path
        ``.npz`` file, or a folder.
    overwrite : bool
        Replace an output that exists.

    Returns
    -------
    dict
        ``output``, ``samples`` and ``atoms`` (counts) and the files written.

    Examples
    --------
    >>> import glassfrac as gf
    >>> info = gf.export_dataset("tiny", "tiny.npz")      # the campaign of run_campaign's example
    >>> info["samples"], sorted(gf.open_campaign("tiny").done_ids())
    (2, ['s000000', 's000001'])
    """
    store = campaign if isinstance(campaign, CampaignStore) else CampaignStore.open(Path(campaign))
    return _export_dataset(store, output, overwrite)
