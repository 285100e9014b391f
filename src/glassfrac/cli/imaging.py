"""``glassfrac image`` (microscope image → bonded structure) and ``glassfrac render``
(structure → microscope-like image).

``image`` output: ``atoms`` (Si), ``bonds`` (Si–Si), ``rings`` and ``mu2`` (over the rings not
touched by the open edge), ``undercoordinated`` (Si with fewer than 3 bonds; of which
``undercoordinated_interior`` away from the edge), ``pixel_size`` (Å/px, given, from the file
or estimated), ``overlay`` (PNG path), ``output`` and the rest of the build summary.
Coordinates of ``--roi``, ``--roi-circle`` and the corrections file are image pixels
(x = column, y = row), as on the overlay.

With trained models (``--softness``, ``--cnn``, ``--listi``; :mod:`glassfrac.imaging.predict`)
the output also has ``predictions``: per model a summary (softness: mean, spread and the top
10 % of the interior Si; cnn: the predicted mu2 or strain next to the measured ring ``mu2``;
listi: Δτ min / mean / max and the lowest windows), ``figures`` over the original image, and
``predictions_file`` (``.npz``: per-atom softness, attention map, window thresholds). The
structure file gets the per-atom arrays ``softness`` and ``soft_top10``.
"""

from pathlib import Path

import numpy as np

from glassfrac.cli import add_command, add_overwrite
from glassfrac.cli.options import (
    PNG,
    STRUCTURE_OUTPUT,
    add_format,
    finite_float,
    non_negative_float,
    non_negative_int,
    output_file,
    positive_float,
    positive_int,
)
from glassfrac.core.outputs import check_file, check_files


