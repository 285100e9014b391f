"""Yukawa-type 2D silica: the pair form, finite differences of forces and virials, per-atom
sums (on a generated, relaxed monolayer), the external JuMol samples, batching, parameters."""

import math

import numpy as np
import pytest
import torch
from yukawa_cases import yukawa_cases

from glassfrac import Box, Structure, read
from glassfrac.potentials import Batch, VerletList, get_potential
from glassfrac.potentials.yukawa import Yukawa2D
from glassfrac.structure import neighbor_pairs

# energies per atom of the three JuMol samples, eV; LAMMPS (pair_style lepton) gives the same
# to 1e-14 relative (tests/potentials/test_lammps_yukawa.py)
JUMOL_ENERGY_PER_ATOM = {"sig_0.60": -0.327024381199694, "sig_1.00": -0.3258290573437083,
                         "sig_1.50": -0.3244636457036701}


@pytest.fixture(scope="module")
def cases(generated):
    return yukawa_cases(generated.monolayer("sig_1.00"))


def v_sf(r, sigma, q, kappa=1 / 5.649, rc=10.0):
    """The shifted-and-tilted pair energy typed from reference/potentials.md §1 (eV)."""
    def v(x):
        return (sigma / x) ** 12 + q * math.exp(-kappa * x) / x

    def dv(x):
        return -12 * sigma**12 / x**13 - q * math.exp(-kappa * x) * (kappa * x + 1) / x**2

    return v(r) - v(rc) - dv(rc) * (r - rc) if r < rc else 0.0


def dimer(r, a="Si", b="O"):
    return Structure([[0.0, 0.0], [r, 0.0]], [a, b], Box([30.0, 30.0], False))


@pytest.mark.parametrize("pair,sigma,q", [(("Si", "Si"), 2.25, 1.5), (("Si", "O"), 1.075, -1.0),
                                          (("O", "O"), 0.9, 0.67)])
def test_dimer_energy_force_and_cutoff(pair, sigma, q):
    pot = Yukawa2D()
    for r in (1.2, 1.6, 3.05, 6.0, 9.5):
        res = pot.evaluate([dimer(r, *pair)])[0]
        assert res["energy"] == pytest.approx(v_sf(r, sigma, q), rel=1e-12, abs=1e-15)
        h = 1e-6
        slope = (v_sf(r + h, sigma, q) - v_sf(r - h, sigma, q)) / (2 * h)
        assert res["forces"][1, 0] == pytest.approx(-slope, rel=1e-7, abs=1e-10)
        assert res["forces"][0, 0] == -res["forces"][1, 0] and res["forces"][:, 1].tolist() == [0, 0]
        assert float(pot.pair_energy(r, *pair)) == pytest.approx(v_sf(r, sigma, q), rel=1e-12, abs=1e-15)
    # V_sf and its slope vanish at Rc; a pair in the list but beyond Rc contributes exactly 0
    assert abs(pot.evaluate([dimer(10.0 - 1e-7, *pair)])[0]["energy"]) < 1e-15
    batch = pot.batch([dimer(10.2, *pair)])
    pairs = VerletList(pot.cutoff, skin=1.0).update(batch)
    assert len(pairs.i) == 1
    res = pot.compute(batch, pairs, per_atom=True)
    assert res.energy.tolist() == [0.0] and not res.forces.any() and not res.virial.any()
    assert not res.per_atom_energy.any() and not res.per_atom_virial.any()


class FixedList:
    """Energy of displaced or strained copies of one structure, on one pair list (skin 1 Å)."""

    def __init__(self, pot, structure):
        self.pot = pot
        self.batch = pot.batch([structure])
        self.pairs = VerletList(pot.cutoff, skin=1.0).update(self.batch)

    def energy(self, positions, cells) -> float:
        b = self.batch
        moved = Batch(positions, b.system, cells, b.pbc, b.species)
        return float(self.pot.compute(moved, self.pairs, virial=False).energy[0])


