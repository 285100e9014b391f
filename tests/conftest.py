"""Shared test set-up: one thread everywhere; structures generated once per session for the
physics checks; the third-party reference files in ../shared/data for the tests about them.

Generated structures (fixture ``generated``) stand in wherever a test needs "some realistic
2D silica": they are built by glassfrac's generator (and relaxer) in seconds, so a fresh clone
runs every physics cross-check. Tests about the third-party files themselves (JuMol samples,
the FC22 bilayer) carry the ``shared_data`` marker and take the files from
``$GLASSFRAC_SHARED_DATA`` (default ``../shared/data`` next to the repository); a missing file
skips such a test, or fails it when ``CI=true`` (:func:`require_shared`).
"""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GLASSFRAC_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from glassfrac.core.threads import set_threads  # noqa: E402

set_threads(1)

from glassfrac.generate import generate  # noqa: E402
from glassfrac.mechanics.relax import relax  # noqa: E402
from glassfrac.potentials import get_potential  # noqa: E402
from glassfrac.structure import Structure, neighbor_pairs, write  # noqa: E402

# -- third-party reference data -------------------------------------------------------------

SHARED_DATA = Path(os.environ.get("GLASSFRAC_SHARED_DATA")
                   or Path(__file__).resolve().parents[1].parent / "shared" / "data")
