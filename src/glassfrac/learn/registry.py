"""Registered predictors: model files with a model card each, found by what a structure is.

A registry is a folder of pairs ``NAME.safetensors`` (a model file of :mod:`glassfrac.learn.model_file`,
read by its own loader: no code is executed) and ``NAME.json``, the model card (:data:`CARD`, checked key
by key before the model is touched). The card says what the model is (``kind``, :data:`KINDS`), what it
was trained on (potential, kind of structure, element set, size range in atoms, mu2 range, samples and
labels, split by sample, pixel size for image models), its held-out metrics with their bootstrap spread
over test samples, the CPU time of its training, and the one command that rebuilds it from its dataset.
The card records the SHA-256 of the model file, so a card never describes another file than its own.

The shipped registry is the package folder ``glassfrac/models/`` (:data:`SHIPPED`); the environment
variable ``GLASSFRAC_MODELS`` (a folder) or a ``folder`` argument replaces it (:meth:`Registry.default`).

Domain (:func:`check_domain`). A structure is described by :class:`StructureFacts` (its geometry,
kind, element set, potential, size and measured mu2). A model whose geometry differs (a 3D bulk
oxide given to a model of 2D sheets, or the reverse), whose centre species the structure lacks, or
that predicts a number of its own potential's physics (:attr:`KindSpec.per_potential`: a rupture strain,
a stress threshold) for a structure of another potential, makes no sense on it: an
:class:`~glassfrac.core.errors.InputError`. Otherwise the model predicts,
and the prediction is ``in_domain`` only when the potential, the kind of structure and the element
set are those of its training data, the number of atoms and mu2 lie in its training ranges (models that
predict per atom or window from a neighbourhood, :attr:`KindSpec.local`, take larger samples too), and
(image input) the pixel size is within 5 % of the training images'; each difference is a reason.
"""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.core.config import TomlReader
from glassfrac.core.errors import GlassfracError, InputError
from glassfrac.core.files import atomic_open
from glassfrac.core.outputs import check_files
from glassfrac.core.schema import Key, Schema
from glassfrac.learn import listi, svm, training
from glassfrac.potentials import POTENTIALS, default_potential
from glassfrac.structure import Structure

SHIPPED = Path(__file__).resolve().parent.parent / "models"
"""The registry shipped inside the package (model files made from the repository's datasets)."""
ENVIRONMENT = "GLASSFRAC_MODELS"
"""Environment variable naming a registry folder to use instead of :data:`SHIPPED`."""
PIXEL_TOLERANCE = 0.05
"""Relative difference of pixel size (Å/px) beyond which an image is outside an image model's domain."""


@dataclass(frozen=True)
class KindSpec:
    """What a kind of model predicts (``task``), its model-file format tag, the geometry of the
    structures it takes (``"sheet"``: 2D monolayers and bilayer sheets, open along z; ``"bulk"``:
    periodic 3D) and a description."""

    task: str
    format: str
    geometry: str
    help: str
    local: bool = False
    """Predicts per atom or window from a neighbourhood: a sample larger than the training ones is in its
    domain (only a smaller one, whose periodic images come closer, is not)."""
    per_potential: bool = False
    """Predicts a number of the potential's physics (a strain at which a bond breaks, a stress threshold):
    a structure of another potential gets no prediction from it (an error, not an out-of-domain value)."""


