"""``glassfrac cnn train|predict|scan`` and ``glassfrac explain`` on a tiny folder dataset."""

import argparse
import json

import numpy as np
import pytest

from glassfrac.cli import cnn as cnn_commands
from glassfrac.structure import Box, Structure, write


def _run(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cnn_commands.register(sub)
    args = parser.parse_args(argv)
    return args.handler(args)


def _sample(k, n_side=5, spacing=3.0):
    rng = np.random.default_rng(k)
    g = np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side)), -1).reshape(-1, 2) * spacing + 1.0
    pos = g + rng.normal(0, 0.15, g.shape)
    crack = (np.abs(pos[:, 0] - 7.0) < 2.0).astype(np.int8)
    return Structure(pos, ["Si"] * len(pos), Box([n_side * spacing] * 2), arrays={"crack": crack},
                     info={"rupture_strain": 0.1 + 0.01 * k, "rupture_location": [7.0, float(k % 5) * 3.0 + 1.0]})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    for k in range(10):
        write(_sample(k), folder / f"s{k:02d}.xyz")
    return folder


COMMON = ["--epochs", "2", "--size", "32", "--pixels", "64", "--shifts", "1", "--val-copies", "2", "--batch-size", "4"]


def test_train_predict_explain_strain(dataset, tmp_path):
    model = tmp_path / "strain.safetensors"
    out = _run(["cnn", "train", str(dataset), "--target", "strain", "-o", str(model), *COMMON,
                "--figure", str(tmp_path / "test.png")])
    assert out["n_samples"] == {"test": 2, "validation": 1, "train": 7}
    assert out["epochs_run"] == 2 and set(out["test"]) == {"model", "baseline"}
    assert model.is_file() and (tmp_path / "test.png").is_file()
    assert (tmp_path / "strain.safetensors.checkpoint").is_file()
    again = _run(["cnn", "train", str(dataset), "--target", "strain", "-o", str(model), *COMMON, "--overwrite"])
    assert again["test"] == out["test"]  # resumed from the finished checkpoint: same model
    pred = _run(["cnn", "predict", str(model), str(dataset / "s03.xyz")])
    assert pred["target"] == "strain" and np.isfinite(pred["prediction"])
    summary = _run(["explain", str(model), str(dataset / "s03.xyz"), "-o", str(tmp_path / "explain")])
    assert sorted(summary["stats"]["t"]) == [1, 2, 4, 8]  # 32 px input: stages of 8, 4, 2, 1 px
    assert 0 < summary["stats"]["t"][8]["phi"] <= 1 and "peak_distance" in summary["stats"]["t"][8]
    saved = json.loads((tmp_path / "explain" / "explain.json").read_text())
    assert saved["target"] == "strain"
    with np.load(tmp_path / "explain" / "attention.npz") as maps:
        assert maps["G_t_r8"].shape == (32, 32)
    assert (tmp_path / "explain" / "attention.png").is_file()


def test_location_and_crack_models(dataset, tmp_path):
    loc = tmp_path / "loc.safetensors"
    out = _run(["cnn", "train", str(dataset), "--target", "location", "-o", str(loc), *COMMON])
    assert out["test"]["model"]["unit"] == "angstrom"
    pred = _run(["cnn", "predict", str(loc), str(dataset / "s01.xyz")])
    assert len(pred["prediction"]) == 2 and 0 <= min(pred["prediction"]) and max(pred["prediction"]) <= 15.0
    summary = _run(["explain", str(loc), str(dataset / "s01.xyz"), "-o", str(tmp_path / "ex")])
    assert set(summary["stats"]) == {"x", "y"} and (tmp_path / "ex" / "attention_field.png").is_file()
    crack = tmp_path / "crack.safetensors"
    out = _run(["cnn", "train", str(dataset), "--target", "crack", "-o", str(crack), *COMMON])
    assert -1 <= out["test"]["model"]["mean_mcc"] <= 1
    pred = _run(["cnn", "predict", str(crack), str(dataset / "s02.xyz"), "-o", str(tmp_path / "c.xyz")])
    assert pred["n_predicted_crack"] == 2  # top 10 % of 25 imaged atoms, rounded
    assert (tmp_path / "c.xyz").is_file()


def test_scan_on_larger_samples(dataset, tmp_path):
    model = tmp_path / "strain.safetensors"
    _run(["cnn", "train", str(dataset), "--target", "strain", "-o", str(model), *COMMON])
    big = tmp_path / "big"
    big.mkdir()
    for k in range(2):
        write(_sample(k, n_side=10), big / f"b{k}.xyz")
    out = _run(["cnn", "scan", str(model), str(big), "--stride", "8", "--figure", str(tmp_path / "p.png")])
    assert len(out["samples"]) == 2 and out["p_inside"][-1] == 1.0
    assert np.all(np.diff(out["p_inside"]) >= 0)


def test_heatmap_location_skip_crack_and_heatmap_scan(dataset, tmp_path):
    loc = tmp_path / "loc.safetensors"
    out = _run(["cnn", "train", str(dataset), "--target", "location", "-o", str(loc), *COMMON, "--head", "heatmap",
                "--location-loss", "heatmap", "--heatmap-sigma", "1.5"])
    assert out["head"] == "heatmap" and out["test"]["model"]["unit"] == "angstrom"
    pred = _run(["cnn", "predict", str(loc), str(dataset / "s01.xyz")])
    assert len(pred["prediction"]) == 2 and 0 <= min(pred["prediction"]) and max(pred["prediction"]) <= 15.0
    summary = _run(["explain", str(loc), str(dataset / "s01.xyz"), "-o", str(tmp_path / "ex")])
    assert set(summary["stats"]) == {"x", "y"}  # Grad-CAM through the heat map and its centroid
    big = tmp_path / "big"
    big.mkdir()
    for k in range(2):
        write(_sample(k, n_side=10), big / f"b{k}.xyz")
    scan = _run(["cnn", "scan", str(loc), str(big)])
    assert len(scan["samples"]) == 2 and scan["p_inside"][-1] == 1.0 and np.all(np.diff(scan["p_inside"]) >= 0)
    crack = tmp_path / "crack.safetensors"
    out = _run(["cnn", "train", str(dataset), "--target", "crack", "-o", str(crack), *COMMON, "--skips",
                "--crack-loss", "distribution"])
    assert out["skips"] and -1 <= out["test"]["model"]["mean_mcc"] <= 1
    pred = _run(["cnn", "predict", str(crack), str(dataset / "s02.xyz")])
    assert pred["n_predicted_crack"] == 2
