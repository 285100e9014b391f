"""The real stages at the smallest size, and what a campaign hands on: rows, dataset, report, CLI."""

import json
import re

import numpy as np
import pytest
from campaign_helpers import cheap_config

from glassfrac.campaign.config import load_config
from glassfrac.campaign.export import export_dataset
from glassfrac.campaign.runner import report_campaign, run_campaign
from glassfrac.campaign.store import CampaignStore, row_structure
from glassfrac.cli import main
from glassfrac.report.html import browser, ink, screenshot
from glassfrac.structure import Box

LOADING = """
[tests.tension]
max_strain = 0.3
step = 0.03
precision = 0.005

[tests.shear]
max_strain = 0.06
step = 0.006
precision = 0.001
max_events = 2

[tests.probe]
grid = 2
r_free = 3.0
shell = 5.0
"""
CORNER = "{origin = [-6.0, 2.5]}"
"""Generator option of the loaded samples: their box's corner, Å."""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Two perturbed 4 x 4 honeycomb monolayers through relax, tension, shear and a 2 x 2 probe map
    (small windows: the cell is 21 x 18 Å) (serial), in a box whose corner is not at the origin (as a LAMMPS
    file's or a generated bilayer's is not)."""
    root = tmp_path_factory.mktemp("loaded")
    path = root / "loaded.toml"
    text = cheap_config(root / "campaign", name="loaded", count=1, tests='["tension", "shear", "probe"]',
                        options=CORNER)
    path.write_text(text.replace("[output]", LOADING + "\n[output]"))
    summary = run_campaign(load_config(path), workers=0, show_progress=False)
    assert (summary["done"], summary["failed"]) == (2, 0), CampaignStore.open(root / "campaign").failures()
    return CampaignStore.open(root / "campaign")


def test_tension_and_shear_labels_are_stored(loaded):
    for row in loaded.rows():
        s = row_structure(row)
        first = np.asarray(row.data["arrays"]["first_break"])
        assert first.dtype == np.int8 and sorted(s.species[first == 1]) == ["O", "Si"]
        assert 0 < row.rupture_strain <= 0.3 and row.fractured
        assert row.data["tension"]["labels"]["rupture_strain"] == row.rupture_strain
        assert [row.rupture_x, row.rupture_y] == row.data["tension"]["labels"]["rupture_location"][:2]
        assert np.asarray(row.data["arrays"]["crack"]).sum() > 0
        curve = row.data["tension"]["curve"]
        assert len(curve["strain"]) == len(curve["stress"]) > 5 and row.tension_peak_stress == max(curve["stress"])
        assert row.data["tension"]["events"][0]["strain"] == row.rupture_strain
        assert row.shear_events == len(row.data["shear"]["events"]) <= 2
        files = {f["path"] for f in row.data["files"]}
        assert {"generated.xyz", "rings.png", "tension/curve.csv", "tension/labels.json", "tension/reference.xyz",
                "tension/stress_strain.png", "shear/curve.csv"} <= files
        assert {f["path"] for f in row.data["figures"]} <= files
        assert set(row.data["provenance"]["timings"]) == {"generate", "relax", "tension", "shear", "probe"}
    assert loaded.verify()["problems"] == []


def test_a_campaign_without_figures_stores_the_same_labels_and_draws_nothing(loaded, tmp_path):
    """``[output] figures = false`` (the dataset configs): no figure file, the same keys and labels."""
    path = tmp_path / "plain.toml"
    text = cheap_config(tmp_path / "campaign", name="loaded", count=1, tests='["tension", "shear", "probe"]',
                        options=CORNER)
    path.write_text(text.replace("[output]", LOADING + "\n[output]\nfigures = false"))
    summary = run_campaign(load_config(path), workers=0, show_progress=False)
    assert (summary["done"], summary["failed"]) == (2, 0)
    plain = {row.sample_id: row for row in CampaignStore.open(tmp_path / "campaign").rows()}
    for row in loaded.rows():
        other = plain[row.sample_id]
        assert other.data["figures"] == [] and not list((tmp_path / "campaign").rglob("*.png"))
        assert (other.rupture_strain, other.shear_events, other.probe_threshold_mean) == \
            (row.rupture_strain, row.shear_events, row.probe_threshold_mean)
        assert other.data["tension"]["labels"] == row.data["tension"]["labels"]


def test_probe_maps_form_a_listi_dataset(loaded):
    from glassfrac.learn.windows import load_probed

    samples, split = load_probed(loaded.samples_dir)
    rows = loaded.rows()
    assert [s.name for s in samples] == [r.sample_id for r in rows] and split is None
    for sample, row in zip(samples, rows, strict=True):
        probe = row.data["probe"]
        assert sample.threshold.shape == (4,) and np.all(np.isfinite(sample.threshold))
        assert np.isclose(row.probe_threshold_mean, sample.threshold.mean())
        assert probe["windows"] == 4 and probe["settings"]["r_free"] == 3.0 and probe["unit"] == "N/m"
        assert np.allclose(sample.structure.positions, row_structure(row).positions)
        assert len(sample.events) == row.shear_events == len(probe.get("goodness", []))
        assert all(-1 <= c <= 1 for c in probe.get("goodness", []))
        assert {"probe: threshold map Δτ (red: weak) with the shear events",
                "tension: crack atoms and first bond break"} <= {f["title"] for f in row.data["figures"]}


def test_dataset_npz_and_folder(loaded, tmp_path):
    rows = loaded.rows()
    out = export_dataset(loaded, tmp_path / "d.npz")
    assert (out["samples"], out["form"]) == (2, "npz")
    d = np.load(tmp_path / "d.npz")
    assert str(d["format"]) == "glassfrac-dataset-2" and json.loads(str(d["metadata"]))["campaign"] == "loaded"
    start = d["atom_start"]
    assert start[-1] == len(d["positions"]) == len(d["species"]) == len(d["first_break"])
    assert list(d["sample_id"]) == [r.sample_id for r in rows]
    for s, row in enumerate(rows):
        atoms = slice(start[s], start[s + 1])
        assert np.array_equal(d["positions"][atoms], row.positions)
        assert np.array_equal(d["first_break"][atoms], row.data["arrays"]["first_break"])
        assert d["rupture_strain"][s] == row.rupture_strain and d["mu2_target"][s] == row.mu2_target
        # every location in the frame of the exported positions: the first broken bond's midpoint, the atom
        # that moved most in each shear event, window centres inside the cell
        box = Box(d["cell"][s][:2, :2], True)
        xy = d["positions"][atoms][:, :2]
        i, j = np.flatnonzero(d["first_break"][atoms] == 1)
        midpoint = xy[i] + 0.5 * box.minimum_image((xy[j] - xy[i])[None])[0]
        assert np.allclose(box.minimum_image((d["rupture_location"][s, :2] - midpoint)[None]), 0, atol=1e-9)
        mine = d["event_sample"] == s
        assert mine.sum() > 0
        for location in d["event_location"][mine, :2]:  # each the position of the atom that moved most
            assert np.min(np.linalg.norm(box.minimum_image(xy - location), axis=1)) < 1e-9
        centres = d["window_centre"][d["window_sample"] == s]
        assert len(centres) == 4 and np.all((centres >= 0) & (centres < np.diag(d["cell"][s])[:2]))
        assert d["key_tension_peak_stress"][s] == row.tension_peak_stress
        ev = d["event_sample"] == s
        tension = ev & (d["event_test"] == "tension")
        assert list(d["event_strain"][tension]) == [e["strain"] for e in row.data["tension"]["events"]]
        assert list(d["event_rank"][tension]) == list(range(1, tension.sum() + 1))
        assert (d["curve_sample"] == s).sum() == len(row.data["tension"]["curve"]["strain"]) + len(
            row.data["shear"]["curve"]["strain"])
    folder = export_dataset(loaded, tmp_path / "d")
    assert folder["form"] == "folder"
    manifest = json.loads((tmp_path / "d/manifest.json").read_text())
    assert [m["sample_id"] for m in manifest["samples"]] == [r.sample_id for r in rows]
    one = np.load(tmp_path / "d" / manifest["samples"][1]["file"])
    assert np.array_equal(one["positions"], d["positions"][start[1]:start[2]])
    assert np.array_equal(one["event_strain"], d["event_strain"][d["event_sample"] == 1])
    export_dataset(loaded, tmp_path / "d")  # replaces the folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "d.npz"]


def test_report_links_only_existing_files(loaded):
    path = report_campaign(loaded)
    text = path.read_text()
    for row in loaded.rows():
        assert f"id='{row.sample_id}'" in text
    sources = re.findall(r"src='([^']+)'", text)
    assert any(s.startswith("report/") for s in sources) and any("tension/stress_strain.png" in s for s in sources)
    for src in sources:
        assert (path.parent / src).is_file(), src


def test_report_renders_in_headless_chromium(loaded, tmp_path):
    if browser() is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium)")
    page = ink(screenshot(report_campaign(loaded), tmp_path / "report.png"))
    assert (page["width"], page["height"]) == (1280, 2400)
    assert page["non_white"] > 0.05 and page["coloured"] > 0.003  # text and tables, and coloured figures
    (tmp_path / "blank.html").write_text("<!DOCTYPE html><html><body><p>&nbsp;</p></body></html>")
    blank = ink(screenshot(tmp_path / "blank.html", tmp_path / "blank.png"))
    assert blank["non_white"] < 1e-3 and blank["coloured"] == 0.0  # the measure tells a blank page apart


def test_cli_status_export_and_report(loaded, tmp_path, capsys):
    assert main(["campaign", "status", str(loaded.directory), "--check", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["done"], status["failed"], status["pending"], status["check"]["problems"]) == (2, 0, 0, [])
    assert main(["dataset", "export", str(loaded.directory), "-o", str(tmp_path / "x.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 2
    assert main(["report", str(loaded.directory), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report"].endswith("report.html")
    assert main(["campaign", "status", str(tmp_path), "--json"]) == 2
    assert "not a campaign directory" in json.loads(capsys.readouterr().out)["error"]


def test_builtin_generator_monolayer_and_bilayer_relaxed(tmp_path):
    path = tmp_path / "builtin.toml"
    path.write_text(f"""
