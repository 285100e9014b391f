"""Microscope images: image → Si positions → bonded structure, and trained predictors on it.

(Structures are rendered as images by :mod:`glassfrac.learn.render`, the FC22 photon model.)

- :mod:`.detect`: reading images, Si detection (Laplacian of Gaussian, trackpy), pixel size;
- :mod:`.corrections`: manual add/remove edits as a CSV file;
- :mod:`.build`: Voronoi bonds, rescaling, O, relaxation, frozen region, rings, predictor hook;
- :mod:`.pipeline`: the chain behind ``glassfrac image``;
- :mod:`.predict`: trained predictors (softness, ResNet + Grad-CAM, LISTI) on the built
  structure (their figures over the original image: :func:`glassfrac.report.image_overlay.write_image_figures`);
- :mod:`.evaluate`: scoring detections against known positions.
"""

from glassfrac.imaging.build import BuiltStructure, apply_predictors, build_structure
from glassfrac.imaging.corrections import Correction, apply_corrections, read_corrections, write_corrections
from glassfrac.imaging.detect import Detections, Roi, detect, read_image, write_image
from glassfrac.imaging.evaluate import match_points
from glassfrac.imaging.pipeline import ImageAnalysis, analyse_image
from glassfrac.imaging.predict import ListiPredictor, ResNetPredictor, SoftnessPredictor, load_predictors

__all__ = ["BuiltStructure", "Correction", "Detections", "ImageAnalysis", "ListiPredictor",
           "ResNetPredictor", "Roi", "SoftnessPredictor", "analyse_image",
           "apply_corrections", "apply_predictors", "build_structure", "detect", "load_predictors", "match_points",
           "read_corrections", "read_image", "write_corrections", "write_image"]
