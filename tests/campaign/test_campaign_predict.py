"""The campaign stage ``predict`` (shipped models on the relaxed sample, before its tests), the
prediction-against-outcome section it makes possible (:mod:`glassfrac.campaign.outcome`), and the relax
stage's record of the bonds a relaxation breaks."""

import json
from pathlib import Path

import numpy as np

from glassfrac.campaign.config import load_config, parse_config
from glassfrac.campaign.export import export_dataset, split
from glassfrac.campaign.outcome import write_outcome
from glassfrac.campaign.pipeline import Plan, SampleResult, run_sample
from glassfrac.campaign.runner import open_store, report_campaign, run_campaign
from glassfrac.campaign.samples import expand
from glassfrac.campaign.store import row_structure
from glassfrac.labels.probe import ThresholdMap

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
[campaign]
name = "predicted"
seed = 5

[[samples]]
kind = "monolayer"
rings = [8, 8]
mu2 = [0.5]
count = 1
tests = ["predict"]

[[samples]]
kind = "monolayer"
rings = [8, 8]
mu2 = [0.5]
count = 1

[relax]
method = "lbfgs"
fmax = 1e-5

[tests]
run = ["predict", "tension", "probe"]

[tests.tension]
step = 0.01
precision = 0.001
fmax = 1e-5
stop_at_first_break = true

[tests.probe]
grid = 3
r_free = 5.0
shell = 5.0
load_angle = 90.0

[output]
directory = "{directory}"
"""


def test_samples_are_predicted_before_their_tests_and_scored_against_the_outcome(tmp_path):
    config = parse_config(CONFIG.format(directory=tmp_path / "c"))
    assert run_campaign(config, workers=0, show_progress=False)["done"] == 2
    store = open_store(config)
    only, loaded = store.rows()
    assert list(only.data["provenance"]["timings"]) == ["generate", "relax", "predict"]
    assert list(loaded.data["provenance"]["timings"]) == ["generate", "relax", "predict", "tension", "probe"]
    assert only.get("rupture_strain") is None and loaded.rupture_strain > 0
    tension_models = ("first_break", "mu2", "rupture_strain", "rupture_location")
    for row in (only, loaded):  # the 8 x 8 Yukawa monolayers are the shipped tension models' domain
        predictions = row.data["prediction"]["predictions"]
        assert all(predictions[task]["in_domain"] for task in tension_models)
        assert 0 < row.predicted_mu2 < 2 and 0 < row.predicted_rupture_strain < 0.3
        probability = np.asarray(row.data["arrays"]["first_break_probability"])
        assert probability.shape == (row.natoms,) and abs(probability.sum() - 1) < 1e-9
        saved = json.loads((store.sample_dir(row.sample_id) / "prediction/prediction.json").read_text())
        assert saved["predicted_at"] == row.data["prediction"]["predicted_at"]
    data = split(np.load(export_dataset(store, tmp_path / "d.npz")["output"]))
    probed = ThresholdMap.load(store.sample_dir("s000001") / "map.npz")
    assert np.isclose(probed.load_angle, np.pi / 2)  # the config's degrees are the map's radians
    assert data[0]["window_threshold"].shape == (0,)
    assert np.array_equal(data[1]["window_threshold"], probed.threshold.ravel())
    assert np.array_equal(data[1]["window_centre"], probed.centres.reshape(-1, 2))
    assert np.array_equal(data[1]["softness"], loaded.data["arrays"]["softness"])
    outcome = write_outcome(store)
    assert outcome["samples"] == 2
    softness = outcome["scores"]["monolayer"]["softness"]
    assert softness["first break: ROC AUC"]["n"] == 1  # only the loaded sample has a first break
    assert softness["first break: ROC AUC"]["mean"] > softness["first break: ROC AUC"]["sd"] == 0
    cross = outcome["scores"]["monolayer"]["probed map"]["goodness at the tension rupture site"]
    assert cross["n"] == 1 and cross["mean"] == probed.goodness(
        np.array([[loaded.rupture_x, loaded.rupture_y]]), row_structure(loaded).box)[0]
    section = json.loads((tmp_path / "c/outcome/report.json").read_text())
    assert [r[0] for r in section["tables"][0]["rows"]] == ["s000000", "s000001"]
    assert all((tmp_path / "c" / f["path"]).is_file() for f in section["figures"])
    assert "Predicted first, then loaded" in report_campaign(store).read_text()


def test_bonds_a_relaxation_breaks_are_recorded(tmp_path):
    """Sample 898 of the monolayer-tension dataset's config: its generated network (mu2 1.0) loses four Si–O
    bonds when relaxed with Yukawa (its measured mu2 became 4.1); the relax stage records them."""
    config = load_config(ROOT / "configs" / "monolayer-tension.toml")
    plan = Plan(campaign=config.name, seed=config.seed, tests=(), test_settings={}, potentials=config.potentials,
                relax=config.relax, samples_dir=str(tmp_path), run_id="t")
    broken, kept = (run_sample(expand(config)[k], plan) for k in (898, 897))
    assert isinstance(broken, SampleResult) and broken.keys["relax_broken_bonds"] == 4 and broken.keys["mu2"] > 4
    assert len(broken.data["relax"]["broken_bonds"]) == 4
    assert kept.keys["relax_broken_bonds"] == 0  # its neighbour keeps its network
