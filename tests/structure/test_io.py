"""File I/O: the external samples, round trips, and errors that name file and line."""

import numpy as np
import pytest

import glassfrac
from glassfrac.core.errors import InputError
from glassfrac.structure import Box, Structure, read, write
from glassfrac.structure.io import read_lammps_dump


@pytest.mark.shared_data
def test_external_jumol_samples(jumol_files):
    for path in jumol_files:
        s = read(path)
        assert s.dim == 2
        assert s.n_atoms == 1350 and s.count("Si") == 540 and s.count("O") == 810
        assert s.box.pbc.tolist() == [True, True]
        # every Si has exactly three O within 1.8 Å (the samples' README)
        from glassfrac.structure import neighbor_pairs

        i, j, _, v = neighbor_pairs(s.positions, s.box, 1.8)
        si_o = (s.species[i] == "Si") != (s.species[j] == "Si")
        si = np.where(s.species[i] == "Si", i, j)[si_o]
        assert np.all(np.bincount(si, minlength=s.n_atoms)[s.species == "Si"] == 3)


@pytest.mark.shared_data
def test_fc22_bilayer_dump(fc22_bilayer_path):
    s = read(fc22_bilayer_path)
    assert s.dim == 3 and s.n_atoms == 3456
    assert s.count("Si") == 1152
    assert s.box.pbc.tolist() == [True, True, False]  # the vacuum axis is read as open
    assert s.info["vacuum_axes"] == ["z"]
    assert s.box.cell[0, 0] == pytest.approx(85.1348, abs=1e-4)
    assert s.arrays["c_peratom"].sum() == pytest.approx(-16038.230, abs=1e-3)
    assert np.all(np.diff(s.arrays["id"]) > 0)


def sample_structure(dim):
    box = Box(np.diag([11.0, 12.0, 30.0][:dim]) + np.eye(dim, k=-1) * 1.25,
              pbc=[True, True, False][:dim] if dim == 3 else True)
    rng = np.random.default_rng(5)
    return Structure(rng.uniform(0, 10, (12, dim)), ["Si", "O", "O"] * 4, box)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("suffix", [".xyz", ".data", ".dump"])
def test_round_trip(tmp_path, dim, suffix):
    s = sample_structure(dim)
    path = tmp_path / f"s{suffix}"
    write(s, path)
    back = read(path)
    assert back.box.pbc.tolist() == s.box.pbc.tolist()
    assert back.dim == dim
    assert back.species.tolist() == s.species.tolist()
    assert np.allclose(back.positions, s.positions, atol=1e-12)
    assert np.allclose(back.box.cell, s.box.cell)


def test_charge_style_data_file(tmp_path):
    s = sample_structure(3)
    s.set_array("charge", np.where(s.species == "Si", 2.4, -1.2))
    write(s, tmp_path / "q.data", atom_style="charge")
    back = read(tmp_path / "q.data")
    assert np.allclose(back.arrays["charge"], s.arrays["charge"])


def test_dump_trajectory_frames(tmp_path):
    s = sample_structure(3)
    path = tmp_path / "traj.dump"
    for step in range(3):
        moved = s.copy()
        moved.positions = s.positions + 0.1 * step
        glassfrac.structure.io.write_lammps_dump(moved, path, timestep=step, append=True)
    frames = list(read_lammps_dump(path))
    assert [f.info["timestep"] for f in frames] == [0, 1, 2]
    assert np.allclose(frames[2].positions, s.positions + 0.2)


def write_text(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


DATA_HEADER = "test\n\n2 atoms\n1 atom types\n0 10 xlo xhi\n0 10 ylo yhi\n-1 1 zlo zhi\n\nMasses\n\n1 28.0855\n\n"


def test_error_names_file_and_line_for_bad_atom_line(tmp_path):
    path = write_text(tmp_path, "bad.data", DATA_HEADER + "Atoms # atomic\n\n1 1 0.0 0.0 0.0\n2 1 1.0 abc 0.0\n")
    with pytest.raises(InputError) as err:
        read(path)
    assert "bad.data" in str(err.value) and "line 16" in str(err.value) and "non-numeric" in str(err.value)


def test_error_for_atom_count_mismatch(tmp_path):
    path = write_text(tmp_path, "short.data", DATA_HEADER + "Atoms # atomic\n\n1 1 0.0 0.0 0.0\n")
    with pytest.raises(InputError, match="header says 2 atoms"):
        read(path)


def test_error_for_unknown_mass(tmp_path):
    text = DATA_HEADER.replace("28.0855", "99.0") + "Atoms # atomic\n\n1 1 0 0 0\n2 1 1 1 0\n"
    with pytest.raises(InputError, match="matches no known element"):
        read(write_text(tmp_path, "m.data", text))


def test_error_for_truncated_dump(tmp_path):
    text = "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n0 1\n0 1\n0 1\n" \
           "ITEM: ATOMS id type x y z\n1 1 0 0 0\n2 1 0.5\n"
    with pytest.raises(InputError) as err:
        read(write_text(tmp_path, "t.dump", text))
    assert "t.dump" in str(err.value) and "line 11" in str(err.value)


def test_unknown_extension(tmp_path):
    with pytest.raises(InputError, match="extension"):
        read(write_text(tmp_path, "x.foo", "hello"))


def test_failed_write_leaves_no_file(tmp_path):
    s = sample_structure(3)
    path = tmp_path / "out.data"
    with pytest.raises(ValueError):
        write(s, path, atom_style="charge")  # no charges: refused before anything is written
    assert list(tmp_path.iterdir()) == []
