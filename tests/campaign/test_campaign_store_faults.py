"""The store waits for a server that stops answering, never stores a sample twice, and stops with
a clear error when the server stays away; a label the store would refuse fails its sample only.

The server is simulated here (a database whose calls fail on a schedule); the real PostgreSQL
restart is in ``test_campaign_cluster.py``.
"""

import pytest

from glassfrac.campaign.config import load_config
from glassfrac.campaign.runner import run_campaign
from glassfrac.campaign.store import CampaignStore, StoreUnavailable, transient_errors
from glassfrac.core.errors import GlassfracError


class Outage(Exception):
    """Stands for the driver's "server closed the connection" error."""


class Flaky:
    """An ASE database whose calls named in ``failures`` raise :class:`Outage` that many times;
    ``lose_answer``: the first ``write`` goes through and then raises (the reply was lost)."""

    def __init__(self, db, failures: dict, lose_answer: bool = False):
        self.db, self.failures, self.lose_answer = db, dict(failures), lose_answer
        self.calls = []

    def __getattr__(self, name):
        method = getattr(self.db, name)

        def call(*args, **kwargs):
            self.calls.append(name)
            if self.failures.get(name, 0) > 0:
                self.failures[name] -= 1
                raise Outage(f"server closed the connection unexpectedly ({name})")
            out = method(*args, **kwargs)
            if name == "write" and self.lose_answer:
                self.lose_answer = False
                raise Outage("server closed the connection unexpectedly (after the commit)")
            return out
        return call


def bad_label(ctx) -> None:
    """Test stage: a label that reads as a number but is a string (ASE refuses it)."""
    ctx.keys["code"] = "7"


def _run_with(store_factory, path, monkeypatch, **kwargs):
    """Run ``path`` serially with the runner's store replaced by ``store_factory(config, wait)``."""
    monkeypatch.setattr("glassfrac.campaign.runner.open_store", store_factory)
    return run_campaign(load_config(path), workers=0, show_progress=False, **kwargs)


def test_writes_wait_for_the_server_and_resume(write_config, tmp_path, monkeypatch, caplog):
    path = write_config(count=1)  # 2 samples
    made = []

    def factory(config, wait=None):
        store = CampaignStore(config.directory, config.name, config.database, wait=30)
        store._transient = (Outage,)
        store.db = Flaky(store.db, {"write": 3, "count": 2})
        made.append(store)
        return store

    out = _run_with(factory, path, monkeypatch)
    assert (out["done"], out["failed"], out["ran"]) == (2, 0, 2)
    assert made[0].db.calls.count("write") == 5  # 3 refused, then one per sample
    assert "not answering" in caplog.text and "answers again" in caplog.text
    store = CampaignStore.open(tmp_path / "campaign")
    assert sorted(r.sample_id for r in store.rows(include_data=False)) == ["s000000", "s000001"]
    assert store.verify()["problems"] == []


def test_a_server_away_at_start_up_is_waited_for_too(write_config, tmp_path, monkeypatch, caplog):
    path = write_config(count=1)  # 2 samples
    run_campaign(load_config(path), workers=0, show_progress=False)
    (tmp_path / "campaign" / "samples" / ".tmp-killed").mkdir()  # debris: clean() reads the rows
    made = []

    def factory(config, wait=None):
        store = CampaignStore(config.directory, config.name, config.database, wait=30)
        store._transient = (Outage,)
        store.db = Flaky(store.db, {"select": 2})  # the first reads of the run: clean()'s
        made.append(store)
        return store

    out = _run_with(factory, path, monkeypatch)
    assert (out["done"], out["ran"], out["cleaned"]["temporary"]) == (2, 0, 1)
    assert made[0].db.calls[:3] == ["select"] * 3  # refused twice, then answered
    assert "not answering while reading the sample ids" in caplog.text and "answers again" in caplog.text


