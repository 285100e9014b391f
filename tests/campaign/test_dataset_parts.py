"""Dataset folders that grow by sample index: parts exported from campaigns, merged, and refused when
they overlap or come from another campaign definition (:mod:`glassfrac.campaign.datasets`)."""

import json

import numpy as np
import pytest

from glassfrac.campaign.config import load_config
from glassfrac.campaign.datasets import export_part, merge_parts, part_name, read_part
from glassfrac.campaign.export import concatenate, split
from glassfrac.campaign.runner import run_campaign
from glassfrac.campaign.store import CampaignStore
from glassfrac.core.errors import InputError
from glassfrac.learn.exports import read_export


def _campaign(write_config, tmp_path, name, count, extra=""):
    path = write_config(name=name, count=count, mu2=(0.3,), directory=tmp_path / name, extra=extra)
    run_campaign(load_config(path), workers=0, show_progress=False)
    return CampaignStore.open(tmp_path / name)


def test_parts_grow_by_index_merge_and_refuse_overlaps_and_other_definitions(write_config, tmp_path):
    first = _campaign(write_config, tmp_path, "grow", 3)
    larger = _campaign(write_config, tmp_path, "grow-more", 5)  # same definition, larger count
    data = tmp_path / "datasets" / "cheap"
    assert export_part(first, data, 0, 3)["samples"] == 3
    info = export_part(larger, data, 3, 10)  # stop is cut to the campaign's 5 samples
    assert (info["start"], info["stop"], info["samples"]) == (3, 5, 2)
    merged = merge_parts(data)
    assert merged["samples"] == 5 and merged["indices"] == [0, 5]
    samples = read_export(data / "dataset.npz", ("potential_energy",))
    assert [s["sample_id"] for s in samples] == [f"s{k:06d}" for k in range(5)]
    card = json.loads((data / "card.json").read_text())
    assert card["samples"] == 5 and card["campaigns"] == ["grow", "grow-more"] and card["missing"] == []
    # a sample exported from either campaign is the same sample
    again = export_part(larger, tmp_path / "check", 0, 3)
    _, a = read_part(again["part"])
    _, b = read_part(data / "parts" / part_name(0, 3))
    np.testing.assert_allclose(a["positions"], b["positions"])

    with pytest.raises(InputError, match="exists"):
        export_part(first, data, 0, 3)
    export_part(larger, data, 2, 4)  # overlaps both parts
    with pytest.raises(InputError, match="parts overlap"):
        merge_parts(data)
    (data / "parts" / part_name(2, 4)).unlink()

    other = _campaign(write_config, tmp_path, "other", 7, extra="")
    other_relax = tmp_path / "other-relax"
    path = write_config(name="relaxed-differently", count=7, mu2=(0.3,), directory=other_relax)
    path.write_text(path.read_text().replace("fmax = 1e-4", "fmax = 1e-3"))
    run_campaign(load_config(path), workers=0, show_progress=False)
    export_part(CampaignStore.open(other_relax), data, 5, 7)
    with pytest.raises(InputError, match="another campaign definition.*relax"):
        merge_parts(data)
    (data / "parts" / part_name(5, 7)).unlink()
    export_part(other, data, 5, 7)
    assert merge_parts(data)["samples"] == 7


def test_a_part_with_unfinished_samples_or_a_wrong_name_is_refused(write_config, tmp_path):
    store = _campaign(write_config, tmp_path, "small", 2)
    with pytest.raises(InputError, match="none from index 2"):
        export_part(store, tmp_path / "d", 2, 4)
    info = export_part(store, tmp_path / "d", 0, 2)
    renamed = tmp_path / "d" / "parts" / part_name(0, 5)
    (tmp_path / "d" / "parts" / part_name(0, 2)).rename(renamed)
    with pytest.raises(InputError, match="file name says"):
        merge_parts(tmp_path / "d")
    assert info["samples"] == 2


def test_samples_exported_before_the_window_table_concatenate_with_probed_ones():
    def sample(n, windows=None):
        out = {"sample_id": np.array([f"s{n}"]), "positions": np.zeros((n, 3)), "first_break": np.ones(n, np.int8),
               "event_test": np.array(["tension"]), "event_strain": np.array([n / 10]),
               "curve_test": np.array(["tension"] * 2), "curve_strain": np.array([0.0, 0.1])}
        if windows is not None:
            out["window_threshold"], out["window_centre"] = np.arange(windows, dtype=float), np.ones((windows, 2))
        return out

    old, probed = sample(2), sample(3, windows=4)  # a part written before maps were exported, and a new one
    joined = concatenate([old, probed])
    assert joined["window_sample"].tolist() == [1] * 4 and joined["window_centre"].shape == (4, 2)
    back = split(joined)
    assert back[0]["window_threshold"].shape == (0,) and back[0]["window_centre"].shape == (0, 2)
    assert np.array_equal(back[1]["window_threshold"], np.arange(4.0))
    assert back[1]["event_strain"].tolist() == [0.3] and back[0]["first_break"].tolist() == [1, 1]
