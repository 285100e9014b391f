"""
FC22: where a convolutional network looks (Grad-CAM)
====================================================

FC22 trained residual networks on simulated microscope images of the undeformed glass and used Grad-CAM to see
which regions drive a prediction: the attention falls on the defects, the rings that are not hexagons. Here a
small ResNet learns the disorder μ₂ of 2D monolayers from their rendered images (64 generated samples of
6 × 6 rings, μ₂ from 0.1 to 1.2, 64 px images, 60 epochs on one core), is scored on held-out samples, and its
Grad-CAM maps at each resolution of the network are drawn over an unseen sample with its non-hexagonal rings.
The same code trains the rupture-strain, location and crack models of FC22 (``glassfrac cnn train``).
"""

import matplotlib.pyplot as plt
import numpy as np

import glassfrac as gf
from glassfrac.learn.gradcam import explain
from glassfrac.learn.images import ImageSettings, images_from_structures
from glassfrac.learn.resnet import ResNetConfig
from glassfrac.learn.training import TrainSettings, train_and_evaluate

targets = np.linspace(0.1, 1.2, 64)
samples = [gf.generate(rings=(6, 6), mu2=mu2, seed=k) for k, mu2 in enumerate(targets)]
images = images_from_structures(samples, [f"sample_{k}" for k in range(len(samples))], "mu2",
                                ImageSettings(size=64, pixels=128, crop="cell"), progress=False)
settings = TrainSettings(epochs=60, batch_size=16, n_shifts=4, val_copies=4, fractions=(0.7, 0.1, 0.2), seed=0)
model, record = train_and_evaluate(images, ResNetConfig.preset("small"), settings, progress=False)
test = record["test"]
print(f"held-out samples: {len(test['names'])}; R² of μ₂ {test['model']['r2']:.2f} "
      f"(training mean: {test['baseline']['r2']:.2f})")

# %%
# Grad-CAM of the most disordered unseen sample: one map per stage of the network (r × r pixels before
# upsampling). White outlines: the non-hexagonal rings; ρ is the correlation of the map with them across pixels.
name = max(test["names"], key=lambda n: samples[images.names.index(n)].info["mu2"])
sample = samples[images.names.index(name)]
explained = explain(model, sample)
stages = sorted(explained["maps"]["t"], reverse=True)
fig, axes = plt.subplots(1, len(stages) + 1, figsize=(3.2 * (len(stages) + 1), 3.4))
axes[0].imshow(explained["image"], cmap="gray", origin="lower")
axes[0].set_title(f"{name}: μ₂ {sample.info['mu2']:.2f}, predicted {explained['prediction']:.2f}", fontsize=9)
for ax, r in zip(axes[1:], stages, strict=True):
    ax.imshow(explained["image"], cmap="gray", origin="lower")
    ax.imshow(explained["maps"]["t"][r], cmap="inferno", alpha=0.6, origin="lower")
    ax.contour(explained["defects"], levels=[0.5], colors="white", linewidths=0.6, origin="lower")
    ax.set_title(f"r = {r}: ρ(G, defects) = {explained['stats']['t'][r]['rho_defects']:.2f}", fontsize=9)
for ax in axes:
    ax.set_axis_off()
fig.tight_layout()
