"""Softness from p_hop labels (DU21): labels on p_hop series with known hops, snapshots of a
synthetic trajectory, a small end-to-end training whose answer is known by construction,
softness along a stretch, config and CLI."""

import json

import numpy as np
import pytest

from glassfrac.labels.phop import frame_labels, snapshot_labels
from glassfrac.learn import oxide_softness as so
from glassfrac.structure import Box, Structure

SMALL = so.SoftnessSettings(trajectory_ps=8.0, frame_every_ps=0.1, t_r_ps=2.0, horizon_ps=2.0, n_splits=4,
                            labels="snapshots", inherent=False)
FRAMES = so.SoftnessSettings(trajectory_ps=8.0, frame_every_ps=0.1, t_r_ps=2.0, label_every_ps=0.5, n_splits=4,
                             inherent=False)  # the default label mode (DU21), on the instantaneous frames


def test_snapshot_labels_follow_the_thresholds():
    p = np.full((30, 4), 0.01)
    p[12:18, 0] = 0.5  # atom 0 hops: p_hop above 0.2 from frame 12 to 17
    p[:, 2] = 0.1  # atom 2: between the thresholds all along
    p[25, 3] = 0.06  # atom 3: one frame above 0.05, never above 0.2
    labels = snapshot_labels(p, origins=[0, 10, 15, 20], horizon=5, high=0.2, low=0.05)
    # atom 0 crosses 0.2 at frame 12, in [10, 15) only; at 15 it is still above (same hop, not counted twice)
    np.testing.assert_array_equal(labels[:, 0], [-1, 1, -1, -1])
    p[10:12, 0] = 0.5  # crossing exactly at the snapshot frame 10 counts there
    assert snapshot_labels(p, [0, 10], 5)[:, 0].tolist() == [-1, 1]
    p[:18, 0] = 0.5  # above from frame 0: no crossing seen, the hop may have started earlier
    assert snapshot_labels(p, [0, 10], 5)[:, 0].tolist() == [-1, -1]
    np.testing.assert_array_equal(labels[:, 1], [0, 0, 0, 0])  # quiet all along
    np.testing.assert_array_equal(labels[:, 2], [-1] * 4)
    np.testing.assert_array_equal(labels[:, 3], [-1] * 4)  # not quiet over the long window
    rng = np.random.default_rng(0)
    q = rng.exponential(0.05, (40, 200))
    lab = snapshot_labels(q, [0, 20], 20, 0.2, 0.05)
    assert np.all(q.max(0)[(lab == 0).any(0)] < 0.05)
    for k, t0 in enumerate((0, 20)):
        hop = lab[k] == 1
        assert np.all(q[t0:t0 + 20, hop].max(0) > 0.2)
        crossing = (q[1:] > 0.2) & (q[:-1] <= 0.2)  # at frames 1 ...
        assert np.all(crossing[max(t0 - 1, 0):t0 + 19, hop].any(0) == 1)
        assert not crossing[max(t0 - 1, 0):t0 + 19, (lab[k] != 1)].any()
    with pytest.raises(ValueError, match="outside"):
        snapshot_labels(q, [40], 5)


def test_frame_labels_follow_the_thresholds():
    p = np.full((30, 4), 0.01)
    p[12:18, 0] = 0.5  # atom 0 hops: p_hop above 0.2 at frames 12 ... 17
    p[:, 2] = 0.1  # between the thresholds all along
    p[25, 3] = 0.06  # once above 0.05, never above 0.2
    labels = frame_labels(p, [0, 10, 12, 15, 17, 18, 29], high=0.2, low=0.05)
    assert labels.dtype == np.int8 and labels.shape == (7, 4)
    np.testing.assert_array_equal(labels[:, 0], [-1, -1, 1, 1, 1, -1, -1])  # rearranging while p_hop > 0.2
    np.testing.assert_array_equal(labels[:, 1], [0] * 7)  # quiet over the whole trajectory
    np.testing.assert_array_equal(labels[:, 2:], -1)
    q = np.random.default_rng(0).exponential(0.05, (40, 200))
    lab = frame_labels(q, np.arange(0, 40, 3))
    np.testing.assert_array_equal(lab == 1, q[::3] > 0.2)
    np.testing.assert_array_equal(lab == 0, np.broadcast_to(q.max(0) < 0.05, lab.shape))
    with pytest.raises(ValueError, match="outside"):
        frame_labels(q, [40])
    with pytest.raises(ValueError, match="labels"):
        so.SoftnessSettings(labels="hops")


