"""Campaign throughput and runner overhead, on a paper-like config at reduced size.

    python benchmarks/campaign.py [--quick] [--config CONFIG] [--out bench-out/campaign]
    python benchmarks/campaign.py --recipes NAME [NAME ...] [--samples N]

The config's protocol (potential, relaxer, test settings) is kept; its samples are replaced
by ``--samples`` samples (2 disorder levels) of ``--rings`` rings. Default: LISTI25's
protocol (``configs/paper-listi25.toml``: pure shear, 400 strain steps of 1e-4, CG to
1e-8 eV/Å), 4 samples of 8 x 8 rings (about an hour on 2 cores). ``--quick`` (under 10 minutes
on 2 idle cores): ``configs/quickstart.toml`` (FC22 tension and LISTI25 shear with coarser
steps), 2 samples of 6 x 6 rings. Prints one JSON object per
figure:

- ``loop_seconds_per_sample``: the stages called in a plain loop (no store, no runner);
- ``runner_overhead_serial_{cpu,wall}``: ``glassfrac campaign run --workers 0`` against that
  loop, % extra CPU time (this process and its finished children: robust on a shared machine)
  and % extra wall time;
- ``runner_overhead_localcluster_1_{cpu,wall}``: the same for a 1-worker LocalCluster
  (start-up, worker imports and shutdown included);
- ``throughput_localcluster``: samples per hour with the default workers (cores / 1 thread);
- ``report_render``: the campaign's HTML report in headless Chromium: seconds, and the
  fractions of non-white and of coloured pixels of the screenshot (0 would be a blank page).

Every run uses the same seeds; the benchmark checks that the runs stored the same labels.

``--recipes``: the throughput of the dataset configs the shipped predictors train on
(``dataset_throughput_NAME``: samples per hour on the default workers, runner included, the windows per
hour of a probed recipe, and the hours the config's whole dataset takes at that rate).
"""

import argparse
import resource
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from results import publish

ROOT = Path(__file__).resolve().parents[1]


def emit(figure, value, unit, **extra):
    publish({"benchmark": "campaign", "figure": figure, "value": value, "unit": unit,
             "machine": "1 thread per worker", "extrapolated": False, **extra})


