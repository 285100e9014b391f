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
        tests             optional: this group's tests, a subset of [tests] run in its order
                          (default: all of them)
    [potential]           monolayer = "yukawa2d", bilayer = "watanabe" (defaults), or a table
                          {name = ..., parameters = {...}} per kind
    [relax]               method ("fire" | "lbfgs" | "cg" | "none"), fmax (eV/Å), max_steps
                          (force evaluations), cell (bool, default true: relax the lengths of the
                          periodic axes to zero stress, without tilting the cell)
    [tests]               run = ["tension", "shear", "probe"] (in order; "module:function" for your own;
                          "predict" runs the installed models on the relaxed sample, put first: a
                          prediction made before the sample is loaded)
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

Every key is checked by its schema (:mod:`glassfrac.core.schema`: the tables below, and
:mod:`glassfrac.campaign.schemas` for the test settings and the potentials' parameters) before
any sample runs: type, range, choices, cross-key rules (precision <= step <= max_strain), unknown
keys with the closest known one suggested. Method and fmax of ``[relax]`` are also those of the
AQS tests unless a test table sets its own. The parts that define the samples (campaign,
samples, potential, relax, tests) form the campaign's fingerprint: rerunning into a directory
made by a different fingerprint is refused, unless the new definition only adds samples after the
last one (a raised ``count`` of the last group, :func:`glassfrac.campaign.samples.extends`): then the
campaign grows and runs only the new samples.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from difflib import get_close_matches
from pathlib import Path

from glassfrac.campaign import schemas
from glassfrac.core.config import TomlReader, parse_toml, read_toml
from glassfrac.core.schema import Key, Schema
from glassfrac.mechanics.protocols import SHEAR_DEFAULTS, TENSION_DEFAULTS
from glassfrac.potentials import POTENTIALS, get_potential

KINDS = ("monolayer", "bilayer")
DISTRIBUTIONS = ("gamma", "lognormal")
RELAX_METHODS = ("fire", "lbfgs", "cg", "none")
BUILTIN_TESTS = ("predict", "tension", "shear", "probe")
SETTINGS_TESTS = ("tension", "shear", "probe")
"""The built-in tests that take a ``[tests.<name>]`` table."""
DEFAULT_POTENTIALS = {"monolayer": "yukawa2d", "bilayer": "watanabe"}
DEFAULT_RELAX = {"method": "fire", "fmax": 1e-8, "max_steps": 100_000, "cell": True}

_TOP = ("campaign", "samples", "potential", "relax", "tests", "output", "runner")


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
    tests: tuple | None = None

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


def _name(value):
    return None if value and not any(c in value for c in "/\\ ") else "a non-empty name without spaces or slashes"


def _database(value):
    ok = value.startswith(("postgresql://", "postgres://")) or value.endswith(".db")
    return None if ok else "a postgresql:// URL or an SQLite file ending in .db"


def _rings(value):
    return None if value[0] >= 4 and value[1] >= 4 and value[1] % 2 == 0 else \
        "NX >= 4 and an even NY >= 4 (periodic honeycomb)"


def _generator(value):
    return None if value.count(":") == 1 else "'module:function'"


def _one_disorder(values):
    given = [k for k in ("mu2", "mu2_range", "sigma_factor") if values.get(k) is not None]
    if len(given) != 1:
        return (given[-1] if given else "mu2"), f"exactly one of mu2, mu2_range, sigma_factor, got {given or 'none'}"
    if values.get("mu2_range") is not None and not values["mu2_range"][0] < values["mu2_range"][1]:
        return "mu2_range", f"[lo, hi] with lo < hi, got {values['mu2_range']}"
    if values.get("sigma_factor") is not None and values["distribution"] != "lognormal":
        return "sigma_factor", 'distribution = "lognormal" (sigma_factor is its parameter)'
    return None


CAMPAIGN = Schema((
    Key("name", str, help="campaign name (also the default output folder)", check=_name),
    Key("seed", int, help="seed of every sample (sample i: seeded from (seed, i))", lo=0),
))
GROUP = Schema((
    Key("kind", str, help="sheet kind", choices=KINDS),
    Key("rings", list, help="NX, NY rings of the starting honeycomb", items=int, length=2, check=_rings),
    Key("distribution", str, "gamma", "target ring-size distribution", choices=DISTRIBUTIONS),
    Key("mu2", list, None, "target ring-size variances", items=float, positive=True, nonempty=True),
    Key("mu2_range", list, None, "mu2 drawn uniformly in [lo, hi]", items=float, length=2, positive=True),
    Key("sigma_factor", list, None, "lognormal: SD = f x 0.9576", items=float, positive=True, nonempty=True),
    Key("count", int, help="samples per value (or in all, for a range)", positive=True),
    Key("generator", str, None, "'module:function' replacing the built-in generator", check=_generator),
    Key("options", dict, {}, "keyword arguments of the generator"),
    Key("tests", list, None, "this group's tests: a subset of tests.run (default: all)", items=str, nonempty=True),
), rules=(_one_disorder,))
POTENTIAL_SPEC = Schema((
    Key("name", str, help="potential", choices=tuple(POTENTIALS)),
    Key("parameters", dict, {}, "the potential's parameters"),
))
RELAX = Schema((
    Key("method", str, DEFAULT_RELAX["method"], "minimiser", choices=RELAX_METHODS),
    Key("fmax", float, DEFAULT_RELAX["fmax"], "force tolerance", "eV/Å", positive=True),
    Key("max_steps", int, DEFAULT_RELAX["max_steps"], "force evaluations", positive=True),
    Key("cell", bool, DEFAULT_RELAX["cell"], "relax the lengths of the periodic axes"),
))
TESTS = Schema((Key("run", list, ["tension", "shear"], "tests in order", items=str),))
PROBE_TEST = Schema((*schemas.PROBE.keys, Key("samples", int, None, "probe only the first samples of "
                                                  "each disorder value", positive=True)), schemas.PROBE.rules)
OUTPUT = Schema((
    Key("directory", str, None, "campaign folder (default: the campaign's name)",
        check=lambda v: None if v.strip() else "a folder name"),
    Key("database", str, None, "store: postgresql:// URL or SQLite .db file", check=_database),
    Key("figures", bool, True, "draw each sample's figures"),
))
RUNNER = Schema((
    Key("workers", int, None, "worker processes (0: serial)", lo=0),
    Key("threads_per_worker", int, 1, "threads of each worker", positive=True),
))


def parse_config(text: str, source: str = "<config>") -> CampaignConfig:
    """Validate a campaign config given as TOML text; ``source`` names it in errors."""
    raw = parse_toml(text, source)
    r = TomlReader(source)
    Schema(tuple(Key(t, (dict, list) if t == "samples" else dict, None) for t in _TOP)).read(r, raw)
    camp = CAMPAIGN.read(r, r.table(raw, "campaign", required=True), "campaign")
    name, seed = camp["name"], camp["seed"]

    groups_raw = raw.get("samples")
    if not isinstance(groups_raw, list) or not groups_raw:
        r.fail("samples", "at least one [[samples]] table")
    groups = tuple(_group(r, g, f"samples[{k}]") for k, g in enumerate(groups_raw))

    pot = r.table(raw, "potential")
    r.keys(pot, "potential", KINDS)
    potentials = {}
    for kind in KINDS:
        potentials[kind] = _potential(r, pot.get(kind, DEFAULT_POTENTIALS[kind]), f"potential.{kind}")

    relax = RELAX.read(r, r.table(raw, "relax"), "relax", fill=True)

    tests_raw = r.table(raw, "tests")
    r.keys(tests_raw, "tests", ("run", *SETTINGS_TESTS))
    tests = tuple(TESTS.read(r, {"run": tests_raw.get("run", ["tension", "shear"])}, "tests")["run"])
    for k, test in enumerate(tests):
        if not (test in BUILTIN_TESTS or ":" in test):
            close = get_close_matches(test, BUILTIN_TESTS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            r.fail(f"tests.run[{k}]", f"one of {list(BUILTIN_TESTS)} or 'module:function', got {test!r}{hint}")
    if len(set(tests)) != len(tests):
        r.fail("tests.run", f"each test once, got {list(tests)}")
    test_settings = {}
    relaxed = {} if relax["method"] == "none" else {"method": relax["method"], "fmax": relax["fmax"]}
    for k, g in enumerate(groups):
        for test in g.tests or ():
            if test not in tests:
                r.fail(f"samples[{k}].tests", f"tests listed in tests.run ({list(tests)}), got {test!r}")
        if g.tests is not None and len(set(g.tests)) != len(g.tests):
            r.fail(f"samples[{k}].tests", f"each test once, got {list(g.tests)}")
    for test in SETTINGS_TESTS:
        table = r.table(tests_raw, test, prefix="tests")
        if table and test not in tests:
            r.fail(f"tests.{test}", f"settings only for a test listed in tests.run ({list(tests)})")
        if test == "probe":
            PROBE_TEST.read(r, table, "tests.probe")
        else:
            defaults = TENSION_DEFAULTS if test == "tension" else SHEAR_DEFAULTS
            schemas.AQS.read(r, table, f"tests.{test}", base={**asdict(defaults), **relaxed})
        test_settings[test] = dict(table)  # as written: the campaign's fingerprint hashes these
    probed = [(k, g) for k, g in enumerate(groups) if "probe" in (g.tests or tests)]
    if probed:
        _check_probe(r, probed, potentials)

    out = OUTPUT.read(r, r.table(raw, "output"), "output", fill=True)
    run = RUNNER.read(r, r.table(raw, "runner"), "runner", fill=True)

    return CampaignConfig(
        name=name, seed=seed, groups=groups, tests=tests, test_settings=test_settings,
        potentials=potentials, relax=relax, directory=Path(out["directory"] or name),
        database=out["database"], figures=out["figures"], workers=run["workers"],
        threads_per_worker=run["threads_per_worker"], source=source, text=text,
    )


def _group(r, g, where) -> SampleGroup:
    values = GROUP.read(r, g, where, fill=True)
    tupled = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return SampleGroup(**tupled)


def _potential(r, value, key) -> dict:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        r.fail(key, f"a potential name or a table {{name = ..., parameters = {{...}}}}, got {value!r}")
    spec = POTENTIAL_SPEC.read(r, value, key, fill=True)
    schemas.POTENTIALS[spec["name"]].read(r, spec["parameters"], f"{key}.parameters")
    return {"name": spec["name"], "parameters": value.get("parameters", {})}


def _check_probe(r, groups, potentials) -> None:
    """Local probing needs sheets (monolayers, bilayers) and potentials with the ``hessian`` ability;
    ``groups``: (index, group) of the groups that are probed."""
    for k, g in groups:
        if g.kind not in KINDS:
            r.fail(f"samples[{k}].kind", f"one of {list(KINDS)} when tests.run has 'probe', got {g.kind!r}")
    for kind in sorted({g.kind for _, g in groups}):
        spec = potentials[kind]
        if not get_potential(spec["name"], **spec["parameters"]).can("hessian"):
            r.fail(f"potential.{kind}", f"a potential with the 'hessian' ability for 'probe', got {spec['name']!r}")
