"""Campaign configuration: a TOML file, read with :mod:`tomllib` and validated key by key.

Every error names the file and the dotted key (``samples[1].mu2``) and says what was
expected. Layout (see ``configs/quickstart.toml`` for a commented example)::

    [campaign]            name (str), seed (int)
    [[samples]]           one table per group of samples:
        kind              "monolayer" | "bilayer"
        rings             [NX, NY] rings of the starting honeycomb
        distribution      "gamma" (FC22) | "lognormal" (LISTI25)
        mu2               [values]       target ring-size variances, ``count`` samples each, or
        mu2_range         [lo, hi]       ``count`` samples with mu2 uniform in [lo, hi], or
        sigma_factor      [values]       lognormal only: f in SD = f × 0.9576, ``count`` each
        count             int (samples per value, or in all for a range)
        generator         optional "module:function" replacing the built-in generator
        options           optional table passed to the generator as keyword arguments
    [potential]           monolayer = "yukawa2d", bilayer = "watanabe" (defaults), or a table
                          {name = ..., parameters = {...}} per kind
    [relax]               method ("fire" | "lbfgs" | "cg" | "none"), fmax (eV/Å), max_steps
                          (force evaluations), cell (bool, default true: relax the lengths of the
                          periodic axes to zero stress, without tilting the cell)
    [tests]               run = ["tension", "shear", "probe"] (in order; "module:function" for your own)
    [tests.tension]       AQS settings overriding the protocol defaults (any field of
    [tests.shear]         ``glassfrac.mechanics.aqs.AQSSettings``: max_strain, step, ...)
    [tests.probe]         local probing settings (any field of
                          ``glassfrac.mechanics.probe.ProbeSettings``: grid, r_free, ...) plus
                          ``samples`` (int: probe only the first that many samples of each
                          disorder value; default all). Potentials with the ``hessian`` ability only.
    [output]              directory (str; relative to the working directory),
                          database (optional URL, e.g. "postgresql://user@host/db"; default
                          the SQLite file ``<directory>/campaign.db``), figures (bool)
    [runner]              workers (int; 0 = serial in this process), threads_per_worker (int)

Method and fmax of ``[relax]`` are also those of the AQS tests unless a test table sets its
own. The parts that define the samples (campaign, samples, potential, relax, tests) form the
campaign's fingerprint: rerunning into a directory made by a different fingerprint is refused.
"""

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from glassfrac.core.config import TomlReader, parse_toml, read_toml
from glassfrac.mechanics.aqs import AQSSettings
from glassfrac.mechanics.probe import ProbeSettings
from glassfrac.potentials import POTENTIALS, get_potential

KINDS = ("monolayer", "bilayer")
DISTRIBUTIONS = ("gamma", "lognormal")
RELAX_METHODS = ("fire", "lbfgs", "cg", "none")
BUILTIN_TESTS = ("tension", "shear", "probe")
DEFAULT_POTENTIALS = {"monolayer": "yukawa2d", "bilayer": "watanabe"}
DEFAULT_RELAX = {"method": "fire", "fmax": 1e-8, "max_steps": 100_000, "cell": True}

_TOP = ("campaign", "samples", "potential", "relax", "tests", "output", "runner")
_GROUP = ("kind", "rings", "distribution", "mu2", "mu2_range", "sigma_factor", "count",
          "generator", "options")


@dataclass(frozen=True)
class SampleGroup:
    """One ``[[samples]]`` table: which samples to generate (module docstring)."""

    kind: str
    rings: tuple
    distribution: str
    count: int
    mu2: tuple | None = None
    mu2_range: tuple | None = None
    sigma_factor: tuple | None = None
    generator: str | None = None
    options: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        values = self.mu2 or self.sigma_factor
        return self.count * (len(values) if values else 1)


@dataclass(frozen=True)
class CampaignConfig:
    """A validated campaign configuration (module docstring); ``source`` names its file."""

    name: str
    seed: int
    groups: tuple
    tests: tuple = ("tension", "shear")
    test_settings: dict = field(default_factory=dict)
    potentials: dict = field(default_factory=dict)
    relax: dict = field(default_factory=lambda: dict(DEFAULT_RELAX))
    directory: Path = Path("campaign")
    database: str | None = None
    figures: bool = True
    workers: int | None = None
    threads_per_worker: int = 1
    source: str = "<config>"
    text: str = ""

    @property
    def n_samples(self) -> int:
        return sum(g.n_samples for g in self.groups)

    def definition(self) -> dict:
        """The parts that define the samples and their labels (plain JSON types)."""
        return {
            "name": self.name, "seed": self.seed,
            "samples": [_group_dict(g) for g in self.groups],
            "tests": list(self.tests), "test_settings": self.test_settings,
            "potentials": self.potentials, "relax": self.relax,
        }

    def fingerprint(self) -> str:
        """SHA-256 of :meth:`definition` (canonical JSON)."""
        text = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def database_url(self) -> str:
        """The store's address: ``database`` or the SQLite file in ``directory``."""
        return self.database or str(Path(self.directory) / "campaign.db")