def test_balance_keeps_all_positives_and_as_many_negatives():
    labels = np.array([1, 1, 0, 0, 0, 0, 0, -1, 1, 0], dtype=np.int8)
    centre = np.array([True] * 8 + [False] * 2)
    out = so.balance_labels(labels, centre, np.random.default_rng(1))
    assert out[8] == -1 and out[9] == -1  # not centre atoms
    assert (out == 1).sum() == 2 and (out == 0).sum() == 2 and out[7] == -1
    assert np.all(labels[out == 0] == 0)


def _defective_rock_salt(seed, n=3, a=1.9, vacancies=4):
    """Al/O rock salt with O vacancies: the Al next to a vacancy (5 O instead of 6) are the
    'soft' atoms of the synthetic trajectories."""
    grid = np.array([[i, j, k] for i in range(2 * n) for j in range(2 * n) for k in range(2 * n)])
    species = np.where(grid.sum(1) % 2 == 0, "Al", "O")
    o = np.flatnonzero(species == "O")
    keep = np.setdiff1d(np.arange(len(grid)), np.random.default_rng(seed).choice(o, vacancies, replace=False))
    s = Structure(grid[keep] * a, species[keep], Box([2 * n * a] * 3))
    from glassfrac.analysis.oxide import coordination

    cn = np.full(s.n_atoms, 6)
    cn[s.species == "Al"] = coordination(s, cutoff=1.1 * a)
    return s, (s.species == "Al") & (cn < 6)


def _synthetic_trajectory(seed, settings=SMALL):
    """Frames ``settings.frame_every_ps`` apart: Gaussian vibration (0.04 Å per axis) of every
    atom; each soft Al jumps 0.8 Å along x at a random time (p_hop ≈ 0.64 Å²)."""
    s, soft = _defective_rock_salt(seed)
    rng = np.random.default_rng(100 + seed)
    n_frames = int(round(settings.trajectory_ps / settings.frame_every_ps)) + 1
    h = int(round(settings.t_r_ps / (2 * settings.frame_every_ps)))
    x = s.positions + rng.normal(0, 0.04, (n_frames, s.n_atoms, 3))
    hop_frame = np.full(s.n_atoms, -1)
    hop_frame[soft] = rng.integers(2 * h, n_frames - h, soft.sum())
    for i in np.flatnonzero(soft):
        x[hop_frame[i]:, i, 0] += 0.8
    return so.Trajectory(x, settings.frame_every_ps, s), soft, hop_frame


def test_hop_dataset_labels_the_hopping_atoms():
    traj, soft, hop_frame = _synthetic_trajectory(0)
    dataset, counts = so.hop_dataset({"s0": traj}, SMALL)
    assert dataset.group_names == ["s0"] and all(n.startswith("s0@") for n in dataset.names)
    c = counts[0]
    n_al = (traj.structure.species == "Al").sum()
    assert c["rearranging_atoms"] == soft.sum() and c["quiet_atoms"] == n_al - soft.sum()
    assert c["positive"] == soft.sum() == c["negative"]  # every hop lands in one snapshot; balanced
    for snap in dataset.structures:
        lab = snap.arrays[so.LABEL]
        assert np.all(soft[lab == 1]) and not np.any(soft[lab == 0])
        assert np.all(lab[snap.species == "O"] == -1)
        # each positive hops within the horizon after the snapshot (p_hop rises up to t_R/2 early)
        t0 = int(round(snap.info["time_ps"] / SMALL.frame_every_ps))
        horizon, h = 20, 10  # frames
        assert np.all((hop_frame[lab == 1] > t0) & (hop_frame[lab == 1] <= t0 + horizon + h))


def test_frame_dataset_labels_hops_at_their_time_and_keeps_groups():
    trajectories, hops = {}, {}
    for k in range(3):
        trajectories[f"s{k}"], soft, hops[f"s{k}"] = _synthetic_trajectory(k, FRAMES)
    dataset, counts = so.hop_dataset(trajectories, FRAMES, groups={"s0": "melt A", "s1": "melt A"})
    assert dataset.group_names == ["melt A", "s2"]
    h = 10  # t_R / 2 in frames: p_hop > 0.2 only within h frames of the jump
    for snap, name in zip(dataset.structures, dataset.names, strict=True):
        lab = snap.arrays[so.LABEL]
        t = int(round(snap.info["time_ps"] / FRAMES.frame_every_ps))
        hop = hops[name.split("@")[0]]
        assert (lab == 1).sum() == (lab == 0).sum() > 0  # balanced within the label time
        assert np.all(np.abs(t - hop[lab == 1]) <= h) and np.all(hop[lab == 0] < 0)
        assert np.all(lab[snap.species == "O"] == -1)
        assert t % 5 == 0  # label times 0.5 ps apart
    for c, name in zip(counts, trajectories, strict=True):
        soft = hops[name] >= 0
        assert c["positive_atoms"] == c["rearranging_atoms"] == soft.sum()
        assert c["positive"] > c["positive_atoms"]  # a hop is labelled at every label time it spans
        assert c["group"] == ("melt A" if name != "s2" else "s2")
    y, groups = dataset.targets(FRAMES.species)
    assert y.sum() == len(y) - y.sum() == sum(c["positive"] for c in counts)


