"""Training and evaluation of the image models (FC22 §7), and the model file.

Tasks (``TASKS``): ``mu2`` and ``strain`` (one scalar, MSE on the target standardised with the
training mean and standard deviation), ``location`` (x, y in fractional image coordinates,
periodic loss below) and ``crack`` (:class:`~glassfrac.learn.resnet.CrackNet`, MSE on the
target image).

Periodic location loss (FC22 eq. 10–11): with d = y − ŷ taken to the nearest image (each
component in [−½, ½), period 1 = the image side),

    L = ⟨|d|²⟩ + |⟨d⟩|²,

the second term being FC22's bias term (⟨y⟩ − ⟨ŷ⟩)² computed from the wrapped differences, so
shifting target or prediction by a period changes nothing.

Location heads (``TrainSettings.head``): ``"regression"`` (FC22: pooled ResNet, two outputs)
or ``"heatmap"`` (:class:`~glassfrac.learn.resnet.LocationMapNet`: a logit per pixel, the
location is the periodic centroid of their softmax; the pooled head is blind to shifts of the
input by the network stride, see :mod:`glassfrac.learn.resnet`). Loss (``location_loss``):
``"fc22"`` (above, on the predicted x, y; either head) or ``"heatmap"`` (heat-map head only):
cross-entropy between the softmax of the logits and a periodic Gaussian of σ =
``heatmap_sigma`` px around the true site, normalised over the pixels (:func:`heatmap_target`).

Crack loss (``crack_loss``): ``"mse"`` (FC22: MSE against the noisy blurred target image) or
``"distribution"``: the target image less the noise bound (clipped at 0, so the U(0, 0.25) noise
floor is gone) normalised to sum 1 over the pixels, and the cross-entropy of the softmax of the
network's map against it (:func:`crack_distribution_loss`). The output is then a logit map; the
per-atom top-10 % ranking (the MCC score) only needs its order. Measured on 35 campaign test
samples (benchmarks/cnn.py): mean MCC 0.09 against 0.29 for the MSE, so "mse" stays the default.

Loop (``TrainSettings``):

- split by sample, 72 / 8 / 20 % (train / validation / test) from ``seed``, or a given
  ``split`` (e.g. test samples from one dataset only, extra training samples from another);
  augmentation after splitting;
- input images are standardised by the training images' mean and standard deviation (one
  number each; a per-pixel standardisation is the same under periodic translations);
- an epoch is one pass over the training samples, each sample seen ``copies_per_epoch`` times
  under transforms drawn (seeded per epoch) from its 64 (FC22 passes over all 64 copies per
  epoch: one FC22 epoch = 64 / ``copies_per_epoch`` of ours); Adam at ``lr``;
- the validation loss is over ``val_copies`` fixed transforms of every validation sample; the
  weights of the epoch with the lowest validation loss are kept (FC22); training stops after
  ``patience`` epochs without improvement (None: runs all ``epochs``);
- the loop, early stopping and checkpoints (written after every epoch; a run started again
  with the same settings resumes from it and ends with the same weights as an uninterrupted
  run) are :func:`glassfrac.learn.trainer.fit`'s.

Test evaluation: predictions on all 64 copies of every test sample, each inverse-transformed
and then averaged (scalars: mean; locations: circular mean per axis; crack maps: mean). Next
to each model the trivial baseline: the training mean (scalars), the training circular-mean
location, a random ranking of atoms (crack).

Model file (:mod:`glassfrac.learn.model_file`): safetensors of the weights (float32) with a JSON
header entry ``glassfrac`` (architecture, task, standardisation, image settings, augmentation
seed, split, history, test metrics, versions); loading executes nothing.
"""

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.stats import circmean
from sklearn.metrics import matthews_corrcoef

from glassfrac.core.errors import InputError
from glassfrac.core.provenance import git_revision, package_versions
from glassfrac.core.schema import Key, Schema
from glassfrac.learn import model_file
from glassfrac.learn.images import CRACK_NOISE, ImageDataset, ImageSettings, image_lengths, sample_augmentations
from glassfrac.learn.metrics import regression_metrics
from glassfrac.learn.resnet import ResNetConfig, build_model
from glassfrac.learn.trainer import fit

