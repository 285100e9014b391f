"""The alumina softness dataset (:mod:`glassfrac.campaign.oxide_dataset`) and its shipped model's recipe: samples
of a run folder become parts and a merged dataset; the recipe learns, on held-out samples, which Al of synthetic
samples rearrange (the 5-fold Al next to an O vacancy, known by construction); a real run of tiny quenched
samples resumes, and parts of another config or with missing samples are refused."""

import json
from dataclasses import replace

import numpy as np
import pytest
from test_softness import FRAMES, _defective_rock_salt, _synthetic_trajectory

from glassfrac.api import predict
from glassfrac.campaign import oxide_dataset as od
from glassfrac.campaign.oxide_config import OxideConfig, load_config
from glassfrac.cli import main
from glassfrac.learn import oxide_softness as so
from glassfrac.learn.recipes import build, role
from glassfrac.learn.registry import read_card

TINY = """[quench]
n_units = 20
melt_ps = 0.3
cool_ps = 0.1
liquid_ps = 0.3
dense_ps = 0.3
quench_ps = 0.5
relax_nvt_ps = 0.2
relax_npt_ps = 0.2
pressures_GPa = [0.0, 4.0]
[softness]
T = 1500.0
equilibrate_ps = 0.2
trajectory_ps = 3.0
t_r_ps = 1.0
horizon_ps = 1.0
label_every_ps = 0.5
"""


SPARSE = replace(FRAMES, label_every_ps=1.0)


def _synthetic_run(folder, n_samples=10):
    """A run folder of ``n_samples`` synthetic samples: defective rock salt whose 5-fold Al hop."""
    od.open_run(folder, OxideConfig(softness=SPARSE))
    labels = 0
    for k in range(n_samples):
        trajectory, soft, _ = _synthetic_trajectory(k, SPARSE)
        dataset, counts = so.hop_dataset({f"s{k}": trajectory}, SPARSE)
        arrays = od.sample_arrays(k, k, 2.0 * (k % 3), trajectory.structure, dataset.structures)
        assert np.all(soft[arrays["label_atom"][arrays["label"] == 1]])
        assert not np.any(soft[arrays["label_atom"][arrays["label"] == 0]])
        od.save_sample(folder, arrays, {"index": k, "cpu_seconds": {"quench": 1.0}, **counts[0]})
        labels += len(arrays["label"])
    return labels


def test_the_alumina_recipe_learns_which_al_rearrange_on_held_out_samples(tmp_path):
    run, data, registry = tmp_path / "run", tmp_path / "alumina", tmp_path / "models"
    labels = _synthetic_run(run)
    assert od.export_part(run, data, 0, 6)["samples"] == 6
    assert od.export_part(run, data, 6, 10)["samples"] == 4
    merged = od.merge_parts(data)
    card = json.loads((data / "card.json").read_text())
    assert merged["samples"] == 10 and merged["labels"] == labels == card["labels"]["labelled_al"]
    assert card["labels"]["rearranging"] == card["labels"]["non_rearranging"]  # balanced per label time
    assert card["pressures_GPa"] == [0.0, 2.0, 4.0] and card["indices"] == [0, 10]
    back = od.split_samples(dict(np.load(data / "dataset.npz")))
    one = dict(np.load(run / od.sample_name(7)))
    for key in ("positions", "label_atom", "label", "features", "pressure_GPa"):
        np.testing.assert_array_equal(back[7][key], one[key])

    out = build("softness-alumina", registry, dataset=data)
    card = read_card(registry / "softness-alumina.json")
    assert card.kind == "oxide-softness" and card.training["potential"] == "matsui"
    assert card.training["test_samples"] == 2 == sum(role(k) == "test" for k in range(10))
    assert card.training["labels"] == labels and card.training["species"] == ["Al", "O"]
    m = card.metrics
    assert m["accuracy"]["value"] > 0.9 and m["roc_auc"]["value"] > 0.95  # samples the SVM never saw
    assert m["accuracy"]["low"] <= m["accuracy"]["value"] <= m["accuracy"]["high"]
    assert 0 <= m["radial_only_accuracy"]["value"] <= 1 and out["evaluation"]["test_labels"] > 0

    model = card.load()
    s, soft = _defective_rock_salt(42)
    softness = model.softness(s)
    al = s.species == "Al"
    assert np.isnan(softness[~al]).all()
    assert softness[soft].min() > np.median(softness[al & ~soft])  # the 5-fold Al are the soft ones
    predicted = predict(s, models=registry).to_dict()["predictions"]
    assert list(predicted) == ["oxide_softness"]  # the only model of the registry, and it applies to a 3D oxide
    task = predicted["oxide_softness"]
    assert task["model"]["name"] == "softness-alumina" and task["features_on"] == "the structure as given"
    assert task["atoms"] == al.sum() and task["softest_atom"]["index"] in np.flatnonzero(soft)
    assert task["in_domain"] is True  # the training samples' elements and size


def test_merge_refuses_overlapping_parts_and_parts_of_another_config(tmp_path):
    run, data = tmp_path / "run", tmp_path / "alumina"
    _synthetic_run(run, 3)
    od.export_part(run, data, 0, 2)
    od.export_part(run, data, 1, 3)
    with pytest.raises(Exception, match="overlap"):
        od.merge_parts(data)
    with pytest.raises(Exception, match="not finished"):
        od.export_part(run, data, 2, 5)
    with pytest.raises(Exception, match="another config"):
        od.open_run(run, OxideConfig())


def test_oxide_samples_runs_resumes_and_merges_tiny_quenched_samples(needs_lammps, tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    run, data = tmp_path / "run", tmp_path / "alumina"

    def cli(*argv):
        status = main([*map(str, argv), "--json"])
        return status, json.loads(capsys.readouterr().out)

    status, out = cli("oxide", "samples", "--config", config, "--out", run, "--stop", 2)
    assert status == 0, out
    assert out["ran"] == 2 and [s["index"] for s in out["samples"]] == [0, 1]
    status, again = cli("oxide", "samples", "--config", config, "--out", run, "--stop", 2)
    assert (status, again["ran"], again["kept"]) == (0, 0, 2)  # finished samples are kept
    first = dict(np.load(run / od.sample_name(0)))
    assert first["pressure_GPa"][0] == 0.0 and dict(np.load(run / od.sample_name(1)))["pressure_GPa"][0] == 4.0
    assert len(first["positions"]) == 100 and first["features"].shape == (len(first["label"]), 126)
    assert np.all(first["species"][first["label_atom"]] == "Al") and set(first["label"]) <= {0, 1}
    assert np.isfinite(first["features"]).all() and 2.0 < first["density_g_cm3"][0] < 5.0

    assert cli("dataset", "part", run, data, "--start", 0, "--stop", 2)[0] == 0
    status, merged = cli("dataset", "merge", data)
    assert status == 0 and merged["samples"] == 2 and merged["labels"] == sum(s["positive"] + s["negative"]
                                                                               for s in out["samples"])
    merged_arrays = dict(np.load(data / "dataset.npz"))
    f = (merged_arrays["positions"][:100] - merged_arrays["origin"][0]) / np.diag(merged_arrays["cell"][0])
    assert np.all((f >= 0) & (f < 1))  # wrapped into the cell (MD gives unwrapped positions)
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace("T = 1500.0", "T = 1400.0"))
    status, refused = cli("oxide", "samples", "--config", other, "--out", run, "--stop", 3)
    assert status == 2 and "another config" in refused["error"]
    assert not (run / od.sample_name(2)).exists()
    assert load_config(config).softness.T == 1500.0
