"""Builders shared by the test modules (no test module imports another): configs, datasets, stores, scripts."""
