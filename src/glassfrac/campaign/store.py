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
debris (temporary folders ``samples/.tmp-*``, the ``.*.part`` files of atomic writes, sample
folders ``samples/s<index>`` without a row; nothing else, so the user's files in a folder used
with ``--overwrite`` are safe), so after any kill a restart sees only complete samples. A folder
that is neither empty nor a campaign's is refused before the store is opened
(:func:`glassfrac.campaign.runner.run_campaign`, the rule of :mod:`glassfrac.core.outputs`).
Every query is restricted to the campaign's name (key ``campaign``), so several campaigns can
share one PostgreSQL database.

A PostgreSQL server that stops answering during a run (restarted, failed over, network cut) is
waited for: every query and write is tried again, with growing pauses, for up to ``wait``
seconds (:data:`STORE_WAIT` by default), then the run stops with a :class:`StoreUnavailable`
error. A write is one transaction, so an interrupted one leaves no row; before a write is tried
again the store looks whether the earlier try got through, so no sample is stored twice.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import ase.db
import numpy as np

from glassfrac.campaign.samples import extends
from glassfrac.core.config import TomlReader
from glassfrac.core.errors import GlassfracError, InputError
from glassfrac.core.files import atomic_open
from glassfrac.core.schema import Key, Schema
from glassfrac.structure import Structure

STORE_WAIT = 120.0
"""How long a run waits for a store server that stops answering before it stops, s."""

log = logging.getLogger(__name__)


class StoreUnavailable(GlassfracError):
    """The store's server did not answer within the waiting time (the run stops; a rerun resumes)."""