MODEL_FORMAT = "glassfrac-image-model-1"
TASKS = {"mu2": "regressor", "strain": "regressor", "location": "regressor", "crack": "crack"}
OUTPUTS = {"mu2": 1, "strain": 1, "location": 2, "crack": 1}
PUBLISHED = {
    "strain": {"source": "FC22", "r2": 0.79, "note": "rupture strain of 3456-atom bilayers at mu2 = 0.2, "
                                                     "ResNet50, 72/8/20 split of 899 samples"},
    "mu2": {"source": "FC22", "note": "disorder predicted accurately over mu2 in [0.25, 1] (no number given)"},
    "location": {"source": "FC22", "note": "error small at low rupture strain, growing with strain (Fig. 5c)"},
    "crack": {"source": "FC22", "note": "MCC per sample at the top-10 % threshold, Fig. 5e"},
}


HEADS = ("regression", "heatmap")
"""Location heads: pooled regression (FC22) or heat map with periodic centroid (module docstring)."""
LOCATION_LOSSES = ("fc22", "heatmap")
CRACK_LOSSES = ("mse", "distribution")
SCALAR_LOSSES = ("mse", "huber")


@dataclass(frozen=True)
class TrainSettings:
    """Loop settings (module docstring). ``n_shifts``: random translations per sample (× 4 flips);
    ``head``, ``location_loss`` and ``heatmap_sigma`` (px of the input image): location models;
    ``crack_loss``: crack models; ``scalar_loss``: mu2 and strain models, "mse" or "huber" (squared error
    within one standard deviation of the training targets, absolute error beyond: a sample far off the
    rest, such as a network that lost a bond, pulls no harder than one at 1 σ)."""

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-3
    patience: int | None = None
    seed: int = 0
    n_shifts: int = 16
    copies_per_epoch: int = 1
    val_copies: int = 8
    fractions: tuple = (0.72, 0.08, 0.20)
    head: str = "regression"
    location_loss: str = "fc22"
    heatmap_sigma: float = 2.0
    crack_loss: str = "mse"
    scalar_loss: str = "mse"

    def __post_init__(self):
        if self.scalar_loss not in SCALAR_LOSSES:
            raise InputError(f"scalar_loss must be one of {SCALAR_LOSSES}")
        if self.crack_loss not in CRACK_LOSSES:
            raise InputError(f"crack_loss must be one of {CRACK_LOSSES}")
        if self.head not in HEADS or self.location_loss not in LOCATION_LOSSES:
            raise InputError(f"head must be one of {HEADS}, location_loss one of {LOCATION_LOSSES}")
        if self.location_loss == "heatmap" and self.head != "heatmap":
            raise InputError("location_loss='heatmap' needs head='heatmap'")
        if self.heatmap_sigma <= 0:
            raise InputError("heatmap_sigma must be positive (px)")
        if self.epochs < 1 or self.batch_size < 1 or self.n_shifts < 1 or self.copies_per_epoch < 1:
            raise InputError("epochs, batch_size, n_shifts and copies_per_epoch must be positive")
        if not 1 <= self.val_copies <= 4 * self.n_shifts:
            raise InputError(f"val_copies must be in 1..{4 * self.n_shifts}")
        if len(self.fractions) != 3 or abs(sum(self.fractions) - 1) > 1e-9 or min(self.fractions) <= 0:
            raise InputError("fractions must be three positive numbers adding up to 1")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# -- losses and metrics -------------------------------------------------------------------------

def periodic_difference(y, y_hat, period: float = 1.0):
    """y − ŷ wrapped to the nearest image, each component in [−period/2, period/2)."""
    d = y - y_hat
    return d - period * torch.floor(d / period + 0.5) if isinstance(d, torch.Tensor) else \
        d - period * np.floor(d / period + 0.5)


def location_loss(y, y_hat, period: float = 1.0):
    """FC22 eq. 10–11 with periodic care: ⟨|d|²⟩ + |⟨d⟩|² over the batch (module docstring)."""
    d = periodic_difference(y, y_hat, period)
    return (d**2).sum(dim=-1).mean() + (d.mean(dim=0) ** 2).sum()


