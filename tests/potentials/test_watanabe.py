"""Watanabe 2004 Si–O potential: the FC22 reference bilayer, an independent loop
implementation written from reference/potentials.md §2, finite differences (including
coordinations inside the switching window; on a generated, relaxed bilayer), conventions and
batching."""

import itertools
import math

import numpy as np
import pytest
import torch

from glassfrac import Box, Structure, read
from glassfrac.potentials import VerletList, get_potential
from glassfrac.potentials.watanabe import CUTOFF, EPSILON, SIGMA, Watanabe, g_o, g_si

# -- an independent implementation: loops over neighbours, constants typed from the sheet --

THIRD = -1.0 / 3.0
TWO = {("Si", "Si"): (7.04955, 0.60222, 4.0, 0.0, 1.8), ("Si", "O"): (21.0, 0.038, 5.3, -1.1, 1.3),
       ("O", "O"): (-12.29, 0.0, 0.0, 2.24, 1.25)}
THREE = {  # (centre, ij neighbour, ik neighbour): (mu, nu, xi, z0, aij, aik, gij, gik, c0, alpha) per term
    ("Si", "Si", "Si"): [(4.0, 0, 0, 0, 1.2, 1.2, 0.088, 0.088, THIRD, -1.35),
                         (5.878, 1.6, 6.0, 0, 1.8, 1.8, 1.01, 1.01, THIRD, 0.3)],
    ("Si", "Si", "O"): [(3.0, 3.6, 2.0, 2.6, 1.15, 1.10, 0.032, 0.124, THIRD, 0.3),
                        (5.878, 0, 0, 0, 1.8, 1.5, 1.01, 1.082079, THIRD, 0.3)],
    ("Si", "O", "O"): [(10.5, 0, 0, 0, 1.1, 1.1, 0.31, 0.31, THIRD, 0.0)],
    ("O", "Si", "Si"): [(2.5, 0, 0, 0, 1.2, 1.2, 0.15, 0.15, -0.812, 1.6)],
}


def g_si_ref(z):
    p1, p2, p3, p4 = 0.303672895420570, 3.93232680731067, 0.253450103965147, 0.856344826609515
    return (p1 * math.sqrt(z + p2) - p4) * math.exp(p3 / (z - 4)) + p4 if z < 4 else p4


def g_o_ref(z):
    return 5.2740 / (math.exp((0.7120 - z) / 0.5220) + 1) * math.exp(-0.0372 * (z + 4.52) ** 2)


def fc_ref(r):
    if r < 1.15:
        return 1.0
    if r >= 1.25:
        return 0.0
    return 1 - (r - 1.15) / 0.1 + math.sin(math.pi * (r - 1.15) / 0.05) / (2 * math.pi)


def neighbour_lists(s):
    """Per atom: (j, vector / sigma, r / sigma) of all neighbours within 1.8 sigma (images +-2)."""
    reach = [range(-2, 3) if p else range(1) for p in s.box.pbc]
    out = [[] for _ in range(s.n_atoms)]
    for i, j in itertools.product(range(s.n_atoms), repeat=2):
        for n in itertools.product(*reach):
            if i == j and not any(n):
                continue
            v = (s.positions[j] + np.asarray(n) @ s.box.cell - s.positions[i]) / SIGMA
            r = float(np.linalg.norm(v))
            if r < 1.8:
                out[i].append((j, v, r))
    return out


def reference_coordination(s):
    nbs = neighbour_lists(s)
    return np.array([sum(fc_ref(r) for j, _, r in nbs[i] if s.species[j] != s.species[i])
                     for i in range(s.n_atoms)])


