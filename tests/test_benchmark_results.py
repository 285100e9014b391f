"""``benchmarks/results.py``: every benchmark figure is printed as one JSON line and appended to
``results/<benchmark>.jsonl`` with the date, machine and command line the results pages show."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

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


def test_readme_figures_are_the_newest_benchmark_records():
    from results import README, newest_records, readme_figures

    figures = readme_figures(README.read_text(encoding="utf-8"), newest_records())
    assert len(figures) >= 25  # the measured figures of the README are links to their records
    stale = [(text, f"{benchmark}#{figure}", expected) for text, benchmark, figure, expected in figures
             if text != expected]
    assert not stale, f"README figures differ from their records (python benchmarks/results.py --readme): {stale}"


def test_update_readme_rewrites_stale_figures_and_refuses_links_without_a_record(tmp_path, monkeypatch):
    from results import update_readme

    monkeypatch.setenv("GLASSFRAC_BENCHMARK_RESULTS", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["benchmarks/probe.py"])
    publish({"benchmark": "probe", "figure": "map_seconds", "value": 218.46, "unit": "s",
             "detail": {"windows": [7, 2500]}})
    readme = tmp_path / "README.md"
    readme.write_text("took [200.0](benchmarks/results/probe.jsonl#map_seconds) s for "
                      "[1](benchmarks/results/probe.jsonl#map_seconds/detail/windows/1) windows\n")
    assert update_readme(readme, tmp_path) == 2
    assert readme.read_text() == ("took [218.5](benchmarks/results/probe.jsonl#map_seconds) s for "
                                  "[2500](benchmarks/results/probe.jsonl#map_seconds/detail/windows/1) windows\n")
    readme.write_text("[1.0](benchmarks/results/probe.jsonl#no_such_figure)")
    with pytest.raises(ValueError, match="no record"):
        update_readme(readme, tmp_path)
    assert readme.read_text() == "[1.0](benchmarks/results/probe.jsonl#no_such_figure)"  # nothing written
