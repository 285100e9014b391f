"""Registered predictors: the model registry and its cards, domain checks, ``glassfrac models`` and
``glassfrac predict`` end to end, and ``glassfrac.predict``; on a registry made here from an SVM trained on
three tiny generated Yukawa monolayers (the shipped registry holds no model until the datasets exist)."""

import json
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

import glassfrac as gf
from glassfrac.analysis.structure_functions import fc22_descriptor
from glassfrac.cli import main
from glassfrac.core.errors import InputError
from glassfrac.core.outputs import MARKER
from glassfrac.learn.registry import ENVIRONMENT, SHIPPED, Registry, describe, read_card, register_model
from glassfrac.learn.svm import AtomDataset, SoftnessModel, TrainingSettings, train
from glassfrac.structure import Box, Structure, write


def _card(name="yukawa-softness", kind="softness-monolayer", potential="yukawa2d", structure_kind="monolayer",
          atoms=(60, 100), mu2=(0.0, 3.0), **extra) -> dict:
    return {"name": name, "version": "0.1", "kind": kind,
            "training": {"potential": potential, "structure_kind": structure_kind, "species": ["O", "Si"],
                         "atoms": list(atoms), "mu2": list(mu2), "samples": 3, "labels": 240, "test_samples": 3,
                         "split": "by sample", "dataset": "datasets/test-yukawa"},
            "metrics": {}, "training_cpu_seconds": 1.0,
            "rebuild": "glassfrac softness train datasets/test-yukawa/dataset.npz -o yukawa-softness.safetensors",
            **extra}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An SVM trained on three relaxed 4 x 4 Yukawa monolayers (80 atoms) labelled by tension (first
    broken bond), registered with its card (held-out metrics with bootstrap spread)."""
    folder = tmp_path_factory.mktemp("registry")
    samples = []
    cpu = time.process_time()
    for seed in (1, 2, 3):
        s = gf.relax(gf.generate((4, 4), seed=seed), fmax=1e-4)
        t = gf.tension(s, step=0.02, precision=2e-3, fmax=1e-4)
        s.set_array("first_break", np.asarray(t.labels.first_break).astype(np.int8))
        samples.append(s)
    dataset = AtomDataset(samples, [f"s{k}" for k in range(3)], "first_break")
    model, evaluation = train(dataset, fc22_descriptor(), None, TrainingSettings(C=(0.1,), n_splits=3))
    model.save(folder / "trained.safetensors")
    card = _card(metrics=evaluation.bootstrap(n_resamples=200), training_cpu_seconds=time.process_time() - cpu)
    models = folder / "models"
    register_model(folder / "trained.safetensors", card, models)
    return {"models": models, "model": model, "samples": samples, "folder": folder}


def _run(capsys, *argv):
    status = main([*map(str, argv), "--json"])
    out = capsys.readouterr()
    return status, json.loads(out.out), out.err


def _oxide() -> Structure:
    """A 3D periodic Al–O box (bulk, not a sheet)."""
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3) * 2.5
    species = ["Al" if k % 5 < 2 else "O" for k in range(len(grid))]
    return Structure(grid + rng.uniform(-0.1, 0.1, grid.shape), species, Box(np.eye(3) * 10.0, True))


# -- registry --------------------------------------------------------------------------------------

def test_registry_loads_the_model_without_code_and_matches_the_original(trained):
    card = Registry(trained["models"]).find(kind="softness-monolayer", potential="yukawa2d")[0]
    assert card.name == "yukawa-softness" and card.task == "first_break"
    assert set(card.metrics) == {"sensitivity", "specificity", "balanced_accuracy", "roc_auc"}
    m = card.metrics["roc_auc"]
    assert m["low"] <= m["high"] and m["n_samples"] == 3
    loaded = card.load()
    assert isinstance(loaded, SoftnessModel)
    s = trained["samples"][0]
    np.testing.assert_array_equal(loaded.softness(s), trained["model"].softness(s))


def test_registry_rejects_malformed_cards_and_model_files(trained, tmp_path):
    pickled = tmp_path / "pickled.safetensors"
    torch.save({"w": torch.zeros(3)}, pickled)  # a pickle: must never be unpickled
    card = register_model(pickled, _card(name="pickled"), tmp_path / "reg")
    with pytest.raises(InputError, match="not a glassfrac softness model file"):
        card.load()

    bad = tmp_path / "reg" / "pickled.json"
    entry = json.loads(bad.read_text())
    entry["training"].pop("potential")
    bad.write_text(json.dumps(entry))
    with pytest.raises(InputError, match="training.potential"):
        Registry(tmp_path / "reg").cards()

    other = tmp_path / "other"
    card = register_model(trained["models"] / "yukawa-softness.safetensors", _card(name="changed"), other)
    with open(other / "changed.safetensors", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(InputError, match="does not match its card"):
        card.load()
    with pytest.raises(InputError, match="kind"):
        register_model(pickled, _card(name="x", kind="resnet"), tmp_path / "third")


def test_domain_monolayer_given_to_the_bilayer_watanabe_model_is_out_of_domain(trained, tmp_path):
    reg = tmp_path / "bilayer"
    register_model(trained["models"] / "yukawa-softness.safetensors",
                   _card(name="bilayer-softness", kind="softness-bilayer", potential="watanabe",
                         structure_kind="bilayer", atoms=(500, 4000)), reg)
    monolayer = trained["samples"][0]
    facts = describe(monolayer)
    assert (facts.kind, facts.potential, facts.n_atoms) == ("monolayer", "yukawa2d", 80)
    card = read_card(reg / "bilayer-softness.json")
    domain = card.check_domain(facts)
    assert not domain.in_domain
    assert "potential yukawa2d, trained on watanabe" in domain.reasons
    assert "structure kind monolayer, trained on bilayer" in domain.reasons
    assert "80 atoms, trained on 500-4000" in domain.reasons
    chosen = Registry(reg).for_structure(monolayer, facts=facts)
    assert chosen["first_break"]["card"].name == "bilayer-softness"  # still predicts, marked outside

    own = read_card(trained["models"] / "yukawa-softness.json").check_domain(facts)
    assert own.in_domain and own.reasons == ()
    larger = read_card(trained["models"] / "yukawa-softness.json").check_domain(replace(facts, n_atoms=10 ** 5))
    assert larger.in_domain  # a per-atom model of a neighbourhood takes larger samples
    disordered = read_card(trained["models"] / "yukawa-softness.json").check_domain(replace(facts, mu2=9.0))
    assert disordered.reasons == ("mu2 9, trained on 0-3",)


def test_a_rupture_strain_model_of_one_potential_does_not_predict_for_another():
    registry = Registry(SHIPPED)
    card = next(c for c in registry.cards() if c.kind == "rupture-strain")
    bilayer = gf.generate(rings=(6, 6), mu2=0.5, kind="bilayer", seed=1)
    facts = describe(bilayer)
    assert (card.training["potential"], facts.potential) == ("yukawa2d", "watanabe")
    with pytest.raises(InputError, match="predicts a value of the yukawa2d potential's physics"):
        card.check_domain(facts)
    chosen = registry.for_structure(bilayer, facts=facts)
    assert "rupture_strain" not in chosen and chosen["not_applicable"]["rupture_strain"][0]["model"] == card.name
    assert chosen["mu2"]["domain"].in_domain  # a structural target still has its bilayer model


def test_a_3d_oxide_given_to_a_2d_model_is_an_error(trained, tmp_path, capsys):
    oxide = _oxide()
    card = read_card(trained["models"] / "yukawa-softness.json")
    with pytest.raises(InputError, match="is for 2D sheets"):
        card.check_domain(describe(oxide))
    path = tmp_path / "oxide.extxyz"
    write(oxide, path)
    status, out, err = _run(capsys, "predict", path, "-o", tmp_path / "out", "--models", trained["models"])
    assert status == 2 and "no installed model applies" in out["error"] and "3D periodic bulk" in out["error"]
    assert not (tmp_path / "out").exists()  # refused before anything was written


# -- the commands ------------------------------------------------------------------------------------

def test_models_lists_cards_and_says_when_none_is_installed(trained, capsys, tmp_path):
    status, out, _ = _run(capsys, "models", "--models", trained["models"])
    assert status == 0 and out["installed"] == 1
    card = out["models"][0]
    assert card["name"] == "yukawa-softness" and card["training"]["potential"] == "yukawa2d"
    assert card["rebuild"].startswith("glassfrac softness train") and card["training_cpu_seconds"] > 0

    empty = tmp_path / "empty"
    empty.mkdir()
    status, out, _ = _run(capsys, "models", "--models", empty)
    assert status == 0 and out["installed"] == 0 and "no model is installed" in out["message"]
    status, out, _ = _run(capsys, "predict", "any.extxyz", "-o", "never", "--models", empty)
    assert status == 2 and "no model installed" in out["error"] and "datasets" in out["error"]


def test_every_shipped_model_is_built_by_its_recipe_from_a_dataset_of_the_repository():
    from glassfrac.learn.recipes import RECIPES

    root = SHIPPED.parents[2]  # src/glassfrac/models -> the repository
    for card in Registry(SHIPPED).cards():  # no toy model: each comes from datasets/ by its recipe
        recipe = RECIPES[card.name]
        assert (card.kind, card.rebuild, card.training["dataset"]) == (recipe.kind, recipe.rebuild, recipe.dataset)
        dataset = json.loads((root / recipe.dataset / "card.json").read_text())
        assert card.training["samples"] <= dataset["samples"] and card.training["potential"] == recipe.potential
        # 20 held-out samples, or 8 for the alumina softness (5 CPU-minutes per sample, ~150 labelled Al each)
        assert card.training["test_samples"] >= (8 if card.kind == "oxide-softness" else 20)
        assert card.metrics and card.load() is not None
        for name, m in card.metrics.items():
            assert m["low"] <= m["high"] and np.isfinite(m["value"]), name


def test_predict_end_to_end_on_a_generated_sample(trained, tmp_path, capsys, monkeypatch):
    sample = gf.relax(gf.generate((4, 4), seed=7), fmax=1e-4)  # a sample the model never saw
    path = tmp_path / "sample.extxyz"
    write(sample, path)
    monkeypatch.setenv(ENVIRONMENT, str(trained["models"]))
    out_dir = tmp_path / "prediction"
    status, out, err = _run(capsys, "predict", path, "-o", out_dir)
    assert status == 0, err
    p = out["predictions"]["first_break"]
    assert p["model"]["name"] == "yukawa-softness" and p["model"]["version"] == "0.1"
    assert p["model"]["training"]["potential"] == "yukawa2d" and p["in_domain"] is True and p["reasons"] == []
    assert p["atoms"] == 80 and len(p["top10"]["indices"]) == 8
    assert out["structure"]["kind"] == "monolayer"
    for name in ("prediction.json", "structure.extxyz", "arrays.npz", "first_break.png", MARKER):
        assert (out_dir / name).is_file(), name
    assert json.loads((out_dir / "prediction.json").read_text())["predictions"]["first_break"]["atoms"] == 80
    annotated = gf.read(out_dir / "structure.extxyz")
    expected = trained["model"].softness(gf.read(path))
    np.testing.assert_allclose(annotated.arrays["softness"], expected, rtol=1e-7)

    result = gf.predict(path, models=trained["models"])  # the Python API gives the same
    np.testing.assert_array_equal(result["first_break"].arrays["softness"], expected)
    assert result.to_dict()["predictions"]["first_break"]["mean"] == pytest.approx(p["mean"])

    status, _, _ = _run(capsys, "predict", path, "-o", out_dir)  # our folder: rerun replaces our files
    assert status == 0
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    status, out, _ = _run(capsys, "predict", path, "-o", user)
    assert status == 2 and "not made by glassfrac" in out["error"]
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]

