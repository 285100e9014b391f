"""One sample through the stages, on a worker: generate → relax → tests (tension, shear, probe).

:func:`run_sample` runs the stages of one :class:`~glassfrac.campaign.samples.SampleSpec`
into a private temporary directory ``<out>/samples/.tmp-<run>-<sample_id>-<attempt>/`` (one per
attempt: a worker the scheduler gave up for lost may still be writing into its own) and returns a
:class:`SampleResult` (the row to store: structure, key-value pairs, data) or a
:class:`SampleFailure` (stage, error text, traceback). It never raises for a failing sample
and never touches the store: the runner moves the directory into place and inserts the row.

A stage is a function ``stage(ctx: SampleContext) -> None`` that reads ``ctx.structure`` and
adds to ``ctx.keys`` (scalar labels, queryable), ``ctx.data`` (curves, event lists),
``ctx.arrays`` (per-atom labels of the stored structure) and files under ``ctx.directory``
(large arrays with :meth:`SampleContext.write_array`, figures with
:meth:`SampleContext.add_figure`). Built-in stages are in :data:`STAGES`; a test named
``"module:function"`` in the config runs that function the same way.

Row layout (all samples): key-value pairs ``campaign``, ``sample_id``, ``index``, ``group``,
``kind``, ``nx``, ``ny``, ``distribution``, ``mu2_target`` or ``sigma_factor``, ``seed``,
``dim``, ``seconds`` and the stages' labels (None and non-finite values are left out); the
structure is the relaxed, undeformed sample (2D samples with z = 0, see ``dim``); ``data``
holds ``arrays`` (per-atom), ``bonds`` (rows i j n_x n_y [n_z] when the structure has bonds),
one entry per test (``labels``, ``curve``, ``events``; ``probe``: settings, threshold summary and
goodness per shear event), ``files`` (path, bytes, sha256 of every file of the sample),
``figures`` (title, path) and ``provenance`` (seeds, timings, versions, git revision, config).

Ring statistics and the network figures are of the relaxed structure (the stored one). A
probed sample's folder holds ``structure.xyz``, ``map.npz`` and ``events.json`` in the layout
of :func:`glassfrac.learn.windows.load_probed`, so ``<campaign>/samples`` is a LISTI dataset.
"""

import hashlib
import importlib
import json
import os
import socket
import time
import traceback
import uuid
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import ase.db.core
import numpy as np

from glassfrac.analysis.bonds import BondRule
from glassfrac.analysis.rings import RingAnalysis
from glassfrac.campaign.samples import SampleSpec
from glassfrac.core.errors import ConvergenceError, InputError
from glassfrac.core.files import atomic_open
from glassfrac.core.jsonable import to_jsonable
from glassfrac.core.provenance import now
from glassfrac.core.threads import set_threads
from glassfrac.generate import generate as generate_network
from glassfrac.imaging.prediction import predict_structure, require_models, write_prediction_arrays
from glassfrac.labels import shear_labels, tension_labels
from glassfrac.labels.probe import ThresholdMap, event_sites, goodness
from glassfrac.learn.registry import Registry
from glassfrac.mechanics.probe import ProbeSettings, check_window_room, frozen_shell, probe_map
from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, TENSION_DEFAULTS, shear_test, tension_test
from glassfrac.mechanics.relax import relax_to_minimum
from glassfrac.potentials import get_potential
from glassfrac.report.loading import save_run
from glassfrac.report.network_plot import plot_rings, plot_rings_marked
from glassfrac.report.prediction_plot import write_prediction_figures
from glassfrac.report.probe_plot import plot_threshold_map
from glassfrac.structure import Structure, write

UNITS = {"length": "Å", "energy": "eV", "strain": "1", "stress_sheet": "N/m", "stress_bulk": "GPa"}


@dataclass(frozen=True)
class Plan:
    """What every sample of a run shares (small and picklable, sent to each task)."""

    campaign: str
    seed: int
    tests: tuple
    test_settings: dict
    potentials: dict
    relax: dict
    samples_dir: str
    run_id: str
    threads: int = 1
    figures: bool = True
    provenance: dict = field(default_factory=dict)

    def stages(self, spec: SampleSpec) -> list:
        """Stage names of ``spec`` in order: generate, relax (unless method "none"), its tests."""
        tests = self.tests if spec.tests is None else spec.tests
        return ["generate"] + ([] if self.relax["method"] == "none" else ["relax"]) + list(tests)


