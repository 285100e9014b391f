"""The chain for scripts: generate, relax, rings, loading tests, probing and ASE calculators (:mod:`glassfrac.api`)."""

from dataclasses import dataclass, replace

import numpy as np

from glassfrac.analysis.rings import RingAnalysis
from glassfrac.core.errors import InputError
from glassfrac.generate import generate as _generate
from glassfrac.labels import ShearLabels, TensionLabels, shear_labels, tension_labels
from glassfrac.labels.probe import ThresholdMap
from glassfrac.mechanics.aqs import LoadingResult
from glassfrac.mechanics.probe import ProbeSettings, probe_map
from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, TENSION_DEFAULTS, shear_test, tension_test
from glassfrac.mechanics.relax import relax_to_minimum
from glassfrac.potentials import Potential, default_potential, get_potential
from glassfrac.potentials.ase_calculator import GlassfracCalculator
from glassfrac.structure import Structure


def _potential(potential, structure: Structure) -> Potential:
    """``potential`` as a :class:`Potential`; None picks the default of ``structure`` (module docstring)."""
    if isinstance(potential, Potential):
        return potential
    if potential is None:
        potential = default_potential(structure)
    if not isinstance(potential, str):
        raise InputError(f"potential must be a name, a glassfrac Potential or None, got {type(potential).__name__}")
    return get_potential(potential)


def generate(rings=(16, 18), mu2: float | None = 0.3, kind: str = "monolayer", seed: int = 0,
             **options) -> Structure:
    """Generate a 2D silica sample by bond-switching Monte Carlo (FC22's generator).

    Parameters
    ----------
    rings : (int, int)
        Honeycomb of nx × ny rings to start from (nx ≥ 4, ny ≥ 4 and even); cell about
        nx·5.3 Å × ny·4.6 Å for the monolayer.
    mu2 : float
        Target variance of the ring-size distribution (dimensionless; 0.3 is a typical glass).
    kind : {"monolayer", "bilayer", "network"}
        2D Si–O monolayer (for ``yukawa2d``), 3D bilayer sheet (for ``watanabe``) or the Si network only.
    seed : int
        Seed of every random choice.
    **options
        Further options of :func:`glassfrac.generate.generate` (``distribution``, ``alpha``, ``steps``...).

    Returns
    -------
    Structure
        Positions in Å, bonds, ``info`` with the achieved ring statistics; not yet relaxed.

    Examples
    --------
    >>> import glassfrac as gf
    >>> s = gf.generate(rings=(4, 4), mu2=0.3, kind="monolayer", seed=1)
    >>> s.n_atoms, s.dim
    (80, 2)
    """
    return _generate(rings, mu2=mu2, kind=kind, seed=seed, **options)


def relax(structure: Structure, potential=None, cell=False, fmax: float = 1e-8, method: str = "lbfgs",
          **options) -> Structure:
    """Relax a structure to a local energy minimum (a true one: saddles are left along their negative mode,
    :func:`glassfrac.mechanics.relax.relax_to_minimum`).

    Parameters
    ----------
    structure : Structure
        The structure to relax (not modified).
    potential : str, Potential or None
        Name, potential object, or None for the structure's default (module docstring).
    cell : bool or array of bool
        Also relax the periodic cell to zero stress (True), or the components of a mask; False keeps it.
    fmax : float
        Largest force left on any atom, eV/Å.
    method : {"lbfgs", "fire", "cg"}
        Minimiser.
    **options
        Further options of :func:`glassfrac.mechanics.relax.relax` (``max_steps``, ``frozen``...).

    Returns
    -------
    Structure
        A relaxed copy; ``info["relax"]`` records ``energy`` (eV), ``max_force`` (eV/Å), ``converged``,
        ``lowest_eigenvalue`` (eV/Å²), ``minimum``, ``saddle_escapes``, ``iterations`` and the rest of the
        relaxer's summary.

    Examples
    --------
    >>> import glassfrac as gf
    >>> s = gf.relax(gf.generate((4, 4), seed=1), potential="yukawa2d")
    >>> s.info["relax"]["converged"], s.info["relax"]["max_force"] < 1e-8, s.info["relax"]["minimum"]
    (True, True, True)
    """
    relaxed, info = relax_to_minimum(_potential(potential, structure), structure, method=method, fmax=fmax,
                                     cell=cell, **options)
    relaxed.info["relax"] = {k: v for k, v in info.items() if k != "seconds"}
    return relaxed