def clocks() -> tuple[float, float]:
    """(wall, CPU) seconds; CPU of this process and of its children that have exited (the
    LocalCluster's worker processes, once the cluster is closed)."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), time.process_time() + child.ru_utime + child.ru_stime


def reduced(config, rings, samples, directory):
    """``config`` with its first group cut to ``samples`` samples of ``rings`` rings, at up to two
    disorder levels (the group's first two, or its first and twice that)."""
    group = config.groups[0]
    levels = group.mu2 or group.sigma_factor or group.mu2_range
    levels = (levels[0], levels[0] * 2) if len(levels) == 1 else tuple(levels[:2])
    levels = levels[: min(2, samples)]
    if samples % len(levels):
        raise ValueError(f"--samples must be 1 or even, got {samples}")
    name = "mu2" if group.sigma_factor is None else "sigma_factor"
    values = {"mu2": None, "mu2_range": None, "sigma_factor": None, name: levels}
    small = replace(group, rings=tuple(rings), count=samples // len(levels), **values)
    return replace(config, name=f"{config.name}-bench", groups=(small,), directory=Path(directory), database=None)


def plain_loop(config, directory) -> tuple[float, float]:
    """(wall, CPU) seconds to run the stages of every sample in a loop, without store or runner."""
    from glassfrac.campaign.pipeline import Plan, SampleContext, stage_function
    from glassfrac.campaign.samples import expand

    plan = Plan(campaign=config.name, seed=config.seed, tests=config.tests, test_settings=config.test_settings,
                potentials=config.potentials, relax=config.relax, samples_dir=str(directory), run_id="loop")
    wall, cpu = clocks()
    for spec in expand(config):
        ctx = SampleContext(spec, plan, Path(directory) / spec.sample_id)
        for stage in plan.stages():
            stage_function(stage)(ctx)
    end = clocks()
    return end[0] - wall, end[1] - cpu


def labels(config):
    from glassfrac.campaign.runner import open_store

    return [{k: v for k, v in r.key_value_pairs.items() if k != "seconds"} for r in open_store(config).rows()]


RECIPE_SAMPLES = {"monolayer-tension": 16, "bilayer-tension": 8, "monolayer-shear": 4, "bilayer-shear": 2}
"""Dataset configs (``configs/NAME.toml``) of the shipped predictors and the samples each ``--recipes`` run
makes (two per worker or more: the runner's start-up and the last sample's tail stay in the figure)."""


def recipes(names, out: Path, samples: int | None = None) -> None:
    """Dataset throughput (issue 21, goal 4): samples [0, n) of each dataset config, unchanged (sizes, tests,
    settings, potentials), run by ``run_campaign`` on the default workers (cores / 1 thread) into a fresh
    folder; samples per hour of wall time, and probed windows per hour where the recipe probes."""
    from glassfrac.campaign.config import load_config
    from glassfrac.campaign.runner import default_workers, open_store, run_campaign
    from glassfrac.core.threads import set_threads

    set_threads(1)
    for name in names:
        n = samples or RECIPE_SAMPLES[name]
        folder = out / name
        shutil.rmtree(folder, ignore_errors=True)
        config = replace(load_config(ROOT / "configs" / f"{name}.toml"), directory=folder, database=None)
        start = clocks()
        summary = run_campaign(config, show_progress=False, stop=n)
        end = clocks()
        wall, cpu = end[0] - start[0], end[1] - start[1]
        if summary["ran"] != n or summary["newly_failed"]:
            failures = open_store(config).failures()
            raise RuntimeError(f"{name}: {summary['newly_failed']} of {n} samples failed: {failures}")
        probe = config.test_settings.get("probe")
        windows = probe["grid"] ** 2 * n if probe and "probe" in config.tests else 0
        group = config.groups[0]
        emit(f"dataset_throughput_{name}", round(3600 * n / wall, 2), "samples/h", samples=n, seconds=round(wall, 2),
             cpu_seconds=round(cpu, 2), workers=default_workers(1, n), kind=group.kind, rings=list(group.rings),
             tests=list(config.tests), windows_per_hour=round(3600 * windows / wall, 1) if windows else None,
             config=f"configs/{name}.toml", dataset_size=config.n_samples,
             dataset_hours=round(config.n_samples * wall / n / 3600, 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="quickstart protocol, 2 samples of 6 x 6 rings (default: LISTI25's, 4 of 8 x 8)")
    parser.add_argument("--config", default=None, help="campaign config whose protocol is used")
    parser.add_argument("--rings", type=int, nargs=2, default=None)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--out", default=str(ROOT / "bench-out/campaign"))
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPE_SAMPLES), default=None,
                        help="dataset throughput instead: the first samples of these dataset configs, as they are, "
                             "through the runner on the default workers")
    args = parser.parse_args()
    if args.recipes:
        return recipes(args.recipes, Path(args.out) / "recipes", args.samples)
    from glassfrac.campaign.config import load_config
    from glassfrac.campaign.runner import default_workers, open_store, report_campaign, run_campaign
    from glassfrac.core.threads import set_threads
    from glassfrac.report.html import ink, screenshot

    set_threads(1)
    config = args.config or str(ROOT / ("configs/quickstart.toml" if args.quick else "configs/paper-listi25.toml"))
    rings = args.rings or ((6, 6) if args.quick else (8, 8))
    samples = args.samples or (2 if args.quick else 4)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    base = load_config(config)
    what = {"config": Path(config).name, "rings": list(rings), "samples": samples, "kind": base.groups[0].kind,
            "tests": list(base.tests)}

    plain_loop(reduced(base, rings, 1, out / "warmup"), out / "warmup")  # imports and caches, not timed
    loop = plain_loop(reduced(base, rings, samples, out / "loop"), out / "loop")
    emit("loop_seconds_per_sample", round(loop[0] / samples, 3), "s",
         cpu_seconds_per_sample=round(loop[1] / samples, 3), **what)
    for name, workers in (("serial", 0), ("localcluster_1", 1), ("localcluster", None)):
        config = reduced(base, rings, samples, out / name)
        start = clocks()
        summary = run_campaign(config, workers=workers, show_progress=False)
        end = clocks()
        wall, cpu = end[0] - start[0], end[1] - start[1]
        if summary["done"] != samples:
            raise RuntimeError(f"{name}: {summary['failed']} samples failed: {open_store(config).failures()}")
        if name != "localcluster":
            for kind, runner, plain in (("cpu", cpu, loop[1]), ("wall", wall, loop[0])):
                emit(f"runner_overhead_{name}_{kind}", round(100 * (runner - plain) / plain, 2), "%",
                     runner_seconds=round(runner, 3), loop_seconds=round(plain, 3), goal="<= 5 %", **what)
        else:
            emit("throughput_localcluster", round(3600 * samples / wall, 2), "samples/h",
                 workers=default_workers(1, samples), seconds=round(wall, 3), cpu_seconds=round(cpu, 3), **what)
    reference = labels(reduced(base, rings, samples, out / "serial"))
    for name in ("localcluster_1", "localcluster"):
        if labels(reduced(base, rings, samples, out / name)) != reference:
            raise RuntimeError(f"{name} stored other labels than the serial run")
    report = report_campaign(open_store(reduced(base, rings, samples, out / "localcluster")))
    start = time.perf_counter()
    page = ink(screenshot(report, out / "report.png"))
    seconds = round(time.perf_counter() - start, 2)
    emit("report_render", round(page["non_white"], 4), "non-white fraction", seconds=seconds,
         coloured_fraction=round(page["coloured"], 4), screenshot=str(out / "report.png"))


if __name__ == "__main__":
    sys.exit(main())
