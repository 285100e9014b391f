"""The Python API for scripts and notebooks: one function per task, re-exported as ``glassfrac.<name>``.

Thin glue over the stages (generate → relax → rings → tension / shear / probe), so that the whole chain is a
few lines::

    import glassfrac as gf
    s = gf.generate(rings=(16, 18), mu2=0.3, kind="bilayer", seed=1)
    s = gf.relax(s, potential="watanabe")
    t = gf.tension(s, potential="watanabe")       # curve, events, typed labels
    m = gf.probe(gf.relax(gf.generate((8, 8), mu2=0.3, kind="monolayer")), grid=4)

Learned predictors follow scikit-learn's ``fit`` / ``predict``: :class:`SoftnessSVM` (per-atom first break,
FC22; softness, DU21) and :class:`ThresholdPredictor` (threshold maps, LISTI25). Campaigns run many samples
through the chain and store them: :func:`run_campaign`, :func:`open_campaign`, :func:`export_dataset`.

Units are LAMMPS "metal" (eV, Å, ps, amu); stresses of sheets (2D structures and bilayers) in N/m, of bulk
in GPa. ``potential`` is a name (``"yukawa2d"``, ``"watanabe"``, ``"matsui"``), a
:class:`~glassfrac.potentials.Potential`, or None for the default of the structure: ``yukawa2d`` for 2D
structures, ``watanabe`` for 3D silica, ``matsui`` for alumina. This module sits at the top layer (beside
the CLI); ``glassfrac/__init__.py`` imports it on first use so that ``import glassfrac`` stays light.
"""

from glassfrac.api.campaigns import export_dataset, open_campaign, run_campaign
from glassfrac.api.chain import LoadingTest, calculator, generate, probe, relax, rings, shear, tension
from glassfrac.api.predictors import ImagePredictor, SoftnessSVM, ThresholdPredictor, predict
from glassfrac.potentials import get_potential
from glassfrac.potentials.ase_calculator import to_atoms

__all__ = ["generate", "relax", "rings", "tension", "shear", "probe", "get_potential", "calculator", "to_atoms",
           "LoadingTest", "SoftnessSVM", "ThresholdPredictor", "ImagePredictor", "predict", "run_campaign",
           "open_campaign", "export_dataset"]
