"""Datasets of rendered images with their targets, and the augmentation transforms (FC22 §7).

Images come from :func:`glassfrac.learn.render.render` (the FC22 photon model, top layer,
``pixels`` across the box, rebinned to ``size`` px); one image per sample, rendered with the
seed ``render_seed`` + sample number. ``crop`` chooses what the square image shows:

- ``"square"`` (FC22): the square of side min(Lx, Ly) at the cell corner; square pixels.
- ``"cell"``: the whole periodic cell, mapped onto the square by the affine map
  ``y → y0 + (y − y0) · Lx / Ly`` before rendering, so every atom and every position in the
  cell is inside the image and the image is periodic with the cell. Pixels are then
  ``Lx / size`` × ``Ly / size`` Å (:class:`CellPixelMap`, the exact pixel ↔ Å transform). The
  photon spots keep their σ in image space, i.e. they are stretched along y by Ly / Lx in Å
  (Ly / Lx of relaxed 7 × 8-ring monolayers: 0.84–1.09 over 25 campaign samples); the background
  keeps its density per Å².

The uniform background is given per area, ``background_per_area`` photons/Å² (default FC22's
4·10^5 photons over their 85.13 × 81.71 Å box, 57.5 /Å²), so smaller samples keep FC22's signal-to-background ratio.

Targets (``TARGETS``; the name used on the command line → where it is read from):

- ``mu2``: ``info["mu2"]`` (ring-size variance); if absent, measured with
  :class:`~glassfrac.analysis.rings.RingAnalysis`.
- ``strain``: ``info["rupture_strain"]`` (dimensionless).
- ``location``: ``info["rupture_location"]`` (Å, undeformed sample), held as fractional image
  coordinates in [0, 1)², periodic with period 1,
  per axis ``u = (x − origin) / (pixels · pixel size)`` (the period of the image under the
  periodic translations). The location is first wrapped into the cell; with ``crop="square"``
  a location in the strip of a non-square cell that the crop leaves out cannot be learnt, and
  its sample is dropped (counted in ``dropped``); with ``crop="cell"`` none is.
- ``crack``: per-atom 0/1 array ``crack``; the target image (FC22) is the noise-free image of
  the imaged crack atoms (no background), blurred with a periodic Gaussian of σ = 4 px, scaled
  to a maximum of 1, plus uniform noise U(0, 0.25) (seeded per sample). Samples without crack
  atoms are dropped.

Samples that lack the target (missing key, None or NaN) are dropped and listed in ``dropped``.

Augmentation (:class:`Transform`, :func:`augmentations`): a transform flips the image (x:
columns reversed, y: rows reversed) and then translates it periodically by ``(dx, dy)`` px.
Maps are permuted, so ``inverse_image(image(a))`` returns ``a`` bit for bit. Positions in
fractional image coordinates follow exactly: a flip is ``u → −u`` and a translation
``u → u + d / size`` (mod 1), since flipping N pixels sends pixel centre x to N − 1 − x. The
round trip of a position is exact up to floating-point rounding of the addition (≤ 1e-15 of
the period). FC22's 64 copies are 16 random translations × the 4 flip combinations; the
transforms of a sample are drawn from ``seed`` and the sample number.

Dataset sources (:func:`load_images`): a folder of extended XYZ files (one sample each, named
by file stem, targets as above), or a campaign export (``glassfrac dataset export``: ``.npz``
or folder with ``manifest.json``; ``mu2``, ``rupture_strain``, ``rupture_location`` and the
per-atom ``crack`` arrays; NaN / −1 mean missing).
"""

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.core.errors import InputError
from glassfrac.core.progress import progress as progress_bar
from glassfrac.learn.exports import export_structure, read_export
from glassfrac.learn.render import PixelMap, RenderSettings, render
from glassfrac.structure import Box, Structure, read

TARGETS = {"mu2": "mu2", "strain": "rupture_strain", "location": "rupture_location", "crack": "crack"}
"""Target name → key of ``info`` (or per-atom array for ``crack``)."""

