"""Bright Si spots of a microscope image: reading, detection, sub-pixel refinement, pixel size.

Pixel coordinates follow :class:`~glassfrac.learn.render.PixelMap`: ``(x, y) = (col, row)``,
pixel centres at integers. Two detectors:

- ``"log"`` (LISTI25, Marr–Hildreth): the image filtered with the scale-normalised Laplacian of
  Gaussian ``−σ² ∇²G_σ`` (scipy.ndimage; σ default 0.2 Si–Si); candidates are the positive
  maxima of the response within a disk of radius 0.55 Si–Si (skimage.feature.peak_local_max),
  so the dimmer O between two Si are never candidates; refined to sub-pixel positions
  (``refine``): ``"centroid"`` (response-weighted centroid within 0.3 Si–Si, repeated twice),
  ``"gaussian"`` (a parabola through the log of the 3 × 3 response around the peak, i.e. a
  local Gaussian fit) or ``"none"``. skimage's ``blob_log`` at the same single scale (3 × 3
  maxima pruned by blob overlap) lost Si on low-dose images: recall 0.990 against 0.9995
  (benchmarks/imaging.py, given pixel size).
- ``"trackpy"`` (FC22): ``trackpy.locate`` with an odd ``diameter`` (default the odd number
  nearest to 0.9 Si–Si in pixels, at least 5; 11 px at 0.25 Å/px), ``separation`` 0.7 Si–Si
  (trackpy's default, diameter + 1, would merge neighbouring Si on coarse images) and its
  sub-pixel centroids.

Both keep a candidate if its strength (LoG response, trackpy ``mass``) is at least
``threshold`` (default 0.35) times the 90th percentile of the candidates' strengths: a Si spot
is at least about a third as strong as the strong Si, background maxima are weaker. This
assumes that at least 10 % of the candidates are Si, which the spacing rule ensures; 0.35
was the best of 0.3, 0.35 and 0.4 on low-dose images (benchmarks/imaging.py), where the
strengths of the Si spread over 0.3–1.2 of that percentile and background maxima stay below
about 0.3. Otsu's threshold, tried first, splits the Si in two when few background maxima
are candidates (trackpy).

The Si–Si distance in pixels sets every scale. With a given pixel size it is 3.05 Å / pixel
size. Otherwise it is first read from the image (:func:`estimate_spacing`), then refined from
the detections: the pixel size is 3.05 Å over the median distance from each detection to its
three nearest detected neighbours, and detection is repeated at that spacing (at most 4
passes) until the two agree within 10 %.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import mrcfile
import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.feature import peak_local_max

from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_path

SI_SI = 3.05
"""Mean Si–Si distance of 2D silica, Å (LISTI25)."""

IMAGE_SUFFIXES = {".tif": "tiff", ".tiff": "tiff", ".png": "pil", ".jpg": "pil", ".jpeg": "pil",
                  ".bmp": "pil", ".mrc": "mrc", ".dm3": "dm", ".dm4": "dm", ".npy": "npy"}
"""Readable image files by extension."""


@dataclass(frozen=True)
class LoadedImage:
    """A grey image (rows, cols) float64, its pixel size in Å if the file states one, the path."""

    image: np.ndarray
    pixel_size: float | None
    path: str


@dataclass(frozen=True)
class Roi:
    """A region of interest in pixel coordinates: ``kind`` "rect" with ``values`` (x0, y0, x1, y1)
    or "circle" with (cx, cy, r)."""

    kind: str
    values: tuple

    def __post_init__(self):
        if self.kind not in ("rect", "circle") or len(self.values) != (4 if self.kind == "rect" else 3):
            raise InputError("a ROI is ('rect', (x0, y0, x1, y1)) or ('circle', (cx, cy, r))")
        if self.kind == "rect" and (self.values[2] <= self.values[0] or self.values[3] <= self.values[1]):
            raise InputError(f"rectangle ROI needs x1 > x0 and y1 > y0, got {self.values}")
        if self.kind == "circle" and self.values[2] <= 0:
            raise InputError(f"circle ROI needs a positive radius, got {self.values[2]}")

    def contains(self, xy) -> np.ndarray:
        """Which points (N, 2) px lie inside (boundary included)."""
        xy = np.asarray(xy, float).reshape(-1, 2)
        if self.kind == "rect":
            x0, y0, x1, y1 = self.values
            return (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
        cx, cy, r = self.values
        return np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) <= r


@dataclass(frozen=True)
class Detections:
    """Detected Si: ``positions`` (N, 2) px, ``strength`` (N,) (LoG response or trackpy mass),
    ``pixel_size`` Å/px and its ``pixel_size_source`` ("given", "file" or "estimated"),
    ``spacing`` the Si–Si distance in px used for the scales, ``detector`` and its ``params``."""

    positions: np.ndarray
    strength: np.ndarray
    pixel_size: float
    pixel_size_source: str
    spacing: float
    detector: str
    params: dict = field(default_factory=dict)

    def select(self, mask) -> "Detections":
        """The detections where ``mask`` is true."""
        return Detections(self.positions[mask], self.strength[mask], self.pixel_size,
                          self.pixel_size_source, self.spacing, self.detector, dict(self.params))


# -- reading --------------------------------------------------------------------------------

def read_image(path) -> LoadedImage:
    """Read a grey image (TIFF, PNG/JPEG/BMP, MRC, DM3/DM4 with ncempy, .npy) as float64.

    Colour images are averaged over their channels. The pixel size is taken from MRC voxel
    sizes (Å) and from TIFFs written by :func:`write_image` (JSON description); otherwise None.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("image file not found", path)
    kind = IMAGE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"unknown image extension {path.suffix!r}; readable: {sorted(IMAGE_SUFFIXES)}", path)
    try:
        image, pixel_size = _READERS[kind](path)
    except InputError:
        raise
    except Exception as exc:  # the readers raise many types on corrupt files; report them uniformly
        raise InputError(f"cannot read the image ({type(exc).__name__}: {exc})", path) from exc
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = image[..., :3].mean(axis=-1)
    if image.ndim != 2:
        raise InputError(f"expected one 2D grey image, got an array of shape {image.shape}", path)
    if min(image.shape) < 8:
        raise InputError(f"image too small ({image.shape[0]} x {image.shape[1]} pixels)", path)
    image = image.astype(float)
    if not np.isfinite(image).all():
        raise InputError("image has non-finite pixel values", path)
    if image.min() == image.max():
        raise InputError(f"image is uniform (every pixel {image.flat[0]:g}): there are no atoms to find", path)
    return LoadedImage(image, pixel_size, str(path))


