"""Melt-quench, tension and the ``glassfrac oxide`` commands, on tiny fast settings; the
reduced-size densification check is marked slow."""

import json

import numpy as np
import pytest

from glassfrac.campaign.oxide_config import load_config
from glassfrac.core.errors import InputError
from glassfrac.generate.quench import QuenchSchedule, density, melt_quench, random_alumina
from glassfrac.mechanics.md import MDSettings, n_steps
from glassfrac.mechanics.md_tension import TensionSettings, replicate, tension
from glassfrac.potentials.matsui import MatsuiPotential

FAST = MatsuiPotential(cutoff=7.0, kspace_accuracy=1e-4)
TINY = QuenchSchedule(n_units=20, melt_ps=0.2, cool_ps=0.1, liquid_ps=0.1, dense_ps=0.1, quench_ps=0.3,
                      relax_nvt_ps=0.1, relax_npt_ps=0.1, wall=True)
TINY_TOML = """
[potential]
cutoff = 7.0
kspace_accuracy = 1e-4
[md]
thermo_every = 50
seed = 11
[quench]
n_units = 20
melt_ps = 0.2
cool_ps = 0.1
liquid_ps = 0.1
dense_ps = 0.1
quench_ps = 0.3
relax_nvt_ps = 0.1
relax_npt_ps = 0.1
pressures_GPa = [3.0]
[tension]
replicate = [2, 1, 1]
equilibrate_ps = 0.1
strain_rate_per_s = 5e11
max_strain = 0.1
frame_every_strain = 0.05
step_strain = 0.05
step_nvt_ps = 0.05
"""


def test_random_alumina():
    s = random_alumina(30, 2.75, seed=1, min_distance=1.6)
    assert (s.count("Al"), s.count("O")) == (60, 90)
    assert density(s) == pytest.approx(2.75, rel=1e-12)
    d = s.positions[:, None] - s.positions[None]
    d -= s.box.cell[0, 0] * np.round(d / s.box.cell[0, 0])
    r = np.linalg.norm(d, axis=-1) + np.eye(150) * 99
    assert r.min() >= 1.6
    assert np.array_equal(random_alumina(30, seed=1).positions, random_alumina(30, seed=1).positions)


def test_schedules():
    paper = QuenchSchedule.paper()
    stages = paper.stages(pressure=3.0)
    assert [s.name for s in stages] == ["melt", "cool", "liquid", "dense", "quench", "relax_nvt", "relax_npt"]
    assert 5 * paper.n_units == 8100
    assert sum(n_steps(s.time_ps, 0.001) for s in stages) == 865_000
    assert paper.quench_rate_K_per_ps == pytest.approx(2700 / 650)
    quench = stages[4]
    assert (quench.ensemble, quench.T, quench.T_stop, quench.P, quench.P_stop) == ("npt", 3000.0, 300.0, 3.0, 3.0)
    assert stages[-1].P == 0.0
    assert not any(s.wall for s in stages)
    walled = QuenchSchedule(wall=True).stages(0.0)
    assert [s.wall for s in walled] == [True, True, True, True, True, False, False]
    assert TensionSettings.paper().step_nvt_ps == 10.0


def test_tiny_melt_quench(needs_lammps):
    result = melt_quench(2.0, TINY, FAST, MDSettings(thermo_every=50, seed=5))
    s = result.structure
    assert s.n_atoms == 100 and {"pe", "stress_volume", "velocities"} <= set(s.arrays)
    assert result.wall_used and s.info["wall_used"]
    summary = result.summary()
    assert summary["wall_used"] is True
    assert [st["name"] for st in summary["stages"]] == ["melt", "cool", "liquid", "dense", "quench", "relax_nvt",
                                                        "relax_npt"]
    dense = result.stages[3].thermo["density_g_cm3"]
    assert np.allclose(dense, 3.175, rtol=1e-9)  # rescaled before the NVT hold
    assert sum(summary["al_coordination_fractions"].values()) == pytest.approx(1.0)
    assert 2.0 < summary["density_g_cm3"] < 4.5


