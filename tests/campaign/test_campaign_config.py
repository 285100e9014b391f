"""Campaign configs: validation errors name the file and key; samples and seeds are fixed by the config."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from glassfrac.campaign.config import load_config, parse_config
from glassfrac.campaign.samples import expand, sample_seeds
from glassfrac.core.errors import InputError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

BASE = """
[campaign]
name = "t"
seed = 3

[[samples]]
kind = "monolayer"
rings = [6, 6]
mu2 = [0.3, 0.6]
count = 2
"""


def test_shipped_configs_are_valid():
    quick = load_config(CONFIGS / "quickstart.toml")
    fc22 = load_config(CONFIGS / "paper-fc22.toml")
    listi = load_config(CONFIGS / "paper-listi25.toml")
    assert quick.n_samples <= 8
    assert fc22.n_samples == 3000 and {g.kind for g in fc22.groups} == {"bilayer"}
    assert fc22.tests == ("tension",) and fc22.potentials["bilayer"]["name"] == "watanabe"
    assert listi.n_samples == 60 and listi.groups[0].distribution == "lognormal"
    assert listi.tests == ("shear",) and listi.test_settings["shear"]["step"] == 1e-4
    assert len(expand(fc22)) == 3000


@pytest.mark.parametrize("text, message", [
    (BASE.replace("mu2 = [0.3, 0.6]", "mu3 = [0.3]"), "unknown key 'samples[0].mu3'"),
    (BASE.replace("rings = [6, 6]", "rings = [6, 5]"), "key 'samples[0].rings'"),
    (BASE.replace("count = 2", "count = 0"), "key 'samples[0].count': expected a positive int"),
    (BASE.replace("count = 2", "count = 2\nsigma_factor = [1.0]"), "exactly one of mu2, mu2_range, sigma_factor"),
    (BASE.replace('kind = "monolayer"', 'kind = "trilayer"'), "key 'samples[0].kind'"),
    (BASE + '[tests]\nrun = ["probes"]\n', "key 'tests.run[0]'"),
    (BASE + '[tests]\nrun = ["probe"]\n[tests.probe]\ngridd = 8\n', "unknown key 'tests.probe.gridd'"),
    (BASE + '[tests]\nrun = ["probe"]\n[tests.probe]\ngrid = 0\n', "key 'tests.probe.grid': expected a positive"),
    (BASE + '[tests]\nrun = ["probe"]\n[tests.probe]\nsamples = 1.5\n',
     "key 'tests.probe.samples': expected a positive int, got 1.5"),
    (BASE + '[potential]\nmonolayer = "matsui"\n[tests]\nrun = ["probe"]\n',
     "key 'potential.monolayer': expected a potential with the 'hessian' ability"),
    (BASE + '[tests]\nrun = ["tension"]\n[tests.shear]\nstep = 1e-4\n', "key 'tests.shear'"),
    (BASE + '[tests.tension]\nstepp = 1e-4\n', "unknown key 'tests.tension.stepp'"),
    (BASE + '[relax]\nmethod = "newton"\n', "key 'relax.method'"),
    (BASE + '[output]\ndatabase = "mysql://x"\n', "key 'output.database'"),
    (BASE + '[potential]\nmonolayer = "lj"\n', "key 'potential.monolayer.name'"),
    (BASE.replace('seed = 3', 'seed = "3"'), "key 'campaign.seed': expected an int >= 0, got '3'"),
    ("[campaign\n", "not valid TOML"),
    (BASE.replace("count = 2", 'count = 2\ntests = ["shear"]') + '[tests]\nrun = ["tension"]\n',
     "key 'samples[0].tests': expected tests listed in tests.run (['tension']), got 'shear'"),
])
def test_errors_name_file_and_key(text, message):
    with pytest.raises(InputError) as err:
        parse_config(text, source="my.toml")
    assert str(err.value).startswith("my.toml: ")
    assert message in str(err.value)


def test_bilayers_can_be_probed():
    config = parse_config(BASE.replace('kind = "monolayer"', 'kind = "bilayer"') + '[tests]\nrun = ["probe"]\n')
    assert config.tests == ("probe",) and config.groups[0].kind == "bilayer"


def test_probe_settings_are_kept_and_replicas_counted_per_disorder_value():
    config = parse_config(BASE + '[tests]\nrun = ["shear", "probe"]\n[tests.probe]\ngrid = 8\nsamples = 1\n')
    assert config.tests == ("shear", "probe") and config.test_settings["probe"] == {"grid": 8, "samples": 1}
    assert [(s.mu2, s.replica) for s in expand(config)] == [(0.3, 0), (0.3, 1), (0.6, 0), (0.6, 1)]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="nothere.toml"):
        load_config(tmp_path / "nothere.toml")


def test_samples_are_numbered_through_groups_and_seeded_by_index():
    text = BASE + """
