"""From detections to a bonded structure: rings recovered, corrections, reading, overlay, CLI."""

import json

import mrcfile
import numpy as np
import pytest
from imaging_helpers import D_SISI, honeycomb_si, score
from PIL import Image

import glassfrac
from glassfrac.analysis import RingAnalysis
from glassfrac.cli import main
from glassfrac.core.errors import InputError
from glassfrac.imaging.build import _complete, apply_predictors, build_structure
from glassfrac.imaging.corrections import Correction, apply_corrections, read_corrections, write_corrections
from glassfrac.imaging.detect import Roi, detect, read_image, write_image
from glassfrac.imaging.pipeline import analyse_image
from glassfrac.learn.render import PixelMap, render
from glassfrac.report.image_overlay import plot_detections


def ring_sets(rings, index):
    return [frozenset(index[r].tolist()) for r in rings]


@pytest.fixture(scope="module")
def samples(generated):
    """Generated monolayers (1350 atoms, 78 x 81 Å) by disorder level. Image builds join Si
    by the points-only rule, which is exact on these at sig_0.70 only (tests/analysis/test_rings.py):
    the tests that need an exact build use that one, and the JuMol samples for all levels."""
    return generated.networks()


# -- rings recovered ----------------------------------------------------------------------------

def test_interior_rings_recovered_exactly_when_detection_is_complete(samples):
    check_rings_recovered(samples["sig_0.70"])


@pytest.mark.shared_data
def test_interior_rings_of_the_jumol_samples_recovered_exactly(jumol_files):
    """The same for all three disorder levels of relaxed, third-party samples."""
    for path in jumol_files:
        check_rings_recovered(glassfrac.read(path))


def check_rings_recovered(*structures):
    """Every ring not flagged as a boundary ring is a true ring (same atoms, so same size), and
    every true ring lying 3 Si–Si inside the image is found."""
    for structure in structures:
        truth = RingAnalysis().compute(structure)
        true_rings = {frozenset(r.tolist()) for r in truth.rings}
        rendered = render(structure, seed=1)
        found = detect(rendered.image, rendered.pixel_map.pixel_size)
        match, si_index = score(structure, rendered, found.positions)
        assert match.recall == 1.0 and match.precision == 1.0
        built = build_structure(found.positions, found.pixel_size)
        to_true = np.full(len(found.positions), -1)
        to_true[match.pairs[:, 1]] = si_index[match.pairs[:, 0]]
        interior = ~built.rings.boundary_rings
        to_true = to_true[built.structure.arrays["detection"]]  # structure Si → true Si
        detected = ring_sets([r for r, ok in zip(built.rings.rings, interior, strict=True) if ok], to_true)
        assert len(detected) > 150
        assert all(r in true_rings for r in detected)
        x0, x1, y0, y1 = rendered.pixel_map.extent
        m = 3 * D_SISI
        lx, ly = np.diag(structure.box.cell)
        inside = 0
        for ring, poly in zip(truth.rings, truth.ring_polygons, strict=True):
            for shift in [(dx, dy) for dx in (-lx, 0, lx) for dy in (-ly, 0, ly)]:
                p = poly + shift
                if (p[:, 0] > x0 + m).all() and (p[:, 0] < x1 - m).all() and (p[:, 1] > y0 + m).all() \
                        and (p[:, 1] < y1 - m).all():
                    inside += 1
                    assert frozenset(ring.tolist()) in detected
        assert inside > 120
        sizes = sorted(len(r) for r in detected)
        assert sizes == sorted(built.rings.ring_sizes[interior].tolist())
        assert built.summary()["undercoordinated_interior"] == 0


