"""p_hop labels as a typed object: made from a trajectory, saved and loaded in one file."""

import numpy as np
import pytest

from glassfrac.analysis.oxide import phop
from glassfrac.core.errors import InputError
from glassfrac.labels.phop import NON_REARRANGING, REARRANGING, PhopLabels, frame_labels, phop_labels


def _trajectory(seed=0, n_frames=80, n_atoms=30):
    """Vibrating atoms, the first five of which jump by 0.8 Å once."""
    rng = np.random.default_rng(seed)
    x = rng.random((n_atoms, 3)) * 10 + rng.normal(0, 0.04, (n_frames, n_atoms, 3))
    for i in range(5):
        x[30 + 5 * i:, i, 0] += 0.8
    species = np.array(["Al"] * 12 + ["O"] * 18)
    return x, species


@pytest.mark.parametrize("mode", ["frames", "snapshots"])
def test_labels_follow_phop(mode):
    x, species = _trajectory()
    labels = phop_labels(x, 0.1, species, t_r_ps=2.0, mode=mode, label_every_ps=0.5, horizon_ps=2.0)
    p = phop(x, 0.1, 2.0)
    h = 10
    assert labels.labels.shape == (len(labels.frames), 30) and labels.labels.dtype == np.int8
    np.testing.assert_allclose(labels.times_ps, labels.frames * 0.1)
    assert labels.frames[0] == h and labels.mode == mode
    np.testing.assert_array_equal(labels.peak_A2, p.max(axis=0))
    assert set(np.flatnonzero((labels.labels == REARRANGING).any(0))) <= set(range(5))
    assert np.all(labels.peak_A2[(labels.labels == NON_REARRANGING).any(0)] < 0.05)
    if mode == "frames":
        np.testing.assert_array_equal(labels.labels, frame_labels(p, labels.frames - h))
    counts = labels.counts(["Al"])
    assert counts["rearranging_atoms"] == int((p[:, :12].max(0) > 0.2).sum())
    assert counts["label_times"] == len(labels.frames)


def test_save_and_load(tmp_path):
    x, species = _trajectory(1)
    labels = phop_labels(x, 0.1, species, t_r_ps=2.0)
    labels.save(tmp_path / "hops.npz")
    back = PhopLabels.load(tmp_path / "hops.npz")
    for name in ("labels", "frames", "times_ps", "species", "peak_A2"):
        np.testing.assert_array_equal(getattr(back, name), getattr(labels, name))
    assert (back.high_A2, back.low_A2, back.t_r_ps, back.dt_ps, back.mode) == (0.2, 0.05, 2.0, 0.1, "frames")
    (tmp_path / "bad.npz").write_bytes(b"nothing")
    with pytest.raises(InputError, match="bad.npz"):
        PhopLabels.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="mode"):
        phop_labels(x, 0.1, species, mode="hops")
