"""Fixtures of the campaign tests: configs of the cheap pipeline in ``campaign_helpers``."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # spawned Dask workers inherit sys.path; subprocesses get PYTHONPATH
    sys.path.insert(0, str(HERE))


@pytest.fixture
def write_config(tmp_path):
    """``write_config(**kwargs)`` writes :func:`cheap_config` to a file; returns its path."""
    from campaign_helpers import cheap_config

    def write(**kwargs):
        kwargs.setdefault("directory", tmp_path / "campaign")
        path = tmp_path / f"{kwargs.get('name', 'cheap')}.toml"
        path.write_text(cheap_config(**kwargs))
        return path
    return write
