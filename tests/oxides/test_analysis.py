"""Oxide analyses on structures whose answers are known by construction."""

import json

import numpy as np
import pytest

from glassfrac.analysis import oxide as an
from glassfrac.cli import main
from glassfrac.structure import Box, Structure, write


def _rock_salt(n=3, a=2.0):
    """Al/O rock salt (nearest neighbour a Å): every Al has 6 O at a, 12 Al at a√2."""
    grid = np.array([[i, j, k] for i in range(2 * n) for j in range(2 * n) for k in range(2 * n)])
    species = np.where(grid.sum(1) % 2 == 0, "Al", "O")
    return Structure(grid * a, species, Box([2 * n * a] * 3))


def test_partial_rdf_peaks_and_ideal_gas_limit():
    rdf = an.partial_rdf(_rock_salt(), r_max=5.5, bins=110)
    r = rdf["r"]
    assert r[np.argmax(rdf["Al-O"])] == pytest.approx(2.0, abs=0.05)
    assert r[np.argmax(rdf["Al-Al"])] == pytest.approx(2.0 * np.sqrt(2), abs=0.05)
    assert rdf["Al-O"][r < 1.9].sum() == 0
    gas = Structure(np.random.default_rng(0).random((3000, 3)) * 30.0,
                    np.where(np.arange(3000) < 1200, "Al", "O"), Box([30.0] * 3))
    g = an.partial_rdf(gas, r_max=8.0, bins=16)
    for key in ("Al-Al", "Al-O", "O-O"):
        assert np.abs(g[key][4:] - 1.0).max() < 0.1  # g -> 1 without correlations


def test_first_minimum():
    r = np.linspace(0.05, 6.0, 120)
    g = 5 * np.exp(-((r - 1.8) ** 2) / 0.02) + 1 - np.exp(-((r - 2.3) ** 2) / 0.05) * 0.9 * (r > 1.9)
    assert an.first_minimum(r, g) == pytest.approx(2.3, abs=0.1)


def _al_with_shell(n_o, distance=1.85, extra=()):
    """One Al at the centre of a 20 Å box with n_o O on the axes at ``distance``, plus ``extra``."""
    axes = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    x = np.vstack([[10.0, 10.0, 10.0], 10.0 + distance * axes[:n_o], *[np.atleast_2d(e) for e in extra]])
    return Structure(x, ["Al"] + ["O"] * (len(x) - 1), Box([20.0] * 3))


@pytest.mark.parametrize("n_o", [4, 5, 6])
def test_coordination(n_o):
    s = _al_with_shell(n_o, extra=[[10.0, 10.0, 12.5]] if n_o < 6 else [])  # an O at 2.5 Å: not bonded
    assert an.coordination(s).tolist() == [n_o]
    assert an.coordination_fractions(s) == {str(n_o): 1.0}
    assert an.coordination(s, cutoff=2.6).tolist() == [n_o + (n_o < 6)]


def test_coordination_of_rock_salt_through_the_boundary():
    s = _rock_salt()
    assert np.all(an.coordination(s) == 6)
    assert an.coordination_fractions(s) == {"6": 1.0}


def test_bond_switching_classes():
    # four Al far apart, each with 5 O; then: Al0 loses one O, Al1 gains one, Al2 swaps one, Al3 keeps all
    blocks, cells = [], []
    for k in range(4):
        s = _al_with_shell(5, extra=[[10.0, 10.0, 13.0]])  # the 6th O waits at 3 Å
        blocks.append(s.positions + [25.0 * k, 0, 0])
        cells.append(s.species)
    x0 = np.vstack(blocks)
    species = np.concatenate(cells)
    box = Box([100.0, 20.0, 20.0])
    ref = Structure(x0, species, box)
    x1 = x0.copy()
    x1[1, 0] += 1.0  # Al0: first O moves out to 2.85 Å -> DC
    x1[7 + 6] = [25.0 + 10.0, 10.0, 11.85]  # Al1: waiting O moves in -> IC
    x1[14 + 1, 0] += 1.0  # Al2: one O out ...
    x1[14 + 6] = [50.0 + 10.0, 10.0, 11.85]  # ... and the waiting O in -> SC
    x1[21 + 1] += [0.05, 0.05, 0.0]  # Al3: its O only jiggle -> UC
    out = an.bond_switching(ref, Structure(x1, species, box))
    assert out["classes"].tolist() == ["DC", "IC", "SC", "UC"]
    assert out["cn_reference"].tolist() == [5, 5, 5, 5]
    assert out["cn_current"].tolist() == [4, 6, 5, 5]
    assert out["fractions"] == {"DC": 0.25, "IC": 0.25, "SC": 0.25, "UC": 0.25}
    assert out["by_reference_cn"]["5"]["DC"] == 0.25
    curve = an.switching_curve([ref, ref, Structure(x1, species, box)])
    assert curve["UC"].tolist() == [1.0, 1.0, 0.25]


