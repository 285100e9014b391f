"""Bad command lines and bad structure files: exit status 2, the option or file named, one JSON object on
stdout under --json, nothing written (issue 18). Non-finite numbers stop a computation with an error."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from glassfrac.cli import main
from glassfrac.core.errors import InputError, NonFiniteError
from glassfrac.generate.network import generate
from glassfrac.mechanics.aqs import AQSDriver, AQSSettings
from glassfrac.mechanics.relax import relax
from glassfrac.potentials import get_potential
from glassfrac.structure import read, write


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """An 80-atom 2D silica monolayer as LAMMPS data (and its lines, to break them)."""
    folder = tmp_path_factory.mktemp("sample")
    path = folder / "mono.data"
    write(generate(rings=(4, 4), mu2=0.5, kind="monolayer", seed=1, steps=20), path)
    return path


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def run(argv, capsys, folder):
    """``main(argv + --json)`` in ``folder``; returns (status, the JSON object on stdout, stderr), and asserts
    that stdout is one JSON object and that nothing was written into ``folder``."""
    before = files_under(folder)
    status = main([str(a) for a in argv] + ["--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert files_under(folder) == before
    return status, json.loads(lines[0]), err


def break_line(path, target, column, value):
    """Copy of the LAMMPS data file ``path`` with ``column`` of the first Atoms line set to ``value``; returns
    the copy and the (1-based) number of that line."""
    lines = path.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("Atoms")) + 2
    words = lines[k].split()
    words[column] = value
    lines[k] = " ".join(words)
    target.write_text("\n".join(lines) + "\n")
    return target, k + 1


# -- options -----------------------------------------------------------------------------------------------

BAD_OPTIONS = [  # (command line after the structure file is filled in, command, option named)
    (["load", "tension", "{f}", "--potential", "yukawa2d", "--precision", "0", "-o", "out"], "load tension",
     "--precision"),
    (["load", "shear", "{f}", "--potential", "yukawa2d", "--step", "0", "-o", "out"], "load shear", "--step"),
    (["load", "tension", "{f}", "--potential", "yukawa2d", "--step", "nan", "-o", "out"], "load tension", "--step"),
    (["load", "shear", "{f}", "--potential", "yukawa2d", "--events", "-1", "-o", "out"], "load shear", "--events"),
    (["load", "shear", "{f}", "--potential", "yukawa2d", "--max-strain", "-0.3", "-o", "out"], "load shear",
     "--max-strain"),
    (["load", "tension", "{f}", "--potential", "yukawa2d", "--mode", "simple", "-o", "out"], "load tension",
     "--mode"),
    (["load", "shear", "{f}", "--potential", "yukawa2d", "--fixed-steps", "--precision", "1e-3", "-o", "out"],
     "load shear", "--precision"),
    (["load", "shear", "{f}", "--potential", "yukawa2d", "--mode", "diagonal", "-o", "out"], "load shear",
     "--mode"),
    (["probe", "{f}", "--r-free", "0", "-o", "map.npz"], "probe", "--r-free"),
    (["probe", "{f}", "--grid", "0", "-o", "map.npz"], "probe", "--grid"),
    (["probe", "{f}", "-o", "map.txt"], "probe", "--output"),
    (["relax", "{f}", "--potential", "yukawa2d", "-o", "x.txt"], "relax", "--output"),
    (["relax", "{f}", "--potential", "yukawa2d", "--max-steps", "0", "-o", "x.xyz"], "relax", "--max-steps"),
    (["relax", "{f}", "--potential", "yukawa2d", "--fmax", "abc", "-o", "x.xyz"], "relax", "--fmax"),
    (["relax", "{f}", "--potential", "yukawa2d", "--threads", "0", "-o", "x.xyz"], "relax", "--threads"),
    (["relax", "{f}", "--potential", "yukawa2d", "--format", "pdb", "-o", "x.xyz"], "relax", "--format"),
    (["rings", "{f}", "--plot", "rings.jpg"], "rings", "--plot"),
    (["rings", "{f}", "--cutoff", "-1"], "rings", "--cutoff"),
    (["generate", "--rings", "4", "4", "--kind", "monolayer", "--mu2", "0.5", "--seed", "-1", "-o", "g.xyz"],
     "generate", "--seed"),
    (["generate", "--rings", "4", "4", "--kind", "monolayer", "--mu2", "0.5", "--seed", "1", "-o", "g.txt"],
     "generate", "--output"),
    (["render", "{f}", "-o", "image.png"], "render", "--output"),
    (["cnn", "train", "data", "--target", "mu2", "-o", "model.pt"], "cnn train", "--output"),
    (["softness", "train", "data", "--folds", "1", "-o", "svm.safetensors"], "softness train", "--folds"),
    (["listi", "map", "m.safetensors", "{f}", "--grid", "-5", "-o", "map.npz"], "listi map", "--grid"),
    (["campaign", "run", "config.toml", "--workers", "-2"], "campaign run", "--workers"),
    (["oxide", "softness", "train", "a.xyz", "--group", "("], "oxide softness train", "--group"),
    (["oxide", "analyse", "{f}", "--dt", "0"], "oxide analyse", "--dt"),
    (["oxide", "samples", "--config", "c.toml", "--out", "run", "--stop", "0"], "oxide samples", "--stop"),
    (["oxide", "samples", "--config", "c.toml", "--out", "run", "--stop", "4", "--workers", "0"], "oxide samples",
     "--workers"),
]


@pytest.mark.parametrize("argv, command, option", BAD_OPTIONS, ids=[" ".join(c[0][:2]) + " " + c[2]
                                                                     for c in BAD_OPTIONS])
def test_bad_option_is_refused_before_any_work(argv, command, option, sample, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = run([str(sample) if a == "{f}" else a for a in argv], capsys, tmp_path)
    assert status == 2
    assert out["command"] == command
    assert option in out["error"]
    assert f"glassfrac {command}: error:" in err and option in err


def test_missing_arguments_under_json_name_the_full_command(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, _ = run(["load", "tension"], capsys, tmp_path)
    assert status == 2 and out["command"] == "load tension"
    assert "--potential" in out["error"] and "file" in out["error"]
    status, out, _ = run(["nosuch"], capsys, tmp_path)
    assert status == 2 and out["command"] == "" and "nosuch" in out["error"]


# -- structure files ---------------------------------------------------------------------------------------

def bad_files(sample, folder):
    """(path, text the error must hold) of broken structure files."""
    cases = []
    path, line = break_line(sample, folder / "nan.data", 2, "nan")
    cases.append((path, f"line {line}"))
    path, line = break_line(sample, folder / "inf.data", 3, "-inf")
    cases.append((path, f"line {line}"))
    text = sample.read_text().splitlines()
    k = next(i for i, t in enumerate(text) if t.endswith("xlo xhi"))
    text[k] = "0 inf xlo xhi"
    (folder / "box.data").write_text("\n".join(text) + "\n")
    cases.append((folder / "box.data", f"line {k + 1}"))
    structure = read(sample)
    for name, line, column, value in (("nan.xyz", 4, 1, "nan"), ("inf.dump", 9, 3, "inf")):
        good = folder / f"good{Path(name).suffix}"
        write(structure, good)
        lines = good.read_text().splitlines()
        words = lines[line].split()
        words[column] = value
        lines[line] = " ".join(words)
        (folder / name).write_text("\n".join(lines) + "\n")
        cases.append((folder / name, f"line {line + 1}"))
    for suffix in (".data", ".xyz", ".dump"):
        (folder / f"empty{suffix}").write_text("")
        cases.append((folder / f"empty{suffix}", "empty"))
        (folder / f"binary{suffix}").write_bytes(b"12 atoms\n" + bytes(range(128, 256)))
        cases.append((folder / f"binary{suffix}", "line 2"))
    (folder / "folder.data").mkdir()
    cases.append((folder / "folder.data", "folder"))
    (folder / "no_atoms.xyz").write_text('0\nLattice="10 0 0 0 10 0 0 0 10" Properties=species:S:1:pos:R:3\n')
    cases.append((folder / "no_atoms.xyz", "no atoms"))
    text = sample.read_text()
    (folder / "no_atoms.data").write_text(text[: text.index("Atoms")].replace("80 atoms", "0 atoms") + "Atoms\n\n")
    cases.append((folder / "no_atoms.data", "0 atoms"))
    return cases


def test_broken_structure_files_exit_2_naming_file_and_line(sample, tmp_path, capsys, monkeypatch):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    cases = bad_files(sample, inputs)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.chdir(out_dir)
    for path, where in cases:
        for argv in (["rings", path], ["relax", path, "--potential", "yukawa2d", "-o", "r.xyz"]):
            status, out, _ = run(argv, capsys, out_dir)
            assert status == 2, (path, out)
            assert str(path) in out["error"] and where in out["error"], out["error"]
            assert "internal error" not in out["error"]


def test_twodsilica_and_format_option(sample, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jumol = tmp_path / "sample_0.twodsilica"
    jumol.write_text(sample.read_text())
    assert main(["rings", str(jumol), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_atoms"] == 80
    odd = tmp_path / "sample.txt"
    odd.write_text(sample.read_text())
    assert main(["rings", str(odd), "--format", "lammps-data", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_atoms"] == 80
    status, out, _ = run(["rings", odd, "--format", "extxyz"], capsys, tmp_path)
    assert status == 2 and str(odd) in out["error"]


# -- non-finite numbers ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def overlapping(sample, tmp_path_factory):
    """The sample with atom 2 moved onto atom 1 (0-based atoms 0 and 1 overlap)."""
    structure = read(sample)
    structure.positions[1] = structure.positions[0]
    path = tmp_path_factory.mktemp("overlap") / "overlap.data"
    write(structure, path)
    return path


@pytest.mark.parametrize("argv, where", [
    (["relax", "{f}", "--potential", "yukawa2d", "-o", "relaxed.xyz"], "start of the relaxation"),
    (["load", "tension", "{f}", "--potential", "yukawa2d", "-o", "run"], "strain 0"),
    (["probe", "{f}", "--grid", "2", "-o", "map.npz"], "sample to probe"),
])
def test_overlapping_atoms_stop_with_their_names(argv, where, overlapping, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, _ = run([str(overlapping) if a == "{f}" else a for a in argv], capsys, tmp_path)
    assert status == 2
    assert str(overlapping) in out["error"] and where in out["error"]
    assert "overlapping atoms" in out["error"] and "0 and 1" in out["error"]


def test_relax_of_a_batch_names_the_broken_system(sample, overlapping):
    """The batch goes on with the sound system, then relax() refuses to return the broken one's NaNs."""
    with pytest.raises(NonFiniteError, match="system 0 of 2: .*overlapping atoms.*0 and 1"):
        relax(get_potential("yukawa2d"), [read(overlapping), read(sample)], fmax=1e-3)


