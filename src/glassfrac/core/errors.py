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
