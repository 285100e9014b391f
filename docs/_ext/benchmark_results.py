"""Sphinx extension: the ``results/`` pages, one table per benchmark, generated from the JSON lines that the
benchmarks append to ``benchmarks/results/<benchmark>.jsonl`` (``benchmarks/results.py``).

Before reading the sources (``builder-inited``) it writes ``results/index.rst`` and ``results/<benchmark>.rst``
into the documentation folder: the summary tables a benchmark wrote beside its records
(``<benchmark>.tables.json``, e.g. the predictor comparison), then per record the figure, value, unit, the
date, machine and command line of the run. Configuration: ``benchmark_results_source`` (the folder of ``.jsonl`` files).
"""

import json
from pathlib import Path

from sphinx.errors import ConfigError

RECORD_KEYS = ("benchmark", "figure", "value", "unit", "date", "machine", "command")
"""Keys every record has; the others go to the table's last column."""


def _text(value) -> str:
    """A cell: numbers to 4 significant digits, everything else as compact JSON (one line)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
    return text.replace("\n", " ").replace("|", "/")


def _literal(text: str) -> str:
    return f"``{text}``" if text else ""


def read_records(path: Path) -> list:
    """The records of one ``.jsonl`` file, checked for the keys every record has."""
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        missing = [k for k in RECORD_KEYS if k not in record]
        if missing:
            raise ConfigError(f"{path}:{number}: benchmark record without {missing}")
        records.append(record)
    return records


def _machine(machine: dict) -> str:
    return f"{machine.get('cpu', '?')} ({machine.get('cores', '?')} cores), {machine.get('platform', '?')}"


def summary_tables(tables: list) -> list:
    """reST lines of the tables a benchmark wrote beside its records (``<name>.tables.json``: a list of
    ``{"caption", "columns", "rows"}``), one list-table each."""
    lines = []
    for table in (t for t in tables if t["rows"]):  # a table without rows is not a table
        lines += [f".. list-table:: {_text(table['caption'])}", "   :header-rows: 1", ""]
        for row in [table["columns"], *table["rows"]]:
            lines.append(f"   * - {_text(row[0])}")
            lines += [f"     - {_text(cell)}" for cell in row[1:]]
        lines.append("")
    return lines


def benchmark_page(name: str, records: list, tables: list = ()) -> str:
    """reST of one benchmark's page: the tables it wrote (:func:`summary_tables`), its runs (date, machine,
    command) and a table of its figures."""
    title = f"Benchmark ``{name}``"
    lines = [title, "=" * len(title), "",
             f"Generated from ``benchmarks/results/{name}.jsonl`` ({len(records)} records, newest first). Each "
             f"record is one figure printed by ``benchmarks/{name}.py``; values are in the unit of the row.", ""]
    if tables:
        lines += ["Summary", "-------", "", *summary_tables(tables)]
    runs = {}
    for record in records:
        runs.setdefault((record["date"], record["command"]), record["machine"])
    lines += ["Runs", "----", ""]
    for (date, command), machine in sorted(runs.items(), reverse=True):
        lines += [f"- {date}: {_literal(command)} on {_machine(machine)}"]
    lines += ["", "Figures", "-------", "", ".. list-table::", "   :header-rows: 1", "   :widths: 22 12 8 18 40", "",
              "   * - figure", "     - value", "     - unit", "     - date", "     - details"]
    for record in sorted(records, key=lambda r: r["date"], reverse=True):
        details = {k: v for k, v in record.items() if k not in RECORD_KEYS}
        cells = [_literal(_text(record["figure"])), _text(record["value"]), _text(record["unit"] or ""),
                 record["date"], _literal(_text(details)) if details else ""]
        lines.append(f"   * - {cells[0]}")
        lines += [f"     - {cell}" for cell in cells[1:]]
    return "\n".join(lines) + "\n"


def index_page(names: list) -> str:
    lines = ["Benchmark results", "=================", "",
             "Every figure quoted in the README and these pages comes from a benchmark script of ``benchmarks/``: "
             "each prints one JSON object per figure and appends it, with the date, the machine and the command "
             "line, to ``benchmarks/results/<benchmark>.jsonl``. These pages are generated from those files when "
             "the site is built, so they show what was measured, where and how.", ""]
    if names:
        lines += [".. toctree::", "   :maxdepth: 1", ""] + [f"   {name}" for name in names]
    else:
        lines += ["No results are stored yet: run a benchmark (``python benchmarks/rings.py``) and build again."]
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    """Write only a changed page, so that Sphinx rebuilds only what changed."""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def generate_pages(app) -> None:
    source = Path(app.config.benchmark_results_source)
    out = Path(app.srcdir) / "results"
    out.mkdir(exist_ok=True)
    names = []
    for path in sorted(source.glob("*.jsonl")):
        records = read_records(path)
        if records:
            names.append(path.stem)
            tables = path.with_suffix(".tables.json")
            _write_if_changed(out / f"{path.stem}.rst", benchmark_page(
                path.stem, records, json.loads(tables.read_text()) if tables.is_file() else ()))
    for stale in out.glob("*.rst"):
        if stale.stem not in names and stale.name != "index.rst":
            stale.unlink()
    _write_if_changed(out / "index.rst", index_page(names))


def setup(app):
    app.add_config_value("benchmark_results_source", "", "env")
    app.connect("builder-inited", generate_pages)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