def rings(structure: Structure, **options) -> RingAnalysis:
    """Rings of a 2D network glass (monolayer, bilayer or Si network) and their statistics.

    Parameters
    ----------
    structure : Structure
        The sample.
    **options
        Options of :class:`glassfrac.analysis.rings.RingAnalysis` (``cutoff`` in Å, ``layer``...).

    Returns
    -------
    RingAnalysis
        Computed, read-only results: ``ring_sizes``, ``rings`` (atom indices), ``ring_centres`` (Å),
        ``ring_areas`` (Å²), and ``summary()`` (distribution, μ2, Aboav–Weaire α...).

    Examples
    --------
    >>> import glassfrac as gf
    >>> r = gf.rings(gf.generate((4, 4), seed=1))
    >>> r.n_rings, int(r.ring_sizes.sum())
    (16, 96)
    """
    return RingAnalysis(**options).compute(structure)


@dataclass(frozen=True)
class LoadingTest:
    """A tension or shear test: the run (``result``) and its typed ``labels``
    (:class:`~glassfrac.labels.TensionLabels` or :class:`~glassfrac.labels.ShearLabels`). Strains are
    dimensionless, stresses in N/m for sheets and GPa for bulk (:attr:`stress_unit`), energies in eV.

    Examples
    --------
    >>> import glassfrac as gf
    >>> t = gf.tension(gf.relax(gf.generate((4, 4), seed=1)), max_strain=0.02, step=0.01)
    >>> t.curve["strain"].tolist(), t.stress_unit
    ([0.0, 0.01, 0.02], 'N/m')
    """

    result: LoadingResult
    labels: TensionLabels | ShearLabels

    @property
    def curve(self) -> dict:
        """The relaxed states by strain: ``strain`` (dimensionless), ``stress`` (stress unit), ``energy`` (eV),
        ``iterations``, ``converged`` (arrays)."""
        return self.result.curve.arrays()

    @property
    def strain(self) -> np.ndarray:
        """Strain of each relaxed state (dimensionless)."""
        return self.curve["strain"]

    @property
    def stress(self) -> np.ndarray:
        """Stress measure of each relaxed state (:attr:`stress_unit`; tension positive)."""
        return self.curve["stress"]

    @property
    def stress_unit(self) -> str:
        """``"N/m"`` for sheets, ``"GPa"`` for bulk."""
        return self.result.stress_unit

    @property
    def events(self) -> list:
        """The events of the run (strain, stress drop, location in Å, atoms), in order."""
        return self.result.events


def _aqs_settings(defaults, max_strain, step, settings):
    overrides = {k: v for k, v in (("max_strain", max_strain), ("step", step)) if v is not None}
    return replace(defaults, **overrides, **settings)


def tension(structure: Structure, potential=None, max_strain: float | None = None, step: float | None = None,
            **settings) -> LoadingTest:
    """Uniaxial-strain tension along x to fracture, quasistatic (FC22), with bond-break labels.

    Parameters
    ----------
    structure : Structure
        A relaxed sample.
    potential : str, Potential or None
        Name, potential object, or None for the structure's default (module docstring).
    max_strain : float, optional
        Largest strain (dimensionless; default 0.3).
    step : float, optional
        Strain step (default 0.005); events are bisected to ``precision``.
    **settings
        Further :class:`glassfrac.mechanics.aqs.AQSSettings` (``precision``, ``fmax`` in eV/Å...).

    Returns
    -------
    LoadingTest
        ``curve``, ``events`` and :class:`~glassfrac.labels.TensionLabels` (``rupture_strain``,
        ``rupture_location`` in Å, ``crack_atoms``, ``peak_stress``...).

    Examples
    --------
    >>> import glassfrac as gf
    >>> t = gf.tension(gf.relax(gf.generate((4, 4), seed=1)), max_strain=0.02, step=0.01)
    >>> bool(t.stress[-1] > t.stress[0]), t.labels.rupture_strain is None
    (True, True)
    """
    settings = _aqs_settings(TENSION_DEFAULTS, max_strain, step, settings)
    result = tension_test(structure, _potential(potential, structure), settings)
    return LoadingTest(result, tension_labels(result))


