"""Rings as faces of the Si network: honeycomb, generated and external samples, bilayers,
points-only rule, open boundaries, invariances, figure and command line."""

import argparse

import numpy as np
import pytest

import glassfrac
from glassfrac import Box, Structure
from glassfrac.analysis import RingAnalysis, voronoi_bonds
from glassfrac.structure import neighbor_pairs

README_MU2 = {"sig_0.60": 0.45, "sig_1.00": 1.1, "sig_1.50": 1.9}
D_SISI = 3.05


def honeycomb(nx, ny, d=D_SISI):
    """Periodic honeycomb of Si (4 nx ny atoms, rectangular cell), Si–Si distance d (Å)."""
    a = d * np.sqrt(3)
    basis = np.array([[0, 0], [a / 2, d / 2], [a / 2, 1.5 * d], [0, 2 * d]])
    shifts = np.array([[ix * a, iy * 3 * d] for ix in range(nx) for iy in range(ny)])
    positions = (basis[None] + shifts[:, None]).reshape(-1, 2)
    return Structure(positions, ["Si"] * len(positions), Box([nx * a, ny * 3 * d]))


def decorated(si):
    """``si`` with an O at the midpoint of every Si–Si bond (Si–O = d/2 ≈ 1.53 Å)."""
    i, _, _, vec = neighbor_pairs(si.positions, si.box, 1.1 * D_SISI)
    o = si.box.wrap(si.positions[i] + vec / 2)
    return Structure(np.concatenate([si.positions, o]), ["Si"] * si.n_atoms + ["O"] * len(o), si.box)


def ring_sets(analysis, index=None):
    """Rings as a set of frozensets of atom indices (mapped through ``index`` if given)."""
    return {frozenset((r if index is None else index[r]).tolist()) for r in analysis.rings}


def check_torus(rings):
    """Euler and bond-count identities of a periodic network."""
    n_bonds = len(rings.network.bonds)
    assert rings.euler_characteristic == 0
    assert rings.n_dropped_faces == 0
    assert rings.ring_sizes.sum() == 2 * n_bonds
    assert len(rings.network.positions) - n_bonds + rings.n_rings == 0
    assert len(rings.ring_pairs) == n_bonds  # every bond separates two different rings
    assert rings.ring_areas.sum() == pytest.approx(rings.network.box.area, rel=1e-9)


@pytest.fixture(scope="module")
def jumol(jumol_files):
    out = {}
    for path in jumol_files:
        structure = glassfrac.read(path)
        out[path.name[:8]] = (structure, RingAnalysis().compute(structure))
    return out


@pytest.fixture(scope="module")
def samples(generated):
    """Generated monolayers (1350 atoms, 270 rings) at three disorder levels, with their rings."""
    return {level: (s, RingAnalysis().compute(s)) for level, s in generated.networks().items()}


# -- honeycomb --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["si_bonds", "si_o_bonds", "bridges", "points"])
def test_honeycomb_all_hexagons(kind):
    si = honeycomb(4, 3)
    if kind == "points":
        structure, method = si, "points"
    elif kind == "si_bonds":
        i, j, images, _ = neighbor_pairs(si.positions, si.box, 1.1 * D_SISI)
        structure, method = Structure(si.positions, si.species, si.box, np.column_stack([i, j]), images), "bonds"
    else:
        structure, method = decorated(si), "bridges"
        if kind == "si_o_bonds":
            i, j, images, _ = neighbor_pairs(structure.positions, structure.box, 1.8)
            structure.set_bonds(np.column_stack([i, j]), images)
            method = "bonds"
    rings = RingAnalysis(method=method).compute(structure)
    assert rings.method_used == method
    assert rings.n_rings == si.n_atoms // 2 == 24
    assert set(rings.ring_sizes.tolist()) == {6}
    assert rings.mu2 == 0.0
    assert np.isnan(rings.alpha)
    assert rings.coordination_ok
    assert not rings.defect_map.any() and not rings.defect_rings.any()
    assert rings.ring_areas == pytest.approx(1.5 * np.sqrt(3) * D_SISI**2)
    check_torus(rings)
    if kind in ("bridges", "si_o_bonds"):
        assert rings.coordination["Si-O"]["histogram"] == {3: 48}
        assert rings.coordination["O-Si"]["histogram"] == {2: 72}


