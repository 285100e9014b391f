"""campaign stage."""
