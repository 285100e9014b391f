"""Provenance of a campaign run: package versions, git revision, host and start time."""

import datetime
import importlib.metadata
import platform
import re
import subprocess
import sys
from pathlib import Path

PACKAGES = ("glassfrac", "numpy", "scipy", "torch", "ase", "vesin", "dask", "distributed")


def package_versions() -> dict:
    """Installed versions of the packages a result depends on (None if absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_revision(path=None) -> dict | None:
    """``{"revision": sha, "dirty": bool}`` of the git checkout holding ``path`` (default: this
    package's source), or None when it is not in a git checkout or git is missing."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"revision": rev, "dirty": bool(status.strip())}


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def collect() -> dict:
    """Versions, git revision, host, command line and start time of this run."""
    return {
        "versions": package_versions(), "git": git_revision(), "host": platform.node(),
        "argv": [re.sub(r"(://[^:/@\s]+):[^@\s]*@", r"\1:***@", a) for a in sys.argv],  # no passwords
        "started": now(),
    }