def test_inherent_structure_is_a_minimum(needs_lammps):
    from glassfrac.generate.quench import random_alumina
    from glassfrac.mechanics.md import inherent_structure

    s = random_alumina(20, 3.0, seed=3, min_distance=1.7)
    s.set_array("hop", np.arange(s.n_atoms) % 3 - 1)
    s.info["time_ps"] = 1.5
    m = inherent_structure(s)
    assert m.info["inherent_fmax_eV_A"] < 0.05 and m.info["time_ps"] == 1.5
    np.testing.assert_array_equal(m.species, s.species)
    np.testing.assert_array_equal(m.arrays["hop"], s.arrays["hop"])
    np.testing.assert_allclose(m.box.cell, s.box.cell)
    again = inherent_structure(m)  # a minimum stays put and its energy is lower than the start's
    assert np.abs(again.positions - m.positions).max() < 0.05
    assert again.info["inherent_pe_eV"] == pytest.approx(m.info["inherent_pe_eV"], abs=1e-3)
    from glassfrac.mechanics.md import LammpsMD

    with LammpsMD(s) as md:
        md.command("run 0")
        start = float(md.lmp.get_thermo("pe"))
    assert m.info["inherent_pe_eV"] < start - 1.0


def test_hop_dataset_on_inherent_structures(needs_lammps):
    from dataclasses import replace

    from glassfrac.generate.quench import random_alumina
    from glassfrac.mechanics.md import inherent_structure

    s = inherent_structure(random_alumina(20, 3.0, seed=4, min_distance=1.7))
    rng = np.random.default_rng(5)
    x = s.positions + rng.normal(0, 0.03, (81, s.n_atoms, 3))
    al = np.flatnonzero(s.species == "Al")[:2]
    x[40:, al, 0] += 0.8  # two Al jump at frame 40
    settings = replace(FRAMES, label_every_ps=1.0, inherent=True)
    dataset, counts = so.hop_dataset({"a": so.Trajectory(x, 0.1, s)}, settings)
    assert counts[0]["positive_atoms"] == 2 and counts[0]["positive"] == counts[0]["negative"] > 0
    for snap in dataset.structures:
        assert snap.info["inherent_fmax_eV_A"] < 0.05
        # minimised: the thermal noise is gone, the atoms sit at a minimum near the frame
        frame = int(round(snap.info["time_ps"] / 0.1))
        shift = np.linalg.norm(snap.box.minimum_image(snap.positions - x[frame]), axis=1)
        assert np.median(shift) < 0.5


def test_trajectory_file_round_trip(tmp_path):
    traj, _, _ = _synthetic_trajectory(1)
    traj.save(tmp_path / "t.npz")
    back = so.Trajectory.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.positions, traj.positions)
    np.testing.assert_array_equal(back.structure.species, traj.structure.species)
    assert back.dt_ps == traj.dt_ps and np.allclose(back.structure.box.cell, traj.structure.box.cell)
    (tmp_path / "bad.npz").write_bytes(b"nope")
    from glassfrac.core.errors import InputError

    with pytest.raises(InputError, match="bad.npz"):
        so.Trajectory.load(tmp_path / "bad.npz")


@pytest.fixture(scope="module")
def trained():
    trajectories = {f"s{k}": _synthetic_trajectory(k, FRAMES)[0] for k in range(4)}
    dataset, _ = so.hop_dataset(trajectories, FRAMES)
    return so.train_softness(dataset, FRAMES), dataset


def test_end_to_end_training_beats_chance(trained):
    (model, evaluation, report), dataset = trained
    assert report["n_features"] == 126 and report["n_samples"] == 4
    assert report["n_positive"] == report["n_negative"] > 20
    assert len(report["folds"]) == 4
    for fold in report["folds"]:  # the snapshots of one sample are never split
        assert not set(fold["test_samples"]) & set(fold["train_samples"])
    # the soft atoms (5-fold Al) are told apart on samples the model never saw
    assert report["test_accuracy"] > 0.9 and report["train_accuracy"] > 0.9
    assert report["published"]["test_accuracy"] == 0.83
    assert report["labels"]["labels"] == "frames" and report["labels"]["inherent"] is False


