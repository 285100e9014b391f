"""Batched minimisers: tolerance, agreement between methods and with one-by-one runs, frozen
atoms, cell relaxation (a lattice constant known independently), iteration caps, the CLI, and
the sub-batch/affine extensions of the Verlet list."""

import json

import numpy as np
import pytest
import torch
from lj_potential import LennardJones, glass
from scipy.optimize import minimize_scalar

from glassfrac.cli import main
from glassfrac.core.errors import ConvergenceError
from glassfrac.generate import generate
from glassfrac.mechanics.fire import FireParameters
from glassfrac.mechanics.objective import Objective
from glassfrac.mechanics.preconditioners import BondPreconditioner, PairHessianPreconditioner, TermHessianPreconditioner
from glassfrac.mechanics.relax import PRECON_REFRESH, Relaxer, relax
from glassfrac.potentials import VerletList, get_potential
from glassfrac.potentials.watanabe import FC_D, FC_R, SIGMA
from glassfrac.structure import Box, Structure, read, write

LJ = LennardJones()
FMAX = 1e-8


@pytest.fixture(scope="module")
def minima():
    """Three small disordered LJ minima (40, 70, 110 atoms), relaxed to 1e-10 eV/Å."""
    structures = [glass(n, seed) for n, seed in ((40, 1), (70, 2), (110, 3))]
    return [s for s, _ in relax(LJ, structures, method="lbfgs", fmax=1e-10, raise_on_failure=True)]


def perturbed(structure, amplitude, seed):
    out = structure.copy()
    out.positions = out.positions + np.random.default_rng(seed).normal(0.0, amplitude, out.positions.shape)
    return out


def run(structures, method, **options):
    batch = LJ.batch(structures, frozen=options.pop("frozen", None))
    stats = Relaxer(LJ, method=method, fmax=options.pop("fmax", FMAX), **options).run(batch)
    return batch, stats


@pytest.mark.parametrize("method", ["fire", "lbfgs", "cg"])
def test_methods_reach_the_same_minimum(minima, method):
    start = perturbed(minima[1], 0.05, seed=7)
    reference, _ = run([start], "lbfgs", fmax=1e-11)
    batch, stats = run([start], method)
    assert stats.converged.all() and stats.max_force[0] <= FMAX
    assert stats.iterations[0] > 20  # it had work to do
    assert abs(stats.energy[0] / float(LJ.evaluate([minima[1]])[0]["energy"]) - 1) < 1e-3
    ref_energy = LJ.evaluate(reference.to_structures([start]))[0]["energy"]
    assert abs(stats.energy[0] - ref_energy) <= 1e-9 * abs(ref_energy)
    assert torch.max(torch.abs(batch.positions - reference.positions)) < 1e-6


@pytest.mark.parametrize("method", ["lbfgs", "cg"])
def test_line_search_energy_never_rises(minima, method):
    start = perturbed(minima[2], 0.08, seed=3)
    energies = []
    batch = LJ.batch([start])
    stats = Relaxer(LJ, method=method, fmax=FMAX).run(
        batch, callback=lambda info: energies.append(float(info["energy"][0])))
    assert stats.converged.all()
    energies = np.array(energies)
    # non-increasing, up to the round-off of the total energy (1e-12 relative)
    assert np.all(np.diff(energies) <= 1e-12 * np.abs(energies[1:]))
    assert energies[-1] < energies[0] - 1e-3


@pytest.mark.parametrize("method", ["fire", "lbfgs"])
def test_batched_equals_one_by_one(minima, method):
    starts = [
        perturbed(minima[0], 0.03, seed=1),
        minima[1],  # converged at the start
        glass(60, 5),  # random start: needs many more steps
    ]
    batch, stats = run(starts, method)
    assert stats.converged.all()
    assert stats.iterations[1] == 0 and stats.iterations[2] > stats.iterations[0]
    together = batch.split(batch.positions)
    for k, start in enumerate(starts):
        alone, alone_stats = run([start], method)
        assert np.max(np.abs(together[k] - alone.positions.numpy())) < 1e-6
        assert abs(stats.energy[k] - alone_stats.energy[0]) <= 1e-9 * abs(alone_stats.energy[0])


