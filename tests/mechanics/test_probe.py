"""Local probing: exact windows, exact Hessians, batched = one-by-one = the first implementation, goodness."""

import json

import numpy as np
import pytest
import torch

from glassfrac import read
from glassfrac.core.units import EV_PER_A2_IN_N_PER_M
from glassfrac.generate import generate
from glassfrac.labels.probe import ThresholdMap, event_locations, goodness
from glassfrac.mechanics.probe import ProbeSettings, _Rows, cut_windows, default_shell, grid_centres, probe_map
from glassfrac.mechanics.relax import Relaxer
from glassfrac.potentials import get_potential
from glassfrac.potentials.batch import Batch
from glassfrac.structure import Box, Structure


@pytest.fixture(scope="module")
def sample(generated):
    # relaxed with Yukawa, 1350 atoms; at this disorder each window of CENTRES yields below max_strain
    return generated.monolayer("sig_1.25")


@pytest.fixture(scope="module")
def potential():
    return get_potential("yukawa2d")


def rows_for(sample, potential, n=3):
    s = ProbeSettings(grid=4)
    windows = cut_windows(sample, grid_centres(sample.box, 4)[:n], s.r_free, potential.cutoff)
    rows = _Rows(potential, windows, [(w, 0.0) for w in range(n)], s)
    rows.add(list(range(n)))
    return rows, windows


def test_pair_derivatives_match_the_pair_energy(potential):
    r = torch.linspace(1.2, 9.9, 200, dtype=torch.float64)
    for code, (a, b) in enumerate([("Si", "Si"), ("Si", "O"), ("O", "Si"), ("O", "O")]):
        dv, d2v = potential.pair_derivatives(r, torch.full_like(r, code, dtype=torch.long))
        h = 1e-5
        plus, zero, minus = (potential.pair_energy(r + d, a, b) for d in (h, 0.0, -h))
        assert torch.allclose(dv, (plus - minus) / (2 * h), rtol=1e-7, atol=1e-9)
        assert torch.allclose(d2v, (plus - 2 * zero + minus) / h**2, rtol=1e-4, atol=1e-6)


def test_window_forces_on_free_atoms_equal_the_full_sample(sample, potential):
    rows, windows = rows_for(sample, potential)
    grad, _, _ = rows.evaluate(hessian=False)
    forces = potential.evaluate([sample])[0]["forces"]
    for k in range(rows.C):
        nf = int(rows.nfree[k])
        atoms = windows.atoms[k][:nf]
        assert np.allclose(-grad[k, : 2 * nf].view(nf, 2).numpy(), forces[atoms], atol=1e-12)


def test_window_hessian_is_the_derivative_of_the_gradient(sample, potential):
    rows, _ = rows_for(sample, potential, n=1)
    _, H, _ = rows.evaluate()
    _assert_hessian_is_the_gradient_derivative(rows, H, dim=2, columns=6, atol=1e-6)


def _assert_hessian_is_the_gradient_derivative(rows, H, dim: int, columns: int, atol: float):
    """Random columns of the first window's Hessian ``H`` against central differences (h = 1e-5 Å) of its
    gradient."""
    rng = np.random.default_rng(0)
    for dof in rng.choice(dim * int(rows.nfree[0]), size=columns, replace=False):
        atom, axis = divmod(int(dof), dim)
        h = 1e-5
        rows.pos[0, atom, axis] += h
        gp, _, _ = rows.evaluate(hessian=False)
        rows.pos[0, atom, axis] -= 2 * h
        gm, _, _ = rows.evaluate(hessian=False)
        rows.pos[0, atom, axis] += h
        assert torch.allclose(H[0, :, dof], (gp - gm)[0] / (2 * h), atol=atol)


