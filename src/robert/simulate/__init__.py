"""Simulated-spectra datasets: parameter draws, the batched forward model, shards on disk."""
