"""``glassfrac demo``: the main job on built-in defaults, in a few minutes on a laptop.

A small campaign (:data:`DEMO_CONFIG`: small 2D silica monolayers at two disorder levels,
relaxed, loaded in tension and in pure shear), then the post-campaign steps of
:data:`STEPS` in order: the learning dataset (``dataset.npz``) and the HTML report
(``report.html``). The local probing map joins the tests of the config and a quick predictor
joins :data:`STEPS` (between the dataset and the report) when those stages exist.
Everything is written into one folder (default ``./glassfrac-demo``); running the demo again
resumes or reuses the finished samples.
"""

import sys
from dataclasses import replace
from pathlib import Path

DEMO_CONFIG = """
[campaign]
name = "demo"
seed = 7

[[samples]]
kind = "monolayer"
rings = [6, 6]
distribution = "gamma"
mu2 = [0.3, 1.0]
count = 2

[relax]
method = "lbfgs"
fmax = 1e-5

[tests]
run = ["tension", "shear"]

[tests.tension]
max_strain = 0.3
step = 0.01
precision = 0.001

[tests.shear]
max_strain = 0.15
step = 0.005
precision = 0.001
max_events = 3
"""


def _dataset(store, results: dict) -> None:
    from glassfrac.campaign.export import export_dataset

    results["dataset"] = str((store.directory / "dataset.npz").resolve())
    export_dataset(store, results["dataset"])


def _report(store, results: dict) -> None:
    from glassfrac.report.html import write_report

    results["report"] = str(write_report(store).resolve())


STEPS = [("dataset", _dataset), ("report", _report)]
"""Steps after the campaign: ``(name, step(store, results))``, each adding to ``results``."""


def run_demo(output="glassfrac-demo", workers: int | None = None) -> dict:
    """Run the demo campaign into ``output`` and the :data:`STEPS`; returns paths and counts."""
    import time

    from glassfrac.campaign.config import parse_config
    from glassfrac.campaign.runner import open_store, run_campaign

    start = time.perf_counter()
    directory = Path(output)
    config = replace(parse_config(DEMO_CONFIG, source="glassfrac demo (built-in config)"), directory=directory)
    summary = run_campaign(config, workers=workers)
    store = open_store(config)
    results = {"samples": summary["done"], "failed": summary["failed"]}
    for name, step in STEPS:
        print(f"glassfrac demo: {name}", file=sys.stderr)
        step(store, results)
    results["seconds"] = round(time.perf_counter() - start, 3)
    results["directory"] = str(directory.resolve())
    return results