FC22_BACKGROUND = 4e5 / (85.1348 * 81.7060)
"""FC22's background photon density, photons/Å² (4·10^5 over their box)."""
CRACK_BLUR = 4.0
"""σ of the Gaussian blur of crack target images, px (FC22)."""
CRACK_NOISE = 0.25
"""Upper bound of the uniform noise added to crack target images (FC22)."""
CROPS = ("square", "cell")
"""What the square image shows: the square at the cell corner (FC22) or the whole cell."""


# -- transforms ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Transform:
    """Flip (``flip_x``: columns, ``flip_y``: rows), then periodic shift by ``dx``, ``dy`` px of
    an image of ``size`` × ``size`` px (module docstring)."""

    size: int
    dx: int = 0
    dy: int = 0
    flip_x: bool = False
    flip_y: bool = False

    def image(self, a):
        """Transformed map(s): numpy array or torch tensor with the image in the last two axes."""
        lib = _lib(a)
        if self.flip_x:
            a = lib.flip(a, (-1,) if lib.__name__ == "torch" else -1)
        if self.flip_y:
            a = lib.flip(a, (-2,) if lib.__name__ == "torch" else -2)
        return lib.roll(a, (self.dy, self.dx), (-2, -1))

    def inverse_image(self, a):
        """Undo :meth:`image`."""
        lib = _lib(a)
        a = lib.roll(a, (-self.dy, -self.dx), (-2, -1))
        if self.flip_y:
            a = lib.flip(a, (-2,) if lib.__name__ == "torch" else -2)
        if self.flip_x:
            a = lib.flip(a, (-1,) if lib.__name__ == "torch" else -1)
        return a

    def points(self, u) -> np.ndarray:
        """Fractional image coordinates (..., 2) (x, y) moved with the image, in [0, 1)."""
        u = np.array(u, float)
        sign = np.array([-1.0 if self.flip_x else 1.0, -1.0 if self.flip_y else 1.0])
        return np.mod(sign * u + np.array([self.dx, self.dy]) / self.size, 1.0)

    def inverse_points(self, u) -> np.ndarray:
        """Undo :meth:`points`."""
        u = np.mod(np.array(u, float) - np.array([self.dx, self.dy]) / self.size, 1.0)
        sign = np.array([-1.0 if self.flip_x else 1.0, -1.0 if self.flip_y else 1.0])
        return np.mod(sign * u, 1.0)

    def to_list(self) -> list:
        return [self.dx, self.dy, int(self.flip_x), int(self.flip_y)]


def _lib(a):
    if isinstance(a, np.ndarray):
        return np

    if isinstance(a, torch.Tensor):
        return torch
    raise TypeError(f"expected a numpy array or torch tensor, got {type(a).__name__}")


def flips(size: int) -> list:
    """The four flip combinations of an image of ``size`` × ``size`` px, unshifted (none, y, x, both)."""
    return [Transform(size, 0, 0, fx, fy) for fx in (False, True) for fy in (False, True)]


def augmentations(size: int, n_shifts: int = 16, seed: int = 0) -> list:
    """``4 · n_shifts`` transforms: ``n_shifts`` random periodic shifts (seeded), each with the four
    flip combinations (FC22: 16 × 4 = 64 copies)."""
    rng = np.random.default_rng(seed)
    shifts = rng.integers(0, size, size=(n_shifts, 2))
    return [replace(flip, dx=int(dx), dy=int(dy)) for dx, dy in shifts for flip in flips(size)]