def reference_energy(s, eps=EPSILON, three=THREE):
    """Total energy (eV): each pair seen from both ends (×½), each triplet once per centre."""
    sp, nbs, z = s.species, neighbour_lists(s), reference_coordination(s)
    g = [g_si_ref(z[i]) if sp[i] == "Si" else g_o_ref(z[i]) for i in range(s.n_atoms)]
    e = 0.0
    for i in range(s.n_atoms):
        for j, _, r in nbs[i]:
            big_a, b, p, q, a = TWO[tuple(sorted((sp[i], sp[j]), reverse=True))]
            if r < a:
                gij = g[i] * g[j] if sp[i] != sp[j] else 1.0
                e += 0.5 * eps * gij * big_a * (b * r ** -p - r ** -q) * math.exp(1 / (r - a))
        for (j, vj, rj), (k, vk, rk) in itertools.combinations(nbs[i], 2):
            if (sp[i], sp[j], sp[k]) not in three:  # put the legs in the table's order
                (j, vj, rj), (k, vk, rk) = (k, vk, rk), (j, vj, rj)
            for mu, nu, xi, z0, aij, aik, gij, gik, c0, alpha in three.get((sp[i], sp[j], sp[k]), []):
                if rj < aij and rk < aik:
                    lam = mu * (1 + nu * math.exp(-xi * (z[i] - z0) ** 2))
                    dc = vj @ vk / (rj * rk) - c0
                    e += eps * lam * math.exp(gij / (rj - aij) + gik / (rk - aik)) * (dc ** 2 + alpha * dc ** 3)
    return e


# -- structures ---------------------------------------------------------------------------

TRICLINIC = np.array([[5.2, 0.0, 0.0], [1.3, 5.0, 0.0], [0.7, -0.9, 5.4]])
TINY = np.array([[3.3, 0.0, 0.0], [1.0, 5.5, 0.0], [0.5, 0.4, 6.0]])


def random_cluster(species, seed, size=None, cell=None):
    """Atoms at random, at least 1.5 Å apart (also from periodic images when ``cell`` is given)."""
    rng = np.random.default_rng(seed)
    images = [np.asarray(n) @ cell for n in itertools.product(range(-1, 2), repeat=3)] if cell is not None \
        else [np.zeros(3)]
    pos = []
    while len(pos) < len(species):
        x = rng.uniform(0, 1, 3) @ cell if cell is not None else rng.uniform(0, size, 3)
        if all(np.linalg.norm(x - y - n) >= 1.5 for y in pos for n in images):
            pos.append(x)
    box = Box(cell, True) if cell is not None else Box(np.eye(3) * 30.0, False)
    return Structure(np.array(pos), species, box)


def open_cluster():
    """4 Si + 3 O: Si–O in the window, Si–Si–Si term 1, Si–Si–O term 1 at non-integer z."""
    return random_cluster(["Si"] * 4 + ["O"] * 3, seed=11, size=4.5)


def periodic_cluster():
    """3 Si + 5 O in a small triclinic cell (atoms see several images of each other)."""
    return random_cluster(["Si"] * 3 + ["O"] * 5, seed=0, cell=TRICLINIC)


def tiny_cell_cluster():
    """2 Si + 3 O in a cell with a 3.3 Å lattice vector: every atom sees its own images."""
    return random_cluster(["Si"] * 2 + ["O"] * 3, seed=3, cell=TINY)


def lambda2_cluster():
    """A Si triangle (sides < 2.5 Å) and one O inside the window of Si 0 only: 0 < z_Si0 < 1,
    where lambda2 of Si–Si–Si depends on z."""
    pos = [[0, 0, 0], [2.35, 0, 0], [1.1, 2.1, 0.3], [-1.45, -1.97, 0.84]]
    jitter = np.random.default_rng(3).normal(0, 0.02, (4, 3))
    return Structure(np.array(pos, float) + jitter, ["Si", "Si", "Si", "O"], Box(np.eye(3) * 30.0, False))


def strained_bilayer(bilayer, seed=0):
    s = bilayer.deformed([[1.03, 0.01, 0.0], [0.0, 0.99, 0.0], [0.0, 0.0, 1.0]])
    s.positions += np.random.default_rng(seed).normal(0, 0.05, s.positions.shape)
    return s


def energy(pot, s):
    return pot.evaluate([s])[0]["energy"]


