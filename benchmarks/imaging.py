"""Si detection and network recovery on synthetic microscope images of real samples, and the
trained predictors applied to the structures built from them.

    python benchmarks/imaging.py [--quick]
    python benchmarks/imaging.py --predict [--quick] [--softness M] [--cnn M] [--listi M]

Images: the three JuMol 2D silica samples (shared/data/jumol-2d-silica, 540 Si, 78 × 81 Å)
rendered with the FC22 photon model (128 × 128 px, 0.61 Å/px) at two noise levels:
``fc22`` (800 Si / 100 O photons, 4·10^5 background photons, no blur) and ``low_dose``
(200 / 25 photons, same background, 0.4 Å point-spread function); seeds 1–3 (``--quick``:
sample sig 1.00, seed 1). Both detectors, with the pixel size given and (LoG) estimated.

Scoring (glassfrac.imaging.evaluate): optimal one-to-one matches within 0.5 Si–Si (1.525 Å: the
most pairs, then the least squared distances) between true Si (with periodic copies) and
detections, over the image less a 1.525 Å margin.
Figures per level and detector (mean over images, and the worst image for recall/precision):

- ``recall``, ``precision``; ``rms_error`` (Å) of matched positions;
- ``interior_rings_true``: fraction of the rings not flagged as boundary rings whose atoms
  are exactly a true ring; ``inner_rings_found``: fraction of the true rings lying 3 Si–Si
  inside the image that are found as such;
- ``seconds_detect``, ``seconds_build`` per image (detection; Voronoi bonds + O + rings),
  and ``seconds_render`` per image.

``--predict``: the chain image → structure (LoG, given pixel size, relaxed with free
boundaries) → softness, ResNet mu2 with Grad-CAM, LISTI map → figures over the image
(bench-out/imaging/), on the JuMol images (FC22 noise, seed 1) and on a generated Yukawa
monolayer (16 × 16 rings, gamma mu2 target 0.6, seed 0, relaxed periodic with yukawa2d to
1e-3 eV/Å, 256 px over its 85 Å box: 0.33 Å/px, seed 1); ``--quick``: JuMol sig 1.00 only.
Models: the files given, else the final ones of the learning issues when present
(/tmp/svm/final or a /tmp/svm/*.safetensors, /tmp/cnn/final/mu2.safetensors,
/tmp/listi/final/gnn.safetensors), else
tiny ones trained on the spot (tests/imaging/imaging_helpers.tiny_models; flagged
``"tiny": true``: their numbers only show the chain runs). Per image: atoms, bonds, rings,
mu2 (true of the sample; measured on the interior rings of the image; predicted), softness
mean and top-10 % threshold, LISTI Δτ min / mean, CPU and wall seconds per stage, and
``same_as_on_the_sample``: the softness of the interior Si and the LISTI Δτ of the windows
against the same models applied to the original sample at the same atoms and places
(Pearson r, mean |difference|): what the image chain changes.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import glassfrac
from glassfrac.analysis import RingAnalysis
from glassfrac.core.threads import set_threads
from glassfrac.generate import generate
from glassfrac.imaging.build import apply_predictors, build_structure
from glassfrac.imaging.detect import detect
from glassfrac.imaging.evaluate import match_points
from glassfrac.imaging.pipeline import analyse_image
from glassfrac.imaging.predict import load_predictors
from glassfrac.learn.render import render
from glassfrac.mechanics.relax import relax
from glassfrac.potentials import get_potential
from glassfrac.report.image_overlay import write_image_figures
from results import publish

os.environ.setdefault("GLASSFRAC_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "jumol-2d-silica"
SI_SI = 3.05
LEVELS = {"fc22": {}, "low_dose": {"photons": {"Si": 200, "O": 25}, "blur": 0.4}}


def emit(figure, value, unit, **extra):
    publish({"benchmark": "imaging", "figure": figure, "value": value, "unit": unit, "machine": "1 thread",
             "extrapolated": False, **extra})


def truth(structure):
    """True Si (Å) wrapped with their 8 periodic copies, and the Si index of each."""
    si = np.flatnonzero(structure.species == "Si")
    xy = structure.box.wrap(structure.positions[si])
    lx, ly = np.diag(structure.box.cell)
    shifts = [(dx, dy) for dx in (-lx, 0, lx) for dy in (-ly, 0, ly)]
    return np.concatenate([xy + s for s in shifts]), np.tile(si, len(shifts))


def ring_scores(structure, true_rings, rendered, found, match, index, built):
    """(fraction of interior rings that are true rings, fraction of inner true rings found)."""
    to_true = np.full(len(found.positions), -1)
    to_true[match.pairs[:, 1]] = index[match.pairs[:, 0]]
    to_true = to_true[built.structure.arrays["detection"]]  # structure atom → true Si
    interior = ~built.rings.boundary_rings
    detected = {frozenset(to_true[r].tolist()) for r, ok in zip(built.rings.rings, interior, strict=True) if ok}
    true_sets = {frozenset(r.tolist()) for r in true_rings.rings}
    x0, x1, y0, y1 = rendered.pixel_map.extent
    m = 3 * SI_SI
    lx, ly = np.diag(structure.box.cell)
    inner, hit = 0, 0
    for ring, poly in zip(true_rings.rings, true_rings.ring_polygons, strict=True):
        for s in [(dx, dy) for dx in (-lx, 0, lx) for dy in (-ly, 0, ly)]:
            p = poly + s
            if (p[:, 0] > x0 + m).all() and (p[:, 0] < x1 - m).all() and (p[:, 1] > y0 + m).all() \
                    and (p[:, 1] < y1 - m).all():
                inner += 1
                hit += frozenset(ring.tolist()) in detected
    return len(detected & true_sets) / max(len(detected), 1), hit / max(inner, 1)


FINAL = {"softness": [Path("/tmp/svm/final"), *sorted(Path("/tmp/svm").glob("*.safetensors"))],
         "cnn": [Path("/tmp/cnn/final/mu2.safetensors")], "listi": [Path("/tmp/listi/final/gnn.safetensors")]}


def timed(function, *args, **kwargs):
    """(result, {"wall": s, "cpu": s})."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = function(*args, **kwargs)
    return out, {"wall": round(time.perf_counter() - wall, 3), "cpu": round(time.process_time() - cpu, 3)}