CENTRES = [0, 5, 10, 15]
# the first implementation (one Newton solve per chunk at a time, affine predictor), on the JuMol
# sample sig 1.00 and these windows
FIRST_THRESHOLD = [0.0901479922037435, 0.09124968100993612, 0.12268153440338729, 0.08161745858016166]
FIRST_STRAIN = [0.141796875, 0.08515624999999999, 0.15195312499999997, 0.117109375]


FIRST_METHOD = {"step": 0.01, "placement": "bisection", "newton_tol": 0.0}
"""The settings of the first implementation (before the saddle-node placement)."""


def four_windows(sample, potential, **settings):
    """Four windows, two rows in flight (finished windows are replaced from the queue)."""
    settings = ProbeSettings(grid=4, chunk=2, **settings)
    return probe_map(sample, potential, settings, centres=grid_centres(sample.box, 4)[CENTRES])


@pytest.fixture(scope="module")
def batched(sample, potential):
    return four_windows(sample, potential)


def test_batched_map_equals_window_by_window(sample, potential, batched):
    centres = grid_centres(sample.box, 4)[CENTRES]
    alone = [probe_map(sample, potential, ProbeSettings(grid=4, chunk=1), centres=c[None])
             for c in centres]
    assert np.allclose(batched["threshold"], np.concatenate([a["threshold"] for a in alone]), atol=1e-9)
    assert np.all(batched["threshold"] > 0)
    # a real instability: the strain at the drop is bracketed to the precision and inside the range
    assert np.all((batched["strain_c"] > 0.01) & (batched["strain_c"] < ProbeSettings().max_strain))


@pytest.mark.shared_data
def test_the_first_method_reproduces_the_first_implementation(jumol_files, potential):
    first = four_windows(read(jumol_files[1]), potential, **FIRST_METHOD)
    assert np.allclose(first["threshold"], FIRST_THRESHOLD, atol=1e-9)
    assert np.allclose(first["strain_c"][:, 0], FIRST_STRAIN, atol=1e-12)


def test_the_default_finds_the_first_methods_events_with_fewer_solves(sample, potential, batched):
    first = four_windows(sample, potential, **FIRST_METHOD)
    precision = ProbeSettings().precision
    # the same first event of every window: threshold strain within the bracket precision, Δτ within 5e-4 N/m
    assert np.allclose(batched["strain_c"][:, 0], first["strain_c"][:, 0], atol=2 * precision)
    assert np.allclose(batched["threshold"], first["threshold"], atol=5e-4)
    assert batched["newton_iterations"] < first["newton_iterations"]


def test_saddle_node_placement_homes_in_on_the_instability(sample, potential):
    # a window's lowest eigenvalue vanishes as λ² ∝ (γ_c − γ): the placed trials approach γ_c from below,
    # so fewer solves fall past the instability than with halving alone
    centre = grid_centres(sample.box, 4)[CENTRES[:1]]
    placed, halved = (probe_map(sample, potential, ProbeSettings(grid=4, placement=p), centres=centre)
                      for p in ("saddle-node", "bisection"))
    assert abs(placed["strain_c"][0, 0] - halved["strain_c"][0, 0]) <= 2 * ProbeSettings().precision
    assert placed["newton_iterations"] < halved["newton_iterations"]


def test_secant_predictor_agrees_within_the_bisection_precision(sample, potential, batched):
    settings = ProbeSettings(grid=4, chunk=4, predictor="secant")
    secant = probe_map(sample, potential, settings, centres=grid_centres(sample.box, 4)[CENTRES])
    precision = settings.precision
    assert np.allclose(secant["strain_c"][:, 0], batched["strain_c"][:, 0], atol=2 * precision)
    # Δτ changes by at most ~1 N/m per unit strain here, so 2·precision in strain is 2e-4 N/m
    assert np.allclose(secant["threshold"], batched["threshold"], atol=2e-4)
    assert secant["newton_iterations"] < batched["newton_iterations"]


