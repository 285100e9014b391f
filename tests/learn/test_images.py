"""Augmentation transforms (exact round trips), targets read from structures, datasets."""

import numpy as np
import pytest
import torch

from glassfrac.learn.images import (
    CellPixelMap,
    ImageSettings,
    Transform,
    angstrom,
    augmentations,
    fractional,
    images_from_structures,
    read_structures,
    render_sample,
    sample_augmentations,
)
from glassfrac.learn.render import PixelMap
from glassfrac.structure import Box, Structure, write

ALL_FLIPS = [(fx, fy) for fx in (False, True) for fy in (False, True)]


def test_augmentations_are_16_shifts_times_4_flips_and_seeded():
    ts = augmentations(32, 16, seed=3)
    assert len(ts) == 64
    assert {(t.flip_x, t.flip_y) for t in ts} == set(ALL_FLIPS)
    assert len({(t.dx, t.dy) for t in ts}) <= 16
    assert ts == augmentations(32, 16, seed=3)
    assert ts != augmentations(32, 16, seed=4)
    per_sample = sample_augmentations(32, 3, 16, seed=3)
    assert per_sample[0] != per_sample[1]


@pytest.mark.parametrize("flips", ALL_FLIPS)
def test_map_round_trip_is_bit_exact_numpy_and_torch(flips):
    rng = np.random.default_rng(0)
    a = rng.random((3, 12, 12))
    t = Transform(12, dx=5, dy=-7, flip_x=flips[0], flip_y=flips[1])
    assert np.array_equal(t.inverse_image(t.image(a)), a)
    assert np.array_equal(t.image(t.inverse_image(a)), a)
    b = torch.as_tensor(a)
    assert torch.equal(t.inverse_image(t.image(b)), b)
    assert np.array_equal(t.image(b).numpy(), t.image(a))


@pytest.mark.parametrize("flips", ALL_FLIPS)
def test_points_follow_the_image_exactly(flips):
    """A marked pixel lands where the transformed coordinate of its centre says, and back."""
    n = 16
    t = Transform(n, dx=3, dy=11, flip_x=flips[0], flip_y=flips[1])
    for row, col in [(0, 0), (5, 9), (15, 15), (7, 0)]:
        a = np.zeros((n, n))
        a[row, col] = 1
        u = np.array([(col + 0.5) / n, (row + 0.5) / n])
        r2, c2 = np.argwhere(t.image(a))[0]
        assert np.allclose(t.points(u), [(c2 + 0.5) / n, (r2 + 0.5) / n], atol=1e-15)
    u = np.random.default_rng(1).random((100, 2))
    back = t.inverse_points(t.points(u))
    d = back - u
    assert np.abs(d - np.round(d)).max() < 1e-15  # exact up to rounding of the addition
    assert np.all((t.points(u) >= 0) & (t.points(u) < 1))


def test_fractional_and_angstrom_are_inverse():
    pm = PixelMap(0.5, (-3.0, 2.0), (64, 64))
    xy = np.array([[-3.0, 2.0], [10.0, 20.0]])
    u = fractional(pm, xy)
    assert np.allclose(u, [[0, 0], [13 / 32, 18 / 32]])
    assert np.allclose(angstrom(pm, u), xy)


def _network(n_side=6, spacing=3.0, seed=0, info=None, crack=None):
    """A 2D point lattice with a little noise (renders like a sample; targets in info)."""
    rng = np.random.default_rng(seed)
    g = np.stack(np.meshgrid(np.arange(n_side), np.arange(n_side)), -1).reshape(-1, 2) * spacing
    pos = g + rng.normal(0, 0.1, g.shape) + 0.5
    arrays = {} if crack is None else {"crack": crack}
    return Structure(pos, ["Si"] * len(pos), Box([n_side * spacing] * 2), arrays=arrays, info=info or {})


def test_targets_from_info_and_dropped_samples(tmp_path):
    settings = ImageSettings(size=32, pixels=64)
    s1 = _network(info={"rupture_strain": 0.1, "rupture_location": [4.5, 9.0]})
    s2 = _network(seed=1, info={"rupture_strain": 0.2, "rupture_location": [18.0 + 4.5, -9.0]})  # wraps to (4.5, 9)
    s3 = _network(seed=2)  # no labels
    strain = images_from_structures([s1, s2, s3], ["a", "b", "c"], "strain", settings)
    assert strain.names == ["a", "b"] and np.allclose(strain.values, [0.1, 0.2])
    assert strain.dropped == [{"name": "c", "reason": "no 'rupture_strain' in info"}]
    assert strain.images.shape == (2, 32, 32) and strain.images.dtype == np.float32
    loc = images_from_structures([s1, s2], ["a", "b"], "location", settings)
    assert np.allclose(loc.values, [[0.25, 0.5], [0.25, 0.5]])
    # a folder of extended XYZ files is a dataset
    for name, s in (("a", s1), ("b", s2)):
        write(s, tmp_path / f"{name}.xyz")
    structures, names = read_structures(tmp_path)
    assert names == ["a", "b"] and np.allclose(structures[1].info["rupture_location"], [22.5, -9.0])


