"""The amorphous-alumina softness dataset (DU21): labelled Al that grow by sample index and merge.

Sample ``i`` of a config (:mod:`glassfrac.campaign.oxide_config`) is fixed by the config and ``i``: a melt-quench
(``[quench]``) seeded by ``md.seed + i`` at the pressure ``pressures_GPa[i % len(pressures_GPa)]`` (with the
split of :func:`glassfrac.learn.recipes.role`, every fifth sample a test one, and 3 pressures, the test samples
cycle through the pressures too), then the 300 K trajectory, p_hop labels and inherent structures of
``[softness]`` (:func:`glassfrac.learn.oxide_softness.hop_dataset`, its negatives drawn with seed
``softness.seed + i``), and the DU21 structure functions (126 per Al) of every labelled Al.

A run folder (``glassfrac oxide samples``) keeps one file per finished sample, ``sample-iINDEX.npz``, written
atomically, so a killed run restarts where it stopped; ``oxide-samples.json`` holds the config. A dataset folder
then has the same layout as the campaign datasets (:mod:`glassfrac.campaign.datasets`): ``parts/part-iSTART-STOP.npz``
(:func:`export_part`), merged by :func:`merge_parts` into ``dataset.npz`` and ``card.json``. Runs and parts made
from another definition (:func:`definition`: potential, MD, quench and softness settings) are refused.

Arrays of a sample (and, concatenated, of a part and of the dataset; ``label_start`` / ``atom_start`` are the
offsets of each sample's rows): ``index``, ``seed``, ``pressure_GPa``, ``density_g_cm3``; the quenched sample
(``positions`` Å wrapped into the cell, ``species``, ``cell`` Å, ``origin`` Å); per labelled Al at one label
time: ``label_time_ps``, ``label_atom`` (index in the sample), ``label`` (1 rearranging, 0 not), ``features``
(float32, the DU21 descriptor of that Al in the inherent structure at that time, radial block first).
"""

import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np

from glassfrac.campaign.datasets import part_name, parts_to_merge, read_part
from glassfrac.campaign.oxide_config import OxideConfig
from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_open
from glassfrac.core.outputs import check_file
from glassfrac.core.provenance import now
from glassfrac.core.threads import set_threads
from glassfrac.generate.quench import density, melt_quench
from glassfrac.learn.exports import read_npz
from glassfrac.learn.oxide_softness import LABEL, du21_softness_descriptor, hop_dataset, hop_trajectory
from glassfrac.structure import Box, Structure

FORMAT = "glassfrac-oxide-dataset-1"
RUN_FILE = "oxide-samples.json"
"""The run folder's record of its config (a folder holding it was made by ``glassfrac oxide samples``)."""
PER_SAMPLE = ("index", "seed", "pressure_GPa", "density_g_cm3")
PER_ATOM = ("positions", "species")
PER_LABEL = ("label_time_ps", "label_atom", "label", "features")


def sample_name(index: int) -> str:
    """File name of sample ``index`` in a run folder."""
    return f"sample-i{index:06d}.npz"


def definition(config: OxideConfig) -> dict:
    """What fixes the samples and their labels: the config's potential, md, quench and softness tables (JSON)."""
    return {k: v for k, v in config.to_dict().items() if k in ("potential", "md", "quench", "softness")}


def sample_pressure(config: OxideConfig, index: int) -> float:
    """Quench pressure (GPa) of sample ``index``."""
    pressures = config.pressures_GPa
    return float(pressures[index % len(pressures)])