def test_compacted_working_set_gives_the_same_result(minima):
    starts = [perturbed(minima[0], 0.05, seed=1), perturbed(minima[1], 0.05, seed=2), minima[2]]
    masked, masked_stats = run(starts, "fire", compact=0.0)
    compacted, compacted_stats = run(starts, "fire", compact=0.9)
    assert compacted_stats.compactions >= 1 and masked_stats.compactions == 0
    assert torch.allclose(masked.positions, compacted.positions, rtol=0, atol=1e-12)
    assert np.array_equal(masked_stats.iterations, compacted_stats.iterations)


@pytest.mark.parametrize("method", ["fire", "lbfgs"])
def test_frozen_atoms_stay_put(minima, method):
    start = perturbed(minima[2], 0.1, seed=5)
    frozen = np.zeros(start.n_atoms, bool)
    frozen[::4] = True
    batch, stats = run([start], method, frozen=[frozen])
    assert stats.converged.all()
    assert np.array_equal(batch.positions.numpy()[frozen], start.positions[frozen])
    forces = LJ.evaluate(batch.to_structures([start]))[0]["forces"]
    assert np.linalg.norm(forces[~frozen], axis=1).max() <= FMAX
    assert np.linalg.norm(forces[frozen], axis=1).max() > 1e-3  # frozen forces were ignored


def triangular_crystal(a, nx=6, ny=4, strain=(0.0, 0.0)):
    """Triangular A crystal, nearest-neighbour distance a (Å), rectangular cell of 2 nx ny atoms."""
    basis = np.array([[0.0, 0.0], [0.5 * a, 0.5 * np.sqrt(3) * a]])
    cells = [basis + [i * a, j * np.sqrt(3) * a] for i in range(nx) for j in range(ny)]
    positions = np.concatenate(cells) + 0.01
    F = np.diag(1.0 + np.asarray(strain))
    box = Box(np.diag([nx * a, ny * np.sqrt(3) * a]) @ F.T, True)
    return Structure(positions @ F.T, ["A"] * len(positions), box)


@pytest.mark.parametrize("method", ["fire", "lbfgs"])
def test_cell_relaxation_finds_the_lattice_constant(method):
    best = minimize_scalar(LJ.lattice_energy, bracket=(2.0, 2.2, 2.4), tol=1e-12).x
    start = triangular_crystal(best, strain=(0.02, -0.015))
    batch = LJ.batch([start])
    stats = Relaxer(LJ, method=method, fmax=FMAX, stress_tol=1e-7).run(batch, cell_mask=True)
    assert stats.converged.all()
    lengths = torch.diagonal(batch.cells[0]).numpy() / [6, 4 * np.sqrt(3)]
    assert np.allclose(lengths, best, rtol=1e-7, atol=0)
    assert abs(batch.cells[0, 0, 1]) < 1e-9 and stats.stress_unit == ["N/m"]
    assert np.abs(stats.stress[0]).max() <= 1e-7


@pytest.mark.parametrize("method", ["lbfgs", "cg"])
def test_uniaxial_mask_relaxes_only_the_chosen_component(minima, method):
    start = minima[1].copy()
    start.box = Box(start.box.cell @ np.diag([0.98, 1.02]), True)
    start.positions = start.positions @ np.diag([0.98, 1.02])
    before = LJ.evaluate([start])[0]["stress"]
    batch = LJ.batch([start])
    stats = Relaxer(LJ, method=method, fmax=FMAX).run(batch, cell_mask=[False, True])
    assert stats.converged.all() and stats.stress_residual[0] <= 1e-6
    assert abs(stats.stress[0, 1, 1]) <= 1e-6 < abs(before[1, 1])
    assert abs(stats.stress[0, 0, 0]) > 0.01  # left alone
    assert batch.cells[0, 0, 0].item() == start.box.cell[0, 0] and batch.cells[0, 0, 1] == 0


