"""Metrics of the predictors: regression figures, and per-atom binary predictors for rare positives.

- :func:`regression_metrics`: R², MAE and RMSE (scikit-learn).

- :func:`classification_metrics`: confusion matrix (tn, fp, fn, tp), sensitivity (true
  positive rate), specificity (true negative rate), accuracy, balanced accuracy and ROC AUC
  of scores thresholded at ``threshold`` (0 for an SVM decision value or softness); counts and
  AUC from scikit-learn.
- :func:`flagged_curve`: the fraction of true events caught against the fraction of atoms
  flagged, flagging the highest-scoring atoms of each sample (``groups``) first — "how much of
  a sample must be inspected to find its failure". A random ranking gives the diagonal; the
  curve's area is 0.5 for it and 1 for a perfect ranking. Ties are broken by atom order.
- :func:`sensitivity_at_specificity`: the ROC read at a given specificity (the threshold is
  the matching quantile of the negatives' scores), to compare with a published operating point.
  (scikit-learn's ``roc_curve`` has no such reading: it gives the thresholds at the scores.)
- :func:`plot_evaluation`: ROC and flagged-fraction curves side by side (PNG, written
  atomically), with a published operating point when given.
"""

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import (
    confusion_matrix,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    roc_curve,
    root_mean_squared_error,
)

from glassfrac.core.errors import InputError
from glassfrac.core.files import save_png


def regression_metrics(y, y_hat) -> dict:
    """R² (NaN for a constant ``y``), MAE and RMSE (units of ``y``) of predictions ``y_hat`` of ``y``."""
    y, y_hat = np.asarray(y, float), np.asarray(y_hat, float)
    return {"r2": float(r2_score(y, y_hat)) if np.ptp(y) > 0 else float("nan"),
            "mae": float(mean_absolute_error(y, y_hat)), "rmse": float(root_mean_squared_error(y, y_hat)),
            "n": len(y)}


def confusion(y_true, y_pred) -> dict:
    """Counts ``tn, fp, fn, tp`` of binary labels and predictions."""
    counts = confusion_matrix(np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool), labels=[False, True])
    return dict(zip(("tn", "fp", "fn", "tp"), (int(c) for c in counts.ravel()), strict=True))


def classification_metrics(y_true, scores, threshold: float = 0.0) -> dict:
    """Confusion counts and rates of ``scores > threshold`` against ``y_true`` (NaN if undefined)."""
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, float)
    n = len(y_true)
    if n == 0:
        raise InputError("no atoms to evaluate")
    c = confusion(y_true, scores > threshold)
    pos, neg = c["tp"] + c["fn"], c["tn"] + c["fp"]
    sensitivity = c["tp"] / pos if pos else np.nan
    specificity = c["tn"] / neg if neg else np.nan
    return {
        "n_atoms": n, "n_positive": int(pos), "positive_fraction": pos / n, "confusion": c,
        "sensitivity": sensitivity, "specificity": specificity, "accuracy": (c["tp"] + c["tn"]) / n,
        "balanced_accuracy": (sensitivity + specificity) / 2,
        "roc_auc": float(roc_auc_score(y_true, scores)) if pos and neg else np.nan,
        "threshold": float(threshold),
    }


def flagged_curve(y_true, scores, groups=None, n_points: int = 101) -> dict:
    """Caught fraction of events versus flagged fraction of atoms (module docstring).

    Returns ``flagged`` and ``caught`` (n_points values on 0…1), ``steps`` (the flagged
    fraction at which each event is caught, sorted: the exact curve), ``area``,
    ``flagged_to_catch``: the flagged fraction needed to catch 50 %, 90 % and 100 % of the
    events, and ``caught_at``: the fraction caught when 1, 2, 5, 10 and 20 % of each sample's
    atoms are flagged.
    """
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, float)
    groups = np.zeros(len(y_true), int) if groups is None else np.asarray(groups)
    if not y_true.any():
        raise InputError("no positive atoms: the flagged-fraction curve is undefined")
    quantile, size = rank_quantile(scores, groups)
    q_pos = np.sort(quantile[y_true])
    flagged = np.linspace(0.0, 1.0, n_points)
    caught = np.searchsorted(q_pos, flagged, side="right") / len(q_pos)
    # area under the curve interpolated linearly between ranks: 0.5 for a random ranking
    area = float(np.mean(1.0 - quantile[y_true] + 0.5 / size[y_true]))
    needed = {f"{int(round(100 * c))}%": float(q_pos[max(0, int(np.ceil(c * len(q_pos))) - 1)])
              for c in (0.5, 0.9, 1.0)}
    caught_at = {f"{f:g}%": float(np.mean(q_pos <= f / 100)) for f in (1, 2, 5, 10, 20)}
    return {"flagged": flagged, "caught": caught, "area": area, "flagged_to_catch": needed, "caught_at": caught_at,
            "steps": q_pos, "n_events": int(len(q_pos)), "n_groups": int(len(np.unique(groups)))}