def shear(structure: Structure, potential=None, max_strain: float | None = None, step: float | None = None,
          events: int | None = None, **settings) -> LoadingTest:
    """Area-preserving pure shear, quasistatic (LISTI25), up to the first ``events`` stress drops.

    Parameters
    ----------
    structure : Structure
        A relaxed sample.
    potential : str, Potential or None
        Name, potential object, or None for the structure's default (module docstring).
    max_strain : float, optional
        Largest strain (dimensionless; default 0.04).
    step : float, optional
        Strain step (default 1e-4).
    events : int, optional
        Stop after this many stress drops (default 6).
    **settings
        Further :class:`glassfrac.mechanics.aqs.AQSSettings` (``path="simple_shear"``, ``precision``...).

    Returns
    -------
    LoadingTest
        ``curve``, ``events`` and :class:`~glassfrac.labels.ShearLabels` (events with D²min fields in Å²).

    Examples
    --------
    >>> import glassfrac as gf
    >>> t = gf.shear(gf.relax(gf.generate((4, 4), seed=1)), max_strain=0.004, step=0.002)
    >>> len(t.strain), t.labels.test
    (3, 'shear')
    """
    if events is not None:
        settings["max_events"] = events
    settings = _aqs_settings(SHEAR_DEFAULTS, max_strain, step, settings)
    result = shear_test(structure, _potential(potential, structure), settings)
    return LoadingTest(result, shear_labels(result))


def probe(structure: Structure, potential=None, grid=50, r_free: float = 11.0, **settings) -> ThresholdMap:
    """Local yield-threshold map by probing windows in shear (LISTI25).

    Parameters
    ----------
    structure : Structure
        A relaxed 2D sample or bilayer sheet.
    potential : str, Potential or None
        A potential with a Hessian (``yukawa2d``, ``watanabe``); None for the structure's default.
    grid : int or (int, int)
        Windows on a grid × grid lattice over the cell (a pair must have equal entries).
    r_free : float
        Radius of the free part of each window, Å.
    **settings
        Further :class:`glassfrac.mechanics.probe.ProbeSettings` (``directions``, ``workers``, ``device``...).

    Returns
    -------
    ThresholdMap
        ``threshold`` Δτ (N/m, grid × grid), ``centres`` (Å), ``angles`` (rad); ``save(path)`` writes it.

    Examples
    --------
    >>> import glassfrac as gf
    >>> s = gf.relax(gf.generate((4, 4), seed=1))
    >>> m = gf.probe(s, grid=2, r_free=5.0, shell=3.5, step=0.02, precision=1e-3)  # tiny and coarse
    >>> m.threshold.shape, m.unit, bool((m.threshold > 0).all())
    ((2, 2), 'N/m', True)
    """
    if not isinstance(grid, (int, np.integer)):
        sides = tuple(int(g) for g in grid)
        if len(sides) != 2 or sides[0] != sides[1]:
            raise InputError(f"grid must be one number or two equal numbers, got {grid!r}")
        grid = sides[0]
    potential = _potential(potential, structure)
    s = ProbeSettings(grid=int(grid), r_free=r_free, **settings)
    return ThresholdMap.from_result(probe_map(structure, potential, s), s, potential=potential.name)


def calculator(potential="yukawa2d", **parameters) -> GlassfracCalculator:
    """An ASE calculator for one of our potentials (energy eV, forces eV/Å, stress eV/Å³ in ASE's convention,
    per-atom ``energies``); see :mod:`glassfrac.potentials.ase_calculator` for 2D sheets.

    Parameters
    ----------
    potential : {"yukawa2d", "watanabe", "matsui"} or Potential
        The potential (``matsui`` needs the LAMMPS Python module).
    **parameters
        Parameters of the potential (for example ``cutoff`` in Å for ``matsui``).

    Returns
    -------
    GlassfracCalculator
        An ``ase.calculators.calculator.Calculator``.

    Examples
    --------
    >>> import glassfrac as gf
    >>> atoms = gf.to_atoms(gf.relax(gf.generate((4, 4), seed=1)))
    >>> atoms.calc = gf.calculator("yukawa2d")
    >>> bool(abs(atoms.get_forces()).max() < 1e-6), atoms.get_stress().shape
    (True, (6,))
    """
    if isinstance(potential, Potential):
        if parameters:
            raise InputError("parameters go with a potential's name, not with a Potential object")
        return GlassfracCalculator(potential)
    return GlassfracCalculator(get_potential(potential, **parameters))
