"""From detected Si positions to a bonded 2D silica structure (FC22, LISTI25; protocols.md §9).

Steps of :func:`build_structure`:

1. pixels → Å with the pixel size (``PixelMap`` convention, image corner at 0);
2. Si–Si bonds by the Voronoi rule of FC22 (:func:`~glassfrac.analysis.voronoi_bonds`, the
   three widest sides, mutual choices only) in an open (non-periodic) box, less the bonds
   longer than ``max_bond`` × their median length (1.5: Si on the open edge otherwise pick
   partners across the boundary, up to ten bond lengths away, and would get an O halfway
   between; relaxed 2D silica has Si–Si within ±10 % of the median); then, shortest first,
   bonds between Si that both still have fewer than 3 and are closer than ``REPAIR`` (1.2) ×
   the median (the mutual-choice rule misses a few true bonds of distorted rings: 7 interior
   Si of a relaxed 512-Si Yukawa monolayer imaged without any detection error); Si with fewer than
   3 bonds are reported, split into edge Si (within 2 median bond lengths of the convex
   hull of the detections, or with an unbounded Voronoi cell: the image or ROI cut off their
   partners or, through wrong edge bonds, their neighbours' partners; expected) and interior
   ones (a missed or spurious detection nearby, worth a correction). Si left without any
   bond (``isolated``: edge detections whose partners the image cut off) are not part of
   the structure: a bare Si is no part of the network, and in the pair potential it would be
   pushed across (or overlap) the network during relaxation;
3. rescaled so that the mean Si–Si bond is ``si_si`` = 3.05 Å (LISTI25; ``rescale=False``
   keeps the pixel size). The mean is over bonds between two interior 3-coordinated Si, since
   edge atoms pick long spurious sides across the open boundary;
4. an O at the midpoint of every Si–Si bond, with Si–O bonds;
5. optionally relaxed with free boundaries (Yukawa 2D silica potential, L-BFGS to ``fmax``);
6. rings by :class:`~glassfrac.analysis.rings.RingAnalysis` on the Si–O bonds;
7. per-atom arrays: ``frozen`` (True outside a circle of ``frozen_radius`` Å around
   ``centre``, default the mean Si position; all False without a radius), for loading with
   the outside held (LISTI25), ``pixel_xy`` (position in image pixels before relaxation)
   and ``detection`` (index of each Si among the detections; −1 for O).

Trained predictors (softness SVM, ResNet, LISTI) are applied to the result with
:func:`apply_predictors`; the adapters in :mod:`glassfrac.imaging.predict` wrap the models of
:mod:`glassfrac.learn`. Image pixel coordinates of a final position ``xy`` (Å): ``xy /
angstrom_per_pixel − 0.5`` (:meth:`BuiltStructure.pixel_map`).
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError, cKDTree

from glassfrac.analysis.ring_statistics import ring_size_variance
from glassfrac.analysis.rings import RingAnalysis
from glassfrac.analysis.voronoi_bonds import voronoi_bonds
from glassfrac.core.errors import InputError
from glassfrac.imaging.detect import SI_SI
from glassfrac.learn.render import PixelMap
from glassfrac.mechanics.relax import relax
from glassfrac.potentials import get_potential
from glassfrac.structure.box import Box
from glassfrac.structure.structure import Structure

REPAIR = 1.2
"""Si pairs closer than this multiple of the median bond that both have fewer than 3 Voronoi
bonds are bonded (step 2 of :func:`build_structure`)."""


@dataclass(frozen=True)
class BuiltStructure:
    """Result of :func:`build_structure`.

    ``structure``: 2D Si + O (the bonded Si first, in detection order), open box, Si–O bonds,
    arrays ``frozen``, ``pixel_xy`` and ``detection``; ``si_bonds`` (E, 2) Si–Si bonds
    (detection indices, O ``k`` bridges bond ``k``); ``coordination`` (N_det,) Si–Si bonds per
    detected Si (0: isolated, not in the structure); ``undercoordinated`` detection indices
    with fewer than 3 bonds, split into ``edge`` and ``interior`` (module docstring);
    ``angstrom_per_pixel`` the final scale; ``scale`` the rescaling factor applied to the
    pixel size; ``rings`` the computed :class:`RingAnalysis`; ``relax`` the relaxer's stats
    (None if not relaxed).
    """

    structure: Structure
    si_bonds: np.ndarray
    coordination: np.ndarray
    undercoordinated: np.ndarray
    edge: np.ndarray
    interior: np.ndarray
    angstrom_per_pixel: float
    scale: float
    rings: RingAnalysis
    relax: dict | None

    def pixel_map(self, shape=(0, 0)) -> PixelMap:
        """Final Å ↔ pixels of the original image (``shape`` (rows, cols) of the image)."""
        return PixelMap(self.angstrom_per_pixel, (0.0, 0.0), tuple(shape))

    def summary(self) -> dict:
        """JSON-friendly figures: Si ``atoms`` (detected; the structure holds those not
        ``isolated``), Si–Si ``bonds``; ``rings``, ``ring_sizes`` and
        ``mu2`` over the rings not flagged as boundary rings (rings cut or closed by the open
        edge would distort them), ``rings_all`` every ring; undercoordinated counts; scale."""
        r = self.rings
        interior = ~np.asarray(r.boundary_rings)
        sizes = np.asarray(r.ring_sizes)[interior]
        values, counts = np.unique(sizes, return_counts=True)
        return {
            "atoms": int(len(self.coordination)),
            "n_o": int(len(self.si_bonds)),
            "bonds": int(len(self.si_bonds)),
            "rings": int(interior.sum()),
            "rings_all": int(r.n_rings),
            "ring_sizes": {int(v): int(c) for v, c in zip(values, counts, strict=True)},
            "mu2": ring_size_variance(sizes) if len(sizes) else None,
            "undercoordinated": int(len(self.undercoordinated)),
            "undercoordinated_interior": int(len(self.interior)),
            "isolated": int(np.count_nonzero(self.coordination == 0)),
            "angstrom_per_pixel": self.angstrom_per_pixel,
            "scale": self.scale,
            "frozen": int(np.count_nonzero(self.structure.arrays["frozen"])),
            "relaxed": self.relax is not None,
        }


def build_structure(positions_px, pixel_size: float, si_si: float = SI_SI, rescale: bool = True,
                    relax: bool = False, fmax: float = 1e-3, frozen_radius: float | None = None,
                    centre=None, potential=None, max_bond: float = 1.5) -> BuiltStructure:
    """A bonded Si + O structure from Si pixel positions (module docstring).

    ``positions_px`` (N, 2) px; ``pixel_size`` Å/px; ``si_si`` target mean Si–Si bond, Å;
    ``max_bond`` longest kept Si–Si bond as a multiple of the median Voronoi bond;
    ``relax``: relax with free boundaries to ``fmax`` eV/Å with ``potential`` (default
    ``yukawa2d``); ``frozen_radius`` Å and ``centre`` (2,) Å (final coordinates) of the free
    region.
    """
    xy_px = np.asarray(positions_px, float).reshape(-1, 2)
    if len(xy_px) < 3:
        raise InputError(f"need at least 3 Si to build a network, got {len(xy_px)}")
    if pixel_size <= 0:
        raise InputError(f"pixel size must be positive, got {pixel_size}")
    if max_bond <= 1:
        raise InputError(f"max_bond must exceed 1 (a multiple of the median bond), got {max_bond}")
    xy = PixelMap(float(pixel_size)).to_angstrom(xy_px)
    vb = voronoi_bonds(xy, _open_box(xy, si_si), sides=3)
    if len(vb.bonds) == 0:
        raise InputError("no Si–Si bonds found by the Voronoi rule")
    length = np.linalg.norm(xy[vb.bonds[:, 1]] - xy[vb.bonds[:, 0]], axis=1)
    median = float(np.median(length))
    n = len(xy)
    si_bonds = _complete(xy, vb.bonds[length <= max_bond * median], REPAIR * median)
    i, j = si_bonds.T
    coordination = np.bincount(si_bonds.ravel(), minlength=n)
    edge = (hull_depth(xy, xy) < 2.0 * median) | vb.open_cell
    inner = (coordination[i] == 3) & (coordination[j] == 3) & ~edge[i] & ~edge[j]
    if not inner.any():
        inner = np.ones(len(i), bool)
    mean = float(np.linalg.norm(xy[j] - xy[i], axis=1)[inner].mean())
    scale = si_si / mean if rescale else 1.0
    keep = np.flatnonzero(coordination > 0)
    number = np.full(n, -1)
    number[keep] = np.arange(len(keep))
    k = len(keep)
    si = xy[keep] * scale
    o = 0.5 * (si[number[i]] + si[number[j]])
    m = len(o)
    positions = np.concatenate([si, o])
    o_index = k + np.arange(m)
    bonds = np.concatenate([np.column_stack([number[i], o_index]), np.column_stack([number[j], o_index])])
    structure = Structure(positions, ["Si"] * k + ["O"] * m, _open_box(positions, si_si), bonds=bonds,
                          arrays={"pixel_xy": np.concatenate([xy_px[keep], 0.5 * (xy_px[i] + xy_px[j])]),
                                  "detection": np.concatenate([keep, np.full(m, -1)])},
                          info={"source": "image", "angstrom_per_pixel": float(pixel_size * scale)})
    stats = None
    if relax:
        structure, stats = _relax(structure, fmax, potential)
    if centre is None:
        centre = structure.positions[:k].mean(axis=0)
    frozen = np.zeros(k + m, bool)
    if frozen_radius is not None:
        if frozen_radius <= 0:
            raise InputError(f"frozen radius must be positive, got {frozen_radius}")
        frozen = np.linalg.norm(structure.positions - np.asarray(centre, float), axis=1) > frozen_radius
    structure.set_array("frozen", frozen)
    under = np.flatnonzero(coordination < 3)
    rings = RingAnalysis(method="bonds").compute(structure)
    return BuiltStructure(structure, si_bonds.copy(), coordination, under, under[edge[under]],
                          under[~edge[under]], float(pixel_size * scale), float(scale), rings, stats)


def apply_predictors(structure: Structure, predictors: Mapping) -> dict:
    """``{name: predictor.predict_structure(structure)}`` for every trained predictor given.

    The hook for the models of :mod:`glassfrac.learn` (softness SVM, ResNet, LISTI), wrapped by
    the adapters of :mod:`glassfrac.imaging.predict`: each takes the built structure (2D Si + O,
    open box, ``pixel_xy``) and returns its prediction.
    """
    out = {}
    for name, predictor in predictors.items():
        if not callable(getattr(predictor, "predict_structure", None)):
            raise TypeError(f"predictor {name!r} has no predict_structure(structure) method")
        out[name] = predictor.predict_structure(structure)
    return out


def _complete(xy, bonds, reach: float) -> np.ndarray:
    """``bonds`` plus, shortest first, the pairs of Si closer than ``reach`` Å that both still
    have fewer than 3 bonds (module docstring, step 2)."""

    n = len(xy)
    degree = np.bincount(bonds.ravel(), minlength=n)
    pairs = cKDTree(xy).query_pairs(reach, output_type="ndarray")
    pairs = pairs[(degree[pairs[:, 0]] < 3) & (degree[pairs[:, 1]] < 3)]
    have = set(map(tuple, np.sort(bonds, axis=1).tolist()))
    added = []
    for a, b in pairs[np.argsort(np.linalg.norm(xy[pairs[:, 1]] - xy[pairs[:, 0]], axis=1), kind="stable")]:
        if degree[a] < 3 and degree[b] < 3 and (min(a, b), max(a, b)) not in have:
            added.append((a, b))
            degree[a] += 1
            degree[b] += 1
    return np.concatenate([bonds, np.array(added, bonds.dtype).reshape(-1, 2)]) if added else bonds


def hull_depth(points, xy) -> np.ndarray:
    """Distance (Å) of each of ``points`` (M, 2) inside the boundary of the convex hull of
    ``xy`` (N, 2): positive inside, negative outside (then the distance to the farthest edge
    line, a lower bound of the true distance)."""

    try:
        hull = ConvexHull(np.asarray(xy, float)[:, :2])
    except QhullError as exc:
        raise InputError(f"the Si positions span no area (collinear?): {exc}") from None
    # hull.equations: unit outward normals n and offsets c with n·x + c <= 0 inside
    return -(np.asarray(points, float)[:, :2] @ hull.equations[:, :2].T + hull.equations[:, 2]).max(axis=1)


def _open_box(xy, margin: float) -> Box:
    """A non-periodic box around the points with ``margin`` Å on every side."""
    lo = xy.min(axis=0) - margin
    return Box(np.ptp(xy, axis=0) + 2 * margin, pbc=False, origin=lo)


def _relax(structure, fmax, potential):
    potential = potential or get_potential("yukawa2d")
    ((relaxed, stats),) = relax(potential, [structure], method="lbfgs", fmax=fmax)
    relaxed.box = _open_box(relaxed.positions, SI_SI)
    return relaxed, stats
