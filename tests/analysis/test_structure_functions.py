"""Structure functions: equal to a brute-force loop (2D, 3D triclinic, images beyond the cell),
invariant to translation and rotation without load, not invariant to rotation with the FC22
strained copy, feature counts and names, chunking, 2D = 3D sheet."""

import itertools

import numpy as np
import pytest

from glassfrac import Box, Structure
from glassfrac.analysis.structure_functions import (
    GAUSSIAN_REACH,
    StructureFunctions,
    du21_descriptor,
    fc22_descriptor,
    species_pairs,
)

SPECIES = ("O", "Si")
CENTERS = tuple(np.arange(0.5, 6.01, 0.25))
ANGULAR = ((2.0, 1, 1), (3.0, -1, 2), (2.5, 1, 4), (2.5, -1, 16))


def random_structure(cell, pbc, n, seed, min_distance=0.9):
    """``n`` atoms (O and Si) placed at random in ``cell`` with a minimum (periodic) spacing."""
    rng = np.random.default_rng(seed)
    box = Box(cell, pbc)
    dim = box.dim
    points = []
    while len(points) < n:
        p = rng.random(dim) @ box.cell
        if all(np.linalg.norm(box.minimum_image(p - q)) > min_distance for q in points):
            points.append(p)
    return Structure(np.array(points), rng.choice(SPECIES, n), box)


def brute_force(structure, centers, width, cutoff, angular, angular_cutoff, truncate=True):
    """The documented sums, by explicit loops over atoms, partners and periodic images."""
    box, pos = structure.box, structure.positions
    reach = int(np.ceil(cutoff / (1.0 / np.linalg.norm(np.linalg.inv(box.cell), axis=0)).min())) + 1
    ranges = [range(-reach, reach + 1) if p else range(1) for p in box.pbc]
    images = np.array(list(itertools.product(*ranges)))
    pairs = species_pairs(SPECIES)
    n = structure.n_atoms
    radial = np.zeros((n, len(SPECIES), len(centers)))
    ang = np.zeros((n, len(pairs), len(angular)))
    for i in range(n):
        near = []  # (species, vector) of every neighbour image within the cutoff
        for j in range(n):
            for img in images:
                v = pos[j] + img @ box.cell - pos[i]
                r = np.linalg.norm(v)
                if 0 < r < cutoff:
                    near.append((structure.species[j], v))
                    for k, mu in enumerate(centers):
                        if not truncate or abs(r - mu) <= GAUSSIAN_REACH * width:
                            radial[i, SPECIES.index(structure.species[j]), k] += np.exp(-((r - mu) / width) ** 2)
        close = [(s, v) for s, v in near if np.linalg.norm(v) < angular_cutoff]
        for a in range(len(close)):
            for b in range(a + 1, len(close)):
                (sa, va), (sb, vb) = close[a], close[b]
                ra, rb, rc = np.linalg.norm(va), np.linalg.norm(vb), np.linalg.norm(vb - va)
                cos = va @ vb / (ra * rb)
                p = pairs.index(tuple(sorted((sa, sb), key=SPECIES.index)))
                for k, (xi, lam, zeta) in enumerate(angular):
                    ang[i, p, k] += np.exp(-(ra**2 + rb**2 + rc**2) / xi**2) * (1 + lam * cos) ** zeta
    return np.hstack([radial.reshape(n, -1), ang.reshape(n, -1)])


def descriptor(**kw):
    params = dict(species=SPECIES, radial_centers=CENTERS, radial_width=0.3, cutoff=6.0, angular=ANGULAR,
                  angular_cutoff=4.0)
    params.update(kw)
    return StructureFunctions(**params).fit()


