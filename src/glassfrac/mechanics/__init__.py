"""mechanics stage."""
