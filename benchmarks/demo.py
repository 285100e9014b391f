"""``glassfrac demo`` as a user runs it: wall and CPU time, and the scores of its predictions on its samples.

    python benchmarks/demo.py [--workers N]

Runs ``glassfrac demo --json`` in a fresh process into a new temporary folder (so nothing is reused) and
publishes to ``results/demo.jsonl``: the wall seconds, the CPU seconds of the process and its workers, the
number of samples, the machine's 1-minute load average before the run (other work on the cores slows it),
and per sheet kind the softness first-break ROC AUC and the shear-event goodness of the softness, of the
probed map and of the learned (LISTI GNN) map on these samples (mean ± SD over samples, as the report's
table shows them).
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import publish


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="demo worker processes (default: the demo's)")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        command = [shutil.which("glassfrac") or "glassfrac", "demo", "-o", str(Path(work) / "demo"), "--json"]
        if args.workers is not None:
            command += ["--workers", str(args.workers)]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode:
            sys.stderr.write(proc.stderr[-3000:])
            return proc.returncode
        result = json.loads(proc.stdout)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    common = {"benchmark": "demo", "samples": result["samples"], "failed": result["failed"],
              "load_average_before": load, "machine": f"demo workers: {args.workers or 'default'}"}
    publish({**common, "figure": "demo_wall_seconds", "value": round(wall, 1), "unit": "s"})
    publish({**common, "figure": "demo_cpu_seconds", "value": round(usage.ru_utime + usage.ru_stime, 1), "unit": "s"})
    for kind, predictors in result["outcome"]["scores"].items():
        for predictor, column in (("softness", "first break: ROC AUC"), ("softness", "shear events: goodness"),
                                  ("probed map", "shear events: goodness"),
                                  ("learned map (LISTI GNN)", "shear events: goodness"),
                                  ("probed map", "goodness at the tension rupture site")):
            spread = predictors.get(predictor, {}).get(column)
            if spread is not None:
                figure = re.sub(r"\W+", "_", f"demo_{kind}_{predictor.split(' (')[0]}_{column.split(':')[0]}")
                publish({**common, "figure": figure, "value": spread["mean"], "unit": "", "sd": spread["sd"],
                         "n": spread["n"], "column": column})
    return 0


if __name__ == "__main__":
    sys.exit(main())