[[samples]]
kind = "bilayer"
rings = [4, 4]
mu2_range = [0.25, 1.0]
count = 3
"""
    specs = expand(parse_config(text))
    assert [s.sample_id for s in specs] == [f"s{i:06d}" for i in range(7)]
    assert [s.mu2 for s in specs[:4]] == [0.3, 0.3, 0.6, 0.6]
    assert [s.kind for s in specs] == ["monolayer"] * 4 + ["bilayer"] * 3
    ranged = np.array([s.mu2 for s in specs[4:]])
    assert np.all((ranged >= 0.25) & (ranged <= 1.0)) and len(set(ranged)) == 3
    assert [s.seed for s in specs] == [sample_seeds(3, i)[0] for i in range(7)]
    assert len({s.seed for s in specs}) == 7
    again = expand(parse_config(text.replace("count = 3", "count = 5")))
    assert again[:7] == specs  # adding samples changes none of the existing ones


def test_fingerprint_follows_the_definition_not_the_runner():
    a = parse_config(BASE)
    assert parse_config(BASE + "[runner]\nworkers = 2\n[output]\ndirectory = 'x'\n").fingerprint() == a.fingerprint()
    assert parse_config(BASE.replace("seed = 3", "seed = 4")).fingerprint() != a.fingerprint()


@pytest.mark.parametrize("setting, message", [
    ("step = 0", "key 'tests.tension.step': expected a positive float (strain), got 0.0"),
    ('step = "fast"', "key 'tests.tension.step': expected a positive float (strain), got 'fast'"),
    ("max_strain = -0.3", "key 'tests.tension.max_strain': expected a positive float (strain), got -0.3"),
    ("precision = 0.1", "key 'tests.tension.precision': expected precision <= step (0.005), got 0.1"),
    ("step = nan", "key 'tests.tension.step': expected a finite number"),
    ("stepp = 0.01", "unknown key 'tests.tension.stepp'; did you mean 'step'?"),
])
def test_impossible_test_settings_stop_the_run_before_any_sample(tmp_path, capsys, setting, message):
    """Before: every sample failed and the run exited 0. Now: exit 2 naming the file and key, nothing written."""
    from glassfrac.cli import main

    path = tmp_path / "c.toml"
    path.write_text(BASE + f'[tests]\nrun = ["tension"]\n[tests.tension]\n{setting}\n'
                    f'[output]\ndirectory = "{tmp_path / "out"}"\n')
    assert main(["campaign", "run", str(path), "--workers", "0", "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error.startswith(f"{path}: ") and message in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def test_potential_parameters_are_checked_by_the_potential_schema():
    for params, message in (("{rc = -1.0}", "key 'potential.monolayer.parameters.rc': expected a positive float"),
                            ("{sigma = {Si-C = 1.0}}", "key 'potential.monolayer.parameters.sigma': expected keys "
                                                       "that are pairs among ['Si-Si', 'Si-O', 'O-O']"),
                            ("{kappaa = 0.1}", "did you mean 'kappa'?")):
        text = BASE + f'[potential]\nmonolayer = {{name = "yukawa2d", parameters = {params}}}\n'
        with pytest.raises(InputError, match=re.escape(message)):
            parse_config(text, "my.toml")
    config = parse_config(BASE + '[potential]\nmonolayer = {name = "yukawa2d", parameters = {rc = 9}}\n', "c")
    assert config.potentials["monolayer"] == {"name": "yukawa2d", "parameters": {"rc": 9}}


@pytest.mark.parametrize("text, message", [
    ('{"fingerprint": "x"}', "key 'definition': expected a table (required"),
    ('{"fingerprint": "x", "definition": {"seed": 1}}',
     "key 'definition': expected a table with the campaign's name, got {'seed': 1}"),
    ("[1, 2]", "expected a table of keys at the top level"),
    ("{", "not a campaign record (JSON with 'fingerprint' and 'definition')"),
])
def test_a_campaign_json_without_its_definition_is_named(tmp_path, capsys, text, message):
    """Before: KeyError, exit 1 with a traceback. Now: exit 2 naming campaign.json, for every reader."""
    from glassfrac.campaign.store import CampaignStore
    from glassfrac.cli import main

    CampaignStore(tmp_path / "c", "c")  # the database
    record = tmp_path / "c" / "campaign.json"
    record.write_text(text)
    for argv in (["campaign", "status"], ["report"]):
        assert main([*argv, str(tmp_path / "c"), "--json"]) == 2
        error = json.loads(capsys.readouterr().out)["error"]
        assert error.startswith(f"{record}: ") and message in error


def test_a_group_runs_its_own_tests_and_is_probed_only_if_they_say_so():
    two_groups = BASE.replace('kind = "monolayer"', 'kind = "bilayer"') + BASE[BASE.index("[[samples]]"):]
    config = parse_config(two_groups.replace("count = 2", 'count = 2\ntests = ["predict", "tension"]', 1)
                          + '[potential]\nbilayer = "matsui"\n[tests]\nrun = ["predict", "tension", "probe"]\n')
    specs = expand(config)
    assert [s.tests for s in specs[:2]] == [("predict", "tension")] * 2 and specs[-1].tests is None
    with pytest.raises(InputError, match="potential.bilayer"):  # all groups probed: the bilayers need a Hessian
        parse_config(two_groups + '[potential]\nbilayer = "matsui"\n[tests]\nrun = ["probe"]\n')
