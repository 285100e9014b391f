"""Rendering (FC22 photon model) and Si detection on synthetic images of generated samples."""

import numpy as np
import pytest
from imaging_helpers import D_SISI, LOW_DOSE, score
from scipy.spatial import cKDTree

import glassfrac
from glassfrac import Box, Structure
from glassfrac.imaging.detect import Roi, detect, estimate_pixel_size, estimate_spacing
from glassfrac.imaging.evaluate import match_points
from glassfrac.learn.render import PixelMap, RenderSettings, imaged_atoms, rebin, render


@pytest.fixture(scope="module")
def sample(generated):
    return generated.network("sig_1.00")  # the measured disorder of 2D silica; 1350 atoms, 78 x 81 Å


def one_atom(species="Si", box=20.0):
    return Structure([[box / 2, box / 2]], [species], Box([box, box]))


# -- rendering ----------------------------------------------------------------------------------

def test_render_is_deterministic_for_a_seed(sample):
    a, b, c = render(sample, seed=7), render(sample, seed=7), render(sample, seed=8)
    assert np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)
    assert a.image.shape == (128, 128)
    # FC22 geometry: 256 pixels across x, square crop of min(Lx, Ly), rebinned to 128
    lx, ly = np.diag(sample.box.cell)
    crop = np.floor(min(lx, ly) / (lx / 256))
    assert a.pixel_map.pixel_size == pytest.approx(lx / 256 * crop / 128)


def test_expected_counts_conserve_photons_and_blur_adds_in_quadrature():
    settings = RenderSettings(background=0.0, photon_noise=False, pixels=200, output=None)
    sharp = render(one_atom(), settings).image
    assert sharp.sum() == pytest.approx(800.0, rel=1e-9)
    blurred = render(one_atom(), settings, blur=0.4).image
    assert blurred.sum() == pytest.approx(800.0, rel=1e-9)
    pm = render(one_atom(), settings).pixel_map
    x = pm.to_angstrom(np.column_stack([np.arange(200), np.zeros(200)]))[:, 0] - 10.0
    variance = (blurred.sum(axis=0) * x**2).sum() / 800.0
    pixel_term = pm.pixel_size**2 / 12  # uniform pixel width
    assert variance == pytest.approx(0.5**2 + 0.4**2 + pixel_term, rel=1e-3)


def test_photon_image_matches_expected_counts_on_average():
    s = one_atom(box=10.0)
    settings = RenderSettings(background=2000.0, pixels=20, output=None)
    mean = np.mean([render(s, settings, seed=k).image for k in range(200)], axis=0)
    expected = render(s, settings, photon_noise=False).image
    assert mean.sum() == pytest.approx(expected.sum(), rel=0.01)
    assert np.abs(mean - expected).max() < 0.1 * expected.max()


def test_rebin_conserves_counts_and_bins_two_by_two():
    rng = np.random.default_rng(0)
    image = rng.poisson(5.0, (10, 10)).astype(float)
    assert np.allclose(rebin(image, 5), image.reshape(5, 2, 5, 2).sum(axis=(1, 3)))
    assert rebin(image, 7).sum() == pytest.approx(image.sum())


def test_pixel_map_round_trip_and_extent():
    pm = PixelMap(0.5, (2.0, -1.0), (10, 20))
    xy = np.array([[3.3, 4.4], [0.0, 0.0]])
    assert np.allclose(pm.to_angstrom(pm.to_pixels(xy)), xy)
    assert np.allclose(pm.to_angstrom([[0, 0]]), [[2.25, -0.75]])
    assert pm.extent == (2.0, 12.0, -1.0, 4.0)


def test_noise_options():
    s = one_atom()
    base = RenderSettings(photon_noise=False, background=1e4, output=None, pixels=40)
    clean = render(s, base).image
    poisson = render(s, base, noise="poisson", seed=1).image
    assert np.all(poisson == np.round(poisson)) and not np.array_equal(poisson, clean)
    gauss = render(s, base, noise="gaussian", noise_level=0.5, seed=1).image
    assert np.std(gauss - clean) == pytest.approx(0.5 * clean.mean(), rel=0.1)
    with pytest.raises(ValueError, match="noise"):
        RenderSettings(noise="salt")


def test_bilayer_renders_the_top_layer_only(generated):
    bilayer = generated.bilayer()
    atoms = imaged_atoms(bilayer)
    species = bilayer.species[atoms]
    top_si = bilayer.count("Si") // 2  # and 3/2 O per Si in its plane
    assert np.count_nonzero(species == "Si") == top_si and np.count_nonzero(species == "O") == 3 * top_si // 2
    assert bilayer.positions[atoms, 2].min() > 0.8  # no bridging O (z = 0), no bottom layer
    assert render(bilayer, seed=0).image.shape == (128, 128)