KINDS = {
    "softness-bilayer": KindSpec("first_break", svm.MODEL_FORMAT, "sheet",
                                 "softness SVM (FC22): per-atom first broken bond of Watanabe bilayers", local=True),
    "softness-monolayer": KindSpec("first_break", svm.MODEL_FORMAT, "sheet",
                                   "softness SVM: per-atom first broken bond of Yukawa monolayers", local=True),
    "rupture-strain": KindSpec("rupture_strain", training.MODEL_FORMAT, "sheet",
                               "image ResNet (FC22): rupture strain, with Grad-CAM attention", per_potential=True),
    "rupture-location": KindSpec("rupture_location", training.MODEL_FORMAT, "sheet",
                                 "image ResNet (FC22): rupture location in the cell"),
    "crack": KindSpec("crack", training.MODEL_FORMAT, "sheet", "image ResNet (FC22): crack path map"),
    "mu2": KindSpec("mu2", training.MODEL_FORMAT, "sheet", "image ResNet (FC22): ring-size disorder mu2"),
    "listi-gnn": KindSpec("threshold_map", listi.MODEL_FORMAT, "sheet",
                          "LISTI25 graph network: local shear-stress threshold map (N/m)", local=True,
                          per_potential=True),
    "oxide-softness": KindSpec("oxide_softness", svm.MODEL_FORMAT, "bulk",
                               "DU21 softness SVM: per-Al rearrangement of 3D amorphous alumina", local=True),
}
"""The kinds of registered model, by name."""

STRUCTURE_KINDS = ("monolayer", "bilayer", "bulk")
IMAGE_TASKS = {"rupture-strain": "strain", "rupture-location": "location", "crack": "crack", "mu2": "mu2"}
"""Image-model kinds and the ``task`` of their :class:`~glassfrac.learn.training.ImageModel`."""


def _range(value) -> str | None:
    return None if value is None or value[0] <= value[1] else "[low, high] with low <= high"


TRAINING = Schema((
    Key("potential", str, help="potential of the training samples", choices=tuple(POTENTIALS)),
    Key("structure_kind", str, help="kind of the training structures", choices=STRUCTURE_KINDS),
    Key("species", list, help="element set of the training structures", items=str, nonempty=True),
    Key("atoms", list, help="smallest and largest training sample", unit="atoms", items=int, length=2,
        positive=True, check=_range),
    Key("mu2", (list, type(None)), None, "mu2 range of the training samples (null: not a ring network)",
        items=float, length=2, check=_range),
    Key("samples", int, help="training + test samples", positive=True),
    Key("labels", int, help="labels learnt from (atoms, windows or samples)", positive=True),
    Key("test_samples", int, help="held-out samples the metrics are measured on", lo=0),
    Key("split", str, "by sample", "how training and test are split", choices=("by sample",)),
    Key("pixel_size", (float, type(None)), None, "pixel size of the training images (image models)", "Å/px",
        positive=True),
    Key("dataset", str, help="the dataset folder it was trained from (datasets/NAME)"),
))
"""The ``training`` table of a model card."""


def _metrics(value) -> str | None:
    for name, entry in value.items():
        if not isinstance(entry, dict) or not {"value", "low", "high"} <= set(entry):
            return f"per metric a table with value, low, high (bootstrap interval); '{name}' is not"
        if not all(isinstance(entry[k], (int, float)) and not isinstance(entry[k], bool)
                   for k in ("value", "low", "high")):
            return f"numbers for '{name}'.value, low and high"
    return None


CARD = Schema((
    Key("format", str, help="card format tag", choices=("glassfrac-model-card-1",)),
    Key("name", str, help="registry name (the file stem)"),
    Key("version", str, help="model version"),
    Key("kind", str, help="kind of model", choices=tuple(KINDS)),
    Key("file", str, help="the model file, beside the card"),
    Key("sha256", str, help="SHA-256 of the model file"),
    Key("description", str, ""),
    Key("training", dict, help="the training data (TRAINING)"),
    Key("metrics", dict, help="held-out metrics: value and bootstrap interval over test samples",
        check=_metrics),
    Key("training_cpu_seconds", float, help="CPU time of the training", unit="s", lo=0),
    Key("rebuild", str, help="the one command that rebuilds the model from its dataset"),
    Key("created", str, ""),
))
"""A model card (``NAME.json``)."""
CARD_FORMAT = "glassfrac-model-card-1"


