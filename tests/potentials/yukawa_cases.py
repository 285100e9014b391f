"""Structures on which the Yukawa potential is checked (finite differences, LAMMPS), built
from one relaxed 2D silica monolayer: periodic, open cluster, triclinic, mixed periodicity, 3D."""

import numpy as np

from glassfrac import Box, Structure


def yukawa_cases(base: Structure, seed: int = 0) -> dict[str, Structure]:
    """Named test structures from ``base`` (a periodic 2D monolayer at least 40 Å across); every
    one is perturbed (0.05 Å) so that forces are not small."""
    rng = np.random.default_rng(seed)
    periodic = base.copy()
    periodic.positions = base.positions + rng.normal(0.0, 0.05, base.positions.shape)
    centre = periodic.positions.mean(axis=0)
    cluster = periodic.select(np.linalg.norm(periodic.positions - centre, axis=1) < 12.0)
    cluster.box = Box(cluster.box.cell, False)
    mixed = periodic.copy()
    mixed.box = Box(periodic.box.cell, [True, False])
    # sheared and rotated; then b -> b + a (the same lattice) for a tilt beyond half a period
    triclinic = periodic.deformed(np.array([[1.03, 0.12], [0.05, 0.98]]))
    a, b = triclinic.box.cell
    triclinic.box = Box([a, b + a], True)
    left_handed = periodic.copy()  # a and b swapped: LAMMPS sees it reflected
    left_handed.box = Box(periodic.box.cell[::-1], True)
    # 3D: three shifted copies of a 40 Å x 40 Å patch, 3 Å apart, in a periodic triclinic cell
    layer = periodic.select((periodic.positions[:, 0] < 40.0) & (periodic.positions[:, 1] < 40.0))
    a, b = periodic.box.cell
    layers = [np.column_stack([layer.positions + shift, np.full(layer.n_atoms, z)])
              for shift, z in (((0, 0), 0.0), ((1.3, 0.7), 3.0), ((-0.6, 1.5), 6.0))]
    cell3 = np.array([[a[0], a[1], 0.0], [b[0], b[1], 0.0], [1.0, -0.5, 9.0]])
    bulk = Structure(np.concatenate(layers), np.tile(layer.species, 3), Box(cell3, True))
    sheet = bulk.copy()  # the same, open along z
    sheet.box = Box(cell3, [True, True, False])
    return {"periodic": periodic, "cluster": cluster, "mixed": mixed, "triclinic": triclinic,
            "left_handed": left_handed, "bulk3d": bulk, "sheet3d": sheet}