def heatmap_target(y, shape, sigma: float) -> torch.Tensor:
    """Periodic Gaussians (B, H, W) of σ = ``sigma`` px centred on the fractional locations
    ``y`` (B, 2) = (x, y), each normalised to sum 1 (pixel centres at (c + 0.5) / W)."""
    h, w = shape
    dx = periodic_difference((torch.arange(w, dtype=y.dtype) + 0.5)[None] / w, y[:, :1]) * w  # (B, W) px
    dy = periodic_difference((torch.arange(h, dtype=y.dtype) + 0.5)[None] / h, y[:, 1:]) * h  # (B, H) px
    g = torch.exp(-(dy[:, :, None] ** 2 + dx[:, None, :] ** 2) / (2 * sigma**2))
    return g / g.sum(dim=(1, 2), keepdim=True)


def heatmap_loss(logits, y, sigma: float) -> torch.Tensor:
    """Cross-entropy of softmax(``logits`` (B, 1, H, W)) against :func:`heatmap_target` of ``y``."""
    b, _, h, w = logits.shape
    q = heatmap_target(y, (h, w), sigma).reshape(b, -1)
    return -(q * torch.log_softmax(logits.reshape(b, -1), dim=1)).sum(dim=1).mean()


def crack_distribution_loss(logits, target, floor: float) -> torch.Tensor:
    """Cross-entropy of softmax(``logits`` (B, 1, H, W)) against max(``target`` − ``floor``, 0)
    normalised over the pixels (module docstring)."""
    b = len(logits)
    q = torch.clamp(target.reshape(b, -1) - floor, min=0.0)
    q = q / q.sum(dim=1, keepdim=True).clamp(min=1e-12)
    return -(q * torch.log_softmax(logits.reshape(b, -1), dim=1)).sum(dim=1).mean()


def circular_mean(u, axis=0) -> np.ndarray:
    """Mean of periodic coordinates (period 1) along ``axis``, in [0, 1) (scipy's ``circmean``)."""
    return circmean(np.asarray(u, float), high=1.0, low=0.0, axis=axis)


def location_metrics(u, u_hat, periods) -> dict:
    """Periodic errors (Å) of fractional locations; ``periods`` per sample the image side in Å,
    (S,) for square images or (S, 2) lengths along x and y. The R² per axis is periodic: the
    wrapped errors against the wrapped deviations from the circular mean."""
    periods = np.asarray(periods, float)
    periods = periods[:, None] if periods.ndim == 1 else periods
    d = periodic_difference(np.asarray(u, float), np.asarray(u_hat, float)) * periods
    centred = periodic_difference(np.asarray(u, float), circular_mean(u)) * periods
    error = np.linalg.norm(d, axis=1)
    out = {"mean_error": float(error.mean()), "median_error": float(np.median(error)), "n": len(error),
           "unit": "angstrom", "errors": error.tolist()}
    for a, name in enumerate("xy"):
        ss = float((centred[:, a] ** 2).sum())
        out[f"r2_{name}"] = 1.0 - float((d[:, a] ** 2).sum()) / ss if ss > 0 else float("nan")
    return out


def atom_values(field, uv) -> np.ndarray:
    """Values of a periodic map ``field`` (size, size) at fractional coordinates ``uv`` (n, 2):
    the pixel holding each point."""
    rows, cols = field.shape
    col = np.floor(np.mod(uv[:, 0], 1.0) * cols).astype(int) % cols
    row = np.floor(np.mod(uv[:, 1], 1.0) * rows).astype(int) % rows
    return field[row, col]


def crack_mcc(prediction, uv, labels, top: float = 0.10) -> float:
    """FC22 score: atoms whose predicted intensity is in the top ``top`` fraction are predicted
    crack atoms; MCC against ``labels`` (imaged atoms)."""
    values = atom_values(prediction, uv)
    k = max(1, int(round(top * len(values))))
    predicted = np.zeros(len(values), bool)
    predicted[np.argsort(-values, kind="stable")[:k]] = True
    return float(matthews_corrcoef(np.asarray(labels, bool), predicted))


# -- split --------------------------------------------------------------------------------------

