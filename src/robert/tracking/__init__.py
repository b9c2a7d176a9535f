"""Experiment tracking: MLflow runs, the model registry and the pyfunc wrapper."""