def sample_augmentations(size: int, n_samples: int, n_shifts: int = 16, seed: int = 0) -> list:
    """Per sample ``k``, :func:`augmentations` drawn from the seed sequence ``(seed, k)``."""
    return [augmentations(size, n_shifts, int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
            for k in range(n_samples)]


# -- rendering ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageSettings:
    """How samples become images: ``size`` px of the network input (FC22: 128), ``pixels``
    across the box before rebinning (FC22: 256), ``background_per_area`` (photons/Å²),
    ``render_seed`` (photon noise of sample k uses ``render_seed + k``), ``crack_seed`` (noise of
    crack targets), ``crop``: ``"square"`` (FC22) or ``"cell"`` (module docstring)."""

    size: int = 128
    pixels: int = 256
    background_per_area: float = FC22_BACKGROUND
    render_seed: int = 0
    crack_seed: int = 0
    crop: str = "square"

    def __post_init__(self):
        if self.crop not in CROPS:
            raise InputError(f"crop must be one of {CROPS}, got {self.crop!r}")

    def render_settings(self, area: float) -> RenderSettings:
        """Renderer settings for a box of ``area`` Å²."""
        return RenderSettings(pixels=self.pixels, output=self.size, background=self.background_per_area * area)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CellPixelMap(PixelMap):
    """A :class:`~glassfrac.learn.render.PixelMap` with rectangular pixels: ``pixel_size``
    Å along x, ``pixel_size_y`` Å along y; ``x_Å = origin + size · (x_px + 0.5)`` per axis."""

    pixel_size_y: float = 0.0

    @property
    def sizes(self) -> np.ndarray:
        return np.array([self.pixel_size, self.pixel_size_y])

    def to_angstrom(self, xy_px) -> np.ndarray:
        return np.asarray(self.origin, float) + self.sizes * (np.asarray(xy_px, float) + 0.5)

    def to_pixels(self, xy) -> np.ndarray:
        return (np.asarray(xy, float) - np.asarray(self.origin, float)) / self.sizes - 0.5

    @property
    def extent(self) -> tuple:
        x0, y0 = self.origin
        rows, cols = self.shape
        return (x0, x0 + cols * self.pixel_size, y0, y0 + rows * self.pixel_size_y)


def pixel_sizes(pixel_map: PixelMap) -> np.ndarray:
    """(x, y) pixel sizes in Å of a square- or rectangular-pixel map."""
    return pixel_map.sizes if isinstance(pixel_map, CellPixelMap) else np.full(2, pixel_map.pixel_size)


def image_lengths(pixel_map: PixelMap) -> np.ndarray:
    """(x, y) lengths in Å covered by the image: the periods of fractional image coordinates."""
    rows, cols = pixel_map.shape
    return pixel_sizes(pixel_map) * np.array([cols, rows])


def render_sample(structure: Structure, settings: ImageSettings, seed: int | None):
    """The :class:`~glassfrac.learn.render.RenderedImage` of ``structure`` for the network
    (``settings.crop``: module docstring)."""
    area = float(np.prod(np.diag(structure.box.cell)[:2]))
    if settings.crop == "square":
        return render(structure, settings.render_settings(area), seed=seed)
    rendered = render(_square_cell(structure), settings.render_settings(area), seed=seed)
    pm = rendered.pixel_map
    lx, ly = np.diag(structure.box.cell)[:2]
    return replace(rendered, pixel_map=CellPixelMap(pm.pixel_size, pm.origin, pm.shape, pm.pixel_size * ly / lx))


def _square_cell(structure: Structure) -> Structure:
    """``structure`` with y mapped by ``y0 + (y − y0) · Lx / Ly``: a square cell in the xy plane."""
    cell = np.array(structure.box.cell, float)
    if abs(cell[0, 1]) > 1e-9 or abs(cell[1, 0]) > 1e-9:
        raise InputError("render needs a rectangular (orthogonal) cell")
    factor = cell[0, 0] / cell[1, 1]
    positions = np.array(structure.positions, float)
    y0 = structure.box.origin[1]
    positions[:, 1] = y0 + (positions[:, 1] - y0) * factor
    cell[1, 1] = cell[0, 0]
    return Structure(positions, structure.species, Box(cell, structure.box.pbc, structure.box.origin))


def fractional(pixel_map: PixelMap, xy) -> np.ndarray:
    """Positions (..., 2) Å → fractional image coordinates (not wrapped)."""
    return (np.asarray(xy, float) - np.asarray(pixel_map.origin)) / image_lengths(pixel_map)


def angstrom(pixel_map: PixelMap, u) -> np.ndarray:
    """Fractional image coordinates (..., 2) → positions in Å."""
    return np.asarray(pixel_map.origin) + np.asarray(u, float) * image_lengths(pixel_map)


def location_fraction(structure: Structure, pixel_map: PixelMap, location) -> np.ndarray | None:
    """Rupture location (Å) → fractional image coordinates in [0, 1)², None if outside the crop."""
    xy = np.zeros((1, structure.dim))
    xy[0, :] = np.asarray(location, float)[: structure.dim]
    xy = structure.box.wrap(xy)[0, :2]
    u = fractional(pixel_map, xy)
    if np.any(u < 0) or np.any(u >= 1):
        return None
    return u


def crack_target(structure: Structure, rendered, crack, seed: int) -> np.ndarray:
    """FC22 target image of the imaged crack atoms (module docstring), float32 (size, size)."""
    atoms = rendered.atoms[np.asarray(crack, bool)[rendered.atoms]]
    side = rendered.image.shape[0]
    image = np.zeros((side, side))
    if len(atoms):
        flat = _plane(structure.select(atoms))
        if isinstance(rendered.pixel_map, CellPixelMap):
            flat = _square_cell(flat)
        settings = RenderSettings(**{**asdict(rendered.settings), "background": 0.0, "photon_noise": False,
                                     "noise": None})
        image = gaussian_filter(render(flat, settings, seed=None).image, CRACK_BLUR, mode="wrap")
        image /= image.max()
    image += np.random.default_rng(seed).uniform(0.0, CRACK_NOISE, image.shape)
    return image.astype(np.float32)


def _plane(structure: Structure) -> Structure:
    """The atoms of ``structure`` projected on the xy plane (2D box, same cell corner)."""
    if structure.dim == 2:
        return structure
    box = Box(structure.box.cell[:2, :2], structure.box.pbc[:2], structure.box.origin[:2])
    return Structure(structure.positions[:, :2], structure.species, box)


# -- datasets -----------------------------------------------------------------------------------

@dataclass
class ImageDataset:
    """Rendered samples and one target.

    ``images`` (S, size, size) float32 photon counts; ``names`` (S,); ``pixel_maps``;
    ``target`` name and ``values``: (S,) for mu2/strain, (S, 2) fractional coordinates for
    location, (S, size, size) float32 target images for crack; per sample the imaged atoms'
    fractional image coordinates ``atom_uv`` (n, 2), their structure indices ``atoms`` and, for
    crack, their 0/1 labels ``atom_labels``; ``dropped`` names of samples left out and why.
    """

    images: np.ndarray
    names: list
    pixel_maps: list
    target: str
    values: np.ndarray
    atom_uv: list
    atoms: list
    atom_labels: list = field(default_factory=list)
    settings: ImageSettings = field(default_factory=ImageSettings)
    dropped: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index) -> "ImageDataset":
        index = np.asarray(index, int)
        pick = [int(i) for i in index]
        return ImageDataset(self.images[index], [self.names[i] for i in pick], [self.pixel_maps[i] for i in pick],
                            self.target, self.values[index], [self.atom_uv[i] for i in pick],
                            [self.atoms[i] for i in pick],
                            [self.atom_labels[i] for i in pick] if self.atom_labels else [],
                            self.settings, list(self.dropped))


