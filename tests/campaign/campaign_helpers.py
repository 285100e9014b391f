"""A cheap sample pipeline for campaign tests: perturbed crystalline silica monolayers.

``honeycomb_monolayer`` is a ``[[samples]] generator``: a periodic honeycomb of Si (Si–Si
3.05 Å) with O at the bond midpoints, every atom displaced by up to ``jitter`` Å with the
sample's seed. ``energy_labels`` is a test stage: per-atom energies of the relaxed sample as
labels and as a file.
"""

import os
from pathlib import Path

import numpy as np

from glassfrac.structure import Box, Structure

SI_SI = 3.05
"""Si–Si distance of the honeycomb, Å."""
HERE = Path(__file__).resolve().parent


def honeycomb_monolayer(spec, jitter: float = 0.05, fail_marker: str | None = None,
                        origin: tuple = (0.0, 0.0)) -> Structure:
    """Si honeycomb of ``spec.rings`` hexagons with bridging O, randomly displaced (seeded), in a box whose
    corner is at ``origin`` (Å).

    Raises RuntimeError for odd sample indices while the file ``fail_marker`` exists.
    """
    from scipy.spatial import cKDTree

    if fail_marker and spec.index % 2 and Path(fail_marker).exists():
        raise RuntimeError(f"marker {fail_marker} present")

    nx, ny = spec.rings
    a, h = np.sqrt(3.0) * SI_SI, 1.5 * SI_SI
    lengths = np.array([nx * a, ny * h])
    rows, cols = np.divmod(np.arange(nx * ny), nx)
    centres = np.column_stack([(cols + 0.5 * (rows % 2) + 0.25) * a, (rows + 0.5) * h])
    angles = np.pi / 2 + np.arange(6) * np.pi / 3  # pointy-top hexagons
    corners = SI_SI * np.column_stack([np.cos(angles), np.sin(angles)])
    vertices = np.mod((centres[:, None] + corners[None]).reshape(-1, 2), lengths)
    tree = cKDTree(np.mod(vertices + 1e-6, lengths), boxsize=lengths)
    groups = tree.query_ball_point(np.mod(vertices + 1e-6, lengths), 0.1)
    si = vertices[sorted({min(g) for g in groups})]
    tree = cKDTree(si, boxsize=lengths)
    pairs = np.array(sorted(tree.query_pairs(SI_SI * 1.01)))
    box = Box(np.diag(lengths), True)
    d = box.minimum_image(si[pairs[:, 1]] - si[pairs[:, 0]])
    oxygen = si[pairs[:, 0]] + 0.5 * d
    positions = np.concatenate([si, oxygen])
    rng = np.random.default_rng(spec.seed)
    positions = box.wrap(positions + rng.uniform(-jitter, jitter, positions.shape)) + np.asarray(origin, float)
    species = ["Si"] * len(si) + ["O"] * len(oxygen)
    return Structure(positions, species, Box(np.diag(lengths), True, origin),
                     info={"generator": "honeycomb_monolayer"})


def energy_labels(ctx) -> None:
    """Per-atom potential energies (eV) of the sample: total as a label, the field as a file."""
    result = ctx.potential().evaluate([ctx.structure], per_atom=True)[0]
    energy = result["per_atom_energy"]
    ctx.keys["energy_per_atom"] = float(energy.mean())
    ctx.arrays["potential_energy"] = energy
    ctx.data["energy"] = {"total": result["energy"], "stress": result["stress"]}
    ctx.data["energy_file"] = ctx.write_array("energy/per_atom.npy", energy)


def cheap_config(directory, name="cheap", count=3, mu2=(0.3, 0.6), tests='["campaign_helpers:energy_labels"]',
                 options="{}", extra="") -> str:
    """TOML of a campaign of perturbed 4 x 4 honeycomb monolayers, relaxed, with energy labels."""
    return f"""
[campaign]
name = "{name}"
seed = 11

[[samples]]
kind = "monolayer"
rings = [4, 4]
mu2 = {list(mu2)}
count = {count}
generator = "campaign_helpers:honeycomb_monolayer"
options = {options}

[relax]
method = "lbfgs"
fmax = 1e-4

[tests]
run = {tests}

[output]
directory = "{directory}"
{extra}
"""


def subprocess_env() -> dict:
    """Environment for a ``glassfrac`` subprocess that can import ``campaign_helpers``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["GLASSFRAC_THREADS"] = "1"
    return env


def same(a, b) -> bool:
    """Deep equality of nested dicts, lists, arrays and scalars (arrays: equal values and shapes)."""
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(
            same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        x, y = np.asarray(a), np.asarray(b)
        if x.dtype == object or y.dtype == object:
            return len(a) == len(b) and all(same(u, v) for u, v in zip(a, b, strict=True))
        return x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    return a == b or (a != a and b != b)
