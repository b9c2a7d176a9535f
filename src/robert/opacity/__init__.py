"""Opacity layer: line lists, band models, CIA and Rayleigh on one wavenumber grid.

Written by hand where no maintained library does the job offline with our data: the readers
are small, and the cross-section builders are vectorised numpy over the (T, P) grid.
"""