def test_radial_only_model_uses_the_radial_columns(trained):
    (model, _, report), dataset = trained
    features = so.softness_features(dataset, FRAMES.species)
    s = dataset.structures[0]
    radial = so.du21_softness_descriptor(radial_only=True).transform_one(s)
    full = so.du21_softness_descriptor().transform_one(s)
    np.testing.assert_allclose(full[:, :96], radial)
    _, _, from_features = so.train_softness(dataset, FRAMES, radial_only=True, features=features)
    _, _, direct = so.train_softness(dataset, FRAMES, radial_only=True)
    assert from_features["n_features"] == 96
    assert from_features["test_accuracy"] == direct["test_accuracy"] > 0.8
    # the model's softness is its decision on the full features, over ‖w‖
    np.testing.assert_allclose(model.softness(s)[dataset.masks(FRAMES.species)[0]],
                               model.softness_from_features(features[:dataset.masks(FRAMES.species)[0].sum()]))


def test_softness_curve_along_a_stretch(trained):
    (model, _, _), _ = trained
    s, soft = _defective_rock_salt(7)
    frames = [s.deformed(np.diag([1 + e, 1, 1])) for e in (0.0, 0.02, 0.05)]
    curve = so.softness_curve(model, frames, FRAMES)
    assert curve["settings"]["inherent"] is False
    np.testing.assert_allclose(curve["strain"], [0.0, 0.02, 0.05], atol=1e-12)
    al = s.species == "Al"
    assert curve["softness"].shape == (3, s.n_atoms) and np.isnan(curve["softness"][:, ~al]).all()
    assert curve["mean_softness"][0] == pytest.approx(np.nanmean(model.softness(s)))
    assert np.all(curve["n_selected"] == round(0.1 * al.sum()))
    assert np.all((curve["largest_cluster"] >= 1) & (curve["largest_cluster"] <= curve["n_selected"]))
    # the soft atoms are the softest at zero strain
    s0 = curve["softness"][0]
    assert s0[soft].mean() > s0[al & ~soft].mean()


def test_config_softness_table(tmp_path):
    from glassfrac.campaign.oxide_config import load_config
    from glassfrac.core.errors import InputError

    path = tmp_path / "c.toml"
    path.write_text("[softness]\ntrajectory_ps = 20.0\nspecies = ['Al', 'O']\n")
    config = load_config(path)
    assert config.softness.trajectory_ps == 20.0 and config.softness.species == ("Al", "O")
    assert config.to_dict()["softness"]["high_A2"] == 0.2
    path.write_text("[softness]\nhorizon = 2.0\n")
    with pytest.raises(InputError, match="horizon"):
        load_config(path)
    path.write_text("[softness]\nlow_A2 = 0.3\n")
    with pytest.raises(InputError, match="low_A2"):
        load_config(path)


def test_cli_train_and_tension(trained, tmp_path, capsys):
    from glassfrac.cli import main
    from glassfrac.cli.oxide import _write_frames

    config = tmp_path / "c.toml"
    config.write_text("[softness]\ntrajectory_ps = 8.0\nt_r_ps = 2.0\nlabel_every_ps = 0.5\nn_splits = 4\n"
                      "inherent = false\n")
    names = ["a_s0", "a_s1", "b_s2", "b_s3"]
    for k, name in enumerate(names):
        _synthetic_trajectory(k, FRAMES)[0].save(tmp_path / f"traj_{name}.npz")
    assert main(["oxide", "softness", "train", *[str(tmp_path / f"traj_{n}.npz") for n in names],
                 "--group", "^[ab]", "--config", str(config), "--out", str(tmp_path / "out"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_samples"] == 2 and result["test_accuracy"] > 0.9  # two groups: a_*, b_*
    assert [c["group"] for c in result["samples"]] == ["a", "a", "b", "b"]
    assert result["radial_only"]["n_features"] == 96
    model = tmp_path / "out" / "softness.safetensors"
    assert model.is_file() and (tmp_path / "out" / "softness_train.json").is_file()

    s, _ = _defective_rock_salt(7)
    _write_frames([s.deformed(np.diag([1 + e, 1, 1])) for e in (0.0, 0.03)], tmp_path / "run_frames.xyz")
    assert main(["oxide", "softness", "tension", str(model), str(tmp_path / "run_frames.xyz"),
                 "--out", str(tmp_path / "soft"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_frames"] == 2 and result["strain"] == pytest.approx([0.0, 0.03])
    assert result["switching"]["UC"][0] == 1.0
    for suffix in (".png", ".npz", ".json"):
        assert (tmp_path / "soft" / f"run_softness{suffix}").is_file()
