"""LammpsMD: structures in and out, thermo and per-atom arrays, ensembles and strain rate."""

import numpy as np
import pytest

from glassfrac.analysis.oxide import per_atom_stress, voronoi_volumes
from glassfrac.generate.quench import density, random_alumina
from glassfrac.mechanics.md import LammpsMD, MDSettings, Stage
from glassfrac.potentials.matsui import MatsuiPotential

FAST = MatsuiPotential(cutoff=7.0, kspace_accuracy=1e-4)


@pytest.fixture(scope="module")
def sample():
    return random_alumina(20, 3.0, seed=7)


def test_stage_validation():
    with pytest.raises(ValueError, match="needs a temperature"):
        Stage("a", "nvt", 1.0)
    with pytest.raises(ValueError, match="needs a pressure"):
        Stage("a", "npt", 1.0, T=300.0)
    with pytest.raises(ValueError, match="ensemble"):
        Stage("a", "nph", 1.0)


def test_round_trip_and_per_atom_arrays(sample, needs_lammps):
    s = sample.copy()
    s.set_array("velocities", np.random.default_rng(0).normal(0, 5.0, (s.n_atoms, 3)))
    with LammpsMD(s, FAST) as md:
        snap = md.structure(per_atom=True)
        thermo = md.thermo()
    np.testing.assert_allclose(snap.positions, s.positions, atol=1e-12)
    np.testing.assert_allclose(snap.arrays["velocities"], s.arrays["velocities"], atol=1e-12)
    assert set(np.unique(snap.arrays["charge"])) == {-0.945, 1.4175}
    assert snap.arrays["pe"].sum() == pytest.approx(thermo["pe_eV"], abs=1e-8)
    # the per-atom virials add up to the global stress (kinetic part included), GPa
    np.testing.assert_allclose(snap.arrays["stress_volume"].sum(0) / snap.box.volume, thermo["stress_GPa"],
                               atol=1e-9)
    # ... and so do per-atom stresses weighted by Voronoi volumes, which tile the cell
    volumes = voronoi_volumes(snap)
    assert volumes.sum() == pytest.approx(snap.box.volume, rel=1e-9)
    np.testing.assert_allclose((per_atom_stress(snap, volumes) * volumes[:, None]).sum(0) / volumes.sum(),
                               thermo["stress_GPa"], atol=1e-9)
    assert thermo["density_g_cm3"] == pytest.approx(density(s), rel=1e-6)


def test_voronoi_volumes_match_lammps(sample, needs_lammps):
    with LammpsMD(sample, FAST) as md:
        md.command("compute vor all voronoi/atom")
        md.command("run 0")
        lammps_volumes = md._gather("c_vor", 2)[:, 0]
    np.testing.assert_allclose(voronoi_volumes(sample), lammps_volumes, rtol=1e-8)


def test_stages_thermo_frames_and_strain_rate(sample, needs_lammps):
    settings = MDSettings(thermo_every=25, seed=3)
    with LammpsMD(sample, FAST, settings) as md:
        md.velocities(1500.0)
        nvt = md.run(Stage("nvt", "nvt", 0.2, 1500.0, 1000.0), frame_every_ps=0.1)
        box0 = md.box().cell.copy()
        erate = 0.05  # 1/ps
        pull = md.run(Stage("pull", "npt", 0.2, 1000.0, P=0.0, barostat="y z", erate=erate))
        box1 = md.box().cell
    assert len(nvt.thermo["step"]) == 8 and nvt.thermo["step"][-1] == 200
    assert nvt.thermo["time_ps"][-1] == pytest.approx(0.2)
    assert nvt.thermo["stress_GPa"].shape == (8, 6)
    assert [f.info["step"] for f in nvt.frames] == [100, 200]
    assert box1[0, 0] == pytest.approx(box0[0, 0] * (1 + erate * 0.2), rel=1e-9)  # engineering rate
    assert pull.thermo["lengths_A"][-1, 0] == pytest.approx(box1[0, 0])
    assert not np.isclose(box1[1, 1], box0[1, 1])  # the lateral barostat moved y
    # frames are unwrapped: no atom jumps by a box length between frames
    jump = np.abs(nvt.frames[1].positions - nvt.frames[0].positions).max()
    assert jump < 3.0


def test_scale_box_and_set_density(sample, needs_lammps):
    with LammpsMD(sample, FAST) as md:
        md.set_density(2.5)
        assert md.structure().box.volume == pytest.approx(sample.box.volume * density(sample) / 2.5, rel=1e-9)
        before = md.box().cell[0, 0]
        md.scale_box((1.1, 1.0, 1.0))
        assert md.box().cell[0, 0] == pytest.approx(1.1 * before, rel=1e-12)
        result = md.minimize(ftol=1e-2)
    assert result["fmax_eV_A"] < 1.0


def test_rejects_foreign_species_and_2d(needs_lammps):
    from glassfrac.structure import Box, Structure

    with pytest.raises(ValueError, match="Si"):
        LammpsMD(Structure(np.zeros((1, 3)), ["Si"], Box([5.0] * 3)))
    with pytest.raises(ValueError, match="3D"):
        LammpsMD(Structure(np.zeros((1, 2)), ["Al"], Box([5.0] * 2)))


def test_thermal_trajectory_feeds_phop(sample, needs_lammps):
    from glassfrac.analysis.oxide import phop
    from glassfrac.mechanics.md import thermal_trajectory

    frames = thermal_trajectory(sample, 300.0, time_ps=0.2, frame_every_ps=0.02, potential=FAST)
    assert len(frames) == 11 and [f.info["step"] for f in frames][:2] == [0, 20]
    p = phop(np.stack([f.positions for f in frames]), dt=0.02, t_r=0.1)
    assert p.shape == (11 - 4, sample.n_atoms) and np.all(p >= 0)


def test_open_lammps_registers_mpi_finalize_once_under_mpi(monkeypatch):
    """Under mpirun (world size > 1) MPI_Finalize must run at exit, registered once however
    many instances are opened; a serial run registers nothing."""
    import atexit
    import sys
    import types

    from glassfrac.potentials import lammps as lm

    ranks = {"n": 1}

    class FakeLammps:
        def __init__(self, cmdargs):
            self.lib = types.SimpleNamespace(lammps_mpi_finalize=lambda: None)

        def extract_setting(self, name):
            assert name == "world_size"
            return ranks["n"]

    registered = []
    monkeypatch.setitem(sys.modules, "lammps", types.SimpleNamespace(lammps=FakeLammps))
    monkeypatch.setattr(lm, "_FINALIZE", [])
    monkeypatch.setattr(atexit, "register", registered.append)
    lm.open_lammps()
    assert registered == []
    ranks["n"] = 2
    first = lm.open_lammps()
    lm.open_lammps()
    assert registered == [first.lib.lammps_mpi_finalize]
