"""Prediction against outcome for a campaign whose samples ran the ``predict`` stage before their tests.

:func:`write_outcome` reads every stored sample (the models' predictions made on the relaxed sample before
it was loaded, and what the tests then found) and writes the report section ``<campaign>/outcome/``
(``report.json``, one figure per sample; :mod:`glassfrac.report.html`):

- per sample, side by side: ring-size disorder mu2 (image model / measured), rupture strain (image model /
  tension), rupture site (model / the first broken bond's midpoint, and the distance between them in Å),
  first broken bond (softness ROC AUC, the fraction of atoms flagged, softest first, before an atom of the
  bond is caught, and the probability the model gave the bond's atoms), and for sheared samples the goodness
  of the softness, of the probed threshold map and of the learned one (the installed LISTI model's, made
  by the ``predict`` stage) for each shear event;
- per sheet kind, the scores of :mod:`glassfrac.learn.scores` on these samples for the shipped predictors
  and the baselines: first-break ROC AUC, P(first break inside the top 10 % / 25 % of atoms), location error
  of the top atom, mean goodness for shear events, and cross-task, the goodness of the threshold maps at the
  tension rupture site (does the shear probe predict where tension breaks the sample?).

Predictions outside a model's training domain are shown and marked; the numbers over a few samples are
rough (the spread is printed beside each mean: the standard deviation over samples).
"""

import json

import numpy as np

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.campaign.store import row_structure
from glassfrac.core.files import atomic_open
from glassfrac.core.jsonable import to_jsonable
from glassfrac.labels.probe import ThresholdMap, event_sites
from glassfrac.labels.probe import goodness as map_goodness
from glassfrac.learn.scores import atom_goodness, baseline_scores, first_break_scores, in_plane_distance
from glassfrac.potentials import get_potential
from glassfrac.report.network_plot import plot_rings_marked

PROBED, LEARNED = "probed map", "learned map (LISTI GNN)"
"""Names of the threshold maps: the probe stage's and the one the installed threshold-map model predicted."""
FOLDER = "outcome"
"""The section's folder inside the campaign folder."""
TOP = (10, 25)
"""k of P(first break inside the top-k % of atoms)."""


def _in_domain(prediction: dict, task: str) -> bool | None:
    entry = prediction.get("predictions", {}).get(task)
    return None if entry is None else bool(entry["in_domain"])


def _mark(value, in_domain) -> str | float | None:
    """A predicted value, with ``*`` when its model was outside its training domain."""
    if value is None:
        return None
    return f"{value:.3g}*" if in_domain is False else float(value)


def _sample(store, row, potentials, rng) -> dict:
    """Prediction, outcome and scores of one stored sample."""
    structure = row_structure(row)
    prediction = row.data.get("prediction", {})
    arrays = structure.arrays
    out = {"row": row, "structure": structure, "kind": row.kind, "scores": {}}
    first_break = np.asarray(arrays.get("first_break", np.zeros(structure.n_atoms)), int) == 1
    location = None if row.get("rupture_x") is None else np.array([row.rupture_x, row.rupture_y])
    scores = {}
    if "softness" in arrays:
        scores["softness"] = np.asarray(arrays["softness"], float)
    out["rings"] = RingAnalysis().compute(structure)
    scores.update(baseline_scores(structure, potentials[row.kind], rng, rings=out["rings"]))
    if first_break.any() and location is not None:
        for name, s in scores.items():
            out["scores"][name] = first_break_scores(s, first_break, location, structure)
    records = row.data.get("shear", {}).get("events", [])
    events = event_sites(records)
    out["events"] = events
    maps = _threshold_maps(store.sample_dir(row.sample_id))
    goodness = {}
    if len(events):
        sites = [e["location"] for e in records]  # all of a sheet's axes: its layers share in-plane positions
        goodness = {name: atom_goodness(s, structure, sites) for name, s in scores.items()}
        goodness.update({name: map_goodness(t, c, events, structure.box) for name, (t, c) in maps.items()})
    out["goodness"] = goodness
    if location is not None:
        out["at_rupture"] = {name: float(map_goodness(t, c, location[None], structure.box)[0])
                             for name, (t, c) in maps.items()}
    predicted = None if row.get("predicted_rupture_x") is None else np.array([row.predicted_rupture_x,
                                                                              row.predicted_rupture_y])
    out["location_error"] = (None if predicted is None or location is None
                             else float(in_plane_distance(structure, predicted[None], location)[0]))
    probability = arrays.get("first_break_probability")
    out["bond_probability"] = (None if probability is None or not first_break.any()
                               else float(np.asarray(probability)[first_break].sum()))
    out.update(first_break=first_break, location=location, predicted=predicted, prediction=prediction)
    return out