# -- detection ----------------------------------------------------------------------------------

@pytest.mark.parametrize("detector", ["log", "trackpy"])
@pytest.mark.parametrize("level", ["fc22", "low_dose"])
def test_detection_recall_precision_and_error(sample, detector, level):
    if detector == "trackpy":
        pytest.importorskip("trackpy")
    rendered = render(sample, seed=1, **(LOW_DOSE if level == "low_dose" else {}))
    found = detect(rendered.image, rendered.pixel_map.pixel_size, detector)
    match, _ = score(sample, rendered, found.positions)
    assert match.n_true > 450
    assert match.recall >= 0.99 and match.precision >= 0.99
    assert match.rms < (0.1 if level == "fc22" else 0.3)  # Å; a bond is 3.05 Å


def test_pixel_size_estimated_from_the_si_spacing(sample):
    rendered = render(sample, seed=2)
    true_px = rendered.pixel_map.pixel_size
    si = sample.positions[sample.species == "Si"]
    d_true = np.median(cKDTree(si).query(si, k=4)[0][:, 1:])  # this sample's Si–Si, Å
    assert estimate_spacing(rendered.image) == pytest.approx(d_true / true_px, rel=0.05)
    found = detect(rendered.image)
    assert found.pixel_size_source == "estimated"
    assert found.pixel_size == pytest.approx(true_px * D_SISI / d_true, rel=0.01)
    match, _ = score(sample, rendered, found.positions)
    assert match.recall == 1.0 and match.precision == 1.0
    assert estimate_pixel_size(found.positions) == found.pixel_size


def test_roi_keeps_detections_inside(sample):
    rendered = render(sample, seed=1)
    ps = rendered.pixel_map.pixel_size
    full = detect(rendered.image, ps)
    rect = detect(rendered.image, ps, roi=Roi("rect", (20, 30, 80, 90)))
    circle = detect(rendered.image, ps, roi=Roi("circle", (64, 64, 30)))
    for part, roi in ((rect, Roi("rect", (20, 30, 80, 90))), (circle, Roi("circle", (64, 64, 30)))):
        assert roi.contains(part.positions).all()
        assert len(part.positions) == np.count_nonzero(roi.contains(full.positions))
    with pytest.raises(ValueError, match="x1 > x0"):
        Roi("rect", (5, 0, 1, 3))


def test_inverted_contrast(sample):
    rendered = render(sample, seed=1)
    dark = rendered.image.max() - rendered.image
    found = detect(dark, rendered.pixel_map.pixel_size, invert=True)
    match, _ = score(sample, rendered, found.positions)
    assert match.recall == 1.0 and match.precision == 1.0


def test_coarse_image_refused():
    with pytest.raises(glassfrac.InputError, match="too coarse"):
        detect(np.zeros((32, 32)), pixel_size=1.5)


def test_matching_takes_the_most_pairs_then_the_least_squared_distance():
    # closest pair first would match true 0 to found 0 (0.5 Å) and leave true 1 with no partner
    true, found = [[0.0, 0.0], [1.4, 0.0]], [[0.5, 0.0], [-0.7, 0.0]]
    m = match_points(true, found, tolerance=1.0)
    assert m.pairs.tolist() == [[0, 1], [1, 0]]
    assert m.recall == 1.0 and m.precision == 1.0
    assert m.rms == pytest.approx(np.sqrt((0.7**2 + 0.9**2) / 2))
    # same number of pairs either way: the smaller sum of squares wins (0.3² + 0.4² < 0.6² + 0.7²)
    m = match_points([[0.0, 0.0], [1.0, 0.0]], [[0.6, 0.0], [0.3, 0.0]], tolerance=1.0)
    assert m.pairs.tolist() == [[0, 1], [1, 0]]
    m = match_points([[0.0, 0.0]], [[5.0, 0.0]], tolerance=1.0)
    assert len(m.pairs) == 0 and m.recall == 0.0 and np.isnan(m.rms) and m.spurious.tolist() == [0]
    with pytest.raises(ValueError, match="tolerance"):
        match_points(true, found, tolerance=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("level", ["fc22", "low_dose"])
def test_detection_on_every_sample_and_seed(generated, level):
    """LoG with the pixel size given, 3 samples x 3 seeds: recall and precision >= 99 % on every image."""
    for name, structure in generated.networks().items():
        for seed in (1, 2, 3):
            rendered = render(structure, seed=seed, **(LOW_DOSE if level == "low_dose" else {}))
            found = detect(rendered.image, rendered.pixel_map.pixel_size)
            match, _ = score(structure, rendered, found.positions)
            assert match.recall >= 0.99 and match.precision >= 0.99, (name, seed)
            assert match.rms < (0.1 if level == "fc22" else 0.3)
