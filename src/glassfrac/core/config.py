"""TOML configuration files: read them with errors that name the file and line, and read their
tables with typed getters whose errors name the file and the dotted key (``samples[1].mu2``)."""

import difflib
import math
from pathlib import Path

from glassfrac.core.errors import InputError

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def parse_toml(text: str, source: str = "<config>") -> dict:
    """The tables of TOML ``text``; a syntax error becomes an InputError naming ``source``, the
    line and the column (tomllib's message: "... (at line 3, column 5)")."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", source) from None


def read_toml(path, what: str = "config file") -> tuple[dict, str]:
    """``(tables, text)`` of the TOML file ``path``. A missing file, a folder, a file that
    cannot be read or is not UTF-8 text is an InputError naming ``path`` and ``what``."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} is a folder, expected a TOML file", path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found", path) from None
    except OSError as exc:  # permission denied, a device, an I/O error
        raise InputError(f"cannot read the {what}: {exc.strerror or exc}", path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                         f"expected a TOML file", path) from None
    return parse_toml(text, str(path)), text


class TomlReader:
    """Typed access to the tables of one TOML source; every error names the source and the
    dotted key and says what was expected."""

    def __init__(self, source: str):
        self.source = str(source)

    def fail(self, key: str, expected: str):
        raise InputError(f"key '{key}': expected {expected}", self.source)

    def keys(self, table: dict, where: str, allowed) -> None:
        """Refuse keys of ``table`` (found at ``where``) that are not in ``allowed``."""
        for key in table:
            if key not in allowed:
                dotted = f"{where}.{key}" if where else key
                close = difflib.get_close_matches(str(key), list(allowed), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise InputError(f"unknown key '{dotted}'{hint} (expected one of {sorted(allowed)})", self.source)

    def table(self, raw: dict, key: str, required: bool = False, prefix: str = "") -> dict:
        """The sub-table ``key`` of ``raw`` ({} when absent and not ``required``)."""
        dotted = f"{prefix}.{key}" if prefix else key
        if key not in raw:
            if required:
                self.fail(dotted, "a table")
            return {}
        if not isinstance(raw[key], dict):
            self.fail(dotted, f"a table, got {raw[key]!r}")
        return raw[key]

    def value(self, table: dict, dotted: str, kind, default=None, required: bool = False,
              lo=None, hi=None):
        """The value at the last part of ``dotted`` in ``table``, of type ``kind`` (an int is
        accepted as a float, a bool never as a number), within [``lo``, ``hi``] if given."""
        key = dotted.rsplit(".", 1)[-1]
        if key not in table:
            if required:
                self.fail(dotted, f"a value ({kind.__name__})")
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
            self.fail(dotted, f"{kind.__name__}, got {value!r}")
        if kind is float and not math.isfinite(value):
            self.fail(dotted, f"a finite float, got {value}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = f"between {lo} and {hi}" if lo is not None and hi is not None else \
                (f">= {lo}" if lo is not None else f"<= {hi}")
            self.fail(dotted, f"a {kind.__name__} {span}, got {value}")
        return value

    def integer(self, table, dotted, default=None, required=False, lo=None, hi=None) -> int | None:
        return self.value(table, dotted, int, default, required, lo, hi)

    def number(self, table, dotted, default=None, required=False, lo=None, hi=None) -> float | None:
        return self.value(table, dotted, float, default, required, lo, hi)

    def string(self, table, dotted, default=None, required=False) -> str | None:
        return self.value(table, dotted, str, default, required)

    def boolean(self, table, dotted, default=None, required=False) -> bool | None:
        return self.value(table, dotted, bool, default, required)

    def array(self, table, dotted, default=None, required=False) -> list | None:
        return self.value(table, dotted, list, default, required)

    def positive(self, table, dotted, kind, default, required=False):
        """A value of ``kind`` that must be > 0."""
        value = self.value(table, dotted, kind, default, required)
        if value is not None and value <= 0:
            self.fail(dotted, f"a positive {kind.__name__}, got {value}")
        return value

    def choice(self, table, dotted, choices, default, required=False):
        """A string among ``choices``."""
        value = self.value(table, dotted, str, default, required)
        if value not in choices:
            self.fail(dotted, f"one of {list(choices)}, got {value!r}")
        return value
