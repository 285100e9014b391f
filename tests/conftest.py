"""Shared test set-up: one thread everywhere, paths to the external data in ../shared/data."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLASSFRAC_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from glassfrac.core.threads import set_threads  # noqa: E402

set_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
JUMOL = SHARED_DATA / "jumol-2d-silica"
FC22_BILAYER = SHARED_DATA / "fc22-bilayer" / "sio2_initial.dump"


@pytest.fixture(scope="session")
def jumol_files():
    files = sorted(JUMOL.glob("sig_*_sample_0.data"))
    if not files:
        pytest.skip(f"external samples not found in {JUMOL}")
    return files


@pytest.fixture(scope="session")
def fc22_bilayer_path():
    if not FC22_BILAYER.is_file():
        pytest.skip(f"FC22 reference bilayer not found at {FC22_BILAYER}")
    return FC22_BILAYER
