"""Generated samples: geometry consistent with the topology, decoration, seeds, I/O, CLI."""

import json

import numpy as np
import pytest

from glassfrac.analysis.ring_statistics import aboav_weaire_alpha, ring_size_variance
from glassfrac.cli import main
from glassfrac.generate import (
    bilayer,
    check_network,
    find_crossing_bonds,
    generate,
    monolayer,
    ring_cycles,
)
from glassfrac.generate.checks import polygon_areas, ring_polygons
from glassfrac.structure import Box, Structure, neighbor_pairs, read, write


@pytest.fixture(scope="module")
def net():
    return generate((16, 18), mu2=0.5, kind="network", seed=11)


def _ring_pairs(structure):
    """Adjacent ring pairs: the two rings shared by the ends of every Si–Si bond."""
    r = structure.arrays["rings"]
    ri, rj = r[structure.bonds[:, 0]], r[structure.bonds[:, 1]]
    return ri[(ri[:, :, None] == rj[:, None, :]).any(2)].reshape(-1, 2)


def test_perfect_honeycomb():
    s = generate((8, 6), mu2=0.3, kind="network", seed=0, steps=0)
    assert s.n_atoms == 96 and len(s.bonds) == 144
    sizes = np.array([len(c) for c in ring_cycles(s)])
    assert (sizes == 6).all() and s.info["mu2"] == 0.0 and np.isnan(s.info["alpha"])
    np.testing.assert_allclose(np.linalg.norm(s.bond_vectors(), axis=1), 3.05, rtol=1e-6)
    np.testing.assert_allclose(s.box.lengths, [8 * np.sqrt(3) * 3.05, 6 * 1.5 * 3.05],
                               rtol=1e-6)
    assert check_network(s)["valid"]


def test_network_is_a_valid_embedding_of_its_topology(net):
    assert net.n_atoms == 576 and len(net.bonds) == 864
    assert (net.coordination() == 3).all()
    cycles = ring_cycles(net)
    assert len(cycles) == 288
    areas, simple = polygon_areas(ring_polygons(net.positions, net.box, cycles))
    assert simple.all() and (areas > 0).all()  # every ring simple and counter-clockwise
    assert areas.sum() == pytest.approx(net.box.area, rel=1e-10)
    assert len(find_crossing_bonds(net)) == 0
    report = check_network(net)
    assert report["valid"] and report["si_coordination"] == [3]
    lengths = np.linalg.norm(net.bond_vectors(), axis=1)
    assert lengths.mean() == pytest.approx(3.05, rel=1e-9)
    assert 0.8 < lengths.min() / 3.05 and lengths.max() / 3.05 < 1.25


def test_recorded_statistics_match_the_structure(net):
    sizes = np.array([len(c) for c in ring_cycles(net)])
    assert net.info["ring_sizes"] == sizes.tolist()
    assert sizes.min() >= 4 and sizes.max() <= 10
    assert net.info["mu2"] == pytest.approx(ring_size_variance(sizes))
    assert net.info["alpha"] == pytest.approx(aboav_weaire_alpha(sizes, _ring_pairs(net)))
    assert abs(net.info["mu2"] - 0.5) < 0.05 and abs(net.info["alpha"] - 1 / 3) < 0.05
    for key in ("seed", "steps", "final_cost", "mu2_target", "alpha_target", "distribution",
                "p_target", "accepted"):
        assert key in net.info


def test_crossing_bonds_are_found():
    box = Box([10.0, 10.0])
    # bonds 0, 1 cross inside the cell; bonds 2, 3 cross across the x boundary at (10, 5.5)
    s = Structure([[1, 1], [3, 3], [1, 3], [3, 1], [9.5, 5], [0.5, 6], [9.5, 6], [0.5, 5]],
                  ["Si"] * 8, box, bonds=[[0, 1], [2, 3], [4, 5], [6, 7]],
                  bond_images=[[0, 0], [0, 0], [1, 0], [1, 0]])
    assert sorted(map(sorted, find_crossing_bonds(s).tolist())) == [[0, 1], [2, 3]]
    s.positions[7] = [0.5, 6.5]
    assert sorted(map(sorted, find_crossing_bonds(s).tolist())) == [[0, 1]]


def test_a_folded_network_fails_the_check(net):
    bad = net.copy()
    r = ring_cycles(bad)[0]
    bad.positions[[r[0], r[2]]] = bad.positions[[r[2], r[0]]]  # swap two Si of a ring
    report = check_network(bad)
    assert not report["valid"]
    assert report["crossing_bonds"] > 0 or report["non_simple_rings"] > 0
    bad.positions[r[1]] = bad.positions[r[0]] + [0.5 * bad.box.lengths[0], 0.0]
    assert check_network(bad)["long_bonds"] > 0
    with pytest.raises(ValueError, match="half the box"):
        find_crossing_bonds(bad)


