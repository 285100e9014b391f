"""The shared TOML loader: file, line and dotted key in every error; typed getters with ranges."""

import pytest

from glassfrac.core.config import TomlReader, parse_toml, read_toml
from glassfrac.core.errors import InputError


def test_read_names_file_and_line(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[md]\nseed = 3\nsteps = = 4\n")
    with pytest.raises(InputError, match=r"run.toml: not valid TOML: .*line 3"):
        read_toml(path)
    with pytest.raises(InputError, match="settings not found"):
        read_toml(tmp_path / "missing.toml", "settings")
    path.write_text("[md]\nseed = 3\n")
    assert read_toml(path) == ({"md": {"seed": 3}}, "[md]\nseed = 3\n")


def test_typed_getters_and_ranges():
    raw = parse_toml('[a]\nn = 3\nx = 2\nflag = true\nname = "q"\nvalues = [1, 2]\n', "c.toml")
    r = TomlReader("c.toml")
    a = r.table(raw, "a", required=True)
    assert r.integer(a, "a.n", lo=1, hi=3) == 3
    assert r.number(a, "a.x") == 2.0 and isinstance(r.number(a, "a.x"), float)
    assert r.boolean(a, "a.flag") is True and r.string(a, "a.name") == "q" and r.array(a, "a.values") == [1, 2]
    assert r.integer(a, "a.missing", 7) == 7
    with pytest.raises(InputError, match=r"c.toml: key 'a.n': expected a int between 4 and 5, got 3"):
        r.integer(a, "a.n", lo=4, hi=5)
    with pytest.raises(InputError, match="key 'a.flag': expected int"):
        r.integer(a, "a.flag")
    with pytest.raises(InputError, match="key 'a.x': expected a float <= 1"):
        r.number(a, "a.x", hi=1)
    with pytest.raises(InputError, match="unknown key 'a.n'"):
        r.keys(a, "a", ("x", "flag", "name", "values"))
    with pytest.raises(InputError, match="key 'b': expected a table"):
        r.table(raw, "b", required=True)


def test_a_folder_undecodable_bytes_or_an_unreadable_file_is_named(tmp_path, monkeypatch):
    """Before: a folder was 'not found', bytes that are not UTF-8 a UnicodeDecodeError (exit 1)."""
    import pathlib

    (tmp_path / "d").mkdir()
    with pytest.raises(InputError, match=f"{tmp_path / 'd'}: campaign config is a folder, expected a TOML file"):
        read_toml(tmp_path / "d", "campaign config")
    (tmp_path / "b.toml").write_bytes(b"[md]\nseed = 1\n\xff\xfe")
    with pytest.raises(InputError, match=r"b.toml: config file is not UTF-8 text \(byte 14: b'\\xff'\)"):
        read_toml(tmp_path / "b.toml")

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "read_bytes", denied)
    with pytest.raises(InputError, match="b.toml: cannot read the config file: Permission denied"):
        read_toml(tmp_path / "b.toml")


def test_non_finite_numbers_and_unknown_keys_get_a_suggestion():
    raw = parse_toml("[a]\nx = nan\nstpe = 1\n", "c.toml")
    r = TomlReader("c.toml")
    with pytest.raises(InputError, match="key 'a.x': expected a finite float, got nan"):
        r.number(raw["a"], "a.x")
    with pytest.raises(InputError, match="unknown key 'a.stpe'; did you mean 'step'?"):
        r.keys(raw["a"], "a", ("x", "step"))
