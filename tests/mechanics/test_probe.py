"""Local probing: exact windows, exact Hessians, batched = one-by-one, goodness."""

import numpy as np
import pytest
import torch

from glassfrac import read
from glassfrac.mechanics.probe import (
    ProbeSettings,
    _Chunk,
    cut_windows,
    goodness,
    grid_centres,
    load_map,
    probe_map,
    save_map,
)
from glassfrac.potentials import get_potential


@pytest.fixture(scope="module")
def sample(jumol_files):
    return read(jumol_files[1])


@pytest.fixture(scope="module")
def potential():
    return get_potential("yukawa2d")


def chunk_for(sample, potential, n=3):
    s = ProbeSettings(grid=4)
    windows = cut_windows(sample, grid_centres(sample.box, 4)[:n], s.r_free, potential.cutoff)
    chunk = _Chunk(potential, windows, list(range(n)), [0.0] * n, s)
    chunk.build_pairs()
    return chunk, windows


def test_pair_derivatives_match_the_pair_energy(potential):
    r = torch.linspace(1.2, 9.9, 200, dtype=torch.float64)
    for code, (a, b) in enumerate([("Si", "Si"), ("Si", "O"), ("O", "Si"), ("O", "O")]):
        dv, d2v = potential.pair_derivatives(r, torch.full_like(r, code, dtype=torch.long))
        h = 1e-5
        plus, zero, minus = (potential.pair_energy(r + d, a, b) for d in (h, 0.0, -h))
        assert torch.allclose(dv, (plus - minus) / (2 * h), rtol=1e-7, atol=1e-9)
        assert torch.allclose(d2v, (plus - 2 * zero + minus) / h**2, rtol=1e-4, atol=1e-6)


def test_window_forces_on_free_atoms_equal_the_full_sample(sample, potential):
    chunk, windows = chunk_for(sample, potential)
    grad, _, _ = chunk.evaluate(hessian=False)
    forces = potential.evaluate([sample])[0]["forces"]
    for k in range(chunk.C):
        nf = chunk.nfree[k]
        atoms = windows.atoms[k][:nf]
        assert np.allclose(-grad[k, : 2 * nf].view(nf, 2).numpy(), forces[atoms], atol=1e-12)


def test_window_hessian_is_the_derivative_of_the_gradient(sample, potential):
    chunk, _ = chunk_for(sample, potential, n=1)
    g0, H, _ = chunk.evaluate()
    rng = np.random.default_rng(0)
    for dof in rng.choice(2 * chunk.nfree[0], size=6, replace=False):
        atom, axis = divmod(int(dof), 2)
        h = 1e-5
        chunk.pos[0, atom, axis] += h
        gp, _, _ = chunk.evaluate(hessian=False)
        chunk.pos[0, atom, axis] -= 2 * h
        gm, _, _ = chunk.evaluate(hessian=False)
        chunk.pos[0, atom, axis] += h
        column = (gp - gm)[0] / (2 * h)
        assert torch.allclose(H[0, :, dof], column, atol=1e-6)


def test_batched_map_equals_window_by_window(sample, potential):
    settings = ProbeSettings(grid=4, chunk=4)
    centres = grid_centres(sample.box, 4)[[0, 5, 10, 15]]
    together = probe_map(sample, potential, settings, centres=centres)
    alone = [probe_map(sample, potential, ProbeSettings(grid=4, chunk=1), centres=c[None])
             for c in centres]
    assert np.allclose(together["threshold"], np.concatenate([a["threshold"] for a in alone]), atol=1e-9)
    assert np.all(together["threshold"] > 0)
    # a real instability: the strain at the drop is bracketed to the precision and inside the range
    assert np.all((together["strain_c"] > 0.01) & (together["strain_c"] < settings.max_strain))


def test_map_file_round_trip(tmp_path, sample, potential):
    result = {"threshold": np.arange(4.0).reshape(2, 2), "centres": np.zeros((4, 2)), "unit": "N/m"}
    save_map(result, tmp_path / "m.npz", ProbeSettings(grid=2), {"source": "x"})
    back = load_map(tmp_path / "m.npz")
    assert np.array_equal(back["threshold"], result["threshold"])
    assert back["meta"]["unit"] == "N/m" and back["meta"]["settings"]["grid"] == 2


def test_goodness_extremes(sample):
    centres = grid_centres(sample.box, 4)
    values = np.arange(16.0)
    # an event on the lowest-threshold point scores close to 1, on the highest -1
    assert goodness(values, centres, centres[0][None], sample.box)[0] == pytest.approx(1 - 2 / 16)
    assert goodness(values, centres, centres[15][None], sample.box)[0] == pytest.approx(-1.0)
