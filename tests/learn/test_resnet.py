"""ResNet shapes and periodicity, the periodic location loss, the training loop and model files."""

import numpy as np
import pytest
import torch
from sklearn.metrics import matthews_corrcoef

from glassfrac.learn.gradcam import location_probability
from glassfrac.learn.images import ImageDataset, ImageSettings
from glassfrac.learn.render import PixelMap
from glassfrac.learn.resnet import (
    CrackNet,
    LocationMapNet,
    ResNetConfig,
    ResNetRegressor,
    SkipCrackNet,
    count_parameters,
    periodic_centroid,
)
from glassfrac.learn.training import (
    ImageModel,
    Trainer,
    TrainSettings,
    circular_mean,
    crack_distribution_loss,
    crack_mcc,
    evaluate,
    heatmap_loss,
    heatmap_target,
    location_loss,
    location_metrics,
    split_samples,
    train_and_evaluate,
)

TINY = ResNetConfig(blocks=(1, 1, 1, 1), widths=(4, 8, 8, 8), stem=4)


def test_stage_resolutions_and_resnet50_size():
    torch.manual_seed(0)
    net = ResNetRegressor(ResNetConfig.preset("small"))
    maps = net.stage_maps(torch.zeros(2, 1, 128, 128))
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 4]
    assert net(torch.zeros(2, 1, 128, 128)).shape == (2, 1)
    assert CrackNet(TINY)(torch.zeros(2, 1, 64, 64)).shape == (2, 1, 64, 64)
    # keras' ResNet50 without its top (3-channel input) counts 23 587 712 weights, with a bias on
    # each of its 53 convolutions and the BN moving mean and variance; ours: 1 channel, no conv
    # biases (BN follows), BN statistics as buffers, a 2049-weight linear head
    r50 = ResNetRegressor(ResNetConfig.preset("resnet50"))
    convs = [m for m in r50.modules() if isinstance(m, torch.nn.Conv2d)]
    bn = sum(m.num_features for m in r50.modules() if isinstance(m, torch.nn.BatchNorm2d))
    keras = count_parameters(r50) - 2049 + sum(c.out_channels for c in convs) + 2 * bn + 7 * 7 * 2 * 64
    assert len(convs) == 53 and keras == 23_587_712


def test_periodic_padding_makes_stride_multiple_shifts_exact():
    torch.manual_seed(0)
    net = ResNetRegressor(TINY).eval()
    x = torch.randn(1, 1, 64, 64)
    shifted = torch.roll(x, (32, -32), (2, 3))
    with torch.no_grad():
        a, b = net.stage_maps(x), net.stage_maps(shifted)
        for m, n in zip(a, b, strict=True):
            s = 32 * m.shape[-1] // 64
            assert torch.allclose(torch.roll(m, (s, -s), (2, 3)), n, atol=1e-5)
        assert torch.allclose(net(x), net(shifted), atol=1e-5)


def test_location_loss_is_periodic():
    y = torch.tensor([[0.05, 0.5], [0.3, 0.9]])
    y_hat = torch.tensor([[0.95, 0.5], [0.3, 0.1]])
    d = torch.tensor([[0.1, 0.0], [0.0, -0.2]])  # nearest-image differences
    expected = (d**2).sum(1).mean() + (d.mean(0) ** 2).sum()
    assert torch.allclose(location_loss(y, y_hat), expected)
    shift = torch.tensor([[3.0, -2.0], [1.0, 5.0]])
    assert torch.allclose(location_loss(y + shift, y_hat + shift), expected)  # both shifted by periods
    assert torch.allclose(location_loss(y, y_hat - shift), expected)  # prediction off by whole periods
    assert torch.allclose(location_loss(y, y + 7.0), torch.tensor(0.0))
    # the bias term: the same error on every sample doubles the loss
    assert torch.allclose(location_loss(y, y + 0.1), torch.tensor(2 * 2 * 0.01))


