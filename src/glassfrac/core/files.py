"""Atomic file output: write to a temporary name next to the target, rename when complete."""

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    A crash or an exception inside the block leaves no partial ``path`` behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path, mode="w"):
    """Open a temporary file beside ``path`` for writing; rename it to ``path`` on success."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle


def save_png(fig, path, dpi=None, tight: bool = True) -> None:
    """Write the matplotlib ``Figure`` ``fig`` (made without pyplot, so nothing needs closing) to ``path`` as a
    PNG, atomically; ``dpi`` None: the figure's own; ``tight``: apply ``tight_layout`` first."""
    if tight:
        fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
