"""Shared helpers of the imaging tests: truth positions of rendered periodic samples, scoring."""

import numpy as np

from glassfrac import Box, Structure
from glassfrac.imaging.evaluate import match_points

D_SISI = 3.05
LOW_DOSE = {"photons": {"Si": 200, "O": 25}, "blur": 0.4}
"""Low-dose images: a quarter of FC22's photons and a 0.4 Å point-spread function."""


def periodic_si(structure) -> tuple[np.ndarray, np.ndarray]:
    """Si positions wrapped into the cell and their 8 periodic copies (Å), with Si indices."""
    si = np.flatnonzero(structure.species == "Si")
    xy = structure.box.wrap(structure.positions[si])[:, :2]
    lx, ly = np.diag(structure.box.cell)[:2]
    shifts = [(dx, dy) for dx in (-lx, 0.0, lx) for dy in (-ly, 0.0, ly)]
    return np.concatenate([xy + s for s in shifts]), np.tile(si, len(shifts))


def score(structure, rendered, positions_px, margin=0.5 * D_SISI):
    """Match detections (px) to the true Si inside the image less ``margin`` Å (evaluate.py rule)."""
    pm = rendered.pixel_map
    x0, x1, y0, y1 = pm.extent

    def region(p):
        return (p[:, 0] > x0 + margin) & (p[:, 0] < x1 - margin) & (p[:, 1] > y0 + margin) & (p[:, 1] < y1 - margin)

    truth, index = periodic_si(structure)
    return match_points(truth, pm.to_angstrom(positions_px), 0.5 * D_SISI, region), index


def honeycomb_si(nx, ny, d=D_SISI) -> Structure:
    """Periodic honeycomb of Si (4 nx ny atoms, rectangular cell), Si–Si distance d (Å)."""
    a = d * np.sqrt(3)
    basis = np.array([[0, 0], [a / 2, d / 2], [a / 2, 1.5 * d], [0, 2 * d]])
    shifts = np.array([[ix * a, iy * 3 * d] for ix in range(nx) for iy in range(ny)])
    positions = (basis[None] + shifts[:, None]).reshape(-1, 2) + [a / 4, d / 4]
    return Structure(positions, ["Si"] * len(positions), Box([nx * a, ny * 3 * d]))
