"""The output rule of every command: never delete or overwrite what glassfrac did not write.

A command never deletes or overwrites a file or folder it did not create, unless the user passes
``--overwrite``; and even then it deletes nothing: ``--overwrite`` only lets it replace the files
it writes. Every check happens before the work starts, so a refusal costs nothing.

Output files (``-o FILE``, ``--figure PNG``, files written beside them): :func:`check_file`. A file
that exists is replaced only with ``overwrite``. glassfrac keeps no record of the single files it
wrote, and a file's name or content cannot tell an earlier output from a file the user keeps
under that name, so *any* existing output file needs ``--overwrite``. A folder where a file is
to go is refused even then (it is never replaced by a file).

Output folders (``-o DIR``): :class:`OutputFolder`, made before the work.

- missing: created at the first file, with the marker :data:`MARKER` (JSON: the command, the
  glassfrac version, the time, and per command the files it wrote there);
- empty: adopted (the marker is written into it);
- marked (has :data:`MARKER`), or a folder of ours from before the marker (it has one of the
  ``recognise`` files, e.g. a campaign's ``campaign.json``): used. Files the marker lists for an
  earlier run of the same command are replaced, and those this run does not write again (stale
  outputs, such as event snapshots of an earlier test that the new labels no longer list) are
  removed at :meth:`OutputFolder.finish`. Files it does not list for this command (the user's, or
  another command's) are never removed, and replaced only with ``overwrite``;
- anything else that is not empty (the user's folder): refused (:class:`InputError`, exit 2)
  unless ``overwrite``; then our files are written beside the user's, same-named files are
  replaced, nothing else is touched, and the marker is added (so later runs remove only files
  that glassfrac wrote there);
- a file where the folder is to go: refused, even with ``overwrite``.

A run that is killed leaves a marker listing every file it had begun to write, so the next run
into the folder may replace them.
"""

import json
from pathlib import Path, PurePosixPath

from glassfrac.core import VERSION
from glassfrac.core.errors import InputError
from glassfrac.core.files import atomic_open
from glassfrac.core.provenance import now

MARKER = ".glassfrac-output.json"
"""Name of the marker file of an output folder made by glassfrac."""

HINT = "use another path, or --overwrite"


