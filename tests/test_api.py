"""The Python API: every public name of ``glassfrac`` is documented with an example, and every example runs
(doctest, in a temporary folder); the chain of the README in a few lines; ``import glassfrac`` stays light."""

import doctest
import subprocess
import sys

import numpy as np
import pytest

import glassfrac as gf

DOCUMENTED = ("generate", "relax", "rings", "tension", "shear", "probe", "read", "write", "get_potential",
              "calculator", "to_atoms", "LoadingTest", "SoftnessSVM", "ThresholdPredictor", "ImagePredictor", "predict",
              "run_campaign", "open_campaign", "export_dataset")
CAMPAIGN_CHAIN = ("run_campaign", "open_campaign", "export_dataset")
"""Their examples share one folder, in this order: the later ones read the campaign the first one runs."""


def _examples(name):
    obj = getattr(gf, name)
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
    return [t for t in tests if t.examples]


@pytest.fixture(scope="module")
def campaign_folder(tmp_path_factory):
    return tmp_path_factory.mktemp("campaign-examples")


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_public_name_has_units_and_a_running_example(name, tmp_path, monkeypatch, campaign_folder):
    """Each docstring has an Examples section that runs as written (outputs compared by doctest)."""
    doc = getattr(gf, name).__doc__
    assert "Examples\n" in doc, name
    assert any(unit in doc for unit in ("Å", "eV", "N/m")), f"{name}: no unit named"
    tests = _examples(name)
    assert tests, f"{name} has no doctest example"
    monkeypatch.chdir(campaign_folder if name in CAMPAIGN_CHAIN else tmp_path)  # examples that write files write here
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"


def test_all_lists_the_api():
    assert set(DOCUMENTED) <= set(gf.__all__)
    assert set(DOCUMENTED) <= set(dir(gf))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        gf.nonsense  # noqa: B018


def test_generate_is_the_function_and_the_subpackage_still_imports():
    """``gf.generate`` is the API function even though a subpackage has its name; the subpackage's modules
    import as before, in every spelling."""
    import glassfrac.generate.network as network
    from glassfrac.generate import KINDS, generate

    assert gf.generate.__wrapped__ is gf.api.generate and "Examples" in gf.generate.__doc__
    assert network.generate is generate and gf.generate.KINDS == KINDS
    assert gf.generate((4, 4), seed=1).n_atoms == generate((4, 4), mu2=0.3, kind="monolayer", seed=1).n_atoms


def test_import_glassfrac_does_not_import_torch():
    code = "import sys, glassfrac; print('torch' in sys.modules); glassfrac.relax; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_the_chain_in_a_few_lines(tmp_path):
    """generate → relax → rings → tension → probe → write/read, on a 4 × 4-ring bilayer with Watanabe."""
    s = gf.relax(gf.generate((4, 4), mu2=0.3, kind="bilayer", seed=2), potential="watanabe")
    assert s.info["relax"]["converged"] and s.dim == 3
    r = gf.rings(s)
    assert r.n_rings == 16 and r.ring_sizes.mean() == pytest.approx(6.0)
    t = gf.tension(s, potential="watanabe", max_strain=0.01, step=0.005)
    assert np.all(np.diff(t.stress) > 0) and t.stress_unit == "N/m"
    assert t.labels.modulus > 0 and t.events == []
    gf.write(s, tmp_path / "s.extxyz")
    back = gf.read(tmp_path / "s.extxyz")
    np.testing.assert_allclose(back.positions, s.positions, atol=1e-8)
    assert back.info["relax"]["energy"] == pytest.approx(s.info["relax"]["energy"])


def test_default_potential_and_clear_errors():
    s = gf.generate((4, 4), seed=1)
    with pytest.raises(gf.InputError, match="unknown potential"):
        gf.relax(s, potential="lj")
    with pytest.raises(gf.InputError, match="two equal numbers"):
        gf.probe(s, grid=(2, 3))
    with pytest.raises(gf.InputError, match="species"):  # yukawa2d is the default of a 2D sample; no Al
        gf.relax(gf.Structure(s.positions, ["Al"] * s.n_atoms, s.box))
    with pytest.raises(gf.InputError, match="not fitted"):
        gf.SoftnessSVM().predict(s)
    with pytest.raises(gf.InputError, match="unknown threshold model"):
        gf.ThresholdPredictor("forest")


def test_softness_svm_fits_labels_given_as_arrays_and_saves(tmp_path):
    """The per-atom labels may come as arrays instead of tension tests; a saved model predicts the same."""
    samples = [gf.relax(gf.generate((4, 4), seed=k)) for k in (1, 2)]
    labels = [(s.positions[:, 0] < s.box.lengths[0] / 2).astype(np.int8) for s in samples]  # a learnable split
    svm = gf.SoftnessSVM(descriptor="fc22", C=1.0, evaluate=True).fit(samples, labels)
    assert svm.evaluation_.summary()["n_atoms"] == 2 * samples[0].n_atoms
    svm.save(tmp_path / "svm.safetensors")
    back = gf.SoftnessSVM.load(tmp_path / "svm.safetensors")
    np.testing.assert_array_equal(back.predict(samples[1]), svm.predict(samples[1]))
    np.testing.assert_allclose(back.softness(samples[1]), svm.softness(samples[1]), rtol=1e-12)


def test_threshold_predictor_saves_and_loads(tmp_path):
    samples = [gf.relax(gf.generate((6, 6), seed=k)) for k in (1, 2)]
    maps = [gf.probe(s, grid=2, r_free=5.0, shell=3.5, step=0.02, precision=1e-3) for s in samples]
    predictor = gf.ThresholdPredictor("gnn", radius=5.0, epochs=2).fit(samples, maps)
    assert predictor.record_["windows"] == {"train": 4, "validation": 4}
    predictor.save(tmp_path / "gnn.safetensors")
    back = gf.ThresholdPredictor.load(tmp_path / "gnn.safetensors")
    np.testing.assert_allclose(back.predict(samples[0], grid=2).threshold,
                               predictor.predict(samples[0], grid=2).threshold)


def test_image_predictor_learns_locations_in_angstrom_and_saves(tmp_path):
    samples = [gf.generate((4, 4), mu2=m, seed=k) for k, m in enumerate((0.3, 0.5, 0.7, 0.9))]
    sites = [s.positions[k, :2] for k, s in enumerate(samples)]  # an atom of each sample, Å
    cnn = gf.ImagePredictor("location", size=32, pixels=64, epochs=2).fit(samples, sites)
    xy = cnn.predict(samples[1])
    lengths = np.diag(samples[1].box.cell)[:2]
    assert xy.shape == (2,) and np.all(xy >= samples[1].box.origin[:2]) and np.all(xy < lengths + 1e-9)
    cnn.save(tmp_path / "loc.safetensors")
    back = gf.ImagePredictor.load(tmp_path / "loc.safetensors")
    np.testing.assert_allclose(back.predict(samples[1]), xy, rtol=1e-6)
    with pytest.raises(gf.InputError, match="one label per structure"):
        gf.ImagePredictor("strain").fit(samples, [0.1])
    with pytest.raises(gf.InputError, match="not fitted"):
        gf.ImagePredictor("mu2").predict(samples[0])
