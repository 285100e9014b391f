"""Image models (FC22): training throughput on CPU, and the mu2 model with its Grad-CAM figures.

    python benchmarks/cnn.py [--quick] [--device cuda]      # throughput (images per second)
    python benchmarks/cnn.py --mu2 DIR [--quick]            # mu2 experiment on a generated dataset
    python benchmarks/cnn.py --make-rupture DIR --samples N # tension-labelled monolayers
    python benchmarks/cnn.py --rupture DIR [--quick]        # strain / location / crack on labelled samples
    python benchmarks/cnn.py --independent EXPORT --train DIR --models M.safetensors ... [-o OUT]
    python benchmarks/cnn.py --campaign EXPORT... [--pool DIR] [--targets ...] [-o OUT]
    python benchmarks/cnn.py --inside EXPORT... --models STRAIN [LOCATION_HEATMAP] [-o OUT]

(a) Throughput: forward + backward + Adam step of batches of 32 random images (small ResNet
    at 64 and 128 px, ResNet-50 at 128 px with batches of 8; ``--quick``: small only), best of
    3 (quick) or 5 repeats after one warm-up step, one thread, wall time and (field
    ``cpu_images_per_second``) CPU time; and inference on batches of 64 images per second.
    ``--device cuda``: small and ResNet-50 at 128 px, batches of 32, on the GPU.
(b) mu2: DIR is filled (if empty) with ``--samples`` monolayers of 7 × 8 rings, mu2 target drawn
    uniformly in [0.25, 1] (seed 0), made by ``glassfrac.generate.generate`` (bond-switching
    Monte Carlo, embedding, O at the Si–Si midpoints; not relaxed); the label is the measured
    mu2. Images 64 px (pixels = 128 across the box: ≈ 0.54 Å/px, FC22's 0.66);
    the small ResNet is trained (72/8/20 split, seed 0) and evaluated on the test 20 %, next to
    the training mean and linear regressions on ring statistics; Grad-CAM φ and ρ(G, D) per
    stage are averaged over the test samples.
(c) rupture: ``--make-rupture DIR`` writes ``--samples`` monolayers of 7 × 8 rings at the target
    mu2 = 0.2 (FC22's disorder), relaxed with yukawa2d (L-BFGS to 1e-5 eV/Å, box lengths to
    zero stress) and loaded by ``tension_test`` with looser tolerances than FC22
    (``TENSION_FAST``); ``--rupture DIR`` trains the strain, location and crack models on them
    (small ResNet, 64 px, 4 copies per sample per epoch) and reports test metrics next to the
    baselines, Grad-CAM φ, ρ(G, U) with yukawa2d per-atom energies and peak distances.
(d) ``--independent``: models trained by (c) or ``glassfrac cnn train`` on DIR scored on
    another dataset (a ``glassfrac dataset export`` of a campaign), next to the baselines
    fitted on the models' training samples (:func:`independent_test`).
(e) ``--campaign``: strain, location and crack models on campaign-made samples (``glassfrac
    dataset export`` of one or more campaigns); the campaign samples are split 72 / 8 / 20 by
    sample (seed 0) and the ``--pool`` samples (e.g. a ``--make-rupture`` folder made with the
    same generator, relaxation and tension settings) only added to the training part, so test
    and validation samples are all campaign-made. Whole-cell images (``crop="cell"``), 64 px
    (128 across the box), small ResNet with the U-Net decoder, 4 copies per sample per epoch,
    early stopping on the validation loss (``--patience``). Models: strain (MSE); location with
    FC22's pooled head and loss, and with the heat-map head and its cross-entropy; crack with
    FC22's MSE and with the distribution loss. Baselines: training mean and linear regressions
    on ring statistics (strain); training circular-mean site, centre of the most defective region
    and highest-energy atom (location); random ranking and yukawa2d energy ranking of atoms, and
    as a reference a vertical band through the true site (crack). Also the location error of low-
    and high-strain halves, the MCC quantiles and figures.
    Measured (campaigns ``cnn-small`` 25 + ``cnn-small2`` 150 samples, 280-atom monolayers; pool
    103 ``--make-rupture`` samples; test 35, validation 14, train 126 + 103): strain R² 0.74
    (mean −0.15, linear on energy per atom and cell lengths 0.54; ring statistics are identical
    in every sample at fixed mu2); location mean error 4.1 Å (median 2.5) with the heat map,
    12.9 Å with FC22's pooled head, baselines 13.8 / 13.0 / 12.3 Å; crack mean MCC 0.29 (median
    0.36) with MSE and the U-Net decoder, 0.19 with FC22's plain decoder, 0.09 with the
    distribution loss, random 0.00, energy ranking −0.06, band through the true site 0.33.
(f) ``--inside``: P(true rupture site inside the selected area fraction) on larger samples for
    the strain model slid over them (FC22) and for the heat-map location model applied to the
    whole sample (:func:`glassfrac.learn.gradcam.location_probability`); figure
    ``inside_probability.png``. Measured on 5 campaign samples of 14 × 16 rings (1120 atoms,
    ``cnn-large`` 3 + ``cnn-large2`` 2) with the models of (e): P(inside 25 %) = 1.0 for the heat
    map (0.8 at 5 %), 0.4 for the strain scan (chance 0.25, FC22 ≈ 0.75).

Prints one JSON object per figure.
"""

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr
from sklearn.linear_model import LinearRegression
from sklearn.metrics import matthews_corrcoef

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.core.files import save_png
from glassfrac.core.jsonable import to_jsonable
from glassfrac.core.threads import set_threads  # noqa: E402
from glassfrac.generate import generate
from glassfrac.labels import tension_labels
from glassfrac.learn.gradcam import (
    defect_pixels,
    explain,
    inside_probability,
    location_probability,
    pearson,
    render_like_training,
    scan,
)
from glassfrac.learn.images import (
    ImageSettings,
    fractional,
    image_lengths,
    images_from_structures,
    location_fraction,
    pixel_sizes,
    read_structures,
    render_sample,
)
from glassfrac.learn.metrics import regression_metrics
from glassfrac.learn.resnet import ResNetConfig, ResNetRegressor
from glassfrac.learn.training import (
    ImageModel,
    TrainSettings,
    evaluate,
    location_metrics,
    periodic_difference,
    split_samples,
    train_and_evaluate,
)
from glassfrac.mechanics.aqs import AQSSettings
from glassfrac.mechanics.protocols import tension_test
from glassfrac.mechanics.relax import relax
from glassfrac.potentials import get_potential
from glassfrac.report.attention import plot_attention, plot_attention_field, plot_crack, plot_mcc, plot_predictions
from glassfrac.structure import write
from results import publish  # noqa: E402
from timing import timings  # noqa: E402