class SampleContext:
    """The state of one sample while its stages run (module docstring)."""

    def __init__(self, spec: SampleSpec, plan: Plan, directory: Path):
        self.spec = spec
        self.plan = plan
        self.directory = Path(directory)
        self.structure: Structure | None = None
        self.keys: dict = {}
        self.data: dict = {}
        self.arrays: dict = {}
        self.figures: list = []
        self.rings = None
        self._potential = None

    def path(self, relative: str) -> Path:
        """``relative`` inside the sample's directory, parent folders created."""
        out = self.directory / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def potential(self):
        """The potential of this sample's kind (config ``[potential]``), built once."""
        if self._potential is None:
            spec = self.plan.potentials[self.spec.kind]
            self._potential = get_potential(spec["name"], **spec.get("parameters", {}))
        return self._potential

    def write_array(self, relative: str, array) -> str:
        """Save ``array`` as ``.npy`` (atomically) inside the sample's directory; returns the path."""
        with atomic_open(self.path(relative), "wb") as handle:
            np.save(handle, np.asarray(array), allow_pickle=False)
        return relative

    @property
    def drawing(self) -> bool:
        """Whether this campaign draws figures (config ``[output] figures``; datasets leave them out)."""
        return self.plan.figures

    def add_figure(self, title: str, relative: str) -> None:
        """List a figure (a file inside the sample's directory) for the report."""
        if (self.directory / relative).is_file():
            self.figures.append({"title": title, "path": relative})

    def aqs_settings(self, test: str, defaults):
        """``defaults`` with the relaxer's method and fmax, then the config's ``[tests.<test>]``."""
        relax = self.plan.relax
        base = {} if relax["method"] == "none" else {"method": relax["method"], "fmax": relax["fmax"]}
        return replace(defaults, **{**base, **self.plan.test_settings.get(test, {})})


@dataclass
class SampleResult:
    """A finished sample: its files in ``directory`` and the row to insert."""

    spec: SampleSpec
    directory: str
    atoms: object
    keys: dict
    data: dict
    seconds: float


@dataclass
class SampleFailure:
    """A sample that failed in ``stage`` with ``error`` (one line) and ``traceback``."""

    spec: SampleSpec
    stage: str
    error: str
    traceback: str
    seconds: float
    directory: str | None = None

    def record(self) -> dict:
        return {"sample_id": self.spec.sample_id, "index": self.spec.index, "stage": self.stage,
                "error": self.error, "traceback": self.traceback, "seconds": self.seconds}


def run_sample(spec: SampleSpec, plan: Plan):
    """Run every stage of ``spec``; returns a :class:`SampleResult` or :class:`SampleFailure`."""

    set_threads(plan.threads)
    start = time.perf_counter()
    started = now()
    directory = Path(plan.samples_dir) / f".tmp-{plan.run_id}-{spec.sample_id}-{uuid.uuid4().hex[:8]}"
    directory.mkdir(parents=True)
    ctx = SampleContext(spec, plan, directory)
    timings = {}
    stage = "setup"
    try:
        for stage in plan.stages(spec):
            t0 = time.perf_counter()
            stage_function(stage)(ctx)
            timings[stage] = round(time.perf_counter() - t0, 4)
        stage = "store"
        seconds = time.perf_counter() - start
        atoms, keys, data = _row(ctx, timings, started, seconds)
    except Exception as exc:  # one sample's failure is recorded, never fatal to the campaign
        message = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        return SampleFailure(spec, stage, message, traceback.format_exc(),
                             time.perf_counter() - start, str(directory))
    return SampleResult(spec, str(directory), atoms, keys, data, seconds)


def stage_function(name: str):
    """The built-in stage ``name`` or the function named by ``"module:function"``."""
    if name in STAGES:
        return STAGES[name]
    return load_callable(name)


def load_callable(name: str):
    """Import ``"package.module:function"``."""
    module, _, attr = name.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"cannot load {name!r}: {exc}") from None


# -- the built-in stages ----------------------------------------------------------------------
def generate(ctx: SampleContext) -> None:
    """Build the sample (built-in generator, or the group's ``generator``); ring statistics."""
    spec = ctx.spec
    if spec.generator:
        structure = load_callable(spec.generator)(spec, **spec.options)
    else:
        structure = _builtin_generator(spec)
    ctx.structure = structure

    write(structure, ctx.path("generated.xyz"))
    if ctx.plan.relax["method"] == "none":
        _ring_statistics(ctx)


def _builtin_generator(spec: SampleSpec) -> Structure:
    return generate_network(rings=spec.rings, mu2=spec.mu2, distribution=spec.distribution,
                            sigma_factor=spec.sigma_factor, kind=spec.kind, seed=spec.seed, progress=False,
                            **spec.options)