def images_from_structures(structures, names, target: str, settings: ImageSettings | None = None,
                           progress: bool | None = None) -> ImageDataset:
    """Render ``structures`` and read ``target`` from each (module docstring)."""
    if target not in TARGETS:
        raise InputError(f"unknown target {target!r}; choose from {sorted(TARGETS)}")
    settings = settings or ImageSettings()
    kept = {"images": [], "names": [], "maps": [], "values": [], "uv": [], "atoms": [], "labels": []}
    dropped = []
    pairs = list(zip(structures, names, strict=True))
    bar = progress_bar(pairs, desc="render", disable=None if progress is None else not progress)
    for k, (structure, name) in enumerate(bar):
        rendered = render_sample(structure, settings, settings.render_seed + k)
        value, why = _target_value(structure, rendered, target, settings, k)
        if value is None:
            dropped.append({"name": name, "reason": why})
            continue
        kept["images"].append(rendered.image.astype(np.float32))
        kept["names"].append(name)
        kept["maps"].append(rendered.pixel_map)
        kept["values"].append(value)
        kept["uv"].append(fractional(rendered.pixel_map, structure.positions[rendered.atoms, :2]))
        kept["atoms"].append(rendered.atoms)
        if target == "crack":
            kept["labels"].append(np.asarray(structure.arrays["crack"])[rendered.atoms].astype(np.int8))
    if not kept["names"]:
        raise InputError(f"no sample has the target {target!r} ({len(dropped)} dropped: "
                         f"{dropped[0]['reason'] if dropped else 'no samples'})")
    return ImageDataset(np.stack(kept["images"]), kept["names"], kept["maps"], target,
                        np.asarray(np.stack(kept["values"]), np.float32 if target == "crack" else float),
                        kept["uv"], kept["atoms"], kept["labels"], settings, dropped)


