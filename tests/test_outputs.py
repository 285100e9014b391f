"""The output rule (:mod:`glassfrac.core.outputs`) for every command that writes.

For each writer: (1) a user's non-empty folder or existing file is refused with exit status 2 before any
work, the message names the path, and every file that was there is byte-identical afterwards; (2) a rerun
into the command's own folder works and removes the stale outputs of the earlier run; (3) ``--overwrite``
works, and deletes none of the user's files.
"""

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from glassfrac.cli import main
from glassfrac.core.errors import InputError
from glassfrac.core.outputs import MARKER, OutputFolder, check_file
from glassfrac.structure import read, write

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_CAMPAIGN = """
[campaign]
name = "{name}"
seed = 3

[[samples]]
kind = "monolayer"
rings = [4, 4]
mu2 = [0.3]
count = {count}

[relax]
method = "none"

[tests]
run = []

[output]
directory = "{directory}"
"""


def cli(*argv) -> tuple[int, dict]:
    """(exit status, the JSON object on stdout) of ``glassfrac ARGV --json``, run in this process."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main([str(a) for a in argv] + ["--json"])
    return status, json.loads(stdout.getvalue())


def snapshot(path: Path) -> dict:
    """Relative name → bytes of every file under ``path`` (or of the file ``path``); folders as None."""
    if path.is_file():
        return {".": path.read_bytes()}
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


def user_folder(parent: Path, name: str = "mine") -> Path:
    """A folder of the user's: notes, a hidden file, a subfolder, a file named like a partial write."""
    folder = parent / name
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / ".hidden").write_text("keep me\n")
    (folder / "sub" / "data.csv").write_text("1,2,3\n")
    (folder / ".draft.part").write_text("not debris\n")
    return folder


def assert_refused(path: Path, *argv) -> dict:
    """The command ``argv`` exits 2, names ``path`` in its error and leaves ``path`` (and its parent) as it was."""
    parent = path.parent
    before, around = snapshot(path), sorted(p.name for p in parent.iterdir())
    status, out = cli(*argv)
    assert status == 2, out
    assert str(path) in out["error"]
    assert snapshot(path) == before
    assert sorted(p.name for p in parent.iterdir()) == around  # nothing written beside it either
    return out


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def sample(work) -> Path:
    """An 80-atom 2D silica monolayer (4 x 4 rings)."""
    path = work / "sample.xyz"
    status, out = cli("generate", "--rings", 4, 4, "--mu2", 0.3, "--kind", "monolayer", "--seed", 1, "-o", path)
    assert status == 0, out
    return path


@pytest.fixture(scope="module")
def campaign(work) -> Path:
    """A two-sample campaign (generation only), run through the CLI."""
    config = work / "tiny.toml"
    config.write_text(TINY_CAMPAIGN.format(name="tiny", count=2, directory=work / "campaign"))
    status, out = cli("campaign", "run", config, "--workers", 0)
    assert (status, out["done"]) == (0, 2), out
    return work / "campaign"


# -- the rule itself ----------------------------------------------------------------------------