def _threshold_maps(folder) -> dict:
    """The threshold maps of a sample folder: ``{name: (Δτ (k,) N/m, centres (k, 2) Å)}`` of the probe stage
    (``map.npz``) and of the learned map the ``predict`` stage made (``prediction/arrays.npz``)."""
    out = {}
    if (folder / "map.npz").is_file():
        probed = ThresholdMap.load(folder / "map.npz")
        out[PROBED] = (probed.threshold.ravel(), probed.centres.reshape(-1, 2))
    if (folder / "prediction/arrays.npz").is_file():
        with np.load(folder / "prediction/arrays.npz") as arrays:
            if "threshold_map.threshold" in arrays:
                out[LEARNED] = (arrays["threshold_map.threshold"].ravel(),
                                arrays["threshold_map.centres"].reshape(-1, 2))
    return out


def _row_cells(s: dict) -> list:
    row, p = s["row"], s["prediction"]
    soft = s["scores"].get("softness")
    goodness = s["goodness"]
    return [
        row.sample_id, row.kind, row.get("mu2"), _mark(row.get("predicted_mu2"), _in_domain(p, "mu2")),
        row.get("rupture_strain"), _mark(row.get("predicted_rupture_strain"), _in_domain(p, "rupture_strain")),
        s["location_error"] if _in_domain(p, "rupture_location") is not False else _mark(s["location_error"], False),
        None if soft is None else soft["auc"], None if soft is None else soft["caught_at"], s["bond_probability"],
        _mean(goodness.get("softness")), _mean(goodness.get(PROBED)), _mean(goodness.get(LEARNED)),
        s.get("at_rupture", {}).get(PROBED),
    ]


SAMPLE_COLUMNS = ["sample", "kind", "μ₂ measured", "μ₂ predicted", "rupture strain (tension)",
                  "rupture strain predicted", "rupture site: predicted − true (Å)", "first break: softness AUC",
                  "first break: fraction flagged to catch it", "first break: probability given to its atoms",
                  "shear events: softness goodness (mean)", "shear events: probed-map goodness (mean)",
                  "shear events: learned-map goodness (mean)", "probed-map goodness at the tension rupture site"]


def _mean(values) -> float | None:
    return None if values is None or not len(values) else float(np.mean(values))