def split_samples(n: int, fractions=(0.72, 0.08, 0.20), seed: int = 0) -> dict:
    """Indices of the train / validation / test samples (random, seeded, each part non-empty)."""
    if n < 3:
        raise InputError(f"at least 3 samples are needed for a train/validation/test split, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, int(round(fractions[2] * n))), n - 2)
    n_val = min(max(1, int(round(fractions[1] * n))), n - n_test - 1)
    return {"test": np.sort(order[:n_test]), "validation": np.sort(order[n_test:n_test + n_val]),
            "train": np.sort(order[n_test + n_val:])}


def _check_split(split: dict, n: int) -> dict:
    """A given split: disjoint index arrays ``train``, ``validation`` (both non-empty) and ``test`` (empty when
    every sample trains, as for a model fitted to all of its data) within ``n``."""
    out = {k: np.sort(np.asarray(split[k], int)) for k in ("train", "validation", "test")}
    joined = np.concatenate(list(out.values()))
    if min(len(out["train"]), len(out["validation"])) == 0 or len(np.unique(joined)) != len(joined) or \
            joined.min() < 0 or joined.max() >= n:
        raise InputError(f"split: train and validation must be non-empty; train, validation and test disjoint "
                         f"indices below {n}")
    return out


# -- model --------------------------------------------------------------------------------------

class ImageModel:
    """A trained image model: network, task, standardisation and image settings.

    ``predict(images, uv=None)`` returns the augmentation-averaged predictions in target units:
    (S,) scalars, (S, 2) fractional locations, or (S, size, size) crack maps. ``head``: location
    models, "regression" or "heatmap" (module docstring).
    """

    def __init__(self, task: str, config: ResNetConfig, image_settings: ImageSettings, input_mean: float,
                 input_std: float, target_mean: float = 0.0, target_std: float = 1.0, n_shifts: int = 16,
                 seed: int = 0, info: dict | None = None, state: dict | None = None, head: str = "regression"):
        if task not in TASKS:
            raise InputError(f"unknown task {task!r}; choose from {sorted(TASKS)}")
        if head not in HEADS or (head == "heatmap" and task != "location"):
            raise InputError(f"head {head!r}: 'heatmap' is for location models; choose from {HEADS}")
        self.head = head
        self.task, self.config, self.image_settings = task, config, image_settings
        self.input_mean, self.input_std = float(input_mean), float(input_std)
        self.target_mean, self.target_std = float(target_mean), float(target_std)
        self.n_shifts, self.seed = int(n_shifts), int(seed)
        self.info = dict(info or {})
        self.network = build_model("heatmap" if head == "heatmap" else TASKS[task], config, OUTPUTS[task])
        if state is not None:
            self.network.load_state_dict(state)
        self.network.eval()

    # -- inputs and outputs -------------------------------------------------------------------
    def standardise(self, images) -> torch.Tensor:
        """Images (B, size, size) photon counts → network input (B, 1, size, size) float32."""
        x = torch.as_tensor(np.asarray(images, np.float32))
        return ((x - self.input_mean) / self.input_std).unsqueeze(1)

    def decode(self, raw: torch.Tensor) -> np.ndarray:
        """Network output → target units (scalars de-standardised, locations wrapped to [0, 1))."""
        raw = raw.detach().numpy().astype(float)
        if self.task in ("mu2", "strain"):
            return raw[:, 0] * self.target_std + self.target_mean
        if self.task == "location":
            return np.mod(raw, 1.0)
        return raw[:, 0]

    def transforms(self, n_samples: int, seed: int | None = None) -> list:
        """The 4 · n_shifts transforms of each of ``n_samples`` samples."""
        size = self.image_settings.size
        return sample_augmentations(size, n_samples, self.n_shifts, self.seed if seed is None else seed)

    def predict(self, images, batch_size: int = 64, seed: int | None = None) -> np.ndarray:
        """Augmentation-averaged predictions (class docstring); ``seed`` of the transforms."""
        images = np.asarray(images, np.float32)
        per_sample = self.transforms(len(images), seed)
        out = []
        for image, transforms in zip(images, per_sample, strict=True):
            copies = self.predict_copies(image, transforms, batch_size)
            out.append(_average(self.task, transforms, copies))
        return np.stack(out)

    def predict_copies(self, image, transforms, batch_size: int = 64) -> np.ndarray:
        """Predictions on transformed copies of one image, each in its own (transformed) frame."""
        return self.predict_raw(np.stack([t.image(image) for t in transforms]), batch_size)

    def predict_raw(self, images, batch_size: int = 64) -> np.ndarray:
        """Predictions on ``images`` (B, size, size) as they are, no augmentation."""
        out = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                out.append(self.decode(self.network(self.standardise(images[start:start + batch_size]))))
        return np.concatenate(out)

    # -- files --------------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"format": MODEL_FORMAT, "task": self.task, "architecture": self.config.to_dict(),
                "image": self.image_settings.to_dict(), "input_mean": self.input_mean, "input_std": self.input_std,
                "target_mean": self.target_mean, "target_std": self.target_std, "n_shifts": self.n_shifts,
                "seed": self.seed, "head": self.head, "info": self.info}

    def save(self, path) -> None:
        """Write the model file (weights + JSON header entry ``glassfrac``), atomically."""
        model_file.write(path, self.network.state_dict(), self.metadata())

    @classmethod
    def load(cls, path) -> "ImageModel":
        """Rebuild a model written by :meth:`save` (no code is executed from the file)."""
        meta, state = model_file.read(path, MODEL_FORMAT, "image model", MODEL_META)
        config = model_file.build(path, ResNetConfig, meta["architecture"], "metadata.architecture",
                                  *_positive_ints(("blocks", "widths"), ("stem", "in_channels")))
        image = model_file.build(path, ImageSettings, meta["image"], "metadata.image",
                                 *_positive_ints((), ("size", "pixels")))
        model = cls(meta["task"], config, image, meta["input_mean"], meta["input_std"], meta["target_mean"],
                    meta["target_std"], meta["n_shifts"], meta["seed"], meta["info"], None, meta["head"])
        model_file.check_tensors(path, state, model.network.state_dict())
        model.network.load_state_dict(state)
        return model


