"""The ``glassfrac`` command: one subcommand per stage, each with ``--json``.

Each stage module listed in ``COMMAND_MODULES`` has ``register(subparsers)``, which adds its
subcommands with :func:`add_command`. A handler takes the parsed arguments and returns a
dict of results: printed as one JSON object on stdout with ``--json``, else as
``key: value`` lines. Progress and messages go to stderr.
"""

import argparse
import contextlib
import ctypes
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from glassfrac.cli.options import positive_int
from glassfrac.core import VERSION
from glassfrac.core.errors import CheckError, GlassfracError
from glassfrac.core.jsonable import to_jsonable
from glassfrac.core.threads import set_threads

COMMAND_MODULES = [
    "glassfrac.cli.generate",
    "glassfrac.cli.analysis",
    "glassfrac.cli.mechanics",
    "glassfrac.cli.loading",
    "glassfrac.cli.oxide",
    "glassfrac.cli.campaign",
    "glassfrac.cli.learn",
    "glassfrac.cli.cnn",
    "glassfrac.cli.listi",
    "glassfrac.cli.imaging",
    "glassfrac.cli.predict",
]


def add_command(subparsers, name: str, help: str, handler):
    """Add subcommand ``name`` with the common options (``--json``, ``--threads``)."""
    parser = subparsers.add_parser(name, help=help, description=help)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="threads for torch/BLAS (default: GLASSFRAC_THREADS or 1)")
    parser.set_defaults(handler=handler)
    return parser


def add_overwrite(parser):
    """Add ``--overwrite`` to a command that writes files (the rule: :mod:`glassfrac.core.outputs`)."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace output files that exist; into a folder not made by glassfrac, write beside "
                             "its files (none is deleted). Without it such outputs are refused before any work")
    return parser


class UsageError(Exception):
    """A command line that argparse refuses (raised by :class:`Parser` instead of exiting)."""

    def __init__(self, parser, message: str):
        self.parser, self.message = parser, message
        super().__init__(message)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` (and, through ``add_subparsers``, every subcommand's) whose errors raise
    :class:`UsageError`, so that :func:`main` reports them like any other bad input (JSON with ``--json``)."""

    def error(self, message):
        raise UsageError(self, message)


def command_name(parser, argv) -> tuple[str, argparse.ArgumentParser]:
    """The subcommand words at the start of ``argv`` (e.g. ``"load tension"``, ``"oxide softness train"``)
    and the parser of the last of them."""
    words = []
    for token in argv:
        choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if choices is None or token not in choices:
            break
        words.append(token)
        parser = choices[token]
    return " ".join(words), parser


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="glassfrac",
        description="Predict where and when disordered solids fail, from their structure.",
    )
    parser.add_argument("--version", action="version", version=f"glassfrac {VERSION}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv=None) -> int:
    """Run the command in ``argv``; returns the exit status: 0 done, 2 bad input (an
    :class:`~glassfrac.core.errors.InputError` or another :class:`GlassfracError`, or a file that cannot be
    opened), 1 an internal error (a bug: the traceback goes to a log file named in the message)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    command, leaf = command_name(parser, argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:  # a bad option or argument: nothing has run
        leaf.print_usage(sys.stderr)
        return _fail("--json" in argv, command, exc.message, 2)
    set_threads(args.threads)
    start = time.perf_counter()
    try:
        with _stdout_to_stderr(args.json):
            result = args.handler(args)
    except CheckError as exc:  # a check found problems: its report goes with the error
        return _fail(args.json, command, str(exc), 2, exc.report)
    except (GlassfracError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        return _fail(args.json, command, str(exc), 2)
    except Exception as exc:  # a bug, not the user's input: keep the traceback
        log = Path(tempfile.gettempdir()) / f"glassfrac-{command.replace(' ', '-')}-{os.getpid()}.log"
        log.write_text(traceback.format_exc())
        return _fail(args.json, command, f"internal error ({type(exc).__name__}: {exc}); traceback in {log}", 1)
    result = dict(result or {})
    result.setdefault("seconds", round(time.perf_counter() - start, 3))
    if args.json:
        print(json.dumps(to_jsonable(result)))
    else:
        for key, value in to_jsonable(result).items():
            print(f"{key}: {value}")
    return 0


def _fail(as_json: bool, command: str, message: str, status: int, report: dict | None = None) -> int:
    """Report ``message`` on stderr (and with ``report`` as one JSON object on stdout with ``--json``);
    returns ``status``."""
    if as_json:
        print(json.dumps(to_jsonable({**(report or {}), "error": message, "command": command})))
    elif report:
        for key, value in to_jsonable(report).items():
            print(f"{key}: {value}")
    print(f"{' '.join(['glassfrac', command]).strip()}: error: {message}", file=sys.stderr)
    return status


@contextlib.contextmanager
def _stdout_to_stderr(active: bool):
    """While a handler runs with ``--json``, send whatever it or a library writes to file descriptor 1
    (LAPACK's and LAMMPS's messages, stray prints) to stderr, so that stdout holds the one JSON object."""
    try:
        sys.stdout.flush()
        saved = os.dup(1) if active else None
    except (OSError, ValueError, AttributeError):  # no usable stdout: nothing to protect
        saved = None
    if saved is None:
        yield
        return
    os.dup2(2, 1)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)  # C stdio buffers (printf of BLAS/LAPACK)
        os.dup2(saved, 1)
        os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
