"""A structure rendered as a microscope-like image (the photon model of FC22).

The one place in glassfrac that turns atoms into pixels (the image CNNs reuse it).

Model (reference/protocols.md §7, FC22): every atom of the imaged layer emits ``photons[s]``
photons drawn from an isotropic Gaussian of width ``sigma[s]`` (Å) around it (Si 800 photons
of σ = 0.5 Å, O 100 of σ = 0.3 Å), ``background`` photons (4·10^5) fall uniformly on the box,
and the photons are counted in square pixels. The imaged layer is every atom of a 2D
structure (monolayer) and the top layer of a 3D sheet (bilayer: the atoms above the plane
halfway between the mid-plane of the Si and the top Si layer, so the bridging O are left out).

Geometry: ``pixels`` pixels across the box along x (FC22: 256), so the pixel size is
``Lx / pixels`` Å; the image is the square of ``floor(min(Lx, Ly) / pixel size)`` pixels at the
cell corner (``box.origin``); photons leaving the cell along a periodic axis are wrapped back.
``output`` resamples the square to ``output × output`` pixels (FC22: 128) by exact
area-weighted rebinning (counts are conserved; a factor 2 is plain 2 × 2 binning).
Only rectangular (orthogonal) cells are rendered.

Decisions beyond FC22:

- ``blur`` (Å, Gaussian point-spread function) is added in quadrature to every atom's σ; for a
  photon model this is exactly the image convolved with the PSF before counting.
- ``photon_noise=False`` replaces the random photons by their expectation (Gaussians
  integrated over every pixel, uniform background): a noise-free image.
- ``noise``: extra detector noise on the counts, ``"poisson"`` (the counts resampled as Poisson
  of themselves; mostly for the noise-free image) or ``"gaussian"`` (additive, standard
  deviation ``noise_level`` × the mean count per pixel).

Pixel convention (:class:`PixelMap`, shared with detection): image ``[row, col]``; pixel
coordinates ``(x, y) = (col, row)`` with pixel centres at integers; the row index grows with
y (Å), so an image drawn with ``origin="lower"`` shows the structure as plotted in Å.
"""

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.special import erf

from glassfrac.core.errors import InputError
from glassfrac.structure.structure import Structure


@dataclass(frozen=True)
class PixelMap:
    """Pixel ↔ Å: ``x_Å = origin + pixel_size · (x_px + 0.5)`` per axis.

    ``pixel_size`` Å per pixel; ``origin`` (2,) Å of the outer corner of pixel (0, 0);
    ``shape`` (rows, cols) of the image. Pixel coordinates are ``(x, y) = (col, row)``.
    """

    pixel_size: float
    origin: tuple = (0.0, 0.0)
    shape: tuple = (0, 0)

    def to_angstrom(self, xy_px) -> np.ndarray:
        """Pixel coordinates (N, 2) → positions (N, 2) in Å."""
        return np.asarray(self.origin, float) + self.pixel_size * (np.asarray(xy_px, float) + 0.5)

    def to_pixels(self, xy) -> np.ndarray:
        """Positions (N, 2) in Å → pixel coordinates (N, 2)."""
        return (np.asarray(xy, float) - np.asarray(self.origin, float)) / self.pixel_size - 0.5

    @property
    def extent(self) -> tuple:
        """``(x0, x1, y0, y1)`` of the image in Å (matplotlib ``extent`` with origin="lower")."""
        x0, y0 = self.origin
        rows, cols = self.shape
        return (x0, x0 + cols * self.pixel_size, y0, y0 + rows * self.pixel_size)


@dataclass(frozen=True)
class RenderSettings:
    """Parameters of :func:`render` (module docstring); FC22's values by default.

    ``photons``/``sigma``: per species, photons and Gaussian width (Å); species not listed
    are not drawn. ``background``: uniform photons over the box. ``pixels``: pixels across
    the box along x. ``output``: final side in pixels (None: keep the square crop).
    ``blur``: PSF σ, Å. ``photon_noise``: random photons (True) or their expectation.
    ``noise``: None, "poisson" or "gaussian"; ``noise_level``: Gaussian σ / mean count.
    """

    photons: dict = field(default_factory=lambda: {"Si": 800, "O": 100})
    sigma: dict = field(default_factory=lambda: {"Si": 0.5, "O": 0.3})
    background: float = 4e5
    pixels: int = 256
    output: int | None = 128
    blur: float = 0.0
    photon_noise: bool = True
    noise: str | None = None
    noise_level: float = 0.0

    def __post_init__(self):
        if self.noise not in (None, "poisson", "gaussian"):
            raise InputError(f"noise must be None, 'poisson' or 'gaussian', got {self.noise!r}")
        if self.pixels < 1 or (self.output is not None and self.output < 1):
            raise InputError("pixels and output must be positive")
        if self.blur < 0 or self.background < 0 or self.noise_level < 0:
            raise InputError("blur, background and noise_level must not be negative")
        for name in self.photons:
            if self.sigma.get(name, 0.0) <= 0:
                raise InputError(f"sigma of {name!r} must be positive")


@dataclass(frozen=True)
class RenderedImage:
    """``image`` (rows, cols) float64 photon counts; ``pixel_map``; ``settings``; ``seed``;
    ``atoms``: indices of the imaged atoms in the structure."""

    image: np.ndarray
    pixel_map: PixelMap
    settings: RenderSettings
    seed: int | None
    atoms: np.ndarray

    def metadata(self) -> dict:
        """JSON-friendly description (pixel size Å, origin Å, settings, seed)."""
        return {"pixel_size": self.pixel_map.pixel_size, "origin": list(self.pixel_map.origin),
                "settings": asdict(self.settings), "seed": self.seed}


