"""The ``glassfrac`` command: one subcommand per stage, each with ``--json``.

Each stage module listed in ``COMMAND_MODULES`` has ``register(subparsers)``, which adds its
subcommands with :func:`add_command`. A handler takes the parsed arguments and returns a
dict of results: printed as one JSON object on stdout with ``--json``, else as
``key: value`` lines. Progress and messages go to stderr.
"""

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from glassfrac.core import VERSION
from glassfrac.core.errors import GlassfracError
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
]


def add_command(subparsers, name: str, help: str, handler):
    """Add subcommand ``name`` with the common options (``--json``, ``--threads``)."""
    parser = subparsers.add_parser(name, help=help, description=help)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for torch/BLAS (default: GLASSFRAC_THREADS or 1)")
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    parser = build_parser()
    args = parser.parse_args(argv)
    set_threads(args.threads)
    start = time.perf_counter()
    try:
        result = args.handler(args)
    except (GlassfracError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        return _fail(args, str(exc), 2)
    except Exception as exc:  # a bug, not the user's input: keep the traceback
        log = Path(tempfile.gettempdir()) / f"glassfrac-{args.command}-{os.getpid()}.log"
        log.write_text(traceback.format_exc())
        return _fail(args, f"internal error ({type(exc).__name__}: {exc}); traceback in {log}", 1)
    result = dict(result or {})
    result.setdefault("seconds", round(time.perf_counter() - start, 3))
    if args.json:
        print(json.dumps(to_jsonable(result)))
    else:
        for key, value in to_jsonable(result).items():
            print(f"{key}: {value}")
    return 0


def _fail(args, message: str, status: int) -> int:
    """Report ``message`` on stderr (and as JSON on stdout with ``--json``); returns ``status``."""
    if args.json:
        print(json.dumps({"error": message, "command": args.command}))
    print(f"glassfrac {args.command}: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
