"""Shipped-model recipes (``glassfrac models NAME --build``): a tension dataset made by the campaign tool is
trained into a registered model whose card carries held-out metrics, and whose first-break probability is
a calibrated distribution over the atoms (:mod:`glassfrac.learn.recipes`,
:func:`glassfrac.learn.svm.fit_break_temperature`)."""

import json
from dataclasses import replace

import numpy as np
import pytest

from glassfrac.campaign.config import load_config
from glassfrac.campaign.datasets import export_part, merge_parts
from glassfrac.campaign.runner import run_campaign
from glassfrac.campaign.store import CampaignStore
from glassfrac.cli import main
from glassfrac.learn.exports import export_structure, read_export
from glassfrac.learn.recipes import RECIPES, build, role
from glassfrac.learn.registry import read_card
from glassfrac.learn.svm import break_distribution, fit_break_temperature, softness_rank

CONFIG = """
[campaign]
name = "tiny-monolayer-tension"
seed = 5

[[samples]]
kind = "monolayer"
rings = [4, 4]
distribution = "gamma"
mu2_range = [0.3, 0.8]
count = 14

[potential]
monolayer = "yukawa2d"

[relax]
method = "lbfgs"
fmax = 1e-5

[tests]
run = ["tension"]

[tests.tension]
step = 0.02
precision = 2e-3
fmax = 1e-5
stop_at_first_break = true

[output]
directory = "{directory}"
"""


def test_break_temperature_recovers_the_distribution_that_drew_the_first_breaks():
    rng = np.random.default_rng(3)
    beta, scores, labels, groups = 8.0, [], [], []
    for g in range(400):
        s = rng.normal(size=150)
        y = np.zeros(150, np.int8)
        y[rng.choice(150, p=break_distribution(s, beta))] = 1
        scores.append(s), labels.append(y), groups.append(np.full(150, g))
    fit = fit_break_temperature(np.concatenate(scores), np.concatenate(labels), np.concatenate(groups))
    assert fit["temperature"] == pytest.approx(beta, rel=0.15)
    assert fit["log_likelihood"] > fit["log_likelihood_uniform"] == pytest.approx(np.log(1 / 150))
    # the softest fraction q holds (1 - exp(-beta q)) / (1 - exp(-beta)) of the probability, at any size
    for n in (100, 10_000):
        p = break_distribution(rng.normal(size=n), beta)
        top = np.sort(p)[::-1][: n // 10].sum()
        assert p.sum() == pytest.approx(1.0) and top == pytest.approx((1 - np.exp(-0.8)) / (1 - np.exp(-8)), rel=0.05)
    np.testing.assert_allclose(softness_rank(np.array([0.5, 2.0, np.nan, -1.0])), [1 / 3, 0, np.nan, 2 / 3])
    assert break_distribution(np.array([1.0, np.nan]), beta)[1] == 0


def _dataset(tmp_path, config_text: str, name: str):
    """Run the 14-sample campaign of ``config_text`` and make it the dataset folder ``datasets/NAME``."""
    config = tmp_path / f"{name}.toml"
    config.write_text(config_text.format(directory=tmp_path / "campaign"))
    run_campaign(load_config(config), workers=0, show_progress=False)
    data = tmp_path / "datasets" / name
    export_part(CampaignStore.open(tmp_path / "campaign"), data, 0, 14)
    merge_parts(data)
    return data


def test_models_build_trains_registers_and_the_model_predicts_a_break_distribution(tmp_path, capsys):
    data = _dataset(tmp_path, CONFIG, "tiny")
    registry = tmp_path / "models"

    def run(*argv):
        status = main([*map(str, argv), "--json"])
        return status, json.loads(capsys.readouterr().out)

    status, out = run("models", "softness-monolayer", "--build", "--dataset", data, "--models", registry)
    assert status == 0, out
    card = read_card(registry / "softness-monolayer.json")
    assert card.rebuild == "glassfrac models softness-monolayer --build" and card.training_cpu_seconds > 0
    t = card.training
    assert (t["potential"], t["structure_kind"], t["species"], t["atoms"]) == ("yukawa2d", "monolayer", ["O", "Si"],
                                                                               [80, 80])
    assert t["samples"] == 14 and t["test_samples"] == 2 and t["labels"] == 14 * 80  # test: indices 4 and 9
    for name in ("sensitivity", "specificity", "roc_auc", "first_break_in_top5", "first_break_in_top10"):
        m = card.metrics[name]
        assert 0 <= m["low"] <= m["high"] <= 1 and 0 <= m["value"] <= 1 and m["n_samples"] <= 2, name
    assert card.metrics["first_break_in_top5"]["value"] <= card.metrics["first_break_in_top10"]["value"]
    calibration = out["evaluation"]["calibration"]
    assert calibration["temperature"] >= 0 and calibration["log_likelihood"] >= calibration["log_likelihood_uniform"]
    assert [role(i) for i in range(10)] == ["validation"] + ["train"] * 3 + ["test"] + ["train"] * 4 + ["test"]
    roles = [role(i) for i in range(1000)]
    assert (roles.count("test"), roles.count("validation"), roles.count("train")) == (200, 80, 720)

    model = card.load()
    sample = export_structure(read_export(data / "dataset.npz")[0])
    p = model.break_probability(sample)
    assert p.shape == (80,) and p.sum() == pytest.approx(1.0) and np.all(p >= 0)
    assert np.all(np.diff(p[np.argsort(-model.softness(sample), kind="stable")]) <= 0)  # softer, more probable

    status, out = run("models", "softness-monolayer", "--build", "--dataset", data, "--models", registry)
    assert status == 2 and "exists" in out["error"]  # refused before training, nothing replaced
    status, out = run("models", "no-such-model", "--build", "--models", registry)
    assert status == 2 and "softness-bilayer" in out["error"]


def test_the_threshold_map_recipe_trains_on_the_probed_windows_of_a_dataset(tmp_path, monkeypatch):
    shear_and_probe = CONFIG[:CONFIG.index("[tests]")] + """[tests]
run = ["shear", "probe"]

[tests.shear]
max_strain = 0.06
step = 0.01
precision = 1e-3
max_events = 1

[tests.probe]
grid = 2
r_free = 3.0
shell = 3.0
step = 0.02
precision = 1e-3

""" + CONFIG[CONFIG.index("[output]"):]
    data = _dataset(tmp_path, shear_and_probe, "probed")
    quick = replace(RECIPES["listi-gnn-monolayer"], settings={"model": "gnn", "train": {"epochs": 3, "patience": 3}})
    monkeypatch.setitem(RECIPES, "listi-gnn-monolayer", quick)
    built = build("listi-gnn-monolayer", tmp_path / "models", data)
    card = read_card(tmp_path / "models" / "listi-gnn-monolayer.json")
    assert card.kind == "listi-gnn" and card.training["labels"] == 14 * 4 and card.training["test_samples"] == 2
    assert -1 <= card.metrics["correlation"]["value"] <= 1 and card.metrics["rmse"]["value"] > 0
    assert built["evaluation"]["windows"] == {"train": 10 * 4, "validation": 2 * 4}  # by sample index
    model = card.load()
    sample = export_structure(read_export(data / "dataset.npz")[4])
    assert np.isfinite(model.predict_map(sample, grid=2)["threshold"]).all()
