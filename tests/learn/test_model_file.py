"""The model-file module (round trip, refusals), the shared training loop (resume after a kill,
early stopping) and the GNN's attention convolution against its formula."""

import json
import math
import re

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from glassfrac.core.errors import InputError
from glassfrac.learn import model_file
from glassfrac.learn.gnn import AttentionConv
from glassfrac.learn.trainer import fit


def test_round_trip_of_torch_and_numpy_arrays(tmp_path):
    path = tmp_path / "m.safetensors"
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a": np.array([0.1, np.pi])}
    model_file.write(path, tensors, {"format": "glassfrac-test-1", "n": np.int64(3), "t": (1, 2)})
    meta, back = model_file.read(path, "glassfrac-test-1")
    assert meta == {"format": "glassfrac-test-1", "n": 3, "t": [1, 2]}
    assert torch.equal(back["w"], tensors["w"]) and back["a"].dtype == torch.float64
    assert np.array_equal(back["a"].numpy(), tensors["a"])
    with pytest.raises(ValueError, match="format"):
        model_file.write(path, tensors, {})


def test_pickles_foreign_files_and_other_formats_are_refused(tmp_path):
    pickled = tmp_path / "pickled.pt"
    torch.save({"w": torch.zeros(2)}, pickled)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    tagged = tmp_path / "tagged.safetensors"
    model_file.write(tagged, {"w": torch.zeros(2)}, {"format": "glassfrac-other-1"})
    for path in (pickled, text, bare):
        with pytest.raises(InputError, match=f"{path.name}: not a glassfrac image model file"):
            model_file.read(path, "glassfrac-test-1", "image model")
    with pytest.raises(InputError, match="tagged.safetensors: unknown file format 'glassfrac-other-1'"):
        model_file.read(tagged, "glassfrac-test-1")
    with pytest.raises(InputError, match="missing.safetensors: model file not found"):
        model_file.read(tmp_path / "missing.safetensors", "glassfrac-test-1")


class Line:
    """A Task for fit(): a straight line through noisy points, minibatches of 4."""

    def __init__(self, network, kill_at=None, seed=0):
        rng = np.random.default_rng(seed)
        self.x = torch.as_tensor(rng.random((24, 1)), dtype=torch.float32)
        self.y = 2 * self.x + 0.1 * torch.as_tensor(rng.standard_normal((24, 1)), dtype=torch.float32)
        self.network, self.kill_at, self.calls = network, kill_at, 0

    def batches(self, rng):
        order = rng.permutation(16)
        for lo in range(0, 16, 4):
            yield order[lo:lo + 4]

    def batch_loss(self, batch):
        return torch.mean((self.network(self.x[batch]) - self.y[batch]) ** 2), len(batch)

    def validation_loss(self):
        self.calls += 1
        if self.calls == self.kill_at:
            raise KeyboardInterrupt
        self.network.eval()
        with torch.no_grad():
            return float(torch.mean((self.network(self.x[16:]) - self.y[16:]) ** 2))

    def fingerprint(self):
        return {"task": "line", "data": float(self.y.sum())}


def _run(epochs, checkpoint=None, kill_at=None, patience=None, seed=0):
    torch.manual_seed(0)
    net = torch.nn.Linear(1, 1)
    task = Line(net, kill_at, seed)
    record = fit(task, net, torch.optim.Adam(net.parameters(), lr=0.05), epochs, patience, 3, checkpoint,
                 count_key="examples")
    return net, record


def test_a_killed_run_resumes_to_the_same_weights_and_history(tmp_path):
    net, record = _run(6)
    assert [h["examples"] for h in record["history"]] == [16] * 6
    path = tmp_path / "ckpt.safetensors"
    with pytest.raises(KeyboardInterrupt):
        _run(6, path, kill_at=4)  # killed during epoch 4: epochs 1-3 are in the checkpoint
    assert model_file.read(path, "glassfrac-checkpoint-1", "checkpoint")[0]["epoch"] == 3
    resumed, again = _run(6, path)
    assert torch.equal(net.weight, resumed.weight) and torch.equal(net.bias, resumed.bias)
    strip = [{k: v for k, v in h.items() if "seconds" not in k} for h in record["history"]]
    assert [{k: v for k, v in h.items() if "seconds" not in k} for h in again["history"]] == strip
    with pytest.raises(InputError, match="different run"):
        _run(6, path, seed=1)


def test_early_stopping_keeps_the_best_epoch():
    _, record = _run(40, patience=2)
    losses = [h["val_loss"] for h in record["history"]]
    best = int(np.argmin(losses))
    assert record["best_epoch"] == best + 1 and record["best_val_loss"] == losses[best]
    assert len(losses) == best + 3 or len(losses) == 40


