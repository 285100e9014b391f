"""The schema of config keys (glassfrac.core.schema): one description per key, checked the same
way in every config; the settings schemas match their dataclasses."""

import dataclasses

import pytest

from glassfrac.campaign import schemas
from glassfrac.core.config import TomlReader
from glassfrac.core.errors import InputError
from glassfrac.core.schema import Key, Schema, signature_schema
from glassfrac.generate.quench import QuenchSchedule
from glassfrac.learn.oxide_softness import SoftnessSettings
from glassfrac.mechanics.aqs import AQSSettings
from glassfrac.mechanics.md import MDSettings
from glassfrac.mechanics.md_tension import TensionSettings
from glassfrac.mechanics.probe import ProbeSettings
from glassfrac.potentials.matsui import MatsuiPotential
from glassfrac.potentials.watanabe import Watanabe
from glassfrac.potentials.yukawa import Yukawa2D

R = TomlReader("my.toml")
TABLE = Schema((
    Key("step", float, 0.01, "strain step", "strain", positive=True),
    Key("max_strain", float, 0.3, positive=True),
    Key("n", int, help="count", lo=0, hi=5),
    Key("method", str, "fire", choices=("fire", "lbfgs")),
    Key("rings", list, [4, 4], items=int, length=2, positive=True),
    Key("C", (float, list), 1.0, items=float, positive=True, nonempty=True),
    Key("cutoff", (float, type(None)), None),
), rules=(lambda v: ("step", f"step <= max_strain ({v['max_strain']}), got {v['step']}")
                  if v["step"] > v["max_strain"] else None,))


@pytest.mark.parametrize("table, message", [
    ({"n": 1, "step": 0}, "my.toml: key 't.step': expected a positive float (strain), got 0.0"),
    ({"n": 1, "step": "fast"}, "key 't.step': expected a positive float (strain), got 'fast'"),
    ({"n": 1, "max_strain": -0.3}, "key 't.max_strain': expected a positive float, got -0.3"),
    ({"n": 1, "step": float("nan")}, "key 't.step': expected a finite number"),
    ({"n": 1, "step": True}, "key 't.step': expected a positive float"),
    ({"n": 6}, "key 't.n': expected an int between 0 and 5, got 6"),
    ({"n": 2.0}, "key 't.n': expected an int between 0 and 5, got 2.0"),
    ({}, "key 't.n': expected an int between 0 and 5 (required: count)"),
    ({"n": 1, "method": "lbgfs"},
     "key 't.method': expected one of ['fire', 'lbfgs'], got 'lbgfs' (did you mean 'lbfgs'?)"),
    ({"n": 1, "rings": [4]}, "key 't.rings': expected a list of positive ints of length 2, got 1 elements"),
    ({"n": 1, "rings": [4, 0]}, "key 't.rings[1]': expected a list of positive ints of length 2, got 0"),
    ({"n": 1, "C": []}, "key 't.C': expected a positive float or list of positive floats, got an empty list"),
    ({"n": 1, "C": [1.0, -2]}, "key 't.C[1]'"),
    ({"n": 1, "stepp": 0.1}, "unknown key 't.stepp'; did you mean 'step'?"),
    ({"n": 1, "step": 0.5}, "key 't.step': expected step <= max_strain (0.3), got 0.5"),
])
def test_every_problem_names_the_file_the_dotted_key_and_what_was_expected(table, message):
    with pytest.raises(InputError) as err:
        TABLE.read(R, table, "t")
    assert str(err.value).startswith("my.toml: ") and message in str(err.value)


def test_values_are_converted_and_defaults_filled():
    out = TABLE.read(R, {"n": 2, "max_strain": 2, "C": [1, 2]}, "t")
    assert out == {"n": 2, "max_strain": 2.0, "C": [1.0, 2.0]} and isinstance(out["max_strain"], float)
    full = TABLE.read(R, {"n": 2, "cutoff": None}, "t", fill=True)
    assert full["method"] == "fire" and full["rings"] == [4, 4] and full["cutoff"] is None
    full["rings"].append(5)  # defaults are copies
    assert TABLE.defaults()["rings"] == [4, 4]
    # the rules see the values a table leaves out through base
    with pytest.raises(InputError, match="step <= max_strain"):
        TABLE.read(R, {"n": 1, "step": 0.2}, "t", base={"max_strain": 0.1})
    assert TABLE.read(R, {"n": 1, "extra": object}, "t", extra=("extra",))["extra"] is object
    with pytest.raises(InputError, match="my.toml: expected a table of keys at the top level"):
        TABLE.read(R, [1], "")
    rows = TABLE.describe()
    assert rows[0] == {"key": "step", "expected": "a positive float (strain)", "default": 0.01, "unit": "strain",
                       "help": "strain step"}


@pytest.mark.parametrize("schema, cls", [
    (schemas.AQS, AQSSettings), (schemas.PROBE, ProbeSettings), (schemas.MD, MDSettings),
    (schemas.QUENCH, QuenchSchedule), (schemas.TENSION, TensionSettings), (schemas.SOFTNESS, SoftnessSettings),
    (schemas.MATSUI, MatsuiPotential),
])
def test_settings_schemas_describe_their_dataclasses(schema, cls):
    """Every field has a key with the field's default; nothing else (a new field fails here)."""
    assert schema.covers(cls) == []
    assert all(k.help for k in schema.keys)
    cls(**schema.read(R, {}, "t", fill=True))  # the defaults build the object


@pytest.mark.parametrize("name, cls", [("yukawa2d", Yukawa2D), ("watanabe", Watanabe)])
def test_potential_schemas_match_the_constructors(name, cls):
    schema = schemas.POTENTIALS[name]
    import inspect

    params = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    assert set(schema.names) == set(params)
    assert all(params[k.name] == k.default for k in schema.keys)


def test_covers_reports_missing_extra_and_different_keys():
    @dataclasses.dataclass
    class Settings:
        a: float = 1.0
        b: int = 2

    schema = Schema((Key("a", float, 2.0), Key("c", int, 0)))
    assert schema.covers(Settings) == ["a: default 2.0, field default 1.0", "c: no such field of Settings",
                                       "b: field without a key"]


def test_signature_schema_types_parameters_by_their_defaults():
    def make(size, depth: int = 3, scale=1.0, widths=(1, 2), name="x", extra=None, **rest):
        return size

    schema = signature_schema(make, Key("depth", int, 3, positive=True))
    assert schema.names == ("size", "depth", "scale", "widths", "name", "extra")
    out = schema.read(R, {"size": "anything", "scale": 2, "widths": [3], "extra": [1]}, "m")
    assert out == {"size": "anything", "scale": 2.0, "widths": [3], "extra": [1]}
    for bad, message in (({}, "key 'm.size'"), ({"size": 1, "depth": 0}, "key 'm.depth': expected a positive int"),
                         ({"size": 1, "widths": ["a"]}, r"key 'm.widths\[0\]': expected a list of ints"),
                         ({"size": 1, "name": 3}, "key 'm.name': expected a string")):
        with pytest.raises(InputError, match=message):
            schema.read(R, bad, "m")
