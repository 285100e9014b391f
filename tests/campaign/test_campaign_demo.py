"""``glassfrac demo`` end to end, and its report rendered by headless Chromium (slow)."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from campaign_helpers import subprocess_env


def screenshot(page, png, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium)")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1280,2400",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    from matplotlib.image import imread

    return imread(png)[..., :3]


@pytest.mark.slow
def test_demo_writes_campaign_dataset_and_a_report_that_renders(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-c", "import sys; from glassfrac.cli import main; sys.exit(main())",
                           "demo", "-o", str(out), "--json"], env=subprocess_env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["samples"], result["failed"]) == (4, 0)
    assert result["directory"] == str(out.resolve()) and result["report"] == str((out / "report.html").resolve())
    data = np.load(out / "dataset.npz")
    assert len(data["sample_id"]) == 4 and set(data["mu2_target"]) == {0.3, 1.0}
    assert np.isfinite(data["rupture_strain"]).all() and set(data["event_test"]) >= {"tension"}
    image = screenshot(out / "report.html", tmp_path / "report.png", tmp_path)
    ink = np.mean(np.any(image < 0.95, axis=-1))
    assert image.shape[:2] == (2400, 1280) and ink > 0.05  # tables and figures, not a blank page
    assert len(np.unique((image * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50  # figures, not just text
