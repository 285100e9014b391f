"""Box and Structure: wrapping, minimum image, deformation, bonds, ASE round trip."""

import numpy as np
import pytest

from glassfrac.structure import Box, Structure


def triclinic_2d():
    return Box([[10.0, 0.0], [3.0, 9.0]], pbc=True)


def test_fractional_round_trip_and_wrap():
    box = triclinic_2d()
    rng = np.random.default_rng(0)
    pos = rng.normal(scale=30.0, size=(50, 2))
    assert np.allclose(box.cartesian(box.fractional(pos)), pos)
    wrapped = box.wrap(pos)
    f = box.fractional(wrapped)
    assert np.all((f >= 0) & (f < 1))
    # wrapping moves atoms by whole lattice vectors only
    n = box.fractional(pos) - f
    assert np.allclose(n, np.round(n))


def test_minimum_image_is_shortest():
    box = Box([12.0, 11.0, 10.0], pbc=[True, True, False])
    rng = np.random.default_rng(1)
    d = rng.uniform(-30, 30, size=(200, 3))
    m = box.minimum_image(d)
    # along the open z axis nothing changes
    assert np.allclose(m[:, 2], d[:, 2])
    for vec in m:
        for sx in (-1, 0, 1):
            for sy in (-1, 0, 1):
                alt = vec + sx * box.cell[0] + sy * box.cell[1]
                assert np.linalg.norm(vec) <= np.linalg.norm(alt) + 1e-12


def test_area_and_volume():
    assert triclinic_2d().volume == pytest.approx(90.0)
    b3 = Box([[10, 0, 0], [2, 8, 0], [0, 0, 30]], pbc=[True, True, False])
    assert b3.area == pytest.approx(80.0)
    assert b3.volume == pytest.approx(2400.0)


def test_degenerate_periodic_cell_rejected():
    with pytest.raises(ValueError, match="degenerate"):
        Box([[1.0, 0.0], [2.0, 0.0]], pbc=True)


def test_affine_deformation_maps_fractional_coordinates_unchanged():
    s = Structure(np.array([[1.0, 2.0], [5.0, 7.0]]), ["Si", "O"], triclinic_2d())
    F = np.array([[1.05, 0.01], [0.0, 0.97]])
    d = s.deformed(F)
    assert np.allclose(d.box.fractional(d.positions), s.box.fractional(s.positions))
    assert d.box.volume == pytest.approx(s.box.volume * np.linalg.det(F))


def test_bonds_across_boundary_keep_length_after_wrap():
    box = Box([10.0, 10.0])
    s = Structure([[9.5, 5.0], [0.5 + 10.0, 5.0]], ["Si", "Si"], box, bonds=[[0, 1]])
    assert np.allclose(s.bond_vectors(), [[1.0, 0.0]])
    w = s.wrapped()
    assert np.allclose(w.positions[1], [0.5, 5.0])
    assert np.allclose(w.bond_vectors(), [[1.0, 0.0]])
    assert w.coordination().tolist() == [1, 1]


def test_select_reindexes_bonds():
    box = Box([10.0, 10.0])
    s = Structure([[1, 1], [2, 1], [3, 1]], ["Si", "O", "Si"], box, bonds=[[0, 1], [1, 2]])
    sub = s.select(np.array([False, True, True]))
    assert sub.bonds.tolist() == [[0, 1]]
    assert sub.species.tolist() == ["O", "Si"]


@pytest.mark.parametrize("dim", [2, 3])
def test_ase_round_trip(dim):
    box = Box(np.eye(dim) * 8.0 + (np.eye(dim, k=-1) * 1.5), pbc=[True] * (dim - 1) + [dim == 2])
    rng = np.random.default_rng(2)
    s = Structure(rng.uniform(0, 8, (6, dim)), ["Si", "O"] * 3, box,
                  bonds=[[0, 1], [2, 3]], bond_images=[[1] + [0] * (dim - 1), [0] * dim],
                  arrays={"charge": np.arange(6.0)}, info={"seed": 3})
    back = Structure.from_ase(s.to_ase())
    assert back.dim == dim
    assert back.box == s.box
    assert np.allclose(back.positions, s.positions)
    assert back.species.tolist() == s.species.tolist()
    assert back.bonds.tolist() == s.bonds.tolist()
    assert back.bond_images.tolist() == s.bond_images.tolist()
    assert np.allclose(back.arrays["charge"], s.arrays["charge"])
    assert back.info["seed"] == 3


def test_open_box_with_zero_cell_wraps_and_images():
    box = Box(np.zeros((2, 2)), pbc=False)
    pos = np.array([[3.0, -2.0], [1.5, 7.0]])
    assert np.allclose(box.wrap(pos), pos)
    assert np.allclose(box.minimum_image(pos), pos)
    assert np.allclose(box.cartesian(box.fractional(pos)), pos)


def test_outputs_have_normal_permissions(tmp_path):
    import os
    import stat

    from glassfrac.structure import write

    s = Structure([[1.0, 1.0]], ["Si"], Box([5.0, 5.0]))
    write(s, tmp_path / "a.xyz")
    mode = stat.S_IMODE(os.stat(tmp_path / "a.xyz").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
