"""Commands: ``campaign run|status``, ``dataset export|part|merge``, ``report`` and ``demo``."""

from pathlib import Path

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import non_negative_float, non_negative_int, positive_int
from glassfrac.core.errors import CheckError


def register(subparsers) -> None:
    campaign = subparsers.add_parser("campaign", help="run a campaign of samples, or show its status",
                                     description="Run a campaign (many samples through generate, relax and "
                                                 "the tests) or show its status.")
    sub = campaign.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    run = add_command(sub, "run", "run the pending samples of a campaign config (resumable)", _run)
    run.add_argument("config", help="campaign config (TOML)")
    run.add_argument("--scheduler", metavar="ADDRESS", default=None,
                     help="attach to a running Dask scheduler (tcp://host:port) instead of a local cluster")
    run.add_argument("--slurm-jobs", metavar="N", type=positive_int, default=None,
                     help="submit N SLURM jobs, one Dask worker each, through dask-jobqueue (settings from "
                          "Dask's jobqueue.slurm config; see README, Running campaigns on a cluster)")
    run.add_argument("--store-wait", metavar="SECONDS", type=non_negative_float, default=None,
                     help="how long to wait for a database server that stops answering before the run "
                          "stops (default 120; a rerun resumes)")
    run.add_argument("--workers", type=non_negative_int, default=None,
                     help="local worker processes (default: cores / threads per worker; 0: serial, "
                          "in this process)")
    run.add_argument("--retry-failed", action="store_true", help="run the failed samples again")
    run.add_argument("--start", type=non_negative_int, default=0,
                     help="run only samples of index >= START (default 0; a dataset part in a fresh folder)")
    run.add_argument("--stop", type=positive_int, default=None,
                     help="run only samples of index < STOP (default: every sample of the config)")
    run.add_argument("--output", metavar="DIR", default=None, help="campaign directory (overrides the config)")
    add_overwrite(run)
    run.add_argument("--database", metavar="URL", default=None,
                     help="store (postgresql://user@host:port/db or FILE.db; overrides the config)")
    status = add_command(sub, "status", "counts of done, failed and pending samples of a campaign", _status)
    status.add_argument("directory", help="campaign directory")
    status.add_argument("--database", metavar="URL", default=None, help="store, if not the directory's SQLite")
    status.add_argument("--check", action="store_true",
                        help="also re-read every row and file and verify the recorded checksums; problems "
                             "found make the exit status 2 (the report is printed as usual, with 'error')")

    dataset = subparsers.add_parser("dataset", help="export a campaign as arrays for learning",
                                    description="Export a campaign as arrays for the learning stages.")
    dsub = dataset.add_subparsers(dest="action", metavar="ACTION")
    dsub.required = True
    export = add_command(dsub, "export", "write a campaign's samples as one .npz or a folder of .npz files",
                         _export)
    export.add_argument("directory", help="campaign directory")
    export.add_argument("-o", "--output", required=True,
                        help="DATASET.npz (one file) or a folder (one .npz per sample plus manifest.json)")
    add_overwrite(export)
    export.add_argument("--database", metavar="URL", default=None, help="store, if not the directory's SQLite")
    part = add_command(dsub, "part", "export a campaign's finished samples of an index range into a dataset "
                                     "folder (DATASET/parts/part-iSTART-STOP.npz)", _part)
    part.add_argument("directory", help="campaign directory (or run folder of 'glassfrac oxide samples')")
    part.add_argument("dataset", help="dataset folder (e.g. datasets/NAME)")
    part.add_argument("--start", type=non_negative_int, required=True, help="first sample index")
    part.add_argument("--stop", type=positive_int, required=True, help="one past the last sample index")
    part.add_argument("--database", metavar="URL", default=None, help="store, if not the directory's SQLite")
    add_overwrite(part)
    merge = add_command(dsub, "merge", "merge a dataset folder's parts into DATASET/dataset.npz and card.json "
                                       "(refuses overlapping or inconsistent parts)", _merge)
    merge.add_argument("dataset", help="dataset folder (e.g. datasets/NAME)")

    report = add_command(subparsers, "report", "write the HTML report of a campaign (DIR/report.html)", _report)
    report.add_argument("directory", help="campaign directory")
    report.add_argument("--database", metavar="URL", default=None, help="store, if not the directory's SQLite")

    demo = add_command(subparsers, "demo", "the main job on built-in defaults: a small campaign (tension, "
                                           "shear, a probe map), a quick predictor and the HTML report", _demo)
    demo.add_argument("-o", "--output", default="glassfrac-demo", help="output folder (default ./glassfrac-demo)")
    demo.add_argument("--workers", type=non_negative_int, default=None, help="local worker processes (0: serial)")
    add_overwrite(demo)


def _config(args):
    from dataclasses import replace

    from glassfrac.campaign.config import load_config

    config = load_config(args.config)
    if args.output:
        config = replace(config, directory=Path(args.output))
    if args.database:
        config = replace(config, database=args.database)
    if args.threads:
        config = replace(config, threads_per_worker=args.threads)
    return config


def _run(args) -> dict:
    from glassfrac.campaign.runner import run_campaign

    return run_campaign(_config(args), workers=args.workers, scheduler=args.scheduler,
                        retry_failed=args.retry_failed, slurm_jobs=args.slurm_jobs, store_wait=args.store_wait,
                        overwrite=args.overwrite, start=args.start, stop=args.stop)


def _store(args):
    from glassfrac.campaign.store import CampaignStore

    return CampaignStore.open(args.directory, args.database)


def _status(args) -> dict:
    from glassfrac.campaign.runner import campaign_status

    store = _store(args)
    out = campaign_status(store=store)
    if args.check:
        out["check"] = store.verify()
        problems = out["check"]["problems"]
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise CheckError(f"{args.directory}: {len(problems)} problem(s) found: {'; '.join(problems[:3])}{more}",
                             out)
    return out


def _export(args) -> dict:
    from glassfrac.campaign.export import export_dataset

    return export_dataset(_store(args), args.output, overwrite=args.overwrite)


def _part(args) -> dict:
    from glassfrac.campaign import oxide_dataset
    from glassfrac.campaign.datasets import export_part

    if (Path(args.directory) / oxide_dataset.RUN_FILE).is_file():  # a run of 'glassfrac oxide samples'
        return oxide_dataset.export_part(args.directory, args.dataset, args.start, args.stop, args.overwrite)
    return export_part(_store(args), args.dataset, args.start, args.stop, overwrite=args.overwrite)


def _merge(args) -> dict:
    from glassfrac.campaign import oxide_dataset
    from glassfrac.campaign.datasets import merge_parts

    if oxide_dataset.is_oxide_dataset(args.dataset):
        return oxide_dataset.merge_parts(args.dataset)
    return merge_parts(args.dataset)


def _report(args) -> dict:
    from glassfrac.campaign.runner import report_campaign

    return {"report": str(report_campaign(_store(args)))}


def _demo(args) -> dict:
    from glassfrac.cli.demo import run_demo

    return run_demo(args.output, workers=args.workers, overwrite=args.overwrite)
