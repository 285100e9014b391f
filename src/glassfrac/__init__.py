"""glassfrac: predict where and when a disordered solid fails, from its undeformed structure.

Units are LAMMPS "metal" throughout (eV, Å, ps, amu); 2D stress in N/m, 3D stress in GPa.
"""

from glassfrac.core import VERSION
from glassfrac.core.errors import GlassfracError, InputError
from glassfrac.structure import Box, Structure, read, write

__version__ = VERSION

__all__ = ["Box", "Structure", "read", "write", "GlassfracError", "InputError", "__version__"]