def register(subparsers) -> None:
    p = add_command(subparsers, "image", "Si positions from a microscope image, bonds, rings, structure", _image)
    p.add_argument("file", help="image: TIFF, PNG/JPEG, MRC, DM3/DM4 (with ncempy) or .npy")
    p.add_argument("-o", "--output", required=True, type=STRUCTURE_OUTPUT,
                   help="structure file to write (.xyz extended XYZ, .data LAMMPS)")
    p.add_argument("--pixel-size", type=positive_float, default=None,
                   help="Å per pixel (default: from the file if it states one, else estimated from Si–Si = 3.05 Å)")
    roi = p.add_mutually_exclusive_group()
    roi.add_argument("--roi", type=finite_float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"), help="rectangle, pixels")
    roi.add_argument("--roi-circle", type=finite_float, nargs=3, metavar=("CX", "CY", "R"), help="circle, pixels")
    p.add_argument("--corrections", default=None, help="CSV of manual edits: action,x,y[,unit] (add|remove)")
    p.add_argument("--tolerance", type=positive_float, default=None,
                   help="largest distance (px) of a 'remove' row from its detection (default 0.5 Si–Si)")
    p.add_argument("--detector", choices=("log", "trackpy"), default="log", help="default log (Marr–Hildreth)")
    p.add_argument("--sigma", type=positive_float, default=None, help="LoG scale in Å (default 0.2 × 3.05)")
    p.add_argument("--threshold", type=non_negative_float, default=0.35,
                   help="keep spots at least this fraction of the 90th-percentile strength (default 0.35)")
    p.add_argument("--diameter", type=positive_int, default=None, help="trackpy feature diameter, odd, pixels")
    p.add_argument("--invert", action="store_true", help="atoms are dark on a bright background")
    p.add_argument("--no-rescale", action="store_true", help="keep the pixel size; do not rescale to Si–Si = 3.05 Å")
    p.add_argument("--relax", action="store_true", help="relax with free boundaries (Yukawa 2D silica)")
    p.add_argument("--fmax", type=positive_float, default=1e-3, help="force tolerance of --relax, eV/Å (default 1e-3)")
    p.add_argument("--frozen-radius", type=non_negative_float, default=None,
                   help="Å: atoms farther than this from the mean Si position get frozen = True")
    p.add_argument("--overlay", type=PNG, default=None,
                   help="PNG of detections on the image (default OUTPUT.overlay.png)")
    p.add_argument("--max-bond", type=positive_float, default=1.5,
                   help="drop Si–Si bonds longer than this multiple of the median bond (default 1.5)")
    m = p.add_argument_group("trained predictors (figures OUTPUT.softness.png, .attention.png, .listi.png)")
    m.add_argument("--softness", metavar="MODEL", default=None, help="softness SVM (file or its folder)")
    m.add_argument("--cnn", metavar="MODEL", default=None, help="ResNet mu2 or strain model ('glassfrac cnn train')")
    m.add_argument("--listi", metavar="MODEL", default=None, help="LISTI threshold model ('glassfrac listi train')")
    m.add_argument("--stride", type=positive_int, default=None,
                   help="ResNet window step, px of the model (default side / 4)")
    m.add_argument("--listi-spacing", type=positive_float, default=None,
                   help="Å between LISTI windows (default radius / 4)")
    m.add_argument("--load-angle", type=finite_float, default=0.0, help="LISTI stretch direction, degrees (default 0)")
    add_overwrite(p)

    r = add_command(subparsers, "render", "microscope-like image of a structure (FC22 photon model)", _render)
    r.add_argument("file", help="structure file")
    add_format(r)
    r.add_argument("-o", "--output", required=True, type=output_file(".tif", ".tiff", what="TIFF image"),
                   help="image to write (.tif, float32, pixel size stored)")
    r.add_argument("--seed", type=non_negative_int, default=0)
    r.add_argument("--pixels", type=positive_int, default=256, help="pixels across the box along x (default 256)")
    r.add_argument("--size", type=non_negative_int, default=128,
                   help="final side in pixels, 0 = keep the crop (default 128)")
    r.add_argument("--photons-si", type=non_negative_float, default=800)
    r.add_argument("--photons-o", type=non_negative_float, default=100)
    r.add_argument("--background", type=non_negative_float, default=4e5, help="uniform photons over the box")
    r.add_argument("--blur", type=non_negative_float, default=0.0, help="PSF sigma, Å")
    r.add_argument("--noise", choices=("poisson", "gaussian"), default=None)
    r.add_argument("--noise-level", type=non_negative_float, default=0.0, help="Gaussian noise sigma / mean count")
    r.add_argument("--expected", action="store_true", help="expected counts instead of random photons")
    add_overwrite(r)


def _image(args) -> dict:
    from glassfrac.imaging.detect import Roi, read_image
    from glassfrac.imaging.pipeline import analyse_image
    from glassfrac.imaging.predict import load_predictors
    from glassfrac.report.image_overlay import plot_detections
    from glassfrac.structure import write

    stem = str(Path(args.output).with_suffix(""))
    figures = {"softness": ".softness.png", "cnn": ".attention.png", "listi": ".listi.png"}
    models = {"softness": args.softness, "cnn": args.cnn, "listi": args.listi}
    check_file(args.output, args.overwrite)
    check_files([args.overlay or stem + ".overlay.png"], args.overwrite, "--overlay")
    check_files([stem + ".predictions.npz" if any(models.values()) else None]
                + [stem + suffix for name, suffix in figures.items() if models[name]], args.overwrite)
    predictors = load_predictors(args.softness, args.cnn, args.listi, args.stride, args.listi_spacing,
                                 np.radians(args.load_angle))  # bad model files fail before the work
    loaded = read_image(args.file)
    roi = None
    if args.roi:
        roi = Roi("rect", tuple(args.roi))
    elif args.roi_circle:
        roi = Roi("circle", tuple(args.roi_circle))
    pixel_size = args.pixel_size or loaded.pixel_size
    analysis = analyse_image(
        loaded.image, pixel_size, roi, args.corrections, args.detector, args.tolerance,
        detect_options={"invert": args.invert, "sigma": args.sigma, "threshold": args.threshold,
                        "diameter": args.diameter},
        build_options={"rescale": not args.no_rescale, "relax": args.relax, "fmax": args.fmax,
                       "frozen_radius": args.frozen_radius, "max_bond": args.max_bond},
        source=args.file,
    )
    built = analysis.built
    predicted = _predict(loaded.image, built, predictors, stem, Path(args.file).name) if predictors else {}
    write(built.structure, args.output)
    overlay = args.overlay or stem + ".overlay.png"
    plot_detections(loaded.image, analysis.corrected.positions, overlay, roi=roi, added=analysis.corrected.added,
                    removed=analysis.corrected.removed, bonds=built.si_bonds, undercoordinated=built.undercoordinated,
                    title=Path(args.file).name)
    out = {"file": str(args.file), "output": str(args.output), "overlay": overlay, **analysis.summary()}
    if args.pixel_size is None and loaded.pixel_size is not None:
        out["pixel_size_source"] = "file"
    if built.relax is not None:
        out["relax"] = {k: built.relax[k] for k in ("converged", "max_force", "energy", "iterations")}
    out.update(predicted)
    return out


def _predict(image, built, predictors, stem, title) -> dict:
    """Apply the predictors, add their per-atom results to the structure, write figures and arrays."""
    import time

    from glassfrac.core.files import atomic_path
    from glassfrac.imaging.build import apply_predictors
    from glassfrac.report.image_overlay import write_image_figures

    results, seconds = {}, {}
    for name, predictor in predictors.items():
        wall, cpu = time.perf_counter(), time.process_time()
        results.update(apply_predictors(built.structure, {name: predictor}))
        seconds[name] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    summaries = {name: {**r["summary"], "seconds": seconds[name]} for name, r in results.items()}
    arrays = {}
    if "softness" in results:
        built.structure.set_array("softness", results["softness"]["softness"])
        built.structure.set_array("soft_top10", results["softness"]["top"].astype(np.int8))
        arrays.update(softness=results["softness"]["softness"], softness_interior=results["softness"]["interior"])
    if "cnn" in results:
        r = results["cnn"]
        summaries["cnn"]["measured_mu2"] = built.summary()["mu2"]
        pm = r["pixel_map"]
        arrays.update(cnn_windows=r["windows"], cnn_values=r["values"], attention=r["attention"],
                      attention_origin=np.asarray(pm.origin), attention_pixel_size=pm.pixel_size)
    if "listi" in results:
        arrays.update(listi_centres=results["listi"]["centres"], listi_threshold=results["listi"]["threshold"])
    arrays["angstrom_per_pixel"] = built.angstrom_per_pixel
    path = stem + ".predictions.npz"
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    figures = write_image_figures(image, built, results, stem, title)
    return {"predictions": summaries, "figures": figures, "predictions_file": path}


def _render(args) -> dict:
    from glassfrac.imaging.detect import write_image
    from glassfrac.learn.render import RenderSettings, render
    from glassfrac.structure import read

    check_file(args.output, args.overwrite)
    structure = read(args.file, format=args.format)
    settings = RenderSettings(
        photons={"Si": args.photons_si, "O": args.photons_o}, background=args.background, pixels=args.pixels,
        output=args.size or None, blur=args.blur, photon_noise=not args.expected, noise=args.noise,
        noise_level=args.noise_level,
    )
    rendered = render(structure, settings, seed=args.seed)
    write_image(args.output, rendered.image, rendered.pixel_map.pixel_size, rendered.metadata())
    return {"file": str(args.file), "output": str(args.output), "shape": list(rendered.image.shape),
            "pixel_size": rendered.pixel_map.pixel_size, "origin": list(rendered.pixel_map.origin),
            "imaged_atoms": int(len(rendered.atoms)), "seed": args.seed}
