"""Real input data: obtaining, verifying and describing the files under ``data/``."""
