"""Deformation paths: the affine map F(strain) of a loading mode and which cell axes relax.

Strain conventions (engineering strain of the x axis, the loading direction):

- ``uniaxial_strain``: F = diag(1 + e, 1[, 1]); lateral sizes fixed (FC22 tension).
- ``uniaxial_stress``: F_xx = 1 + e; the lateral in-plane size relaxes to zero stress.
- ``pure_shear``: F = diag(1 + e, 1 / (1 + e)[, 1]), area preserving (LISTI25); the reported
  shear stress is (σ_xx − σ_yy) / 2.
- ``simple_shear``: F = [[1, e], [0, 1]] (x displaced along y); shear stress σ_xy.

The out-of-plane axis of a 3D sheet is never deformed.
"""

from dataclasses import dataclass

import numpy as np

from glassfrac.core.errors import InputError

PATHS = ("uniaxial_strain", "uniaxial_stress", "pure_shear", "simple_shear")


@dataclass(frozen=True)
class DeformationPath:
    """A loading mode: ``F(strain)``, the stress measure it reports and the relaxing axes."""

    kind: str
    dim: int = 2

    def __post_init__(self):
        if self.kind not in PATHS:
            raise InputError(f"unknown deformation path {self.kind!r}; choose one of {PATHS}")
        if self.dim not in (2, 3):
            raise InputError("dim must be 2 or 3")

    def F(self, strain: float) -> np.ndarray:
        """Deformation gradient (dim x dim) at ``strain`` from the reference."""
        F = np.eye(self.dim)
        if self.kind in ("uniaxial_strain", "uniaxial_stress"):
            F[0, 0] = 1.0 + strain
        elif self.kind == "pure_shear":
            F[0, 0] = 1.0 + strain
            F[1, 1] = 1.0 / (1.0 + strain)
        else:
            F[0, 1] = strain
        return F

    def increment(self, strain_from: float, strain_to: float) -> np.ndarray:
        """Map taking the configuration at ``strain_from`` affinely to ``strain_to``."""
        return self.F(strain_to) @ np.linalg.inv(self.F(strain_from))

    def cell_mask(self) -> np.ndarray:
        """(dim, dim) bool: stress components the relaxer drives to zero with the cell."""
        mask = np.zeros((self.dim, self.dim), dtype=bool)
        if self.kind == "uniaxial_stress":
            mask[1, 1] = True
        return mask

    def measure(self, stress: np.ndarray) -> float:
        """The scalar stress this path reports, from a stress tensor (tension positive)."""
        if self.kind in ("uniaxial_strain", "uniaxial_stress"):
            return float(stress[0, 0])
        if self.kind == "pure_shear":
            return float(0.5 * (stress[0, 0] - stress[1, 1]))
        return float(stress[0, 1])
