"""Faults at scale on real servers: a Dask worker process killed mid-sample, the PostgreSQL store
restarted or gone mid-campaign, and a campaign through dask-jobqueue on a single-node SLURM.

Slow and marked ``cluster``: ``python -m pytest -m cluster`` runs them (CI does, after the fast
suite: ``.ci/run``). Each needs its server programs (``apt-get install postgresql slurm-wlm
munge``) and skips without them, except under ``CI=true``, where it fails. Set
``GLASSFRAC_CLUSTER_LOGS=DIR`` to keep the servers', workers' and runner's logs.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from campaign_helpers import subprocess_env
from cluster_helpers import (
    PostgresServer,
    SlurmCluster,
    glassfrac_cmd,
    log_dir,
    missing,
    spawn,
    stop,
    wait_for,
)

from glassfrac.campaign.store import CampaignStore

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

STAGES = '["campaign_helpers:energy_labels", "cluster_helpers:hold_first"]'


def check_exactly_once(directory: Path, n: int, database=None) -> CampaignStore:
    """Samples s000000.. s{n-1}: one row and one folder each, every recorded file intact, no debris."""
    store = CampaignStore.open(directory, database)
    check = store.verify()
    assert check["problems"] == [] and check["rows"] == n
    ids = [r.sample_id for r in store.rows(include_data=False)]
    assert sorted(ids) == [f"s{i:06d}" for i in range(n)]
    assert sorted(p.name for p in store.samples_dir.iterdir()) == sorted(ids)
    assert not list(directory.rglob("*.part"))
    return store


def finish(proc, logs: Path, name: str, timeout: float):
    """Wait for a runner subprocess; keep its stdout and stderr in ``logs``; returns (rc, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, signal.SIGKILL)
        out, err = proc.communicate()
        (logs / f"{name}.out").write_bytes(out)
        (logs / f"{name}.err").write_bytes(err)
        raise AssertionError(f"{name} still running after {timeout} s; logs in {logs}") from None
    (logs / f"{name}.out").write_bytes(out)
    (logs / f"{name}.err").write_bytes(err)
    return proc.returncode, out.decode(), err.decode()


def launch(args, env) -> subprocess.Popen:
    return subprocess.Popen(glassfrac_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


# -- 1. Dask: scheduler and two workers as separate processes, one killed mid-sample ------------
def test_dask_worker_killed_mid_sample_is_redone_elsewhere(write_config, tmp_path):
    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    if dask is None:
        missing("the `dask` command is missing: pip install 'dask[distributed]'")
    logs = log_dir("dask-worker-kill", tmp_path)
    hold = tmp_path / "hold.json"
    env = {**subprocess_env(), "GLASSFRAC_TEST_HOLD": str(hold), "GLASSFRAC_TEST_HOLD_INDEX": "3",
           "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    scheduler_file = tmp_path / "scheduler.json"
    started = time.monotonic()
    scheduler = spawn([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                       "--scheduler-file", scheduler_file], logs / "scheduler.log", env)
    workers = []
    try:
        address = wait_for(lambda: scheduler_file.is_file() and json.loads(scheduler_file.read_text())["address"],
                           60, "the scheduler file")
        for i in range(2):
            workers.append(spawn([dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                                  "--name", f"worker-{i}", "--no-dashboard",
                                  "--local-directory", tmp_path / f"worker-{i}"], logs / f"worker-{i}.log", env))
        wait_for(lambda: all("Registered to:" in (logs / f"worker-{i}.log").read_text() for i in range(2)),
                 120, "two workers to register")
        path = write_config(count=3, tests=STAGES)  # 6 samples
        runner = launch(["campaign", "run", path, "--scheduler", address, "--json"], env)
        held = wait_for(lambda: hold.is_file() and json.loads(hold.read_text()), 180, "a sample to be held")
        attempt = Path(held["directory"])
        assert attempt.is_dir()  # the held attempt's temporary folder, partly written
        victim = next(w for w in workers if os.getpgid(held["pid"]) == w.pid)
        survivor = next(w for w in workers if w is not victim)
        db = tmp_path / "campaign" / "campaign.db"
        before = CampaignStore.open(tmp_path / "campaign").count() if db.is_file() else 0
        stop(victim, signal.SIGKILL)  # the worker and its nanny: as a node lost
        killed_at = time.monotonic() - started
        rc, out, err = finish(runner, logs, "runner", 240)
        assert rc == 0, err
        summary = json.loads(out)
        assert (summary["done"], summary["failed"], summary["ran"], summary["newly_failed"]) == (6, 0, 6, 0)
        store = check_exactly_once(tmp_path / "campaign", 6)
        assert not attempt.exists()  # the killed attempt's folder was removed as debris
        rows = {r.sample_id: r for r in store.rows()}
        redone = int(rows[held["sample_id"]].data["provenance"]["worker"].rsplit(":", 1)[1])
        assert redone != held["pid"] and os.getpgid(redone) == survivor.pid  # redone on the other worker
        (logs / "summary.json").write_text(json.dumps({
            "held_sample": held["sample_id"], "killed_worker_pid": held["pid"], "redone_by_pid": redone,
            "rows_before_kill": before, "rows_after": len(rows), "kill_at_s": round(killed_at, 1),
            "total_s": round(time.monotonic() - started, 1), "runner": summary}, indent=1))
    finally:
        for proc in workers + [scheduler]:
            stop(proc)


# -- 2. PostgreSQL restarted, or gone longer than the run waits ---------------------------------
@pytest.fixture
def postgres():
    # not under pytest's tmp_path: its folders are private to root, and the server runs as postgres
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="glassfrac-pg-")))
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.root, ignore_errors=True)