def test_crack_target_is_blurred_crack_image_plus_bounded_noise():
    n = 36
    crack = np.zeros(n, np.int8)
    crack[[14, 15, 16]] = 1
    s = _network(crack=crack)
    data = images_from_structures([s], ["a"], "crack", ImageSettings(size=32, pixels=64))
    target = data.values[0]
    assert target.shape == (32, 32) and target.min() >= 0 and target.max() <= 1.25
    assert target.max() > 1.0  # peak scaled to 1 plus noise
    # the peak sits near the crack atoms (row 2 of the lattice, columns 2-4)
    row, col = np.unravel_index(np.argmax(target), target.shape)
    uv = data.atom_uv[0][[14, 15, 16]]
    assert np.min(np.abs(uv[:, 1] * 32 - (row + 0.5))) < 4
    assert data.atom_labels[0].sum() == 3
    s.arrays["crack"] = np.zeros(n, np.int8)
    with pytest.raises(Exception, match="no imaged crack atoms"):
        images_from_structures([s], ["a"], "crack", ImageSettings(size=32, pixels=64))


def _lone_atoms(lx=20.0, ly=26.0):
    """Two Si atoms in a tall periodic cell (one above y0 + Lx, outside the square crop)."""
    pos = np.array([[5.0, 4.0], [13.0, 20.0]])
    return Structure(pos, ["Si", "Si"], Box([lx, ly], origin=[1.0, -2.0]),
                     info={"rupture_strain": 0.1, "rupture_location": [13.0, 20.0 + ly]})


def test_cell_crop_keeps_every_atom_and_site_with_the_exact_rectangular_pixel_map():
    s = _lone_atoms()
    settings = ImageSettings(size=40, pixels=80, background_per_area=0.0, crop="cell")
    rendered = render_sample(s, settings, seed=1)
    pm = rendered.pixel_map
    assert isinstance(pm, CellPixelMap) and rendered.image.shape == (40, 40)
    assert np.isclose(pm.pixel_size, 20.0 / 40) and np.isclose(pm.pixel_size_y, 26.0 / 40)
    assert np.allclose(pm.extent, (1.0, 21.0, -2.0, 24.0))
    assert np.isclose(rendered.image.sum(), 1600)  # every photon of both atoms is counted
    # each atom's photon centroid, mapped back with the anisotropic pixel map, is at the atom
    xy_px = np.stack(np.meshgrid(np.arange(40), np.arange(40)), -1).astype(float)
    for atom in s.positions:
        col, row = np.round(pm.to_pixels(atom)).astype(int)
        near = np.zeros_like(rendered.image)
        near[row - 4:row + 5, col - 4:col + 5] = rendered.image[row - 4:row + 5, col - 4:col + 5]
        centroid = (near[..., None] * xy_px).sum((0, 1)) / near.sum()
        assert np.allclose(pm.to_angstrom(centroid), atom, atol=0.05)
    u = fractional(pm, s.positions)
    assert np.all((u >= 0) & (u < 1)) and np.allclose(angstrom(pm, u), s.positions)
    # the rupture site above y0 + Lx is learnt with crop="cell" and dropped with the square crop
    loc = images_from_structures([s], ["a"], "location", settings)
    assert np.allclose(angstrom(loc.pixel_maps[0], loc.values[0]), [13.0, 20.0])
    square = ImageSettings(size=40, pixels=80, background_per_area=0.0)
    with pytest.raises(Exception, match="outside the square image"):
        images_from_structures([s], ["a"], "location", square)


@pytest.mark.parametrize("flips", ALL_FLIPS)
def test_cell_crop_location_round_trip_through_augmentation_is_exact(flips):
    s = _lone_atoms()
    loc = images_from_structures([s], ["a"], "location", ImageSettings(size=40, pixels=80, crop="cell"))
    pm, u = loc.pixel_maps[0], loc.values[0]
    t = Transform(40, dx=7, dy=31, flip_x=flips[0], flip_y=flips[1])
    back = angstrom(pm, t.inverse_points(t.points(u)))
    assert np.abs(back - [13.0, 20.0]).max() < 1e-12
    assert np.array_equal(t.inverse_image(t.image(loc.images[0])), loc.images[0])


def test_cell_crop_crack_target_peaks_at_the_crack_atom():
    s = _lone_atoms()
    s.set_array("crack", np.array([0, 1], np.int8))
    data = images_from_structures([s], ["a"], "crack", ImageSettings(size=40, pixels=80, crop="cell"))
    row, col = np.unravel_index(np.argmax(data.values[0]), data.values[0].shape)
    assert np.allclose(data.pixel_maps[0].to_angstrom([col, row]), [13.0, 20.0], atol=2.0)