def test_aqs_stops_at_the_strain_where_numbers_turn_non_finite(sample):
    potential = get_potential("yukawa2d")
    compute = potential.compute
    width = read(sample).box.cell[0, 0]

    def broken(batch, pairs, **kwargs):  # NaN energies once the cell is stretched by more than 1.5 %
        result = compute(batch, pairs, **kwargs)
        if float(batch.cells[0, 0, 0]) > 1.015 * width:
            result.energy = result.energy * np.nan
        return result

    potential.compute = broken
    with pytest.raises(NonFiniteError, match="uniaxial_strain at strain 0.02"):
        AQSDriver(potential, AQSSettings(max_strain=0.05, step=0.01)).run(read(sample))


@pytest.mark.parametrize("name", ["step", "precision", "max_strain", "fmax"])
def test_aqs_settings_refuse_zero(name):
    with pytest.raises(InputError, match=name):
        AQSSettings(**{name: 0.0})


def test_stray_output_of_libraries_goes_to_stderr_under_json(sample, tmp_path):
    """A handler that prints and makes LAPACK print (NaN in a least-squares solve) leaves stdout to the JSON."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import glassfrac.cli.mechanics as command
        def noisy(args):
            print("a stray print")
            try:
                np.linalg.lstsq(np.full((3, 3), np.nan), np.ones(3), rcond=None)
            except np.linalg.LinAlgError:
                pass
            return {"ok": True}
        command._relax = noisy
        from glassfrac.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    done = subprocess.run([sys.executable, "-c", script, "relax", str(sample), "--potential", "yukawa2d", "-o",
                           str(tmp_path / "r.xyz"), "--json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GLASSFRAC_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True  # stdout holds one JSON object and nothing else
    assert "a stray print" in done.stderr


# -- other commands ----------------------------------------------------------------------------------------

def test_oxide_analyse_refuses_silica(sample, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, _ = run(["oxide", "analyse", sample], capsys, tmp_path)
    assert status == 2 and out["command"] == "oxide analyse"
    assert str(sample) in out["error"] and "Al and O" in out["error"]


def test_campaign_status_check_with_problems_exits_2(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(textwrap.dedent(f"""
        [campaign]
        name = "tiny"
        seed = 3
        [[samples]]
        kind = "monolayer"
        rings = [4, 4]
        mu2 = [0.5]
        count = 1
        [relax]
        fmax = 1e-3
        [tests]
        run = []
        [output]
        directory = "{tmp_path / 'campaign'}"
    """))
    assert main(["campaign", "run", str(config), "--workers", "0", "--json"]) == 0
    capsys.readouterr()
    assert main(["campaign", "status", str(tmp_path / "campaign"), "--check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["check"]["problems"] == []
    stored = next((tmp_path / "campaign" / "samples").rglob("generated.xyz"))
    stored.write_text(stored.read_text() + "\n")
    assert main(["campaign", "status", str(tmp_path / "campaign"), "--check", "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["command"] == "campaign status" and "1 problem" in out["error"]
    assert out["check"]["problems"] and "generated.xyz" in out["check"]["problems"][0]


# -- load shear: simple shear and fixed steps ----------------------------------------------------------------

def curve_strains(folder):
    return np.loadtxt(folder / "curve.csv", delimiter=",", skiprows=1, ndmin=2)[:, 0]


def test_simple_shear_with_fixed_steps(sample, tmp_path, capsys):
    out = tmp_path / "shear"
    assert main(["load", "shear", str(sample), "--potential", "yukawa2d", "--mode", "simple", "--fixed-steps",
                 "--step", "0.002", "--max-strain", "0.006", "-o", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["path"] == "simple_shear" and result["fixed_steps"] is True
    np.testing.assert_allclose(curve_strains(out), [0, 0.002, 0.004, 0.006])


def test_fixed_steps_do_not_bisect_events(sample, tmp_path, capsys):
    """Tension of the sample breaks a bond between strain 0.04 and 0.06: bisected without --fixed-steps, at a
    step with it."""
    strains = {}
    for fixed in (False, True):
        out = tmp_path / f"tension_{fixed}"
        argv = ["load", "tension", str(sample), "--potential", "yukawa2d", "--step", "0.02", "--max-strain", "0.08",
                "-o", str(out), "--json"]
        assert main(argv + (["--fixed-steps"] if fixed else [])) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["n_events"] >= 1
        strains[fixed] = (curve_strains(out), result["events"][0]["strain"])
    grid, event = strains[True]
    np.testing.assert_allclose(grid, 0.02 * np.round(grid / 0.02), atol=1e-12)
    assert event == pytest.approx(0.06)
    bisected, event = strains[False]
    assert 0.04 < event < 0.06 and len(bisected) > len(grid)
