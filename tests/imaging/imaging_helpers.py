"""Shared helpers of the imaging tests: truth positions of rendered periodic samples, scoring."""

import numpy as np
import torch

from glassfrac import Box, Structure
from glassfrac.analysis import RingAnalysis
from glassfrac.analysis.structure_functions import fc22_descriptor
from glassfrac.generate import generate
from glassfrac.imaging.evaluate import match_points
from glassfrac.learn.images import ImageSettings, images_from_structures
from glassfrac.learn.listi import Trainer, TrainSettings
from glassfrac.learn.resnet import ResNetConfig
from glassfrac.learn.svm import AtomDataset, TrainingSettings, train
from glassfrac.learn.training import TrainSettings as ImageTrainSettings
from glassfrac.learn.training import train_and_evaluate
from glassfrac.learn.windows import GraphSet, SiNetwork, WindowSpec, window_graphs
from glassfrac.mechanics.probe import grid_centres

D_SISI = 3.05
LOW_DOSE = {"photons": {"Si": 200, "O": 25}, "blur": 0.4}
"""Low-dose images: a quarter of FC22's photons and a 0.4 Å point-spread function."""


def periodic_si(structure) -> tuple[np.ndarray, np.ndarray]:
    """Si positions wrapped into the cell and their 8 periodic copies (Å), with Si indices."""
    si = np.flatnonzero(structure.species == "Si")
    xy = structure.box.wrap(structure.positions[si])[:, :2]
    lx, ly = np.diag(structure.box.cell)[:2]
    shifts = [(dx, dy) for dx in (-lx, 0.0, lx) for dy in (-ly, 0.0, ly)]
    return np.concatenate([xy + s for s in shifts]), np.tile(si, len(shifts))


def score(structure, rendered, positions_px, margin=0.5 * D_SISI):
    """Match detections (px) to the true Si inside the image less ``margin`` Å (evaluate.py rule)."""
    pm = rendered.pixel_map
    x0, x1, y0, y1 = pm.extent

    def region(p):
        return (p[:, 0] > x0 + margin) & (p[:, 0] < x1 - margin) & (p[:, 1] > y0 + margin) & (p[:, 1] < y1 - margin)

    truth, index = periodic_si(structure)
    return match_points(truth, pm.to_angstrom(positions_px), 0.5 * D_SISI, region), index


def honeycomb_si(nx, ny, d=D_SISI) -> Structure:
    """Periodic honeycomb of Si (4 nx ny atoms, rectangular cell), Si–Si distance d (Å)."""
    a = d * np.sqrt(3)
    basis = np.array([[0, 0], [a / 2, d / 2], [a / 2, 1.5 * d], [0, 2 * d]])
    shifts = np.array([[ix * a, iy * 3 * d] for ix in range(nx) for iy in range(ny)])
    positions = (basis[None] + shifts[:, None]).reshape(-1, 2) + [a / 4, d / 4]
    return Structure(positions, ["Si"] * len(positions), Box([nx * a, ny * 3 * d]))


# -- tiny trained models (seconds), for the chain image → structure → predictions -----------------

def small_monolayers(n, rings=(4, 4), seed=0):
    """``n`` periodic 2D silica monolayers with ring-size variances spread over 0.3–1."""
    return [generate(rings=rings, mu2=mu2, kind="monolayer", seed=seed + k)
            for k, mu2 in enumerate(np.linspace(0.3, 1.0, n))]


def small_ring_label(structure):
    """1 for Si of a ring with fewer than 6 Si, else 0: a learnable stand-in for a rearrangement label."""
    rings = RingAnalysis().compute(structure)
    label = np.zeros(structure.n_atoms, np.int8)
    for ring, size in zip(rings.rings, rings.ring_sizes, strict=True):
        if size < 6:
            label[np.asarray(ring)] = 1
    label[structure.species != "Si"] = 0
    return label


def tiny_models(folder, seed=0) -> dict:
    """Train, in seconds, a softness SVM (FC22 descriptor, small-ring label), a mu2 ResNet (32 px
    input, 2 epochs) and a LISTI GNN (ring-statistics stand-in for Δτ, 2 epochs); write them to
    ``folder``; return their paths by CLI name."""
    torch.manual_seed(seed)
    samples = small_monolayers(6, seed=seed)
    for s in samples:
        s.set_array("small", small_ring_label(s))
    paths = {k: folder / f"{k}.safetensors" for k in ("softness", "cnn", "listi")}
    svm, _ = train(AtomDataset(samples[:3], ["a", "b", "c"], "small"), fc22_descriptor(), ("Si",),
                   TrainingSettings(C=(1.0,)), evaluate=False)
    svm.save(paths["softness"])
    images = images_from_structures(samples, [f"s{k}" for k in range(6)], "mu2", ImageSettings(size=32, pixels=64),
                                    progress=False)
    cnn, _ = train_and_evaluate(images, ResNetConfig(blocks=(1, 1, 1, 1), widths=(4, 8, 8, 8), stem=4),
                                ImageTrainSettings(epochs=2, batch_size=8, n_shifts=2, val_copies=2, seed=seed))
    cnn.save(paths["cnn"])
    big = small_monolayers(3, rings=(10, 10), seed=seed)
    parts = []
    for k, s in enumerate(big):
        g = window_graphs(SiNetwork.from_structure(s), grid_centres(s.box, 5), 0.0, WindowSpec(), sample=k)
        f = g.ring_features
        g.y[:] = 0.15 - 0.01 * (f[:, 0] + f[:, 1])  # more 4- and 5-rings, lower threshold (N/m)
        parts.append(g)
    listi, _ = Trainer("gnn", GraphSet.concatenate(parts), {"train": [0], "validation": [1], "test": [2]},
                       settings=TrainSettings(epochs=2, patience=2, seed=seed)).run()
    listi.save(paths["listi"])
    return paths
