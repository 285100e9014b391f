"""Box, Structure, neighbour lists and file I/O."""

from glassfrac.structure.box import Box
from glassfrac.structure.io import read, read_lammps_data, read_lammps_dump, write
from glassfrac.structure.neighbors import neighbor_pairs
from glassfrac.structure.structure import MASSES, Structure

__all__ = ["Box", "Structure", "MASSES", "neighbor_pairs", "read", "write",
           "read_lammps_data", "read_lammps_dump"]
