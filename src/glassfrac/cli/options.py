"""Option types shared by every command: each checks its value while the command line is parsed,
before any work starts, and argparse names the option in the message (exit status 2), e.g.
``glassfrac load tension: error: argument --step: must be > 0, got '0'``.

Numbers: :func:`finite_float`, :func:`positive_float`, :func:`non_negative_float`,
:func:`fraction`, :func:`positive_int`, :func:`non_negative_int`, :func:`at_least`; :func:`regex`. Output files:
:func:`output_file` (allowed extensions), :data:`STRUCTURE_OUTPUT` (a structure format glassfrac
writes), :data:`PNG`, :data:`NPZ`, :data:`MODEL`. Structure inputs: :func:`add_format` adds
``--format`` to a command that reads a structure file; :func:`from_file` names that file in a
non-finite-number error of the computation on it.
"""

import argparse
import contextlib
import math
import re
from pathlib import Path

from glassfrac.core.errors import NonFiniteError
from glassfrac.structure.io import FORMAT_NAMES, FORMATS


def _parse(text: str, kind):
    """``text`` as an int or a finite float; :class:`argparse.ArgumentTypeError` otherwise."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _checked(kind, test, expected: str, name: str):
    def check(text):
        value = _parse(text, kind)
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
        return value
    check.__name__ = name  # argparse names the type in some messages
    return check


finite_float = _checked(float, lambda v: True, "a finite number", "finite_float")
"""Any finite number (no NaN, no inf)."""
positive_float = _checked(float, lambda v: v > 0, "> 0", "positive_float")
non_negative_float = _checked(float, lambda v: v >= 0, ">= 0", "non_negative_float")
fraction = _checked(float, lambda v: 0 <= v <= 1, "between 0 and 1", "fraction")
positive_int = _checked(int, lambda v: v > 0, "a positive integer", "positive_int")
non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0", "non_negative_int")


def regex(text: str) -> str:
    """A Python regular expression (compiled once here, so a bad one is refused before any work)."""
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression ({exc}): {text!r}") from None
    return text


def at_least(minimum: int):
    """An integer option of at least ``minimum`` (e.g. cross-validation folds: 2)."""
    return _checked(int, lambda v: v >= minimum, f"an integer >= {minimum}", f"int_at_least_{minimum}")


def output_file(*suffixes: str, what: str = "file"):
    """An output file name ending in one of ``suffixes`` (case-insensitive), checked before any work."""
    allowed = tuple(s.lower() for s in suffixes)

    def check(text):
        if not text or Path(text).name in ("", ".", ".."):
            raise argparse.ArgumentTypeError(f"expected a {what} name, got {text!r}")
        if Path(text).suffix.lower() not in allowed:
            raise argparse.ArgumentTypeError(
                f"{text!r}: a {what} must end in {' or '.join(allowed)}")
        return text
    check.__name__ = "output_file"
    return check


STRUCTURE_OUTPUT = output_file(*sorted(FORMATS), what="structure file")
"""A structure file glassfrac can write (format from the extension)."""
PNG = output_file(".png", what="figure")
NPZ = output_file(".npz", what="map file")
MODEL = output_file(".safetensors", what="model file")


def add_format(parser, what: str = "FILE"):
    """Add ``--format`` (the format of the structure file ``what``; default: from its extension)."""
    extensions = ", ".join(f"{k} {v}" for k, v in sorted(FORMATS.items()))
    parser.add_argument("--format", choices=FORMAT_NAMES, default=None,
                        help=f"format of {what} (default: from the extension: {extensions})")
    return parser


@contextlib.contextmanager
def from_file(path):
    """Name the structure file ``path`` in a :class:`NonFiniteError` raised in the block (overlapping atoms)."""
    try:
        yield
    except NonFiniteError as exc:
        raise NonFiniteError(f"{path}: {exc}") from None