MODEL_META = Schema((
    Key("task", str, help="what the model predicts", choices=tuple(TASKS)),
    Key("architecture", dict, help="ResNetConfig"),
    Key("image", dict, help="ImageSettings"),
    Key("input_mean", float, help="standardisation of the input images", unit="photons"),
    Key("input_std", float, positive=True, unit="photons"),
    Key("target_mean", float, 0.0), Key("target_std", float, 1.0, positive=True),
    Key("n_shifts", int, 16, lo=0), Key("seed", int, 0), Key("info", dict, {}),
    Key("head", str, "regression", choices=HEADS),
))
"""Metadata of an image-model file (:meth:`ImageModel.load`)."""


def _positive_ints(lists, scalars) -> tuple:
    """Keys of positive ints (``scalars``) and of non-empty lists of them (``lists``)."""
    return (*(Key(n, list, items=int, positive=True, nonempty=True) for n in lists),
            *(Key(n, int, positive=True) for n in scalars))


def _average(task: str, transforms, copies) -> np.ndarray:
    """Undo each copy's transform and average (module docstring)."""
    if task in ("mu2", "strain"):
        return np.asarray(copies.mean())
    if task == "location":
        back = np.stack([t.inverse_points(c) for t, c in zip(transforms, copies, strict=True)])
        return circular_mean(back, axis=0)
    return np.mean([t.inverse_image(c) for t, c in zip(transforms, copies, strict=True)], axis=0)


def _digest(dataset: ImageDataset) -> str:
    """SHA-256 of a dataset's images and target values (checkpoints belong to one dataset)."""
    h = hashlib.sha256(np.ascontiguousarray(dataset.images).tobytes())
    h.update(np.ascontiguousarray(dataset.values).tobytes())
    return h.hexdigest()


# -- training -----------------------------------------------------------------------------------