def _target_value(structure, rendered, target, settings, k):
    """(value, None) or (None, reason)."""
    key = TARGETS[target]
    if target == "crack":
        if key not in structure.arrays:
            return None, "no per-atom array 'crack'"
        crack = np.asarray(structure.arrays[key])
        if not np.any(crack[rendered.atoms] > 0):
            return None, "no imaged crack atoms"
        return crack_target(structure, rendered, crack > 0, settings.crack_seed + k), None
    value = structure.info.get(key)
    if target == "mu2" and _missing(value):
        value = RingAnalysis().compute(structure).mu2
    if _missing(value):
        return None, f"no {key!r} in info"
    if target == "location":
        u = location_fraction(structure, rendered.pixel_map, value)
        return (None, "rupture location outside the square image (crop='cell' keeps it)") if u is None else (u, None)
    return float(value), None


def _missing(value) -> bool:
    if value is None:
        return True
    return bool(np.any(np.isnan(np.asarray(value, float))))


def read_structures(path) -> tuple[list, list]:
    """Structures and names of a dataset (module docstring: extxyz folder or campaign export)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        return _export_structures(read_export(path, ("crack",)))
    if not path.is_dir():
        raise InputError("not a dataset: expected a folder of .xyz files, a campaign export folder "
                         "(manifest.json) or a .npz export", path)
    if (path / "manifest.json").is_file():
        return _export_structures(read_export(path, ("crack",)))

    files = sorted(p for p in path.iterdir() if p.suffix in (".xyz", ".extxyz"))
    if not files:
        raise InputError("no .xyz/.extxyz files and no manifest.json in the folder", path)
    return [read(f) for f in files], [f.stem for f in files]


def load_images(path, target: str, settings: ImageSettings | None = None, progress: bool | None = None):
    """:class:`ImageDataset` of the dataset at ``path`` for ``target``."""
    structures, names = read_structures(path)
    return images_from_structures(structures, names, target, settings, progress)


def _export_structures(samples) -> tuple[list, list]:
    structures, names = [], []
    for a in samples:
        dim = a["dim"]
        info = {key: float(a[key]) for key in ("mu2", "rupture_strain") if key in a and np.isfinite(a[key])}
        if "rupture_location" in a and np.all(np.isfinite(a["rupture_location"])):
            info["rupture_location"] = np.asarray(a["rupture_location"], float)[:dim].tolist()
        arrays = {}
        if a["crack"] is not None and np.all(np.asarray(a["crack"]) >= 0):
            arrays["crack"] = np.asarray(a["crack"]).astype(np.int8)
        structures.append(export_structure(a, arrays, info))
        names.append(a["sample_id"])
    return structures, names