def test_triclinic_perturbed_honeycomb_bridges_equal_points():
    d = D_SISI
    a = d * np.sqrt(3)
    cell = np.array([[a, 0], [a / 2, a * np.sqrt(3) / 2]])
    basis = np.array([[0, 0], [a / 2, d / 2]])
    positions = np.concatenate([basis + i * cell[0] + j * cell[1] for i in range(5) for j in range(4)])
    positions += np.random.default_rng(3).normal(0, 0.08, positions.shape)
    si = Structure(positions, ["Si"] * 40, Box(cell * [[5], [4]]))
    bridges = RingAnalysis().compute(decorated(si))
    points = RingAnalysis(method="points").compute(si)
    assert bridges.method_used == "bridges" and bridges.n_rings == 20
    assert ring_sets(points) == ring_sets(bridges)
    assert set(points.ring_sizes.tolist()) == {6}
    check_torus(points)


def test_smallest_honeycomb_cell():
    rings = RingAnalysis(method="points").compute(honeycomb(1, 1))
    assert rings.ring_sizes.tolist() == [6, 6]
    check_torus(rings)  # includes rings next to their own periodic images in ring_pairs


def test_results_read_only_and_refused_before_compute():
    analysis = RingAnalysis()
    with pytest.raises(AttributeError, match="before compute"):
        _ = analysis.n_rings
    analysis.compute(decorated(honeycomb(2, 2)))
    with pytest.raises(ValueError):
        analysis.ring_sizes[0] = 5
    with pytest.raises(ValueError):
        analysis.rings[0][0] = 1


def test_defect_map_marks_atoms_of_non_hexagonal_rings(samples):
    structure, rings = samples["sig_1.25"]
    expected = np.zeros(structure.n_atoms, bool)
    for ring, size in zip(rings.rings, rings.ring_sizes, strict=True):
        if size != 6:
            expected[ring] = True
    assert np.array_equal(rings.defect_map, expected)
    assert np.array_equal(rings.defect_rings, rings.ring_sizes != 6)
    assert not rings.defect_map[structure.species == "O"].any()


# -- generated and external samples -------------------------------------------------------------

def check_monolayer(structure, rings):
    """The ring analysis of a valid 1350-atom monolayer (540 Si, 810 O, 270 rings)."""
    assert rings.method_used == "bridges"
    assert rings.n_rings == 270
    assert len(rings.network.atoms) == 540
    assert rings.coordination_ok
    assert rings.coordination["Si-Si"]["histogram"] == {3: 540}
    assert rings.coordination["Si-O"]["histogram"] == {3: 540}
    assert rings.coordination["O-Si"]["histogram"] == {2: 810}
    assert np.all(structure.species[np.concatenate(rings.rings)] == "Si")
    check_torus(rings)


def test_generated_samples(samples):
    mu2 = [rings.mu2 for _, rings in samples.values()]
    assert mu2 == sorted(mu2) and mu2[0] > 0.3 and mu2[-1] > 1.2  # disorder grows with the level
    for structure, rings in samples.values():
        check_monolayer(structure, rings)
        assert 0.15 < rings.alpha < 0.4


@pytest.mark.shared_data
def test_jumol_samples(jumol):
    assert set(jumol) == set(README_MU2)
    for name, (structure, rings) in jumol.items():
        check_monolayer(structure, rings)
        assert rings.mu2 == pytest.approx(README_MU2[name], abs=0.1)
        assert 0.15 < rings.alpha < 0.35


def test_points_only_rings_of_generated_samples(samples):
    """Exact at the lowest disorder; at higher disorder the generated geometry is less regular
    than relaxed 2D silica (JuMol: exact at every level) and a few rings differ."""
    for level, (structure, rings) in samples.items():
        points = RingAnalysis(method="points").compute(structure)
        if level == "sig_0.70":
            check_torus(points)
            assert ring_sets(points) == ring_sets(rings)
            assert len(points.one_sided) == 0
            assert points.mu2 == rings.mu2 and points.alpha == rings.alpha
        assert len(ring_sets(points) & ring_sets(rings)) >= 0.95 * rings.n_rings