def label_sample(config: OxideConfig, index: int) -> dict:
    """Quench, run and label sample ``index`` (module docstring): its arrays, and CPU seconds per stage."""
    seed = config.md.seed + index
    md = replace(config.md, seed=seed)
    pressure = sample_pressure(config, index)
    settings = replace(config.softness, seed=config.softness.seed + index)
    cpu = {"start": time.process_time()}
    quenched = melt_quench(pressure, config.quench, config.potential, md).structure
    cpu["quench"] = time.process_time()
    trajectory = hop_trajectory(quenched, settings, config.potential, md)
    cpu["trajectory"] = time.process_time()
    name = f"s{index}"
    try:
        dataset, counts = hop_dataset({name: trajectory}, settings, None, config.potential, md)
        snapshots = dataset.structures
    except InputError:  # no labelled time (no Al rearranged): a sample without labels
        snapshots, counts = [], [{"sample": name, "positive": 0, "negative": 0}]
    cpu["labels"] = time.process_time()
    arrays = sample_arrays(index, seed, pressure, quenched, snapshots, settings.species)
    cpu["features"] = time.process_time()
    stages = ("quench", "trajectory", "labels", "features")
    seconds = {k: round(cpu[k] - cpu[p], 1) for p, k in zip(("start", *stages), stages, strict=False)}
    summary = {k: v for k, v in counts[0].items() if k not in ("sample", "group")}
    return {"arrays": arrays, "summary": {"index": index, "cpu_seconds": seconds, **summary}}


def open_run(folder, config: OxideConfig) -> Path:
    """The run folder ``folder`` for ``config``: made (with its :data:`RUN_FILE`) if new; an existing one must
    hold samples of the same definition (an :class:`InputError` otherwise, and for a folder not made here that
    is not empty)."""
    folder = Path(folder)
    record = folder / RUN_FILE
    wanted = definition(config)
    if record.is_file():
        held = json.loads(record.read_text())["definition"]
        if held != wanted:
            keys = sorted(k for k in set(held) | set(wanted) if held.get(k) != wanted.get(k))
            raise InputError(f"the run folder holds samples of another config (differs in {', '.join(keys)}); "
                             "use a new folder", folder)
        return folder
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError("not a run folder of glassfrac oxide samples (no oxide-samples.json) and not empty", folder)
    with atomic_open(record) as handle:
        json.dump({"format": FORMAT, "definition": wanted, "created": now()}, handle, indent=1)
    return folder


def sample_arrays(index: int, seed: int, pressure: float, quenched: Structure, snapshots: list,
                  species=("Al",)) -> dict:
    """The arrays of one sample (module docstring): the quenched structure and, for every labelled ``species``
    atom of the labelled ``snapshots`` (structures with the :data:`~glassfrac.learn.oxide_softness.LABEL` array
    and ``info["time_ps"]``), its label time, index, label and DU21 features in that snapshot."""
    descriptor = du21_softness_descriptor()
    times, atoms, labels, features = [], [], [], []
    for snap in snapshots:
        label = np.asarray(snap.arrays[LABEL])
        mask = (label >= 0) & np.isin(snap.species, list(species))
        times.append(np.full(mask.sum(), snap.info["time_ps"], float))
        atoms.append(np.flatnonzero(mask))
        labels.append(label[mask])
        features.append(descriptor.transform_one(snap)[mask])
    n_features = int(descriptor.n_features_out_)
    quenched = quenched.wrapped()
    box = quenched.box
    return {
        "index": np.array([index]), "seed": np.array([seed]), "pressure_GPa": np.array([pressure], float),
        "density_g_cm3": np.array([density(quenched)]),
        "positions": quenched.positions.astype(float), "species": quenched.species.astype(str),
        "cell": box.cell[None].astype(float), "origin": np.asarray(box.origin, float)[None],
        "label_time_ps": np.concatenate([np.zeros(0), *times]),
        "label_atom": np.concatenate([np.zeros(0, int), *atoms]).astype(np.int32),
        "label": np.concatenate([np.zeros(0, np.int8), *labels]).astype(np.int8),
        "features": np.concatenate([np.zeros((0, n_features)), *features]).astype(np.float32),
    }


def save_sample(folder, arrays: dict, summary: dict) -> Path:
    """Write one sample's arrays and summary (JSON) into the run folder ``folder``, atomically."""
    path = Path(folder) / sample_name(int(arrays["index"][0]))
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, summary=np.array(json.dumps(summary)), **arrays)
    return path


def _label_and_save(config: OxideConfig, folder: Path, index: int, threads: int) -> dict:
    """Label sample ``index`` into ``folder`` (a worker process's job): its summary."""
    set_threads(threads)
    result = label_sample(config, index)
    save_sample(folder, result["arrays"], result["summary"])
    return result["summary"]


