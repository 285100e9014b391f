"""Outputs of loading tests: the run folder (curve, labels, snapshots) and its figures (stress–strain
curve with events, sample with the failure marked)."""

import json
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from glassfrac.core.files import atomic_open, save_png
from glassfrac.core.outputs import OutputFolder
from glassfrac.labels import LabelSet, TensionLabels
from glassfrac.structure import write


def _figure(width=6.0, height=4.0):
    fig = Figure(figsize=(width, height), dpi=120)
    return fig, fig.add_subplot()


def plot_stress_strain(result, path) -> None:
    """Stress measure versus strain, events marked by their kind."""
    fig, ax = _figure()
    c = result.curve.arrays()
    ax.plot(c["strain"], c["stress"], "-", color="0.2", lw=1.2, marker=".", ms=3)
    colours = {"bond_break": "tab:red", "stress_drop": "tab:blue", "energy_drop": "tab:orange"}
    seen = set()
    for e in result.events:
        kind = "bond_break" if "bond_break" in e.kind else e.kind[0]
        ax.axvline(e.strain, color=colours.get(kind, "k"), ls=":", lw=1,
                   label=None if kind in seen else kind.replace("_", " "))
        seen.add(kind)
    ax.set_xlabel("strain")
    ax.set_ylabel(f"stress ({result.stress_unit})")
    ax.set_title(f"{result.settings.path.replace('_', ' ')}: {len(result.events)} events")
    if seen:
        ax.legend(frameon=False, fontsize=8)
    save_png(fig, path)


def plot_sample_with_failure(result, path, crack_atoms=(), rupture_location=None) -> None:
    """Undeformed sample (top layer for sheets) with the ``crack_atoms``, the first break at
    ``rupture_location`` (Å) and the events."""
    fig, ax = _figure(6.0, 6.0)
    ref = result.reference
    pos = ref.box.wrap(ref.positions)
    top = pos[:, 2] >= np.median(pos[:, 2]) if ref.dim == 3 else np.ones(ref.n_atoms, bool)
    si = (ref.species == "Si") & top
    ax.scatter(pos[si, 0], pos[si, 1], s=4, c="0.6", lw=0, label="Si")
    crack = np.asarray(crack_atoms, dtype=int)
    if len(crack):
        ax.scatter(pos[crack, 0], pos[crack, 1], s=10, c="tab:red", lw=0, label="crack atoms")
    if rupture_location is not None:
        x, y = rupture_location[:2]
        ax.scatter([x], [y], s=160, facecolors="none", edgecolors="k", lw=2, label="first break")
    for k, e in enumerate(result.events[:9]):
        if "bond_break" not in e.kind:
            ax.annotate(str(k + 1), e.location[:2], color="tab:blue", fontsize=9, ha="center", va="center",
                        bbox=dict(boxstyle="circle", fc="white", ec="tab:blue", lw=1))
    cell = ref.box.cell[:2, :2]
    corners = np.array([[0, 0], cell[0], cell[0] + cell[1], cell[1], [0, 0]]) + ref.box.origin[:2]
    ax.plot(corners[:, 0], corners[:, 1], "k-", lw=0.8)
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    save_png(fig, path)


def plot_curves(curves, path, xlabel: str, ylabel: str, title: str = "") -> None:
    """Several stress–strain curves, ``curves`` = [(strain, stress, group label)], one colour per group."""
    fig, ax = _figure()
    groups = list(dict.fromkeys(label for _, _, label in curves))
    colours = {g: matplotlib.colormaps["tab10"](k % 10) for k, g in enumerate(groups)}
    seen = set()
    for strain, stress, label in curves:
        ax.plot(strain, stress, "-", color=colours[label], lw=1.0, alpha=0.8, label=None if label in seen else label)
        seen.add(label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    save_png(fig, path)


RUN_FILES = ("curve.csv", "labels.npz", "labels.json", "reference.xyz", "final.xyz", "stress_strain.png",
             "sample.png")
"""Files :func:`save_run` always writes (plus ``event_NNN.xyz`` per event with a snapshot)."""


def save_run(result, labels: LabelSet, directory, figures: bool = True) -> dict:
    """Write curve.csv, the labels (labels.npz, :class:`~glassfrac.labels.LabelSet`; their record also as
    labels.json, to read), snapshots (extxyz) and, with ``figures``, the figures into ``directory``; returns the
    labels' JSON record.

    ``directory``: a path (files in it are replaced), or a :class:`~glassfrac.core.outputs.OutputFolder`,
    whose rule then applies to every file (the caller calls its ``finish()``)."""
    if isinstance(directory, OutputFolder):
        out = directory.file
    else:
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        out = folder.joinpath
    c = result.curve.arrays()
    with atomic_open(out("curve.csv")) as handle:
        handle.write(f"strain,stress_{result.stress_unit.replace('/', '_per_')},energy_eV,iterations,converged\n")
        for row in zip(c["strain"], c["stress"], c["energy"], c["iterations"], c["converged"], strict=True):
            handle.write(f"{row[0]:.10g},{row[1]:.10g},{row[2]:.12g},{int(row[3])},{int(row[4])}\n")
    record = labels.save(out("labels.npz"))
    with atomic_open(out("labels.json")) as handle:
        json.dump(record, handle, indent=1)
    write(result.reference, out("reference.xyz"))
    write(result.final, out("final.xyz"))
    for k, event in enumerate(result.events):
        if event.after is not None:
            write(event.after, out(f"event_{k + 1:03d}.xyz"))
    if not figures:
        return record
    plot_stress_strain(result, out("stress_strain.png"))
    marks = {}
    if isinstance(labels, TensionLabels):
        marks = {"crack_atoms": labels.crack_atoms, "rupture_location": labels.rupture_location}
    plot_sample_with_failure(result, out("sample.png"), **marks)
    return record