def public_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for printing)."""

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def transient_errors(url: str) -> tuple:
    """Exception types that mean "the server is not answering now" for the store at ``url``.

    PostgreSQL: connection refused or lost, server starting up or shutting down (psycopg2's
    ``OperationalError`` and ``InterfaceError``). SQLite: none (it waits for its own locks).
    """
    if url.startswith(("postgresql://", "postgres://")):
        import psycopg2  # optional dependency, present once connect() succeeded

        return (psycopg2.OperationalError, psycopg2.InterfaceError)
    return ()


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


RECORD = Schema((
    Key("fingerprint", str, help="SHA-256 of the definition"),
    Key("definition", dict, help="the parts of the config that define the samples",
        check=lambda d: None if isinstance(d.get("name"), str) and d["name"] else "a table with the campaign's name"),
))
"""``campaign.json``: the definition and fingerprint of the campaign in a folder."""


def read_record(path) -> dict:
    """The checked contents of the ``campaign.json`` at ``path`` (:data:`RECORD`); a file that
    is not JSON or lacks the definition is an InputError naming it."""
    try:
        raw = json.loads(Path(path).read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a campaign record (JSON with 'fingerprint' and 'definition'): {exc}", path) from None
    known = RECORD.names
    return RECORD.read(TomlReader(path), raw, extra=tuple(k for k in raw if k not in known)
                       if isinstance(raw, dict) else ())


class CampaignStore:
    """The database and folders of one campaign (module docstring)."""

    def __init__(self, directory, name: str, database: str | None = None, wait: float = STORE_WAIT):
        self.directory = Path(directory)
        self.name = name
        self.url = database or str(self.directory / "campaign.db")
        self.samples_dir = self.directory / "samples"
        self.failed_dir = self.directory / "failed"
        self.wait = float(wait)
        self.db = connect(self.url)
        self._transient = transient_errors(self.url)
        try:  # not waited for: a wrong address or password fails at once
            self.db.count(campaign=name)
        except Exception as exc:  # unreachable server, bad credentials, corrupt file
            raise GlassfracError(f"cannot open the store {public_url(self.url)}: {exc}".strip()) from None

    def _retry(self, action, what: str):
        """``action()``, tried again while the server does not answer, for up to ``self.wait`` s."""
        start = time.monotonic()
        delay, failed = 0.5, None
        while True:
            try:
                out = action()
            except self._transient as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                waited = time.monotonic() - start
                if waited >= self.wait:
                    raise StoreUnavailable(
                        f"the store {public_url(self.url)} did not answer for {waited:.0f} s while {what} "
                        f"({reason}); the run stopped: the samples stored so far are kept, and running "
                        f"the same command again resumes (waiting time: --store-wait)") from None
                if failed is None:
                    log.warning("store %s not answering while %s (%s); trying again for up to %.0f s",
                                public_url(self.url), what, reason, self.wait)
                failed = reason
                time.sleep(min(delay, max(0.0, self.wait - waited)))
                delay = min(2 * delay, 5.0)
                continue
            if failed is not None:
                log.warning("store %s answers again after %.1f s", public_url(self.url), time.monotonic() - start)
            return out

    @classmethod
    def open(cls, directory, database: str | None = None) -> "CampaignStore":
        """The store of an existing campaign directory (its name read from ``campaign.json``)."""
        path = Path(directory) / "campaign.json"
        if not path.is_file():
            raise InputError("not a campaign directory (no campaign.json)", directory)
        url = database or str(Path(directory) / "campaign.db")
        if not url.startswith(("postgresql://", "postgres://")) and not Path(url).is_file():
            raise InputError("the campaign's database is missing (opening it would make an empty one); give "
                             "it with --database", url)
        return cls(directory, read_record(path)["definition"]["name"], database)

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
        """Record the config's definition on the first run; later, accept the same one, or one that only adds
        samples after the last (:func:`~glassfrac.campaign.samples.extends`: a raised ``count``; recorded
        then), and refuse any other."""
        path = self.directory / "campaign.json"
        mine = {"fingerprint": config.fingerprint(), "definition": config.definition()}
        if path.is_file():
            theirs = read_record(path)
            if theirs["fingerprint"] == mine["fingerprint"]:
                return
            if not extends(theirs["definition"], json.loads(json.dumps(mine["definition"], default=str))):
                changed = sorted(k for k in mine["definition"]
                                 if mine["definition"][k] != theirs["definition"].get(k))
                raise InputError(f"{self.directory} holds campaign {theirs['definition']['name']!r} made with a "
                                 f"different definition (differs in: {', '.join(changed)}); use another "
                                 f"output directory", config.source)
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_open(self.directory / "config.toml") as handle:
            handle.write(config.text)
        with atomic_open(path) as handle:
            json.dump(mine, handle, indent=1, default=str)

    def definition(self) -> dict:
        """The stored definition (``campaign.json``) of the campaign in this directory."""
        return read_record(self.directory / "campaign.json")["definition"]

    # -- queries ----------------------------------------------------------------------------
    def done_ids(self) -> set:
        """Ids of the samples with a row."""
        return self._retry(lambda: {row.sample_id for row in self.db.select(campaign=self.name, include_data=False)},
                           "reading the sample ids")

    def count(self) -> int:
        return self._retry(lambda: self.db.count(campaign=self.name), "counting rows")

    def failures(self) -> dict:
        """``sample_id`` → failure record of the failed samples without a row."""
        out = {}
        if self.failed_dir.is_dir():
            for path in sorted(self.failed_dir.glob("*.json")):
                out[path.stem] = json.loads(path.read_text())
        return out

    def rows(self, include_data: bool = True):
        """The campaign's rows in sample order."""
        return self._retry(lambda: sorted(self.db.select(campaign=self.name, include_data=include_data),
                                          key=lambda r: r.index), "reading the rows")

    def sample_dir(self, sample_id: str) -> Path:
        return self.samples_dir / sample_id

    # -- changes ----------------------------------------------------------------------------
    def commit(self, result) -> None:
        """Move a finished sample's folder into place, then insert its row (module docstring)."""
        sid = result.spec.sample_id

        def stored() -> bool:
            return bool(self.db.count(campaign=self.name, sample_id=sid))

        if self._retry(stored, f"looking up sample {sid}"):
            shutil.rmtree(result.directory, ignore_errors=True)
            return
        final = self.sample_dir(sid)
        if final.exists():
            shutil.rmtree(final)
        os.replace(result.directory, final)

        def write() -> None:
            if not stored():  # a try whose answer was lost may have got through
                self.db.write(result.atoms, key_value_pairs=result.keys, data=result.data)

        # if this gives up, the folder has no row: debris that the next run removes and redoes
        self._retry(write, f"storing sample {sid}")
        with contextlib.suppress(FileNotFoundError):
            (self.failed_dir / f"{sid}.json").unlink()

    def record_failure(self, failure) -> None:
        """Write ``failed/<sample_id>.json`` and drop the failed sample's temporary folder."""
        with atomic_open(self.failed_dir / f"{failure.spec.sample_id}.json") as handle:
            json.dump(failure.record(), handle, indent=1)
        if failure.directory:
            shutil.rmtree(failure.directory, ignore_errors=True)

    def clean(self, sample_ids=None) -> dict:
        """Remove debris of killed runs (module docstring); returns what was removed, by kind. ``sample_ids``:
        the campaign's sample ids, if known: other folders in ``samples/`` are not its debris and stay."""
        removed = {"temporary": 0, "partial_files": 0, "orphan_samples": 0}
        if not self.directory.is_dir():
            return removed
        # only names glassfrac makes, where it makes them: a folder used with --overwrite may hold the user's files
        parts = [p for d in (self.directory, self.failed_dir, self.directory / "report", self.directory / "outcome")
                 if d.is_dir() for p in d.glob(".*.part")]
        if self.samples_dir.is_dir():
            parts += [p for d in self.samples_dir.iterdir() if d.is_dir() and re.fullmatch(r"s\d{6,}", d.name)
                      for p in d.rglob(".*.part")]
        for part in parts:
            if part.is_file() and re.fullmatch(r"\..+\.\w+\.part", part.name):  # atomic_path's .NAME.RANDOM.part
                part.unlink(missing_ok=True)
                removed["partial_files"] += 1
        if self.samples_dir.is_dir():
            done = self.done_ids()
            for path in self.samples_dir.iterdir():
                if path.name.startswith(".tmp-") and path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                    removed["temporary"] += 1
                elif (path.is_dir() and re.fullmatch(r"s\d{6,}", path.name) and path.name not in done
                      and (sample_ids is None or path.name in sample_ids)):
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
    """The stored (relaxed, undeformed) structure of a row, with its bonds and per-atom arrays, in the frame of
    its labels: the box corner the sample had (``data['origin']``; an ASE row keeps positions from a corner at 0)."""
    data = row.data
    atoms = row.toatoms()
    if "origin" in data:
        atoms.info["origin"] = np.asarray(data["origin"], float)
    structure = Structure.from_ase(atoms, dim=int(row.dim))
    if "bonds" in data:
        bonds = np.asarray(data["bonds"], dtype=np.int64)
        structure.set_bonds(bonds[:, :2], bonds[:, 2:])
    for name, values in data.get("arrays", {}).items():
        structure.set_array(name, values)
    return structure
