"""Hessian eigenvalues of relaxed states, the event audit and the barrier rule of the line searches."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from lj_potential import LennardJones

from glassfrac.cli import main
from glassfrac.generate import generate
from glassfrac.mechanics.audit import audit_event
from glassfrac.mechanics.linesearch import LineSearchMethod
from glassfrac.mechanics.protocols import TENSION_DEFAULTS, tension_test
from glassfrac.mechanics.relax import relax, relax_to_minimum
from glassfrac.mechanics.stability import _Hessian, lowest_modes, saddle_node_fit, trivial_modes
from glassfrac.potentials import get_potential
from glassfrac.structure import Box, Structure, write


@pytest.fixture(scope="module")
def relaxed():
    out = {}
    for name, kind in (("yukawa2d", "monolayer"), ("watanabe", "bilayer")):
        potential = get_potential(name)
        (sample, _), = relax(potential, [generate((4, 4), mu2=0.3, kind=kind, seed=1)], cell=True, fmax=1e-8,
                             raise_on_failure=True)
        out[name] = potential, sample
    return out


def dense_spectrum(potential, structure):
    """Eigenvalues of the potential's analytic Hessian (exact at a relaxed state), eV/Å², ascending."""
    H = _Hessian(potential, structure, None).sparse().toarray()
    return np.linalg.eigvalsh(0.5 * (H + H.T))


@pytest.mark.parametrize("name,trivial", [("yukawa2d", 2), ("watanabe", 3)])
def test_lowest_modes_equal_the_dense_spectrum_without_the_trivial_modes(relaxed, name, trivial):
    potential, sample = relaxed[name]
    spectrum = dense_spectrum(potential, sample)
    scale = np.abs(spectrum).max()
    assert np.sum(np.abs(spectrum) < 1e-9 * scale) == trivial  # the rigid translations of a periodic sheet
    modes = lowest_modes(potential, sample, k=3)
    assert modes.trivial == trivial
    assert np.allclose(modes.eigenvalues, spectrum[trivial:trivial + 3], rtol=1e-6, atol=1e-9 * scale)
    assert modes.lowest > 0  # a relaxed sample is a true minimum
    for v in modes.modes:  # unit modes orthogonal to the translations
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-8)
        assert np.abs(v.sum(axis=0)).max() < 1e-6


def test_exact_hessian_fills_the_gaps_of_the_watanabe_switch_window(relaxed):
    potential, sample = relaxed["watanabe"]
    stretched = sample.copy()
    o = int(np.flatnonzero(stretched.species == "O")[0])
    d = stretched.positions[:, None] - stretched.positions[None, o]
    r = np.linalg.norm(d - np.round(d / np.diag(sample.box.cell)) * np.diag(sample.box.cell), axis=-1)[:, 0]
    si = int(np.argmin(np.where(stretched.species == "Si", r, np.inf)))
    bond = stretched.positions[o] - stretched.positions[si]
    bond -= np.round(bond / np.diag(sample.box.cell)) * np.diag(sample.box.cell)
    stretched.positions[o] = stretched.positions[si] + bond * 2.5 / np.linalg.norm(bond)  # into 2.41–2.62 Å
    hess = _Hessian(potential, stretched, None)
    gaps = potential.hessian_gaps(hess.batch, hess.verlet.update(hess.batch)).tolist()
    assert {o, si} <= set(gaps)
    size = stretched.n_atoms * 3
    reference = hess.matmat(np.eye(size))  # every column by central differences
    reference = 0.5 * (reference + reference.T)
    scale = np.abs(reference).max()
    exact = hess.exact().toarray()
    assert np.abs(exact - exact.T).max() < 1e-12 * scale
    assert np.abs(exact - reference).max() < 1e-6 * scale
    assert np.abs(hess.sparse().toarray() - reference).max() > 1e-2 * scale  # the blocks alone miss the window


def test_a_cluster_has_a_rotation_among_its_zero_modes(relaxed):
    _, sample = relaxed["yukawa2d"]
    cluster = sample.copy()
    cluster.box = Box(sample.box.cell, False)
    assert trivial_modes(cluster).shape[1] == 3  # two translations and the rotation in the plane
    assert trivial_modes(sample).shape[1] == 2


def test_saddle_node_fit_recovers_a_square_root():
    strain = 0.1 - 1e-4 * 2.0 ** np.arange(6)
    fit = saddle_node_fit(strain, 0.8 * np.sqrt(0.1 - strain), 0.1)
    assert fit["exponent"] == pytest.approx(0.5, abs=1e-9) and fit["amplitude"] == pytest.approx(0.8, rel=1e-9)


