"""glassfrac: predict where and when a disordered solid fails, from its undeformed structure.

Units are LAMMPS "metal" throughout (eV, Å, ps, amu); 2D stress in N/m, 3D stress in GPa.

The Python API (:mod:`glassfrac.api`: ``generate``, ``relax``, ``rings``, ``tension``, ``shear``, ``probe``,
``get_potential``, ``calculator``, ``to_atoms``; the predictors ``SoftnessSVM``, ``ThresholdPredictor`` and
``ImagePredictor``; ``predict`` with the registered models; the campaigns ``run_campaign``, ``open_campaign``,
``export_dataset``) is loaded on first use, so that ``import glassfrac`` does not import torch; ``Box``,
``Structure``, ``read`` and ``write`` are here at once.
"""

import functools
import sys
from types import ModuleType

from glassfrac.core import VERSION
from glassfrac.core.errors import GlassfracError, InputError
from glassfrac.structure import Box, Structure, read, write

__version__ = VERSION

API = ("generate", "relax", "rings", "tension", "shear", "probe", "get_potential", "calculator", "to_atoms",
       "LoadingTest", "SoftnessSVM", "ThresholdPredictor", "ImagePredictor", "predict", "run_campaign",
       "open_campaign", "export_dataset")
"""Names of :mod:`glassfrac.api`, loaded on first access (:func:`__getattr__`)."""

__all__ = ["Box", "Structure", "read", "write", "GlassfracError", "InputError", "__version__", *API]


def __getattr__(name: str):
    if name in API:
        import glassfrac.api  # deferred: the stages import torch (about 2 s); `import glassfrac` stays light

        return getattr(glassfrac.api, name)
    raise AttributeError(f"module 'glassfrac' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(API))


class _Generate:
    """``glassfrac.generate``: calls the API function (same docstring and signature) and gives the attributes of
    the subpackage, so that ``import glassfrac.generate.network as network`` still works."""

    def __init__(self, function, subpackage):
        functools.update_wrapper(self, function)
        self._subpackage = subpackage

    def __call__(self, *args, **kwargs):
        return self.__wrapped__(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.__dict__["_subpackage"], name)

    def __repr__(self) -> str:
        return "<function glassfrac.generate (the API; the subpackage's names as attributes)>"


class _Package(ModuleType):
    """The type of the ``glassfrac`` module: ``glassfrac.generate`` is the API function although the
    subpackage ``glassfrac.generate`` has the same name. The import system binds a subpackage as an attribute
    of its parent; this property keeps that binding aside, so ``from glassfrac.generate import ...`` and
    ``sys.modules["glassfrac.generate"]`` give the subpackage, and ``gf.generate`` the function."""

    @property
    def generate(self):
        function = __getattr__("generate")  # loads the API, which imports the subpackage (bound by the setter)
        return _Generate(function, self.__dict__["_generate_subpackage"])

    @generate.setter
    def generate(self, subpackage):
        self.__dict__["_generate_subpackage"] = subpackage


sys.modules[__name__].__class__ = _Package
