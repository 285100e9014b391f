"""``glassfrac demo`` end to end, and its report rendered by headless Chromium (slow)."""

import json
import sys
from subprocess import run

import numpy as np
import pytest
from campaign_helpers import subprocess_env

from glassfrac.campaign.store import CampaignStore
from glassfrac.report.html import browser, ink, screenshot


@pytest.mark.slow
def test_demo_predicts_before_it_loads_and_writes_a_report_that_renders(tmp_path):
    out = tmp_path / "demo"
    proc = run([sys.executable, "-c", "import sys; from glassfrac.cli import main; sys.exit(main())",
                "demo", "-o", str(out), "--json"], env=subprocess_env(), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["samples"], result["failed"]) == (6, 0)
    assert result["directory"] == str(out.resolve()) and result["report"] == str((out / "report.html").resolve())
    assert result["cpu_seconds"] > 0
    data = np.load(out / "dataset.npz")
    assert list(data["kind"]) == ["bilayer"] * 4 + ["monolayer"] * 2 and set(data["mu2_target"]) == {0.3, 0.9}
    assert np.isfinite(data["rupture_strain"]).all() and set(data["event_test"]) == {"tension", "shear"}
    assert np.isfinite(data["first_break_probability"]).all()  # every sample was predicted
    maps = sorted(out.glob("samples/*/map.npz"))
    assert len(maps) == 2 and np.load(maps[0])["threshold"].shape == (10, 10)  # the monolayers are probed
    for row in CampaignStore.open(out).rows():  # predicted right after relaxation, before any loading
        assert list(row.data["provenance"]["timings"])[:3] == ["generate", "relax", "predict"]
    scores = result["outcome"]["scores"]
    for kind in ("bilayer", "monolayer"):  # the shipped softness beats random guessing on fresh samples
        assert scores[kind]["softness"]["first break: ROC AUC"]["mean"] > scores[kind]["random"][
            "first break: ROC AUC"]["mean"]
    assert scores["monolayer"]["probed map"]["shear events: goodness"]["n"] >= 2
    html = (out / "report.html").read_text()
    for title in ("Predicted first, then loaded", "threshold map", "shear: event locations", "prediction: first_break"):
        assert title in html
    if browser() is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium)")
    page = ink(screenshot(out / "report.html", tmp_path / "report.png"))
    # tables and coloured figures, not a blank page (0 and 0): the top 2400 px of the demo report measured
    # 0.087 / 0.0044, its coloured pixels being the curves and marks of the figures
    assert page["non_white"] > 0.05 and page["coloured"] > 0.002