def test_postgres_restart_mid_campaign_waits_and_resumes(postgres, write_config, tmp_path):
    logs = log_dir("postgres-restart", tmp_path)
    path = write_config(count=4, extra=f'database = "{postgres.url}"')  # 8 samples
    started = time.monotonic()
    runner = launch(["campaign", "run", path, "--workers", "0", "--json"], subprocess_env())
    wait_for(lambda: postgres.rows("cheap") >= 2, 180, "two stored samples", interval=0.05)
    before = postgres.rows("cheap")
    postgres.stop("immediate")  # as a crash: open sessions cut, no goodbye
    time.sleep(8)
    postgres.start()
    rc, out, err = finish(runner, logs, "runner", 240)
    shutil.copy(postgres.log, logs / "postgres.log")
    assert rc == 0, err
    assert "not answering" in err and "answers again" in err  # it waited, then went on
    summary = json.loads(out)
    assert (summary["done"], summary["failed"], summary["ran"]) == (8, 0, 8)
    check_exactly_once(tmp_path / "campaign", 8, postgres.url)
    (logs / "summary.json").write_text(json.dumps({"rows_before_restart": before, "down_s": 8,
                                                   "total_s": round(time.monotonic() - started, 1),
                                                   "runner": summary}, indent=1))


def test_postgres_gone_longer_than_the_wait_stops_cleanly_and_rerun_resumes(postgres, write_config, tmp_path):
    logs = log_dir("postgres-gone", tmp_path)
    path = write_config(count=4, extra=f'database = "{postgres.url}"')
    runner = launch(["campaign", "run", path, "--workers", "0", "--store-wait", "3", "--json"], subprocess_env())
    wait_for(lambda: postgres.rows("cheap") >= 2, 180, "two stored samples", interval=0.05)
    postgres.stop("fast")
    rc, out, err = finish(runner, logs, "run-1", 120)
    assert rc == 2, err
    message = json.loads(out)["error"]
    assert f"the store {postgres.url} did not answer" in message
    assert "running the same command again resumes" in message and "Traceback" not in err
    postgres.start()
    store = CampaignStore.open(tmp_path / "campaign", postgres.url)
    stored = store.count()
    assert 2 <= stored < 8
    assert store.verify()["problems"] == []  # every stored sample is whole
    rc, out, err = finish(launch(["campaign", "run", path, "--workers", "0", "--json"], subprocess_env()),
                          logs, "run-2", 240)
    assert rc == 0, err
    summary = json.loads(out)
    assert (summary["done"], summary["ran"], summary["failed"]) == (8, 8 - stored, 0)
    check_exactly_once(tmp_path / "campaign", 8, postgres.url)


# -- 3. SLURM through dask-jobqueue ---------------------------------------------------------------
def test_slurm_campaign_through_dask_jobqueue(write_config, tmp_path):
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:
        missing("dask-jobqueue missing: pip install 'glassfrac[slurm]'")
    logs = log_dir("slurm", tmp_path)
    started = time.monotonic()
    with SlurmCluster(tmp_path / "slurm", logs) as slurm:
        env = {**subprocess_env(), **{k: v for k, v in slurm.env.items() if k == "SLURM_CONF"},
               "DASK_JOBQUEUE__SLURM__MEMORY": "1GB", "DASK_JOBQUEUE__SLURM__WALLTIME": "00:10:00",
               "DASK_JOBQUEUE__SLURM__LOG_DIRECTORY": str(logs / "jobs")}
        path = write_config(count=3, tests='["campaign_helpers:energy_labels", "cluster_helpers:record_job"]')
        # a job SLURM refuses (no such partition) is an error at once, not a wait for workers that never come
        rc, out, err = finish(launch(["campaign", "run", path, "--slurm-jobs", "2", "--json"],
                                     {**env, "DASK_JOBQUEUE__SLURM__QUEUE": "nosuchpartition"}), logs, "refused", 120)
        assert rc == 2 and "SLURM refuses the worker job" in json.loads(out)["error"], err
        assert "invalid partition" in json.loads(out)["error"].lower()
        rc, out, err = finish(launch(["campaign", "run", path, "--slurm-jobs", "2", "--json"], env),
                              logs, "runner", 240)
        assert rc == 0, err
        queue = slurm.run("squeue", "--noheader", "-o", "%i %T")
    summary = json.loads(out)
    assert (summary["done"], summary["failed"], summary["workers"]) == (6, 0, "slurm 2 jobs")
    store = check_exactly_once(tmp_path / "campaign", 6)
    submitted = {int(line.split("JobId=")[1].split()[0])
                 for line in (logs / "slurmctld.log").read_text().splitlines() if "submit_batch_job: JobId=" in line}
    jobs = {r.slurm_job_id for r in store.rows(include_data=False)}
    assert len(submitted) == 2 and jobs and jobs <= submitted  # every sample ran inside a submitted job
    assert queue.strip() == ""  # the jobs were cancelled when the run ended
    assert all((logs / "jobs" / f"dask-worker-{job}.err").is_file() for job in submitted)  # dask-jobqueue's logs
    (logs / "summary.json").write_text(json.dumps({"jobs_submitted": sorted(submitted),
                                                   "jobs_that_ran_samples": sorted(jobs),
                                                   "total_s": round(time.monotonic() - started, 1),
                                                   "runner": summary}, indent=1))