@dataclass(frozen=True)
class StructureFacts:
    """What a structure is, for choosing models: ``geometry`` (``"sheet"`` or ``"bulk"``), ``kind``
    (``monolayer`` 2D, ``bilayer`` 3D sheet, ``bulk``), ``species`` (sorted element set), ``potential``
    (``info["potential"]`` if recorded, else :func:`~glassfrac.potentials.default_potential`), ``n_atoms``
    and ``mu2`` (measured ring-size variance of a sheet; None when no rings are found)."""

    geometry: str
    kind: str
    species: tuple
    potential: str
    n_atoms: int
    mu2: float | None

    def to_dict(self) -> dict:
        return {"geometry": self.geometry, "kind": self.kind, "species": list(self.species),
                "potential": self.potential, "n_atoms": self.n_atoms, "mu2": self.mu2}


def describe(structure: Structure) -> StructureFacts:
    """The :class:`StructureFacts` of ``structure``."""
    bulk = structure.dim == 3 and bool(np.all(structure.box.pbc))
    kind = "bulk" if bulk else ("monolayer" if structure.dim == 2 else "bilayer")
    recorded = structure.info.get("potential")
    potential = recorded if isinstance(recorded, str) and recorded in POTENTIALS else default_potential(structure)
    mu2 = None
    if not bulk and "Si" in set(structure.species.tolist()):
        try:
            value = RingAnalysis().compute(structure).summary()["mu2"]
            mu2 = None if value is None or not np.isfinite(value) else float(value)
        except GlassfracError:
            mu2 = None
    return StructureFacts("bulk" if bulk else "sheet", kind, tuple(sorted(set(structure.species.tolist()))),
                          potential, int(structure.n_atoms), mu2)