class Trainer:
    """Train one model on an :class:`ImageDataset` (module docstring); ``run`` returns the model
    with the best validation weights and its record (history, split, test metrics). The
    model-specific parts of :func:`glassfrac.learn.trainer.fit` (a :class:`~glassfrac.learn.trainer.Task`)."""

    def __init__(self, dataset: ImageDataset, config: ResNetConfig | None = None,
                 settings: TrainSettings | None = None, checkpoint=None, progress=None, split: dict | None = None):
        self.data = dataset
        self.task = dataset.target
        self.config = config or ResNetConfig()
        self.settings = settings or TrainSettings()
        self.checkpoint = checkpoint
        self.progress = progress
        s = self.settings
        self.split = split_samples(len(dataset), s.fractions, s.seed) if split is None else _check_split(split,
                                                                                                        len(dataset))
        self.transforms = sample_augmentations(dataset.settings.size, len(dataset), s.n_shifts, s.seed)
        train = self.split["train"]
        images = dataset.images[train]
        target_mean, target_std = 0.0, 1.0
        if self.task in ("mu2", "strain"):
            target_mean = float(dataset.values[train].mean())
            target_std = float(dataset.values[train].std()) or 1.0
        torch.manual_seed(s.seed)
        if s.head != "regression" and self.task != "location":
            raise InputError(f"head {s.head!r} is for location models")
        self.model = ImageModel(self.task, self.config, dataset.settings, float(images.mean()),
                                float(images.std()) or 1.0, target_mean, target_std, s.n_shifts, s.seed,
                                head=s.head)
        self.optimizer = torch.optim.Adam(self.model.network.parameters(), lr=s.lr)
        self.val_pairs = self._validation_pairs()

    # -- batches ------------------------------------------------------------------------------
    def batch(self, samples, copies):
        """Network input and targets of the given (sample, transform number) pairs."""
        ts = [self.transforms[i][c] for i, c in zip(samples, copies, strict=True)]
        x = self.model.standardise(np.stack([t.image(self.data.images[i]) for t, i in zip(ts, samples, strict=True)]))
        values = self.data.values
        if self.task in ("mu2", "strain"):
            y = (values[samples] - self.model.target_mean) / self.model.target_std
            y = torch.as_tensor(y, dtype=torch.float32)[:, None]
        elif self.task == "location":
            y = torch.as_tensor(np.stack([t.points(values[i]) for t, i in zip(ts, samples, strict=True)]),
                                dtype=torch.float32)
        else:
            y = torch.as_tensor(np.stack([t.image(values[i]) for t, i in zip(ts, samples, strict=True)]))[:, None]
        return x, y

    def forward(self, x):
        """Network output the loss takes: heat-map logits for ``location_loss="heatmap"``."""
        if self.task == "location" and self.settings.location_loss == "heatmap":
            return self.model.network.heatmap(x)
        return self.model.network(x)

    def loss(self, output, y):
        if self.task == "location":
            if self.settings.location_loss == "heatmap":
                return heatmap_loss(output, y, self.settings.heatmap_sigma)
            return location_loss(y, output)
        if self.task == "crack" and self.settings.crack_loss == "distribution":
            return crack_distribution_loss(output, y, CRACK_NOISE)
        if self.settings.scalar_loss == "huber":  # standardised targets: quadratic within one σ, linear beyond
            return torch.nn.functional.huber_loss(output, y, delta=1.0)
        return torch.mean((output - y) ** 2)

    # -- the Task of trainer.fit ----------------------------------------------------------------
    def batches(self, rng):
        """(samples, transform numbers) of the epoch's minibatches: each training sample
        ``copies_per_epoch`` times, in a random order, under random transforms."""
        s = self.settings
        samples = rng.permutation(np.repeat(self.split["train"], s.copies_per_epoch))
        copies = rng.integers(0, 4 * s.n_shifts, len(samples))
        for lo in range(0, len(samples), s.batch_size):
            yield samples[lo:lo + s.batch_size], copies[lo:lo + s.batch_size]

    def batch_loss(self, batch):
        x, y = self.batch(*batch)
        return self.loss(self.forward(x), y), len(x)

    def validation_loss(self) -> float:
        return self._evaluate_loss(*self.val_pairs)

    def fingerprint(self) -> dict:
        """What a checkpoint must share with this run (``epochs`` and ``patience`` may change:
        a finished run resumes to train longer, epoch by epoch as an uninterrupted one)."""
        settings = {k: v for k, v in self.settings.to_dict().items() if k not in ("epochs", "patience")}
        return {"task": self.task, "architecture": self.config.to_dict(), "settings": settings,
                "split": {k: v.tolist() for k, v in self.split.items()},
                "image": self.data.settings.to_dict(), "names": list(self.data.names), "data": _digest(self.data)}

    # -- loop ---------------------------------------------------------------------------------
    def run(self) -> tuple[ImageModel, dict]:
        s = self.settings
        record = fit(self, self.model.network, self.optimizer, s.epochs, s.patience, s.seed, self.checkpoint,
                     self.progress, f"train {self.task}", count_key="images")
        pixel_size = float(np.mean([self.data.pixel_maps[i].pixel_size for i in self.split["train"]]))
        record.update(split={k: [self.data.names[i] for i in v] for k, v in self.split.items()},
                      settings=s.to_dict(), pixel_size=pixel_size)
        self.model.info["pixel_size"] = pixel_size  # what predictions render other structures at
        return self.model, record

    def _validation_pairs(self):
        n_copies = 4 * self.settings.n_shifts
        picks = np.linspace(0, n_copies, self.settings.val_copies, endpoint=False).astype(int)
        samples = np.repeat(self.split["validation"], len(picks))
        return samples, np.tile(picks, len(self.split["validation"]))

    def _evaluate_loss(self, samples, copies) -> float:
        net = self.model.network
        net.eval()
        with torch.no_grad():
            outputs, targets = [], []
            for lo in range(0, len(samples), 64):
                x, y = self.batch(samples[lo:lo + 64], copies[lo:lo + 64])
                outputs.append(self.forward(x))
                targets.append(y)
            return float(self.loss(torch.cat(outputs), torch.cat(targets)))


