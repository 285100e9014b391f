"""``glassfrac demo`` end to end, and its report rendered by headless Chromium (slow)."""

import json
import sys
from subprocess import run

import numpy as np
import pytest
from campaign_helpers import subprocess_env

from glassfrac.report.html import browser, ink, screenshot


@pytest.mark.slow
def test_demo_writes_campaign_dataset_predictor_and_a_report_that_renders(tmp_path):
    out = tmp_path / "demo"
    proc = run([sys.executable, "-c", "import sys; from glassfrac.cli import main; sys.exit(main())",
                "demo", "-o", str(out), "--json"], env=subprocess_env(), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["samples"], result["failed"]) == (4, 0)
    assert result["directory"] == str(out.resolve()) and result["report"] == str((out / "report.html").resolve())
    assert result["cpu_seconds"] > 0
    data = np.load(out / "dataset.npz")
    assert len(data["sample_id"]) == 4 and set(data["mu2_target"]) == {0.3, 1.0}
    assert np.isfinite(data["rupture_strain"]).all() and set(data["event_test"]) >= {"tension"}
    maps = sorted(out.glob("samples/*/map.npz"))
    assert len(maps) == 2 and np.load(maps[0])["threshold"].shape == (8, 8)  # one probed sample per level
    predictor = result["predictor"]
    assert predictor["samples"] == 4 and predictor["positives"] >= 8 and 0 <= predictor["roc_auc"] <= 1
    assert (out / "predictor/svm_first_break.safetensors").is_file()
    html = (out / "report.html").read_text()
    for title in ("Predictor", "threshold map", "crack atoms", "shear: event locations", "structure and rings"):
        assert title in html
    if browser() is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium)")
    page = ink(screenshot(out / "report.html", tmp_path / "report.png"))
    assert page["non_white"] > 0.05 and page["coloured"] > 0.005  # tables and coloured figures, not a blank page
