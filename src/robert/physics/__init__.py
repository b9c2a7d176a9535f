"""Batched torch emission forward model (DESIGN.md section 3).

Hand-written because no maintained library does batched, differentiable torch radiative transfer
on our own cross-section cache (TauREx 3 and petitRADTRANS compute one spectrum at a time in
numpy/Fortran). The pieces are separable like TauREx 3: planet, atmosphere, profiles, chemistry,
opacity, emission, binning, composed by :class:`robert.physics.model.EmissionModel`.
"""
