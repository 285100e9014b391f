"""Deformation paths: exact kinematics of each loading mode."""

import numpy as np
import pytest

from glassfrac.mechanics.deformation import PATHS, DeformationPath


@pytest.mark.parametrize("kind", PATHS)
def test_increments_compose_to_the_total_map(kind):
    path = DeformationPath(kind)
    a, b = 0.013, 0.0405
    assert np.allclose(path.increment(a, b) @ path.F(a), path.F(b), atol=1e-15)
    assert np.allclose(path.F(0.0), np.eye(2))


def test_pure_shear_preserves_area_and_simple_shear_too():
    for kind in ("pure_shear", "simple_shear"):
        assert np.linalg.det(DeformationPath(kind).F(0.07)) == pytest.approx(1.0, abs=1e-15)


def test_uniaxial_strain_stretches_x_only_and_stress_path_relaxes_y():
    F = DeformationPath("uniaxial_strain").F(0.05)
    assert np.allclose(F, np.diag([1.05, 1.0]))
    assert DeformationPath("uniaxial_strain").cell_mask().sum() == 0
    mask = DeformationPath("uniaxial_stress").cell_mask()
    assert mask[1, 1] and mask.sum() == 1


def test_stress_measures():
    stress = np.array([[3.0, 0.5], [0.5, -1.0]])
    assert DeformationPath("uniaxial_strain").measure(stress) == 3.0
    assert DeformationPath("pure_shear").measure(stress) == 2.0
    assert DeformationPath("simple_shear").measure(stress) == 0.5


def test_unknown_path_is_rejected():
    with pytest.raises(ValueError, match="unknown deformation path"):
        DeformationPath("twist")