@pytest.mark.shared_data
def test_jumol_points_only_equals_bond_rings(jumol):
    for structure, rings in jumol.values():
        points = RingAnalysis(method="points").compute(structure)
        assert ring_sets(points) == ring_sets(rings)
        assert len(points.one_sided) == 0
        assert points.mu2 == rings.mu2 and points.alpha == rings.alpha


def check_bilayer(structure, n_rings, points_exact=True):
    """Top and bottom layers of a bilayer centred on z = 0: the same ring sizes, ``n_rings`` each;
    the points-only rule finds the top layer's rings (all of them if ``points_exact``)."""
    n_si, n_o = structure.count("Si"), structure.count("O")
    top = RingAnalysis().compute(structure)
    bottom = RingAnalysis(layer="bottom").compute(structure)
    for rings in (top, bottom):
        assert rings.n_rings == n_rings
        assert len(rings.network.atoms) == n_si // 2 == 2 * n_rings
        assert rings.coordination_ok
        assert rings.coordination["Si-O"] == {**rings.coordination["Si-O"], "expected": 4, "histogram": {4: n_si}}
        assert rings.coordination["O-Si"]["histogram"] == {2: n_o}
        check_torus(rings)
    z = structure.positions[:, 2]
    assert (z[np.concatenate(top.rings)] > 0).all() and (z[np.concatenate(bottom.rings)] < 0).all()
    assert sorted(top.ring_sizes) == sorted(bottom.ring_sizes)
    points = RingAnalysis(method="points").compute(structure)
    if points_exact:
        assert ring_sets(points) == ring_sets(top)
    assert len(ring_sets(points) & ring_sets(top)) >= 0.95 * n_rings


def test_generated_bilayer(generated):
    check_bilayer(generated.bilayer(), 48, points_exact=False)  # one long Si–Si bond is not a Voronoi side


@pytest.mark.shared_data
def test_fc22_bilayer(fc22_bilayer_path):
    structure = glassfrac.read(fc22_bilayer_path)
    assert structure.count("Si") == 1152 and structure.count("O") == 2304
    check_bilayer(structure, 288)


# -- points only, open boundaries ----------------------------------------------------------------

def test_points_only_on_open_cutout_matches_interior(samples):
    """Interior rings of an open cut-out equal those of the periodic sample by the same rule
    (points only; that rule against bonds: test_jumol_points_only_equals_bond_rings)."""
    structure, _ = samples["sig_1.25"]
    periodic = RingAnalysis(method="points").compute(structure)
    si = np.flatnonzero(structure.species == "Si")
    x = structure.positions[si]
    lo, hi, margin = np.array([8.0, 12.0]), np.array([70.0, 66.0]), 7.0
    keep = np.all((x > lo) & (x < hi), axis=1)
    index = si[keep]
    cut = Structure(x[keep], ["Si"] * len(index), Box([0.0, 0.0], pbc=False))  # no cell at all
    rings = RingAnalysis(method="points").compute(cut)

    def interior(atoms):
        q = structure.positions[atoms]
        return bool(np.all((q > lo + margin) & (q < hi - margin)))

    expected = {r for r in ring_sets(periodic) if interior(list(r))}
    found = {r for r in ring_sets(rings, index) if interior(list(r))}
    assert len(expected) > 40
    assert found == expected
    assert rings.n_dropped_faces == 1  # the outer face
    assert not rings.coordination_ok and rings.coordination["Si-Si"]["violators"] > 0
    # a side chosen by one atom only is not a bond, so the chooser ends up under-coordinated
    degree = np.bincount(rings.network.bonds.ravel(), minlength=len(index))
    assert len(rings.one_sided) > 0 and np.all(degree[rings.one_sided[:, 0]] < 3)
    # rings not flagged as boundary rings are real rings
    kept = [frozenset(index[r].tolist()) for r, b in zip(rings.rings, rings.boundary_rings, strict=True) if not b]
    assert sum(r in ring_sets(periodic) for r in kept) >= 0.95 * len(kept)