def run_samples(config: OxideConfig, folder, start: int, stop: int, workers: int = 1, threads: int = 1,
                progress=None) -> dict:
    """Label samples ``start <= index < stop`` into the run folder, ``workers`` processes at a time with
    ``threads`` threads each; a sample's file is written when it is done and samples already there are kept
    (a killed run restarts where it stopped). ``progress(summary)`` is called after each sample."""
    if not 0 <= start < stop:
        raise InputError(f"need 0 <= start < stop, got {start}, {stop}")
    folder = open_run(folder, config)
    pending = [i for i in range(start, stop) if not (folder / sample_name(i)).is_file()]
    ran = []
    if workers <= 1:
        for index in pending:
            ran.append(_label_and_save(config, folder, index, threads))
            if progress is not None:
                progress(ran[-1])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            jobs = [pool.submit(_label_and_save, config, folder, index, threads) for index in pending]
            for job in as_completed(jobs):
                ran.append(job.result())
                if progress is not None:
                    progress(ran[-1])
    ran.sort(key=lambda x: x["index"])
    return {"folder": str(folder), "ran": len(ran), "kept": stop - start - len(pending),
            "labels": int(sum(x["positive"] + x["negative"] for x in ran)), "samples": ran}


def _concatenate(samples: list) -> dict:
    """Per-sample arrays joined, with the offsets ``atom_start`` and ``label_start``."""
    out = {k: np.concatenate([s[k] for s in samples]) for k in (*PER_SAMPLE, *PER_ATOM, *PER_LABEL, "cell", "origin")}
    for name, key in (("atom_start", "positions"), ("label_start", "label")):
        out[name] = np.concatenate([[0], np.cumsum([len(s[key]) for s in samples])]).astype(np.int64)
    out["summary"] = np.array(json.dumps([json.loads(str(s["summary"])) for s in samples]))
    return out


def split_samples(arrays: dict) -> list:
    """The per-sample arrays of a part or dataset file (inverse of the concatenation)."""
    out = []
    summaries = json.loads(str(arrays["summary"]))
    for k in range(len(arrays["index"])):
        a0, a1 = arrays["atom_start"][k], arrays["atom_start"][k + 1]
        l0, l1 = arrays["label_start"][k], arrays["label_start"][k + 1]
        sample = {key: arrays[key][k:k + 1] for key in (*PER_SAMPLE, "cell", "origin")}
        sample.update({key: arrays[key][a0:a1] for key in PER_ATOM})
        sample.update({key: arrays[key][l0:l1] for key in PER_LABEL})
        sample["summary"] = np.array(json.dumps(summaries[k]))
        out.append(sample)
    return out


def _write(path: Path, metadata: dict, samples: list) -> None:
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, format=np.array(FORMAT), metadata=np.array(json.dumps(metadata)),
                            **_concatenate(samples))


def export_part(run, folder, start: int, stop: int, overwrite: bool = False) -> dict:
    """Write the samples of the run folder ``run`` with ``start`` <= index < ``stop`` to
    ``folder/parts/part-iSTART-STOP.npz``; every index of the range must be finished."""
    run = Path(run)
    if not (run / RUN_FILE).is_file():
        raise InputError(f"not a run folder of glassfrac oxide samples (no {RUN_FILE})", run)
    if not 0 <= start < stop:
        raise InputError(f"a part needs 0 <= start < stop, got {start}, {stop}")
    path = Path(folder) / "parts" / part_name(start, stop)
    check_file(path, overwrite)
    missing = [i for i in range(start, stop) if not (run / sample_name(i)).is_file()]
    if missing:
        raise InputError(f"samples {missing[:5]}{' ...' if len(missing) > 5 else ''} of [{start}, {stop}) are not "
                         f"finished ({len(missing)}); run them first (glassfrac oxide samples)", run)
    samples = [_wrapped(read_npz(run / sample_name(i))) for i in range(start, stop)]
    record = json.loads((run / RUN_FILE).read_text())
    metadata = {"format": FORMAT, "definition": record["definition"], "n_samples": len(samples), "exported": now(),
                "part": {"start": start, "stop": stop, "indices": list(range(start, stop))}}
    _write(path, metadata, samples)
    return {"part": str(path), "start": start, "stop": stop, "samples": len(samples),
            "labels": int(sum(len(s["label"]) for s in samples))}


