"""Metrics of per-atom predictors: confusion counts and rates, the flagged-fraction curve (per
sample ranking), published reference next to the first-break label, and the figure."""

import numpy as np
import pytest

from glassfrac.learn.metrics import (
    classification_metrics,
    confusion,
    flagged_curve,
    plot_evaluation,
    sensitivity_at_specificity,
)
from glassfrac.learn.svm import Evaluation


def test_confusion_and_rates():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    s = np.array([2.0, 0.5, -1.0, 0.3, -0.2, -0.5, -1.0, -2.0, -3.0, -4.0])
    assert confusion(y, s > 0) == {"tn": 6, "fp": 1, "fn": 1, "tp": 2}
    m = classification_metrics(y, s)
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == pytest.approx(6 / 7)
    assert m["accuracy"] == pytest.approx(0.8) and m["balanced_accuracy"] == pytest.approx((2 / 3 + 6 / 7) / 2)
    # AUC = fraction of (positive, negative) pairs ranked correctly, ties half: 7 + 7 + 3 + 0.5 of 21
    assert m["roc_auc"] == pytest.approx(17.5 / 21)
    assert np.isnan(classification_metrics(np.zeros(3), np.ones(3))["sensitivity"])


def test_roc_read_at_a_specificity():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    s = np.array([2.0, 0.5, -1.0, 0.3, -0.2, -0.5, -1.0, -2.0, -3.0, -4.0])
    # 6 of the 7 negatives at or below -0.2: flag scores > -0.2 (two positives and the 0.3 negative)
    assert sensitivity_at_specificity(y, s, 6 / 7) == pytest.approx(
        {"specificity": 6 / 7, "sensitivity": 2 / 3, "flagged_fraction": 0.3, "threshold": -0.2})
    strict = sensitivity_at_specificity(y, s, 1.0)
    assert strict["specificity"] == 1.0 and strict["sensitivity"] == pytest.approx(2 / 3)
    loose = sensitivity_at_specificity(y, s, 0.5)  # threshold -1: at least half the negatives below
    assert loose["specificity"] == pytest.approx(4 / 7) and loose["threshold"] == -1.0
    with pytest.raises(ValueError, match="both classes"):
        sensitivity_at_specificity(np.zeros(3), s[:3], 0.9)


def test_flagged_curve_ranks_within_each_sample():
    # two samples of 10 atoms, one event each, ranked 1st and 3rd in their samples
    y = np.zeros(20, bool)
    y[[4, 17]] = True
    scores = 9.0 - np.arange(20) % 10  # atom k of a sample has rank k + 1 in it
    scores[4], scores[17] = 100.0, 7.5  # now 1st and 3rd
    scores[10:] += 1000.0  # a sample-wide offset must not matter
    c = flagged_curve(y, scores, groups=np.repeat([0, 1], 10), n_points=11)
    np.testing.assert_allclose(c["steps"], [0.1, 0.3])
    np.testing.assert_allclose(c["caught"], [0, 0.5, 0.5, 1, 1, 1, 1, 1, 1, 1, 1])
    assert c["flagged_to_catch"] == {"50%": 0.1, "90%": 0.3, "100%": 0.3}
    assert c["caught_at"] == {"1%": 0.0, "2%": 0.0, "5%": 0.0, "10%": 0.5, "20%": 0.5}
    assert c["area"] == pytest.approx(np.mean([1 - 0.1 + 0.05, 1 - 0.3 + 0.05]))
    pooled = flagged_curve(y, scores, n_points=11)  # one group: the offset sample dominates
    np.testing.assert_allclose(pooled["steps"], [3 / 20, 11 / 20])


def test_random_ranking_area_is_one_half():
    rng = np.random.default_rng(0)
    y = np.zeros(400, bool)
    y[::40] = True
    areas = [flagged_curve(y, rng.permutation(400).astype(float), np.repeat(np.arange(4), 100))["area"]
             for _ in range(2000)]
    assert np.mean(areas) == pytest.approx(0.5, abs=0.01)


def test_evaluation_reports_fc22_next_to_first_break_and_draws(tmp_path):
    rng = np.random.default_rng(1)
    y = np.zeros(600, np.int8)
    y[[5, 250, 480]] = 1
    scores = rng.normal(size=600) + 4 * y
    groups = np.repeat([0, 1, 2], 200)
    ev = Evaluation(y, scores, groups, ["a", "b", "c"], "first_break", folds=[])
    s = ev.summary()
    assert s["published"]["sensitivity"] == 0.994 and s["published"]["specificity"] == 0.96
    assert s["at_published_specificity"]["specificity"] == pytest.approx(0.96, abs=0.002)
    assert set(s["flagged_curve"]["caught_at"]) == {"1%", "2%", "5%", "10%", "20%"}
    assert [p["n_positive"] for p in s["per_sample"]] == [1, 1, 1]
    ev.plot(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    plot_evaluation(y, scores, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 10_000