MACHINE = "2 shared cores, no GPU, 1 thread"


def emit(figure, value, unit, reference=None, **extra):
    publish({"benchmark": "cnn", "figure": figure, "value": value, "unit": unit, "machine": MACHINE,
             "reference": reference or {}, "extrapolated": False, **extra})


# -- (a) throughput ---------------------------------------------------------------------------------

def throughput(quick: bool, device: str = "cpu") -> None:
    cases = [("small", 64, 32), ("small", 128, 32)] + ([] if quick else [("resnet50", 128, 8)])
    if device != "cpu":
        cases = [("small", 128, 32), ("resnet50", 128, 32)]
    repeats = 3 if quick else 5
    machine = MACHINE if device == "cpu" else f"{torch.cuda.get_device_name()} ({device})"
    for arch, size, batch in cases:
        torch.manual_seed(0)
        net = ResNetRegressor(ResNetConfig.preset(arch)).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x, y = torch.randn(batch, 1, size, size, device=device), torch.randn(batch, 1, device=device)
        xp = torch.randn(64, 1, size, size, device=device)

        def step(net=net, opt=opt, x=x, y=y):
            opt.zero_grad()
            loss = ((net(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            _sync(device)

        t = timings(step, repeats, warmup=1)
        emit(f"train_{arch}_{size}px", round(batch / t["wall_best"], 1), "images/s",
             {"what": "FC22 trained ResNet50 on a GPU (no figure given)"}, batch=batch, repeats=repeats,
             cpu_images_per_second=round(batch / t["cpu_best"], 1), machine=machine)
        net.eval()

        def forward(net=net, xp=xp):
            with torch.no_grad():
                net(xp)
            _sync(device)

        t = timings(forward, repeats, warmup=1)
        emit(f"predict_{arch}_{size}px", round(64 / t["wall_best"], 1), "images/s", batch=64,
             cpu_images_per_second=round(64 / t["cpu_best"], 1), machine=machine)


def _sync(device: str) -> None:
    if device != "cpu":
        torch.cuda.synchronize()


# -- (b) mu2 ----------------------------------------------------------------------------------------

def generate_monolayer(mu2: float, seed: int, rings=(7, 8)):
    """A 2D silica monolayer of ``rings`` with target ring-size variance ``mu2`` (glassfrac generate)."""
    return generate(rings=rings, mu2=mu2, distribution="gamma", kind="monolayer", seed=seed)


def make_mu2_dataset(directory: Path, n: int, seed: int = 0) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    targets = rng.uniform(0.25, 1.0, n)
    for k, mu2 in enumerate(targets):
        path = directory / f"m{k:04d}.xyz"
        if path.exists():
            continue
        s = generate_monolayer(float(mu2), seed * 100_000 + k)
        rings = RingAnalysis().compute(s)
        s.info.update(mu2=float(rings.mu2), defect_fraction=float(np.mean(rings.ring_sizes != 6)))
        write(s, path)


def ring_features(structures) -> dict:
    """Ring statistics per sample: defect fraction (1 column), ring-size distribution n = 4..10."""
    sizes = [np.asarray(RingAnalysis().compute(s).ring_sizes) for s in structures]
    return {"defect_fraction": np.array([[np.mean(z != 6)] for z in sizes]),
            "ring_size_distribution": np.array([[np.mean(z == n) for n in range(4, 11)] for z in sizes])}


def ring_baselines(train, y_train, test, y_test) -> dict:
    """Linear regressions of a target on ring statistics of the ``train`` structures, scored on ``test``."""

    f_train, f_test = ring_features(train), ring_features(test)
    return {name: regression_metrics(y_test, LinearRegression().fit(f_train[name], y_train).predict(f_test[name]))
            for name in f_train}


def global_features(structures) -> np.ndarray:
    """Per sample: mean yukawa2d energy per atom (eV), Lx and Ly (Å) of the relaxed cell."""
    potential = get_potential("yukawa2d")
    return np.array([[float(np.mean(potential.evaluate([s], per_atom=True)[0]["per_atom_energy"])),
                      *np.diag(s.box.cell)[:2]] for s in structures])


def mu2_experiment(directory: Path, quick: bool, n: int, epochs: int) -> None:
    start = time.perf_counter()
    make_mu2_dataset(directory, n)
    emit("mu2_dataset_seconds", round(time.perf_counter() - start, 1), "s", samples=n)
    structures, names = read_structures(directory)
    structures, names = structures[:n], names[:n]
    settings = ImageSettings(size=64, pixels=128)
    data = images_from_structures(structures, names, "mu2", settings)
    train = TrainSettings(epochs=epochs, batch_size=32, lr=1e-3, seed=0, copies_per_epoch=2, val_copies=8)
    start = time.perf_counter()
    model, record = train_and_evaluate(data, ResNetConfig.preset("small"), train,
                                       checkpoint=directory / "mu2.checkpoint")
    seconds = time.perf_counter() - start
    out_dir = directory / "results"
    out_dir.mkdir(exist_ok=True)
    model.save(out_dir / "mu2.safetensors")
    test = record["test"]
    dataset = {"what": "2D silica monolayers, 7x8 rings (112 Si, 168 O), mu2 uniform in [0.25, 1], seed 0",
               "samples": record["n_samples"], "image": settings.to_dict(), "pixel_size": record["pixel_size"]}
    emit("mu2_test_r2", test["model"]["r2"], "", PUBLISHED_MU2, dataset=dataset, best_epoch=record["best_epoch"],
         epochs=len(record["history"]), train_seconds=round(seconds, 1))
    emit("mu2_test_mae", test["model"]["mae"], "", dataset=dataset)
    emit("mu2_baseline_mean_r2", test["baseline"]["r2"], "", mae=test["baseline"]["mae"])
    index = {name: k for k, name in enumerate(names)}
    split = {part: [index[name] for name in record["split"][part]] for part in ("train", "test")}
    y = np.array([s.info["mu2"] for s in structures])
    train_s, test_s = ([structures[i] for i in split[part]] for part in ("train", "test"))
    for name, metrics in ring_baselines(train_s, y[split["train"]], test_s, y[split["test"]]).items():
        emit(f"mu2_baseline_linear_{name}_r2", metrics["r2"], "", mae=metrics["mae"])
    plot_predictions(test["truth"], test["predicted"], out_dir / "mu2_test.png", "mu2",
                     metrics={"R²": test["model"]["r2"], "MAE": test["model"]["mae"]})
    # Grad-CAM over the test samples
    stats = {}
    for k, name in enumerate(record["split"]["test"]):
        result = explain(model, structures[index[name]])
        for r, item in result["stats"]["t"].items():
            stats.setdefault(r, []).append((item["phi"], item["rho_defects"], structures[index[name]].info["mu2"]))
        if k < 3:
            plot_attention(result["image"], result["maps"]["t"], result["pixel_map"],
                           out_dir / f"attention_{name}.png", result["defects"],
                           stats={r: {"φ": s["phi"], "ρ": s["rho_defects"]} for r, s in result["stats"]["t"].items()},
                           title=f"{name}: mu2 = {structures[index[name]].info['mu2']:.2f}, "
                                 f"predicted {result['prediction']:.2f}")
    for r in sorted(stats, reverse=True):
        phi, rho, mu2 = np.array(stats[r], float).T
        cell = model.image_settings.size // r
        low = mu2 < np.median(mu2)
        emit(f"mu2_gradcam_r{r}_phi", float(np.mean(phi)), "", std=float(np.std(phi)),
             cell_angstrom=cell * record["pixel_size"], n=len(phi))
        emit(f"mu2_gradcam_r{r}_rho_defects", float(np.nanmean(rho)), "", std=float(np.nanstd(rho)),
             reference={"what": "FC22 Fig. 3g / SI Fig. 4: highest at r = 32, positive, decreasing with disorder"},
             low_mu2=float(np.nanmean(rho[low])), high_mu2=float(np.nanmean(rho[~low])),
             median_mu2=float(np.median(mu2)))
    (out_dir / "mu2_record.json").write_text(json.dumps(_plain(record), indent=1))


PUBLISHED_MU2 = {"what": "FC22: disorder predicted accurately, mu2 in [0.25, 1] (no number given)"}


def _plain(value):
    return to_jsonable(value)


# -- (c) rupture ------------------------------------------------------------------------------------

TENSION_FAST = {"path": "uniaxial_strain", "max_strain": 0.3, "step": 0.01, "precision": 1e-3, "fmax": 1e-4,
                "method": "lbfgs", "stress_drop": float("inf")}
"""Tension settings of the labelled dataset: FC22's protocol with looser tolerances (FC22: steps
0.005, bisection to 5e-5·L, FIRE to 1e-8 eV/Å), about 15 times cheaper here."""


def make_rupture_dataset(directory: Path, n: int, mu2: float = 0.2, seed: int = 1) -> None:
    """``n`` monolayers (7 × 8 rings, target ``mu2``) relaxed with yukawa2d (L-BFGS to 1e-5 eV/Å,
    box lengths to zero stress) and loaded with ``tension_test`` (TENSION_FAST); written as
    extended XYZ of the relaxed undeformed sample with the labels. Existing files are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    potential = get_potential("yukawa2d")
    settings = AQSSettings(**TENSION_FAST)
    for k in range(n):
        path = directory / f"t{k:04d}.xyz"
        if path.exists():
            continue
        start = time.process_time()
        (relaxed, _), = relax(potential, [generate_monolayer(mu2, seed * 100_000 + k)], fmax=1e-5, cell=[True, True])
        result = tension_test(relaxed, potential, settings)
        labels = tension_labels(result)
        ref = result.reference.copy()
        for name, values in labels.arrays().items():  # per-atom classes: first_break, bond_changed, crack
            ref.set_array(name, values)
        ref.info.update(mu2_target=mu2, seed=seed * 100_000 + k, fractured=bool(labels.fractured),
                        cpu_seconds=time.process_time() - start, tension=TENSION_FAST)
        if labels.rupture_strain is not None:
            ref.info.update(rupture_strain=float(labels.rupture_strain),
                            rupture_location=[float(v) for v in labels.rupture_location])
        write(ref, path)
        emit("tension_sample_cpu_seconds", round(ref.info["cpu_seconds"], 1), "s", sample=path.name,
             atoms=ref.n_atoms, rupture_strain=labels.rupture_strain)


def rupture_experiment(directory: Path, quick: bool, epochs: int) -> None:
    structures, names = read_structures(directory)
    settings = ImageSettings(size=64, pixels=128)
    out_dir = directory / "results"
    out_dir.mkdir(exist_ok=True)
    for target in ("strain", "location", "crack"):
        data = images_from_structures(structures, names, target, settings)
        train = TrainSettings(epochs=epochs, batch_size=16, lr=1e-3, seed=0, copies_per_epoch=4, val_copies=16)
        model, record = train_and_evaluate(data, ResNetConfig.preset("small"), train,
                                           checkpoint=directory / f"{target}.checkpoint")
        model.save(out_dir / f"{target}.safetensors")
        test = record["test"]
        key = {"strain": "r2", "location": "mean_error", "crack": "mean_mcc"}[target]
        emit(f"{target}_test_{key}", test["model"][key], "angstrom" if target == "location" else "",
             record["published"], baseline=_short(test["baseline"]), model=_short(test["model"]),
             samples=record["n_samples"], dropped=len(record["dropped"]), best_epoch=record["best_epoch"],
             dataset=f"{len(structures)} monolayers of 7x8 rings, mu2 target 0.2, yukawa2d, {directory.name}")
        (out_dir / f"{target}_record.json").write_text(json.dumps(_plain(record), indent=1))
        index = {name: k for k, name in enumerate(names)}
        test_structures = [structures[index[name]] for name in record["split"]["test"]]
        rupture_figures(target, model, test_structures, test, out_dir)


def rupture_figures(target, model, structures, test, out_dir) -> None:
    """Grad-CAM of the strain model (φ, ρ(G, U), peak distance), attention field of the location
    model and crack maps, over the test samples."""
    if target == "strain":
        plot_predictions(test["truth"], test["predicted"], out_dir / "strain_test.png", "rupture strain",
                         metrics={"R²": test["model"]["r2"]})
        potential = get_potential("yukawa2d")
        rows = {}
        for k, s in enumerate(structures):
            energies = np.asarray(potential.evaluate([s], per_atom=True)[0]["per_atom_energy"], float)
            result = explain(model, s, energies)
            for r, item in result["stats"]["t"].items():
                rows.setdefault(r, []).append((item["phi"], item["rho_energy"], item["peak_distance"],
                                               float(result["prediction"])))
            if k < 3:
                plot_attention(result["image"], result["maps"]["t"], result["pixel_map"],
                               out_dir / f"strain_att_{k}.png", result["defects"], s.info.get("rupture_location"),
                               {r: {"φ": v["phi"], "ρU": v["rho_energy"]} for r, v in result["stats"]["t"].items()})
        for r in sorted(rows, reverse=True):
            phi, rho_u, dist, pred = np.array(rows[r], float).T
            emit(f"strain_gradcam_r{r}", float(np.mean(phi)), "phi", rho_energy=float(np.nanmean(rho_u)),
                 peak_distance=float(np.mean(dist)), phi_vs_predicted_strain=pearson(phi, pred), n=len(phi),
                 reference={"what": "FC22: low phi for low predicted strain (Fig. 4e); rho(G, U) highest at low "
                                    "strain (Fig. 4i)"})
    elif target == "location":
        plot_predictions(test["truth"], test["predicted"], out_dir / "location_test.png", "location (fraction)")
        result = explain(model, structures[0])
        r = max(result["maps"]["x"])
        plot_attention_field(result["image"], result["maps"]["x"][r], result["maps"]["y"][r], result["divergence"],
                             result["pixel_map"], out_dir / "location_field.png",
                             structures[0].info.get("rupture_location"), result["prediction"])
    else:
        for k, s in enumerate(structures[:3]):
            rendered = render_sample(s, model.image_settings, model.image_settings.render_seed)
            prediction = model.predict(rendered.image[None])[0]
            labels = np.asarray(s.arrays["crack"])[rendered.atoms]
            plot_crack(rendered.image, prediction, rendered.pixel_map, s.positions[rendered.atoms, :2], labels,
                       out_dir / f"crack_{k}.png", test["model"]["mcc"][k])


def independent_test(export: Path, train_dir: Path, model_paths, out_dir: Path) -> None:
    """Rupture models trained on ``train_dir`` scored on every sample of ``export`` (another dataset,
    e.g. a campaign export), next to the baselines fitted on the model's training samples: the
    training mean / circular-mean location / random atom ranking (``evaluate``) and, for the
    strain, linear regressions on ring statistics. Crack: the MCC distribution figure."""
    train_s, train_n = read_structures(train_dir)
    test_s, test_n = read_structures(export)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = f"{export} ({len(test_s)} samples); models trained on {train_dir} ({len(train_s)} samples)"
    for path in model_paths:
        model = ImageModel.load(path)
        target = model.task
        names = [f"train/{n}" for n in train_n] + [f"test/{n}" for n in test_n]
        data = images_from_structures(train_s + test_s, names, target, model.image_settings, progress=False)
        train = set(model.info["split"]["train"])
        train_index = [k for k, n in enumerate(data.names) if n[6:] in train and n.startswith("train/")]
        test_index = [k for k, n in enumerate(data.names) if n.startswith("test/")]
        result = evaluate(model, data, test_index, baseline_from=train_index)
        key = {"strain": "r2", "location": "mean_error", "crack": "mean_mcc"}[target]
        extra = {}
        if target == "strain":
            pick = [data.names[k][5:] for k in test_index]
            chosen = [test_s[test_n.index(n)] for n in pick]
            fitted = [train_s[train_n.index(data.names[k][6:])] for k in train_index]
            extra["linear_ring_statistics"] = ring_baselines(fitted, data.values[train_index], chosen,
                                                             data.values[test_index])
            plot_predictions(result["truth"], result["predicted"], out_dir / "strain_independent.png",
                             "rupture strain", metrics={"R²": result["model"]["r2"]})
        elif target == "crack":
            mcc = np.asarray(result["model"]["mcc"])
            extra["mcc_quantiles"] = dict(zip(("q10", "q25", "q50", "q75", "q90"),
                                              np.quantile(mcc, [0.1, 0.25, 0.5, 0.75, 0.9]).tolist(), strict=True))
            extra["fraction_mcc_above_0.2"] = float(np.mean(mcc > 0.2))
            plot_mcc(mcc, out_dir / "crack_mcc_independent.png", result["baseline"]["mean_mcc"],
                     f"crack MCC, {len(mcc)} independent samples")
        emit(f"{target}_independent_{key}", result["model"][key], "angstrom" if target == "location" else "",
             model.info.get("published"), model=_short(result["model"]), baseline=_short(result["baseline"]),
             samples=len(test_index), dropped=len(test_s) - len(test_index), crop=model.image_settings.crop,
             dataset=dataset, **extra)


def _short(metrics):
    return {k: v for k, v in metrics.items() if k not in ("errors", "mcc")}


# -- (e) campaign-made data ---------------------------------------------------------------------------

CAMPAIGN_MODELS = {
    "strain": [("strain", {})],
    "location": [("location_regression_fc22", {"head": "regression", "location_loss": "fc22"}),
                 ("location_heatmap", {"head": "heatmap", "location_loss": "heatmap"})],
    "crack": [("crack_mse", {"crack_loss": "mse"}), ("crack_distribution", {"crack_loss": "distribution"}),
              ("crack_mse_plain_decoder", {"crack_loss": "mse", "skips": False})],
}
"""Models of (e) per target: name and TrainSettings fields, ``skips`` (default True) the decoder
(location: FC22's pooled head next to the heat map; crack: FC22's MSE next to the distribution
loss, with the U-Net decoder, and FC22's MSE with FC22's plain decoder)."""


def campaign_split(n: int, n_pool: int, seed: int = 0) -> dict:
    """Indices into [campaign samples (n), pool samples (n_pool)]: the campaign samples split
    72 / 8 / 20 (seed), every pool sample added to the training part."""
    split = split_samples(n, seed=seed)
    split["train"] = np.concatenate([split["train"], np.arange(n, n + n_pool)])
    return split


def defect_peak_sites(structures, pixel_maps, sigma: float = 3.0) -> np.ndarray:
    """Per sample the fractional image coordinates of the maximum of the defect map (pixels inside
    non-hexagonal rings) smoothed by a periodic Gaussian of ``sigma`` Å: the centre of the most
    defective region."""

    out = []
    for structure, pm in zip(structures, pixel_maps, strict=True):
        smooth = gaussian_filter(defect_pixels(structure, pm).astype(float), sigma / pixel_sizes(pm)[::-1],
                                 mode="wrap")
        row, col = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
        out.append([(col + 0.5) / smooth.shape[1], (row + 0.5) / smooth.shape[0]])
    return np.array(out)


def energy_peak_sites(structures, pixel_maps) -> np.ndarray:
    """Per sample the fractional image coordinates of the atom of highest yukawa2d energy."""
    potential = get_potential("yukawa2d")
    out = []
    for structure, pm in zip(structures, pixel_maps, strict=True):
        energy = np.asarray(potential.evaluate([structure], per_atom=True)[0]["per_atom_energy"], float)
        out.append(np.mod(fractional(pm, structure.positions[int(np.argmax(energy)), :2]), 1.0))
    return np.array(out)


def crack_references(structures, data, index) -> dict:
    """Mean MCC (top 10 %) of two rankings of the imaged atoms of samples ``index`` of the crack
    dataset ``data``: by yukawa2d per-atom energy (a physics baseline) and by x-distance to the
    true rupture site (a vertical band through it; uses the truth, a reference, not a baseline)."""

    potential = get_potential("yukawa2d")
    out = {"energy_ranking": [], "band_through_true_site": []}
    for structure, i in zip(structures, index, strict=True):
        uv, labels = data.atom_uv[i], data.atom_labels[i]
        k = max(1, int(round(0.1 * len(uv))))
        energy = np.asarray(potential.evaluate([structure], per_atom=True)[0]["per_atom_energy"], float)
        site = np.mod(fractional(data.pixel_maps[i], np.asarray(structure.info["rupture_location"])[:2]), 1.0)
        for name, score in (("energy_ranking", energy[data.atoms[i]]),
                            ("band_through_true_site", -np.abs(periodic_difference(uv[:, 0], site[0])))):
            top = np.zeros(len(uv), bool)
            top[np.argsort(-score, kind="stable")[:k]] = True
            out[name].append(float(matthews_corrcoef(labels, top)))
    return {name: float(np.mean(v)) for name, v in out.items()}


def campaign_experiment(exports, pool, out_dir: Path, epochs: int, patience: int, targets) -> None:
    """Strain, location and crack models on campaign-made samples (module docstring, (e))."""

    structures, names = [], []
    for path in exports:
        more, more_names = read_structures(path)
        structures += more
        names += [f"{Path(path).stem}/{n}" for n in more_names]
    n_campaign = len(structures)
    pool_s, pool_n = read_structures(pool) if pool is not None else ([], [])
    structures += pool_s
    names += [f"pool/{n}" for n in pool_n]
    split = campaign_split(n_campaign, len(pool_s))
    part = {names[i]: k for k, v in split.items() for i in v}
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = {"campaign_samples": n_campaign, "exports": [str(p) for p in exports], "pool_samples": len(pool_s),
               "pool": str(pool), "split": {k: len(v) for k, v in split.items()},
               "what": "2D silica monolayers of 7x8 rings (280 atoms), mu2 target 0.2, yukawa2d, tension along x "
                       "(loose AQS); test and validation samples campaign-made only, pool samples train only"}
    emit("campaign_dataset", n_campaign, "samples", **dataset)
    settings = ImageSettings(size=64, pixels=128, crop="cell")
    config = ResNetConfig.preset("small")
    for target in targets:
        data = images_from_structures(structures, names, target, settings, progress=False)
        kept = {k: np.array([i for i, n in enumerate(data.names) if part[n] == k]) for k in split}
        index = {n: i for i, n in enumerate(names)}
        for name, extra in CAMPAIGN_MODELS[target]:
            fields = {k: v for k, v in extra.items() if k != "skips"}
            train = TrainSettings(epochs=epochs, batch_size=16, lr=1e-3, seed=0, copies_per_epoch=4, val_copies=16,
                                  patience=patience, **fields)
            start = time.perf_counter()
            model, record = train_and_evaluate(data, replace(config, skips=extra.get("skips", True)), train,
                                               checkpoint=out_dir / f"{name}.checkpoint", split=kept)
            seconds = time.perf_counter() - start
            model.save(out_dir / f"{name}.safetensors")
            (out_dir / f"{name}_record.json").write_text(json.dumps(_plain(record), indent=1))
            test = record["test"]
            test_s = [structures[index[n]] for n in test["names"]]
            common = dict(model=_short(test["model"]), baseline=_short(test["baseline"]), samples=record["n_samples"],
                          dropped=len(record["dropped"]), best_epoch=record["best_epoch"],
                          epochs_run=len(record["history"]), train_seconds=round(seconds, 1), settings=extra)
            strain = np.array([s.info.get("rupture_strain", np.nan) for s in test_s])
            if target == "strain":
                train_s = [structures[index[data.names[i]]] for i in kept["train"]]
                common["linear_ring_statistics"] = ring_baselines(train_s, data.values[kept["train"]], test_s,
                                                                  np.asarray(test["truth"]))


                fit = LinearRegression().fit(global_features(train_s), data.values[kept["train"]])
                common["linear_energy_and_cell"] = regression_metrics(test["truth"],
                                                                      fit.predict(global_features(test_s)))
                common["ring_size_counts_distinct"] = len({tuple(np.round(r, 6)) for r in
                                                           ring_features(train_s + test_s)["ring_size_distribution"]})
                emit(f"{name}_test_r2", test["model"]["r2"], "", record["published"], **common)
                plot_predictions(test["truth"], test["predicted"], out_dir / f"{name}_test.png", "rupture strain",
                                 metrics={"R²": test["model"]["r2"], "MAE": test["model"]["mae"]})
            elif target == "location":
                test_i = [data.names.index(n) for n in test["names"]]
                maps = [data.pixel_maps[i] for i in test_i]
                periods = np.array([image_lengths(pm) for pm in maps])
                truth = np.asarray(test["truth"])
                for what, sites in (("defect_peak", defect_peak_sites(test_s, maps)),
                                    ("energy_peak", energy_peak_sites(test_s, maps))):
                    common[f"baseline_{what}"] = _short(location_metrics(truth, sites, periods))
                errors = np.asarray(test["model"]["errors"])
                low = strain <= np.median(strain)
                common.update(error_low_strain=float(errors[low].mean()), error_high_strain=float(errors[~low].mean()),
                              spearman_error_strain=float(spearmanr(errors, strain)[0]),
                              median_strain=float(np.median(strain)))
                emit(f"{name}_test_mean_error", test["model"]["mean_error"], "angstrom", record["published"], **common)
                _plot_error_vs_strain(strain, errors, test["baseline"]["errors"], out_dir / f"{name}_error_strain.png")
            else:
                mcc = np.asarray(test["model"]["mcc"])
                common.update(mcc_quantiles=dict(zip(("q10", "q25", "q50", "q75", "q90"),
                                                     np.quantile(mcc, [0.1, 0.25, 0.5, 0.75, 0.9]).tolist(),
                                                     strict=True)),
                              fraction_mcc_above_0_2=float(np.mean(mcc > 0.2)),
                              spearman_mcc_strain=float(spearmanr(mcc, strain)[0]),
                              mean_mcc_of=crack_references(test_s, data, [data.names.index(n) for n in test["names"]]))
                emit(f"{name}_test_mean_mcc", test["model"]["mean_mcc"], "", record["published"], **common)
                plot_mcc(mcc, out_dir / f"{name}_mcc.png", test["baseline"]["mean_mcc"],
                         f"crack MCC, {len(mcc)} campaign test samples")


def inside_experiment(exports, strain_path: Path, location_path: Path | None, out_dir: Path, stride: int = 16) -> None:
    """P(true rupture site inside the selected fraction of the area) on larger samples (FC22 Fig.
    6b): the strain model slid over the sample (window cells with the lowest predicted strain
    first, :func:`~glassfrac.learn.gradcam.scan`) and, with ``location_path``, the heat-map
    location model applied to the whole periodic sample (pixels of highest probability first)."""
    models = {"strain_scan": ImageModel.load(strain_path)}
    if location_path is not None:
        models["location_heatmap"] = ImageModel.load(location_path)
    structures, names = [], []
    for path in exports:
        more, more_names = read_structures(path)
        structures += more
        names += [f"{Path(path).stem}/{n}" for n in more_names]
    fractions = np.linspace(0.05, 1.0, 20)
    curves = {}
    for key, model in models.items():
        maps, locations, used = [], [], []
        for structure, name in zip(structures, names, strict=True):
            if structure.info.get("rupture_location") is None:
                continue
            rendered = render_like_training(model, structure, model.info["pixel_size"],
                                            model.image_settings.render_seed)
            side = rendered.image.shape[0] // model.config.stride * model.config.stride
            u = location_fraction(structure, rendered.pixel_map, structure.info["rupture_location"])
            if u is None or side < model.image_settings.size:
                continue
            image = rendered.image[:side, :side]
            maps.append(scan(model, image, stride) if key == "strain_scan" else -location_probability(model, image))
            locations.append(u * rendered.image.shape[0] / side)
            used.append(name)
        p = inside_probability(maps, locations, fractions)
        curves[key] = p
        emit(f"inside_{key}_at_25_percent", float(np.interp(0.25, fractions, p)), "probability",
             {"source": "FC22", "p_inside_at_25_percent": 0.75, "what": "strain model slid over 4x larger samples"},
             chance=0.25, samples=used, n=len(used), fractions=fractions.round(3).tolist(), p_inside=p.tolist(),
             sample_atoms=int(structures[0].n_atoms), model=str(strain_path if key == "strain_scan" else location_path))
    _plot_inside(fractions, curves, len(used), out_dir / "inside_probability.png")


def _plot_inside(fractions, curves, n, path) -> None:
    """P(inside) against the area fraction, per model; chance diagonal and FC22's point."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(4.4, 4.0), dpi=120)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, label="chance")
    for key, p in curves.items():
        ax.plot(fractions, p, "o-", ms=3, label=key.replace("_", " "))
    ax.plot([0.25], [0.75], "k*", ms=9, label="FC22 (strain scan)")
    ax.set_xlabel("selected area fraction")
    ax.set_ylabel(f"P(rupture site inside), {n} samples")
    ax.legend(fontsize=8)
    save_png(fig, path)


def _plot_error_vs_strain(strain, errors, baseline_errors, path) -> None:
    """Location error (Å) of each test sample against its rupture strain, model and constant baseline."""
    fig = Figure(figsize=(4.4, 3.6), dpi=120)
    ax = fig.subplots()
    ax.scatter(strain, baseline_errors, s=12, color="0.6", label="training circular mean")
    ax.scatter(strain, errors, s=14, color="tab:red", label="model")
    ax.set_xlabel("rupture strain")
    ax.set_ylabel("location error (Å)")
    ax.legend(fontsize=8)
    save_png(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mu2", type=Path, default=None, metavar="DIR", help="run the mu2 experiment in DIR")
    parser.add_argument("--rupture", type=Path, default=None, metavar="DIR", help="train rupture models on DIR")
    parser.add_argument("--make-rupture", type=Path, default=None, metavar="DIR",
                        help="generate and load --samples monolayers into DIR (tension labels)")
    parser.add_argument("--independent", type=Path, default=None, metavar="EXPORT",
                        help="score --models (trained on --train DIR) on this dataset")
    parser.add_argument("--train", type=Path, default=None, metavar="DIR", help="training dataset of --models")
    parser.add_argument("--campaign", type=Path, nargs="+", default=None, metavar="EXPORT",
                        help="campaign exports: train and test strain/location/crack models on them")
    parser.add_argument("--pool", type=Path, default=None, metavar="DIR",
                        help="--campaign: extra training samples (e.g. a --make-rupture DIR)")
    parser.add_argument("--targets", nargs="+", default=["strain", "location", "crack"],
                        choices=("strain", "location", "crack"), help="--campaign: targets to train")
    parser.add_argument("--patience", type=int, default=25, help="--campaign: early-stopping patience, epochs")
    parser.add_argument("--inside", type=Path, nargs="+", default=None, metavar="EXPORT",
                        help="larger samples: P(rupture inside) of --models STRAIN [LOCATION_HEATMAP]")
    parser.add_argument("--models", type=Path, nargs="+", default=[], help="model files (strain, location, crack)")
    parser.add_argument("-o", "--output", type=Path, default=Path("bench-out/cnn"),
                        help="output folder of --independent and --campaign")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--device", default="cpu", help="throughput only: torch device (cpu, cuda)")
    args = parser.parse_args()
    set_threads(1)
    if args.mu2 is not None:
        mu2_experiment(args.mu2, args.quick, 40 if args.quick else args.samples, 3 if args.quick else args.epochs)
    elif args.inside is not None:
        inside_experiment(args.inside, args.models[0], args.models[1] if len(args.models) > 1 else None,
                          args.output)
    elif args.campaign is not None:
        campaign_experiment(args.campaign, args.pool, args.output, 3 if args.quick else args.epochs,
                            args.patience, args.targets)
    elif args.independent is not None:
        independent_test(args.independent, args.train, args.models, args.output)
    elif args.make_rupture is not None:
        make_rupture_dataset(args.make_rupture, 4 if args.quick else args.samples)
    elif args.rupture is not None:
        rupture_experiment(args.rupture, args.quick, 3 if args.quick else args.epochs)
    else:
        throughput(args.quick, args.device)


if __name__ == "__main__":
    main()