def test_two_workers_give_the_same_map(sample, potential, batched):
    settings = ProbeSettings(grid=4, chunk=2, workers=2)
    split = probe_map(sample, potential, settings, centres=grid_centres(sample.box, 4)[CENTRES])
    assert np.allclose(split["threshold"], batched["threshold"], atol=1e-9)


def test_map_file_round_trip(tmp_path, sample, potential):
    result = {"threshold": np.arange(4.0).reshape(2, 2), "centres": np.zeros((4, 2)), "unit": "N/m"}
    ThresholdMap.from_result(result, ProbeSettings(grid=2), source="x").save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:  # the format of every map.npz so far
        meta = json.loads(str(data["meta"]))
        assert np.array_equal(data["threshold"], result["threshold"])
    assert meta["unit"] == "N/m" and meta["settings"]["grid"] == 2 and meta["source"] == "x"
    typed = ThresholdMap.load(tmp_path / "m.npz")
    assert np.array_equal(typed.threshold, result["threshold"]) and typed.info == {"source": "x"}
    assert typed.settings["grid"] == 2 and typed.load_angle == 0.0


def test_threshold_map_from_a_probe_saves_and_loads(tmp_path, sample, potential, batched):
    settings = ProbeSettings(grid=4, chunk=2)
    made = ThresholdMap.from_result(batched, settings, source="jumol")
    made.save(tmp_path / "map.npz")
    back = ThresholdMap.load(tmp_path / "map.npz")
    assert np.array_equal(back.threshold, batched["threshold"]) and np.array_equal(back.centres, batched["centres"])
    assert np.array_equal(back.per_window["strain_c"], batched["strain_c"]) and back.info == {"source": "jumol"}
    assert back.settings == made.settings and back.unit == "N/m"
    events = batched["centres"][[1]]
    assert np.array_equal(back.goodness(events, sample.box),
                          goodness(batched["threshold"], batched["centres"], events, sample.box))


