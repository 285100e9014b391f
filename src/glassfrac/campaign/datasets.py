"""Dataset folders that grow by sample index and merge (``datasets/NAME/`` in the repository).

A dataset may take many CPU-hours, so it is made in parts, each committed when finished::

    datasets/NAME/card.json                    what the dataset is (written by merge_parts)
    datasets/NAME/parts/part-i000000-000100.npz   finished samples with index in [0, 100)
    datasets/NAME/dataset.npz                  the merged parts: the file the models train from

A part (:func:`export_part`) is a campaign export (:mod:`glassfrac.campaign.export`, concatenated form,
compressed) of the complete samples whose index lies in its range, with the range, the sample indices,
the failed ones and the campaign definition in its ``metadata``; a range with samples still to run is
refused. Sample ``i`` of a campaign is fixed by the campaign seed and ``i`` (:mod:`glassfrac.campaign.samples`),
so parts exported from campaigns with the same definition but larger ``count`` extend one another.

:func:`merge_parts` joins the parts of a folder in index order into ``dataset.npz`` and writes
``card.json``. It refuses parts whose ranges overlap and parts that disagree on what a sample is or how it
is labelled: the campaign definitions must be equal except for the campaign name and the sample counts
(tests, their settings, which include the labels rule, potentials, relaxation, seed and sample groups);
counts may differ only where this leaves every index meaning the same sample: one sample group with a
``mu2_range`` or a single disorder value.
"""

import json
import re
from pathlib import Path

import numpy as np

from glassfrac.campaign.config import SampleGroup
from glassfrac.campaign.export import FORMAT, concatenate, sample_arrays, split
from glassfrac.campaign.store import CampaignStore
from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_open
from glassfrac.core.outputs import check_file
from glassfrac.core.provenance import now
from glassfrac.learn.exports import read_npz

PART = re.compile(r"^part-i(\d{6,})-(\d{6,})\.npz$")
"""Name of a part file: ``part-iSTART-STOP.npz``, samples with START <= index < STOP."""
CARD_FORMAT = "glassfrac-dataset-card-1"


def part_name(start: int, stop: int) -> str:
    """File name of the part holding the samples with ``start`` <= index < ``stop``."""
    return f"part-i{start:06d}-{stop:06d}.npz"


def n_samples(definition: dict) -> int:
    """How many samples a campaign definition makes."""
    return sum(SampleGroup(**group).n_samples for group in definition["samples"])