def finite_difference(pot, s, atoms, h=1e-5, strain=1e-6):
    """−dE/dx of ``atoms`` (len, 3) and W_ab = −dE/dε_ba (3, 3) by central differences."""
    forces = np.zeros((len(atoms), 3))
    for n, (a, k) in enumerate(itertools.product(atoms, range(3))):
        e = []
        for sign in (1, -1):
            t = s.copy()
            t.positions[a, k] += sign * h
            e.append(energy(pot, t))
        forces[n // 3, k] = -(e[0] - e[1]) / (2 * h)
    virial = np.zeros((3, 3))
    for a, b in itertools.product(range(3), repeat=2):
        e = []
        for sign in (1, -1):
            F = np.eye(3)
            F[b, a] += sign * strain
            e.append(energy(pot, s.deformed(F)))
        virial[a, b] = -(e[0] - e[1]) / (2 * strain)
    return forces, virial


# -- tests ----------------------------------------------------------------------------------

def test_softening_check_values():
    z = torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=torch.float64)
    assert g_si(z[:2]).tolist() == pytest.approx([0.8563448, 0.8122652], abs=5e-8)
    assert g_o(z[2:]).tolist() == pytest.approx([1.0000045, 1.0772680], abs=5e-8)
    assert g_si(torch.tensor([4.7], dtype=torch.float64)).item() == 0.856344826609515


def test_parameters_and_cutoff():
    pot = get_potential("watanabe")
    assert isinstance(pot, Watanabe)
    assert pot.species == ("Si", "O")
    assert pot.cutoff == pytest.approx(3.77118, abs=1e-12)
    assert pot.parameters()["epsilon_eV"] == EPSILON == 2.1672383
    assert get_potential("watanabe", epsilon=2.1683).parameters()["epsilon_eV"] == 2.1683


@pytest.mark.shared_data
def test_fc22_reference_bilayer(fc22_bilayer_path):
    s = read(fc22_bilayer_path)
    res = Watanabe().evaluate([s], per_atom=True)[0]
    assert abs(res["energy"] - (-16038.230)) < 1e-3
    assert np.abs(res["per_atom_energy"] - s.arrays["c_peratom"]).max() < 1e-5
    assert np.abs(res["forces"]).max() < 1e-7
    assert res["per_atom_energy"].sum() == pytest.approx(res["energy"], abs=1e-9)
    assert np.allclose(res["per_atom_virial"].sum(axis=0), res["virial"], atol=1e-9)


def test_energy_equals_loop_implementation(generated):
    piece = generated.bilayer()  # atoms of a 12 Å x 12 Å corner, open boundaries: broken bonds at the edges
    piece = piece.select((piece.positions[:, 0] < 12) & (piece.positions[:, 1] < 12))
    assert piece.n_atoms > 50
    piece.box = Box(piece.box.cell, False)
    pot = Watanabe()
    for s in (open_cluster(), periodic_cluster(), tiny_cell_cluster(), lambda2_cluster(), piece):
        assert energy(pot, s) == pytest.approx(reference_energy(s), rel=1e-12, abs=1e-12)


def test_structures_exercise_the_terms_the_reference_does_not():
    pot = Watanabe()

    def distances(s, a, kind):
        return [np.linalg.norm(s.positions[b] - s.positions[a]) for b in range(s.n_atoms)
                if b != a and s.species[b] == kind]

    s = open_cluster()
    z = pot.coordination([s])[0]
    assert np.allclose(z, reference_coordination(s), atol=1e-14)
    fractional = np.abs(z - np.round(z)) > 1e-3
    assert (fractional & (s.species == "Si") & (z < 4)).any() and (fractional & (s.species == "O")).any()
    si = np.flatnonzero(s.species == "Si")
    # Si–Si–Si term 1: a Si with two Si within 1.2 sigma; Si–Si–O term 1 at non-integer z
    assert any(sum(d < 1.2 * SIGMA for d in distances(s, a, "Si")) >= 2 for a in si)
    assert min(min(distances(s, a, "Si")) for a in si) < 2.5
    assert any(fractional[a] and min(distances(s, a, "Si")) < 1.15 * SIGMA and min(distances(s, a, "O")) < 1.1 * SIGMA
               for a in si)
    s = lambda2_cluster()
    z = pot.coordination([s])[0]
    assert 0.2 < z[0] < 0.8 and sorted(distances(s, 0, "Si"))[1] < 1.2 * SIGMA
    for s in (periodic_cluster(), tiny_cell_cluster()):
        z = pot.coordination([s])[0]
        assert np.allclose(z, reference_coordination(s), atol=1e-14)
        assert (np.abs(z - np.round(z)) > 1e-3).sum() >= 2