JUMOL = SHARED_DATA / "jumol-2d-silica"
JUMOL_NAMES = ("sig_0.60", "sig_1.00", "sig_1.50")
FC22_BILAYER = SHARED_DATA / "fc22-bilayer" / "sio2_initial.dump"
SHARED_FIXTURES = ("jumol_files", "fc22_bilayer_path")
HOW_TO_GET = ("README.md ('Reference data') says where to get the files; or set GLASSFRAC_SHARED_DATA to the "
              "folder that holds them, or leave these tests out with -m 'not slow and not shared_data'")


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_shared(paths, what: str) -> None:
    """Skip the calling test if any of ``paths`` is missing; under ``CI=true`` fail it instead,
    so that CI never passes by silently skipping the tests about the reference data."""
    missing = [Path(p) for p in paths if not Path(p).is_file()]
    if not missing:
        return
    message = f"{what} not found in {missing[0].parent}: {', '.join(p.name for p in missing)}. {HOW_TO_GET}"
    if in_ci():
        pytest.fail(f"CI=true and reference data missing: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def jumol_files():
    """The three JuMol monolayers (sig 0.60, 1.00, 1.50), as paths."""
    files = [JUMOL / f"{name}_sample_0.data" for name in JUMOL_NAMES]
    require_shared(files, "JuMol 2D silica samples")
    return files


@pytest.fixture(scope="session")
def fc22_bilayer_path():
    """FC22's relaxed reference bilayer (LAMMPS dump), as a path."""
    require_shared([FC22_BILAYER], "FC22 reference bilayer")
    return FC22_BILAYER


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test that uses the reference files carries the ``shared_data`` marker, so that
    ``-m 'not shared_data'`` deselects exactly those (runs before the marker selection)."""
    for item in items:
        if set(SHARED_FIXTURES) & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("shared_data"):
            item.add_marker(pytest.mark.shared_data)


# -- generated structures ---------------------------------------------------------------------

MONOLAYER_RINGS = (15, 18)
"""270 rings: 1350 atoms in about 78 × 81 Å, the size of the JuMol samples."""
MONOLAYER_LEVELS = {"sig_0.70": 0.70, "sig_1.00": 1.00, "sig_1.25": 1.25}
"""Log-normal ring-size targets, width × the value measured on real 2D silica (as JuMol's sig).
Generated networks stay valid (3 O within 1.8 Å of every Si) up to about 1.25 at seed 0."""
BILAYER_RINGS = (6, 8)
"""48 rings per layer, 576 atoms, about 34 × 34 Å: wide enough for a 13 Å window around any atom."""


def plain(structure: Structure) -> Structure:
    """Positions, species and box only, as a user's file gives them (no bonds, rings or info)."""
    return Structure(structure.positions.copy(), structure.species.copy(), structure.box)


def check_silica_network(structure: Structure, name: str, cutoff: float, si_o: int) -> None:
    """Every Si has ``si_o`` O and every O two Si within ``cutoff`` Å (a valid network)."""
    i, j, _, _ = neighbor_pairs(structure.positions, structure.box, cutoff)
    unlike = structure.species[i] != structure.species[j]
    count = np.bincount(np.concatenate([i[unlike], j[unlike]]), minlength=structure.n_atoms)
    si = structure.species == "Si"
    bad = np.flatnonzero(np.where(si, count != si_o, count != 2))
    assert len(bad) == 0, (f"generated {name} is not a valid silica network (atoms {bad[:10].tolist()} "
                           f"miscoordinated within {cutoff} Å): the generator changed?")


class Generated:
    """Structures made by glassfrac in the test session, built on first use and cached.

    Every accessor returns a fresh copy, so a test may change what it gets.

    - ``network(level)``: a generated SiO2 monolayer (2D, 1350 atoms, periodic), O at the
      bond midpoints, as the generator gives it: a valid bonded network (checked), for ring
      and imaging tests that need the exact topology;
    - ``monolayer(level)``: the same relaxed with the Yukawa potential (fixed cell) to a max
      force of 1e-3 eV/Å, as the JuMol samples were; Yukawa relaxation moves a few O from
      one Si to another at these disorders, so use ``network`` where coordination matters;
    - ``bilayer()``: a generated SiO2 bilayer (3D, 576 atoms, periodic in x and y) relaxed
      with the Watanabe potential, positions and cell lengths, to 1e-9 eV/Å (checked: 4 O
      per Si, 2 Si per O within 2.2 Å);
    - ``path(name, level)``: one of them written once as a LAMMPS data file (Å), for CLI tests.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._cache = {}

    def _get(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key].copy()

    def network(self, level: str = "sig_1.00") -> Structure:
        def build():
            s = plain(generate(MONOLAYER_RINGS, kind="monolayer", distribution="lognormal",
                               sigma_factor=MONOLAYER_LEVELS[level], seed=0))
            check_silica_network(s, f"monolayer {level}", 1.8, 3)
            return s

        return self._get(("network", level), build)

    def networks(self) -> dict:
        return {level: self.network(level) for level in MONOLAYER_LEVELS}

    def monolayer(self, level: str = "sig_1.00") -> Structure:
        def build():
            (s, info), = relax(get_potential("yukawa2d"), [self.network(level)], fmax=1e-3,
                               precondition="hessian", raise_on_failure=True)
            return plain(s)

        return self._get(("monolayer", level), build)

    def monolayers(self) -> dict:
        return {level: self.monolayer(level) for level in MONOLAYER_LEVELS}

    def bilayer(self) -> Structure:
        def build():
            s = plain(generate(BILAYER_RINGS, kind="bilayer", distribution="lognormal", sigma_factor=1.0,
                               seed=1))
            (s, info), = relax(get_potential("watanabe"), [s], cell=np.array([True, True, False]), fmax=1e-9,
                               precondition="hessian", raise_on_failure=True)
            s = plain(s)
            check_silica_network(s, "bilayer", 2.2, 4)
            return s

        return self._get(("bilayer",), build)

    def path(self, name: str = "network", level: str = "sig_1.00") -> Path:
        path = self.folder / (f"{name}_{level}.data" if name != "bilayer" else "bilayer.data")
        if not path.is_file():
            write(self.bilayer() if name == "bilayer" else getattr(self, name)(level), path)
        return path


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Generated:
    """Structures generated (and relaxed) by glassfrac in this session (:class:`Generated`)."""
    return Generated(tmp_path_factory.mktemp("generated"))