def export_part(store: CampaignStore, folder, start: int, stop: int, overwrite: bool = False) -> dict:
    """Write the complete samples of ``store`` with ``start`` <= index < ``stop`` to
    ``folder/parts/part-iSTART-STOP.npz``; ``stop`` beyond the campaign's last sample is cut to it. Samples
    still pending in the range are refused (run the campaign first); failed ones are listed in the part."""
    if not 0 <= start < stop:
        raise InputError(f"a part needs 0 <= start < stop, got {start}, {stop}")
    definition = store.definition()
    stop = min(stop, n_samples(definition))
    if start >= stop:
        raise InputError(f"the campaign has {n_samples(definition)} samples: none from index {start}", store.directory)
    path = Path(folder) / "parts" / part_name(start, stop)
    check_file(path, overwrite)
    rows = [r for r in store.rows() if start <= r.index < stop]
    done = {r.index for r in rows}
    failed = sorted(int(f["index"]) for f in store.failures().values()
                    if isinstance(f, dict) and isinstance(f.get("index"), int) and start <= f["index"] < stop)
    pending = sorted(set(range(start, stop)) - done - set(failed))
    if pending:
        raise InputError(f"samples {pending[:5]}{' ...' if len(pending) > 5 else ''} of [{start}, {stop}) are not "
                         f"finished ({len(pending)} pending); run the campaign first", store.directory)
    if not rows:
        raise InputError(f"no complete sample in [{start}, {stop})", store.directory)
    samples = [sample_arrays(r, store.sample_dir(r.sample_id)) for r in rows]
    metadata = {"format": FORMAT, "campaign": store.name, "definition": definition,
                "units": rows[0].data.get("units", {}), "n_samples": len(rows), "exported": now(),
                "part": {"start": start, "stop": stop, "indices": sorted(done), "failed": failed}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as handle:
        np.savez_compressed(handle, format=np.array(FORMAT), metadata=np.array(json.dumps(metadata, default=str)),
                            **concatenate(samples))
    return {"part": str(path), "start": start, "stop": stop, "samples": len(rows), "failed": failed,
            "atoms": int(sum(len(s["positions"]) for s in samples))}


def read_part(path, format: str = FORMAT) -> tuple[dict, dict]:
    """(metadata, arrays) of a part file, checked: its name, format tag (a campaign export's, or ``format``),
    range and indices."""
    path = Path(path)
    match = PART.match(path.name)
    if match is None:
        raise InputError("not a dataset part: expected a name part-iSTART-STOP.npz", path)
    arrays = read_npz(path)
    if str(arrays.get("format", "")) != format or "metadata" not in arrays or "atom_start" not in arrays:
        raise InputError(f"not a dataset part: expected a concatenated export ({format})", path)
    try:
        metadata = json.loads(str(arrays["metadata"]))
        part, definition = metadata["part"], metadata["definition"]
        start, stop, indices = int(part["start"]), int(part["stop"]), [int(i) for i in part["indices"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"the part's metadata lacks its range or campaign definition ({exc})", path) from None
    if (start, stop) != (int(match[1]), int(match[2])):
        raise InputError(f"the file name says [{match[1]}, {match[2]}) but the part holds [{start}, {stop})", path)
    held = np.asarray(arrays["index"]).tolist()
    if held != indices or any(not start <= i < stop for i in held) or not isinstance(definition, dict):
        raise InputError(f"the part's samples {held[:5]} do not match its range [{start}, {stop})", path)
    return metadata, arrays


def _layout(definition: dict) -> dict:
    """What must agree between parts: the definition without the name, and without the sample counts where
    they do not move indices (module docstring)."""
    out = {k: v for k, v in definition.items() if k != "name"}
    groups = definition["samples"]
    growable = len(groups) == 1 and (groups[0].get("mu2_range") is not None
                                     or len(groups[0].get("mu2") or groups[0].get("sigma_factor") or [0]) == 1)
    if growable:
        out["samples"] = [{k: v for k, v in groups[0].items() if k != "count"}]
    return out


def parts_to_merge(folder: Path, read, overwrite: bool) -> tuple:
    """The parts of ``folder/parts`` as (metadata, arrays, path) in index order (``read(path)`` gives metadata
    with its ``part`` range, and arrays), and the merged file and card paths, checked for writing; parts whose
    ranges overlap are refused."""
    paths = sorted((folder / "parts").glob("*.npz"))
    if not paths:
        raise InputError("no parts (parts/part-iSTART-STOP.npz) to merge", folder)
    output, card_path = folder / "dataset.npz", folder / "card.json"
    for path in (output, card_path):
        check_file(path, overwrite)
    parts = sorted((read(p) + (p,) for p in paths), key=lambda m: m[0]["part"]["start"])
    for (meta, _, path), (next_meta, _, next_path) in zip(parts, parts[1:], strict=False):
        if next_meta["part"]["start"] < meta["part"]["stop"]:
            raise InputError(f"parts overlap: {path.name} and {next_path.name} both cover index "
                             f"{next_meta['part']['start']}", folder)
    return parts, output, card_path


def merge_parts(folder, overwrite: bool = True) -> dict:
    """Merge ``folder/parts/*.npz`` into ``folder/dataset.npz`` and write ``folder/card.json`` (module
    docstring). Both are outputs of this function: replaced on a rerun unless ``overwrite`` is false."""
    folder = Path(folder)
    parts, output, card_path = parts_to_merge(folder, read_part, overwrite)
    first_meta, _, first_path = parts[0]
    reference = _layout(first_meta["definition"])
    for meta, _, path in parts[1:]:
        layout = _layout(meta["definition"])
        if layout != reference:
            keys = sorted(k for k in set(layout) | set(reference) if layout.get(k) != reference.get(k))
            raise InputError(f"{path.name} was made by another campaign definition than {first_path.name} (differs "
                             f"in {', '.join(keys)}: other labels rule, settings or samples); parts of one dataset "
                             "must share it", folder)
    samples = [s for _, arrays, _ in parts for s in split(arrays)]
    metadata = {**first_meta, "n_samples": len(samples), "exported": now(),
                "campaigns": sorted({m["campaign"] for m, _, _ in parts}),
                "parts": [{"file": p.name, **m["part"]} for m, _, p in parts]}
    metadata.pop("part", None)
    with atomic_open(output, "wb") as handle:
        np.savez_compressed(handle, format=np.array(FORMAT), metadata=np.array(json.dumps(metadata, default=str)),
                            **concatenate(samples))
    card = _card(folder, metadata, samples)
    with atomic_open(card_path) as handle:
        json.dump(card, handle, indent=1, default=str)
    return {"dataset": str(output), "card": str(card_path), "parts": len(parts), "samples": len(samples),
            "atoms": card["atoms"], "indices": card["indices"]}


def _card(folder: Path, metadata: dict, samples: list) -> dict:
    """The dataset card: what the samples are, how they are labelled, their counts and ranges."""
    definition = metadata["definition"]
    atoms = [len(s["positions"]) for s in samples]
    mu2 = np.concatenate([s["mu2"] for s in samples])
    indices = sorted(int(s["index"][0]) for s in samples)
    labels = {}
    for name in ("first_break", "bond_changed", "crack"):
        values = [s[name] for s in samples if name in s]
        if values:
            v = np.concatenate(values)
            labels[name] = {"labelled_atoms": int(np.sum(v >= 0)), "positive": int(np.sum(v == 1)),
                            "samples": int(sum(np.any(x >= 0) for x in values))}
    return {"format": CARD_FORMAT, "name": folder.name, "samples": len(samples), "atoms": int(sum(atoms)),
            "atoms_per_sample": [int(min(atoms)), int(max(atoms))],
            "mu2": [float(np.nanmin(mu2)), float(np.nanmax(mu2))] if np.isfinite(mu2).any() else None,
            "indices": [indices[0], indices[-1] + 1], "missing": sorted(set(range(indices[0], indices[-1] + 1))
                                                                        - set(indices)),
            "rupture_strain_known": int(sum(np.isfinite(s["rupture_strain"]).any() for s in samples)),
            "labels": labels, "tests": definition.get("tests"), "test_settings": definition.get("test_settings"),
            "potentials": definition.get("potentials"), "relax": definition.get("relax"),
            "sample_groups": definition.get("samples"), "seed": definition.get("seed"),
            "campaigns": metadata["campaigns"], "parts": metadata["parts"], "units": metadata.get("units", {}),
            "merged": metadata["exported"],
            "rebuild": f"glassfrac dataset merge {folder}",
            "extend": f"glassfrac dataset part CAMPAIGN_DIR {folder} --start N --stop M"}
