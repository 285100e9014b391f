"""Plain-JSON encoding of results that hold numpy scalars and arrays."""

import numpy as np


def to_jsonable(value):
    """Convert numpy scalars/arrays (and tuples) inside ``value`` to plain JSON types; non-finite
    floats become None."""
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