def _ring_statistics(ctx: SampleContext) -> None:
    """Rings of the current structure (kept in ``ctx.rings`` for the figures of the tests)."""

    rings = ctx.rings = RingAnalysis().compute(ctx.structure)
    ctx.keys.update(mu2=rings.mu2, alpha=rings.alpha, n_rings=rings.n_rings)
    ctx.data["rings"] = {"sizes": np.asarray(rings.ring_sizes)}
    if ctx.drawing:
        plot_rings(rings, ctx.path("rings.png"), dpi=100).clear()
        ctx.add_figure("structure and rings", "rings.png")


def _network_figure(ctx: SampleContext, relative: str, title: str, caption: str, **marks) -> None:
    """The ring network of the sample with ``marks`` on top (see ``plot_rings_marked``)."""
    if ctx.rings is not None and ctx.drawing:
        plot_rings_marked(ctx.rings, ctx.path(relative), title=title, dpi=100, **marks).clear()
        ctx.add_figure(caption, relative)


def relax(ctx: SampleContext) -> None:
    """Relax positions (and, with ``[relax] cell``, the lengths of the periodic axes to zero
    stress; no tilt, so rectangular samples stay rectangular) to ``fmax`` and to a true minimum (saddles left
    along their negative mode, :func:`~glassfrac.mechanics.relax.relax_to_minimum`; the lowest eigenvalue and
    the saddles left are in the sample's ``relax`` data); fails if unconverged. ``relax_broken_bonds``: the
    Si–O bonds of the generated network that the relaxation broke (the loading tests' :class:`BondRule`; the
    pairs in the ``relax`` data): the generator's bond-switching moves can leave sites that Yukawa relaxes into
    a bond switch or a non-bridging O, mostly at higher mu2. Such a sample is kept, a relaxed glass with a few
    coordination defects, and marked."""

    r = ctx.plan.relax
    cell = np.array(ctx.structure.box.pbc, dtype=bool) if r["cell"] else None  # a writable copy
    structure, stats = relax_to_minimum(ctx.potential(), ctx.structure, method=r["method"], fmax=r["fmax"],
                                        max_steps=r["max_steps"], cell=cell)
    if not stats["converged"]:
        raise ConvergenceError(f"relaxation stopped at max force {stats['max_force']:.3g} eV/Å "
                               f"(fmax {r['fmax']:g}) after {stats['evaluations']} evaluations")
    broken = BondRule.for_potential(ctx.potential()).tracker(ctx.structure).broken(structure)
    ctx.structure = structure
    ctx.keys.update(relax_energy=stats["energy"], relax_iterations=stats["iterations"],
                    relax_broken_bonds=broken.count)
    ctx.data["relax"] = {**stats, "broken_bonds": broken.pairs}
    _ring_statistics(ctx)
    probed = _probe_settings(ctx)
    if probed is not None:  # a cell relaxed too small for the windows fails here, not after the other tests
        check_window_room(structure, probed.r_free, frozen_shell(ctx.potential(), probed))


PREDICTED_KEYS = {"predicted_mu2": ("mu2", "prediction"), "predicted_rupture_strain": ("rupture_strain", "prediction")}
"""Row keys of the ``predict`` stage taken from a task's values: key → (task, value name)."""


def predict(ctx: SampleContext) -> None:
    """The installed models (:meth:`Registry.default`: ``GLASSFRAC_MODELS`` or the shipped ones) on the
    relaxed sample, before the tests listed after this stage see it: ``prediction/`` (``prediction.json``
    with the time it was made, ``structure.extxyz``, ``arrays.npz``, one figure per task), the keys of
    :data:`PREDICTED_KEYS` and ``predicted_rupture_x``/``_y`` (Å), and the per-atom ``softness`` and
    ``first_break_probability`` of the first-break model."""
    registry = Registry.default()
    require_models(registry)
    prediction = predict_structure(ctx.structure, registry, source=ctx.spec.sample_id)
    path_of = lambda name: ctx.path(f"prediction/{name}")  # noqa: E731
    write_prediction_arrays(prediction, path_of)
    figures = write_prediction_figures(prediction, path_of) if ctx.drawing else {}
    record = {**prediction.to_dict(), "predicted_at": now()}
    with atomic_open(path_of("prediction.json")) as handle:
        json.dump(to_jsonable(record), handle, indent=1)
    ctx.data["prediction"] = record
    tasks = prediction.tasks
    for key, (task, name) in PREDICTED_KEYS.items():
        if task in tasks:
            ctx.keys[key] = tasks[task].values[name]
    if "rupture_location" in tasks:
        ctx.keys["predicted_rupture_x"], ctx.keys["predicted_rupture_y"] = tasks["rupture_location"].values["location"]
    if "first_break" in tasks:
        ctx.arrays.update({name: tasks["first_break"].arrays[name] for name in ("softness", "first_break_probability")
                           if name in tasks["first_break"].arrays})
    for task, path in figures.items():
        ctx.add_figure(f"prediction: {task} ({tasks[task].card.name})", f"prediction/{Path(path).name}")