def test_circular_mean_mcc_and_split():
    assert np.allclose(circular_mean([0.95, 0.05]) % 1.0 * (1 - circular_mean([0.95, 0.05]) % 1.0), 0, atol=1e-12)
    assert np.isclose(circular_mean([0.2, 0.4]), 0.3)
    # crack_mcc's MCC is scikit-learn's: ±1 at the extremes, 0 when undefined
    assert matthews_corrcoef([1, 1, 0, 0], [1, 1, 0, 0]) == 1.0
    assert matthews_corrcoef([1, 1, 0, 0], [0, 0, 1, 1]) == -1.0
    assert crack_mcc(np.zeros((10, 10)), np.full((4, 2), 0.5), np.zeros(4, int)) == 0.0
    field = np.zeros((10, 10))
    field[3, :] = 1.0  # a predicted horizontal crack at row 3
    uv = np.array([[(c + 0.5) / 10, (r + 0.5) / 10] for r in range(10) for c in range(10)])
    labels = (np.arange(100) // 10 == 3).astype(int)  # 10 % of the atoms
    assert crack_mcc(field, uv, labels) == 1.0
    split = split_samples(100, seed=1)
    assert [len(split[k]) for k in ("train", "validation", "test")] == [72, 8, 20]
    assert len(np.unique(np.concatenate(list(split.values())))) == 100
    assert all(np.array_equal(split[k], split_samples(100, seed=1)[k]) for k in split)


def test_location_metrics_with_per_axis_periods():
    u = np.array([[0.05, 0.5], [0.5, 0.02]])
    u_hat = np.array([[0.95, 0.5], [0.5, 0.98]])  # 0.1 of the period away across the edges
    m = location_metrics(u, u_hat, np.array([[20.0, 30.0], [20.0, 30.0]]))
    assert np.allclose(m["errors"], [2.0, 1.2])
    assert np.allclose(location_metrics(u, u_hat, np.array([20.0, 20.0]))["errors"], [2.0, 0.8])


def _toy(task="mu2", n=20, size=32, seed=0):
    """Images of Gaussian blobs; target = number of blobs (scalar) or position of the one blob."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    images, values = [], []
    for _ in range(n):
        k = rng.integers(1, 5) if task != "location" else 1
        centres = rng.random((k, 2))
        img = rng.random((size, size)) * 0.1
        for cx, cy in centres:
            dx = (xx + 0.5) / size - cx
            dy = (yy + 0.5) / size - cy
            dx, dy = dx - np.round(dx), dy - np.round(dy)
            img += np.exp(-(dx**2 + dy**2) * size**2 / 8)
        images.append(img)
        values.append(float(k) if task != "location" else centres[0])
    pm = [PixelMap(1.0, (0.0, 0.0), (size, size))] * n
    uv = [np.zeros((0, 2))] * n
    return ImageDataset(np.asarray(images, np.float32), [f"s{i}" for i in range(n)], pm, task, np.asarray(values),
                        uv, [np.zeros(0, int)] * n, settings=ImageSettings(size=size, pixels=2 * size))


def test_training_learns_resumes_exactly_and_saves(tmp_path):
    data = _toy()
    settings = TrainSettings(epochs=4, batch_size=8, lr=3e-3, seed=0, n_shifts=2, val_copies=2)
    model, record = Trainer(data, TINY, settings).run()
    losses = [h["train_loss"] for h in record["history"]]
    assert len(losses) == 4 and losses[-1] < losses[0]
    best = min(record["history"], key=lambda h: h["val_loss"])
    assert record["best_epoch"] == best["epoch"]
    # interrupted after 2 epochs and resumed: the same weights as the uninterrupted run
    ckpt = tmp_path / "run.ckpt"
    Trainer(data, TINY, TrainSettings(**{**settings.__dict__, "epochs": 2}), checkpoint=ckpt).run()
    resumed, record2 = Trainer(data, TINY, settings, checkpoint=ckpt).run()
    for (k, a), b in zip(model.network.state_dict().items(), resumed.network.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert [h["val_loss"] for h in record2["history"]] == [h["val_loss"] for h in record["history"]]
    # a checkpoint of another run is refused
    with pytest.raises(Exception, match="different run"):
        Trainer(_toy(seed=1), TINY, settings, checkpoint=ckpt).run()
    # the model file predicts exactly what the model does
    model.save(tmp_path / "m.safetensors")
    loaded = ImageModel.load(tmp_path / "m.safetensors")
    assert np.array_equal(loaded.predict(data.images[:3]), model.predict(data.images[:3]))
    assert loaded.task == "mu2" and loaded.config == TINY


def test_the_huber_loss_bounds_the_pull_of_an_outlier():
    data = _toy()
    y = torch.tensor([[0.0], [0.5], [13.0]])  # standardised targets; the last one 13 sigma off
    out = torch.zeros(3, 1, requires_grad=True)
    pulls = {}
    for name in ("mse", "huber"):
        trainer = Trainer(data, TINY, TrainSettings(epochs=1, n_shifts=2, val_copies=2, scalar_loss=name))
        out.grad = None
        trainer.loss(out, y).backward()
        pulls[name] = out.grad[:, 0].abs()
    assert pulls["mse"][2] == pytest.approx(2 * 13 / 3) and pulls["huber"][2] == pytest.approx(1 / 3)  # capped at δ
    assert pulls["huber"][1] == pytest.approx(pulls["mse"][1] / 2)  # within δ: half the squared error's
    with pytest.raises(Exception, match="scalar_loss"):
        TrainSettings(scalar_loss="l1")


def test_location_evaluation_undoes_transforms():
    """A model that outputs the exact (transformed) blob position is right after averaging."""
    data = _toy("location", n=4)
    model = ImageModel("location", TINY, data.settings, 0.0, 1.0)

    def oracle(x):  # position of the brightest pixel of each standardised image, fractional
        flat = x[:, 0].reshape(len(x), -1).argmax(1)
        row, col = flat // 32, flat % 32
        return torch.stack([(col + 0.5) / 32, (row + 0.5) / 32], 1).float()

    model.network.forward = oracle
    out = evaluate(model, data, np.arange(4))
    assert out["model"]["mean_error"] < 1.0  # px = Å here; within a pixel of the true centre
    assert out["baseline"]["mean_error"] > 3 * out["model"]["mean_error"]


def test_periodic_centroid_peaks_and_wraps():
    logits = torch.full((2, 1, 8, 8), -50.0)
    logits[0, 0, 2, 5] = 50.0  # row 2, column 5
    logits[1, 0, 3, [0, 7]] = 50.0  # two columns either side of the edge: centroid on the edge
    u = periodic_centroid(logits)
    assert torch.allclose(u[0], torch.tensor([5.5 / 8, 2.5 / 8]), atol=1e-6)
    assert min(float(u[1, 0]), 1 - float(u[1, 0])) < 1e-6 and abs(float(u[1, 1]) - 3.5 / 8) < 1e-6


def test_heatmap_head_moves_with_the_input_where_the_pooled_head_cannot():
    torch.manual_seed(0)
    config = ResNetConfig(blocks=(1, 1, 1, 1), widths=(4, 8, 8, 8), stem=4, skips=True)
    pooled, mapped = ResNetRegressor(config, 2).eval(), LocationMapNet(config).eval()
    x = torch.randn(1, 1, 64, 64)
    shifted = torch.roll(x, (32, 32), (2, 3))  # the total stride: half of the image
    with torch.no_grad():
        assert torch.allclose(pooled(x), pooled(shifted), atol=1e-5)  # blind to the shift
        assert torch.allclose(torch.roll(mapped.heatmap(x), (32, 32), (2, 3)), mapped.heatmap(shifted), atol=1e-4)
        moved = torch.remainder(mapped(shifted) - mapped(x), 1.0)  # by half a period (untrained: a flat map,
        assert torch.allclose(moved, torch.full((1, 2), 0.5), atol=2e-3)  # so a loosely defined centroid)
    assert SkipCrackNet(config)(x).shape == (1, 1, 64, 64)


def test_heatmap_and_crack_distribution_losses():
    y = torch.tensor([[0.99, 0.5], [0.25, 0.0]])
    q = heatmap_target(y, (16, 32), 2.0)
    assert torch.allclose(q.sum(dim=(1, 2)), torch.ones(2))
    assert np.unravel_index(int(q[0].argmax()), (16, 32)) == (7, 31)  # nearest pixel centres (x = 31.5, y = 7.5)
    assert torch.isclose(q[1, 0, 7], q[1, 15, 7])  # periodic in y: rows 0 and 15 equally near y = 0
    # cross-entropy against the target is smallest (= its entropy) for logits = log q
    entropy = -(q * q.log()).sum(dim=(1, 2)).mean()
    assert torch.isclose(heatmap_loss(q.log()[:, None], y, 2.0), entropy, atol=1e-5)
    assert heatmap_loss(torch.zeros(2, 1, 16, 32), y, 2.0) > entropy + 1.0
    # crack: the noise floor is removed before normalising
    target = torch.full((1, 1, 4, 4), 0.25)
    target[0, 0, 1, :] = 1.25
    uniform_row = torch.full((1, 1, 4, 4), -30.0)
    uniform_row[0, 0, 1, :] = 0.0
    assert torch.isclose(crack_distribution_loss(uniform_row, target, 0.25), torch.log(torch.tensor(4.0)), atol=1e-5)


def test_heatmap_location_model_learns_given_split_and_round_trips(tmp_path):
    data = _toy("location", n=24)
    split = {"train": np.arange(16), "validation": np.arange(16, 18), "test": np.arange(18, 24)}
    config = ResNetConfig(blocks=(1, 1, 1, 1), widths=(8, 8, 8, 8), stem=8, skips=True)
    settings = TrainSettings(epochs=8, batch_size=8, lr=1e-2, seed=0, n_shifts=2, val_copies=2, head="heatmap",
                             location_loss="heatmap", copies_per_epoch=4)
    model, record = train_and_evaluate(data, config, settings, split=split)
    assert record["split"]["test"] == [f"s{i}" for i in range(18, 24)]
    test = record["test"]
    # blobs at random places: the constant baseline is ~ 0.38 of the 32 px side off
    assert test["model"]["mean_error"] < 0.5 * test["baseline"]["mean_error"]
    # the per-pixel probability of a test image: sums to 1, peaks at the blob
    p = location_probability(model, data.images[20])
    row, col = np.unravel_index(int(np.argmax(p)), p.shape)
    d = (np.array([(col + 0.5) / 32, (row + 0.5) / 32]) - data.values[20] + 0.5) % 1.0 - 0.5
    assert np.isclose(p.sum(), 1.0) and np.linalg.norm(d) * 32 < 3.0
    model.save(tmp_path / "loc.safetensors")
    loaded = ImageModel.load(tmp_path / "loc.safetensors")
    assert loaded.head == "heatmap" and np.array_equal(loaded.predict(data.images[:2]), model.predict(data.images[:2]))
    with pytest.raises(Exception, match="disjoint"):
        Trainer(data, config, settings, split={**split, "validation": np.arange(15, 18)})
    with pytest.raises(ValueError):
        TrainSettings(location_loss="heatmap")  # needs the heat-map head
