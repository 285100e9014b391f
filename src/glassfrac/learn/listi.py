"""LISTI predictors (LISTI25 §5): local shear-stress thresholds Δτ (N/m) from window structure.

Models (``KINDS``), inputs from :mod:`glassfrac.learn.windows`:

- ``gnn``: node embedding, two blocks of graph convolutions with attention aggregation
  (α_ij = softmax_j((W_q h_i)·(W_k h_j + W_ke e_ij)/√d) over the bonds j → i and the self loop;
  message Σ_j α_ij (W_v h_j + W_ve e_ij); dense update ReLU(W_u [h_i, m_i])), block 1 with two
  convolutions and block 2 with one, each followed by a dense ReLU layer (LISTI25 eq. 2);
  global average pooling; MLP 20–10–5–1. Hidden width 32. In :mod:`glassfrac.learn.gnn`, on
  PyTorch Geometric (the optional extra ``learn``: only this kind needs it).
- ``cnn``: conv 5×5 with 32, 64, 32 filters (padding 2), each followed by ReLU and 2×2
  max-pooling; three dense layers of 10 (ReLU) and an output of 1 (LISTI25).
- ``lstm``: one LSTM layer of 128 over the padded sequence (padding masked by packing: the
  output is the state after the last real Si), dense 10 (ReLU), dense 1 (LISTI25). The Si
  coordinates enter in Å (``scale`` R/1 Å times the stored x/R, y/R): at x/R (std 0.5) the
  inputs barely move the gates of PyTorch's initial LSTM (weights ±1/√hidden): on 36 windows
  with a standardised ring-count target, 100 full-batch steps left a loss of 0.98 at x/R and
  0.83 in Å (hidden 64; tests/learn/test_listi.py).
- ``baseline``: physics-free gradient-boosted trees (scikit-learn, squared error, depth 3,
  learning rate 0.05, subsample 0.8) on window ring statistics; the number of trees
  (≤ 500) is the one with the lowest validation error. Held as arrays and evaluated with numpy.

Training (:func:`train`): targets standardised with the training mean and standard deviation;
MSE, AdaMax at lr 1e-3 (LISTI25), minibatches in a seeded order per epoch; augmentation by
the exact symmetries of pure shear (each window mirrored x → −x and/or y → −y at random, see
windows.py); validation loss after every epoch, the weights of the best epoch are kept and
training stops after ``patience`` epochs without improvement. The loop and its checkpoints are
:func:`glassfrac.learn.trainer.fit`'s: a run started again with the same data and settings
resumes from the checkpoint and ends with the same weights as an uninterrupted run. The split
is by sample.

Prediction (:meth:`ListiModel.predict_windows`, :meth:`ListiModel.predict_map`): with
``symmetrize`` (default) the prediction is the mean over the four mirror images of each window,
so it is exactly invariant under the symmetries of the load. A whole sample is mapped in
batches of windows into a dict like :func:`glassfrac.mechanics.probe.probe_map`'s (threshold
(n, n) N/m, centres, angles, unit), for :class:`~glassfrac.labels.probe.ThresholdMap`, ``goodness`` and
``plot_threshold_map``.

Measured (benchmarks/listi.py, figures there): 25 probed 1440-atom samples, 6,400 windows, split
by sample 15 / 4 / 6; test correlation with the probed Δτ GNN 0.86, CNN 0.72, LSTM 0.21,
baseline 0.17 (LISTI25 GNN 0.96 on 1.25·10^5 windows); goodness of the first event on the test
maps GNN 0.98, CNN 0.88, LSTM 0.19 (probed maps 0.97; LISTI25 0.93, 0.75, 0.50).

Model file (:mod:`glassfrac.learn.model_file`): safetensors of the weights (or tree arrays)
with a JSON header entry ``glassfrac`` (format, kind, architecture, window spec, target
standardisation, training record, versions); loading executes nothing.
"""