def _blocking_file(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` if it is not a folder (nothing can be written below it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_file(path, overwrite: bool = False, option: str = "--output") -> Path:
    """Refuse to write the output file ``path`` (module docstring), before any work; returns it as a Path.

    :class:`InputError` (naming the path and ``option``) if a folder is at ``path``, if a parent is a
    file, or if a file exists there and ``overwrite`` is false.
    """
    path = Path(path)
    blocker = _blocking_file(path)
    if blocker is not None:
        raise InputError(f"{option}: cannot write {path}: {blocker} is a file, not a folder", path)
    if path.is_dir():
        raise InputError(f"{option}: this is a folder; give a file name (a folder is never replaced by a file)",
                         path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise InputError(f"{option}: the file exists and glassfrac does not replace it; {HINT} to replace it",
                         path)
    return path


def check_files(paths, overwrite: bool = False, option: str = "--output") -> list:
    """:func:`check_file` of each path in ``paths`` (None entries are skipped); returns the Paths."""
    return [check_file(p, overwrite, option) for p in paths if p is not None]


def _read_marker(path: Path) -> dict:
    """The marker's record; an unreadable one counts as a marker that lists no files."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"runs": {}}
    if not isinstance(record, dict) or not isinstance(record.get("runs"), dict):
        return {"runs": {}}
    return record


class OutputFolder:
    """An output folder used by one run of ``command`` (module docstring).

    Construct it before the work: it checks the folder and raises :class:`InputError` when the rule
    refuses it, and writes nothing. Then get every output path with :meth:`file` (which creates the
    folder and its marker on first use) and call :meth:`finish` when the run is complete.

    ``names``: files (relative to the folder) the run will write, checked now so that a conflict is
    reported before the work; ``recognise``: names whose presence makes an unmarked folder one of
    ours (made by glassfrac before markers existed).
    """

    def __init__(self, path, command: str, overwrite: bool = False, names=(), recognise=(),
                 option: str = "--output"):
        self.path = Path(path)
        self.command = command
        self.overwrite = overwrite
        self.option = option
        self._written: list = []
        blocker = _blocking_file(self.path)
        if blocker is not None:
            raise InputError(f"{option}: cannot make the folder {self.path}: {blocker} is a file", self.path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{option}: this is a file, not a folder; use another path (a file is never "
                             f"replaced by a folder)", self.path)
        marker = self.path / MARKER
        self.record = _read_marker(marker) if marker.is_file() else None
        if not self.path.exists():
            self.state = "new"
        elif self.record is not None or any((self.path / name).exists() for name in recognise):
            self.state = "ours"
        elif not any(self.path.iterdir()):
            self.state = "empty"
        else:
            self.state = "foreign"
            if not overwrite:
                raise InputError(f"{option}: this folder is not empty and was not made by glassfrac; {HINT} "
                                 f"(which writes beside its files and deletes none of them)", self.path)
        run = (self.record or {}).get("runs", {}).get(command, {})
        self.previous = {str(n) for n in run.get("files", [])} if isinstance(run, dict) else set()
        self.check(names)

    # -- paths ----------------------------------------------------------------------------------
    def _relative(self, name) -> str:
        rel = PurePosixPath(Path(name).as_posix())
        if rel.is_absolute() or ".." in rel.parts or str(rel) in ("", ".", MARKER):
            raise ValueError(f"not a plain relative output name: {name!r}")
        return str(rel)

    def check(self, names) -> None:
        """Raise :class:`InputError` now if writing any of ``names`` (relative to the folder) would replace a
        file that is not ours (module docstring); for names known only once the inputs are read."""
        for name in names:
            self._check(self._relative(name))

    def _check(self, name: str) -> None:
        path = self.path / name
        if path.is_dir():
            raise InputError(f"{self.option}: {name} is a folder here; glassfrac never replaces a folder with a file; "
                             f"use another path", path)
        mine = name in self.previous or name in self._written
        if (path.exists() or path.is_symlink()) and not mine and not self.overwrite:
            raise InputError(f"{self.option}: {name} exists in {self.path} and was not written there by an earlier "
                             f"'glassfrac {self.command}'; {HINT}", path)

    def file(self, name) -> Path:
        """The path to write the output ``name`` (relative to the folder) to, recorded in the marker first.

        :class:`InputError` if it would replace a file that is not ours (module docstring).
        """
        name = self._relative(name)
        if name not in self._written:
            self._check(name)
            self._written.append(name)
            self._save(complete=False)
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def keep(self, name) -> Path:
        """Count the existing output ``name`` of an earlier run as an output of this one (reused, not
        rewritten), so that :meth:`finish` keeps it."""
        return self.file(name)

    def create(self) -> Path:
        """Make the folder and write its marker (done by the first :meth:`file`); returns the folder."""
        self._save(complete=False)
        return self.path

    def finish(self, stale: bool = True) -> list:
        """Remove the stale outputs of this command's earlier run (listed then, not written now) and
        record this run's files as complete; returns the names removed. ``stale`` False: keep them
        listed instead (for commands whose file names depend on their input, so that the files of
        runs on other inputs are not stale)."""
        if not stale:
            self._written += sorted(n for n in self.previous - set(self._written) if (self.path / n).exists())
        removed = []
        for name in sorted(self.previous - set(self._written)):
            path = self.path / name
            if path.is_symlink() or path.is_file():
                path.unlink()
                removed.append(name)
        self.previous = set(self._written)
        self._save(complete=True)
        return removed

    @property
    def written(self) -> list:
        """Names written (or kept) by this run, in order."""
        return list(self._written)

    def _save(self, complete: bool) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        record = self.record or {}
        record.setdefault("written_by", "glassfrac")
        record.setdefault("created", {"command": self.command, "version": VERSION, "time": now()})
        record.setdefault("runs", {})
        files = sorted(set(self._written) if complete else self.previous | set(self._written))
        record["runs"][self.command] = {"version": VERSION, "time": now(), "complete": complete, "files": files}
        self.record = record
        with atomic_open(self.path / MARKER) as handle:
            json.dump(record, handle, indent=1)