def _read_tiff(path):
    with tifffile.TiffFile(path) as tif:
        image = tif.asarray()
        description = tif.pages[0].description if len(tif.pages) else ""
    pixel_size = None
    try:
        meta = json.loads(description)
        if isinstance(meta, dict) and "pixel_size_A" in meta:
            pixel_size = float(meta["pixel_size_A"])
    except ValueError:
        pass
    return image, pixel_size


def _read_pil(path):
    with Image.open(path) as im:
        return np.array(im.convert("F") if im.mode not in ("RGB", "RGBA") else im), None


def _read_mrc(path):
    with mrcfile.open(path, permissive=True) as mrc:
        if mrc.data is None:
            raise InputError("MRC file has no data", path)
        data = np.array(mrc.data)
        voxel = float(mrc.voxel_size.x)
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    return data, voxel if voxel > 0 else None


def _read_dm(path):
    try:
        from ncempy.io import dm
    except ImportError:
        raise InputError("DM3/DM4 files need ncempy (pip install ncempy, or glassfrac[dm]); "
                         "or export the image as TIFF", path) from None
    with dm.fileDM(str(path)) as f:
        data = f.getDataset(0)
    image = np.asarray(data["data"])
    scale, unit = data["pixelSize"][-1], str(data["pixelUnit"][-1])
    factor = {"nm": 10.0, "Å": 1.0, "A": 1.0, "pm": 0.01, "µm": 1e4, "um": 1e4}.get(unit)
    return image, None if factor is None else float(scale) * factor