def test_replicate():
    s = random_alumina(4, seed=2)
    s.set_array("velocities", np.ones((20, 3)))
    r = replicate(s, (2, 1, 3))
    assert r.n_atoms == 120 and r.arrays["velocities"].shape == (120, 3)
    assert r.box.volume == pytest.approx(6 * s.box.volume)
    assert density(r) == pytest.approx(density(s))


@pytest.mark.parametrize("mode", ["plane_stress", "plane_strain"])
def test_tiny_tension(mode, needs_lammps):
    config = TensionSettings(equilibrate_ps=0.1, strain_rate_per_s=5e11, max_strain=0.1, frame_every_strain=0.05,
                             step_strain=0.05, step_nvt_ps=0.05)
    sample = random_alumina(10, 3.0, seed=3)
    result = tension(sample, mode, config, FAST, MDSettings(thermo_every=25))
    assert result.equilibrated.n_atoms == 100
    assert result.frame_strain.tolist() == pytest.approx([0.0, 0.05, 0.1], abs=1e-6)
    assert result.strain[-1] == pytest.approx(0.1, abs=1e-6)
    assert result.stress_GPa.shape == (len(result.strain), 6)
    lengths = [f.box.lengths for f in result.frames]
    if mode == "plane_strain":
        assert result.strain.tolist() == pytest.approx([0.0, 0.05, 0.1])
        assert all(np.allclose(ln[1:], lengths[0][1:]) for ln in lengths)  # lateral sizes fixed
    assert all("stress_volume" in f.arrays for f in result.frames)
    assert result.summary()["stress_unit"] == "GPa"


def test_config_errors(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[quench]\nmelt_time = 3.0\n")
    with pytest.raises(InputError, match=r"bad.toml.*melt_time"):
        load_config(path)
    path.write_text("[tension]\nmodes = ['shear']\n")
    with pytest.raises(InputError, match="modes"):
        load_config(path)
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_shipped_configs_load():
    from pathlib import Path

    configs = Path(__file__).resolve().parents[2] / "configs"
    paper = load_config(configs / "oxide-paper.toml")
    assert paper.quench == QuenchSchedule.paper()
    assert paper.tension == TensionSettings.paper()
    assert paper.pressures_GPa == (0.0, 1.0, 2.0, 3.0, 4.0)
    assert paper.potential.kspace == "pppm" and paper.potential.kspace_accuracy == 1e-5
    quick = load_config(configs / "oxide-quick.toml")
    assert quick.quench == QuenchSchedule() and quick.tension == TensionSettings()


def _cli(monkeypatch, capsys, argv):
    from glassfrac import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["glassfrac.cli.oxide"])
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_quench_tension_analyse(tmp_path, monkeypatch, capsys, needs_lammps):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TOML)
    out = tmp_path / "q"
    q = _cli(monkeypatch, capsys, ["oxide", "quench", "--config", str(cfg), "--out", str(out), "--json"])
    assert q["pressures_GPa"] == [3.0] and len(q["density_g_cm3"]) == 1 and q["wall_used"] is False
    for name in ("quench_P3GPa.xyz", "quench_P3GPa.data", "quench_P3GPa_thermo.npz", "quench.png", "quench.json"):
        assert (out / name).is_file()
    record = json.loads((out / "quench.json").read_text())
    assert record["provenance"]["seed"] == 11 and record["provenance"]["versions"]["lammps"]
    thermo = np.load(out / "quench_P3GPa_thermo.npz")
    assert "quench/temperature_K" in thermo.files

    t = _cli(monkeypatch, capsys, ["oxide", "tension", str(out / "quench_P3GPa.xyz"), "--config", str(cfg),
                                   "--mode", "plane_stress", "--out", str(tmp_path / "t"), "--json"])
    assert t["plane_stress"]["switching"]["UC"][0] == 1.0 and len(t["plane_stress"]["frame_strain"]) == 3
    curve = np.loadtxt(tmp_path / "t" / "tension_plane_stress.csv", delimiter=",", skiprows=1)
    assert curve.shape[1] == 7
    frames = tmp_path / "t" / "tension_plane_stress_frames.xyz"

    a = _cli(monkeypatch, capsys, ["oxide", "analyse", str(out / "quench_P3GPa.xyz"), "--trajectory", str(frames),
                                   "--field", "pe", "--out", str(tmp_path / "a.xyz"), "--json"])
    assert a["n_atoms"] == 100 and a["al_o_cutoff_A"] == 2.25 and a["n_frames"] == 3
    assert "per_atom_hydrostatic_stress_GPa" in a and a["clusters"]["n_selected"] == 4
    assert 1.6 < a["al_o_rdf_first_minimum_A"] < 3.0


