"""Amorphous oxides in 3D (DU21 alumina): LAMMPS-backed MD with the Matsui potential,
melt-quench under pressure, tension, and structural analyses."""
