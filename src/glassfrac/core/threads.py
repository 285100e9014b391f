"""Thread counts for torch, numba and BLAS, set in one place.

On a small shared machine one thread per process is usually fastest (two threads on two busy
cores ran 5–10x slower here); ``GLASSFRAC_THREADS`` or ``--threads`` overrides the default.
"""

import os

from threadpoolctl import threadpool_limits

from glassfrac.core.errors import InputError

DEFAULT_THREADS = 1


def configured_threads() -> int:
    """Threads from ``GLASSFRAC_THREADS`` (default 1)."""
    value = os.environ.get("GLASSFRAC_THREADS", str(DEFAULT_THREADS))
    try:
        n = int(value)
    except ValueError as exc:
        raise InputError(f"GLASSFRAC_THREADS must be an integer, got {value!r}") from exc
    return max(1, n)


def set_threads(n: int | None = None) -> int:
    """Use ``n`` threads (default: :func:`configured_threads`) in torch, BLAS and numba."""
    n = configured_threads() if n is None else max(1, int(n))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch  # here, not at the top: `glassfrac --help` need not pay torch's import time (~1 s)

    torch.set_num_threads(n)
    threadpool_limits(n)
    return n
