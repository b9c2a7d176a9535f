"""Inference on observed spectra: reading, placing rows on the model grid, the "not constrained" test, prediction,
the model per geometry (routing), serving."""
