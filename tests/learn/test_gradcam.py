"""Grad-CAM maps and the attention analyses on models whose answers are known."""

import numpy as np
import torch

from glassfrac.learn.gradcam import (
    attention,
    attention_divergence,
    defect_pixels,
    inside_probability,
    participation_ratio,
    peak_distance,
    pearson,
    render_for_model,
    scan,
    upsample_periodic,
)
from glassfrac.learn.images import CellPixelMap, ImageSettings, Transform, augmentations, pixel_sizes
from glassfrac.learn.render import PixelMap
from glassfrac.learn.resnet import ResNetConfig
from glassfrac.learn.training import ImageModel
from glassfrac.structure import Box, Structure

TINY = ResNetConfig(blocks=(1, 1, 1, 1), widths=(4, 8, 8, 8), stem=4)


def _model(size=64, seed=0):
    torch.manual_seed(seed)
    return ImageModel("mu2", TINY, ImageSettings(size=size, pixels=2 * size), 0.0, 1.0)


def test_attention_highlights_the_only_region_the_output_depends_on():
    """Convolutions have no bias and fresh batch norm maps 0 to 0, so a blank image with one
    textured patch has features (and hence attention) only within the patch's receptive field."""
    model = _model()
    image = np.zeros((64, 64), np.float32)
    rows, cols = slice(40, 48), slice(8, 16)
    image[rows, cols] = np.random.default_rng(0).random((8, 8)) + 0.5
    maps = attention(model, image, transforms=augmentations(64, 2, seed=1))  # 8 copies, transforms undone
    assert sorted(maps) == [2, 4, 8, 16]
    g = maps[16]
    assert g.shape == (64, 64)
    near = np.zeros((64, 64), bool)  # the patch widened by the receptive field (27 px) and 1 cell, periodically
    near[np.ix_(np.arange(40 - 20, 48 + 20) % 64, np.arange(8 - 20, 16 + 20) % 64)] = True
    assert g[~near].max() < 1e-3 * g.max()  # zero but for round-off of the convolution algorithms
    assert g[~near].sum() < 1e-3 * g.sum()
    peak = np.unravel_index(np.argmax(g), g.shape)
    assert 40 - 6 <= peak[0] < 48 + 6 and 8 - 6 <= peak[1] < 16 + 6


def test_attention_moves_with_the_image_and_averaging_undoes_transforms():
    model = _model(seed=1)
    image = np.random.default_rng(2).random((64, 64)).astype(np.float32)
    identity = [Transform(64)]
    plain = attention(model, image, transforms=identity)
    rolled = attention(model, np.roll(image, (32, -32), (0, 1)), transforms=identity)
    shift = [Transform(64, dx=-32, dy=32)]
    undone = attention(model, image, transforms=shift)
    for r in plain:
        assert np.allclose(np.roll(plain[r], (32, -32), (0, 1)), rolled[r], rtol=1e-4, atol=1e-6 * plain[r].max())
        assert np.allclose(undone[r], plain[r], rtol=1e-4, atol=1e-6 * plain[r].max())


def test_periodic_upsampling():
    m = np.arange(16.0).reshape(1, 4, 4)
    up = upsample_periodic(m, 16)
    assert up.shape == (1, 16, 16)
    assert np.isclose(up.mean(), m.mean())  # bilinear on a torus conserves the mean
    const = upsample_periodic(np.full((1, 4, 4), 2.0), 16)
    assert np.allclose(const, 2.0)
    # rolling the coarse map by one cell rolls the fine map by 4 px
    assert np.allclose(upsample_periodic(np.roll(m, 1, 2), 16), np.roll(up, 4, 2), atol=1e-5)