def test_a_write_whose_answer_was_lost_is_not_repeated(write_config, tmp_path, monkeypatch):
    path = write_config(count=1)

    def factory(config, wait=None):
        store = CampaignStore(config.directory, config.name, config.database, wait=30)
        store._transient = (Outage,)
        store.db = Flaky(store.db, {}, lose_answer=True)
        return store

    out = _run_with(factory, path, monkeypatch)
    assert out["done"] == 2
    check = CampaignStore.open(tmp_path / "campaign").verify()
    assert (check["rows"], check["problems"]) == (2, [])  # the first sample once, though its write was retried


def test_a_server_that_stays_away_stops_the_run_cleanly_and_a_rerun_resumes(write_config, tmp_path, monkeypatch):
    path = write_config(count=2)  # 4 samples

    def factory(config, wait=None):
        store = CampaignStore(config.directory, config.name, config.database, wait=wait)
        store._transient = (Outage,)
        store.db = Flaky(store.db, {"write": 10**6})
        return store

    with pytest.raises(StoreUnavailable, match=r"did not answer for [0-9]+ s while storing sample s000000 "
                                               r"\(server closed.*running the same command again resumes"):
        _run_with(factory, path, monkeypatch, store_wait=0.6)
    store = CampaignStore.open(tmp_path / "campaign")
    assert store.count() == 0 and (store.samples_dir / "s000000").is_dir()  # a folder without a row: debris
    monkeypatch.undo()
    out = run_campaign(load_config(path), workers=0, show_progress=False)
    assert (out["done"], out["ran"], out["cleaned"]["orphan_samples"]) == (4, 4, 1)
    assert CampaignStore.open(tmp_path / "campaign").verify()["problems"] == []


def test_store_wait_and_slurm_options_are_checked_before_any_work(write_config, tmp_path):
    path = write_config(count=1)
    for kwargs, message in (({"store_wait": -1.0}, "--store-wait must be"),
                            ({"store_wait": float("nan")}, "--store-wait must be"),
                            ({"store_wait": "5"}, "--store-wait must be"),
                            ({"slurm_jobs": 0}, "--slurm-jobs must be at least 1"),
                            ({"slurm_jobs": 1.5}, "--slurm-jobs must be at least 1"),
                            ({"slurm_jobs": 2, "scheduler": "tcp://127.0.0.1:1"}, "exclude each other")):
        with pytest.raises(ValueError, match=message):
            run_campaign(load_config(path), show_progress=False, **kwargs)
    assert not (tmp_path / "campaign").exists()


def test_an_unreachable_scheduler_is_a_clear_error(write_config, tmp_path, monkeypatch):
    monkeypatch.setattr("glassfrac.campaign.runner.SCHEDULER_TIMEOUT", 1.0)
    path = write_config(count=1)
    with pytest.raises(GlassfracError, match="--scheduler tcp://127.0.0.1:9: cannot reach"):
        run_campaign(load_config(path), scheduler="tcp://127.0.0.1:9", show_progress=False)


def test_slurm_jobs_without_sbatch_is_a_clear_error(write_config, tmp_path, monkeypatch):
    pytest.importorskip("dask_jobqueue")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    path = write_config(count=1)
    with pytest.raises(GlassfracError, match="--slurm-jobs: SLURM's sbatch is not on PATH"):
        run_campaign(load_config(path), slurm_jobs=2, show_progress=False)


def test_a_label_the_store_refuses_fails_its_sample_not_the_run(write_config, tmp_path):
    path = write_config(count=1, tests='["campaign_helpers:energy_labels", "test_campaign_store_faults:bad_label"]')
    out = run_campaign(load_config(path), workers=0, show_progress=False)
    assert (out["done"], out["failed"], out["ran"]) == (0, 2, 2)
    failure = CampaignStore.open(tmp_path / "campaign").failures()["s000000"]
    assert failure["stage"] == "store" and "the store refuses these labels: Value 7 is put in as string" in \
        failure["error"]


def test_postgres_errors_that_mean_the_server_is_away():
    psycopg2 = pytest.importorskip("psycopg2")
    assert transient_errors("postgresql://u@h/db") == (psycopg2.OperationalError, psycopg2.InterfaceError)
    assert transient_errors("x/campaign.db") == ()