[campaign]
name = "builtin"
seed = 4

[[samples]]
kind = "monolayer"
rings = [4, 4]
mu2 = [0.5]
count = 1

[[samples]]
kind = "bilayer"
rings = [4, 4]
distribution = "lognormal"
sigma_factor = [1.0]
count = 1

[relax]
method = "lbfgs"
fmax = 1e-4

[tests]
run = []

[output]
directory = "{tmp_path / 'campaign'}"
""")
    summary = run_campaign(load_config(path), workers=0, show_progress=False)
    store = CampaignStore.open(tmp_path / "campaign")
    assert (summary["done"], summary["failed"]) == (2, 0), store.failures()
    mono, bi = store.rows()
    assert (mono.kind, mono.dim, mono.natoms, mono.n_rings) == ("monolayer", 2, 80, 16)
    assert (bi.kind, bi.dim, bi.natoms, bi.n_rings, bi.sigma_factor) == ("bilayer", 3, 192, 16, 1.0)
    for row in (mono, bi):
        s = row_structure(row)
        assert s.bonds is not None and np.all(s.coordination()[s.species == "O"] == 2)
        assert np.allclose(s.box.cell, np.diag(np.diag(s.box.cell)))  # box relaxed without tilt
        assert row.data["relax"]["converged"] and set(row.data["provenance"]["timings"]) == {"generate", "relax"}
    assert store.verify()["problems"] == []