def test_monolayer(net):
    s = monolayer(net)
    si, o = s.species == "Si", s.species == "O"
    assert si.sum() == 576 and o.sum() == 864 and s.dim == 2
    coord = s.coordination()
    assert (coord[si] == 3).all() and (coord[o] == 2).all()
    sio = np.linalg.norm(s.bond_vectors(), axis=1)
    assert sio.mean() == pytest.approx(3.05 / 2, rel=1e-9)
    # protocol check: every Si has exactly 3 O within 1.8 Å
    i, j, _, _ = neighbor_pairs(s.positions, s.box, 1.8, full=True)
    n_o = np.bincount(i[si[i] & o[j]], minlength=s.n_atoms)
    assert (n_o[si] == 3).all()
    assert check_network(s)["valid"]
    np.testing.assert_allclose(s.positions[si], net.positions, atol=1e-12)


def test_bilayer(net):
    s = bilayer(net)
    si, o = s.species == "Si", s.species == "O"
    assert s.n_atoms == 3456 and si.sum() == 1152 and o.sum() == 2304
    assert s.box.pbc.tolist() == [True, True, False] and s.box.lengths[2] == 20.0
    coord = s.coordination()
    assert (coord[si] == 4).all() and (coord[o] == 2).all()
    z = s.positions[:, 2]
    np.testing.assert_allclose(np.unique(np.round(z[si], 9)), [-1.65, 1.65])
    assert sorted(np.unique(np.round(z[o], 9)).tolist()) == [-1.65, 0.0, 1.65]
    sio = np.linalg.norm(s.bond_vectors(), axis=1)
    vertical = np.abs(s.bond_vectors()[:, 2]) > 1e-9
    np.testing.assert_allclose(sio[vertical], 1.65)
    assert sio[~vertical].mean() == pytest.approx(1.65, rel=1e-9)
    # protocol check: every Si has 4 O within 2.2 Å
    i, j, _, _ = neighbor_pairs(s.positions, s.box, 2.2, full=True)
    n_o = np.bincount(i[si[i] & o[j]], minlength=s.n_atoms)
    assert (n_o[si] == 4).all()
    top = s.arrays["layer"] == 1
    assert (s.arrays["rings"][top & si] == net.arrays["rings"]).all()


def test_ring_analysis_agrees_if_available(net):
    rings = pytest.importorskip("glassfrac.analysis.rings")
    for s in (net, monolayer(net)):
        found = rings.RingAnalysis().compute(s)
        assert sorted(found.ring_sizes) == sorted(net.info["ring_sizes"])
        assert found.mu2 == pytest.approx(net.info["mu2"])


def test_seeds():
    a = generate((8, 8), mu2=0.6, kind="network", seed=3, steps=4000)
    b = generate((8, 8), mu2=0.6, kind="network", seed=3, steps=4000)
    c = generate((8, 8), mu2=0.6, kind="network", seed=4, steps=4000)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.bonds, b.bonds)
    assert a.info["ring_sizes"] == b.info["ring_sizes"]
    assert a.info["ring_sizes"] != c.info["ring_sizes"]


def test_extxyz_round_trip(net, tmp_path):
    path = tmp_path / "mono.xyz"
    s = monolayer(net)
    write(s, path)
    r = read(path)
    np.testing.assert_allclose(r.positions, s.positions, atol=1e-7)
    np.testing.assert_array_equal(r.bonds, s.bonds)
    np.testing.assert_array_equal(r.bond_images, s.bond_images)
    np.testing.assert_array_equal(r.arrays["rings"], s.arrays["rings"])
    assert r.info["mu2"] == pytest.approx(s.info["mu2"])
    assert check_network(r)["valid"]


def test_lognormal_sample():
    s = generate((12, 12), distribution="lognormal", sigma_factor=1.0, kind="monolayer", seed=2,
                 steps=20000)
    assert s.info["distribution"] == "lognormal" and s.info["sigma_factor"] == 1.0
    assert s.info["mu2_target"] == pytest.approx(0.993, abs=0.01)
    assert abs(s.info["mu2"] - s.info["mu2_target"]) < 0.15


def test_cli(tmp_path, capsys):
    out = tmp_path / "b.xyz"
    rc = main(["generate", "--rings", "8", "8", "--mu2", "0.4", "--kind", "bilayer",
               "--seed", "1", "--steps", "3000", "-o", str(out), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_atoms"] == 12 * 64 and res["n_rings"] == 64 and res["output"] == str(out)
    for key in ("mu2", "alpha", "mu2_target", "alpha_target", "seconds"):
        assert key in res
    assert read(out).n_atoms == 768


@pytest.mark.parametrize("args", [
    ["--rings", "8", "7", "--mu2", "0.4"],
    ["--rings", "8", "8"],
    ["--rings", "8", "8", "--mu2", "0.4", "--sigma-factor", "1"],
    ["--rings", "8", "8", "--mu2", "9"],
])
def test_cli_bad_arguments(args, tmp_path, capsys):
    out = tmp_path / "x.xyz"
    rc = main(["generate", *args, "--kind", "network", "--seed", "1", "-o", str(out), "--json"])
    assert rc == 2
    assert "error" in json.loads(capsys.readouterr().out)
    assert not out.exists()


def test_strong_disorder_still_embeds():
    s = generate((16, 18), mu2=2.5, kind="network", seed=4)
    assert s.info["geometry"] == "relaxed"
    assert abs(s.info["mu2"] - 2.5) < 0.1
    assert check_network(s)["valid"]
