"""Model and checkpoint files: safetensors with a JSON header entry ``glassfrac``.

Every predictor of :mod:`glassfrac.learn` (image models, LISTI models, the softness SVM) and
the training checkpoints are written by :func:`write` and read by :func:`read`. The tensors are
the weights or arrays (no code, nothing pickled); the header entry ``glassfrac`` is a JSON object
whose ``format`` tag names the kind of file (e.g. ``glassfrac-image-model-1``). Reading executes
nothing: a pickle (``torch.save``), any other foreign file, a safetensors file without the entry
or one with another format tag is refused with an :class:`~glassfrac.core.errors.InputError`
naming the file. Files are written to a temporary name and renamed when complete.
"""

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from glassfrac.core.config import TomlReader
from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_path
from glassfrac.core.jsonable import to_jsonable
from glassfrac.core.schema import Key, Schema, signature_schema

KEY = "glassfrac"
"""The safetensors header entry holding the JSON metadata."""


def write(path, tensors: dict, meta: dict) -> None:
    """Write ``tensors`` (name → torch tensor or numpy array, copied as they are) and ``meta``
    (JSON-able after :func:`~glassfrac.core.jsonable.to_jsonable`, with a ``format`` tag) to
    ``path``, atomically."""
    if "format" not in meta:
        raise InputError("model file metadata needs a 'format' tag")
    data = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v.detach().contiguous().clone()
            for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(data, str(tmp), metadata={KEY: json.dumps(to_jsonable(meta))})


def read(path, expected: str, what: str = "model", schema: Schema | None = None) -> tuple[dict, dict]:
    """(metadata, tensors) of a file written by :func:`write` with format tag ``expected``;
    ``what`` names the kind of file in the error of a foreign file. ``schema``: the metadata's
    keys (:mod:`glassfrac.core.schema`; other keys pass), checked before anything is built."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found", path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})[KEY])
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a foreign file or a pickle
        raise InputError(f"not a glassfrac {what} file (safetensors with a '{KEY}' entry): {exc}", path) from exc
    if not isinstance(meta, dict) or meta.get("format") != expected:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise InputError(f"unknown file format {found!r} (expected {expected})", path)
    if schema is not None:
        meta = schema.read(TomlReader(path), meta, "metadata", extra=tuple(set(meta) - set(schema.names)), fill=True)
    return meta, tensors


def build(path, cls, values, where: str, *keys: Key):
    """``cls(**values)`` for the metadata entry ``where`` of the file ``path``, after checking
    ``values`` against the parameters of ``cls`` (:func:`~glassfrac.core.schema.signature_schema`;
    ``keys`` add ranges); a rule ``cls`` enforces itself is reported with the file and entry."""
    checked = signature_schema(cls, *keys).read(TomlReader(path), values, where)
    try:
        return cls(**checked)
    except InputError as exc:
        raise InputError(f"key '{where}': {exc}", path) from None


def check_tensors(path, tensors: dict, expected: dict) -> None:
    """Refuse ``tensors`` read from ``path`` unless their names and shapes are those of
    ``expected`` (name → tensor or shape, e.g. a network's ``state_dict()``)."""
    shapes = {k: tuple(getattr(v, "shape", v)) for k, v in expected.items()}
    missing = sorted(set(shapes) - set(tensors))
    extra = sorted(set(tensors) - set(shapes))
    wrong = sorted(f"{k} {tuple(tensors[k].shape)} (expected {shapes[k]})" for k in set(shapes) & set(tensors)
                   if tuple(tensors[k].shape) != shapes[k])
    problems = [f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                for label, names in (("missing tensors", missing), ("unexpected tensors", extra),
                                     ("tensors of the wrong shape", wrong)) if names]
    if problems:
        raise InputError("the weights do not fit the model the metadata describes (written by another "
                         "version?): " + "; ".join(problems), path)
