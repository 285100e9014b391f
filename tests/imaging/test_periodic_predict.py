"""Image models of the registry on periodic sheets (``glassfrac predict``): a cell of the training size is one
network input; a larger periodic cell gets the network's windows slid periodically over it."""

import numpy as np
import pytest
from imaging_helpers import tiny_models

import glassfrac as gf
from glassfrac.learn.gradcam import render_for_model, scan
from glassfrac.learn.registry import register_model
from glassfrac.learn.training import ImageModel
from glassfrac.structure import Box, Structure


def _tiled(structure, nx, ny):
    """``structure`` repeated nx × ny times in the plane (a larger periodic cell of the same glass)."""
    cell = np.asarray(structure.box.cell, float)
    shifts = [a * cell[0] + b * cell[1] for a in range(nx) for b in range(ny)]
    positions = np.concatenate([structure.positions + s for s in shifts])
    return Structure(positions, np.tile(structure.species, nx * ny), Box(cell * [[nx], [ny]], True))


def test_image_models_take_a_periodic_cell_whole_and_slide_over_a_larger_one(tmp_path):
    paths = tiny_models(tmp_path / "tiny")  # a mu2 ResNet trained on 4 x 4-ring monolayers (square crop, 32 px)
    model = ImageModel.load(paths["cnn"])
    registry = tmp_path / "registry"
    card = {"name": "tiny-mu2", "version": "0.1", "kind": "mu2", "metrics": {}, "training_cpu_seconds": 1.0,
            "rebuild": "(trained in the test)",
            "training": {"potential": "yukawa2d", "structure_kind": "monolayer", "species": ["O", "Si"],
                         "atoms": [80, 80], "mu2": [0.3, 1.0], "samples": 6, "labels": 6, "test_samples": 1,
                         "dataset": "(test)", "pixel_size": model.info["pixel_size"]}}
    register_model(paths["cnn"], card, registry)
    sample = gf.generate((4, 4), mu2=0.5, seed=31)
    result = gf.predict(sample, models=registry)
    whole = result["mu2"].values
    assert whole["whole_cell"] is True and result["mu2"].in_domain
    expected = model.predict(render_for_model(model, sample).image.astype(np.float32)[None])[0]
    assert whole["prediction"] == pytest.approx(float(expected), rel=1e-6)
    assert result["mu2"].arrays["attention"].shape == (32, 32)

    larger = _tiled(sample, 2, 2)
    result = gf.predict(larger, models=registry)
    slid = result["mu2"].values
    image = render_for_model(model, larger).image.astype(np.float32)
    assert image.shape[0] > 32 and slid["whole_cell"] is False and slid["reduce"] == "mean"
    grid = scan(model, image, stride=model.config.stride)
    assert slid["windows"] == grid.size and slid["prediction"] == pytest.approx(float(grid.mean()), rel=1e-6)
    assert "320 atoms, trained on 80-80" in result["mu2"].reasons  # an image model's domain has a size
