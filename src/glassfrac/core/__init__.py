"""The base layer: what every stage uses (errors, atomic files, JSON encoding, provenance, units,
progress bars, thread counts). It imports nothing else from glassfrac."""

VERSION = "0.1.0"
"""The package version (``glassfrac.__version__``)."""