def test_target_stress_is_reached(minima):
    batch = LJ.batch([minima[1]])
    target = np.array([[0.0, 0.0], [0.0, 0.05]])  # N/m
    stats = Relaxer(LJ, method="lbfgs", fmax=FMAX).run(batch, cell_mask=[[False, False], [False, True]],
                                                        target_stress=target)
    assert stats.converged.all()
    assert abs(stats.stress[0, 1, 1] - 0.05) <= 1e-6


def test_cell_mask_refuses_non_periodic_axes(minima):
    open_y = minima[0].copy()
    open_y.box = Box(open_y.box.cell, [True, False])
    batch = LJ.batch([open_y])
    with pytest.raises(ValueError, match="non-periodic"):
        Relaxer(LJ).run(batch, cell_mask=[True, True])
    stats = Relaxer(LJ, method="lbfgs").run(batch, cell_mask=True)  # True means periodic axes only
    assert stats.converged.all() and batch.cells[0, 1, 1].item() == open_y.box.cell[1, 1]


def test_iteration_cap_flags_only_the_unfinished_system(minima):
    starts = [minima[0], perturbed(minima[2], 0.1, seed=9)]
    batch, stats = run(starts, "fire", max_steps=25)
    assert stats.converged.tolist() == [True, False]
    assert stats.max_force[1] > FMAX and stats.evaluations[1] == 26
    with pytest.raises(ConvergenceError, match="1 of 2 systems"):
        relax(LJ, starts, method="fire", max_steps=25, raise_on_failure=True)


def test_fire_defaults_are_those_of_bitzek():
    p = FireParameters()
    assert (p.n_min, p.f_inc, p.f_dec, p.alpha_start, p.f_alpha) == (5, 1.1, 0.5, 0.1, 0.99)


def test_relax_returns_structures_and_stats(minima):
    (out, info), = relax(LJ, [perturbed(minima[0], 0.02, seed=4)], method="lbfgs")
    assert info["converged"] and info["max_force"] <= FMAX and info["stress_unit"] == "N/m"
    assert out.n_atoms == minima[0].n_atoms and not np.allclose(out.positions, minima[0].positions, atol=1e-3)


def test_batch_select_and_verlet_select(minima):
    batch = LJ.batch(minima)
    verlet = VerletList(LJ.cutoff, 1.0)
    verlet.update(batch)
    sub = batch.select([2, 0])
    assert sub.counts.tolist() == [110, 40]
    assert torch.equal(sub.positions[:110], batch.positions[batch.atoms_of([2])])
    carried = verlet.select([2, 0], batch)
    fresh = VerletList(LJ.cutoff, 1.0).update(sub)
    energy = LJ.compute(sub, carried.update(sub)).energy
    assert carried.builds == 0
    assert torch.allclose(energy, LJ.compute(sub, fresh).energy, rtol=1e-13)


def test_verlet_list_survives_small_affine_steps(minima):
    batch = LJ.batch([minima[2]])
    verlet = VerletList(LJ.cutoff, 1.0)
    verlet.update(batch)
    for strain in (0.01, 0.02, 0.03):  # cutoff x strain stays within the skin
        F = torch.tensor([[1.0 + strain, 0.5 * strain], [0.0, 1.0 - strain]], dtype=torch.float64)
        batch.positions = batch.positions @ F.T
        batch.cells = batch.cells @ F.T
        energy = LJ.compute(batch, verlet.update(batch)).energy
        assert torch.allclose(energy, LJ.compute(batch, VerletList(LJ.cutoff, 1.0).update(batch)).energy,
                              rtol=1e-13)
    assert verlet.builds == 1
    batch.cells = batch.cells * 0.8  # compressed beyond the skin: must rebuild
    batch.positions = batch.positions * 0.8
    verlet.update(batch)
    assert verlet.builds == 2


