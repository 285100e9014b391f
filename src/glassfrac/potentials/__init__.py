"""potentials stage."""
