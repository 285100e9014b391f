"""labels stage: typed labels made from the results of the loading stages (:mod:`glassfrac.labels.base`
saves and loads every label type the same way)."""

from glassfrac.labels.base import LabelSet
from glassfrac.labels.loading import (
    EventLabel,
    ShearEvent,
    ShearLabels,
    TensionLabels,
    first_break_site,
    shear_labels,
    tension_labels,
)

__all__ = ["EventLabel", "LabelSet", "ShearEvent", "ShearLabels", "TensionLabels", "first_break_site",
           "shear_labels", "tension_labels"]