@pytest.mark.parametrize("make", [open_cluster, periodic_cluster, tiny_cell_cluster, lambda2_cluster])
def test_forces_and_virial_match_finite_differences(make):
    s = make()
    pot = Watanabe()
    res = pot.evaluate([s])[0]
    forces, virial = finite_difference(pot, s, range(s.n_atoms))
    scale = 1e-6 * max(1.0, np.abs(res["forces"]).max())
    assert np.abs(res["forces"] - forces).max() < scale
    assert np.abs(res["virial"] - virial).max() < 1e-6 * max(1.0, np.abs(virial).max())
    assert np.abs(res["forces"]).max() > 1.0  # not a trivial configuration


def test_strained_bilayer_matches_finite_differences(generated):
    s = strained_bilayer(generated.bilayer())
    pot = Watanabe()
    res = pot.evaluate([s])[0]
    atoms = np.random.default_rng(1).choice(s.n_atoms, 6, replace=False)
    forces, virial = finite_difference(pot, s, atoms, h=1e-4, strain=1e-6)
    assert np.abs(res["forces"][atoms] - forces).max() < 1e-6
    assert np.abs(res["virial"] - virial).max() < 1e-4 * np.abs(virial).max()
    assert np.abs(virial).max() > 100.0


def test_mixed_triplets_are_leg_specific():
    # Si 0 centre, Si 1 at 2.3 Å (< 1.15 sigma) and O 2 at 1.7 Å: both Si–Si–O terms act
    pos = np.array([[0.0, 0.0, 0.0], [2.3, 0.1, 0.0], [-0.6, 1.55, 0.3]])
    s = Structure(pos, ["Si", "Si", "O"], Box(np.eye(3) * 30.0, False))
    pot = Watanabe()
    e = energy(pot, s)
    assert e == pytest.approx(reference_energy(s), rel=1e-13)
    for order in itertools.permutations(range(3)):
        t = Structure(pos[list(order)], s.species[list(order)], s.box)
        assert energy(pot, t) == pytest.approx(e, rel=1e-13)
    # the legs matter: the Si–Si–O parameters with the legs exchanged give another energy
    swapped = {key: value for key, value in THREE.items() if key != ("Si", "Si", "O")}
    swapped[("Si", "O", "Si")] = THREE[("Si", "Si", "O")]
    assert abs(reference_energy(s, three=swapped) - e) > 0.01


def test_coordination_counts_unlike_neighbours_only():
    # O 1 bonded to Si 0; O 2 and Si 3 at 2.5 Å (inside the window) from O 1 and Si 0 only
    pos = np.array([[0.0, 0.0, 0.0], [1.6, 0.0, 0.0], [4.1, 0.0, 0.0], [-1.0, 2.29, 0.0]])
    s = Structure(pos, ["Si", "O", "O", "Si"], Box(np.eye(3) * 30.0, False))
    pot = Watanabe()
    assert np.linalg.norm(pos[3] - pos[0]) == pytest.approx(2.5, abs=0.01)
    assert pot.coordination([s])[0] == pytest.approx([1.0, 1.0, 0.0, 0.0], abs=1e-15)
    # the O–O pair in the window adds its pair energy and nothing else (no change of g_O)
    sio, oo = (Structure(pos[idx], s.species[idx], s.box) for idx in ([0, 1], [1, 2]))
    with_sisi = energy(pot, s)
    without = energy(pot, s.select([0, 1, 2]))
    assert without == pytest.approx(energy(pot, sio) + energy(pot, oo), rel=1e-14)
    assert with_sisi == pytest.approx(reference_energy(s), rel=1e-13)