@dataclass(frozen=True)
class Domain:
    """Whether a structure lies in a model's training domain, and why not (``reasons``)."""

    in_domain: bool
    reasons: tuple = ()

    def to_dict(self) -> dict:
        return {"in_domain": self.in_domain, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class ModelCard:
    """A checked model card (:data:`CARD`) and the path of its model file."""

    name: str
    version: str
    kind: str
    path: Path
    sha256: str
    training: dict
    metrics: dict
    training_cpu_seconds: float
    rebuild: str
    description: str = ""
    created: str = ""
    card_path: Path | None = field(default=None, compare=False)

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    @property
    def task(self) -> str:
        return self.spec.task

    def to_dict(self) -> dict:
        """The card as JSON-able values (``file``: the model file's path)."""
        return {"name": self.name, "version": self.version, "kind": self.kind, "task": self.task,
                "description": self.description or self.spec.help, "file": str(self.path), "sha256": self.sha256,
                "training": self.training, "metrics": self.metrics,
                "training_cpu_seconds": self.training_cpu_seconds, "rebuild": self.rebuild, "created": self.created}

    def reference(self) -> dict:
        """What a prediction names its model by: name, version, kind and training data."""
        return {"name": self.name, "version": self.version, "kind": self.kind, "training": self.training}

    def load(self):
        """The model, read by its own loader after checking the file is the one the card describes:
        :class:`~glassfrac.learn.svm.SoftnessModel`, :class:`~glassfrac.learn.training.ImageModel` or
        :class:`~glassfrac.learn.listi.ListiModel`."""
        if file_sha256(self.path) != self.sha256:
            raise InputError(f"model file does not match its card {self.card_path} (SHA-256 differs)", self.path)
        if self.spec.format == svm.MODEL_FORMAT:
            return svm.SoftnessModel.load(self.path)
        if self.spec.format == listi.MODEL_FORMAT:
            return listi.ListiModel.load(self.path)
        model = training.ImageModel.load(self.path)
        if model.task != IMAGE_TASKS[self.kind]:
            raise InputError(f"the card says {self.kind!r} but the image model predicts {model.task!r}", self.path)
        return model

    def check_domain(self, facts: StructureFacts, pixel_size: float | None = None) -> Domain:
        """:func:`check_domain` of this model."""
        return check_domain(self, facts, pixel_size)


def check_domain(card: ModelCard, facts: StructureFacts, pixel_size: float | None = None) -> Domain:
    """Whether ``facts`` (and an image's ``pixel_size``, Å/px) lie in the training domain of ``card``
    (module docstring); an :class:`InputError` where the model makes no sense on the structure."""
    t = card.training
    if facts.geometry != card.spec.geometry:
        what = {"sheet": "2D sheets (monolayers, bilayers)", "bulk": "3D periodic bulk"}
        raise InputError(f"model {card.name!r} ({card.kind}) is for {what[card.spec.geometry]}; the structure is "
                         f"{what[facts.geometry]} ({facts.kind}, {'-'.join(facts.species)})")
    centres = _centre_species(card)
    if centres and not set(centres) & set(facts.species):
        raise InputError(f"model {card.name!r} ({card.kind}) predicts for {', '.join(centres)} atoms; the structure "
                         f"has none ({'-'.join(facts.species)})")
    if card.spec.per_potential and facts.potential != t["potential"]:
        raise InputError(f"model {card.name!r} ({card.kind}) predicts a value of the {t['potential']} potential's "
                         f"physics; the structure is one of {facts.potential}")
    reasons = []
    if facts.potential != t["potential"]:
        reasons.append(f"potential {facts.potential}, trained on {t['potential']}")
    if facts.kind != t["structure_kind"]:
        reasons.append(f"structure kind {facts.kind}, trained on {t['structure_kind']}")
    if set(facts.species) != set(t["species"]):
        reasons.append(f"element set {'-'.join(facts.species)}, trained on {'-'.join(sorted(t['species']))}")
    lo, hi = t["atoms"]
    if facts.n_atoms < lo or (facts.n_atoms > hi and not card.spec.local):
        reasons.append(f"{facts.n_atoms} atoms, trained on {lo}-{hi}")
    if t.get("mu2") is not None:
        lo, hi = t["mu2"]
        if facts.mu2 is None:
            reasons.append("mu2 unknown (no rings found)")
        elif not lo <= facts.mu2 <= hi:
            reasons.append(f"mu2 {facts.mu2:.3g}, trained on {lo:g}-{hi:g}")
    if pixel_size is not None and t.get("pixel_size") is not None:
        if abs(pixel_size / t["pixel_size"] - 1) > PIXEL_TOLERANCE:
            reasons.append(f"pixel size {pixel_size:.4g} Å/px, trained on {t['pixel_size']:.4g} Å/px")
    return Domain(not reasons, tuple(reasons))


def _centre_species(card: ModelCard) -> tuple:
    """Species a model predicts for (the oxide softness: Al); empty when it takes any atom."""
    return ("Al",) if card.kind == "oxide-softness" else ()


def file_sha256(path) -> str:
    """SHA-256 (hex) of the file ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(path) -> ModelCard:
    """The checked card at ``path`` (``NAME.json``); its model file must lie beside it."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a model card (JSON): {exc}", path) from None
    reader = TomlReader(path)
    card = CARD.read(reader, raw, fill=True)
    card["training"] = TRAINING.read(reader, card["training"], "training", fill=True)
    if card["name"] != path.stem:
        reader.fail("name", f"the file's stem {path.stem!r}, got {card['name']!r}")
    model = path.parent / card["file"]
    if Path(card["file"]).name != card["file"] or not model.is_file():
        reader.fail("file", f"the name of a model file beside the card, got {card['file']!r}")
    image = card["kind"] in IMAGE_TASKS
    if image != (card["training"]["pixel_size"] is not None):
        reader.fail("training.pixel_size", "a pixel size for image models (and only for them)")
    return ModelCard(card["name"], card["version"], card["kind"], model, card["sha256"], card["training"],
                     card["metrics"], float(card["training_cpu_seconds"]), card["rebuild"], card["description"],
                     card["created"], path)


