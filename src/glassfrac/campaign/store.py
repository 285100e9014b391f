"""Where a campaign keeps its samples: an ASE database plus one folder per sample.

Layout of a campaign directory::

    <out>/campaign.db          ASE database (SQLite) unless [output] database names another
                               (``postgresql://...``); one row per COMPLETE sample
    <out>/campaign.json        the campaign's definition and fingerprint (written once)
    <out>/config.toml          the config text of the first run
    <out>/samples/<sample_id>/ files too large for a row (snapshots, curves, figures, maps)
    <out>/failed/<sample_id>.json   error and traceback of a failed sample (no row)
    <out>/.lock                held (flock) by the one process running the campaign

Invariants: a sample folder is complete before the row that lists it exists (the runner
renames a finished temporary folder into place, then inserts the row in one transaction), and
a folder without a row is debris of a killed run. :meth:`CampaignStore.clean` removes such
debris (temporary folders ``samples/.tmp-*``, ``*.part`` files, folders without a row), so
after any kill a restart sees only complete samples. Every query is restricted to the
campaign's name (key ``campaign``), so several campaigns can share one PostgreSQL database.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import ase.db
import numpy as np

from glassfrac.core.errors import GlassfracError, InputError
from glassfrac.core.files import atomic_open
from glassfrac.structure import Structure


def public_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for printing)."""

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str):
    """An ASE database by file name (``.db``: SQLite) or ``postgresql://`` URL."""

    if url.startswith(("postgresql://", "postgres://")):
        try:
            import ase_db_backends.postgresql  # noqa: F401
            import psycopg2  # noqa: F401
        except ImportError:
            raise GlassfracError("a PostgreSQL store needs psycopg2 and ase-db-backends: "
                                 "pip install 'glassfrac[postgres]'") from None
        return ase.db.connect(url)
    Path(url).parent.mkdir(parents=True, exist_ok=True)
    # No ASE lock file: it is created with O_EXCL and never expires, so a writer killed by
    # SIGKILL would block every later run. SQLite locks the file itself, and the campaign
    # lock (``.lock``, flock, released by the OS) keeps a single writer.
    return ase.db.connect(url, use_lock_file=False)