def test_build_of_a_honeycomb_patch():
    si = honeycomb_si(6, 4).positions  # 96 Si, open patch
    built = build_structure(si / 0.4, pixel_size=0.4 * 1.1, frozen_radius=8.0)
    s = built.structure
    n = s.count("Si")
    detection = s.arrays["detection"][:n]
    isolated = built.summary()["isolated"]
    assert n == len(si) - isolated and 0 <= isolated <= 2 and s.count("O") == len(built.si_bonds)
    assert np.all(built.coordination[detection] > 0)
    interior = ~built.rings.boundary_rings
    assert interior.sum() >= 10 and set(built.rings.ring_sizes[interior].tolist()) == {6}
    # rescaled: every bond of the perfect honeycomb is 3.05 Å; O at the midpoints
    i, j = built.si_bonds.T
    at = np.full((len(si), 2), np.nan)
    at[detection] = s.positions[:n]
    inner = (built.coordination[i] == 3) & (built.coordination[j] == 3)
    assert np.allclose(np.linalg.norm(at[j] - at[i], axis=1)[inner], D_SISI)
    assert np.allclose(s.positions[n:], 0.5 * (at[i] + at[j]))
    assert built.scale == pytest.approx(1 / 1.1)
    assert np.array_equal(np.bincount(s.bonds.ravel(), minlength=s.n_atoms)[n:], np.full(len(i), 2))
    assert not s.box.pbc.any()
    # frozen outside the circle around the mean Si position
    r = np.linalg.norm(s.positions - s.positions[:n].mean(axis=0), axis=1)
    assert np.array_equal(s.arrays["frozen"], r > 8.0) and 0 < s.arrays["frozen"].sum() < s.n_atoms
    assert np.allclose(s.arrays["pixel_xy"][:n], si[detection] / 0.4)
    # every under-coordinated Si is on the edge of the patch
    assert len(built.undercoordinated) > 0 and len(built.interior) == 0


def test_missing_bonds_between_close_undercoordinated_si_are_restored():
    si = honeycomb_si(4, 4).positions  # an open patch: edge Si have 1 or 2 bonds
    i, j = np.array([(a, b) for a in range(len(si)) for b in range(a + 1, len(si))]).T
    true = np.column_stack([i, j])[np.abs(np.linalg.norm(si[i] - si[j], axis=1) - D_SISI) < 1e-6]
    lost = true[[3, 10, 17]]  # three bonds the Voronoi rule would have missed
    kept = np.delete(true, [3, 10, 17], axis=0)
    restored = _complete(si, kept, 1.2 * D_SISI)
    assert {tuple(b) for b in restored.tolist()} == {tuple(b) for b in true.tolist()}
    assert {tuple(b) for b in restored[len(kept):].tolist()} == {tuple(b) for b in lost.tolist()}


def test_predictor_hook():
    built = build_structure(honeycomb_si(4, 4).positions, pixel_size=1.0)

    class Counter:
        def predict_structure(self, structure):
            return structure.count("Si")

    assert apply_predictors(built.structure, {"count": Counter()}) == {"count": built.structure.count("Si")}
    with pytest.raises(TypeError, match="predict_structure"):
        apply_predictors(built.structure, {"bad": object()})


def test_relax_with_free_boundaries():
    pytest.importorskip("glassfrac.mechanics.relax")
    si = honeycomb_si(4, 2).positions * 1.02
    built = build_structure(si, pixel_size=1.0, relax=True, fmax=1e-2)
    assert built.relax is not None and built.relax["converged"]
    assert built.relax["max_force"] <= 1e-2
    assert built.structure.count("Si") == len(si) - built.summary()["isolated"]
    assert len(built.rings.rings) == len(build_structure(si, pixel_size=1.0).rings.rings)


# -- corrections --------------------------------------------------------------------------------

def test_corrections_round_trip(tmp_path):
    rows = [Correction("add", 1.5, 2.25), Correction("remove", 10.0, 3.0, "A"), Correction("add", -0.125, 7.0)]
    path = tmp_path / "c.csv"
    write_corrections(path, rows)
    back = read_corrections(path)
    assert [(c.action, c.x, c.y, c.unit) for c in back] == [(c.action, c.x, c.y, c.unit) for c in rows]
    assert [c.line for c in back] == [3, 4, 5]  # after the comment and the header


def test_corrections_fix_a_missed_and_a_spurious_atom(samples, tmp_path):
    """A missed Si (taken out of the detections) and a spurious one (added) leave interior
    under-coordination and wrong rings; the corrections file restores the complete build."""
    structure = samples["sig_0.70"]
    rendered = render(structure, seed=1)
    ps = rendered.pixel_map.pixel_size
    found = detect(rendered.image, ps)
    complete = build_structure(found.positions, ps)
    centre = np.array([64.0, 64.0])
    k = int(np.argmin(np.linalg.norm(found.positions - centre, axis=1)))
    missed = found.positions[k]
    # in a ring interior about 30 px away: the grid point there farthest from every detection
    grid = found.positions[k] + [0.0, 30.0] + np.stack(np.meshgrid(*[np.arange(-6.0, 6.5, 0.5)] * 2), -1).reshape(-1, 2)
    spurious = grid[np.argmax(np.min(np.linalg.norm(grid[:, None] - found.positions[None], axis=-1), axis=1))]
    damaged = np.concatenate([np.delete(found.positions, k, axis=0), [spurious]])
    broken = build_structure(damaged, ps)
    assert len(broken.interior) > 0
    assert sorted(broken.rings.ring_sizes.tolist()) != sorted(complete.rings.ring_sizes.tolist())
    path = tmp_path / "fix.csv"
    write_corrections(path, [Correction("remove", *(spurious + 0.3)), Correction("add", *missed)])
    fixed = apply_corrections(damaged, read_corrections(path), tolerance=1.0)
    assert np.allclose(fixed.removed, [spurious]) and fixed.added.tolist() == [len(damaged) - 1]
    rebuilt = build_structure(fixed.positions, ps)
    assert len(rebuilt.interior) == 0
    assert sorted(rebuilt.rings.ring_sizes.tolist()) == sorted(complete.rings.ring_sizes.tolist())
    assert rebuilt.rings.mu2 == pytest.approx(complete.rings.mu2)


