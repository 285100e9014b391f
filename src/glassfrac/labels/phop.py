"""p_hop labels (DU21, reference/protocols.md §6): which atoms rearrange, and when, in a
finite-temperature trajectory.

p_hop (Å², :func:`glassfrac.analysis.oxide.phop`, window t_R) is defined at the trajectory
frames h … T − 1 − h, h = round(t_R / (2 dt)). Two ways to label atoms at label times:

- ``"frames"`` (DU21 / Cubuk et al.): label times ``label_every_ps`` apart over that span; an
  atom is rearranging (1) if p_hop > ``high_A2`` at that time, non-rearranging (0) if p_hop
  stays below ``low_A2`` over the whole trajectory, unlabelled (−1) otherwise;
- ``"snapshots"``: label times ``horizon_ps`` apart; rearranging if p_hop crosses ``high_A2``
  from below within [t0, t0 + horizon), non-rearranging as above.

:func:`phop_labels` makes a :class:`PhopLabels` from unwrapped positions; it saves and loads as
every label type does (:class:`~glassfrac.labels.base.LabelSet`).
"""

from dataclasses import dataclass

import numpy as np

from glassfrac.analysis.oxide import phop
from glassfrac.core.errors import InputError
from glassfrac.labels.base import LabelSet

REARRANGING, NON_REARRANGING, UNLABELLED = 1, 0, -1
MODES = ("frames", "snapshots")


@dataclass(frozen=True, eq=False)
class PhopLabels(LabelSet):
    """Per-atom p_hop labels at label times.

    ``labels`` (L, N) int8: :data:`REARRANGING` / :data:`NON_REARRANGING` / :data:`UNLABELLED`
    at each label time; ``frames`` (L,) the trajectory frame of each label time and
    ``times_ps`` (L,) its time (ps); ``species`` (N,); ``peak_A2`` (N,) the largest p_hop of each
    atom (Å²); the thresholds ``high_A2`` and ``low_A2`` (Å²), window ``t_r_ps``, frame spacing
    ``dt_ps`` and label ``mode`` (``"frames"`` or ``"snapshots"``) they were made with.
    """

    labels: np.ndarray
    frames: np.ndarray
    times_ps: np.ndarray
    species: np.ndarray
    peak_A2: np.ndarray
    high_A2: float
    low_A2: float
    t_r_ps: float
    dt_ps: float
    mode: str

    def counts(self, species=None) -> dict:
        """Label times, and among ``species`` atoms (all if None): the largest p_hop (Å²), atoms
        that ever rearrange (peak > high) and atoms that stay quiet (peak < low)."""
        mask = np.ones(len(self.species), bool) if species is None else np.isin(self.species, species)
        peak = self.peak_A2[mask]
        return {"label_times": len(self.frames), "max_phop_A2": round(float(peak.max()), 5),
                "rearranging_atoms": int((peak > self.high_A2).sum()), "quiet_atoms": int((peak < self.low_A2).sum())}

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("high_A2", "low_A2", "t_r_ps", "dt_ps", "mode")}

    def arrays(self) -> dict:
        return {"labels": self.labels, "frames": self.frames, "times_ps": self.times_ps,
                "species": self.species.astype(str), "peak_A2": self.peak_A2}

    @classmethod
    def from_saved(cls, record: dict, arrays: dict) -> "PhopLabels":
        out = cls(**{k: arrays[k] for k in ("labels", "frames", "times_ps", "species", "peak_A2")},
                  **{k: record[k] for k in ("high_A2", "low_A2", "t_r_ps", "dt_ps", "mode")})
        if out.labels.shape != (len(out.frames), len(out.species)):
            raise InputError(f"labels must be ({len(out.frames)}, {len(out.species)}), got {out.labels.shape}")
        return out


def phop_labels(positions, dt_ps: float, species, t_r_ps: float = 6.0, high_A2: float = 0.2,
                low_A2: float = 0.05, mode: str = "frames", label_every_ps: float = 0.5,
                horizon_ps: float = 2.0) -> PhopLabels:
    """Labels of a trajectory: unwrapped ``positions`` (T, N, 3) Å, ``dt_ps`` apart, of atoms
    ``species`` (N,); see the module docstring for ``mode`` and the thresholds."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    positions = np.asarray(positions, float)
    p = phop(positions, dt_ps, t_r_ps)
    h = (len(positions) - len(p)) // 2
    if mode == "frames":
        origins = np.arange(0, len(p), max(1, int(round(label_every_ps / dt_ps))))
        labels = frame_labels(p, origins, high_A2, low_A2)
    else:
        horizon = int(round(horizon_ps / dt_ps))
        origins = np.arange(0, len(p) - horizon + 1, horizon)
        labels = snapshot_labels(p, origins, horizon, high_A2, low_A2)
    frames = origins + h
    return PhopLabels(labels, frames, frames * dt_ps, np.asarray(species), p.max(axis=0), float(high_A2),
                      float(low_A2), float(t_r_ps), float(dt_ps), mode)


def snapshot_labels(phop_values, origins, horizon: int, high: float = 0.2, low: float = 0.05) -> np.ndarray:
    """Labels (len(origins), N) int8 of snapshots at the p_hop frames ``origins``: 1 if p_hop
    crosses ``high`` from below at a frame of [t0, t0 + horizon) (a value above ``high`` at
    frame 0 is no crossing: it may have started earlier), 0 if p_hop stays below ``low`` over
    all frames of ``phop_values`` (T, N), −1 otherwise."""
    p = np.asarray(phop_values, float)
    quiet = p.max(axis=0) < low
    above = p > high
    crossing = np.zeros_like(above)
    crossing[1:] = above[1:] & ~above[:-1]
    out = np.empty((len(origins), p.shape[1]), dtype=np.int8)
    for k, t0 in enumerate(origins):
        if not 0 <= t0 < len(p):
            raise InputError(f"snapshot frame {t0} outside the {len(p)} p_hop frames")
        out[k] = np.where(crossing[t0:t0 + horizon].any(axis=0), 1, np.where(quiet, 0, -1))
    return out


def frame_labels(phop_values, frames, high: float = 0.2, low: float = 0.05) -> np.ndarray:
    """Labels (len(frames), N) int8 at the p_hop frames ``frames`` (DU21): 1 if p_hop > ``high``
    at that frame (the atom is rearranging then), 0 if p_hop stays below ``low`` over all
    frames of ``phop_values`` (T, N), −1 otherwise."""
    p = np.asarray(phop_values, float)
    frames = np.asarray(frames, int)
    if frames.size and not (0 <= frames.min() and frames.max() < len(p)):
        raise InputError(f"label frames outside the {len(p)} p_hop frames")
    quiet = p.max(axis=0) < low
    return np.where(p[frames] > high, 1, np.where(quiet, 0, -1)).astype(np.int8)