def test_event_locations_from_a_shear_test_or_a_dataset_folder(tmp_path):
    events = {"events": [{"location": [1.0, 2.0, 0.0], "strain": 0.01}, {"location": [3.0, 4.0]}]}
    (tmp_path / "shear").mkdir()
    (tmp_path / "shear" / "labels.json").write_text(json.dumps({"test": "shear", **events}))
    (tmp_path / "sample").mkdir()
    (tmp_path / "sample" / "events.json").write_text(json.dumps(events))
    for path in (tmp_path / "shear", tmp_path / "sample", tmp_path / "sample" / "events.json"):
        assert np.array_equal(event_locations(path), [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(FileNotFoundError, match="labels.json"):
        event_locations(tmp_path)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        event_locations(tmp_path / "bad.json")


def test_goodness_extremes(sample):
    centres = grid_centres(sample.box, 4)
    values = np.arange(16.0)
    # an event on the lowest-threshold point scores close to 1, on the highest -1
    assert goodness(values, centres, centres[0][None], sample.box)[0] == pytest.approx(1 - 2 / 16)
    assert goodness(values, centres, centres[15][None], sample.box)[0] == pytest.approx(-1.0)


# -- a many-body potential: Watanabe bilayers ----------------------------------------------------

@pytest.fixture(scope="module")
def bilayer():
    """A small generated bilayer (3D, z not periodic), relaxed with the Watanabe potential."""
    structure = generate(rings=(8, 8), mu2=0.3, kind="bilayer", seed=1)
    potential = get_potential("watanabe")
    batch = potential.batch([structure])
    stats = Relaxer(potential, precondition="auto").run(batch, stress=False)
    assert stats.converged.all()
    return batch.to_structures([structure])[0]


@pytest.fixture(scope="module")
def watanabe():
    return get_potential("watanabe")


def test_bilayer_window_forces_and_hessian(bilayer, watanabe):
    s = ProbeSettings(grid=4)
    windows = cut_windows(bilayer, grid_centres(bilayer.box, 4)[:2], s.r_free, default_shell(watanabe))
    rows = _Rows(watanabe, windows, [(0, 0.0), (1, 0.0)], s)
    rows.add([0, 1])
    grad, H, _ = rows.evaluate()
    forces = watanabe.evaluate([bilayer])[0]["forces"]
    for k in range(2):  # the frozen shell holds every atom that acts on a free atom
        nf = int(rows.nfree[k])
        assert np.allclose(-grad[k, : 3 * nf].view(nf, 3).numpy(), forces[windows.atoms[k][:nf]], atol=1e-10)
    _assert_hessian_is_the_gradient_derivative(rows, H, dim=3, columns=4, atol=1e-5)


def _relaxed_window(potential, window, frozen, strain, start):
    """The window at ``strain`` (in-plane pure shear along x) relaxed from ``start`` mapped affinely."""
    F = np.diag([1.0 + strain, 1.0 / (1.0 + strain), 1.0])
    pos = np.where(frozen[:, None], window.positions @ F.T, start)
    batch = Batch.from_structures([window], potential.species, frozen=[frozen])
    batch.positions = torch.as_tensor(pos)
    Relaxer(potential, fmax=1e-8).run(batch, stress=False)
    return batch.positions.numpy().copy()


def _window_tau(potential, window, free, pos, area):
    moved = window.copy()
    moved.positions = pos
    w = potential.evaluate([moved], per_atom=True)[0]["per_atom_virial"][free].sum(axis=0)
    return -0.5 * (w[0, 0] - w[1, 1]) / area * EV_PER_A2_IN_N_PER_M


@pytest.mark.slow
def test_bilayer_first_instability_matches_a_relaxation_reference(bilayer, watanabe):
    """One window: the probe's Δτ and strain at the first drop against plain AQS with the relaxer
    (steps of 0.01, then bisection of the failing step from its stable bottom; ~80 s)."""
    s = ProbeSettings(grid=4, precision=1e-3)
    centre = grid_centres(bilayer.box, 4)[[5]]
    probed = probe_map(bilayer, watanabe, s, centres=centre)
    assert np.all(np.isfinite(probed["threshold"])) and probed["threshold"][0] > 0
    windows = cut_windows(bilayer, centre, s.r_free, default_shell(watanabe))
    free = windows.free[0]
    window = Structure(windows.rel[0], windows.species[0], Box(np.eye(3) * 200.0, False))
    area = np.pi * s.r_free**2

    def state(strain, lo, lo_pos):
        F = np.diag([(1.0 + strain) / (1.0 + lo), (1.0 + lo) / (1.0 + strain), 1.0])
        predicted = lo_pos @ F.T
        pos = _relaxed_window(watanabe, window, ~free, strain, predicted)
        tau = _window_tau(watanabe, window, free, pos, area)
        return pos, tau, np.linalg.norm(pos - predicted, axis=1)[free].max()

    lo, lo_pos = 0.0, _relaxed_window(watanabe, window, ~free, 0.0, window.positions)
    tau_in = lo_tau = _window_tau(watanabe, window, free, lo_pos, area)
    hi = None
    while hi is None or hi - lo > s.precision * (1 + 1e-9):
        strain = lo + s.step if hi is None else 0.5 * (lo + hi)
        pos, tau, jump = state(strain, lo, lo_pos)
        if jump < s.max_jump and tau > lo_tau - s.stress_drop:
            lo, lo_pos, lo_tau = strain, pos, tau
        else:
            hi = strain
    assert probed["strain_c"][0, 0] == pytest.approx(lo, abs=2 * s.precision)
    # τ rises by ~100 N/m per unit strain here: strains 1e-3 apart differ by ~0.1 N/m (was 0.054 of 11.3)
    assert probed["threshold"][0] == pytest.approx(lo_tau - tau_in, rel=0.01)
    assert probed["tau_in"][0, 0] == pytest.approx(tau_in, abs=1e-4)
