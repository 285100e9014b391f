"""Run a campaign: the pending samples as tasks, serially or on a Dask cluster; resumable.

- ``workers=0``: serial, in this process (debugging).
- ``workers=N`` (default: as many as fit, N × threads_per_worker ≤ cores): a
  ``distributed.LocalCluster`` of N worker processes with ``threads_per_worker`` threads each
  (1 by default).
- ``scheduler="tcp://host:port"``: attach to a running Dask scheduler (``dask scheduler`` and
  ``dask worker`` processes started by hand or by a batch system); its workers must see the
  campaign directory (shared file system) and have glassfrac installed.
- ``slurm_jobs=N``: start a dask-jobqueue ``SLURMCluster`` and submit N SLURM jobs, each one
  Dask worker with ``threads_per_worker`` threads (``cores``) and 4 GB per thread (``memory``)
  unless Dask's config says otherwise; partition, account, walltime and any other job
  setting come from Dask's config (``~/.config/dask/jobqueue.yaml``, key ``jobqueue.slurm``, or
  ``DASK_JOBQUEUE__SLURM__*`` variables). One job script is checked first with ``sbatch
  --test-only``, so a job SLURM refuses is an error, not an endless wait. Jobs that end
  (walltime) are not replaced: a rerun resumes.

A worker that dies while it holds a sample (killed, out of memory, its node lost) loses only
that attempt: the scheduler gives the sample to another worker (after 3 such deaths of the
same sample, Dask's ``distributed.scheduler.allowed-failures``, it is recorded as failed in
stage ``worker``). Each attempt writes its own temporary folder, so a worker that was given up
for lost but still runs cannot mix its files into the attempt that is stored.

The runner keeps at most as many samples in flight as the cluster has worker threads (checked
again whenever one finishes, and every few seconds), so a waiting sample goes to the first
worker that is free. Only this process writes to the store: workers compute a sample into a
temporary folder and return the row; the runner moves the folder into place and inserts the row. On start it takes
the campaign lock, checks the config against the directory's definition, removes debris of
killed runs and queues every sample that has no row (and no failure record, unless
``retry_failed``). Killing the run at any moment, ``kill -9`` included, loses at most the
samples in flight; the next run finishes the rest.

A script that starts a LocalCluster must guard its entry point (``if __name__ ==
"__main__":``), because worker processes are spawned and import the main module.
"""

import collections
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from glassfrac.campaign.config import CampaignConfig
from glassfrac.campaign.pipeline import Plan, SampleFailure, load_callable, run_sample
from glassfrac.campaign.samples import expand
from glassfrac.campaign.store import STORE_WAIT, CampaignStore, public_url
from glassfrac.core.errors import GlassfracError, InputError
from glassfrac.core.outputs import OutputFolder
from glassfrac.core.progress import progress
from glassfrac.core.provenance import collect
from glassfrac.report.html import write_report

POLL_SECONDS = 5.0
"""How often the Dask runner looks for new workers while no sample finishes, s."""

SCHEDULER_TIMEOUT = 30.0
"""How long to try to reach a Dask scheduler given by address, s."""

SLURM_MEMORY_PER_THREAD = 4
"""Memory of a SLURM job per worker thread unless Dask's config sets ``jobqueue.slurm.memory``, GB."""

log = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "GLASSFRAC_THREADS")


