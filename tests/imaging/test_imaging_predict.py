"""Trained predictors on a structure built from an image: the whole chain image → structure →
softness, ResNet mu2 with Grad-CAM, LISTI map → figures over the image, with tiny models
trained here in seconds; predictions stay inside the imaged region, move with the image
content, and map back onto the image pixels exactly."""

import json

import numpy as np
import pytest
from imaging_helpers import tiny_models
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import glassfrac
from glassfrac.cli import main
from glassfrac.core.errors import InputError
from glassfrac.imaging.build import apply_predictors, build_structure, hull_depth
from glassfrac.imaging.detect import detect, write_image
from glassfrac.imaging.predict import ListiPredictor, load_predictors
from glassfrac.learn.render import render


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def rendered(generated):
    return render(generated.network("sig_1.00"), seed=1)


@pytest.fixture(scope="module")
def found(rendered):
    return detect(rendered.image, rendered.pixel_map.pixel_size)


def test_cli_runs_the_chain_from_image_to_figures(tmp_path, capsys, models, rendered):
    image = tmp_path / "s.tif"
    write_image(image, rendered.image, rendered.pixel_map.pixel_size)
    out = tmp_path / "s.xyz"
    assert main(["image", str(image), "-o", str(out), "--softness", str(models["softness"]), "--cnn",
                 str(models["cnn"]), "--listi", str(models["listi"]), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    p = result["predictions"]
    soft = p["softness"]
    assert soft["region"] == "interior" and 0 < soft["interior"] < soft["atoms"] == result["atoms"] - result["isolated"]
    assert soft["top10"]["atoms"] == round(0.1 * soft["interior"]) and soft["top10"]["threshold"] <= soft["max"]
    cnn = p["cnn"]
    assert cnn["task"] == "mu2" and cnn["windows"] > 10 and np.isfinite(cnn["prediction"])
    assert cnn["measured_mu2"] == result["mu2"] and -1 <= cnn["rho_defects"] <= 1
    listi = p["listi"]
    assert listi["windows"] > 10 and listi["min"] <= listi["mean"] <= listi["max"] and len(listi["lowest"]) == 5
    for name in ("softness", "cnn", "listi"):
        assert (tmp_path / result["figures"][name]).stat().st_size > 20_000
    structure = glassfrac.read(out)
    arrays = np.load(result["predictions_file"])
    assert np.allclose(structure.arrays["softness"], arrays["softness"], equal_nan=True)
    assert structure.arrays["soft_top10"].sum() == soft["top10"]["atoms"]
    attention = arrays["attention"]
    assert np.isfinite(attention).any() and np.isnan(attention).any() and np.nanmin(attention) >= 0
    assert np.isclose(arrays["listi_threshold"].min(), listi["min"])


def test_predictions_stay_inside_the_imaged_region_and_map_back_to_pixels(models, found):
    built = build_structure(found.positions, found.pixel_size)
    s = built.structure
    n = s.count("Si")
    assert np.allclose(built.pixel_map().to_pixels(s.positions[:n]), s.arrays["pixel_xy"][:n], atol=1e-9)
    assert np.allclose(s.arrays["pixel_xy"][:n], found.positions[s.arrays["detection"][:n]])
    si = s.positions[:n]
    out = apply_predictors(s, load_predictors(**{k: str(v) for k, v in models.items()}))
    soft = out["softness"]
    assert np.all(hull_depth(s.positions[soft["interior"]], si) >= load_predictors(str(models["softness"]))[
        "softness"].reach - 1e-9)
    assert np.isnan(soft["softness"][n:]).all() and np.isfinite(soft["softness"][:n]).all()
    x0, y0, x1, y1 = out["cnn"]["windows"].T
    corners = np.concatenate([np.column_stack(c) for c in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))])
    assert np.all(hull_depth(corners, si) >= -1e-9)
    assert np.allclose(x1 - x0, out["cnn"]["summary"]["input_side"])
    listi = out["listi"]
    assert np.all(hull_depth(listi["centres"], si) >= 11.0 - 1e-9)
    low = listi["centres"][listi["lowest"]]
    assert np.all(np.linalg.norm(low[:, None] - low[None], axis=-1)[np.triu_indices(len(low), 1)] >= 11.0)


def test_predictions_move_with_the_image_content(models, found):
    """Shifting every detection by whole pixels moves the structure, the windows and the maps
    with it; softness and thresholds are unchanged, the ResNet value nearly (photon binning)."""
    predictors = load_predictors(**{k: str(v) for k, v in models.items()})
    a = build_structure(found.positions, found.pixel_size)
    b = build_structure(found.positions + [7.0, 5.0], found.pixel_size)
    pa, pb = apply_predictors(a.structure, predictors), apply_predictors(b.structure, predictors)
    shift = a.angstrom_per_pixel * np.array([7.0, 5.0])
    assert np.allclose(pb["softness"]["softness"], pa["softness"]["softness"], atol=1e-8, equal_nan=True)
    assert np.allclose(pb["listi"]["centres"], pa["listi"]["centres"] + shift)
    assert np.allclose(pb["listi"]["threshold"], pa["listi"]["threshold"], atol=1e-6)
    assert len(pb["cnn"]["values"]) == len(pa["cnn"]["values"])
    assert pb["cnn"]["prediction"] == pytest.approx(pa["cnn"]["prediction"], abs=0.02)


def test_model_files_are_checked(models, tmp_path):
    with safe_open(str(models["listi"]), framework="pt") as handle:
        meta = handle.metadata()
    tensors = {k.replace("nodes", "query"): v for k, v in load_file(str(models["listi"])).items()}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    with pytest.raises(InputError, match="old.safetensors: the weights do not fit .*missing tensors: block1.0.nodes"):
        ListiPredictor.load(tmp_path / "old.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="expected one softness model .* found 0"):
        load_predictors(softness=tmp_path / "empty")
    with pytest.raises(InputError, match="softness.safetensors: unknown file format .*image-model"):
        load_predictors(cnn=models["softness"])