def test_yukawa_monolayer_relaxes(generated):
    sample = generated.monolayer("sig_0.70")
    (out, info), = relax(get_potential("yukawa2d"), [perturbed(sample, 0.03, seed=1)], method="lbfgs")
    assert info["converged"] and info["max_force"] <= FMAX
    assert -0.33 < info["energy"] / sample.n_atoms < -0.32


def test_cli_relax(tmp_path, generated, capsys, monkeypatch):
    monkeypatch.setattr("glassfrac.cli.COMMAND_MODULES", ["glassfrac.cli.mechanics"])
    path = tmp_path / "in.xyz"
    write(perturbed(read(generated.path("monolayer", "sig_0.70")), 0.02, seed=2), path)
    out = tmp_path / "out.xyz"
    code = main(["relax", str(path), "--potential", "yukawa2d", "--method", "lbfgs", "--fmax", "1e-6",
                 "-o", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["converged"] and result["max_force"] <= 1e-6
    assert result["stress_unit"] == "N/m" and result["method"] == "lbfgs"
    assert -0.33 < result["energy_per_atom"] < -0.32 and result["iterations"] > 0
    assert result["minimum"] and result["lowest_eigenvalue"] > 0  # a true minimum, not a saddle
    assert read(out).n_atoms == 1350
    code = main(["relax", str(path), "--potential", "yukawa2d", "--max-steps", "3", "-o", str(out), "--overwrite",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["converged"] is False
    assert "did not converge" in captured.err


def test_repeated_runs_after_affine_steps_keep_the_neighbour_list(minima):
    batch = LJ.batch([minima[1]])
    relaxer = Relaxer(LJ, method="lbfgs")
    first = relaxer.run(batch)
    assert first.converged.all() and first.evaluations[0] == 1  # a minimum already
    for _ in range(3):  # small AQS-like steps: affine map, then relax again
        F = torch.tensor([[1.002, 0.0], [0.0, 1.0]], dtype=torch.float64)
        batch.positions = batch.positions @ F.T
        batch.cells = batch.cells @ F.T
        stats = relaxer.run(batch)
        assert stats.converged.all() and stats.iterations[0] > 0
    assert stats.neighbor_builds == 0 and relaxer.neighbor_list(batch).builds == 1


def test_watanabe_window_relaxes_back_to_the_reference_minimum(generated):
    bilayer = generated.bilayer()  # relaxed to 1e-9 eV/Å (cell lengths too)
    lengths = np.diag(bilayer.box.cell)[:2]
    d = bilayer.positions.copy()
    d[:, :2] -= bilayer.positions[0, :2]
    d[:, :2] -= np.round(d[:, :2] / lengths) * lengths
    r = np.linalg.norm(d[:, :2], axis=1)
    keep = r < 13.0  # free atoms within 5 Å, then two interaction ranges (3.77 Å) of shell
    window = Structure(d[keep], bilayer.species[keep], Box(np.eye(3) * 40.0, False))
    frozen = r[keep] >= 5.0
    start = perturbed(window, 0.05, seed=3)
    start.positions[frozen] = window.positions[frozen]
    (out, info), = relax(get_potential("watanabe"), [start], method="lbfgs", frozen=[frozen])
    assert info["converged"] and info["max_force"] <= FMAX
    assert np.abs(out.positions - window.positions).max() < 1e-6


@pytest.mark.parametrize("method", ["fire", "lbfgs"])
def test_non_finite_energy_stops_only_that_system(minima, method):
    broken = perturbed(minima[0], 0.02, seed=8)
    broken.positions[1] = broken.positions[0]  # two atoms on top of each other
    batch, stats = run([broken, perturbed(minima[1], 0.02, seed=8)], method)
    assert stats.converged.tolist() == [False, True] and stats.notes
    assert np.array_equal(batch.split(batch.positions)[0], broken.positions)


@pytest.mark.parametrize("kind", ["bonds", "hessian"])
def test_preconditioners_give_the_same_minimum_in_fewer_evaluations(generated, kind):
    yukawa = get_potential("yukawa2d")
    start = perturbed(generated.monolayer("sig_0.70"), 0.05, seed=0)
    out = {}
    for precondition in (None, kind):
        batch = yukawa.batch([start])
        stats = Relaxer(yukawa, method="lbfgs", fmax=FMAX, precondition=precondition).run(batch)
        assert stats.converged.all() and stats.max_force[0] <= FMAX
        out[precondition] = batch.positions.clone(), stats
    (plain, plain_stats), (pre, pre_stats) = out[None], out[kind]
    assert abs(pre_stats.energy[0] - plain_stats.energy[0]) <= 1e-10 * abs(plain_stats.energy[0])
    # both within 1e-8 eV/Å of the minimum: along the glass's soft modes (curvature down to
    # ~1e-3 eV/Å^2) that places atoms to ~1e-5 Å
    assert torch.max(torch.abs(pre - plain)) < 1e-5
    assert pre_stats.evaluations[0] < 0.7 * plain_stats.evaluations[0]


def test_bond_preconditioner_with_batches_frozen_atoms_compaction_and_cells(minima):
    starts = [perturbed(minima[0], 0.05, seed=1), perturbed(minima[2], 0.08, seed=2), minima[1]]
    frozen = [np.arange(s.n_atoms) % 5 == 0 for s in starts]
    plain, _ = run(starts, "lbfgs", frozen=frozen)
    batch, stats = run(starts, "lbfgs", frozen=frozen, precondition="bonds", compact=0.9)
    assert stats.converged.all() and stats.compactions >= 1
    assert torch.max(torch.abs(batch.positions - plain.positions)) < 1e-6
    assert np.array_equal(batch.positions.numpy()[np.concatenate(frozen)],
                          np.concatenate([s.positions[f] for s, f in zip(starts, frozen, strict=True)]))
    best = minimize_scalar(LJ.lattice_energy, bracket=(2.0, 2.2, 2.4), tol=1e-12).x
    crystal = LJ.batch([triangular_crystal(best, strain=(0.02, -0.015))])
    stats = Relaxer(LJ, fmax=FMAX, stress_tol=1e-7, precondition="bonds").run(crystal, cell_mask=True)
    assert stats.converged.all()
    assert np.allclose(torch.diagonal(crystal.cells[0]).numpy() / [6, 4 * np.sqrt(3)], best, rtol=1e-7, atol=0)
    with pytest.raises(ValueError, match="needs method 'lbfgs'"):
        Relaxer(LJ, method="fire", precondition="bonds")


@pytest.mark.parametrize("a, b, r, sign_dv, sign_d2v", [
    ("Si", "O", 1.55, 1, 1),    # a bond near its length: the exact pair Hessian
    ("Si", "O", 1.9, 1, -1),    # beyond the inflection point: the negative V'' is dropped
    ("Si", "Si", 3.0, -1, 1),   # a compressed repulsive pair: the negative transverse part is dropped
])
def test_pair_hessian_preconditioner_is_the_pair_hessian_without_its_negative_parts(a, b, r, sign_dv, sign_d2v):
    """A lone pair: P − stabiliser I equals the finite-difference Hessian of the pair, less
    its negative longitudinal (V'' u u^T) or transverse ((V'/r)(I − u u^T)) part."""
    yukawa = get_potential("yukawa2d")
    angle = 0.3
    u = np.array([np.cos(angle), np.sin(angle)])
    box = Box(np.diag([30.0, 30.0]), pbc=(False, False))
    pair = Structure(np.array([[10.0, 10.0], [10.0, 10.0] + r * u]), [a, b], box)
    batch = yukawa.batch([pair])
    verlet = VerletList(yukawa.cutoff, 1.0)
    precon = PairHessianPreconditioner(reach=2.0, stabiliser=0.01)
    precon.prepare(Objective(yukawa, batch, verlet, None, None, FMAX, 1e-6))
    model = precon.matrix.toarray() - 0.01 * np.eye(4)

    def gradient(x):
        batch.positions = torch.as_tensor(x.reshape(2, 2))
        return -yukawa.compute(batch, verlet.update(batch), virial=False).forces.numpy().ravel()

    x0, h = batch.positions.numpy().ravel().copy(), 1e-5
    exact = np.array([(gradient(x0 + h * e) - gradient(x0 - h * e)) / (2 * h) for e in np.eye(4)])
    code = torch.tensor([yukawa.species.index(a) * len(yukawa.species) + yukawa.species.index(b)])
    dv, d2v = (float(x[0]) for x in yukawa.pair_derivatives(torch.tensor([r]), code))
    assert (np.sign(dv), np.sign(d2v)) == (sign_dv, sign_d2v)
    uu = np.outer(u, u)
    dropped = min(d2v, 0.0) * uu + min(dv / r, 0.0) * (np.eye(2) - uu)
    expected = exact - np.kron([[1, -1], [-1, 1]], dropped)
    assert np.allclose(model, expected, rtol=1e-6, atol=1e-6 * np.abs(exact).max())
    assert np.all(np.linalg.eigvalsh(precon.matrix.toarray()) > 0)


def test_auto_preconditioner_follows_the_potential():
    assert isinstance(Relaxer(get_potential("yukawa2d"), precondition="auto").precon, PairHessianPreconditioner)
    assert isinstance(Relaxer(get_potential("watanabe"), precondition="auto").precon, TermHessianPreconditioner)
    assert isinstance(Relaxer(LJ, precondition="auto").precon, BondPreconditioner)
    with pytest.raises(ValueError, match="pair_derivatives or term_hessians"):
        Relaxer(LJ, precondition="hessian")


@pytest.fixture(scope="module")
def small_bilayer():
    watanabe = get_potential("watanabe")
    (sample, _), = relax(watanabe, [generate((6, 6), mu2=0.3, kind="bilayer", seed=2)], cell=True, fmax=1e-8,
                         raise_on_failure=True)
    return watanabe, sample


def test_watanabe_term_hessians_sum_to_the_exact_hessian(small_bilayer):
    """In a relaxed network no Si–O distance lies in the coordination switch window, so the
    terms' Hessians (coordination factors held fixed) sum to the exact Hessian, here checked
    against central differences of the forces."""
    watanabe, sample = small_bilayer
    batch = watanabe.batch([sample])
    pairs = VerletList(watanabe.cutoff, skin=0.0).update(batch)
    r = pairs.vectors(batch).norm(dim=1) / SIGMA
    si_o = batch.species[pairs.i] != batch.species[pairs.j]
    assert not (si_o & (r > FC_R - FC_D) & (r < FC_R + FC_D)).any()  # the premise
    n = 3 * sample.n_atoms
    model = np.zeros((n, n))
    for atoms, blocks in watanabe.term_hessians(batch, pairs):
        index = (atoms.numpy()[:, :, None] * 3 + np.arange(3))
        rows = np.broadcast_to(index[:, :, :, None, None], blocks.shape)
        cols = np.broadcast_to(index[:, None, None, :, :], blocks.shape)
        np.add.at(model, (rows.ravel(), cols.ravel()), blocks.detach().numpy().ravel())
    h = 1e-5
    for column in np.random.default_rng(0).choice(n, 12, replace=False):
        forces = []
        for sign in (1, -1):
            moved = sample.copy()
            moved.positions = sample.positions.copy()
            moved.positions.flat[column] += sign * h
            forces.append(watanabe.evaluate([moved])[0]["forces"].ravel())
        exact = -(forces[0] - forces[1]) / (2 * h)
        assert np.allclose(model[:, column], exact, rtol=0, atol=1e-5 * np.abs(exact).max())


def test_term_hessian_preconditioner_gives_the_same_minimum_in_fewer_evaluations(small_bilayer):
    watanabe, sample = small_bilayer
    start = perturbed(sample, 0.03, seed=1)
    out = {}
    for precondition in ("bonds", "hessian"):
        batch = watanabe.batch([start])
        relaxer = Relaxer(watanabe, fmax=FMAX, precondition=precondition)
        stats = relaxer.run(batch)
        assert stats.converged.all()
        out[precondition] = batch.positions.clone(), stats
    assert relaxer.precon.positive_definite() and relaxer.precon.clipped_builds == 0
    (bonds, bond_stats), (term, term_stats) = out["bonds"], out["hessian"]
    assert abs(term_stats.energy[0] - bond_stats.energy[0]) <= 1e-10 * abs(bond_stats.energy[0])
    assert torch.max(torch.abs(term - bonds)) < 1e-5
    assert term_stats.evaluations[0] < 0.5 * bond_stats.evaluations[0]


def test_term_hessian_preconditioner_clips_the_many_body_terms_where_p_would_be_indefinite(small_bilayer):
    watanabe, sample = small_bilayer
    shaken = perturbed(sample, 0.25, seed=3)  # far from any minimum: some triplets curve down
    relaxer = Relaxer(watanabe, fmax=1e-6, precondition="hessian", max_steps=40)
    assert isinstance(relaxer.precon, TermHessianPreconditioner)
    stats = relaxer.run(watanabe.batch([shaken]))
    assert relaxer.precon.clipped_builds >= 1 and relaxer.precon.positive_definite()
    # the clipped P still gives downhill directions: the energy falls most of the way
    start, minimum = watanabe.evaluate([shaken])[0]["energy"], watanabe.evaluate([sample])[0]["energy"]
    assert stats.energy[0] < minimum + 0.2 * (start - minimum)


def test_stop_beyond_stops_only_the_system_that_leaves_its_start(minima):
    far, near = perturbed(minima[2], 0.08, seed=4), perturbed(minima[1], 0.002, seed=5)
    batch = LJ.batch([far, near])
    start = batch.positions.clone()
    stats = Relaxer(LJ, fmax=FMAX).run(batch, stop_beyond=(start, 0.05))
    assert stats.stopped.tolist() == [True, False] and stats.converged.tolist() == [False, True]
    moved = batch.split((batch.positions - start).norm(dim=1))
    assert moved[0].max() > 0.05 and moved[1].max() < 0.05
    alone, alone_stats = run([far], "lbfgs")
    assert stats.iterations[0] < alone_stats.iterations[0]  # it stopped on the way
    together, reference = batch.split(batch.positions)[1], run([near], "lbfgs")[0]
    assert np.max(np.abs(together - reference.positions.numpy())) < 1e-9


def test_preconditioned_lbfgs_solves_once_per_accepted_point(generated):
    yukawa = get_potential("yukawa2d")
    relaxer = Relaxer(yukawa, fmax=FMAX, precondition="hessian")
    solves = []
    solve = relaxer.precon.solve
    relaxer.precon.solve = lambda q: solves.append(1) or solve(q)
    stats = relaxer.run(yukawa.batch([perturbed(generated.monolayer("sig_0.70"), 0.05, seed=0)]))
    assert stats.converged.all() and stats.iterations[0] > 20
    # one solve per accepted point (P^-1 y = P^-1 g_new - P^-1 g_old), plus the start and
    # the odd line-search restart
    assert len(solves) <= stats.iterations[0] + 3


def test_preconditioner_is_rebuilt_during_a_long_run_when_atoms_move_far():
    start = glass(60, 5)  # a random start: atoms travel far and the Verlet list is rebuilt
    relaxer = Relaxer(LJ, fmax=FMAX, precondition="bonds", skin=0.1)
    batch = LJ.batch([start])
    stats = relaxer.run(batch)
    assert stats.converged.all() and stats.evaluations[0] > PRECON_REFRESH
    builds = relaxer.precon.builds
    assert builds >= 2  # a new P after the first PRECON_REFRESH evaluations
    relaxer.run(batch)  # the P built mid-run is not kept: the next run builds one at its start
    assert relaxer.precon.builds == builds + 1
