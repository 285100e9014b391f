"""The whole chain from a microscope image to a bonded structure (``glassfrac image``).

detect (on the whole image) → keep the region of interest → apply the corrections file →
build (Voronoi bonds, rescale, O, optional relaxation, frozen outer region, rings).
"""

from dataclasses import dataclass

from glassfrac.core.errors import InputError
from glassfrac.imaging.build import BuiltStructure, build_structure
from glassfrac.imaging.corrections import Corrected, apply_corrections, read_corrections
from glassfrac.imaging.detect import SI_SI, Detections, Roi, detect
from glassfrac.learn.render import PixelMap


@dataclass(frozen=True)
class ImageAnalysis:
    """``detections`` (after the ROI, before corrections), ``corrected`` (final Si pixels and
    the edits), ``built`` (:class:`~glassfrac.imaging.build.BuiltStructure`)."""

    detections: Detections
    corrected: Corrected
    built: BuiltStructure

    def summary(self) -> dict:
        """JSON-friendly figures (build summary plus detector, pixel size and edits)."""
        d = self.detections
        return {
            **self.built.summary(),
            "detector": d.detector,
            "detected": int(len(d.positions)),
            "added": int(len(self.corrected.added)),
            "removed": int(len(self.corrected.removed)),
            "pixel_size": d.pixel_size,
            "pixel_size_source": d.pixel_size_source,
            "detector_params": d.params,
        }


def analyse_image(image, pixel_size: float | None = None, roi: Roi | None = None, corrections=None,
                  detector: str = "log", tolerance: float | None = None, si_si: float = SI_SI,
                  detect_options: dict | None = None, build_options: dict | None = None,
                  source=None) -> ImageAnalysis:
    """Run the chain on a grey ``image`` (rows, cols).

    ``pixel_size`` Å/px (None: estimated); ``roi``; ``corrections``: a CSV path or a list of
    :class:`~glassfrac.imaging.corrections.Correction`; ``tolerance``: px for ``remove``
    rows (default 0.5 Si–Si); ``detect_options`` go to :func:`~glassfrac.imaging.detect.detect`
    and ``build_options`` to :func:`~glassfrac.imaging.build.build_structure`; ``source``: the
    image file, named in the errors about what the image holds (no spacing found, too few atoms).
    """
    try:
        return _analyse(image, pixel_size, roi, corrections, detector, tolerance, si_si, detect_options,
                        build_options)
    except InputError as exc:
        if exc.path is not None or source is None:
            raise
        raise InputError(str(exc), source) from None


def _analyse(image, pixel_size, roi, corrections, detector, tolerance, si_si, detect_options,
             build_options) -> ImageAnalysis:
    detections = detect(image, pixel_size, detector, roi=roi, si_si=si_si, **(detect_options or {}))
    path = None
    if corrections is None:
        corrections = []
    elif not isinstance(corrections, list | tuple):
        path = corrections
        corrections = read_corrections(path)
    tol = 0.5 * detections.spacing if tolerance is None else float(tolerance)
    given = PixelMap(pixel_size) if pixel_size else None
    corrected = apply_corrections(detections.positions, corrections, tol, given, path)
    built = build_structure(corrected.positions, detections.pixel_size, si_si=si_si, **(build_options or {}))
    return ImageAnalysis(detections, corrected, built)