def test_corrections_errors(tmp_path):
    pts = np.array([[10.0, 10.0], [20.0, 20.0]])
    bad = tmp_path / "bad.csv"
    bad.write_text("action,x,y\nremove,50,50\n")
    with pytest.raises(InputError, match=r"bad.csv, line 2: remove: no detection within 2.00 px"):
        apply_corrections(pts, read_corrections(bad), 2.0, path=bad)
    bad.write_text("x,y\n")
    with pytest.raises(InputError, match="line 1: the first row must be the header"):
        read_corrections(bad)
    bad.write_text("action,x,y\nmove,1,2\n")
    with pytest.raises(InputError, match="line 2: action must be"):
        read_corrections(bad)
    bad.write_text("action,x,y,unit\nadd,1,two,px\n")
    with pytest.raises(InputError, match="line 2: x and y must be numbers"):
        read_corrections(bad)
    bad.write_text("action,x,y,unit\nadd,1,2,nm\n")
    with pytest.raises(InputError, match="unit must be"):
        read_corrections(bad)
    rows = [Correction("remove", 10.0, 10.0, "A", 2)]
    with pytest.raises(InputError, match="needs a given pixel size"):
        apply_corrections(pts, rows, 1.0)
    # Å: 10.25 Å at 1 Å/px is pixel 9.75, within 0.5 px of (10, 10)
    out = apply_corrections(pts, [Correction("remove", 10.25, 10.25, "A")], 0.5, PixelMap(1.0))
    assert np.allclose(out.positions, [[20.0, 20.0]])


# -- reading images -----------------------------------------------------------------------------

def test_image_formats_round_trip(tmp_path):
    image = np.random.default_rng(0).uniform(0, 200, (40, 50))
    write_image(tmp_path / "a.tif", image, pixel_size=0.3)
    loaded = read_image(tmp_path / "a.tif")
    assert np.allclose(loaded.image, image.astype(np.float32)) and loaded.pixel_size == pytest.approx(0.3)
    Image.fromarray(image.astype(np.uint8)).save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png").image, image.astype(np.uint8))
    Image.fromarray(np.stack([image.astype(np.uint8)] * 3, axis=-1)).save(tmp_path / "rgb.png")
    assert np.array_equal(read_image(tmp_path / "rgb.png").image, image.astype(np.uint8))
    with mrcfile.new(tmp_path / "a.mrc") as mrc:
        mrc.set_data(image.astype(np.float32))
        mrc.voxel_size = 0.25
    loaded = read_image(tmp_path / "a.mrc")
    assert np.allclose(loaded.image, image.astype(np.float32)) and loaded.pixel_size == pytest.approx(0.25)
    np.save(tmp_path / "a.npy", image)
    assert np.array_equal(read_image(tmp_path / "a.npy").image, image)


def test_unreadable_images_give_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="missing.tif: image file not found"):
        read_image(tmp_path / "missing.tif")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="junk.tif: cannot read the image"):
        read_image(tmp_path / "junk.tif")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(InputError, match="junk.png: cannot read the image"):
        read_image(tmp_path / "junk.png")
    (tmp_path / "a.gif").write_bytes(b"GIF89a")
    with pytest.raises(InputError, match="unknown image extension '.gif'"):
        read_image(tmp_path / "a.gif")
    np.save(tmp_path / "stack.npy", np.zeros((3, 20, 20)))
    with pytest.raises(InputError, match="stack.npy: expected one 2D grey image"):
        read_image(tmp_path / "stack.npy")
    np.save(tmp_path / "nan.npy", np.full((20, 20), np.nan))
    with pytest.raises(InputError, match="non-finite"):
        read_image(tmp_path / "nan.npy")
    (tmp_path / "a.dm3").write_bytes(b"\0" * 64)
    monkeypatch.setitem(__import__("sys").modules, "ncempy", None)
    with pytest.raises(InputError, match="a.dm3: DM3/DM4 files need ncempy"):
        read_image(tmp_path / "a.dm3")