def test_cumulative_nonaffine_is_zero_for_affine_paths_and_adds_up():
    rng = np.random.default_rng(1)
    s = Structure(rng.random((200, 3)) * 12.0, ["Al"] * 80 + ["O"] * 120, Box([12.0] * 3))
    frames = [s.deformed(np.diag([1 + e, 1 - e / 3, 1])) for e in (0.0, 0.01, 0.02)]
    assert np.abs(an.cumulative_nonaffine(frames)).max() < 1e-10
    kicked = frames[2].copy()
    kicked.positions[0] += [0.3, 0.0, 0.0]
    d = an.cumulative_nonaffine([*frames, kicked, frames[2]])
    assert d.shape == (5, 200)
    assert d[-1, 0] > d[-2, 0] > 0.2  # the kick and the way back both count
    assert np.all(d[-1] >= d[-2])  # D only grows


def test_voronoi_volumes_of_a_lattice_and_a_random_packing():
    s = _rock_salt(n=2, a=2.0)
    np.testing.assert_allclose(an.voronoi_volumes(s), 8.0, rtol=1e-9)  # cube of side a
    rng = np.random.default_rng(2)
    cell = np.array([[11.0, 0, 0], [1.5, 10.0, 0], [0.5, -1.0, 12.0]])
    gas = Structure(rng.random((150, 3)) @ cell, ["O"] * 150, Box(cell))
    volumes = an.voronoi_volumes(gas)
    assert volumes.min() > 0
    assert volumes.sum() == pytest.approx(gas.box.volume, rel=1e-9)


def test_per_atom_stress_needs_virials():
    with pytest.raises(ValueError, match="stress_volume"):
        an.per_atom_stress(_rock_salt(n=2))


def test_phop_of_a_jump_and_of_vibrations():
    dt, t_r = 0.1, 6.0
    h = 30
    n_frames = 121
    x = np.zeros((n_frames, 3, 3))
    x[60:, 0, 0] = 1.5  # atom 0 hops 1.5 Å at frame 60
    x[:, 1] = np.random.default_rng(3).normal(0, 0.15, (n_frames, 3))  # atom 1 vibrates
    p = an.phop(x, dt, t_r)
    assert p.shape == (n_frames - 2 * h, 3)
    assert p[:, 0].max() == pytest.approx(1.5**2 * (h / (h + 1)) ** 1.5, rel=1e-9)  # ≈ a²
    assert np.argmax(p[:, 0]) + h in (59, 60)
    assert p[:, 1].max() < 0.2 and p[:, 1].mean() == pytest.approx(3 * 0.15**2, rel=0.3)  # ~ <u²>
    assert np.all(p[:, 2] == 0)
    assert an.hop_labels(p).tolist() == [1, -1, 0]
    with pytest.raises(ValueError, match="frames"):
        an.phop(x[:50], dt, t_r)


def test_high_value_clusters():
    # 20 Al: two tight groups of 3 (top values) plus spread-out others; top 30 % = 6 atoms
    x = np.vstack([[[1, 1, 1], [3, 1, 1], [3, 3, 1]], [[20, 20, 20], [22, 20, 20], [22.0, 20, 23.0]],
                   np.random.default_rng(4).random((14, 3)) * 5 + [10, 30, 30]])
    species = ["Al"] * 20 + ["O"]
    s = Structure(np.vstack([x, [[40.0, 40.0, 40.0]]]), species, Box([50.0] * 3))
    values = np.concatenate([[9, 8, 7, 6, 5, 4], np.zeros(14), [100.0]])  # the O is ignored
    out = an.high_value_clusters(s, values, fraction=0.3, cutoff=3.7)
    assert out["n_selected"] == 6
    assert out["n_clusters"] == 2 and out["largest"] == 3 and out["sizes"] == [3, 3]
    assert out["labels"][20] == -1 and np.all(out["labels"][6:20] == -1)
    assert len(set(out["labels"][:3])) == 1 and out["labels"][0] != out["labels"][3]
    with pytest.raises(ValueError, match="one entry per atom"):
        an.high_value_clusters(s, values[:5])


def test_analyse_command_names_a_missing_field_as_bad_input(tmp_path, capsys):
    path = tmp_path / "rock_salt.xyz"
    write(_rock_salt(), path)
    assert main(["oxide", "analyse", str(path), "--field", "softness", "--json"]) == 2  # input error, not a bug
    message = json.loads(capsys.readouterr().out)["error"]
    assert "no per-atom array 'softness'" in message and "internal error" not in message
