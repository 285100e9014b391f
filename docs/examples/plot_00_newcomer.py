"""
From a generated glass to a tension curve and a threshold map
=============================================================

The whole chain in a few lines of ``import glassfrac as gf``: generate a 2D silica monolayer, relax it, look at
its rings, pull it apart, and map where it is weak in shear. Small sizes, so that it runs in seconds; the same
lines take the paper sizes.
"""

# %%
# Generate and relax a sample
# ---------------------------
# A honeycomb of 8 × 8 rings is disordered by bond switching until its ring-size variance μ₂ reaches 0.6, then
# relaxed with the 2D Yukawa potential (the default of a 2D structure) to a true minimum, its cell included
# (zero stress to start from).
import matplotlib.pyplot as plt
import numpy as np

import glassfrac as gf

sample = gf.relax(gf.generate(rings=(8, 8), mu2=0.6, kind="monolayer", seed=3), cell=True)
relaxed = sample.info["relax"]
print(f"{sample.n_atoms} atoms in a {sample.box.lengths[0]:.1f} × {sample.box.lengths[1]:.1f} Å cell")
print(f"energy {relaxed['energy']:.3f} eV, largest force {relaxed['max_force']:.1e} eV/Å, "
      f"lowest Hessian eigenvalue {relaxed['lowest_eigenvalue']:.2e} eV/Å² (a true minimum: {relaxed['minimum']})")

# %%
# Rings
# -----
rings = gf.rings(sample)
sizes, counts = np.unique(rings.ring_sizes, return_counts=True)
print("ring sizes:", dict(zip(sizes.tolist(), counts.tolist(), strict=True)), f"μ₂ = {rings.mu2:.3f}")

# %%
# Tension to fracture
# -------------------
# Uniaxial strain along x, quasistatic; events (stress drops) are bisected to a strain precision of 1e-3.
test = gf.tension(sample, step=0.01, precision=1e-3)
labels = test.labels
broken = "no bond broke" if labels.rupture_strain is None else f"first bond break at strain {labels.rupture_strain:.4f}"
print(f"modulus {labels.modulus:.2f} {test.stress_unit}, peak stress {labels.peak_stress:.3f} {test.stress_unit}, "
      f"events: {len(test.events)}, {broken}")

# %%
# Local yield thresholds
# ----------------------
# Local probing shears a disc of radius 7 Å around each of 6 × 6 grid points until it first rearranges; Δτ is
# the stress it took.
thresholds = gf.probe(sample, grid=6, r_free=7.0)
print(f"Δτ from {thresholds.threshold.min():.4f} to {thresholds.threshold.max():.4f} {thresholds.unit}")

# %%
# The figure
# ----------
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.plot(test.strain, test.stress, "-o", ms=3)
for event in test.events:
    left.axvline(event.strain, color="0.8", lw=0.8, zorder=0)
left.set(xlabel="strain", ylabel=f"stress ({test.stress_unit})", title="tension (grey: events)")
x0, y0 = sample.box.origin[:2]
lx, ly = sample.box.lengths[:2]
# rows of the map are y, columns x (the probe grid runs over x first)
image = right.imshow(thresholds.threshold, origin="lower", cmap="viridis", extent=(x0, x0 + lx, y0, y0 + ly))
if labels.rupture_location is not None:
    right.scatter(*labels.rupture_location[:2], marker="x", color="red", s=80, label="first bond break")
    right.legend(loc="upper right")
right.set(xlabel="x (Å)", ylabel="y (Å)", title="threshold map Δτ")
fig.colorbar(image, ax=right, label=f"Δτ ({thresholds.unit})")
fig.tight_layout()