class Registry:
    """The models of a registry folder (module docstring)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    @classmethod
    def default(cls, folder=None) -> "Registry":
        """``folder`` if given, else the folder ``GLASSFRAC_MODELS`` names, else the shipped models."""
        chosen = folder or os.environ.get(ENVIRONMENT) or SHIPPED
        registry = cls(chosen)
        if folder is not None or os.environ.get(ENVIRONMENT):
            if not registry.folder.is_dir():
                raise InputError("model registry folder not found", registry.folder)
        return registry

    @property
    def source(self) -> str:
        """Where the registry comes from, in words."""
        if self.folder.resolve() == SHIPPED.resolve():
            return "shipped with glassfrac"
        return "GLASSFRAC_MODELS" if os.environ.get(ENVIRONMENT) == str(self.folder) else "given folder"

    def cards(self) -> list:
        """Every card of the folder, checked, by name (a malformed card is an :class:`InputError`)."""
        if not self.folder.is_dir():
            return []
        return [read_card(p) for p in sorted(self.folder.glob("*.json"))]

    def find(self, kind: str | None = None, task: str | None = None, potential: str | None = None,
             species=None) -> list:
        """The cards of ``kind`` / ``task`` trained with ``potential`` on exactly the element set ``species``
        (each filter optional)."""
        out = []
        for card in self.cards():
            if (kind and card.kind != kind) or (task and card.task != task):
                continue
            if potential and card.training["potential"] != potential:
                continue
            if species is not None and set(card.training["species"]) != set(species):
                continue
            out.append(card)
        return out

    def for_structure(self, structure: Structure, pixel_size: float | None = None,
                      facts: StructureFacts | None = None) -> dict:
        """Per task, the model to use on ``structure``: ``{"card", "domain"}`` of the in-domain model
        (latest version first), else of the one with fewest reasons; tasks whose models all make no sense
        on the structure are under ``"not_applicable"`` with each model's reason."""
        facts = facts or describe(structure)
        chosen, refused = {}, {}
        for card in sorted(self.cards(), key=lambda c: (c.task, c.name, _version_key(c.version)), reverse=True):
            try:
                domain = card.check_domain(facts, pixel_size)
            except InputError as exc:
                refused.setdefault(card.task, []).append({"model": card.name, "reason": str(exc)})
                continue
            best = chosen.get(card.task)
            if best is None or len(domain.reasons) < len(best["domain"].reasons):
                chosen[card.task] = {"card": card, "domain": domain}
        refused = {task: r for task, r in refused.items() if task not in chosen}
        return {**chosen, "not_applicable": refused} if refused else chosen


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in version.replace("-", ".").split("."))


def register_model(model_path, card: dict, folder, overwrite: bool = False) -> ModelCard:
    """Copy the model file ``model_path`` into the registry ``folder`` as ``NAME.safetensors`` with its card
    ``NAME.json`` (``card``: the keys of :data:`CARD` but ``format``, ``file`` and ``sha256``, which are
    filled in). Existing files of that name are replaced only with ``overwrite``; returns the card read back."""
    folder = Path(folder)
    name = card.get("name")
    if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
        raise InputError(f"a model name must be a plain file stem, got {name!r}")
    target, card_path = folder / f"{name}.safetensors", folder / f"{name}.json"
    check_files([target, card_path], overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    full = {**card, "format": CARD_FORMAT, "file": target.name, "sha256": file_sha256(model_path)}
    reader = TomlReader(f"card of {name}")
    CARD.read(reader, full)
    TRAINING.read(reader, full.get("training"), "training")
    shutil.copyfile(model_path, target)
    with atomic_open(card_path) as handle:
        json.dump(full, handle, indent=1)
    return read_card(card_path)
