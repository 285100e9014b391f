"""Progress bars on stderr (stdout is reserved for results and ``--json`` output)."""

import os
import sys

from tqdm.auto import tqdm


def progress(iterable=None, total=None, desc=None, unit="it", disable=None):
    """A tqdm bar on stderr; hidden when stderr is not a terminal unless GLASSFRAC_PROGRESS=1."""

    if disable is None:
        disable = not (sys.stderr.isatty() or os.environ.get("GLASSFRAC_PROGRESS") == "1")
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable,
                dynamic_ncols=True)