def tension(ctx: SampleContext) -> None:
    """FC22 tension to fracture; rupture strain/location, crack and per-atom classes."""
    result = tension_test(ctx.structure, ctx.potential(), ctx.aqs_settings("tension", TENSION_DEFAULTS))
    labels = tension_labels(result)
    record = save_run(result, labels, ctx.path("tension"), figures=ctx.drawing)
    first = labels.rupture_location
    location = [None, None, None] if first is None else first.tolist()
    ctx.keys.update(
        rupture_strain=labels.rupture_strain, rupture_x=location[0], rupture_y=location[1],
        tension_peak_stress=labels.peak_stress, tension_modulus=labels.modulus,
        fractured=bool(labels.fractured), n_broken_bonds=labels.n_broken_bonds,
        tension_events=len(result.events),
    )
    ctx.arrays.update(labels.arrays())
    ctx.data["tension"] = _test_record(result, record)
    ctx.add_figure("tension: stress–strain", "tension/stress_strain.png")
    crack = labels.crack_atoms
    _network_figure(ctx, "tension/crack.png", f"tension along x: {len(crack)} crack atoms",
                    "tension: crack atoms and first bond break",
                    atoms=[("crack atoms", ctx.structure.positions[crack], "tab:red")],
                    points=[("first break", np.zeros((0, 2)) if first is None else np.reshape(first[:2], (1, 2)),
                             False)])


def shear(ctx: SampleContext) -> None:
    """LISTI25 pure shear; the first events (strain, drop, location) and their D²min fields."""
    result = shear_test(ctx.structure, ctx.potential(), ctx.aqs_settings("shear", SHEAR_DEFAULTS))
    labels = shear_labels(result)
    record = save_run(result, labels, ctx.path("shear"), figures=ctx.drawing)
    events = record["events"]
    ctx.keys.update(shear_peak_stress=labels.peak_stress, shear_modulus=labels.modulus,
                    shear_events=len(events), shear_event1_strain=events[0]["strain"] if events else None)
    entry = _test_record(result, record)
    if labels.events:
        entry["d2min_file"] = ctx.write_array("shear/d2min.npy", np.stack([e.d2min for e in labels.events]))
    ctx.data["shear"] = entry
    ctx.add_figure("shear: stress–strain", "shear/stress_strain.png")
    _network_figure(ctx, "shear/events.png", f"pure shear: {len(events)} events", "shear: event locations",
                    points=[("events", event_sites(events), True)])


def _probe_settings(ctx: SampleContext) -> ProbeSettings | None:
    """The probe stage's settings for this sample, or None if it is not probed (no probe stage, or a replica
    beyond ``[tests.probe] samples``)."""
    if "probe" not in ctx.plan.stages(ctx.spec):
        return None
    options = dict(ctx.plan.test_settings.get("probe", {}))
    limit = options.pop("samples", None)
    if limit is not None and ctx.spec.replica >= limit:
        return None
    options["load_angle"] = float(np.radians(options.get("load_angle", 0.0)))  # the config's degrees, as the CLI's
    return ProbeSettings(**options)


