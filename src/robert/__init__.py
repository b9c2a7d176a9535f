"""RobERt - Robotic Exoplanet Recognition (after Waldmann 2016, ApJ 820, 107)."""

__version__ = "0.1.0"