def test_folder_made_reused_and_stale_files_removed(tmp_path):
    first = OutputFolder(tmp_path / "out", "test")
    assert first.state == "new" and not (tmp_path / "out").exists()  # checking writes nothing
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        first.file(name).write_text(name)
    assert first.finish() == []
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert marker["runs"]["test"]["files"] == ["a.txt", "b.txt", "sub/c.txt"]
    assert marker["runs"]["test"]["complete"] is True
    (tmp_path / "out" / "user.txt").write_text("mine")  # added by the user later
    second = OutputFolder(tmp_path / "out", "test")
    assert second.state == "ours"
    second.file("a.txt").write_text("again")
    assert second.finish() == ["b.txt", "sub/c.txt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [MARKER, "a.txt", "sub", "user.txt"]
    assert (tmp_path / "out" / "user.txt").read_text() == "mine"
    with pytest.raises(InputError, match="user.txt"):  # the user's file in our folder is not replaced
        OutputFolder(tmp_path / "out", "test", names=("user.txt",))
    with pytest.raises(InputError, match="a.txt"):  # nor another command's file
        OutputFolder(tmp_path / "out", "other", names=("a.txt",))


def test_foreign_folder_refused_or_written_beside(tmp_path):
    folder = user_folder(tmp_path)
    before = snapshot(folder)
    with pytest.raises(InputError, match=str(folder)) as error:
        OutputFolder(folder, "test")
    assert "--overwrite" in str(error.value)
    assert snapshot(folder) == before
    out = OutputFolder(folder, "test", overwrite=True)
    out.file("result.txt").write_text("ours")
    out.file("notes.txt").write_text("replaced: the user said --overwrite")
    assert out.finish() == []
    again = OutputFolder(folder, "test")  # now marked: no --overwrite needed, the user's files stay
    again.file("other.txt").write_text("ours")
    assert again.finish() == ["notes.txt", "result.txt"]
    after = snapshot(folder)
    assert {k: after[k] for k in before if k != "notes.txt"} == {k: v for k, v in before.items() if k != "notes.txt"}


def test_empty_folder_adopted_and_killed_run_resumable(tmp_path):
    (tmp_path / "empty").mkdir()
    out = OutputFolder(tmp_path / "empty", "test")
    assert out.state == "empty"
    out.file("half.txt").write_text("written before a kill")  # no finish(): the run died
    rerun = OutputFolder(tmp_path / "empty", "test", names=("half.txt",))
    rerun.file("half.txt").write_text("complete")
    assert rerun.finish() == []


def test_files_and_folders_never_replace_each_other(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "dir").mkdir()
    for overwrite in (False, True):
        with pytest.raises(InputError, match="not a folder"):
            OutputFolder(tmp_path / "file.txt", "test", overwrite=overwrite)
        with pytest.raises(InputError, match="is a folder"):
            check_file(tmp_path / "dir", overwrite)
        with pytest.raises(InputError, match="is a file"):
            check_file(tmp_path / "file.txt" / "below.xyz", overwrite)
    with pytest.raises(InputError, match="file exists"):
        check_file(tmp_path / "file.txt")
    assert check_file(tmp_path / "file.txt", True) == tmp_path / "file.txt"
    assert (tmp_path / "file.txt").read_text() == "x" and (tmp_path / "dir").is_dir()


def test_unreadable_marker_lists_nothing(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / MARKER).write_text("{not json")
    (tmp_path / "out" / "data.txt").write_text("whose?")
    with pytest.raises(InputError, match="data.txt"):
        OutputFolder(tmp_path / "out", "test", names=("data.txt",))
    out = OutputFolder(tmp_path / "out", "test")
    out.file("new.txt").write_text("ours")
    assert out.finish() == [] and (tmp_path / "out" / "data.txt").read_text() == "whose?"


# -- single-file writers ------------------------------------------------------------------------

def test_generate_and_relax_files(work, sample):
    before = sample.read_bytes()
    assert_refused(sample, "generate", "--rings", 4, 4, "--mu2", 0.3, "--kind", "monolayer", "--seed", 2,
                   "-o", sample)
    folder = work / "folder.xyz"
    folder.mkdir()
    for flag in ((), ("--overwrite",)):  # a folder is never replaced by a file (was: exit 2 after the work)
        assert_refused(folder, "generate", "--rings", 4, 4, "--mu2", 0.3, "--kind", "monolayer", "--seed", 2,
                       "-o", folder, *flag)
    copy = work / "copy.xyz"
    shutil.copy(sample, copy)
    status, out = cli("generate", "--rings", 4, 4, "--mu2", 0.3, "--kind", "monolayer", "--seed", 2, "-o", copy,
                      "--overwrite")
    assert status == 0 and copy.read_bytes() != before
    relaxed = work / "relaxed.xyz"
    relaxed.write_text("my relaxed sample\n")
    assert_refused(relaxed, "relax", sample, "--potential", "yukawa2d", "--fmax", 1e-2, "-o", relaxed)
    status, out = cli("relax", sample, "--potential", "yukawa2d", "--fmax", 1e-2, "-o", relaxed, "--overwrite")
    assert status == 0 and relaxed.read_text().startswith("80\n")


def test_rings_render_and_image(work, sample):
    plot = work / "rings.png"
    plot.write_bytes(b"my figure")
    assert_refused(plot, "rings", sample, "--plot", plot)
    assert cli("rings", sample, "--plot", plot, "--overwrite")[0] == 0 and plot.read_bytes()[:4] == b"\x89PNG"
    image = work / "sample.tif"
    image.write_bytes(b"my image")
    assert_refused(image, "render", sample, "-o", image)
    assert cli("render", sample, "-o", image, "--overwrite")[0] == 0 and image.read_bytes() != b"my image"
    overlay = work / "atoms.overlay.png"
    overlay.write_bytes(b"my overlay")
    assert_refused(overlay, "image", image, "-o", work / "atoms.xyz")
    assert not (work / "atoms.xyz").exists()
    status, out = cli("image", image, "-o", work / "atoms.xyz", "--overwrite")
    assert status == 0 and overlay.read_bytes()[:4] == b"\x89PNG"


def test_probe_map_and_figure(work):
    big = work / "big.xyz"
    assert cli("generate", "--rings", 8, 8, "--mu2", 0.3, "--kind", "monolayer", "--seed", 1, "-o", big)[0] == 0
    figure = work / "map.png"
    figure.write_bytes(b"my heatmap")
    assert_refused(figure, "probe", big, "--grid", 2, "--r-free", 3, "-o", work / "map.npz")
    assert not (work / "map.npz").exists()
    status, out = cli("probe", big, "--grid", 2, "--r-free", 3, "-o", work / "map.npz", "--overwrite")
    assert status == 0 and (work / "map.npz").is_file() and figure.read_bytes()[:4] == b"\x89PNG"


def test_softness_model_files(work, sample):
    data = work / "labelled"
    data.mkdir()
    structure = read(sample)
    for k in range(3):
        labels = np.zeros(structure.n_atoms, np.int8)
        labels[np.random.default_rng(k).choice(structure.n_atoms, 6, replace=False)] = 1
        structure.set_array("first_break", labels)
        write(structure, data / f"s{k}.xyz")
    model = work / "svm.safetensors"
    model.write_bytes(b"my model")
    train = ("softness", "train", data, "--folds", 2, "--no-evaluate", "--descriptor", "fc22-unloaded", "--C", 1,
             "-o", model)
    assert_refused(model, *train)
    assert cli(*train, "--overwrite")[0] == 0 and model.read_bytes() != b"my model"
    predicted = work / "predicted.xyz"
    predicted.write_text("mine\n")
    assert_refused(predicted, "softness", "predict", model, sample, "-o", predicted)
    assert cli("softness", "predict", model, sample, "-o", predicted, "--overwrite")[0] == 0
    assert "softness" in predicted.read_text().splitlines()[1]


@pytest.mark.parametrize("name, argv", [
    ("model.safetensors", ("cnn", "train", "{missing}", "--target", "mu2", "-o", "{file}")),
    ("model.safetensors", ("listi", "train", "{missing}", "-o", "{file}")),
    ("crack.xyz", ("cnn", "predict", "{missing}", "{missing}", "-o", "{file}")),
    ("scan.png", ("cnn", "scan", "{missing}", "{missing}", "--figure", "{file}")),
    ("map.npz", ("listi", "map", "{missing}", "{missing}", "-o", "{file}")),
    ("map.png", ("listi", "map", "{missing}", "{missing}", "-o", "{other}", "--figure", "{file}")),
    ("analysed.xyz", ("oxide", "analyse", "{missing}", "--out", "{file}")),
])
def test_model_and_map_files_refused_before_reading_inputs(tmp_path, name, argv):
    """The output is checked first: the error is about it although the inputs do not exist; with
    --overwrite the command goes on to the inputs (and fails on them)."""
    existing = tmp_path / name
    existing.write_bytes(b"the user's")
    names = {"missing": tmp_path / "missing.xyz", "file": existing, "other": tmp_path / "other.npz"}
    args = [str(a).format(**names) for a in argv]
    assert_refused(existing, *args)
    status, out = cli(*args, "--overwrite")
    assert status == 2 and str(existing) not in out["error"] and existing.read_bytes() == b"the user's"


# -- folder writers -----------------------------------------------------------------------------

def test_load_folder(work, sample):
    mine = user_folder(work, "load-mine")
    assert_refused(mine, "load", "tension", sample, "--potential", "yukawa2d", "-o", mine)
    run = work / "tension"
    status, first = cli("load", "tension", sample, "--potential", "yukawa2d", "--step", 0.05, "--max-strain", 0.3,
                        "--precision", 0.01, "-o", run)
    assert status == 0 and first["n_events"] >= 2, first
    events = sorted(p.name for p in run.glob("event_*.xyz"))
    assert len(events) == first["n_events"]
    (run / "my_notes.txt").write_text("added by the user")
    status, again = cli("load", "tension", sample, "--potential", "yukawa2d", "--step", 0.05, "--max-strain", 0.08,
                        "--precision", 0.01, "-o", run)
    assert status == 0 and again["n_events"] < first["n_events"]
    kept = sorted(p.name for p in run.glob("event_*.xyz"))
    assert kept == [f"event_{k + 1:03d}.xyz" for k in range(again["n_events"])]
    assert again["removed_stale"] == sorted(set(events) - set(kept))
    assert len(json.loads((run / "labels.json").read_text())["events"]) == again["n_events"]
    assert (run / "my_notes.txt").read_text() == "added by the user"
    assert_refused(run / "curve.csv", "load", "shear", sample, "--potential", "yukawa2d", "-o", run)  # not its files
    before = snapshot(mine)
    status, out = cli("load", "tension", sample, "--potential", "yukawa2d", "--step", 0.05, "--max-strain", 0.05,
                      "-o", mine, "--overwrite")
    after = snapshot(mine)
    assert status == 0 and {k: after[k] for k in before} == before and "curve.csv" in after


def test_explain_and_oxide_folders_refused(work, tmp_path):
    mine = user_folder(tmp_path)
    for argv in (("explain", "model.safetensors", "s.xyz", "-o", mine),
                 ("oxide", "quench", "--out", mine),
                 ("oxide", "tension", "s.xyz", "--out", mine),
                 ("oxide", "softness", "train", "s.xyz", "--out", mine),
                 ("oxide", "softness", "tension", "m.safetensors", "t_frames.xyz", "--out", mine),
                 ("oxide", "samples", "--config", CONFIGS / "alumina-softness.toml", "--out", mine, "--stop", 1)):
        assert_refused(mine, *argv)


# -- campaigns ----------------------------------------------------------------------------------

def test_campaign_run_folder(work, campaign):
    mine = user_folder(work, "campaign-mine")
    config = work / "tiny.toml"
    assert_refused(mine, "campaign", "run", config, "--workers", 0, "--output", mine)
    assert_refused(mine, "demo", "-o", mine, "--workers", 0)
    status, out = cli("campaign", "run", config, "--workers", 0)  # our own folder: resumes, nothing to do
    assert (status, out["done"], out["ran"]) == (0, 2, 0)
    (mine / "samples" / "s000042").mkdir(parents=True)  # a user's folder under a sample id of ours
    (mine / "samples" / "mine").mkdir()
    before = snapshot(mine)
    status, out = cli("campaign", "run", config, "--workers", 0, "--output", mine, "--overwrite")
    after = snapshot(mine)
    assert (status, out["done"]) == (0, 2) and (mine / "campaign.json").is_file()
    assert {k: after[k] for k in before} == before  # cleaning took only debris of ours


def test_campaign_status_and_report_make_nothing(work, campaign, tmp_path):
    mine = user_folder(tmp_path)
    assert_refused(mine, "campaign", "status", mine)
    assert_refused(mine, "report", mine)
    lost = tmp_path / "lost-database"
    lost.mkdir()
    shutil.copy(campaign / "campaign.json", lost / "campaign.json")  # a campaign folder without its database
    assert_refused(lost / "campaign.db", "campaign", "status", lost)
    assert not (lost / "campaign.db").exists()
    for _ in range(2):
        status, out = cli("report", campaign)
        assert status == 0 and Path(out["report"]).is_file()


def test_dataset_export(work, campaign):
    npz = work / "dataset.npz"
    npz.write_bytes(b"my dataset")
    assert_refused(npz, "dataset", "export", campaign, "-o", npz)
    assert cli("dataset", "export", campaign, "-o", npz, "--overwrite")[0] == 0
    assert np.load(npz)["sample_id"].tolist() == ["s000000", "s000001"]
    for flag in ((), ("--overwrite",)):  # into the campaign itself (was: the campaign deleted, exit 0)
        assert_refused(campaign, "dataset", "export", campaign, "-o", campaign, *flag)
    mine = user_folder(work, "export-mine")
    assert_refused(mine, "dataset", "export", campaign, "-o", mine)
    notes = work / "notes.txt"
    notes.write_text("mine")
    assert_refused(notes, "dataset", "export", campaign, "-o", notes)  # was: a hidden backup and a new folder
    exported = work / "exported"
    assert cli("dataset", "export", campaign, "-o", exported)[0] == 0
    (exported / "README").write_text("the user's")
    smaller = work / "smaller.toml"
    smaller.write_text(TINY_CAMPAIGN.format(name="small", count=1, directory=work / "small"))
    assert cli("campaign", "run", smaller, "--workers", 0)[0] == 0
    status, out = cli("dataset", "export", work / "small", "-o", exported)  # our folder: stale sample file goes
    assert status == 0
    assert sorted(p.name for p in exported.iterdir()) == [MARKER, "README", "manifest.json", "s000000.npz"]
    assert [s["file"] for s in json.loads((exported / "manifest.json").read_text())["samples"]] == ["s000000.npz"]
    before = snapshot(mine)
    assert cli("dataset", "export", campaign, "-o", mine, "--overwrite")[0] == 0
    after = snapshot(mine)
    assert {k: after[k] for k in before} == before and "manifest.json" in after