def _read_npy(path):
    return np.load(path, allow_pickle=False), None


_READERS = {"tiff": _read_tiff, "pil": _read_pil, "mrc": _read_mrc, "dm": _read_dm, "npy": _read_npy}


def write_image(path, image, pixel_size: float | None = None, metadata: dict | None = None) -> None:
    """Write ``image`` as a float32 TIFF (atomically); the pixel size (Å, key ``pixel_size_A``)
    and ``metadata`` go in its description as JSON."""
    meta = dict(metadata or {})
    if pixel_size:
        meta["pixel_size_A"] = float(pixel_size)
    description = json.dumps(meta) if meta else None
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.asarray(image, np.float32), description=description, metadata=None)


# -- scales ---------------------------------------------------------------------------------

def estimate_spacing(image) -> float:
    """Si–Si distance in pixels read from the image (detections then refine it, :func:`detect`).

    The spot width σ* comes from the half width of the central peak of the radially averaged
    autocorrelation (white noise only adds at zero lag; a Gaussian spot of σ gives
    exp(−r²/4σ²)), at least 0.7 px; the spacing is the first maximum beyond max(2σ*, 3 px) of the
    autocorrelation of the image filtered by −∇²G at σ*. Raises InputError if there is none.
    """
    image = np.asarray(image, float)
    rmax = min(image.shape) // 3
    q = _radial_autocorrelation(image, rmax)[1:]
    q = q / q[0]
    below = np.flatnonzero(q <= 0.5)
    if len(below) == 0 or below[0] == 0:
        sigma = 0.7
    else:
        k = below[0]  # q[k] is the value at r = k + 1
        r_half = k + (q[k - 1] - 0.5) / (q[k - 1] - q[k])
        sigma = max(0.7, float(np.sqrt(max(r_half**2 - 1.0, 0.0) / (4 * np.log(2)))))
    profile = _radial_autocorrelation(-ndimage.gaussian_laplace(image, sigma), rmax)
    for k in range(max(3, int(2 * sigma) + 1), len(profile) - 1):
        if profile[k] >= profile[k - 1] and profile[k] > profile[k + 1]:
            d = profile[k - 1] - 2 * profile[k] + profile[k + 1]  # parabola for a sub-pixel peak
            return float(k + (0.5 * (profile[k - 1] - profile[k + 1]) / d if d < 0 else 0.0))
    raise InputError("cannot find the Si–Si spacing in the image (no autocorrelation peak); "
                     "give the pixel size")


def _radial_autocorrelation(image, rmax: int) -> np.ndarray:
    """Autocorrelation of the mean-subtracted image averaged over rings of width 1 px, r = 0..rmax."""
    rows, cols = image.shape
    a = image - image.mean()
    power = np.abs(np.fft.rfft2(a, s=(2 * rows, 2 * cols))) ** 2  # zero padding: no wrap-around
    acf = np.fft.fftshift(np.fft.irfft2(power, s=(2 * rows, 2 * cols)))
    y, x = np.ogrid[-rows:rows, -cols:cols]
    r = np.hypot(x, y)
    near = r <= rmax + 0.5
    bins = np.rint(r[near]).astype(int)
    return np.bincount(bins, acf[near]) / np.maximum(np.bincount(bins), 1)


def estimate_pixel_size(positions_px, si_si: float = SI_SI) -> float:
    """Å per pixel such that the median distance to each point's 3 nearest neighbours is ``si_si``."""
    positions_px = np.asarray(positions_px, float)
    if len(positions_px) < 4:
        raise InputError(f"need at least 4 detected Si to estimate the pixel size, found {len(positions_px)}")
    dist, _ = cKDTree(positions_px).query(positions_px, k=4)
    return float(si_si / np.median(dist[:, 1:]))