def test_attention_convolution_is_its_formula():
    torch.manual_seed(1)
    conv = AttentionConv(4, 3)
    h, e = torch.randn(5, 4), torch.randn(7, 3)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 1, 2], [1, 0, 1, 1, 3, 2, 4]])
    out = conv(h, edge_index, e)
    q, k, v = conv.nodes(h).split(4, dim=1)
    ek, ev = conv.edges(e).split(4, dim=1)
    for i in range(5):
        into = [m for m in range(7) if edge_index[1, m] == i]
        scores = torch.stack([q[i] @ (k[edge_index[0, m]] + ek[m]) / math.sqrt(4) for m in into])
        alpha = torch.softmax(scores, 0)
        msg = sum((a * (v[edge_index[0, m]] + ev[m]) for a, m in zip(alpha, into, strict=True)), torch.zeros(4))
        expected = torch.relu(conv.update(torch.cat([h[i], msg])))
        assert torch.allclose(out[i], expected, atol=1e-6), i


def _tiny_models(root):
    from glassfrac.analysis.structure_functions import StructureFunctions
    from glassfrac.learn.images import ImageSettings
    from glassfrac.learn.listi import ListiModel
    from glassfrac.learn.resnet import ResNetConfig
    from glassfrac.learn.svm import SoftnessModel
    from glassfrac.learn.training import ImageModel
    from glassfrac.learn.windows import WindowSpec

    torch.manual_seed(0)
    ImageModel("mu2", ResNetConfig.preset("small"), ImageSettings(size=32, pixels=64), 1.0, 2.0).save(root / "image")
    ListiModel("cnn", WindowSpec(image_size=16), {"size": 16}).save(root / "listi")
    descriptor = StructureFunctions(species=("Si", "O"), radial_centers=(1.0, 2.0)).fit()
    n = descriptor.n_features_out_
    SoftnessModel(descriptor, np.zeros(n), np.ones(n), 0.1, weights=np.ones(n)).save(root / "softness")
    return {"image": ImageModel.load, "listi": ListiModel.load, "softness": SoftnessModel.load}


@pytest.mark.parametrize("kind, key, value, message", [
    ("image", "task", None, "key 'metadata.task': expected a string among"),
    ("image", "input_std", "big", "key 'metadata.input_std': expected a positive float (photons), got 'big'"),
    ("image", ("architecture", "stem"), None, "key 'metadata.architecture.stem': expected a positive int"),
    ("image", ("architecture", "widths"), [8, 8], "key 'metadata.architecture': blocks and widths need one entry"),
    ("image", ("image", "size"), "64", "key 'metadata.image.size'"),
    ("listi", "kind", "tree", "key 'metadata.kind': expected one of"),
    ("listi", "spec", None, "key 'metadata.spec': expected a table (required"),
    ("listi", ("architecture", "size"), 24, "weights do not fit the model"),
    ("softness", "kernel", None, "key 'metadata.kernel'"),
    ("softness", ("descriptor", "params", "cutoff"), "far", "key 'metadata.descriptor.params.cutoff'"),
    ("softness", ("descriptor", "feature_names"), ["a"], "other features than the saved ones"),
])
def test_model_metadata_is_checked_before_the_model_is_built(tmp_path, kind, key, value, message):
    """A missing key (value None) or a wrong one: an InputError naming the file and the key."""
    loaders = _tiny_models(tmp_path)
    with safe_open(str(tmp_path / kind), framework="pt") as handle:
        meta = json.loads(handle.metadata()["glassfrac"])
    path = (key,) if isinstance(key, str) else key
    target = meta
    for part in path[:-1]:
        target = target[part]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(str(tmp_path / kind)), str(bad), metadata={"glassfrac": json.dumps(meta)})
    with pytest.raises(InputError, match=re.escape(message)) as err:
        loaders[kind](bad)
    assert str(err.value).startswith(str(bad))


@pytest.mark.parametrize("kind", ["image", "listi", "softness"])
def test_weights_that_do_not_fit_are_named(tmp_path, kind):
    loaders = _tiny_models(tmp_path)
    with safe_open(str(tmp_path / kind), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(tmp_path / kind))
    first = sorted(tensors)[0]
    tensors[first] = torch.zeros(2, 3, dtype=tensors[first].dtype)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=metadata)
    with pytest.raises(InputError, match=f"wrong shape: {first} \\(2, 3\\)"):
        loaders[kind](tmp_path / "bad.safetensors")
    del tensors[first]
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=metadata)
    with pytest.raises(InputError, match=f"missing tensors: {first}"):
        loaders[kind](tmp_path / "bad.safetensors")
