"""Campaign exports read back by the learning stages (glassfrac.learn.exports): every problem of
the file is an InputError naming it and the array, before any structure is built."""

import json

import numpy as np
import pytest

from glassfrac.core.errors import InputError
from glassfrac.learn.exports import export_structure, read_export


def export_arrays(n_samples=2, n_atoms=3):
    rng = np.random.default_rng(0)
    cell = np.zeros((n_samples, 3, 3))
    cell[:, 0, 0] = cell[:, 1, 1] = 10.0
    return {"sample_id": np.array([f"s{k}" for k in range(n_samples)]), "dim": np.full(n_samples, 2),
            "cell": cell, "pbc": np.tile([True, True, False], (n_samples, 1)),
            "atom_start": np.arange(n_samples + 1) * n_atoms,
            "positions": rng.random((n_samples * n_atoms, 3)) * 10,
            "species": np.array(["Si", "O", "O"] * n_samples), "mu2": np.array([0.3, np.nan][:n_samples]),
            "first_break": np.array([1, 0, 0] * n_samples, np.int8)}


def test_samples_are_split_and_built(tmp_path):
    np.savez(tmp_path / "d.npz", **export_arrays())
    samples = read_export(tmp_path / "d.npz", ("first_break", "crack"))
    assert [s["sample_id"] for s in samples] == ["s0", "s1"] and samples[1]["crack"] is None
    assert samples[0]["first_break"].tolist() == [1, 0, 0] and np.isnan(samples[1]["mu2"])
    s = export_structure(samples[1], {"first_break": samples[1]["first_break"]})
    assert s.dim == 2 and s.n_atoms == 3 and s.box.cell[0, 0] == 10.0


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("positions"), r"not a dataset export: no \['positions'\]"),
    (lambda a: a.pop("atom_start"), "no 'atom_start' array"),
    (lambda a: a.update(atom_start=np.array([0, 4, 3])), "array 'atom_start': expected 3 non-decreasing offsets"),
    (lambda a: a.update(positions=np.zeros((6, 2))), r"array 'positions': expected shape \(6, 3\) of numbers"),
    (lambda a: a.update(species=np.arange(6)), r"array 'species': expected shape \(6,\) of text"),
    (lambda a: a.update(cell=np.full((2, 3, 3), np.nan)), "array 'cell' holds non-finite numbers"),
    (lambda a: a.update(dim=np.array([2, 7])), "array 'dim': expected 2 or 3 per sample"),
    (lambda a: a.update(first_break=np.array(["x"] * 6)), "array 'first_break': expected shape"),
    (lambda a: a["cell"].__setitem__((1, 0, 0), 0.0), "sample 's1': periodic cell vectors are degenerate"),
])
def test_problems_name_the_file_and_the_array(tmp_path, change, message):
    arrays = export_arrays()
    change(arrays)
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(InputError, match=message) as err:
        for sample in read_export(tmp_path / "d.npz", ("first_break",)):
            export_structure(sample)
    assert str(err.value).startswith(str(tmp_path / "d.npz"))


def test_foreign_files_are_refused(tmp_path):
    (tmp_path / "t.npz").write_text("not an archive")
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    for name, message in (("t.npz", "not a readable .npz"), ("one.npz", "got a single .npy array"),
                          ("obj.npz", "not a readable .npz"), ("missing.npz", "file not found")):
        with pytest.raises(InputError, match=message):
            read_export(tmp_path / name)


def test_folder_form_and_its_manifest(tmp_path):
    arrays = export_arrays(1)
    arrays.pop("atom_start")
    np.savez(tmp_path / "s0.npz", **arrays)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"samples": [{"sample_id": "s0", "file": "s0.npz"}]}))
    assert [s["sample_id"] for s in read_export(tmp_path)] == ["s0"]
    for text, message in (("{", "not a dataset manifest"), ('{"samples": 3}', "expected a JSON object"),
                          ('{"samples": [{"file": "../x.npz"}]}', "not a file in the folder")):
        manifest.write_text(text)
        with pytest.raises(InputError, match=message) as err:
            read_export(tmp_path)
        assert str(err.value).startswith(str(manifest))