# -- detectors ------------------------------------------------------------------------------

def detect(image, pixel_size: float | None = None, detector: str = "log", roi: Roi | None = None,
           invert: bool = False, sigma: float | None = None, threshold: float = 0.35,
           diameter: int | None = None, refine: str = "centroid", si_si: float = SI_SI) -> Detections:
    """Si positions (px) in ``image`` (module docstring).

    ``pixel_size``: Å/px (None: estimated); ``roi``: keep detections inside it; ``invert``:
    atoms dark on a bright background; ``sigma``: LoG scale in Å (default 0.2 Si–Si);
    ``threshold``: cut on the response (LoG) or mass (trackpy) relative to the 90th percentile;
    ``diameter``: trackpy feature size, odd, px; ``refine``: LoG sub-pixel method.
    """
    image = np.asarray(image, float)
    if image.ndim != 2:
        raise InputError(f"image must be 2D, got shape {image.shape}")
    if invert:
        image = image.max() - image
    if pixel_size is not None and pixel_size <= 0:
        raise InputError(f"pixel size must be positive, got {pixel_size}")
    if pixel_size:
        positions, strength, params = _detect_at(image, si_si / pixel_size, detector, sigma, threshold, diameter,
                                                 refine, si_si)
        spacing, source = si_si / pixel_size, "given"
    else:
        spacing = estimate_spacing(image)
        for _ in range(4):  # detections refine the spacing read from the autocorrelation
            positions, strength, params = _detect_at(image, spacing, detector, sigma, threshold, diameter,
                                                     refine, si_si)
            pixel_size = estimate_pixel_size(positions, si_si)
            if abs(si_si / pixel_size / spacing - 1.0) < 0.1:
                break
            spacing = si_si / pixel_size
        source = "estimated"
    out = Detections(positions, strength, float(pixel_size), source, float(spacing), detector, params)
    return out if roi is None else out.select(roi.contains(out.positions))


def _detect_at(image, spacing, detector, sigma, threshold, diameter, refine, si_si):
    """One detection pass with every scale set by ``spacing`` (Si–Si in px)."""
    if spacing < 3.0:
        raise InputError(f"Si–Si distance is only {spacing:.2f} px; the image is too coarse to resolve the atoms")
    if detector == "log":
        sigma_px = (0.2 * si_si if sigma is None else sigma) * spacing / si_si
        return detect_log(image, sigma_px, 0.55 * spacing, threshold, refine, 0.3 * spacing)
    if detector == "trackpy":
        return detect_trackpy(image, diameter or _nearest_odd(0.9 * spacing), 0.7 * spacing, threshold)
    raise InputError(f"detector must be 'log' or 'trackpy', got {detector!r}")


def _nearest_odd(value: float) -> int:
    return max(5, 2 * int(round((value - 1) / 2)) + 1)


def detect_log(image, sigma_px: float, min_distance: float, threshold: float = 0.35,
               refine: str = "centroid", radius: float | None = None):
    """Laplacian-of-Gaussian detection at one scale ``sigma_px``; candidates are the positive maxima
    of the response within a disk of radius ``min_distance`` px (``skimage.feature.peak_local_max``,
    raster order). Returns positions (N, 2) px, responses (N,), params."""
    if refine not in ("centroid", "gaussian", "none"):
        raise InputError(f"refine must be 'centroid', 'gaussian' or 'none', got {refine!r}")
    response = -sigma_px**2 * ndimage.gaussian_laplace(np.asarray(image, float), sigma_px, mode="nearest")
    peaks = peak_local_max(response, footprint=_disk(min_distance), threshold_abs=0.0, exclude_border=False)
    rows, cols = peaks[np.lexsort((peaks[:, 1], peaks[:, 0]))].T
    values = response[rows, cols]
    cut = relative_cut(values, threshold)
    keep = values >= cut
    rows, cols, values = rows[keep], cols[keep], values[keep]
    xy = np.column_stack([cols, rows]).astype(float)
    if refine == "centroid":
        xy = _centroid(response, xy, radius or min_distance / 2)
    elif refine == "gaussian":
        xy = _log_parabola(response, rows, cols)
    params = {"sigma_px": float(sigma_px), "min_distance_px": float(min_distance), "threshold": float(cut),
              "refine": refine}
    return xy, values, params