def probe(ctx: SampleContext) -> None:
    """LISTI25 local probing: threshold map Δτ (N/m) on a grid and, after a shear test, the
    map's goodness C for each shear event (1: the event is where Δτ is lowest, 0: random)."""
    settings = _probe_settings(ctx)
    if settings is None:
        return
    start = time.perf_counter()
    result = probe_map(ctx.structure, ctx.potential(), settings)
    seconds = time.perf_counter() - start
    threshold = np.asarray(result["threshold"])
    shear_events = ctx.data.get("shear", {}).get("events", [])
    events = event_sites(shear_events)
    entry = {"settings": asdict(settings), "unit": result["unit"], "windows": int(threshold.size),
             "seconds": round(seconds, 3), "threshold_min": float(threshold.min()),
             "threshold_mean": float(threshold.mean()), "threshold_max": float(threshold.max())}
    ctx.keys.update(probe_threshold_mean=entry["threshold_mean"], probe_threshold_min=entry["threshold_min"])
    if "shear" in ctx.data:  # the shear test ran: its events (maybe none) go with the map
        with atomic_open(ctx.path("events.json")) as handle:
            json.dump({"events": to_jsonable(shear_events)}, handle, indent=1)
    if len(events):
        c = goodness(threshold, result["centres"], events, ctx.structure.box)
        entry["goodness"] = c.tolist()
        ctx.keys.update(probe_goodness_event1=float(c[0]), probe_goodness_mean=float(c.mean()))
    write(ctx.structure, ctx.path("structure.xyz"))
    ThresholdMap.from_result(result, settings, sample_id=ctx.spec.sample_id, potential=ctx.potential().name,
                             goodness=entry.get("goodness"), seconds=seconds).save(ctx.path("map.npz"))
    ctx.data["probe"] = entry
    if ctx.drawing:
        title = f"Δτ on a {settings.grid}×{settings.grid} grid" + (
            f"; goodness of event 1: {entry['goodness'][0]:.2f}" if len(events) else "")
        plot_threshold_map(threshold, ctx.structure.box, events if len(events) else None, ctx.path("probe/map.png"),
                           title=title)
        ctx.add_figure("probe: threshold map Δτ (red: weak) with the shear events", "probe/map.png")


STAGES = {"generate": generate, "relax": relax, "predict": predict, "tension": tension, "shear": shear, "probe": probe}
"""Built-in stages by name (module docstring)."""


def _test_record(result, record: dict) -> dict:
    curve = result.curve.arrays()
    return {"labels": {k: v for k, v in record.items() if k != "events"}, "events": record["events"],
            "curve": {k: curve[k] for k in ("strain", "stress", "energy")}, "stress_unit": result.stress_unit}


# -- the row ---------------------------------------------------------------------------------
def _row(ctx: SampleContext, timings: dict, started: str, seconds: float):
    spec, s = ctx.spec, ctx.structure
    keys = {"campaign": ctx.plan.campaign, **spec.keys(), "dim": s.dim, "seconds": round(seconds, 3)}
    keys.update(ctx.keys)
    keys = clean_keys(keys)
    check_keys(keys)  # here, so a label the store refuses fails this sample, not the runner
    arrays = {name: np.asarray(v) for name, v in s.arrays.items() if name != "mass"}
    arrays.update(ctx.arrays)
    data = {k: v for k, v in ctx.data.items()}
    data["arrays"] = arrays
    if s.bonds is not None:
        data["bonds"] = np.column_stack([s.bonds, s.bond_images]).astype(np.int64)
    data["figures"] = ctx.figures
    data["files"] = file_manifest(ctx.directory)
    data["units"] = UNITS
    data["origin"] = np.concatenate([s.box.origin, np.zeros(3 - s.dim)]).tolist()  # box corner, Å: ASE rows drop it
    data["provenance"] = {
        **ctx.plan.provenance,
        "seeds": {"campaign": ctx.plan.seed, "index": spec.index, "sample": spec.seed},
        "timings": timings, "started": started, "worker": f"{socket.gethostname()}:{os.getpid()}",
        "threads": ctx.plan.threads,
    }
    data = {k: (v if k in ("arrays", "bonds") else _json_safe(v, to_jsonable)) for k, v in data.items()}
    atoms = s.to_ase()
    return atoms, keys, data


def _json_safe(value, to_jsonable):
    """Lists, dicts and scalars as JSON types; numpy arrays kept (the store encodes them)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v, to_jsonable) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, to_jsonable) for v in value]
    return to_jsonable(value)


def clean_keys(keys: dict) -> dict:
    """Key-value pairs the store accepts: plain bool/int/float/str, no None or non-finite floats."""
    out = {}
    for key, value in keys.items():
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            continue
        if not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"label {key!r} must be a scalar, got {type(value).__name__}")
        out[key] = value
    return out


def check_keys(keys: dict) -> None:
    """Refuse labels that the ASE store would refuse on insert (reserved names, strings that read as
    numbers); ValueError names the label."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # keys that are also chemical formulas: allowed
            ase.db.core.check(keys)
    except ValueError as exc:
        raise ValueError(f"the store refuses these labels: {exc}") from None


def file_manifest(directory: Path) -> list:
    """``{"path", "bytes", "sha256"}`` of every file under ``directory`` (sorted by path)."""
    out = []
    for path in sorted(Path(directory).rglob("*")):
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out.append({"path": path.relative_to(directory).as_posix(), "bytes": path.stat().st_size,
                        "sha256": digest})
    return out
