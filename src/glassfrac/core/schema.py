"""Declarative schemas: one description per key of a config table (type, range or choices,
default, unit, help), validated the same way for every config (campaign, oxide) and for the
JSON metadata of model files.

A :class:`Schema` is a tuple of :class:`Key` plus cross-key rules. :meth:`Schema.read` checks a
table read from TOML (or JSON) before any work starts: unknown keys (with the closest known
name suggested), missing required keys, wrong types, values out of range, then the rules. Every
error is an :class:`~glassfrac.core.errors.InputError` naming the source file and the key's
dotted name (``tests.tension.step``) and saying what was expected.
"""

import copy
import difflib
import inspect
import math
from dataclasses import MISSING, dataclass, fields

from glassfrac.core.config import TomlReader
from glassfrac.core.errors import InputError


class _Required:
    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()
"""Default of a key that must be given."""

_NAMES = {int: "int", float: "float", str: "string", bool: "boolean", list: "list", dict: "table", object: "value",
          type(None): "null"}


@dataclass(frozen=True)
class Key:
    """One key of a table.

    ``kind``: int, float, str, bool, list or dict (or a tuple of them: any of these);
    ``items``: the type of a list's elements or a table's values (int, float, str, bool);
    ``lo``/``hi``: inclusive bounds, ``positive``: > 0 (for a list or table, of every element);
    ``choices``: allowed values (of every element); ``length``: exact length of a list;
    ``nonempty``: a list or table needs an element; ``finite``: refuse inf (NaN is always
    refused); ``check``: ``value -> problem text or None`` for anything else (the whole
    value, after the element checks); ``unit`` and ``help`` describe the key (messages and
    :meth:`Schema.describe`)."""

    name: str
    kind: type | tuple
    default: object = REQUIRED
    help: str = ""
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    positive: bool = False
    choices: tuple | None = None
    items: type | None = None
    length: int | None = None
    nonempty: bool = False
    finite: bool = True
    check: object = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def expected(self) -> str:
        """What the key takes, in words (``a float > 0 (Å)``)."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        text = " or ".join(_NAMES.get(k, k.__name__) for k in kinds)
        if self.positive and self.hi is None and kinds[0] not in (list, dict):
            text = f"positive {text}"
        if self.items is not None:
            text += f" of {'positive ' if self.positive else ''}{_NAMES[self.items]}s"
        if self.length is not None:
            text += f" of length {self.length}"
        if self.choices is not None:
            text += f" among {list(self.choices)}"
        span = self._span()
        if span:
            text += f" {span}"
        article = "an" if text[0] in "aeiou" else "a"
        return f"{article} {text}" + (f" ({self.unit})" if self.unit else "")

    def _span(self) -> str:
        if self.positive:
            return "" if self.hi is None else f"in (0, {self.hi}]"
        if self.lo is not None and self.hi is not None:
            return f"between {self.lo} and {self.hi}"
        if self.lo is not None:
            return f">= {self.lo}"
        return "" if self.hi is None else f"<= {self.hi}"

    def validate(self, value, where: str, reader: TomlReader):
        """``value`` checked (an int given for a float becomes a float); the first problem
        raises an InputError naming ``where``."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        given, value = value, _coerce(value, kinds)
        if value is _BAD:
            reader.fail(where, f"{self.expected()}, got {_show(given)}")
        if value is None:
            return None
        if isinstance(value, list):
            if self.length is not None and len(value) != self.length:
                reader.fail(where, f"{self.expected()}, got {len(value)} elements: {_show(value)}")
            if self.nonempty and not value:
                reader.fail(where, f"{self.expected()}, got an empty list")
            value = [self._scalar(v, f"{where}[{k}]", reader) if self.items else v for k, v in enumerate(value)]
        elif isinstance(value, dict):
            if self.nonempty and not value:
                reader.fail(where, f"{self.expected()}, got an empty table")
            value = {k: self._scalar(v, f"{where}.{k}", reader) if self.items else v for k, v in value.items()}
        else:
            value = self._scalar(value, where, reader, self.kind)
        problem = None if self.check is None else self.check(value)
        if problem:
            reader.fail(where, f"{problem}, got {_show(value)}")
        return value

    def _scalar(self, value, where: str, reader: TomlReader, kind=None):
        kind = self.items if kind is None else kind
        kinds = kind if isinstance(kind, tuple) else (kind,)
        given, value = value, _coerce(value, kinds)
        if value is _BAD or isinstance(value, (list, dict)) and not {list, dict} & set(kinds):
            reader.fail(where, f"{self.expected()}, got {_show(given)}")
        if isinstance(value, float) and (math.isnan(value) or (self.finite and math.isinf(value))):
            reader.fail(where, f"a finite number: {self.expected()}, got {value}")
        if self.choices is not None and value not in self.choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            reader.fail(where, f"one of {list(self.choices)}, got {_show(value)}{hint}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low = (self.positive and value <= 0) or (self.lo is not None and value < self.lo)
            if low or (self.hi is not None and value > self.hi):
                reader.fail(where, f"{self.expected()}, got {value}")
        return value


_BAD = object()


def _coerce(value, kinds):
    """``value`` if it is of one of ``kinds`` (an int counts as a float, a bool never as a
    number; ``type(None)``: null allowed), else ``_BAD``."""
    for kind in kinds:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool)):
            return value
    return _BAD


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Schema:
    """The keys of one table and its cross-key ``rules``: each ``values -> (key, problem) or
    None``, given the table's values with defaults filled in."""

    keys: tuple
    rules: tuple = ()

    @property
    def names(self) -> tuple:
        return tuple(k.name for k in self.keys)

    def defaults(self) -> dict:
        """Default values of the keys that have one."""
        return {k.name: copy.copy(k.default) for k in self.keys if not k.required}

    def read(self, reader: TomlReader, table, where: str = "", extra=(), base: dict | None = None,
             fill: bool = False) -> dict:
        """The validated values of ``table`` (a dict found at dotted name ``where``).

        ``extra``: further allowed key names, returned unchecked; ``base``: the values the
        rules see for keys the table leaves out (default: the keys' defaults); ``fill``:
        return defaults for the keys not given, too."""
        if not isinstance(table, dict):
            if not where:
                raise InputError(f"expected a table of keys at the top level, got {_show(table)}", reader.source)
            reader.fail(where, f"a table, got {_show(table)}")
        allowed = (*self.names, *extra)
        for name in table:
            if name not in allowed:
                dotted = f"{where}.{name}" if where else name
                close = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise InputError(f"unknown key '{dotted}'{hint} (known: {', '.join(sorted(allowed))})",
                                 reader.source)
        out = {name: table[name] for name in extra if name in table}
        for key in self.keys:
            dotted = f"{where}.{key.name}" if where else key.name
            if key.name in table:
                out[key.name] = key.validate(table[key.name], dotted, reader)
            elif key.required:
                reader.fail(dotted, f"{key.expected()} (required{': ' + key.help if key.help else ''})")
        seen = {**self.defaults(), **(base or {}), **out}
        for rule in self.rules:
            problem = rule(seen)
            if problem:
                name, text = problem
                reader.fail(f"{where}.{name}" if where else name, text)
        return {**self.defaults(), **out} if fill else out

    def describe(self) -> list:
        """One row per key: name, expected value, default, unit, help (for documentation)."""
        return [{"key": k.name, "expected": k.expected(), "default": None if k.required else k.default,
                 "unit": k.unit, "help": k.help} for k in self.keys]

    def covers(self, cls) -> list:
        """Problems of this schema as a description of dataclass ``cls``: fields without a key,
        keys without a field, defaults that differ (empty when the schema matches)."""
        out = []
        known = {f.name: f for f in fields(cls)}
        for key in self.keys:
            if key.name not in known:
                out.append(f"{key.name}: no such field of {cls.__name__}")
                continue
            f = known[key.name]
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if not key.required and _plain(default) != _plain(key.default):
                out.append(f"{key.name}: default {key.default!r}, field default {default!r}")
        out += [f"{name}: field without a key" for name in known if name not in self.names]
        return out


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def signature_schema(func, *keys: Key) -> Schema:
    """A schema of the keyword parameters of ``func`` (a class: of its constructor): a
    parameter without a default is required; the type of a default fixes the key's type (a
    tuple or list default: a list of its elements' type; None: any value); ``keys`` replace
    the derived keys of the same name (to add ranges)."""
    given = {k.name: k for k in keys}
    out = []
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in given:
            out.append(given[name])
            continue
        default = REQUIRED if param.default is param.empty else param.default
        kind, items = object, None
        if isinstance(default, (bool, int, float, str, dict)):
            kind = type(default)
        elif isinstance(default, (tuple, list)):
            kind = list
            types = {type(v) for v in default}
            items = types.pop() if len(types) == 1 and types <= {bool, int, float, str} else None
        out.append(Key(name, kind, list(default) if isinstance(default, tuple) else default, items=items))
    return Schema(tuple(out))