def detect_trackpy(image, diameter: int, separation: float, threshold: float = 0.35):
    """``trackpy.locate`` with ``diameter`` (odd, px) and ``separation`` (px); returns positions
    (N, 2) px, masses, params."""
    try:
        import trackpy
    except ImportError:
        raise InputError("the trackpy detector needs trackpy (pip install trackpy, or glassfrac[imaging])") from None
    if diameter < 3 or diameter % 2 == 0:
        raise InputError(f"trackpy diameter must be odd and at least 3, got {diameter}")
    trackpy.quiet()
    image = np.asarray(image, float)
    image = image - image.min()
    features = trackpy.locate(image, int(diameter), separation=float(separation), preprocess=True)
    xy = features[["x", "y"]].to_numpy(float)
    mass = features["mass"].to_numpy(float)
    cut = relative_cut(mass, threshold)
    keep = mass >= cut
    return xy[keep], mass[keep], {"diameter_px": int(diameter), "separation_px": float(separation),
                                  "threshold": float(cut)}


def relative_cut(values, fraction: float) -> float:
    """``fraction`` × the 90th percentile of ``values`` (−inf for no values)."""
    values = np.asarray(values, float)
    return float(fraction * np.percentile(values, 90)) if len(values) else -np.inf


def _disk(radius: float) -> np.ndarray:
    r = int(np.floor(radius))
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= radius * radius


def _centroid(response, xy, radius: float, iterations: int = 2) -> np.ndarray:
    """Response-weighted centroids (positive part) within ``radius`` px, iterated."""
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    rows, cols = response.shape
    positive = np.clip(response, 0.0, None)
    for _ in range(iterations):
        centre = np.rint(xy).astype(int)
        frac = xy - centre
        px = centre[:, 0, None, None] + dx
        py = centre[:, 1, None, None] + dy
        inside = ((dx - frac[:, 0, None, None]) ** 2 + (dy - frac[:, 1, None, None]) ** 2 <= radius**2)
        inside &= (px >= 0) & (px < cols) & (py >= 0) & (py < rows)
        w = np.where(inside, positive[np.clip(py, 0, rows - 1), np.clip(px, 0, cols - 1)], 0.0)
        total = w.sum(axis=(1, 2))
        ok = total > 0
        new = np.column_stack([(w * px).sum(axis=(1, 2)), (w * py).sum(axis=(1, 2))])
        xy = np.where(ok[:, None], new / np.where(ok, total, 1.0)[:, None], xy)
    return xy


def _log_parabola(response, rows, cols) -> np.ndarray:
    """Peak of a parabola through the log of the 3 × 3 response (a Gaussian fit per axis)."""
    pad = np.pad(np.clip(response, 1e-300, None), 1, mode="edge")
    r, c = rows + 1, cols + 1
    logv = np.log(pad)

    def offset(minus, centre, plus):
        d = minus - 2 * centre + plus
        return np.where(d < 0, 0.5 * (minus - plus) / np.where(d < 0, d, -1.0), 0.0).clip(-0.5, 0.5)

    ox = offset(logv[r, c - 1], logv[r, c], logv[r, c + 1])
    oy = offset(logv[r - 1, c], logv[r, c], logv[r + 1, c])
    return np.column_stack([cols + ox, rows + oy])