def test_participation_ratio_and_pearson():
    n = 16
    assert np.isclose(participation_ratio(np.ones((n, n))), 1.0)
    one = np.zeros((n, n))
    one[3, 4] = 5.0
    assert np.isclose(participation_ratio(one), 1 / n**2)
    half = np.zeros((n, n))
    half[: n // 2] = 2.0
    assert np.isclose(participation_ratio(half), 0.5)
    assert np.isclose(pearson(half, half > 0), 1.0)


class _Rings:
    """Stand-in for RingAnalysis results: one defect square across the periodic edge, one hexagon."""

    ring_polygons = [np.array([[8.0, 2.0], [12.0, 2.0], [12.0, 6.0], [8.0, 6.0]]),
                     np.array([[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]])]
    defect_rings = np.array([True, False])


def test_defect_pixels_with_periodic_wrap():
    s = Structure(np.zeros((1, 2)), ["Si"], Box([10.0, 10.0]))
    d = defect_pixels(s, PixelMap(1.0, (0.0, 0.0), (10, 10)), rings=_Rings())
    expected = np.zeros((10, 10), np.int8)
    expected[2:6, 8:10] = 1
    expected[2:6, 0:2] = 1  # the part beyond x = 10 Å wraps to x = 0..2
    assert np.array_equal(d, expected)


def test_peak_distance_and_divergence():
    pm = PixelMap(0.5, (0.0, 0.0), (20, 20))
    g = np.zeros((20, 20))
    g[0, 0] = 1.0  # centre (0.25, 0.25) Å
    assert np.isclose(peak_distance(g, pm, [9.75, 0.25]), 0.5)  # across the periodic edge
    p = 0.5
    x = (np.arange(20) + 0.5) * p
    k = 2 * np.pi / 10.0
    gx = np.tile(np.sin(k * x), (20, 1))
    gy = np.tile(np.sin(k * x)[:, None], (1, 20))
    div = attention_divergence(gx, gy, p)
    exact = np.sin(k * p) / p * (np.cos(k * x)[None, :] + np.cos(k * x)[:, None])
    assert np.allclose(div, exact)


def test_peak_distance_and_divergence_with_rectangular_pixels():
    pm = CellPixelMap(0.5, (0.0, 0.0), (20, 20), 0.75)  # crop="cell" of a 10 × 15 Å cell
    g = np.zeros((20, 20))
    g[0, 0] = 1.0  # centre (0.25, 0.375) Å
    assert np.isclose(peak_distance(g, pm, [0.25, 14.625]), 0.75)  # across the periodic edge in y
    y = (np.arange(20) + 0.5) * 0.75
    k = 2 * np.pi / 15.0
    gy = np.tile(np.sin(k * y)[:, None], (1, 20))
    div = attention_divergence(np.zeros((20, 20)), gy, pixel_sizes(pm))
    assert np.allclose(div, np.sin(k * 0.75) / 0.75 * np.cos(k * y)[:, None] * np.ones((1, 20)))


def test_inside_probability_and_scan():
    maps = [np.arange(16.0).reshape(4, 4), np.arange(16.0).reshape(4, 4)]
    locations = [[0.1, 0.1], [0.9, 0.9]]  # cells of the lowest (0) and the highest value (15)
    p = inside_probability(maps, locations, [0.0625, 0.5, 0.99, 1.0])
    assert np.allclose(p, [0.5, 0.5, 0.5, 1.0])
    model = _model(size=32)
    model.network.forward = lambda x: x.mean(dim=(1, 2, 3))[:, None]  # window brightness
    image = np.zeros((128, 128), np.float32)
    image[44, 76] = 1.0  # in window-grid cell (5, 9) of stride 8
    values = scan(model, image, stride=8)
    assert values.shape == (16, 16)
    assert np.isclose(values[5, 9], values.max()) and np.isclose(values[5, 9], 1 / 32**2)
    assert np.isclose(values[13, 1], 0.0)  # a window far away does not see the pixel


def test_render_for_model_keeps_the_training_pixel_size_on_larger_samples():
    model = _model(size=32)  # 64 px across the box, rebinned to 32
    rng = np.random.default_rng(0)
    small = Structure(rng.random((40, 2)) * 16.0, ["Si"] * 40, Box([16.0, 16.0]))
    model.info["pixel_size"] = 0.5  # 16 Å / 32 px
    assert render_for_model(model, small).image.shape == (32, 32)  # as in training
    big = Structure(rng.random((400, 2)) * 50.0, ["Si"] * 400, Box([50.0, 50.0]))
    rendered = render_for_model(model, big)
    assert rendered.image.shape == (96, 96)  # 100 px of 0.5 Å cropped to a multiple of the stride (32)
    assert np.isclose(rendered.pixel_map.pixel_size, 0.5) and rendered.pixel_map.shape == (96, 96)