def yukawa_monolayer():
    """The generated, relaxed Yukawa monolayer of the module docstring."""
    s = generate(rings=(16, 16), mu2=0.6, kind="monolayer", seed=0)
    ((relaxed, stats),) = relax(get_potential("yukawa2d"), [s], fmax=1e-3)
    relaxed.info["relax_converged"] = bool(stats["converged"])
    return relaxed


def pearson(a, b):
    """Pearson r, None when either side is constant (a model that answers the same everywhere)."""
    return float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 1e-12 and np.std(b) > 1e-12 else None


def agreement(structure, rendered, analysis, results, predictors) -> dict:
    """How far the image chain changes the predictions: each predictor applied to the original
    (periodic) sample at the same places. Softness: Pearson r and mean |difference| over the
    interior Si matched to a true Si (within 0.5 Si–Si); LISTI: r and mean |difference| (N/m)
    at the same window centres (image Å → sample Å through the pixel maps)."""
    built = analysis.built
    pm = rendered.pixel_map
    s = built.structure
    n = s.count("Si")
    all_si, index = truth(structure)
    match = match_points(all_si, pm.to_angstrom(s.arrays["pixel_xy"][:n]), 0.5 * SI_SI)
    true_of = np.full(n, -1)
    true_of[match.pairs[:, 1]] = index[match.pairs[:, 0]]
    on_sample = predictors["softness"].model.softness(structure)
    mine = results["softness"]["softness"][:n]
    keep = results["softness"]["interior"][:n] & (true_of >= 0)
    a, b = mine[keep], on_sample[true_of[keep]]
    out = {"softness": {"atoms": int(keep.sum()), "r": pearson(a, b),
                        "mean_abs_difference": float(np.mean(np.abs(a - b)))}}
    centres = results["listi"]["centres"]
    if len(centres):
        ratio = pm.pixel_size / built.angstrom_per_pixel
        there = predictors["listi"].model.predict_map(structure, centres=np.asarray(pm.origin) + centres * ratio)
        a, b = results["listi"]["threshold"], np.asarray(there["threshold"])
        out["listi"] = {"windows": len(a), "r": pearson(a, b),
                        "mean_abs_difference": float(np.mean(np.abs(a - b))), "unit": "N/m"}
    return out