def _wrapped(sample: dict) -> dict:
    """The sample with its positions wrapped into its cell (run files of the first samples kept MD's unwrapped
    positions; features and labels do not depend on it)."""
    structure = Structure(sample["positions"], sample["species"], Box(sample["cell"][0], True, sample["origin"][0]))
    return {**sample, "positions": structure.wrapped().positions}


def is_oxide_dataset(folder) -> bool:
    """Whether the dataset folder ``folder`` holds oxide parts (its first part's format)."""
    paths = sorted((Path(folder) / "parts").glob("*.npz"))
    return bool(paths) and str(read_npz(paths[0]).get("format", "")) == FORMAT


def merge_parts(folder, overwrite: bool = True) -> dict:
    """Merge ``folder/parts/*.npz`` into ``folder/dataset.npz`` and write ``folder/card.json``; parts must not
    overlap and must share one definition (module docstring)."""
    folder = Path(folder)
    parts, output, card_path = parts_to_merge(folder, lambda path: read_part(path, FORMAT), overwrite)
    reference = parts[0][0]["definition"]
    for meta, _, path in parts[1:]:
        if meta["definition"] != reference:
            raise InputError(f"{path.name} was made from another config than {parts[0][2].name}", folder)
    samples = [s for _, arrays, _ in parts for s in split_samples(arrays)]
    metadata = {"format": FORMAT, "definition": parts[0][0]["definition"], "n_samples": len(samples),
                "exported": now(), "parts": [{"file": p.name, **m["part"]} for m, _, p in parts]}
    _write(output, metadata, samples)
    card = _card(folder, metadata, samples)
    with atomic_open(card_path) as handle:
        json.dump(card, handle, indent=1)
    return {"dataset": str(output), "card": str(card_path), "parts": len(parts), "samples": len(samples),
            "labels": card["labels"]["labelled_al"], "indices": card["indices"]}


def _card(folder: Path, metadata: dict, samples: list) -> dict:
    """What the dataset is: samples, pressures, label counts, the config, and the CPU time behind it."""
    labels = np.concatenate([s["label"] for s in samples])
    summaries = [json.loads(str(s["summary"])) for s in samples]
    cpu = [sum(x["cpu_seconds"].values()) for x in summaries]
    indices = [int(s["index"][0]) for s in samples]
    atoms = [len(s["positions"]) for s in samples]
    pressures = np.concatenate([s["pressure_GPa"] for s in samples])
    return {"format": "glassfrac-oxide-dataset-card-1", "name": folder.name, "samples": len(samples),
            "atoms_per_sample": [min(atoms), max(atoms)], "indices": [min(indices), max(indices) + 1],
            "pressures_GPa": sorted({float(p) for p in pressures}),
            "density_g_cm3": [round(float(min(s["density_g_cm3"][0] for s in samples)), 4),
                              round(float(max(s["density_g_cm3"][0] for s in samples)), 4)],
            "labels": {"labelled_al": int(len(labels)), "rearranging": int(labels.sum()),
                       "non_rearranging": int(len(labels) - labels.sum()),
                       "samples_with_labels": int(sum(len(s["label"]) > 0 for s in samples)),
                       "rule": "DU21 p_hop (module glassfrac.learn.oxide_softness), balanced per label time"},
            "cpu_hours": round(sum(cpu) / 3600, 2), "cpu_seconds_per_sample": round(float(np.mean(cpu)), 1),
            "definition": metadata["definition"], "parts": metadata["parts"], "merged": metadata["exported"],
            "rebuild": f"glassfrac dataset merge {folder}",
            "extend": f"glassfrac oxide samples --config CONFIG --out RUN_DIR --start N --stop M; "
                      f"glassfrac dataset part RUN_DIR {folder} --start N --stop M"}
