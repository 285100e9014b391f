"""The runner: serial and Dask runs, failures, resume after SIGKILL, debris, seeded results."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from campaign_helpers import same, subprocess_env

from glassfrac.campaign.config import load_config
from glassfrac.campaign.runner import campaign_status, report_campaign, run_campaign
from glassfrac.campaign.store import CampaignStore
from glassfrac.core.errors import GlassfracError, InputError


def run(path, **kwargs):
    kwargs.setdefault("workers", 0)
    return run_campaign(load_config(path), show_progress=False, **kwargs)


def assert_complete(directory, n):
    """Exactly samples 0..n-1, one row each, every row and file readable and unchanged."""
    store = CampaignStore.open(directory)
    check = store.verify()
    assert check["problems"] == []
    assert check["rows"] == n
    assert sorted(r.sample_id for r in store.rows(include_data=False)) == [f"s{i:06d}" for i in range(n)]
    assert sorted(p.name for p in store.samples_dir.iterdir()) == [f"s{i:06d}" for i in range(n)]
    assert not list(directory.rglob("*.part"))
    for row in store.rows():
        assert np.asarray(row.data["arrays"]["potential_energy"]).shape == (row.natoms,)
        energy = np.load(store.sample_dir(row.sample_id) / row.data["energy_file"])
        assert np.array_equal(energy, row.data["arrays"]["potential_energy"])
    return store


def test_serial_run_then_nothing_left_to_do(write_config, tmp_path):
    path = write_config(count=2)
    first = run(path)
    assert (first["requested"], first["done"], first["failed"], first["pending"], first["ran"]) == (4, 4, 0, 0, 4)
    store = assert_complete(tmp_path / "campaign", 4)
    row = store.rows()[1]
    assert row.mu2_target == 0.3 and row.kind == "monolayer" and row.dim == 2 and row.n_rings == 16
    prov = row.data["provenance"]
    assert prov["seeds"] == {"campaign": 11, "index": 1, "sample": row.seed}
    assert set(prov["timings"]) == {"generate", "relax", "campaign_helpers:energy_labels"}
    assert prov["versions"]["numpy"] == np.__version__ and prov["config"]["name"] == "cheap"
    again = run(path)
    assert again["ran"] == 0 and again["done"] == 4


def test_failures_are_recorded_skipped_and_retried(write_config, tmp_path):
    marker = tmp_path / "fail-odd"
    marker.touch()
    path = write_config(count=2, options=f'{{fail_marker = "{marker}"}}')
    out = run(path)
    assert (out["done"], out["failed"], out["pending"]) == (2, 2, 0)
    status = campaign_status(store=CampaignStore.open(tmp_path / "campaign"))
    assert [f["sample_id"] for f in status["failures"]] == ["s000001", "s000003"]
    assert status["failures"][0]["stage"] == "generate" and "marker" in status["failures"][0]["error"]
    record = json.loads((tmp_path / "campaign/failed/s000001.json").read_text())
    assert "Traceback" in record["traceback"] and "RuntimeError" in record["traceback"]
    report = report_campaign(CampaignStore.open(tmp_path / "campaign")).read_text()
    assert "Failed samples" in report and "RuntimeError: marker" in report
    marker.unlink()
    assert run(path)["ran"] == 0  # failed samples wait for --retry-failed
    retried = run(path, retry_failed=True)
    assert (retried["ran"], retried["done"], retried["failed"]) == (2, 4, 0)
    assert not list((tmp_path / "campaign/failed").glob("*.json"))
    assert_complete(tmp_path / "campaign", 4)


def test_other_definition_and_concurrent_run_are_refused(write_config, tmp_path):
    run(write_config(count=1))
    with pytest.raises(InputError, match="differs in: samples"):  # count per value of two: renumbers sample 1
        run(write_config(count=2))
    with pytest.raises(InputError, match="differs in: campaign|differs in: name"):
        run(write_config(count=1, name="renamed"))
    store = CampaignStore.open(tmp_path / "campaign")
    with store.lock(), pytest.raises(GlassfracError, match="another process"):
        run(write_config(count=1))


def test_debris_of_killed_runs_is_removed(write_config, tmp_path):
    path = write_config(count=1)
    run(path)
    samples = tmp_path / "campaign/samples"
    (samples / ".tmp-dead0000-s000001").mkdir()
    (samples / ".tmp-dead0000-s000001/generated.xyz").write_text("half")
    store = CampaignStore.open(tmp_path / "campaign")  # s000001: a folder whose row was never inserted
    store.db.delete([row.id for row in store.db.select(campaign=store.name, sample_id="s000001")])
    (samples / "s000007").mkdir()  # not a sample of this campaign: not its debris, stays
    (samples / "s000000/.curve.csv.abc.part").write_text("half")
    (tmp_path / "campaign/campaign.db.lock").touch()  # ASE's lock file of a writer killed mid-write
    out = run(path)
    assert out["cleaned"] == {"temporary": 1, "partial_files": 1, "orphan_samples": 1}
    assert (samples / "s000007").is_dir()
    shutil.rmtree(samples / "s000007")
    assert_complete(tmp_path / "campaign", 2)


def _launch(path, workers):
    cmd = [sys.executable, "-c", "import sys; from glassfrac.cli import main; sys.exit(main())",
           "campaign", "run", str(path), "--workers", str(workers), "--json"]
    return subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _rows(db):
    import sqlite3

    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("select count(*) from systems").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sigkill_at_any_moment_then_resume_finishes_exactly_once(write_config, tmp_path):
    path = write_config(count=3)  # 6 samples
    db = tmp_path / "campaign/campaign.db"
    for workers, kill_after in ((2, 2), (0, 4)):  # a LocalCluster run, then a serial one, killed by SIGKILL
        proc = _launch(path, workers)
        deadline = time.monotonic() + 120
        while _rows(db) < kill_after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its worker processes
        proc.wait()
        assert kill_after <= _rows(db) < 6
    missing = 6 - _rows(db)
    proc = _launch(path, workers=0)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert (summary["done"], summary["failed"], summary["pending"], summary["ran"]) == (6, 0, 0, missing)
    assert_complete(tmp_path / "campaign", 6)


def test_one_worker_and_two_workers_store_identical_labels(write_config, tmp_path):
    results = []
    for workers in (1, 2):
        path = write_config(directory=tmp_path / f"w{workers}", count=2)
        assert run(path, workers=workers)["done"] == 4
        store = assert_complete(tmp_path / f"w{workers}", 4)
        assert len({r.data["provenance"]["worker"] for r in store.rows()}) == workers
        results.append(store.rows())
    for a, b in zip(*results, strict=True):
        assert {k: v for k, v in a.key_value_pairs.items() if k != "seconds"} == \
               {k: v for k, v in b.key_value_pairs.items() if k != "seconds"}
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell, b.cell)
        for key in ("arrays", "rings", "energy", "energy_file", "figures"):
            assert same(a.data[key], b.data[key]), key
        assert same(*[{k: v for k, v in r.data["relax"].items() if k != "seconds"} for r in (a, b)])
        assert same(*[[f for f in r.data["files"] if not f["path"].endswith(".png")] for r in (a, b)])
        assert a.data["provenance"]["seeds"] == b.data["provenance"]["seeds"]


def test_unknown_custom_stage_fails_before_any_sample(write_config, tmp_path):
    with pytest.raises(InputError, match="cannot load 'campaign_helpers:nothing'"):
        run(write_config(tests='["campaign_helpers:nothing"]'))
    assert not (tmp_path / "campaign").exists()


def test_a_raised_count_of_the_last_group_extends_the_campaign(write_config, tmp_path):
    first = run(write_config(count=2, mu2=(0.3,)))
    before = {r.sample_id: r.data["provenance"]["timings"] for r in CampaignStore.open(tmp_path / "campaign").rows()}
    grown = run(write_config(count=3, mu2=(0.3,)))  # one disorder value: sample 2 comes after samples 0 and 1
    assert (first["done"], grown["ran"], grown["done"]) == (2, 1, 3)
    store = assert_complete(tmp_path / "campaign", 3)
    after = {r.sample_id: r.data["provenance"]["timings"] for r in store.rows()}
    assert all(after[k] == v for k, v in before.items())  # the first two were not run again
    assert "count = 3" in (tmp_path / "campaign/config.toml").read_text()
    with pytest.raises(InputError, match="differs in: samples"):  # shrinking is not growing
        run(write_config(count=2, mu2=(0.3,)))


def test_an_index_range_runs_only_its_samples_and_they_equal_a_full_run(write_config, tmp_path):
    path = write_config(count=4, mu2=(0.3,))
    part = run(path, start=2, stop=4)
    assert (part["ran"], part["done"], part["pending"]) == (2, 2, 2)
    store = CampaignStore.open(tmp_path / "campaign")
    ranged = {r.sample_id: r.data["arrays"]["potential_energy"] for r in store.rows()}
    assert sorted(ranged) == ["s000002", "s000003"]
    shutil.rmtree(tmp_path / "campaign")
    run(path)  # the same samples from a full run: sample i depends only on the seed and i
    full = {r.sample_id: r.data["arrays"]["potential_energy"] for r in CampaignStore.open(tmp_path / "campaign").rows()}
    assert all(np.array_equal(full[k], v) for k, v in ranged.items())
    with pytest.raises(InputError, match="--stop"):
        run(path, start=3, stop=3)


def test_a_cell_too_small_for_the_probe_windows_fails_after_relaxation_before_the_tests(write_config, tmp_path):
    path = write_config(count=1, mu2=(0.3,), tests='["tension", "probe"]')
    path.write_text(path.read_text().replace("[output]", "[tests.probe]\ngrid = 2\nr_free = 8.0\n\n[output]"))
    summary = run(path)
    assert (summary["done"], summary["failed"]) == (0, 1)
    failure = next(iter(CampaignStore.open(tmp_path / "campaign").failures().values()))
    # the 21 x 18 Å cell holds no window of 8 Å + the 10 Å frozen shell: found at the relax stage, no tension run
    assert failure["stage"] == "relax" and "too small for windows" in failure["error"]