def rotation_2d(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def rotated(structure, R):
    """The structure rotated rigidly by R (positions and cell vectors)."""
    return Structure(structure.positions @ R.T, structure.species, Box(structure.box.cell @ R.T, structure.box.pbc))


@pytest.fixture(scope="module")
def silica(generated):
    return generated.monolayer("sig_0.70")


def test_equal_brute_force_2d_small_periodic_cell():
    # oblique 5.6 x 6.2 Å cell, 6 Å cutoff: partners in several images, atoms see their own images
    s = random_structure([[5.6, 0.0], [1.5, 6.0]], True, 12, seed=1)
    got = descriptor().transform([s])
    want = brute_force(s, CENTERS, 0.3, 6.0, ANGULAR, 4.0)
    assert got.shape == (12, 2 * len(CENTERS) + 3 * len(ANGULAR))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # dropped Gaussian tails (|r - mu| > 5 w) change nothing above 1e-9
    untruncated = brute_force(s, CENTERS, 0.3, 6.0, (), 4.0, truncate=False)
    np.testing.assert_allclose(got[:, : 2 * len(CENTERS)], untruncated, atol=1e-9)
    assert np.abs(got).max() > 1.0


def test_equal_brute_force_3d_triclinic_mixed_periodicity():
    cell = [[7.5, 0.0, 0.0], [2.0, 7.0, 0.0], [1.0, -1.5, 9.0]]
    s = random_structure(cell, [True, True, False], 24, seed=2, min_distance=1.2)
    got = descriptor(cutoff=5.0, angular_cutoff=3.5).transform(s)
    want = brute_force(s, CENTERS, 0.3, 5.0, ANGULAR, 3.5)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_triplet_chunks_give_the_same_features():
    s = random_structure([[9.0, 0.0], [0.0, 8.0]], True, 25, seed=3)
    whole = descriptor().transform(s)
    chunked = descriptor(max_triplets=7).transform(s)  # many chunks, some centres alone
    np.testing.assert_array_equal(whole, chunked)


def test_invariant_to_translation_and_rotation_without_load(silica):
    sf = fc22_descriptor().set_params(strain=None).fit([silica])
    ref = sf.transform(silica)
    shifted = Structure(silica.box.wrap(silica.positions + [13.7, -4.2]), silica.species, silica.box)
    np.testing.assert_allclose(sf.transform(shifted), ref, atol=1e-9)
    np.testing.assert_allclose(sf.transform(rotated(silica, rotation_2d(0.7))), ref, atol=1e-9)


def test_load_aware_descriptor_breaks_rotation_invariance(silica):
    sf = fc22_descriptor().fit([silica])
    ref = sf.transform(silica)
    assert ref.shape == (1350, 148)
    shifted = Structure(silica.positions + [13.7, -4.2], silica.species, silica.box)
    np.testing.assert_allclose(sf.transform(shifted), ref, atol=1e-9)  # still translation invariant
    turned = sf.transform(rotated(silica, rotation_2d(np.pi / 2)))
    # unloaded half unchanged; the strained half now sees the load along the material's y axis
    np.testing.assert_allclose(turned[:, :74], ref[:, :74], atol=1e-9)
    diff = np.abs(turned[:, 74:] - ref[:, 74:]).max(axis=1)
    assert np.median(diff) > 0.05
    assert (diff > 1e-3).mean() > 0.9
    # the strained half is the plain descriptor of the affinely deformed copy
    plain = sf.set_params(strain=None, species=sf.species_).fit().transform(silica.deformed(np.diag([1.05, 1.0])))
    np.testing.assert_array_equal(ref[:, 74:], plain)


def test_invariant_to_rotation_in_3d_with_angular_terms():
    s = random_structure(np.eye(3) * 8.0, True, 30, seed=4, min_distance=1.3)
    axis = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    R = np.eye(3) + np.sin(1.1) * K + (1 - np.cos(1.1)) * K @ K
    sf = descriptor(cutoff=5.0)
    np.testing.assert_allclose(sf.transform(rotated(s, R)), sf.transform(s), atol=1e-9)
    loaded = descriptor(cutoff=5.0, strain=0.05, axis=2)
    assert np.abs(loaded.transform(rotated(s, R)) - loaded.transform(s)).max() > 0.01


def test_2d_equals_3d_sheet(silica):
    sf = du21_descriptor().fit([silica])
    np.testing.assert_allclose(sf.transform(silica.to_3d(20.0)), sf.transform(silica), atol=1e-12)


def test_feature_names_and_counts(silica):
    fc22 = fc22_descriptor().fit([silica])
    names = fc22.get_feature_names_out()
    assert fc22.species_ == ("O", "Si") and len(names) == 148 == fc22.n_features_out_
    assert names[0] == "G[O](mu=0.20)" and names[73] == "G[Si](mu=7.40)"
    assert names[74] == "G[O](mu=0.20)|strained" and names[-1] == "G[Si](mu=7.40)|strained"
    du21 = du21_descriptor().fit([silica])
    names = du21.get_feature_names_out()
    assert len(names) == 2 * 48 + 3 * 10 == len(set(names))
    assert names[96] == "Psi[O,O](xi=3.5,lambda=1,zeta=1)"
    assert names[-1] == "Psi[Si,Si](xi=4,lambda=-1,zeta=16)"


def test_errors():
    s = random_structure([[9.0, 0.0], [0.0, 8.0]], True, 10, seed=5)
    with pytest.raises(ValueError, match="not fitted"):
        StructureFunctions().transform(s)
    with pytest.raises(ValueError, match="not among"):
        StructureFunctions(species=("Si",)).fit().transform(s)
    with pytest.raises(ValueError, match="species= or structures"):
        StructureFunctions().fit()
