"""Output of the benchmark scripts, shared by all of them (``from results import publish`` when a script of
this folder runs as ``python benchmarks/NAME.py``): each figure is printed as one JSON line on stdout and
appended to ``benchmarks/results/<benchmark>.jsonl`` with the date, the machine and the command line, the
files from which the documentation's results pages are generated (``docs/_ext/benchmark_results.py``)."""

import json
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from functools import cache
from pathlib import Path

from glassfrac.core.jsonable import to_jsonable

RESULTS = Path(__file__).resolve().parent / "results"
"""Folder of the ``<benchmark>.jsonl`` files (``GLASSFRAC_BENCHMARK_RESULTS`` to write elsewhere)."""


@cache
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(note: str | None = None) -> dict:
    """The machine of this run: ``platform``, ``cpu`` (model), ``cores`` (visible to this process), ``python``,
    ``torch_threads`` (when torch is loaded) and the script's own ``note`` (device, threads per worker...)."""
    described = {"platform": platform.platform(), "cpu": _cpu_model(),
                 "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                 "python": platform.python_version()}
    if "torch" in sys.modules:
        described["torch_threads"] = sys.modules["torch"].get_num_threads()
    if note:
        described["note"] = note
    return described


def publish(record: dict) -> dict:
    """Print ``record`` (``benchmark``, ``figure``, ``value``, ``unit`` and any details) as one JSON line and
    append it to ``results/<benchmark>.jsonl`` with ``date`` (UTC, ISO 8601), ``machine`` (a ``machine`` string
    of the record becomes its ``note``) and ``command`` (the command line). Returns the stored record."""
    record = dict(record)
    note = record.pop("machine", None)
    stored = to_jsonable({**record, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "machine": machine(note), "command": shlex.join(["python", *sys.argv])})
    line = json.dumps(stored, ensure_ascii=False)
    print(line, flush=True)
    folder = Path(os.environ.get("GLASSFRAC_BENCHMARK_RESULTS", RESULTS))
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{stored['benchmark']}.jsonl", "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return stored
