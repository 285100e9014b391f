"""Manual corrections of detected Si (FC22: atoms added and removed by hand), as a CSV file.

Format (UTF-8 CSV; lines starting with ``#`` and blank lines are ignored)::

    action,x,y,unit
    add,41.5,17.25,px
    remove,80.1,12.9,px
    add,30.2,11.0,A

- ``action``: ``add`` (a Si at (x, y)) or ``remove`` (the detection nearest to (x, y)).
- ``x``, ``y``: pixel coordinates of the image (``x`` = column, ``y`` = row, pixel centres at
  integers, as the overlay figure shows them), or Å when ``unit`` is ``A`` (or ``Å``): Å are
  ``pixel_size · (pixel + 0.5)`` from the image corner, and need a pixel size that is given
  (not estimated from the detections, which would make the file depend on the detector).
- ``unit``: optional column, ``px`` by default.

Rows are applied one after another in file order to the current list (so the result is the
same on every run): ``add`` appends the point as it is (no refinement); ``remove`` deletes the
nearest current point if it lies within ``tolerance`` pixels (default 0.5 Si–Si), else the
whole file is refused with an error naming the line.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_open

ACTIONS = ("add", "remove")
UNITS = {"px": "px", "": "px", "a": "A", "å": "A", "angstrom": "A"}


@dataclass(frozen=True)
class Correction:
    """One edit: ``action`` "add" | "remove", ``x``, ``y`` in ``unit`` ("px" or "A"); ``line`` in its file."""

    action: str
    x: float
    y: float
    unit: str = "px"
    line: int | None = None


@dataclass(frozen=True)
class Corrected:
    """Positions (N, 2) px after the edits; ``added`` indices into them; ``removed`` (K, 2)
    the positions taken out, px."""

    positions: np.ndarray
    added: np.ndarray
    removed: np.ndarray


def read_corrections(path) -> list[Correction]:
    """Parse a corrections CSV (module docstring); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError("corrections file not found", path)
    out = []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [(n, row) for n, row in enumerate(csv.reader(handle), start=1)
                if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")]
    if not rows:
        return out
    header = [c.strip().lower() for c in rows[0][1]]
    if header[:3] != ["action", "x", "y"] or len(header) > 4 or (len(header) == 4 and header[3] != "unit"):
        raise InputError("the first row must be the header 'action,x,y' or 'action,x,y,unit'", path, rows[0][0])
    for n, row in rows[1:]:
        cells = [c.strip() for c in row]
        if len(cells) not in (3, len(header)):
            raise InputError(f"expected {len(header)} columns, got {len(cells)}", path, n)
        action = cells[0].lower()
        if action not in ACTIONS:
            raise InputError(f"action must be 'add' or 'remove', got {cells[0]!r}", path, n)
        try:
            x, y = float(cells[1]), float(cells[2])
        except ValueError:
            raise InputError(f"x and y must be numbers, got {cells[1]!r}, {cells[2]!r}", path, n) from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise InputError("x and y must be finite", path, n)
        unit = UNITS.get(cells[3].lower() if len(cells) == 4 else "")
        if unit is None:
            raise InputError(f"unit must be 'px' or 'A', got {cells[3]!r}", path, n)
        out.append(Correction(action, x, y, unit, n))
    return out


def write_corrections(path, corrections) -> None:
    """Write ``corrections`` as a CSV that :func:`read_corrections` reads back (atomically)."""
    with atomic_open(path, "w") as handle:
        handle.write("# glassfrac image corrections: applied in file order (add | remove), x = column, y = row\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["action", "x", "y", "unit"])
        for c in corrections:
            if c.action not in ACTIONS or c.unit not in ("px", "A"):
                raise InputError(f"bad correction {c}")
            writer.writerow([c.action, repr(float(c.x)), repr(float(c.y)), c.unit])


def apply_corrections(positions, corrections, tolerance: float, pixel_map=None, path=None) -> Corrected:
    """Apply ``corrections`` in order to ``positions`` (N, 2) px.

    ``tolerance``: largest distance (px) from a ``remove`` row to the point it removes;
    ``pixel_map``: a :class:`~glassfrac.learn.render.PixelMap` for rows in Å (None: such
    rows are refused); ``path``: the file, for error messages.
    """
    points = [tuple(p) for p in np.asarray(positions, float).reshape(-1, 2)]
    added = [False] * len(points)
    removed = []
    for c in corrections:
        xy = np.array([c.x, c.y], float)
        if c.unit == "A":
            if pixel_map is None:
                raise InputError("a row in Å needs a given pixel size (--pixel-size or one stored in the image)",
                                 path, c.line)
            xy = pixel_map.to_pixels(xy[None])[0]
        if c.action == "add":
            points.append((float(xy[0]), float(xy[1])))
            added.append(True)
            continue
        if not points:
            raise InputError("remove: no point left to remove", path, c.line)
        dist = np.hypot(*(np.asarray(points) - xy).T)
        k = int(np.argmin(dist))
        if dist[k] > tolerance:
            raise InputError(f"remove: no detection within {tolerance:.2f} px of ({xy[0]:.2f}, {xy[1]:.2f}) px "
                             f"(nearest at {dist[k]:.2f} px)", path, c.line)
        removed.append(points.pop(k))
        added.pop(k)
    return Corrected(np.array(points, float).reshape(-1, 2), np.flatnonzero(added),
                     np.array(removed, float).reshape(-1, 2))