def test_strip_periodic_in_x_only(samples):
    structure, _ = samples["sig_1.00"]
    strip = Structure(structure.positions, structure.species, Box(structure.box.cell, pbc=[True, False]))
    for method in ("bridges", "points"):
        periodic = RingAnalysis(method=method).compute(structure)
        rings = RingAnalysis(method=method).compute(strip)
        assert rings.n_dropped_faces == 2  # the two edges of the strip wind around x
        kept = {frozenset(r.tolist()) for r, b in zip(rings.rings, rings.boundary_rings, strict=True) if not b}
        assert len(kept) > 200 and kept <= ring_sets(periodic)


def test_voronoi_bonds_of_perfect_honeycomb():
    si = honeycomb(3, 2)
    vb = voronoi_bonds(si.positions, si.box)
    assert len(vb.bonds) == 36 and len(vb.one_sided) == 0 and not vb.open_cell.any()
    assert vb.width == pytest.approx(np.sqrt(3) * D_SISI)  # side of the triangular Voronoi cell
    vectors = si.positions[vb.bonds[:, 1]] + vb.images @ si.box.cell - si.positions[vb.bonds[:, 0]]
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(D_SISI)


# -- invariances --------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["bridges", "points"])
def test_translation_wrapping_and_permutation_invariance(samples, method):
    structure, _ = samples["sig_1.00"]
    reference = RingAnalysis(method=method).compute(structure)
    moved = Structure(structure.box.wrap(structure.positions + [31.7, -55.2]), structure.species, structure.box)
    perm = np.random.default_rng(7).permutation(structure.n_atoms)
    permuted = Structure(structure.positions[perm], structure.species[perm], structure.box)
    a = RingAnalysis(method=method).compute(moved)
    b = RingAnalysis(method=method).compute(permuted)
    assert ring_sets(a) == ring_sets(reference)
    assert ring_sets(b, perm) == ring_sets(reference)
    for other in (a, b):
        assert other.distribution == reference.distribution
        assert other.mu2 == pytest.approx(reference.mu2, abs=1e-12)
        assert other.alpha == pytest.approx(reference.alpha, abs=1e-12)
        assert np.sort(other.ring_areas) == pytest.approx(np.sort(reference.ring_areas), rel=1e-9)


def test_ring_centres_inside_cell_and_rings_counter_clockwise(samples):
    structure, rings = samples["sig_0.70"]
    f = structure.box.fractional(rings.ring_centres)
    assert np.all((f >= 0) & (f < 1))
    assert np.all(rings.ring_areas > 0)
    for ring, polygon in zip(rings.rings[:20], rings.ring_polygons[:20], strict=True):
        d = polygon - structure.positions[ring]
        assert np.allclose(structure.box.minimum_image(d), 0, atol=1e-9)


# -- figure and command line ---------------------------------------------------------------------

def test_plot_png_not_blank(samples, tmp_path):
    import matplotlib.image

    from glassfrac.report import plot_rings

    _, rings = samples["sig_1.25"]
    path = tmp_path / "rings.png"
    plot_rings(rings, path)
    image = matplotlib.image.imread(path)
    colours = np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert image.shape[0] > 300 and len(colours) > 20
    assert not list(tmp_path.glob(".*part"))


def test_command_line(generated, samples, tmp_path):
    from glassfrac.cli import analysis as commands

    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers())
    png = tmp_path / "net.png"
    args = parser.parse_args(["rings", str(generated.path("network", "sig_0.70")), "--points-only", "--plot", str(png),
                              "--json"])
    result = args.handler(args)
    assert result["n_atoms"] == 1350 and result["n_si"] == 540 and result["n_rings"] == 270
    assert result["method"] == "points" and result["coordination_ok"] is True
    assert sum(result["ring_sizes"].values()) == 270
    _, rings = samples["sig_0.70"]  # the file's rings: the points-only rule finds the same
    assert result["mu2"] == pytest.approx(rings.mu2, abs=1e-12) and result["alpha"] == pytest.approx(rings.alpha)
    assert png.stat().st_size > 10_000
