"""Spectrum-level helpers shared by training, evaluation and inference (no training or inference code here).

One place for what both sides do to a spectrum: stable seeds, noise, [0, 1] scaling, instrument coverage,
resampling between wavelength bins, observation patterns and detection significance. Training
(:mod:`robert.data`) and inference (:mod:`robert.inference`) import from here, never from each other.
"""
