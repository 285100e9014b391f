"""``glassfrac demo``: the main job on built-in defaults: predict first, then let the physics judge.

A small campaign (:data:`DEMO_CONFIG`) of fresh samples that no model saw, each predicted by the shipped
models (``glassfrac models``) right after relaxation and before any loading (the campaign stage
``predict``), then loaded with each paper's physics: four 432-atom Watanabe bilayers (FC22, the shipped
bilayer models' size) at two disorder levels in tension to the first broken bond, and two 600-atom Yukawa
monolayers (LISTI25) in tension, in pure shear (first six events) and probed locally on a 10 × 10 grid.
Then the post-campaign steps of :data:`STEPS` in order:

- ``dataset``: the learning dataset (``dataset.npz``, :mod:`glassfrac.campaign.export`);
- ``outcome``: prediction beside outcome for every target and the scores of the comparison table on these
  samples, softness and probed map against the baselines (``outcome/``,
  :mod:`glassfrac.campaign.outcome`);
- ``report``: the HTML report (``report.html``) with the figures of every stage.

Everything is written into one folder (default ``./glassfrac-demo``); running the demo again
resumes or reuses the finished samples. A non-empty folder that is not a demo's is refused unless
``--overwrite`` (then the demo writes beside its files: :mod:`glassfrac.core.outputs`).
"""

import sys
from dataclasses import replace
from pathlib import Path

DEMO_CONFIG = """
[campaign]
name = "demo"
seed = 7

[[samples]]        # FC22's physics: Watanabe bilayers in tension, the shipped bilayer models' size
kind = "bilayer"
rings = [6, 6]
distribution = "gamma"
mu2 = [0.3, 0.9]
count = 2
tests = ["predict", "tension"]

[[samples]]        # LISTI25's physics: Yukawa monolayers in shear, probed locally (and in tension)
kind = "monolayer"
rings = [10, 12]
distribution = "gamma"
mu2 = [0.3, 0.9]
count = 1

[relax]
method = "lbfgs"
fmax = 1e-6

[tests]
run = ["predict", "tension", "shear", "probe"]

[tests.tension]
max_strain = 0.3
step = 0.01
precision = 0.001
fmax = 1e-6
stop_at_first_break = true

[tests.shear]
max_strain = 0.2
step = 0.001
precision = 0.0001
fmax = 1e-6
max_events = 6

[tests.probe]
grid = 10
"""


def _dataset(store, results: dict) -> None:
    from glassfrac.campaign.export import export_dataset

    results["dataset"] = str((store.directory / "dataset.npz").resolve())
    export_dataset(store, results["dataset"], overwrite=True)  # the demo's own file in its own folder


def _outcome(store, results: dict) -> None:
    from glassfrac.campaign.outcome import write_outcome

    results["outcome"] = write_outcome(store)


def _report(store, results: dict) -> None:
    from glassfrac.campaign.runner import report_campaign

    results["report"] = str(report_campaign(store).resolve())


STEPS = [("dataset", _dataset), ("outcome", _outcome), ("report", _report)]
"""Steps after the campaign: ``(name, step(store, results))``, each adding to ``results``."""


def run_demo(output="glassfrac-demo", workers: int | None = None, overwrite: bool = False) -> dict:
    """Run the demo campaign into ``output`` and the :data:`STEPS`; returns paths, counts,
    the scores of the predictions on these samples, wall seconds and CPU seconds (this process and its
    finished worker processes). ``output`` must be new, empty or a demo's folder, or any folder
    with ``overwrite`` (whose files are kept: :mod:`glassfrac.core.outputs`)."""
    import resource
    import time

    from glassfrac.campaign.config import parse_config
    from glassfrac.campaign.runner import open_store, run_campaign

    def cpu() -> float:
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + child.ru_utime + child.ru_stime

    start, cpu_start = time.perf_counter(), cpu()
    directory = Path(output)
    config = replace(parse_config(DEMO_CONFIG, source="glassfrac demo (built-in config)"), directory=directory)
    summary = run_campaign(config, workers=workers, overwrite=overwrite, command="demo")
    store = open_store(config)
    results = {"samples": summary["done"], "failed": summary["failed"], "campaign_seconds": summary["run_seconds"]}
    for name, step in STEPS:
        print(f"glassfrac demo: {name}", file=sys.stderr)
        step(store, results)
    results["seconds"] = round(time.perf_counter() - start, 3)
    results["cpu_seconds"] = round(cpu() - cpu_start, 3)
    results["directory"] = str(directory.resolve())
    return results
