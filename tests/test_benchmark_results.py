"""``benchmarks/results.py``: every benchmark figure is printed as one JSON line and appended to
``results/<benchmark>.jsonl`` with the date, machine and command line the results pages show."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from results import publish  # noqa: E402


def test_publish_prints_and_appends_one_record_per_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLASSFRAC_BENCHMARK_RESULTS", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["benchmarks/probe.py", "--full", "--workers", "2"])
    publish({"benchmark": "probe", "figure": "windows_per_second", "value": np.float64(11.5), "unit": "1/s",
             "machine": "2 worker processes"})
    publish({"benchmark": "probe", "figure": "map_seconds", "value": 218, "unit": "s"})
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    stored = [json.loads(line) for line in (tmp_path / "probe.jsonl").read_text().splitlines()]
    assert printed == stored and len(stored) == 2
    first = stored[0]
    assert first["value"] == 11.5 and first["command"] == "python benchmarks/probe.py --full --workers 2"
    assert first["machine"]["note"] == "2 worker processes" and "note" not in stored[1]["machine"]
    assert first["machine"]["cores"] >= 1 and first["machine"]["cpu"] and first["machine"]["platform"]
    assert first["date"].endswith("+00:00") and first["date"][:4].isdigit()
