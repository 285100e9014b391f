"""The ``glassfrac`` command: one subcommand per stage, each with ``--json``.

Each stage module listed in ``COMMAND_MODULES`` has ``register(subparsers)``, which adds its
subcommands with :func:`add_command`. A handler takes the parsed arguments and returns a
dict of results: printed as one JSON object on stdout with ``--json``, else as
``key: value`` lines. Progress and messages go to stderr.
"""

import argparse
import importlib
import json
import sys
import time

import numpy as np

from glassfrac.errors import GlassfracError

COMMAND_MODULES = [
    "glassfrac.generate.commands",
    "glassfrac.analysis.commands",
    "glassfrac.mechanics.commands",
    "glassfrac.mechanics.loading_commands",
    "glassfrac.oxides.commands",
    "glassfrac.campaign.commands",
    "glassfrac.learn.commands",
    "glassfrac.learn.cnn_commands",
    "glassfrac.learn.listi_commands",
    "glassfrac.imaging.commands",
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
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def _version() -> str:
    from glassfrac import __version__

    return f"glassfrac {__version__}"


def to_jsonable(value):
    """Convert numpy scalars/arrays (and tuples) inside ``value`` to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from glassfrac.threads import set_threads

    set_threads(args.threads)
    start = time.perf_counter()
    try:
        result = args.handler(args)
    except (GlassfracError, FileNotFoundError, ValueError) as exc:
        message = str(exc)
        if args.json:
            print(json.dumps({"error": message, "command": args.command}))
        print(f"glassfrac {args.command}: error: {message}", file=sys.stderr)
        return 2
    result = dict(result or {})
    result.setdefault("seconds", round(time.perf_counter() - start, 3))
    if args.json:
        print(json.dumps(to_jsonable(result)))
    else:
        for key, value in to_jsonable(result).items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