# -- held-out evaluation ------------------------------------------------------------------------

def evaluate(model: ImageModel, dataset: ImageDataset, index, baseline_from=None, seed: int | None = None) -> dict:
    """Test metrics of ``model`` on samples ``index`` (augmentation-averaged), with the trivial
    baseline fitted on samples ``baseline_from`` (module docstring); per-sample predictions too."""
    index = np.asarray(index, int)
    if len(index) == 0:
        return {}
    pred = model.predict(dataset.images[index], seed=seed)
    truth = dataset.values[index]
    ref = dataset.values[np.asarray(baseline_from if baseline_from is not None else index, int)]
    task = dataset.target
    out = {"names": [dataset.names[i] for i in index]}
    if task in ("mu2", "strain"):
        out.update(model=regression_metrics(truth, pred),
                   baseline={"what": "training mean", **regression_metrics(truth, np.full(len(truth), ref.mean()))},
                   truth=truth.tolist(), predicted=pred.tolist())
    elif task == "location":
        periods = np.array([image_lengths(dataset.pixel_maps[i]) for i in index])
        constant = np.tile(circular_mean(ref), (len(index), 1))
        out.update(model=location_metrics(truth, pred, periods),
                   baseline={"what": "training circular-mean location",
                             **location_metrics(truth, constant, periods)},
                   truth=truth.tolist(), predicted=pred.tolist())
    else:
        mcc = [crack_mcc(p, dataset.atom_uv[i], dataset.atom_labels[i]) for p, i in zip(pred, index, strict=True)]
        rng = np.random.default_rng(0)
        random = [np.mean([crack_mcc(rng.random(pred[0].shape), dataset.atom_uv[i],
                                     dataset.atom_labels[i]) for _ in range(10)]) for i in index]
        out.update(model={"mean_mcc": float(np.mean(mcc)), "median_mcc": float(np.median(mcc)), "mcc": mcc,
                          "n": len(mcc)},
                   baseline={"what": "random ranking of atoms (10 draws)", "mean_mcc": float(np.mean(random))})
        out["predicted_maps"] = pred
    return out


def train_and_evaluate(dataset: ImageDataset, config: ResNetConfig | None = None,
                       settings: TrainSettings | None = None, checkpoint=None, progress=None,
                       split: dict | None = None) -> tuple:
    """Train (:class:`Trainer`, optional explicit ``split``), then evaluate on the test samples;
    the record is stored in the model's ``info``. Returns (model, record)."""
    trainer = Trainer(dataset, config, settings, checkpoint, progress, split)
    model, record = trainer.run()
    test = evaluate(model, dataset, trainer.split["test"], baseline_from=trainer.split["train"])
    test.pop("predicted_maps", None)
    record.update(test=test, published=PUBLISHED.get(dataset.target), dropped=dataset.dropped,
                  n_samples={k: len(v) for k, v in trainer.split.items()},
                  versions=package_versions(), git=git_revision())
    model.info.update(record)
    return model, record
