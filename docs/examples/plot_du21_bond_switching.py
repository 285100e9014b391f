"""
DU21: bond switching and softness of amorphous alumina along tension
====================================================================

DU21 stretched amorphous Al₂O₃ and followed, frame by frame, how the Al–O bonds switch (coordination
decreased DC, increased IC, switched partners SC, unchanged UC) and how the mean *softness* of the Al atoms
(the distance to the boundary of an SVM trained on rearrangements at 300 K) rises before the stress peaks.

**This example uses a small stored result.** The molecular dynamics needs LAMMPS and about three CPU-minutes
even at this tiny size, so ``data/du21/make.sh`` ran it once with ``data/du21/oxide-tiny.toml``: two 150-atom
melt-quenches at 4 GPa, one of them doubled along x (300 atoms) and pulled at 300 K, and a softness SVM trained
on p_hop labels of 20 ps trajectories of both. The example reads the 21 tension frames, the stress curve and
the model, and computes here the bond switching of every frame against the first and the softness of every Al
(no LAMMPS needed). DU21's samples have 8100 atoms (``configs/oxide-paper.toml``).
"""

from pathlib import Path

import ase.io
import matplotlib.pyplot as plt
import numpy as np

from glassfrac.analysis.oxide import SWITCH_CLASSES, coordination_fractions, switching_curve
from glassfrac.learn.oxide_softness import SoftnessSettings, softness_curve
from glassfrac.learn.svm import SoftnessModel
from glassfrac.structure import Structure

DATA = Path("data", "du21")  # examples run in their own folder, docs/examples (as sphinx-gallery runs them)
frames = [Structure.from_ase(atoms) for atoms in ase.io.read(DATA / "frames.xyz", index=":", format="extxyz")]
curve = np.loadtxt(DATA / "curve.csv", delimiter=",", skiprows=1)
strain, stress_xx = curve[:, 0], curve[:, 1]   # σ_xx in GPa
model = SoftnessModel.load(DATA / "softness.safetensors")
print(f"{len(frames)} frames of {frames[0].n_atoms} atoms; Al coordination at the start:",
      {cn: round(f, 2) for cn, f in coordination_fractions(frames[0]).items()})
print("softness model, held out by sample:", {k: round(v, 2) for k, v in model.info["held_out"].items()
                                              if k in ("accuracy", "roc_auc")})

# %%
# Bond switching of every frame against the first, and softness of every Al in every frame (on the frames
# themselves, as the model was trained: ``inherent = false`` in the config).
switching = switching_curve(frames)
softness = softness_curve(model, frames, SoftnessSettings(inherent=False))
frame_strain = softness["strain"]
print("strain of the frames:", np.round(frame_strain[[0, -1]], 3), "; at the last frame:",
      {c: round(float(switching[c][-1]), 2) for c in SWITCH_CLASSES})

# %%
# Stress, bond switching and softness along the run. Bonds switch from the first frames on, and the mean
# softness of the Al rises while the sample still carries its load, then falls once it has yielded. At 300 atoms
# and 300 K the stress is noisy; DU21's 8100-atom samples give smooth curves.
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 3.8))
ax1.plot(strain, stress_xx, color="0.3")
ax1.set(xlabel="strain", ylabel="σ_xx (GPa)", title="tension at 300 K")
for c in SWITCH_CLASSES:
    ax2.plot(frame_strain, switching[c], "o-", ms=3, label=c)
ax2.set(xlabel="strain", ylabel="fraction of Al", title="bond switching")
ax2.legend()
ax3.plot(frame_strain, softness["mean_softness"], "o-", ms=3, color="C3", label="mean")
ax3.plot(frame_strain, softness["p90_softness"], "s--", ms=3, color="C1", label="90th percentile")
ax3.set(xlabel="strain", ylabel="softness of Al", title="softness")
ax3.legend()
fig.tight_layout()
