"""Inference on observed spectra: reading, coverage matching, resampling, calibration, prediction."""