def _spread(values) -> dict | None:
    """Mean, standard deviation and count of the values that are not None (None if there are none)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "sd": float(np.std(values)), "n": len(values)}


def _cell(spread: dict | None) -> str | None:
    return None if spread is None else f"{spread['mean']:.3g} ± {spread['sd']:.2g} ({spread['n']})"


def _score_rows(samples: list) -> list:
    """Per predictor, its scores over ``samples`` (one sheet kind)."""
    names = list(dict.fromkeys(n for s in samples for n in [*s["scores"], *s["goodness"], *s.get("at_rupture", {})]))
    rows = []
    for name in names:
        first = [s["scores"][name] for s in samples if name in s["scores"]]
        good = [g for s in samples for g in s["goodness"].get(name, [])]
        cross = [s.get("at_rupture", {}).get(name) for s in samples]
        rows.append([name, _spread([f["auc"] for f in first]),
                     *[_spread([float(f["caught_at"] <= k / 100) for f in first]) for k in TOP],
                     _spread([f["error"] for f in first]), _spread(good), _spread(cross)])
    return rows


SCORE_COLUMNS = ["predictor", "first break: ROC AUC", *[f"P(first break in the top {k} %)" for k in TOP],
                 "top atom to rupture site (Å)", "shear events: goodness", "goodness at the tension rupture site"]


def _figure(store, s: dict) -> str:
    """Prediction (first-break probability or softness, predicted rupture site) and outcome (first broken
    bond, shear events) over the sample's rings; returns the path relative to the campaign folder."""
    structure, row = s["structure"], s["row"]
    arrays = structure.arrays
    name = "first_break_probability" if "first_break_probability" in arrays else "softness"
    values = (None if name not in arrays else
              (name.replace("_", " ") + " (predicted)", structure.positions, np.asarray(arrays[name], float)))
    atoms = [("first broken bond (tension)", structure.positions[s["first_break"]], "tab:blue")]
    points = []
    if s["predicted"] is not None:
        points.append(("predicted rupture site", s["predicted"][None], False))
    if len(s["events"]):
        points.append(("shear events, in order", s["events"], True))
    relative = f"{FOLDER}/{row.sample_id}.png"
    plot_rings_marked(s["rings"], store.directory / relative, atoms=atoms, points=points,
                      values=values, dpi=90,
                      title=f"{row.sample_id} ({row.kind}, μ₂ {row.get('mu2', float('nan')):.2f}): "
                            f"prediction and outcome").clear()
    return relative


def write_outcome(store, seed: int = 0) -> dict:
    """Write the section (module docstring) for the samples of ``store`` that ran ``predict``; returns the
    sample count and per sheet kind and predictor its scores (``{"mean", "sd", "n"}`` or None)."""
    rows = [r for r in store.rows() if "prediction" in r.data]
    definition = store.definition()["potentials"]
    potentials = {kind: get_potential(spec["name"], **spec.get("parameters", {})) for kind, spec in definition.items()}
    rng = np.random.default_rng(seed)
    (store.directory / FOLDER).mkdir(exist_ok=True)
    samples = [_sample(store, row, potentials, rng) for row in rows]
    figures = [{"title": f"{s['row'].sample_id}: colour, the predicted first-break probability; blue, the "
                         f"first broken bond; open circle, the predicted rupture site; numbered, shear events",
                "path": _figure(store, s)} for s in samples]
    tables = [{"caption": "Per sample: predicted before loading, beside the outcome (* outside the model's "
                          "training domain)", "columns": SAMPLE_COLUMNS, "rows": [_row_cells(s) for s in samples]}]
    scores = {}
    for kind in sorted({s["kind"] for s in samples}):
        members = [s for s in samples if s["kind"] == kind]
        rows_k = _score_rows(members)
        scores[kind] = {r[0]: dict(zip(SCORE_COLUMNS[1:], r[1:], strict=True)) for r in rows_k}
        tables.append({"caption": f"Scores on these {len(members)} {kind}s (mean ± SD over samples or events "
                                  f"(count)); random ranking: AUC 0.5, goodness 0", "columns": SCORE_COLUMNS,
                       "rows": [[r[0], *map(_cell, r[1:])] for r in rows_k]})
    section = {
        "title": "Predicted first, then loaded: prediction and outcome",
        "text": ("Every sample was predicted by the installed models (glassfrac models) right after relaxation, "
                 "before any loading test ran (stage 'predict'; each sample's prediction/ folder holds the "
                 "prediction with its time). Then the tests ran: tension to the first broken bond and, for "
                 "monolayers, pure shear and local probing. Goodness C = 1 − 2F (LISTI25): 1 when an event "
                 "occurs where the predictor ranks the sample weakest, 0 at random."),
        "tables": tables, "figures": figures,
    }
    with atomic_open(store.directory / FOLDER / "report.json") as handle:
        json.dump(to_jsonable(section), handle, indent=1)
    return {"samples": len(samples), "scores": scores}
