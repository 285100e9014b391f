"""Unit conversions. glassfrac works in LAMMPS "metal" units (eV, Å, ps, amu, bar for LAMMPS
pressures); stresses are reported in N/m for sheets and GPa for bulk."""

EV_PER_A2_IN_N_PER_M = 16.02176634
"""1 eV/Å^2 in N/m (2D stress)."""
EV_PER_A3_IN_GPA = 160.2176634
"""1 eV/Å^3 in GPa (3D stress)."""
BAR_IN_GPA = 1e-4
"""1 bar (LAMMPS metal pressure unit) in GPa."""