def _group_dict(g: SampleGroup) -> dict:
    out = {f.name: getattr(g, f.name) for f in fields(g)}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items() if v is not None}


def load_config(path) -> CampaignConfig:
    """Read and validate the TOML campaign file ``path``."""
    _, text = read_toml(path, "campaign config")
    return parse_config(text, source=str(path))


def parse_config(text: str, source: str = "<config>") -> CampaignConfig:
    """Validate a campaign config given as TOML text; ``source`` names it in errors."""
    raw = parse_toml(text, source)
    r = TomlReader(source)
    r.keys(raw, "", _TOP)
    camp = r.table(raw, "campaign", required=True)
    r.keys(camp, "campaign", ("name", "seed"))
    name = r.value(camp, "campaign.name", str, required=True)
    if not name or any(c in name for c in "/\\ "):
        r.fail("campaign.name", f"a non-empty name without spaces or slashes, got {name!r}")
    seed = r.value(camp, "campaign.seed", int, required=True)
    if seed < 0:
        r.fail("campaign.seed", f"a non-negative integer, got {seed}")

    groups_raw = raw.get("samples")
    if not isinstance(groups_raw, list) or not groups_raw:
        r.fail("samples", "at least one [[samples]] table")
    groups = tuple(_group(r, g, f"samples[{k}]") for k, g in enumerate(groups_raw))

    pot = r.table(raw, "potential")
    r.keys(pot, "potential", KINDS)
    potentials = {}
    for kind in KINDS:
        potentials[kind] = _potential(r, pot.get(kind, DEFAULT_POTENTIALS[kind]), f"potential.{kind}")

    relax_raw = r.table(raw, "relax")
    r.keys(relax_raw, "relax", tuple(DEFAULT_RELAX))
    relax = dict(DEFAULT_RELAX)
    relax["method"] = r.choice(relax_raw, "relax.method", RELAX_METHODS, relax["method"])
    relax["fmax"] = r.positive(relax_raw, "relax.fmax", float, relax["fmax"])
    relax["max_steps"] = r.positive(relax_raw, "relax.max_steps", int, relax["max_steps"])
    relax["cell"] = r.value(relax_raw, "relax.cell", bool, relax["cell"])

    tests_raw = r.table(raw, "tests")
    tests = tuple(r.value(tests_raw, "tests.run", list, ["tension", "shear"]))
    for k, test in enumerate(tests):
        if not isinstance(test, str) or not (test in BUILTIN_TESTS or ":" in test):
            r.fail(f"tests.run[{k}]", f"one of {list(BUILTIN_TESTS)} or 'module:function', got {test!r}")
    if len(set(tests)) != len(tests):
        r.fail("tests.run", f"each test once, got {list(tests)}")
    r.keys(tests_raw, "tests", ("run", *BUILTIN_TESTS))
    test_settings = {}
    for test in BUILTIN_TESTS:
        table = r.table(tests_raw, test, prefix="tests")
        if table and test not in tests:
            r.fail(f"tests.{test}", f"settings only for a test listed in tests.run ({list(tests)})")
        test_settings[test] = (_probe_settings if test == "probe" else _aqs_overrides)(r, table, f"tests.{test}")
    if "probe" in tests:
        _check_probe(r, groups, potentials)

    out = r.table(raw, "output")
    r.keys(out, "output", ("directory", "database", "figures"))
    directory = Path(r.value(out, "output.directory", str, name))
    database = r.value(out, "output.database", str, None)
    if database is not None and not database.startswith(("postgresql://", "postgres://")) \
            and not database.endswith(".db"):
        r.fail("output.database", f"a postgresql:// URL or an SQLite file ending in .db, got {database!r}")
    figures = r.value(out, "output.figures", bool, True)

    run = r.table(raw, "runner")
    r.keys(run, "runner", ("workers", "threads_per_worker"))
    workers = r.value(run, "runner.workers", int, None)
    if workers is not None and workers < 0:
        r.fail("runner.workers", f"an integer >= 0, got {workers}")
    threads = r.positive(run, "runner.threads_per_worker", int, 1)

    return CampaignConfig(
        name=name, seed=seed, groups=groups, tests=tests, test_settings=test_settings,
        potentials=potentials, relax=relax, directory=directory, database=database,
        figures=figures, workers=workers, threads_per_worker=threads, source=source, text=text,
    )