def available_cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_workers(threads_per_worker: int = 1, pending: int | None = None) -> int:
    """Workers for a LocalCluster: workers × threads ≤ cores, at least 1, at most ``pending``."""
    n = max(1, available_cores() // max(1, threads_per_worker))
    return max(1, min(n, pending)) if pending is not None else n


def open_store(config: CampaignConfig, wait: float | None = None) -> CampaignStore:
    """The store of ``config`` (its directory and database); ``wait``: s to wait for a silent server."""
    return CampaignStore(config.directory, config.name, config.database,
                         STORE_WAIT if wait is None else wait)


def campaign_status(config: CampaignConfig | None = None, store: CampaignStore | None = None) -> dict:
    """Counts of requested, done, failed and pending samples (no changes made)."""
    store = store or open_store(config)
    definition = store.definition()
    requested = sum(_group_size(g) for g in definition["samples"])
    done = store.done_ids()
    failed = {k: v for k, v in store.failures().items() if k not in done}
    return {
        "campaign": store.name, "directory": str(store.directory), "database": public_url(store.url),
        "requested": requested, "done": len(done), "failed": len(failed),
        "pending": requested - len(done) - len(failed),
        "failures": [{"sample_id": k, "stage": v["stage"], "error": v["error"]} for k, v in failed.items()],
    }


def report_campaign(store: CampaignStore, max_samples: int = 100):
    """Write the HTML report of the campaign in ``store``; returns the path of ``report.html``."""
    return write_report(store, campaign_status(store=store), max_samples=max_samples)


def campaign_folder(directory, overwrite: bool = False, command: str = "campaign run") -> OutputFolder:
    """The campaign directory under the output rule (:mod:`glassfrac.core.outputs`), checked before any work:
    missing, empty, marked or a campaign's (``campaign.json``: made before markers); any other folder
    raises :class:`~glassfrac.core.errors.InputError` unless ``overwrite``."""
    return OutputFolder(directory, command, overwrite, recognise=("campaign.json",))


def _group_size(group: dict) -> int:
    values = group.get("mu2") or group.get("sigma_factor")
    return group["count"] * (len(values) if values else 1)


def run_campaign(config: CampaignConfig, workers: int | None = None, scheduler: str | None = None,
                 retry_failed: bool = False, show_progress: bool | None = None, slurm_jobs: int | None = None,
                 store_wait: float | None = None, overwrite: bool = False, command: str = "campaign run",
                 start: int = 0, stop: int | None = None) -> dict:
    """Run the pending samples of ``config`` (module docstring); returns a summary dict.

    ``start``, ``stop``: run only the samples of index ``start <= index < stop`` (None: to the last), so a
    dataset part (``glassfrac dataset part``) can be computed in a fresh folder without the parts before it.

    ``workers``: None (config ``[runner] workers``, else :func:`default_workers`), 0 (serial) or
    N; ignored with ``scheduler`` or ``slurm_jobs``. ``store_wait``: how long to wait for a store
    server that stops answering, s (default :data:`~glassfrac.campaign.store.STORE_WAIT`).
    Samples that fail are recorded and the rest go on. The directory must be a campaign's, empty or
    new (:func:`campaign_folder`; ``overwrite``: also a folder of the user's, whose files are kept).
    """

    if scheduler is not None and slurm_jobs is not None:
        raise InputError("--scheduler and --slurm-jobs exclude each other: attach to a scheduler or start one")
    # checked here too, not only by the CLI: the library API must refuse them before any work
    if slurm_jobs is not None and (isinstance(slurm_jobs, bool) or not isinstance(slurm_jobs, int) or slurm_jobs < 1):
        raise InputError(f"--slurm-jobs must be at least 1, got {slurm_jobs!r}")
    if store_wait is not None and (isinstance(store_wait, bool) or not isinstance(store_wait, (int, float))
                                   or not store_wait >= 0):
        raise InputError(f"--store-wait must be a number of seconds >= 0, got {store_wait!r}")
    if stop is not None and stop <= start:
        raise InputError(f"--stop ({stop}) must be larger than --start ({start})")
    clock = time.perf_counter()
    for name in [g.generator for g in config.groups if g.generator] + [t for t in config.tests if ":" in t]:
        load_callable(name)  # a typo fails here, not in every sample
    folder = campaign_folder(config.directory, overwrite, command)
    folder.create()  # the marker first: a run killed from here on leaves a folder of ours
    store = open_store(config, store_wait)
    with store.lock():
        store.check_definition(config)
        run_id = uuid.uuid4().hex[:8]
        specs = expand(config)
        cleaned = store.clean({s.sample_id for s in specs})
        done = store.done_ids()
        failed = set(store.failures())
        pending = [s for s in specs if s.sample_id not in done and (retry_failed or s.sample_id not in failed)
                   and start <= s.index and (stop is None or s.index < stop)]
        plan = Plan(campaign=config.name, seed=config.seed, tests=config.tests, test_settings=config.test_settings,
                    potentials=config.potentials, relax=config.relax, samples_dir=str(store.samples_dir.resolve()),
                    run_id=run_id, threads=config.threads_per_worker, figures=config.figures,
                    provenance={**collect(), "config": config.definition(), "fingerprint": config.fingerprint()})
        if workers is None:
            workers = config.workers
        if scheduler is None and slurm_jobs is None and workers is None:
            workers = default_workers(config.threads_per_worker, len(pending))
        counts = {"ran": 0, "succeeded": 0, "failed": 0}
        bar = progress(total=len(pending), desc=config.name, unit="sample",
                       disable=None if show_progress is None else not show_progress)

        def handle(outcome):
            counts["ran"] += 1
            if isinstance(outcome, SampleFailure):
                store.record_failure(outcome)
                counts["failed"] += 1
            else:
                store.commit(outcome)
                counts["succeeded"] += 1
            bar.set_postfix(failed=counts["failed"], refresh=False)
            bar.update(1)

        if pending:
            if scheduler is None and slurm_jobs is None and workers == 0:
                for spec in pending:
                    handle(run_sample(spec, plan))
            else:
                _run_dask(pending, plan, handle, workers, config.threads_per_worker, scheduler, slurm_jobs)
        bar.close()
        store.clean({s.sample_id for s in specs})
        folder.finish()
    seconds = time.perf_counter() - clock
    status = campaign_status(store=store)
    status.pop("failures")
    return {
        **status, "ran": counts["ran"], "succeeded": counts["succeeded"], "newly_failed": counts["failed"],
        "workers": "scheduler " + scheduler if scheduler else (f"slurm {slurm_jobs} jobs" if slurm_jobs else workers),
        "cleaned": cleaned,
        "run_seconds": round(seconds, 3),
        "samples_per_hour": round(3600 * counts["succeeded"] / seconds, 3) if counts["succeeded"] else 0.0,
    }


def slurm_cluster(jobs: int, threads: int):
    """A dask-jobqueue ``SLURMCluster`` with ``jobs`` jobs submitted (settings: module docstring)."""
    try:
        import dask
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise GlassfracError("--slurm-jobs needs dask-jobqueue: pip install 'glassfrac[slurm]'") from None

    settings = dask.config.get("jobqueue.slurm", default={}) or {}
    kwargs = {}
    if settings.get("cores") is None:
        kwargs.update(cores=threads, processes=1)
    if settings.get("memory") is None:
        kwargs["memory"] = f"{SLURM_MEMORY_PER_THREAD * threads}GB"
    prologue = list(settings.get("job-script-prologue") or [])
    prologue += [f"export {var}={threads}" for var in THREAD_VARIABLES]
    if shutil.which("sbatch") is None:
        raise GlassfracError("--slurm-jobs: SLURM's sbatch is not on PATH (run this on a SLURM login node)")
    cluster = SLURMCluster(job_script_prologue=prologue, **kwargs)
    try:
        _test_job_script(cluster.job_script())
    except GlassfracError:
        cluster.close()
        raise
    cluster.scale(jobs=jobs)
    log.warning("submitted %d SLURM jobs (squeue shows them); their workers join as the jobs start", jobs)
    return cluster


def _test_job_script(script: str) -> None:
    """``sbatch --test-only`` on a worker job's script: a partition, account or size that SLURM refuses
    is an error now, not a run that waits for workers that never come."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="glassfrac-job-") as handle:
        handle.write(script)
        handle.flush()
        out = subprocess.run(["sbatch", "--test-only", handle.name], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"sbatch exit status {out.returncode}"
        raise GlassfracError(f"--slurm-jobs: SLURM refuses the worker job ({reason}); set its partition, account, "
                             f"memory or walltime in Dask's jobqueue.slurm config")


def _run_dask(pending, plan, handle, workers, threads, scheduler, slurm_jobs=None) -> None:
    """Submit every pending sample to a Dask cluster and ``handle`` each outcome as it arrives."""
    try:
        from distributed import Client, LocalCluster, TimeoutError, wait
    except ImportError:
        raise GlassfracError("the Dask runner needs dask.distributed: pip install 'dask[distributed]' "
                             "(or run serially with --workers 0)") from None

    if scheduler is not None:
        try:
            client, cluster = Client(scheduler, timeout=SCHEDULER_TIMEOUT), None
        except (OSError, ValueError, TimeoutError) as exc:  # unreachable, or not an address
            raise GlassfracError(f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                                 f"({type(exc).__name__}: {exc})") from None
    elif slurm_jobs is not None:
        cluster = slurm_cluster(slurm_jobs, threads)
        client = Client(cluster)
    else:
        env = {var: str(threads) for var in THREAD_VARIABLES}
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR, env=env,
                               scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})  # no fixed port
        client = Client(cluster)
    try:
        queue = collections.deque(pending)
        running = {}
        while queue or running:
            # no more tasks in flight than worker threads: a queued task never waits behind a
            # long one while another worker idles (the workers of an adaptive cluster may come later)
            slots = max(1, sum(client.nthreads().values()))
            while queue and len(running) < slots:
                spec = queue.popleft()
                running[client.submit(run_sample, spec, plan, key=f"{spec.sample_id}-{plan.run_id}", pure=False)] = spec
            try:
                done = wait(list(running), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                continue
            for future in done:
                spec = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # its workers kept dying (KilledWorker): record, go on
                    # (its temporary folders are debris that store.clean() removes)
                    outcome = SampleFailure(spec, "worker", f"{type(exc).__name__}: {exc}".splitlines()[0],
                                            repr(exc), 0.0)
                future.release()
                handle(outcome)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