@pytest.mark.parametrize("name", ["periodic", "cluster", "mixed", "triclinic", "bulk3d", "sheet3d"])
def test_forces_and_virial_are_minus_energy_derivatives(cases, name):
    pot = Yukawa2D()
    fixed = FixedList(pot, cases[name])
    b = fixed.batch
    res = pot.compute(b, fixed.pairs, virial=True)
    forces, virial = res.forces.numpy(), res.virial[0].numpy()
    h = 1e-5
    atoms = np.random.default_rng(1).choice(b.n_atoms, 8, replace=False)
    for k in atoms:
        for a in range(b.dim):
            step = torch.zeros_like(b.positions)
            step[k, a] = h
            de = fixed.energy(b.positions + step, b.cells) - fixed.energy(b.positions - step, b.cells)
            assert -de / (2 * h) == pytest.approx(forces[k, a], abs=2e-7 * np.abs(forces).max())
    eye = torch.eye(b.dim, dtype=torch.float64)
    for a in range(b.dim):
        for c in range(b.dim):
            e = []
            for s in (h, -h):  # strain x_a -> x_a + s x_c of positions and cell
                m = eye.clone()
                m[a, c] += s
                e.append(fixed.energy(b.positions @ m.T, b.cells @ m.T))
            assert -(e[0] - e[1]) / (2 * h) == pytest.approx(virial[a, c], abs=2e-7 * np.abs(virial).max())
    assert np.allclose(virial, virial.T, rtol=0, atol=1e-10 * np.abs(virial).max())
    assert np.abs(forces.sum(axis=0)).max() < 1e-10 * np.abs(forces).max()


@pytest.mark.parametrize("name", ["periodic", "cluster", "triclinic", "bulk3d"])
def test_per_atom_parts_sum_to_totals(cases, name):
    res = Yukawa2D().evaluate([cases[name]], per_atom=True)[0]
    assert res["per_atom_energy"].sum() == pytest.approx(res["energy"], rel=1e-12)
    assert np.allclose(res["per_atom_virial"].sum(axis=0), res["virial"], rtol=0,
                       atol=1e-12 * np.abs(res["virial"]).max())


@pytest.mark.shared_data
def test_jumol_samples(jumol_files):
    pot = get_potential("yukawa2d")
    structures = [read(path) for path in jumol_files]
    for path, s, res in zip(jumol_files, structures, pot.evaluate(structures), strict=True):
        name = path.name.split("_sample")[0]
        per_atom = res["energy"] / s.n_atoms
        assert abs(per_atom + 0.326) < 0.002  # README: about -0.326 eV/atom
        assert per_atom == pytest.approx(JUMOL_ENERGY_PER_ATOM[name], rel=1e-12)
        assert 5e-4 < np.abs(res["forces"]).max() < 5e-3  # relaxed to a finite tolerance
        i, j, _, d = neighbor_pairs(s.positions, s.box, 1.8)
        unlike = s.species[i] != s.species[j]
        assert unlike.sum() == 3 * s.count("Si")
        assert np.linalg.norm(d[unlike], axis=1).mean() == pytest.approx(1.508, abs=0.003)  # 1.507-1.510


@pytest.mark.parametrize("names", [("periodic", "cluster", "mixed", "triclinic"), ("bulk3d", "sheet3d")])
def test_batch_equals_systems_alone(cases, names):
    pot = Yukawa2D()
    structures = [cases[n] for n in names] + [cases[names[1]]]  # repeats are fine
    together = pot.evaluate(structures, per_atom=True)
    for s, res in zip(structures, together, strict=True):
        alone = pot.evaluate([s], per_atom=True)[0]
        assert res["energy"] == pytest.approx(alone["energy"], rel=1e-13)
        for key in ("forces", "virial", "per_atom_energy", "per_atom_virial", "stress"):
            scale = np.abs(alone[key]).max()
            assert np.allclose(res[key], alone[key], rtol=0, atol=1e-12 * scale), key


@pytest.mark.parametrize("names", [("periodic", "cluster"), ("bulk3d", "sheet3d")])
def test_chunks_of_pairs_give_the_same_results(cases, monkeypatch, names):
    import glassfrac.potentials.yukawa as yukawa

    structures = [cases[n] for n in names]
    whole = Yukawa2D().evaluate(structures, per_atom=True)
    monkeypatch.setattr(yukawa, "CHUNK", 1000)  # dozens of chunks, image shifts in many
    chunked = Yukawa2D().evaluate(structures, per_atom=True)
    for a, b in zip(whole, chunked, strict=True):
        for key in ("energy", "forces", "virial", "per_atom_energy", "per_atom_virial"):
            assert np.array_equal(a[key], b[key]), key