def test_an_event_on_a_stable_branch_is_a_basin_hop_or_continuous(relaxed):
    """A run that reports an event where the branch is still a stiff minimum is caught: no mode at the
    event's atoms softens. If the state after it lies off the branch (as a minimiser that steps over a
    barrier reports it) it is a basin hop; if it is the branch itself, the change is continuous."""
    potential, sample = relaxed["watanabe"]

    def state_at(strain, descend=False):  # the branch: the same minimiser either way
        F = np.diag([1.0 + strain, 1.0, 1.0])
        s = sample.copy()
        s.positions = sample.positions @ F.T
        s.box = Box(sample.box.cell @ F.T, sample.box.pbc)
        return relax(potential, [s], fmax=1e-8, raise_on_failure=True)[0][0]

    branch = state_at(1e-3)
    hopped = branch.copy()
    hopped.positions[:8, 2] += 0.3
    audit = audit_event(potential, state_at, (0.0, sample), (1e-3, hopped), atoms=np.arange(8), levels=3)
    assert audit.verdict == "basin_hop" and audit.jump_share > 0.9
    assert audit.softening > 0.9 and all(v > 0 for v in audit.lowest)
    audit = audit_event(potential, state_at, (0.0, sample), (1e-3, branch), atoms=np.arange(8), levels=3)
    assert audit.verdict == "continuous" and audit.jump_share < 0.1


def test_line_search_refuses_a_trial_beyond_a_barrier():
    """A trial still falling as steeply as the line started, yet only 0.3 eV lower after a fall of slope 1
    over unit length: the energy must have risen in between (Armijo alone would accept it)."""
    method = LineSearchMethod("lbfgs", max_step=1.0, memory=5, curvature=1.0)
    method.e0, method.dg0 = torch.tensor([10.0, 10.0]), torch.tensor([-1.0, -1.0])
    alpha, dg = torch.tensor([1.0, 1.0]), torch.tensor([-1.0, -1.0])
    fall = method._difference(method.e0, method.dg0, torch.zeros(2), torch.tensor([9.7, 9.0]), dg, alpha)
    crossed = method._crossed(fall, dg, alpha)
    assert crossed.tolist() == [True, False]  # 0.3 eV lower: a barrier between; 1 eV lower: a steady fall


@pytest.mark.slow
def test_audited_tension_events_are_instabilities_of_the_branch():
    """Every event of a small bilayer's tension run (the branch-following rule) softens a mode on its
    atoms towards the event, about as the square root of the distance in strain."""
    sample = generate((4, 4), mu2=0.3, kind="bilayer", seed=1)
    settings = dataclasses.replace(TENSION_DEFAULTS, step=0.01, precision=1e-4, max_strain=0.11, audit=True)
    result = tension_test(sample, get_potential("watanabe"), settings)
    assert result.events
    for event in result.events:
        assert event.audit.verdict == "instability", event.audit.to_dict()


def test_load_audit_reports_each_event(tmp_path, capsys):
    """`glassfrac load tension --audit` writes the audit of every event (Yukawa monolayer, 80 atoms)."""
    path = tmp_path / "sample.xyz"
    write(generate((4, 4), mu2=0.3, kind="monolayer", seed=1), path)
    code = main(["load", "tension", str(path), "--potential", "yukawa2d", "--max-strain", "0.07", "--step", "0.02",
                 "--precision", "1e-3", "--fmax", "1e-6", "--audit", "--descent-step", "0.05",
                 "-o", str(tmp_path / "run"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["events"]
    record = json.loads((tmp_path / "run" / "labels.json").read_text())
    assert record["settings"]["descent_step"] == 0.05 and record["settings"]["audit"] is True
    saved = record["events"]
    for event, record in zip(out["events"], saved, strict=True):
        audit = event["audit"]
        assert audit == record["audit"] and audit["verdict"] == "instability"
        assert len(audit["strains"]) == len(audit["critical"]) == 6 and audit["lowest"][0] > 0
        lo, hi = audit["bracket"]  # the run's bracket (precision 1e-3) refined 2^6-fold
        assert event["strain"] - 1e-3 <= lo < hi <= event["strain"] and hi - lo <= 1e-3 / 64
        assert audit["strains"][-1] == lo


def test_relax_to_minimum_leaves_the_saddle_of_a_straight_chain():
    """A straight Lennard-Jones chain relaxes to a straight saddle (the forces stay along it); pushed along the
    negative mode it folds to a lower, true minimum."""
    lj = LennardJones()
    chain = Structure([[2.3 * k, 0.0] for k in range(7)], ["A"] * 7, Box([60.0, 60.0], False))
    (straight, info), = relax(lj, [chain], fmax=1e-8, raise_on_failure=True)
    assert np.abs(straight.positions[:, 1]).max() == 0.0 and lowest_modes(lj, straight).lowest < 0
    folded, out = relax_to_minimum(lj, chain, fmax=1e-8)
    assert out["minimum"] and out["lowest_eigenvalue"] > 0 and len(out["saddle_escapes"]) >= 1
    assert out["energy"] < info["energy"] - 1e-3
    assert out["saddle_escapes"][0]["energy"] == pytest.approx(info["energy"], abs=1e-9)
