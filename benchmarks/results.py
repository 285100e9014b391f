"""Output of the benchmark scripts, shared by all of them (``from results import publish`` when a script of
this folder runs as ``python benchmarks/NAME.py``): each figure is printed as one JSON line on stdout and
appended to ``benchmarks/results/<benchmark>.jsonl`` with the date, the machine and the command line, the
files from which the documentation's results pages are generated (``docs/_ext/benchmark_results.py``)."""

import json
import os
import platform
import re
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


def results_folder() -> Path:
    """Where records go: :data:`RESULTS`, or the folder ``GLASSFRAC_BENCHMARK_RESULTS`` names."""
    return Path(os.environ.get("GLASSFRAC_BENCHMARK_RESULTS", RESULTS))


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
    folder = results_folder()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{stored['benchmark']}.jsonl", "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    return stored


# -- figures quoted in the README ------------------------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"
FIGURE_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\(benchmarks/results/(?P<benchmark>[\w.-]+)\.jsonl"
                         r"#(?P<figure>[^)\s]+)\)")
"""A README figure: ``[124.3](benchmarks/results/loading.jsonl#FIGURE)``, the value of the newest record of FIGURE
in that file, printed with as many decimals as the text has (a link, so the reader can follow it to its record);
``#FIGURE/key/0`` takes an entry of that record instead (here ``record["key"][0]``)."""
NUMBER = re.compile(r"^-?\d+(?:\.(\d+))?$")


def newest_records(folder: Path = RESULTS) -> dict:
    """``{(benchmark, figure): record}``: the last record of each figure in ``folder/*.jsonl``."""
    out = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                out[(path.stem, record["figure"])] = record
    return out


def _formatted(value, like: str) -> str:
    """``value`` printed as the figure text ``like`` is: the same number of decimals (or an integer)."""
    match = NUMBER.match(like)
    if match is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"README figure {like!r}: expected a number in the text and a numeric record, got {value!r}")
    decimals = len(match.group(1) or "")
    return f"{value:.{decimals}f}"


def _linked_value(m, records: dict):
    """The number a figure link ``m`` names (module docstring); a ValueError if there is none."""
    figure, *path = m["figure"].split("/")
    record = records.get((m["benchmark"], figure))
    if record is None:
        raise ValueError(f"README figure {m[0]}: no record {figure!r} in benchmarks/results/{m['benchmark']}.jsonl")
    value = record if path else record["value"]
    for step in path:
        try:
            value = value[int(step)] if isinstance(value, list) else value[step]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ValueError(f"README figure {m[0]}: the record has no entry {m['figure']!r}") from None
    return value


def readme_figures(text: str, records: dict) -> list:
    """Per figure link of ``text``: ``(text, benchmark, figure, expected text)``; a link to a figure without a
    record is a ValueError."""
    return [(m["text"], m["benchmark"], m["figure"], _formatted(_linked_value(m, records), m["text"]))
            for m in FIGURE_LINK.finditer(text)]


def update_readme(path: Path = README, folder: Path = RESULTS) -> int:
    """Rewrite every figure link of the README with its newest record; returns how many changed."""
    records = newest_records(folder)
    text = path.read_text(encoding="utf-8")
    changed = 0

    def replace(m):
        nonlocal changed
        new = _formatted(_linked_value(m, records), m["text"])
        changed += new != m["text"]
        return m[0].replace(f"[{m['text']}]", f"[{new}]", 1)

    readme_figures(text, records)  # every link has a record before anything is written
    path.write_text(FIGURE_LINK.sub(replace, text), encoding="utf-8")
    return changed


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="README figures from benchmarks/results/*.jsonl")
    parser.add_argument("--readme", action="store_true", help="rewrite the README's figure links with their newest "
                                                              "records")
    args = parser.parse_args()
    if args.readme:
        print(json.dumps({"readme": str(README), "changed": update_readme()}))