def test_cli_error_is_one_line(tmp_path, monkeypatch, capsys):
    from glassfrac import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ["glassfrac.cli.oxide"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[md]\nsteps = 3\n")
    assert cli.main(["oxide", "quench", "--config", str(bad), "--json"]) == 2
    assert "steps" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.slow
def test_densified_glass_has_more_high_coordinated_al(needs_lammps):
    """Reduced default (300 atoms, 25 ps): quenching at 4 GPa gives a denser glass with more Al5 + Al6."""
    low, high = (melt_quench(p, QuenchSchedule(), MatsuiPotential(), MDSettings(seed=1)) for p in (0.0, 4.0))
    f_low, f_high = (r.summary()["al_coordination_fractions"] for r in (low, high))
    high56 = f_high.get("5", 0) + f_high.get("6", 0)
    low56 = f_low.get("5", 0) + f_low.get("6", 0)
    assert high.density > low.density
    assert high56 > low56
    # p_hop on a 300 K trajectory of the glass (t_R = 6 ps): a solid, so most atoms never hop
    from glassfrac.analysis.oxide import hop_labels, phop
    from glassfrac.mechanics.md import thermal_trajectory

    frames = thermal_trajectory(low.structure, 300.0, time_ps=7.0, frame_every_ps=0.1)
    p = phop(np.stack([f.positions for f in frames]), dt=0.1, t_r=6.0)
    assert p.shape == (71 - 60, 300)
    assert np.median(p) < 0.05 and (hop_labels(p) == 0).mean() > 0.5


@pytest.mark.parametrize("text, message", [
    ('[md]\nseed = "x"\n', "key 'md.seed': expected an int between 1 and 900000000, got 'x'"),
    ('[quench]\npressures_GPa = "abc"\n', "key 'quench.pressures_GPa': expected a list of floats (GPa), got 'abc'"),
    ("[tension]\nreplicate = 3\n", "key 'tension.replicate': expected a list of positive ints of length 3, got 3"),
    ("[tension]\nmodes = []\n", "key 'tension.modes': expected a list of strings"),
    ('[softness]\nC = "big"\n', "key 'softness.C': expected a positive float or list of positive floats, got 'big'"),
    ('[potential]\nkspace = "pme"\n', "key 'potential.kspace': expected one of ['pppm', 'ewald'], got 'pme'"),
    ("[quench]\nquench_ps = 0\n", "key 'quench.quench_ps': expected a positive float (ps), got 0.0"),
    ("[tension]\nstep_strain = 0.6\n", "key 'tension.step_strain': expected step_strain <= max_strain (0.5)"),
    ("[mdd]\nseed = 1\n", "unknown key 'mdd'; did you mean 'md'?"),
])
def test_config_keys_are_checked_by_their_schema(tmp_path, text, message):
    """Before: wrong types reached the dataclasses or LAMMPS (TypeError, ValueError: exit 1)."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
