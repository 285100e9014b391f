"""
From a microscope image to a structure
======================================

Microscope images of 2D silica show the Si columns as bright spots. glassfrac finds them, bonds them by
Voronoi neighbours, puts an O on every Si–Si bond and finds the rings, so that the predictors run on a real
film. Here the image is simulated: a generated monolayer rendered with FC22's photon model (Gaussian spots,
a photon budget per species, a uniform background), then read back without knowing anything but the pixels.
"""

import matplotlib.pyplot as plt
import numpy as np

import glassfrac as gf
from glassfrac.imaging.evaluate import match_points
from glassfrac.imaging.pipeline import analyse_image
from glassfrac.learn.render import render
from glassfrac.report.network_plot import plot_rings

truth = gf.relax(gf.generate(rings=(12, 12), mu2=0.7, seed=5))
rendered = render(truth, seed=1)
analysis = analyse_image(rendered.image)      # pixel size estimated from the spot spacing
built = analysis.built
print(f"image {rendered.image.shape[1]} × {rendered.image.shape[0]} px; pixel size "
      f"{rendered.pixel_map.pixel_size:.3f} Å true, {analysis.detections.pixel_size:.3f} Å estimated")

# %%
# How many Si were found where they are, and how close: detections are mapped back to Å with the true pixel
# map and matched one to one with the true Si and their periodic copies (within half a Si–Si distance),
# counting only points more than 2 Å inside the image.
x0, x1, y0, y1 = rendered.pixel_map.extent
lx, ly = truth.box.lengths[:2]
si_xy = truth.box.wrap(truth.positions[truth.species == "Si", :2])
true_si = np.concatenate([si_xy + (dx, dy) for dx in (-lx, 0, lx) for dy in (-ly, 0, ly)])
found = rendered.pixel_map.to_angstrom(analysis.detections.positions)


def inside(points):
    """Points more than 2 Å inside the image (Å)."""
    return (points[:, 0] > x0 + 2) & (points[:, 0] < x1 - 2) & (points[:, 1] > y0 + 2) & (points[:, 1] < y1 - 2)


match = match_points(true_si, found, region=inside)
print(f"recall {match.recall:.3f}, precision {match.precision:.3f}, rms position error {match.rms:.3f} Å")
interior = built.rings.ring_sizes[~built.rings.boundary_rings]
print(f"built structure: {built.structure.n_atoms} atoms, {len(interior)} interior rings, "
      f"mean size {interior.mean():.2f}; the sample: mean ring size {gf.rings(truth).ring_sizes.mean():.2f}")

# %%
# The image with the detected Si, and the rings of the structure built from it.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5))
left.imshow(rendered.image, cmap="gray", origin="lower")
left.plot(*analysis.detections.positions.T, ".", color="tab:orange", ms=3)
left.set(title="rendered image and detected Si", xlabel="x (px)", ylabel="y (px)")
plot_rings(built.rings, ax=right, title="rings of the built structure")
fig.tight_layout()
print("ring sizes found:", dict(zip(*[v.tolist() for v in np.unique(interior, return_counts=True)], strict=True)))