def predict_chain(args):
    """The ``--predict`` figures (module docstring)."""
    out_dir = ROOT / "bench-out" / "imaging"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, tiny = {}, []
    for name in ("softness", "cnn", "listi"):
        found = [p for p in FINAL[name] if p.exists()]
        if getattr(args, name) or found:
            paths[name] = str(getattr(args, name) or found[0])
    missing = [n for n in ("softness", "cnn", "listi") if n not in paths]
    if missing:
        sys.path.insert(0, str(ROOT / "tests" / "imaging"))
        from imaging_helpers import tiny_models

        trained = tiny_models(out_dir)
        for name in missing:
            paths[name] = str(trained[name])
            tiny.append(name)
    predictors = load_predictors(**paths)
    models = {n: {"file": p, "tiny": n in tiny} for n, p in paths.items()}
    images = []
    for f in sorted(DATA.glob("sig_*_sample_0.data")):
        if not args.quick or "1.00" in f.name:
            images.append((f.name[:8], glassfrac.read(f), {}))
    if not args.quick:
        images.append(("yukawa_16x16", yukawa_monolayer(), {"pixels": 256, "output": None}))
    for name, structure, options in images:
        rendered, t_render = timed(render, structure, seed=1, **options)
        pm = rendered.pixel_map
        analysis, t_build = timed(analyse_image, rendered.image, pm.pixel_size, build_options={"relax": True})
        built = analysis.built
        summary = built.summary()
        row = {"image": name, "shape": list(rendered.image.shape), "pixel_size": round(pm.pixel_size, 4),
               "atoms": summary["atoms"], "bonds": summary["bonds"], "rings": summary["rings"],
               "isolated": summary["isolated"], "undercoordinated_interior": summary["undercoordinated_interior"],
               "mu2_sample": RingAnalysis().compute(structure).mu2, "mu2_measured": summary["mu2"],
               "seconds": {"render": t_render, "detect_build_relax": t_build}}
        results = {}
        for key, predictor in predictors.items():
            result, row["seconds"][key] = timed(apply_predictors, built.structure, {key: predictor})
            results.update(result)
        soft, cnn, listi = (results[k]["summary"] for k in ("softness", "cnn", "listi"))
        row.update(mu2_predicted=cnn.get("prediction"), cnn_windows=cnn["windows"],
                   softness={k: soft[k] for k in ("interior", "mean", "std", "positive_fraction")}
                   | {"top10_threshold": soft["top10"]["threshold"], "top10_mean": soft["top10"]["mean"]},
                   listi={k: listi.get(k) for k in ("windows", "min", "mean", "max")})
        row["same_as_on_the_sample"] = agreement(structure, rendered, analysis, results, predictors)
        row["figures"], t_fig = timed(write_image_figures, rendered.image, built, results, out_dir / name, name)
        row["seconds"]["figures"] = t_fig
        emit(f"predict_chain_{name}", row["mu2_predicted"], "", row=row, models=models)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one sample, one seed")
    parser.add_argument("--predict", action="store_true", help="the predictors on built structures")
    for name in ("softness", "cnn", "listi"):
        parser.add_argument(f"--{name}", default=None, help=f"{name} model file (with --predict)")
    args = parser.parse_args()
    set_threads(1)
    if args.predict:
        return predict_chain(args)
    files = sorted(DATA.glob("sig_*_sample_0.data"))
    if not files:
        sys.exit(f"samples not found in {DATA}")
    if args.quick:
        files = [f for f in files if "1.00" in f.name]
    seeds = [1] if args.quick else [1, 2, 3]
    samples = [(f.name[:8], glassfrac.read(f)) for f in files]
    rings = {name: RingAnalysis().compute(s) for name, s in samples}
    detectors = [("log", True), ("log", False), ("trackpy", True), ("trackpy", False)]
    dataset = {"samples": [n for n, _ in samples], "seeds": seeds, "image": "128 x 128 px, 0.61 A/px"}
    warm = render(samples[0][1], seed=0)
    for detector, _ in detectors:  # imports and first-call set-up out of the timings
        build_structure(detect(warm.image, warm.pixel_map.pixel_size, detector).positions, warm.pixel_map.pixel_size)
    for level, options in LEVELS.items():
        scores = {d: [] for d in detectors}
        render_times = []
        for name, structure in samples:
            all_si, index = truth(structure)
            for seed in seeds:
                t0 = time.perf_counter()
                rendered = render(structure, seed=seed, **options)
                render_times.append(time.perf_counter() - t0)
                pm = rendered.pixel_map
                x0, x1, y0, y1 = pm.extent
                m = 0.5 * SI_SI

                def region(p, x0=x0, x1=x1, y0=y0, y1=y1, m=m):
                    return (p[:, 0] > x0 + m) & (p[:, 0] < x1 - m) & (p[:, 1] > y0 + m) & (p[:, 1] < y1 - m)

                for detector, given in detectors:
                    t0 = time.perf_counter()
                    found = detect(rendered.image, pm.pixel_size if given else None, detector)
                    t1 = time.perf_counter()
                    built = build_structure(found.positions, found.pixel_size)
                    t2 = time.perf_counter()
                    match = match_points(all_si, pm.to_angstrom(found.positions), 0.5 * SI_SI, region)
                    true_frac, found_frac = ring_scores(structure, rings[name], rendered, found, match, index, built)
                    scores[(detector, given)].append({
                        "recall": match.recall, "precision": match.precision, "rms": match.rms,
                        "rings_true": true_frac, "rings_found": found_frac, "t_detect": t1 - t0,
                        "t_build": t2 - t1, "pixel_size_ratio": found.pixel_size / pm.pixel_size})
        emit(f"seconds_render_{level}", round(float(np.mean(render_times)), 4), "s", dataset=dataset)
        for (detector, given), rows in scores.items():
            tag = f"{level}_{detector}_{'given' if given else 'estimated'}_pixel_size"
            mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            emit(f"recall_{tag}", round(mean["recall"], 5), "", worst=round(min(r["recall"] for r in rows), 5),
                 dataset=dataset)
            emit(f"precision_{tag}", round(mean["precision"], 5), "",
                 worst=round(min(r["precision"] for r in rows), 5), dataset=dataset)
            emit(f"rms_error_{tag}", round(mean["rms"], 4), "A", dataset=dataset)
            emit(f"interior_rings_true_{tag}", round(mean["rings_true"], 4), "", dataset=dataset)
            emit(f"inner_rings_found_{tag}", round(mean["rings_found"], 4), "", dataset=dataset)
            if not given:
                emit(f"pixel_size_ratio_{tag}", round(mean["pixel_size_ratio"], 4), "estimated/true",
                     note="true ratio is 3.05 A over the sample's own Si-Si (about 1.01)", dataset=dataset)
            emit(f"seconds_detect_{tag}", round(mean["t_detect"], 4), "s", dataset=dataset)
            emit(f"seconds_build_{tag}", round(mean["t_build"], 4), "s", dataset=dataset)


if __name__ == "__main__":
    main()