# -- overlay and command line -------------------------------------------------------------------

def test_overlay_figure(tmp_path, samples):
    rendered = render(samples["sig_0.70"], seed=1)
    analysis = analyse_image(rendered.image, rendered.pixel_map.pixel_size)
    fig = plot_detections(rendered.image, analysis.corrected.positions, tmp_path / "o.png",
                          bonds=analysis.built.si_bonds, undercoordinated=analysis.built.undercoordinated)
    assert (tmp_path / "o.png").stat().st_size > 10_000
    assert len(fig.axes[0].collections) == 3  # bonds, detections, under-coordinated


def test_cli_render_then_image(tmp_path, capsys, generated):
    image = tmp_path / "s.tif"
    assert main(["render", str(generated.path("network", "sig_0.70")), "-o", str(image), "--seed", "4", "--json"]) == 0
    rendered = json.loads(capsys.readouterr().out)
    assert rendered["shape"] == [128, 128]
    corrections = tmp_path / "c.csv"
    corrections.write_text("action,x,y\nadd,64.0,64.0\n")
    out = tmp_path / "s.xyz"
    assert main(["image", str(image), "-o", str(out), "--roi", "10", "10", "118", "118", "--corrections",
                 str(corrections), "--frozen-radius", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pixel_size"] == pytest.approx(rendered["pixel_size"]) and result["pixel_size_source"] == "file"
    assert result["added"] == 1 and result["atoms"] == result["detected"] + 1
    assert result["bonds"] > result["atoms"] and result["rings"] > 50 and 0.2 < result["mu2"] < 1.5
    assert result["undercoordinated"] >= result["undercoordinated_interior"] >= 1  # the bogus added atom
    structure = glassfrac.read(out)
    assert structure.count("Si") == result["atoms"] - result["isolated"] and structure.bonds is not None
    assert structure.arrays["frozen"].sum() == result["frozen"] > 0
    assert (tmp_path / "s.overlay.png").is_file() and result["overlay"] == str(tmp_path / "s.overlay.png")
    assert main(["image", str(tmp_path / "none.tif"), "-o", str(out), "--overwrite", "--json"]) == 2
    assert "none.tif: image file not found" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.parametrize("detector", ["log", "trackpy"])
def test_cli_detectors_without_pixel_size(tmp_path, capsys, samples, detector):
    if detector == "trackpy":
        pytest.importorskip("trackpy")
    rendered = render(samples["sig_0.70"], seed=5)
    np.save(tmp_path / "s.npy", rendered.image)
    assert main(["image", str(tmp_path / "s.npy"), "-o", str(tmp_path / "s.data"), "--detector", detector,
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pixel_size_source"] == "estimated"
    assert result["pixel_size"] == pytest.approx(rendered.pixel_map.pixel_size, rel=0.03)
    assert result["undercoordinated_interior"] == 0


@pytest.mark.slow
def test_relaxed_image_patch_with_frozen_rim(samples):
    """A circular patch of an image, relaxed with free boundaries: the network survives (same
    interior rings), Si–O bonds stay near the Yukawa length, the outer rim is frozen."""
    pytest.importorskip("glassfrac.mechanics.relax")
    rendered = render(samples["sig_1.00"], seed=1)
    ps = rendered.pixel_map.pixel_size
    found = detect(rendered.image, ps, roi=Roi("circle", (64, 64, 25)))
    plain = build_structure(found.positions, ps)
    relaxed = build_structure(found.positions, ps, relax=True, fmax=1e-3, frozen_radius=10.0)
    assert relaxed.relax["converged"]
    s = relaxed.structure
    assert sorted(relaxed.rings.ring_sizes.tolist()) == sorted(plain.rings.ring_sizes.tolist())
    si, o = s.bonds.T  # build lists Si–O bonds as (Si, O)
    full = relaxed.coordination[si] == 3
    si_o = np.linalg.norm(s.positions[o] - s.positions[si], axis=1)[full]
    assert 1.45 < np.median(si_o) < 1.6
    assert 0 < s.arrays["frozen"].sum() < s.n_atoms
