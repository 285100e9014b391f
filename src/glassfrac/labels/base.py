"""Typed labels on disk, one way for every label type: one ``.npz`` file of named arrays plus the JSON
record of the scalars under the key ``meta``.

A label type derives from :class:`LabelSet`. It says what goes into the JSON record
(:meth:`~LabelSet.to_dict`) and into the named arrays (:meth:`~LabelSet.arrays`), and how it is
rebuilt from both (:meth:`~LabelSet.from_saved`). :meth:`LabelSet.save` writes the file atomically;
:meth:`LabelSet.load` reads it with ``allow_pickle=False`` (no code is executed) and names the file
in any error. Non-finite floats of the record are written as null.
"""

import json
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_open
from glassfrac.core.jsonable import to_jsonable

RECORD_KEY = "meta"
"""The entry of a label file that holds the JSON record."""


class LabelSet(ABC):
    """Base of the label types: a JSON record + named arrays, saved and loaded together as one ``.npz``."""

    @abstractmethod
    def to_dict(self) -> dict:
        """The JSON record (plain scalars, lists and dicts)."""

    def arrays(self) -> dict:
        """Named arrays saved beside the record (none by default)."""
        return {}

    @classmethod
    @abstractmethod
    def from_saved(cls, record: dict, arrays: dict):
        """The labels from a record of :meth:`to_dict` and the arrays of :meth:`arrays`."""

    def save(self, path) -> dict:
        """Write the labels to ``path`` (``.npz``, atomically); returns the JSON record."""
        record = to_jsonable(self.to_dict())
        arrays = {name: np.asarray(value) for name, value in self.arrays().items()}
        with atomic_open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays, **{RECORD_KEY: json.dumps(record)})
        return record

    @classmethod
    def load(cls, path):
        """The labels saved by :meth:`save` in ``path``."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files if name != RECORD_KEY}
                record = json.loads(str(data[RECORD_KEY]))
        except FileNotFoundError:
            raise InputError(f"no such label file ({cls.__name__})", path) from None
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"not a glassfrac label file (.npz with a JSON '{RECORD_KEY}' entry) for "
                             f"{cls.__name__}: {exc}", path) from None
        try:
            return cls.from_saved(record, arrays)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{cls.__name__} file without the expected content: {exc!r}", path) from None