class CampaignStore:
    """The database and folders of one campaign (module docstring)."""

    def __init__(self, directory, name: str, database: str | None = None):
        self.directory = Path(directory)
        self.name = name
        self.url = database or str(self.directory / "campaign.db")
        self.samples_dir = self.directory / "samples"
        self.failed_dir = self.directory / "failed"
        self.db = connect(self.url)
        try:
            self.db.count(campaign=name)
        except Exception as exc:  # unreachable server, bad credentials, corrupt file
            raise GlassfracError(f"cannot open the store {public_url(self.url)}: {exc}".strip()) from None

    @classmethod
    def open(cls, directory, database: str | None = None) -> "CampaignStore":
        """The store of an existing campaign directory (its name read from ``campaign.json``)."""
        path = Path(directory) / "campaign.json"
        if not path.is_file():
            raise InputError("not a campaign directory (no campaign.json)", directory)
        return cls(directory, json.loads(path.read_text())["definition"]["name"], database)

    # -- locking and definition -------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self):
        """Hold the campaign's lock file (released by the OS if the process dies)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.directory / ".lock", "a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise GlassfracError(f"{self.directory}: another process is running this campaign") from None
            yield self
        finally:
            handle.close()

    def check_definition(self, config) -> None:
        """Record the config's definition on the first run; refuse a different one later."""
        path = self.directory / "campaign.json"
        mine = {"fingerprint": config.fingerprint(), "definition": config.definition()}
        if path.is_file():
            theirs = json.loads(path.read_text())
            if theirs["fingerprint"] != mine["fingerprint"]:
                changed = sorted(k for k in mine["definition"]
                                 if mine["definition"][k] != theirs["definition"].get(k))
                raise InputError(f"{self.directory} holds campaign {theirs['definition']['name']!r} made with a "
                                 f"different definition (differs in: {', '.join(changed)}); use another "
                                 f"output directory", config.source)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_open(self.directory / "config.toml") as handle:
            handle.write(config.text)
        with atomic_open(path) as handle:
            json.dump(mine, handle, indent=1, default=str)

    def definition(self) -> dict:
        """The stored definition (``campaign.json``) of the campaign in this directory."""
        return json.loads((self.directory / "campaign.json").read_text())["definition"]

    # -- queries ----------------------------------------------------------------------------
    def done_ids(self) -> set:
        """Ids of the samples with a row."""
        return {row.sample_id for row in self.db.select(campaign=self.name, include_data=False)}

    def count(self) -> int:
        return self.db.count(campaign=self.name)

    def failures(self) -> dict:
        """``sample_id`` → failure record of the failed samples without a row."""
        out = {}
        if self.failed_dir.is_dir():
            for path in sorted(self.failed_dir.glob("*.json")):
                out[path.stem] = json.loads(path.read_text())
        return out

    def rows(self, include_data: bool = True):
        """The campaign's rows in sample order."""
        return sorted(self.db.select(campaign=self.name, include_data=include_data), key=lambda r: r.index)

    def sample_dir(self, sample_id: str) -> Path:
        return self.samples_dir / sample_id

    # -- changes ----------------------------------------------------------------------------
    def commit(self, result) -> None:
        """Move a finished sample's folder into place, then insert its row (module docstring)."""
        sid = result.spec.sample_id
        if self.db.count(campaign=self.name, sample_id=sid):
            shutil.rmtree(result.directory, ignore_errors=True)
            return
        final = self.sample_dir(sid)
        if final.exists():
            shutil.rmtree(final)
        os.replace(result.directory, final)
        self.db.write(result.atoms, key_value_pairs=result.keys, data=result.data)
        with contextlib.suppress(FileNotFoundError):
            (self.failed_dir / f"{sid}.json").unlink()

    def record_failure(self, failure) -> None:
        """Write ``failed/<sample_id>.json`` and drop the failed sample's temporary folder."""
        with atomic_open(self.failed_dir / f"{failure.spec.sample_id}.json") as handle:
            json.dump(failure.record(), handle, indent=1)
        if failure.directory:
            shutil.rmtree(failure.directory, ignore_errors=True)

    def clean(self) -> dict:
        """Remove debris of killed runs (module docstring); returns what was removed, by kind."""
        removed = {"temporary": 0, "partial_files": 0, "orphan_samples": 0}
        if not self.directory.is_dir():
            return removed
        for part in self.directory.rglob("*.part"):
            if part.name.startswith("."):
                part.unlink(missing_ok=True)
                removed["partial_files"] += 1
        if self.samples_dir.is_dir():
            done = self.done_ids()
            for path in self.samples_dir.iterdir():
                if path.name.startswith(".tmp-"):
                    shutil.rmtree(path, ignore_errors=True)
                    removed["temporary"] += 1
                elif path.is_dir() and path.name not in done:
                    shutil.rmtree(path, ignore_errors=True)
                    removed["orphan_samples"] += 1
        return removed

    # -- checks -----------------------------------------------------------------------------
    def verify(self) -> dict:
        """Re-read every row and every file it lists; sizes and SHA-256 must match.

        Returns counts and a list of problems (empty when the campaign is intact).
        """
        problems, ids, n_files = [], [], 0
        for row in self.rows():
            sid = row.sample_id
            ids.append(sid)
            try:
                structure = row_structure(row)
                if structure.n_atoms != row.natoms:
                    problems.append(f"{sid}: structure has {structure.n_atoms} atoms, row says {row.natoms}")
            except Exception as exc:  # a corrupt row is reported, not raised
                problems.append(f"{sid}: row unreadable: {exc}")
                continue
            for item in row.data.get("files", []):
                n_files += 1
                path = self.sample_dir(sid) / item["path"]
                if not path.is_file():
                    problems.append(f"{sid}: missing file {item['path']}")
                elif hashlib.sha256(path.read_bytes()).hexdigest() != item["sha256"]:
                    problems.append(f"{sid}: file {item['path']} differs from its recorded checksum")
        duplicates = sorted({s for s in ids if ids.count(s) > 1})
        problems += [f"{sid}: more than one row" for sid in duplicates]
        return {"rows": len(ids), "files": n_files, "problems": problems}


def row_structure(row) -> Structure:
    """The stored (relaxed, undeformed) structure of a row, with its bonds and per-atom arrays."""
    structure = Structure.from_ase(row.toatoms(), dim=int(row.dim))
    data = row.data
    if "bonds" in data:
        bonds = np.asarray(data["bonds"], dtype=np.int64)
        structure.set_bonds(bonds[:, :2], bonds[:, 2:])
    for name, values in data.get("arrays", {}).items():
        structure.set_array(name, values)
    return structure