def _group(r, g, where) -> SampleGroup:
    if not isinstance(g, dict):
        r.fail(where, "a table")
    r.keys(g, where, _GROUP)
    kind = r.choice(g, f"{where}.kind", KINDS, None, required=True)
    rings = r.value(g, f"{where}.rings", list, required=True)
    if len(rings) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) for n in rings):
        r.fail(f"{where}.rings", f"[NX, NY], two integers, got {rings!r}")
    if rings[0] < 4 or rings[1] < 4 or rings[1] % 2:
        r.fail(f"{where}.rings", f"NX >= 4 and an even NY >= 4 (periodic honeycomb), got {rings}")
    distribution = r.choice(g, f"{where}.distribution", DISTRIBUTIONS, "gamma")
    given = [k for k in ("mu2", "mu2_range", "sigma_factor") if k in g]
    if len(given) != 1:
        r.fail(where, f"exactly one of mu2, mu2_range, sigma_factor, got {given or 'none'}")
    mu2 = mu2_range = sigma = None
    if "mu2" in g:
        mu2 = _numbers(r, g, f"{where}.mu2", positive=True)
    elif "mu2_range" in g:
        mu2_range = _numbers(r, g, f"{where}.mu2_range", positive=True)
        if len(mu2_range) != 2 or not mu2_range[0] < mu2_range[1]:
            r.fail(f"{where}.mu2_range", f"[lo, hi] with lo < hi, got {list(mu2_range)}")
    else:
        if distribution != "lognormal":
            r.fail(f"{where}.sigma_factor", "distribution = \"lognormal\" (sigma_factor is its parameter)")
        sigma = _numbers(r, g, f"{where}.sigma_factor", positive=True)
    count = r.positive(g, f"{where}.count", int, None, required=True)
    generator = r.value(g, f"{where}.generator", str, None)
    if generator is not None and generator.count(":") != 1:
        r.fail(f"{where}.generator", f"'module:function', got {generator!r}")
    options = r.value(g, f"{where}.options", dict, {})
    return SampleGroup(kind=kind, rings=tuple(rings), distribution=distribution, count=count, mu2=mu2,
                       mu2_range=mu2_range, sigma_factor=sigma, generator=generator, options=options)


def _numbers(r, table, key, positive=False) -> tuple:
    values = r.value(table, key, list, required=True)
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        r.fail(key, f"a non-empty list of numbers, got {values!r}")
    if positive and min(values) <= 0:
        r.fail(key, f"positive numbers, got {values}")
    return tuple(float(v) for v in values)


def _potential(r, value, key) -> dict:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        r.fail(key, f"a potential name or a table {{name = ..., parameters = {{...}}}}, got {value!r}")
    r.keys(value, key, ("name", "parameters"))
    name = r.choice(value, f"{key}.name", tuple(POTENTIALS), None, required=True)
    params = r.value(value, f"{key}.parameters", dict, {})
    return {"name": name, "parameters": params}


def _aqs_overrides(r, table: dict, key: str) -> dict:
    r.keys(table, key, tuple(f.name for f in fields(AQSSettings)))
    return _scalars(r, table, key)


def _probe_settings(r, table: dict, key: str) -> dict:
    r.keys(table, key, ("samples", *(f.name for f in fields(ProbeSettings))))
    out = _scalars(r, table, key)
    for name in ("samples", "grid", "directions"):
        r.positive(out, f"{key}.{name}", int, None)
    return out


def _scalars(r, table: dict, key: str) -> dict:
    out = {}
    for name, value in table.items():
        if not isinstance(value, (bool, int, float, str)):
            r.fail(f"{key}.{name}", f"a number, string or boolean, got {value!r}")
        out[name] = value
    return out


def _check_probe(r, groups, potentials) -> None:
    """Local probing needs sheets (monolayers, bilayers) and potentials with the ``hessian`` ability."""
    for k, g in enumerate(groups):
        if g.kind not in KINDS:
            r.fail(f"samples[{k}].kind", f"one of {list(KINDS)} when tests.run has 'probe', got {g.kind!r}")
    for kind in sorted({g.kind for g in groups}):
        spec = potentials[kind]
        if not get_potential(spec["name"], **spec["parameters"]).can("hessian"):
            r.fail(f"potential.{kind}", f"a potential with the 'hessian' ability for 'probe', got {spec['name']!r}")
