"""Figures for the README and the reports (matplotlib, Agg backend)."""