def test_forces_without_energy_and_virial(cases):
    pot = Yukawa2D()
    batch = pot.batch([cases["periodic"], cases["cluster"]])
    pairs = VerletList(pot.cutoff, skin=1.0).update(batch)
    full = pot.compute(batch, pairs, virial=True, per_atom=True)
    bare = pot.compute(batch, pairs, virial=False, energy=False)
    assert bare.energy is None and bare.virial is None and bare.per_atom_energy is None
    assert torch.equal(bare.forces, full.forces)


def test_forces_and_hessian_in_one_pass_equal_the_separate_calls(cases):
    pot = Yukawa2D()
    batch = pot.batch([cases["periodic"], cases["cluster"], cases["triclinic"]])
    pairs = VerletList(pot.cutoff, skin=1.0).update(batch)
    full = pot.compute(batch, pairs, virial=True, per_atom=True)
    fused, terms = pot.forces_and_hessian(batch, pairs)
    for a, b in ((fused.forces, full.forces), (fused.per_atom_virial, full.per_atom_virial)):
        assert torch.allclose(a, b, rtol=0, atol=1e-12 * b.abs().max())
    (atoms, k), = terms
    (atoms_alone, k_alone), = pot.hessian(batch, pairs)
    assert torch.equal(atoms, atoms_alone) and torch.equal(k, k_alone)


def test_parameters_and_overrides(cases):
    pot = get_potential("yukawa2d")
    p = pot.parameters()
    assert p["sigma"] == {"Si-Si": 2.25, "Si-O": 1.075, "O-O": 0.9}
    assert p["q"] == {"Si-Si": 1.5, "Si-O": -1.0, "O-O": 0.67}
    assert p["kappa"] == 1 / 5.649 and p["rc"] == 10.0 and pot.cutoff == 10.0
    again = Yukawa2D(**{k: p[k] for k in ("sigma", "q", "kappa", "rc")})
    s = cases["cluster"]
    assert again.evaluate([s])[0]["energy"] == pot.evaluate([s])[0]["energy"]
    other = get_potential("yukawa2d", sigma={"O-Si": 1.1}, rc=8.0)
    assert other.sigma[("Si", "O")] == 1.1 and other.cutoff == 8.0
    r = 1.6
    assert other.evaluate([dimer(r)])[0]["energy"] == pytest.approx(v_sf(r, 1.1, -1.0, rc=8.0), rel=1e-12)
    with pytest.raises(ValueError, match="unknown pair"):
        Yukawa2D(q={"Si-Al": 1.0})
    with pytest.raises(ValueError, match="not handled"):
        pot.evaluate([Structure([[0.0, 0.0]], ["Al"], Box([5.0, 5.0], False))])


def test_incidence_matrices_agree(cases):
    from glassfrac.potentials.yukawa import _incidence, _incidence_sorted

    small = Structure([[0.0, 0.0], [1.6, 0.0], [3.0, 2.0]], ["Si", "O", "O"], Box([6.0, 6.0], True))
    batch = Yukawa2D().batch([cases["cluster"], small])  # the small cell has pairs i == j
    pairs = VerletList(10.0, skin=1.0).update(batch)
    assert (pairs.i == pairs.j).any()
    dense = torch.zeros(batch.n_atoms, len(pairs.i), dtype=torch.float64)
    columns = torch.arange(len(pairs.i))
    dense.index_put_((pairs.i, columns), torch.tensor(1.0, dtype=torch.float64), accumulate=True)
    dense.index_put_((pairs.j, columns), torch.tensor(-1.0, dtype=torch.float64), accumulate=True)
    for build in (_incidence, _incidence_sorted):
        assert torch.equal(build(pairs.i, pairs.j, batch.n_atoms, torch.float64).to_dense(), dense)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(cases):
    pot = Yukawa2D()
    structures = [cases["periodic"], cases["cluster"]]
    cpu = pot.evaluate(structures, per_atom=True)
    gpu = pot.evaluate(structures, device="cuda", per_atom=True)
    for a, b in zip(cpu, gpu, strict=True):
        assert b["energy"] == pytest.approx(a["energy"], rel=1e-12)
        for key in ("forces", "virial", "per_atom_energy", "per_atom_virial"):
            assert np.allclose(a[key], b[key], rtol=0, atol=1e-11 * np.abs(a[key]).max()), key