import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from sklearn.ensemble import GradientBoostingRegressor
from torch import nn

from glassfrac.core.errors import InputError
from glassfrac.core.schema import Key, Schema
from glassfrac.labels.probe import goodness
from glassfrac.learn import model_file
from glassfrac.learn.trainer import fit
from glassfrac.learn.training import split_samples
from glassfrac.learn.windows import (
    BASELINE_FEATURES,
    EDGE_FEATURES,
    KINDS,
    NODE_FEATURES,
    GraphSet,
    SiNetwork,
    WindowSpec,
    window_graphs,
    window_images,
    window_sequences,
)
from glassfrac.mechanics.probe import grid_centres

MODEL_FORMAT = "glassfrac-listi-1"
EVENTS = 6
"""Shear events scored by the goodness (LISTI25: the first six)."""
PUBLISHED = {
    "gnn": {"correlation": 0.96, "goodness_event1_train_val": 0.96, "goodness_event1_test": 0.93},
    "cnn": {"goodness_event1_train_val": 0.82, "goodness_event1_test": 0.75},
    "lstm": {"goodness_event1_train_val": 0.75, "goodness_event1_test": 0.50},
    "source": "LISTI25 (50 samples of 10^4 atoms, 50 x 50 grids, split 40/5/5 + 10 test samples)",
}
"""Published figures of LISTI25, reported next to ours."""


# -- networks -------------------------------------------------------------------------------------

