"""Run a campaign: the pending samples as tasks, serially or on a Dask cluster; resumable.

- ``workers=0``: serial, in this process (debugging).
- ``workers=N`` (default: as many as fit, N × threads_per_worker ≤ cores): a
  ``distributed.LocalCluster`` of N worker processes with ``threads_per_worker`` threads each
  (1 by default).
- ``scheduler="tcp://host:port"``: attach to a running Dask scheduler (for example one started
  by dask-jobqueue on SLURM); its workers must see the campaign directory (shared file system)
  and have glassfrac installed.

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
import time
import uuid

from glassfrac.campaign.config import CampaignConfig
from glassfrac.campaign.pipeline import Plan, SampleFailure, load_callable, run_sample
from glassfrac.campaign.samples import expand
from glassfrac.campaign.store import CampaignStore, public_url
from glassfrac.core.errors import GlassfracError
from glassfrac.core.progress import progress
from glassfrac.core.provenance import collect
from glassfrac.report.html import write_report

POLL_SECONDS = 5.0
"""How often the Dask runner looks for new workers while no sample finishes, s."""


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


def open_store(config: CampaignConfig) -> CampaignStore:
    """The store of ``config`` (its directory and database)."""
    return CampaignStore(config.directory, config.name, config.database)


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


def _group_size(group: dict) -> int:
    values = group.get("mu2") or group.get("sigma_factor")
    return group["count"] * (len(values) if values else 1)


def run_campaign(config: CampaignConfig, workers: int | None = None, scheduler: str | None = None,
                 retry_failed: bool = False, show_progress: bool | None = None) -> dict:
    """Run the pending samples of ``config`` (module docstring); returns a summary dict.

    ``workers``: None (config ``[runner] workers``, else :func:`default_workers`), 0 (serial) or
    N; ignored with ``scheduler``. Samples that fail are recorded and the rest go on.
    """

    start = time.perf_counter()
    for name in [g.generator for g in config.groups if g.generator] + [t for t in config.tests if ":" in t]:
        load_callable(name)  # a typo fails here, not in every sample
    store = open_store(config)
    with store.lock():
        store.check_definition(config)
        run_id = uuid.uuid4().hex[:8]
        cleaned = store.clean()
        specs = expand(config)
        done = store.done_ids()
        failed = set(store.failures())
        pending = [s for s in specs if s.sample_id not in done and (retry_failed or s.sample_id not in failed)]
        plan = Plan(campaign=config.name, seed=config.seed, tests=config.tests, test_settings=config.test_settings,
                    potentials=config.potentials, relax=config.relax, samples_dir=str(store.samples_dir.resolve()),
                    run_id=run_id, threads=config.threads_per_worker,
                    provenance={**collect(), "config": config.definition(), "fingerprint": config.fingerprint()})
        if workers is None:
            workers = config.workers
        if scheduler is None and workers is None:
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
            if scheduler is None and workers == 0:
                for spec in pending:
                    handle(run_sample(spec, plan))
            else:
                _run_dask(pending, plan, handle, workers, config.threads_per_worker, scheduler)
        bar.close()
        store.clean()
    seconds = time.perf_counter() - start
    status = campaign_status(store=store)
    status.pop("failures")
    return {
        **status, "ran": counts["ran"], "succeeded": counts["succeeded"], "newly_failed": counts["failed"],
        "workers": "scheduler " + scheduler if scheduler else workers, "cleaned": cleaned,
        "run_seconds": round(seconds, 3),
        "samples_per_hour": round(3600 * counts["succeeded"] / seconds, 3) if counts["succeeded"] else 0.0,
    }


def _run_dask(pending, plan, handle, workers, threads, scheduler) -> None:
    """Submit every pending sample to a Dask cluster and ``handle`` each outcome as it arrives."""
    try:
        from distributed import Client, LocalCluster, TimeoutError, wait
    except ImportError:
        raise GlassfracError("the Dask runner needs dask.distributed: pip install 'dask[distributed]' "
                             "(or run serially with --workers 0)") from None

    if scheduler is not None:
        client, cluster = Client(scheduler), None
    else:
        env = {var: str(threads) for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                             "GLASSFRAC_THREADS")}
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
                except Exception as exc:  # the worker died (killed, out of memory): record, go on
                    outcome = SampleFailure(spec, "worker", f"{type(exc).__name__}: {exc}".splitlines()[0],
                                            repr(exc), 0.0, os.path.join(plan.samples_dir,
                                                                         f".tmp-{plan.run_id}-{spec.sample_id}"))
                future.release()
                handle(outcome)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
