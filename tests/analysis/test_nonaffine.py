"""D²min: zero for affine maps, localised for a local rearrangement."""

import numpy as np

from glassfrac.analysis.nonaffine import d2min


def test_affine_deformation_has_zero_d2min(generated):
    s = generated.monolayer()
    F = np.array([[1.03, 0.02], [0.0, 0.98]])
    assert np.max(d2min(s, s.deformed(F), cutoff=4.0)) < 1e-20


def test_local_displacement_gives_local_d2min(generated):
    s = generated.monolayer()
    moved = s.copy()
    moved.positions[0] += [0.3, -0.2]
    value = d2min(s, moved, cutoff=4.0)
    assert value[0] > 0.05
    far = np.linalg.norm(s.box.minimum_image(s.positions - s.positions[0]), axis=1) > 8.0
    assert np.max(value[far]) < 1e-20