class ListiCNN(nn.Module):
    """LISTI25's convolutional network (module docstring) for ``size`` × ``size`` images."""

    def __init__(self, size: int = 64):
        super().__init__()
        if size % 8:
            raise InputError(f"image size must be a multiple of 8, got {size}")
        layers, channels = [], 1
        for filters in (32, 64, 32):
            layers += [nn.Conv2d(channels, filters, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
            channels = filters
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(32 * (size // 8) ** 2, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(),
                                  nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 1))

    def forward(self, images):
        return self.head(self.features(images[:, None]))[:, 0]


class ListiLSTM(nn.Module):
    """LISTI25's recurrent network (module docstring); the sequences (x/R, y/R) are multiplied by
    ``scale`` first (``R``/1 Å by default: coordinates in Å, see the module docstring)."""

    def __init__(self, hidden: int = 128, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)
        self.lstm = nn.LSTM(2, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, 10), nn.ReLU(), nn.Linear(10, 1))

    def forward(self, sequences, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(sequences * self.scale, lengths.clamp(min=1), batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.head(h[-1])[:, 0]


# -- the baseline -----------------------------------------------------------------------------------

class BoostedTrees:
    """Sum of regression trees held as arrays: ``init + rate · Σ_t value[leaf_t(x)]``.

    Node arrays are concatenated over trees (``feature``, ``threshold``, ``left``, ``right``:
    global node numbers, −1 at leaves; ``value``), ``roots`` the first node of each tree.
    """

    def __init__(self, feature, threshold, left, right, value, roots, init: float, rate: float):
        self.feature, self.threshold = np.asarray(feature, np.int64), np.asarray(threshold, float)
        self.left, self.right = np.asarray(left, np.int64), np.asarray(right, np.int64)
        self.value, self.roots = np.asarray(value, float), np.asarray(roots, np.int64)
        self.init, self.rate = float(init), float(rate)

    @classmethod
    def fit(cls, X, y, X_val, y_val, seed: int = 0, max_trees: int = 500) -> "BoostedTrees":
        """Gradient boosting (module docstring), truncated at the best validation error."""
        gbr = GradientBoostingRegressor(n_estimators=max_trees, learning_rate=0.05, max_depth=3, subsample=0.8,
                                        random_state=seed).fit(X, y)
        errors = [np.mean((p - y_val) ** 2) for p in gbr.staged_predict(X_val)]
        keep = int(np.argmin(errors)) + 1
        parts = {k: [] for k in ("feature", "threshold", "left", "right", "value")}
        roots, offset = [], 0
        for tree in gbr.estimators_[:keep, 0]:
            t = tree.tree_
            roots.append(offset)
            leaf = t.children_left < 0
            parts["feature"].append(np.where(leaf, 0, t.feature))
            parts["threshold"].append(t.threshold)
            parts["left"].append(np.where(leaf, -1, t.children_left + offset))
            parts["right"].append(np.where(leaf, -1, t.children_right + offset))
            parts["value"].append(t.value[:, 0, 0])
            offset += t.node_count
        model = cls(*(np.concatenate(parts[k]) for k in parts), roots, gbr.init_.constant_[0, 0], gbr.learning_rate)
        model.n_trees = keep
        return model

    def predict(self, X) -> np.ndarray:
        """Predictions for feature rows (n, f); features compared in float32 as scikit-learn does."""
        X = np.asarray(X, np.float32).astype(float)
        node = np.broadcast_to(self.roots, (len(X), len(self.roots))).copy()
        rows = np.arange(len(X))[:, None]
        while True:
            inner = self.left[node] >= 0
            if not inner.any():
                break
            go_left = X[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return self.init + self.rate * self.value[node].sum(axis=1)

    def arrays(self) -> dict:
        return {"trees.feature": self.feature, "trees.threshold": self.threshold, "trees.left": self.left,
                "trees.right": self.right, "trees.value": self.value, "trees.roots": self.roots,
                "trees.init": np.array([self.init]), "trees.rate": np.array([self.rate])}

    @classmethod
    def from_arrays(cls, path, t: dict) -> "BoostedTrees":
        """The trees of :meth:`arrays` ``t`` read from the file ``path``, checked: every array
        present and 1-D, the node arrays of one length, child and root numbers among the nodes,
        feature numbers among the baseline features."""
        names = ("feature", "threshold", "left", "right", "value", "roots", "init", "rate")
        missing = [f"trees.{k}" for k in names if f"trees.{k}" not in t]
        if missing or any(np.ndim(v) != 1 for v in t.values()):
            raise InputError(f"baseline trees: expected the 1-D arrays {[f'trees.{k}' for k in names]}, "
                             f"missing {missing}", path)
        n = len(t["trees.feature"])
        nodes = [t[f"trees.{k}"] for k in ("left", "right", "roots")]
        ok = (all(len(t[f"trees.{k}"]) == n for k in names[1:5]) and len(t["trees.init"]) == 1
              and len(t["trees.rate"]) == 1 and all(np.all((a >= -1) & (a < n)) for a in nodes)
              and np.all(t["trees.roots"] >= 0) and np.all((t["trees.feature"] >= 0)
                                                            & (t["trees.feature"] < len(BASELINE_FEATURES))))
        inner = np.flatnonzero(t["trees.left"] >= 0) if ok else []
        if not ok or np.any(t["trees.left"][inner] <= inner) or np.any(t["trees.right"][inner] <= inner):
            raise InputError("baseline trees: node arrays of different lengths, or node numbers out of range "
                             "or not after their parent's", path)
        return cls(*(t[f"trees.{k}"] for k in names[:6]), float(t["trees.init"][0]), float(t["trees.rate"][0]))


# -- inputs of each kind ----------------------------------------------------------------------------

def prepare(kind: str, graphs: GraphSet, spec: WindowSpec):
    """What the inputs of ``kind`` are cut from: the graphs (gnn), images (cnn), sequences of the
    four mirror images (lstm), ring features (baseline)."""
    if kind == "gnn":
        return graphs
    if kind == "cnn":
        return torch.as_tensor(window_images(graphs, spec))
    if kind == "lstm":
        seqs = [window_sequences(graphs, spec, flip)[:2] for flip in range(4)]
        return torch.as_tensor(np.stack([s for s, _ in seqs])), torch.as_tensor(np.stack([n for _, n in seqs]))
    if kind == "baseline":
        return graphs.ring_features
    raise InputError(f"unknown model kind {kind!r}; choose from {KINDS}")


def inputs(kind: str, prepared, index, flips) -> tuple:
    """Network inputs of windows ``index`` mirrored by ``flips`` (codes of GraphSet.batch)."""
    index, flips = np.asarray(index), np.asarray(flips)
    if kind == "gnn":
        b = prepared.batch(index, flips)
        return (torch.as_tensor(b["x"]), torch.as_tensor(b["edge_index"]), torch.as_tensor(b["edge_attr"]),
                torch.as_tensor(b["batch"]), b["n_graphs"])
    if kind == "cnn":
        images = prepared[torch.as_tensor(index)].clone()
        for code in (1, 2, 3):
            rows = torch.as_tensor(np.flatnonzero(flips == code))
            dims = [d for bit, d in ((0, 2), (1, 1)) if code >> bit & 1]
            images[rows] = torch.flip(images[rows], dims)
        return (images,)
    seqs, lengths = prepared
    f, i = torch.as_tensor(flips), torch.as_tensor(index)
    return seqs[f, i], lengths[f, i]


def network_class(kind: str):
    """The network class of ``kind`` (gnn, cnn, lstm)."""
    if kind == "gnn":
        from glassfrac.learn.gnn import ListiGNN  # here: PyTorch Geometric takes ~1.4 s to import

        return ListiGNN
    return {"cnn": ListiCNN, "lstm": ListiLSTM}[kind]


def build_network(kind: str, architecture: dict) -> nn.Module:
    """The network of ``kind`` with ``architecture`` parameters."""
    return network_class(kind)(**architecture)


def default_architecture(kind: str, spec: WindowSpec) -> dict:
    return {"gnn": {"hidden": 32}, "cnn": {"size": spec.image_size}, "lstm": {"hidden": 128, "scale": spec.radius},
            "baseline": {}}[kind]


# -- the model --------------------------------------------------------------------------------------

class ListiModel:
    """A trained LISTI predictor: kind, network (or trees), window spec, target standardisation."""

    def __init__(self, kind: str, spec: WindowSpec, architecture: dict | None = None, target_mean: float = 0.0,
                 target_std: float = 1.0, symmetrize: bool = True, network=None, info: dict | None = None):
        if kind not in KINDS:
            raise InputError(f"unknown model kind {kind!r}; choose from {KINDS}")
        self.kind, self.spec = kind, spec
        self.architecture = dict(default_architecture(kind, spec) if architecture is None else architecture)
        self.target_mean, self.target_std = float(target_mean), float(target_std)
        self.symmetrize = bool(symmetrize)
        self.info = dict(info or {})
        self.network = network if network is not None or kind == "baseline" else build_network(kind, self.architecture)

    def predict_prepared(self, prepared, index, batch_size: int = 256) -> np.ndarray:
        """Δτ (N/m) of windows ``index`` from prepared inputs (:func:`prepare`)."""
        index = np.asarray(index)
        if self.kind == "baseline":
            return self.network.predict(prepared[index])
        flips = range(4) if self.symmetrize else (0,)
        out = np.zeros(len(index))
        self.network.eval()
        with torch.no_grad():
            for lo in range(0, len(index), batch_size):
                part = index[lo:lo + batch_size]
                raw = sum(self.network(*inputs(self.kind, prepared, part, np.full(len(part), f))) for f in flips)
                out[lo:lo + batch_size] = raw.numpy() / len(flips)
        return out * self.target_std + self.target_mean

    def predict_windows(self, graphs: GraphSet, batch_size: int = 256) -> np.ndarray:
        """Δτ (N/m) of every window of ``graphs``."""
        return self.predict_prepared(prepare(self.kind, graphs, self.spec), np.arange(len(graphs)), batch_size)

    def predict_map(self, structure, grid: int = 50, centres=None, load_angle: float = 0.0,
                    batch_size: int = 256) -> dict:
        """Threshold map of a structure: ``threshold`` (grid, grid) N/m at ``centres`` (the probe
        grid of :func:`~glassfrac.mechanics.probe.grid_centres` unless given; then (n,)),
        ``angles`` [load_angle], ``unit``, ``seconds`` (wall time of the prediction)."""
        start = time.perf_counter()
        given = centres is not None
        centres = np.asarray(centres, float).reshape(-1, 2) if given else grid_centres(structure.box, grid)
        network = SiNetwork.from_structure(structure)
        graphs = window_graphs(network, centres, load_angle, self.spec)
        threshold = self.predict_windows(graphs, batch_size)
        return {"threshold": threshold if given else threshold.reshape(grid, grid), "centres": centres,
                "angles": np.array([load_angle]), "unit": "N/m", "seconds": time.perf_counter() - start}

    # -- files ------------------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"format": MODEL_FORMAT, "kind": self.kind, "architecture": self.architecture,
                "spec": self.spec.to_dict(), "target_mean": self.target_mean, "target_std": self.target_std,
                "symmetrize": self.symmetrize, "node_features": list(NODE_FEATURES),
                "edge_features": list(EDGE_FEATURES), "baseline_features": list(BASELINE_FEATURES),
                "info": self.info}

    def save(self, path) -> None:
        """Write the model file (weights or tree arrays, JSON header entry ``glassfrac``), atomically."""
        tensors = self.network.arrays() if self.kind == "baseline" else self.network.state_dict()
        model_file.write(path, tensors, self.metadata())

    @classmethod
    def load(cls, path) -> "ListiModel":
        """Rebuild a model written by :meth:`save` (no code is executed from the file)."""
        meta, tensors = model_file.read(path, MODEL_FORMAT, "LISTI model", MODEL_META)
        kind = meta["kind"]
        spec = model_file.build(path, WindowSpec, meta["spec"], "metadata.spec",
                                *(Key(f.name, type(f.default), positive=True) for f in fields(WindowSpec)))
        if kind == "baseline":
            network = BoostedTrees.from_arrays(path, {k: v.numpy() for k, v in tensors.items()})
        else:
            network = model_file.build(path, network_class(kind), meta["architecture"], "metadata.architecture",
                                       *(Key(n, int, positive=True) for n in ("hidden", "size")))
            model_file.check_tensors(path, tensors, network.state_dict())
            network.load_state_dict(tensors)
        return cls(kind, spec, meta["architecture"], meta["target_mean"], meta["target_std"], meta["symmetrize"],
                   network, meta["info"])


MODEL_META = Schema((
    Key("kind", str, help="model kind", choices=KINDS),
    Key("spec", dict, help="WindowSpec"),
    Key("architecture", dict, {}, "the network's parameters"),
    Key("target_mean", float, help="standardisation of the thresholds", unit="N/m"),
    Key("target_std", float, positive=True, unit="N/m"),
    Key("symmetrize", bool, True), Key("info", dict, {}),
))
"""Metadata of a LISTI model file (:meth:`ListiModel.load`)."""


# -- training -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainSettings:
    """Loop settings (module docstring); ``epochs`` is the most epochs, ``patience`` in epochs."""

    epochs: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 30
    seed: int = 0
    augment: bool = True
    symmetrize: bool = True

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise InputError("epochs, batch_size and patience must be positive")

    def to_dict(self) -> dict:
        return asdict(self)


def split_by_sample(n_samples: int, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> dict:
    """Sample numbers of the train / validation / test parts (seeded; each part non-empty)."""
    return {k: [int(i) for i in v] for k, v in split_samples(n_samples, fractions, seed).items()}


def windows_of(graphs: GraphSet, samples) -> np.ndarray:
    """Window numbers of the given samples, with a known target."""
    return np.flatnonzero(np.isin(graphs.sample, list(samples)) & np.isfinite(graphs.y))


class Trainer:
    """Train one model of ``kind`` on ``graphs`` (targets ``y``) with the split ``split`` (sample
    numbers per part); :meth:`run` returns the model with the best validation weights and its
    record (module docstring). The model-specific parts of :func:`glassfrac.learn.trainer.fit`."""

    def __init__(self, kind: str, graphs: GraphSet, split: dict, spec: WindowSpec | None = None,
                 settings: TrainSettings | None = None, architecture: dict | None = None, checkpoint=None,
                 progress=None):
        self.kind, self.graphs, self.split = kind, graphs, split
        self.spec = spec or WindowSpec(radius=graphs.radius)
        if self.spec.radius != graphs.radius:
            raise InputError(f"spec radius {self.spec.radius} Å differs from the windows' {graphs.radius} Å")
        self.settings = settings or TrainSettings()
        self.checkpoint = checkpoint
        self.progress = progress
        self.train_windows = windows_of(graphs, split["train"])
        self.val_windows = windows_of(graphs, split["validation"])
        if len(self.train_windows) == 0 or len(self.val_windows) == 0:
            raise InputError("the training and validation samples need windows with probed thresholds")
        y = graphs.y[self.train_windows].astype(float)
        s = self.settings
        torch.manual_seed(s.seed)
        self.model = ListiModel(kind, self.spec, architecture, float(y.mean()), float(y.std()) or 1.0, s.symmetrize)
        self.prepared = prepare(kind, graphs, self.spec)

    def run(self) -> tuple[ListiModel, dict]:
        start, cpu = time.perf_counter(), time.process_time()
        if self.kind == "baseline":
            record = self._fit_baseline()
        else:
            record = self._fit_network()
        record.update(kind=self.kind, split=self.split, settings=self.settings.to_dict(), spec=self.spec.to_dict(),
                      windows={"train": len(self.train_windows), "validation": len(self.val_windows)},
                      train_seconds=time.perf_counter() - start, train_cpu_seconds=time.process_time() - cpu)
        self.model.info.update(record)
        return self.model, record

    def _fit_baseline(self) -> dict:
        X, y = self.prepared, self.graphs.y.astype(float)
        t, v = self.train_windows, self.val_windows
        trees = BoostedTrees.fit(X[t], y[t], X[v], y[v], seed=self.settings.seed)
        self.model.network = trees
        val = float(np.mean((trees.predict(X[v]) - y[v]) ** 2)) / self.model.target_std**2
        return {"n_trees": trees.n_trees, "best_val_loss": val, "history": []}

    def _targets(self, index):
        y = (self.graphs.y[index] - self.model.target_mean) / self.model.target_std
        return torch.as_tensor(y, dtype=torch.float32)

    # -- the Task of trainer.fit ------------------------------------------------------------------------
    def batches(self, rng):
        """(windows, mirror codes) of the epoch's minibatches: the training windows in a random
        order, each mirrored at random with ``augment``."""
        s = self.settings
        order = rng.permutation(self.train_windows)
        flips = rng.integers(0, 4, len(order)) if s.augment else np.zeros(len(order), np.int64)
        for lo in range(0, len(order), s.batch_size):
            yield order[lo:lo + s.batch_size], flips[lo:lo + s.batch_size]

    def batch_loss(self, batch):
        part, flips = batch
        output = self.model.network(*inputs(self.kind, self.prepared, part, flips))
        return torch.mean((output - self._targets(part)) ** 2), len(part)

    def validation_loss(self) -> float:
        y = self.graphs.y[self.val_windows]
        pred = self.model.predict_prepared(self.prepared, self.val_windows)
        return float(np.mean((pred - y) ** 2)) / self.model.target_std**2

    def fingerprint(self) -> dict:
        """What a checkpoint must share with this run (``epochs`` and ``patience`` may change; test
        windows may be added, they take no part in training)."""
        settings = {k: v for k, v in self.settings.to_dict().items() if k not in ("epochs", "patience")}
        digest = {}
        for part, index in (("train", self.train_windows), ("validation", self.val_windows)):
            y = np.round(self.graphs.y[index].astype(float), 6)
            digest[part] = [len(index), int(index.sum()), float(y.sum()), float((y**2).sum())]
        return {"kind": self.kind, "architecture": self.model.architecture, "settings": settings,
                "spec": self.spec.to_dict(), "split": {k: self.split[k] for k in ("train", "validation")},
                "windows": digest}

    def _fit_network(self) -> dict:
        s, net = self.settings, self.model.network
        optimizer = torch.optim.Adamax(net.parameters(), lr=s.lr)
        record = fit(self, net, optimizer, s.epochs, s.patience, s.seed, self.checkpoint, self.progress,
                     f"train {self.kind}")
        record["epochs_run"] = len(record["history"])
        return record


# -- held-out evaluation ------------------------------------------------------------------------------

def predict_windows_of(model: ListiModel, graphs: GraphSet, sample_numbers) -> tuple[np.ndarray, np.ndarray]:
    """(window numbers, predicted Δτ N/m) of the windows of the samples ``sample_numbers`` (:func:`windows_of`)."""
    index = windows_of(graphs, [int(k) for k in sample_numbers])
    if len(index) == 0:
        return index, np.zeros(0)
    prepared = prepare(model.kind, graphs.subset(index), model.spec)
    return index, model.predict_prepared(prepared, np.arange(len(index)))


def evaluate(model: ListiModel, samples, graphs: GraphSet, sample_numbers, predicted=None) -> dict:
    """Figures of ``model`` on the samples ``sample_numbers`` (of ``samples``, :class:`ProbedSample`
    list, whose windows are ``graphs``): Pearson correlation and RMSE (N/m) of predicted and probed
    Δτ over all their windows; per event rank 1–6, the mean goodness C = 1 − 2F of the predicted
    and of the probed maps over the samples with that many events (LISTI25 eq. 1), and per sample with
    events the mean C of its events 1–6 (``per_sample_goodness``). ``predicted``: the model's Δτ of those
    windows if already computed (:func:`predict_windows_of`)."""
    sample_numbers = [int(k) for k in sample_numbers]
    if predicted is None:
        index, predicted = predict_windows_of(model, graphs, sample_numbers)
    else:
        index = windows_of(graphs, sample_numbers)
    if len(index) == 0:
        return {}
    probed = graphs.y[index].astype(float)
    out = {"samples": [samples[k].name for k in sample_numbers], "windows": len(index),
           "correlation": float(np.corrcoef(predicted, probed)[0, 1]),
           "rmse": float(np.sqrt(np.mean((predicted - probed) ** 2))), "unit": "N/m"}
    per_rank = {"predicted": [[] for _ in range(EVENTS)], "probed": [[] for _ in range(EVENTS)]}
    per_sample = {"predicted": [], "probed": []}
    for k in sample_numbers:
        s = samples[k]
        if s.events is None or len(s.events) == 0:
            continue
        mine = graphs.sample[index] == k
        events = s.events[:EVENTS]
        for name, values in (("predicted", predicted[mine]), ("probed", probed[mine])):
            c = goodness(values, graphs.centres[index][mine], events, s.structure.box)
            for rank, value in enumerate(c):
                per_rank[name][rank].append(float(value))
            per_sample[name].append(float(np.mean(c)))
    if any(per_rank["probed"]):
        out["goodness"] = {name: [float(np.mean(v)) if v else None for v in ranks] for name, ranks in per_rank.items()}
        out["goodness_samples"] = [len(v) for v in per_rank["probed"]]
        out["per_sample_goodness"] = per_sample
    return out