def sensitivity_at_specificity(y_true, scores, specificity: float) -> dict:
    """Sensitivity where the specificity is ``specificity``: threshold = the smallest score
    with at least that fraction of the negatives at or below it; also the flagged fraction."""
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, float)
    if y_true.all() or not y_true.any():
        raise InputError("both classes are needed to read the ROC at a specificity")
    negatives = np.sort(scores[~y_true])
    threshold = negatives[min(len(negatives) - 1, max(0, int(np.ceil(specificity * len(negatives))) - 1))]
    flagged = scores > threshold
    return {"specificity": float(np.mean(~flagged[~y_true])), "sensitivity": float(np.mean(flagged[y_true])),
            "flagged_fraction": float(np.mean(flagged)), "threshold": float(threshold)}


def rank_quantile(scores, groups):
    """Per atom: rank in its group by descending score (1 = highest; ties in index order) over the group size,
    and the group size."""
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.lexsort((np.arange(len(scores)), -scores, inverse))
    g = inverse[order]
    rank = np.arange(len(order)) - (np.cumsum(counts) - counts)[g] + 1
    quantile = np.empty(len(scores))
    quantile[order] = rank / counts[g]
    return quantile, counts[inverse]


def flagged_fraction(scores) -> np.ndarray:
    """Per atom, the fraction of the atoms that are flagged, highest score first, when it is: the fraction scored
    at least as high (ties count against the ranking)."""
    scores = np.asarray(scores, float)
    ordered = np.sort(scores)
    return (len(ordered) - np.searchsorted(ordered, scores, side="left")) / len(ordered)


def bootstrap_mean(values) -> dict:
    """Mean of per-sample ``values`` with its spread over the samples (:func:`bootstrap_by_sample`)."""
    values = np.asarray(values, float)
    return bootstrap_by_sample(lambda v, _: float(np.mean(v)), values, values, np.arange(len(values)))


def plot_evaluation(y_true, scores, path, groups=None, title: str = "", reference: dict | None = None) -> None:
    """Write a PNG: ROC curve and flagged-fraction curve of held-out ``scores``.

    ``reference``: a published operating point ``{"source", "sensitivity", "specificity"}``,
    drawn as a star on the ROC panel.
    """
    y_true = np.asarray(y_true).astype(bool)
    fpr, tpr, _ = roc_curve(y_true, scores)
    m = classification_metrics(y_true, scores)
    curve = flagged_curve(y_true, scores, groups)
    fig = Figure(figsize=(9, 4.2))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(fpr, tpr, color="C0", label=f"held out (AUC {m['roc_auc']:.3f})")
    ax1.plot(1 - m["specificity"], m["sensitivity"], "o", color="C0", label="threshold 0")
    if reference:
        ax1.plot(1 - reference["specificity"], reference["sensitivity"], "*", ms=12, color="C3",
                 label=f"{reference['source']} (published)")
    ax1.plot([0, 1], [0, 1], ":", color="grey")
    ax1.set(xlabel="false positive rate (1 − specificity)", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01))
    ax1.legend(loc="lower right", fontsize=8)
    groups = np.zeros(len(y_true), int) if groups is None else np.asarray(groups)
    low = 0.5 / np.unique(groups, return_counts=True)[1].max()
    steps = curve["steps"]
    ax2.step(np.r_[low, steps, 1.0], np.r_[0.0, np.arange(1, len(steps) + 1) / len(steps), 1.0], where="post",
             color="C1", label=f"ranked by score (area {curve['area']:.3f})")
    grid = np.geomspace(low, 1.0, 200)
    ax2.plot(grid, grid, ":", color="grey", label="random")
    ax2.set_xscale("log")
    ax2.set(xlabel="fraction of atoms flagged (per sample)", ylabel="fraction of events caught",
            xlim=(low, 1), ylim=(0, 1.01))
    ax2.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    save_png(fig, path, dpi=120)


def bootstrap_by_sample(metric, y_true, scores, groups, n_resamples: int = 1000, seed: int = 0,
                        level: float = 0.95) -> dict:
    """Held-out ``metric(y_true, scores)`` (a number) with its spread over test samples: the
    samples (``groups``) are drawn with replacement ``n_resamples`` times (seeded) and the
    metric recomputed on their pooled atoms. Returns ``value`` (all samples), ``low`` and
    ``high`` (the central ``level`` interval of the resamples), ``std`` and ``n_samples``;
    resamples where the metric is undefined (NaN, or one class only) are left out."""
    y_true, scores, groups = np.asarray(y_true), np.asarray(scores, float), np.asarray(groups)
    names, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(names))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        pick = np.concatenate([members[k] for k in rng.integers(0, len(names), len(names))])
        try:
            v = float(metric(y_true[pick], scores[pick]))
        except (ValueError, InputError):
            continue
        if np.isfinite(v):
            values.append(v)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail]) if values else (np.nan, np.nan)
    return {"value": float(metric(y_true, scores)), "low": float(low), "high": float(high),
            "std": float(np.std(values)) if values else float("nan"), "n_samples": int(len(names)),
            "n_resamples": len(values)}
