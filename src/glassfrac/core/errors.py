"""Exceptions that the command line reports as clear one-line errors (exit status 2)."""


class GlassfracError(Exception):
    """Base class of every error glassfrac raises on purpose."""


class InputError(GlassfracError, ValueError):
    """Bad input (a file, an option, an argument's value): names the file (and line, when known) and what was
    expected. A ``ValueError`` too, so callers in Python may catch it as one."""

    def __init__(self, message: str, path=None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


class ConvergenceError(GlassfracError):
    """A minimiser or iterative method stopped before reaching its tolerance."""


class NonFiniteError(GlassfracError):
    """A computation met a non-finite energy, force or stress (NaN or inf), usually from overlapping atoms
    of the input; the message names the atoms (and the strain or step) where it is known."""


class CheckError(GlassfracError):
    """A check (``campaign status --check``) found problems: ``report`` holds the full result, which the CLI
    prints next to the error (exit status 2)."""

    def __init__(self, message: str, report: dict):
        self.report = report
        super().__init__(message)