def test_epsilon_scales_everything_linearly():
    s = periodic_cluster()
    one, default = (Watanabe(epsilon=eps).evaluate([s], per_atom=True)[0] for eps in (1.0, EPSILON))
    for key in ("energy", "forces", "virial", "per_atom_energy", "per_atom_virial"):
        assert np.allclose(np.asarray(default[key]), EPSILON * np.asarray(one[key]), rtol=1e-13, atol=1e-13)


def test_batch_equals_each_alone_and_per_atom_parts_sum_up():
    systems = [open_cluster(), periodic_cluster(), lambda2_cluster()]
    pot = Watanabe()
    together = pot.evaluate(systems, per_atom=True)
    for s, res in zip(systems, together, strict=True):
        alone = pot.evaluate([s], per_atom=True)[0]
        for key in ("energy", "forces", "virial", "per_atom_energy", "per_atom_virial"):
            assert np.allclose(res[key], alone[key], rtol=1e-13, atol=1e-12)
        assert res["per_atom_energy"].sum() == pytest.approx(res["energy"], rel=1e-13, abs=1e-12)
        assert np.allclose(res["per_atom_virial"].sum(axis=0), res["virial"], rtol=1e-13, atol=1e-12)


def test_cached_triplets_follow_moves_and_cell_changes(generated):
    s = strained_bilayer(generated.bilayer(), seed=2)
    pot = Watanabe(margin=0.5)
    verlet = VerletList(pot.cutoff, skin=1.0)
    rng = np.random.default_rng(4)
    batch = pot.batch([s])
    pot.compute(batch, verlet.update(batch))
    # reused while no pair can have shrunk by 0.5 Å: moves count twice, compressions by cutoff x strain
    steps = [(0.1, np.eye(3), True), (0.0, np.diag([1.001, 0.999, 1.0]), True), (0.3, np.eye(3), False),
             (0.0, np.diag([1.05, 1.0, 1.0]), True), (0.0, np.diag([0.85, 1.0, 1.0]), False)]
    for amplitude, F, reused in steps:
        s = s.deformed(F)
        direction = rng.normal(size=s.positions.shape)
        s.positions += amplitude * direction / np.linalg.norm(direction, axis=1, keepdims=True)
        batch = pot.batch([s])
        before = pot._cache
        res = pot.compute(batch, verlet.update(batch), per_atom=True)
        assert (pot._cache is before) == reused
        fresh = Watanabe().evaluate([s], per_atom=True)[0]
        assert float(res.energy[0]) == pytest.approx(fresh["energy"], abs=1e-9)
        assert np.abs(res.forces.numpy() - fresh["forces"]).max() < 1e-10
        assert np.abs(res.per_atom_energy.numpy() - fresh["per_atom_energy"]).max() < 1e-11


def test_forces_under_no_grad():
    s = periodic_cluster()
    pot = Watanabe()
    with torch.no_grad():
        quiet = pot.evaluate([s])[0]
    assert np.array_equal(quiet["forces"], pot.evaluate([s])[0]["forces"])
    assert np.abs(quiet["forces"]).max() > 1.0


def test_two_dimensional_input_is_rejected():
    s = Structure([[0.0, 0.0], [1.6, 0.0]], ["Si", "O"], Box([20.0, 20.0], True))
    with pytest.raises(ValueError, match="3D"):
        Watanabe().evaluate([s])


def test_pairs_of_the_skin_and_beyond_each_range_do_nothing():
    # Si–Si just beyond the cutoff, Si–O beyond 1.3 sigma, O–O beyond 1.25 sigma: no energy
    cases = [(["Si", "Si"], CUTOFF + 0.2), (["Si", "O"], 1.31 * SIGMA), (["O", "O"], 1.26 * SIGMA)]
    pot = Watanabe()
    for species, r in cases:
        s = Structure([[0.0, 0.0, 0.0], [r, 0.0, 0.0]], species, Box(np.eye(3) * 30.0, False))
        batch = pot.batch([s])
        pairs = VerletList(pot.cutoff, skin=1.0).update(batch)
        assert pairs.i.numel() == 1
        res = pot.compute(batch, pairs)
        assert float(res.energy[0]) == 0.0 and not res.forces.any() and not res.virial.any()