def imaged_atoms(structure: Structure) -> np.ndarray:
    """Indices of the atoms seen from above: all of a 2D structure, the top layer of a 3D sheet."""
    if structure.dim == 2:
        return np.arange(structure.n_atoms)
    z = structure.positions[:, 2]
    si = structure.species == "Si"
    zs = z[si] if si.any() else z
    mid = zs.mean()
    top = zs[zs > mid]
    if len(top) == 0 or top.mean() - mid < 0.5:
        return np.arange(structure.n_atoms)  # a single layer
    return np.flatnonzero(z > 0.5 * (mid + top.mean()))


def render(structure: Structure, settings: RenderSettings | None = None, seed: int | None = 0,
           **overrides) -> RenderedImage:
    """Render ``structure`` (2D, or a 3D sheet seen along z) as an image; deterministic for ``seed``.

    ``overrides`` replace fields of ``settings`` (e.g. ``blur=0.3, output=None``).
    """
    settings = settings or RenderSettings()
    if overrides:
        settings = RenderSettings(**{**asdict(settings), **overrides})
    box = structure.box
    cell = box.cell[:2, :2]
    if abs(cell[0, 1]) > 1e-9 or abs(cell[1, 0]) > 1e-9:
        raise InputError("render needs a rectangular (orthogonal) cell")
    lx, ly = cell[0, 0], cell[1, 1]
    pbc = box.pbc[:2]
    origin = box.origin[:2]
    pixel = lx / settings.pixels
    side = int(np.floor(min(lx, ly) / pixel + 1e-9))
    rng = np.random.default_rng(seed)
    atoms = imaged_atoms(structure)
    xy = structure.positions[atoms, :2]
    species = structure.species[atoms]
    if settings.photon_noise:
        counts = _photon_histogram(xy - origin, species, settings, (lx, ly), pbc, pixel, side, rng)
    else:
        counts = _expected_counts(xy - origin, species, settings, (lx, ly), pbc, pixel, side)
    if settings.output is not None and settings.output != side:
        counts = rebin(counts, settings.output)
        pixel = pixel * side / settings.output
        side = settings.output
    if settings.noise == "poisson":
        counts = rng.poisson(counts).astype(float)
    elif settings.noise == "gaussian":
        counts = counts + rng.normal(0.0, settings.noise_level * counts.mean(), counts.shape)
    pixel_map = PixelMap(float(pixel), (float(origin[0]), float(origin[1])), (side, side))
    return RenderedImage(counts, pixel_map, settings, seed, atoms)


def _widths(species, settings):
    """Photons and blurred σ (Å) per atom."""
    n = np.array([settings.photons.get(s, 0) for s in species], dtype=np.int64)
    sigma = np.array([settings.sigma.get(s, 1.0) for s in species], float)
    return n, np.sqrt(sigma**2 + settings.blur**2)


def _photon_histogram(xy, species, settings, lengths, pbc, pixel, side, rng):
    """Random photons counted on the ``side`` × ``side`` grid of pixel size ``pixel``."""
    n, sigma = _widths(species, settings)
    owner = np.repeat(np.arange(len(xy)), n)
    points = xy[owner] + rng.normal(size=(len(owner), 2)) * sigma[owner, None]
    n_bg = int(rng.poisson(settings.background)) if settings.background else 0
    background = rng.uniform(size=(n_bg, 2)) * np.asarray(lengths)
    points = np.concatenate([points, background])
    for a in range(2):
        if pbc[a]:
            points[:, a] = np.mod(points[:, a], lengths[a])
    edges = np.arange(side + 1) * pixel
    hist, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=(edges, edges))
    return hist


def _expected_counts(xy, species, settings, lengths, pbc, pixel, side):
    """Expected photon counts per pixel: Gaussians integrated over pixels, plus background."""
    n, sigma = _widths(species, settings)
    keep = n > 0
    xy, n, sigma = xy[keep], n[keep], sigma[keep]
    edges = np.arange(side + 1) * pixel
    image = np.full((side, side), settings.background * pixel**2 / (lengths[0] * lengths[1]))
    reach = 6.0 * sigma.max() if len(sigma) else 0.0
    shifts = [np.array([-lengths[a], 0.0, lengths[a]]) if pbc[a] else np.zeros(1) for a in range(2)]
    for sx in shifts[0]:
        for sy in shifts[1]:
            p = xy + [sx, sy]
            inside = ((p[:, 0] > -reach) & (p[:, 0] < side * pixel + reach)
                      & (p[:, 1] > -reach) & (p[:, 1] < side * pixel + reach))
            if not inside.any():
                continue
            s = sigma[inside, None] * np.sqrt(2.0)
            cx = np.diff(0.5 * erf((edges[None, :] - p[inside, 0, None]) / s), axis=1)  # (M, side)
            cy = np.diff(0.5 * erf((edges[None, :] - p[inside, 1, None]) / s), axis=1)
            image += (cy * n[inside, None]).T @ cx
    return image


def rebin(image, size: int) -> np.ndarray:
    """Square ``image`` resampled to ``size`` × ``size`` by exact area weighting (sums conserved)."""
    image = np.asarray(image, float)
    rows, cols = image.shape
    return _overlap(rows, size) @ image @ _overlap(cols, size).T


def _overlap(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) fraction of every input pixel that falls in every output pixel."""
    a = np.arange(n_in + 1) / n_in
    b = np.arange(n_out + 1) / n_out
    lo = np.maximum(b[:-1, None], a[None, :-1])
    hi = np.minimum(b[1:, None], a[None, 1:])
    return np.clip(hi - lo, 0.0, None) * n_in
