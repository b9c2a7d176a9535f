"""Which registered model reads which observed spectrum: one model per geometry, chosen by the spectrum's geometry.

An eclipse depth Fp/Fs and a transit depth (Rp/Rs)^2 are both "a depth" in a table; nothing in the numbers says
which one a file holds, and a model of the other geometry would answer anyway (wrongly). So the geometry is
never guessed: it comes from the ``geometry`` column of the file (per spectrum) or from ``--geometry``, and a
spectrum with neither is a user error. The model for each geometry is configured (``predict.models`` in
``conf/predict.yaml``: emission -> ``models:/robert@champion``, transmission ->
``models:/robert-transmission@champion``), or given once for every file (``--model``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from robert.errors import UserError
from robert.inference.observed import GEOMETRIES, ObservedSpectra

GEOMETRY_SOURCE_COLUMN, GEOMETRY_SOURCE_OPTION = "geometry column", "--geometry"


@dataclass(frozen=True)
class Routed:
    """Spectra of one file that one model reads: their indices in the file, the geometry and where it came from."""

    source: str                  # the file
    spectra: ObservedSpectra     # only the spectra of this geometry
    geometry: str
    geometry_from: str           # GEOMETRY_SOURCE_COLUMN | GEOMETRY_SOURCE_OPTION


def spectrum_geometries(spectra: ObservedSpectra, source: str, option: str | None) -> list[tuple[str, str]]:
    """(geometry, where it came from) for each spectrum of a file; a UserError when a spectrum has none or the
    column contradicts ``option``."""
    if option is not None and option not in GEOMETRIES:
        raise UserError(f"--geometry {option!r}; expected one of: {', '.join(GEOMETRIES)}")
    column = spectra.geometries or [""] * len(spectra)
    found = []
    for name, given in zip(spectra.names, column, strict=True):
        where = source if len(spectra) == 1 else f"{source}, spectrum {name!r}"
        if given and option and given != option:
            raise UserError(f"{where}: column geometry says {given}, but --geometry {option} was given; "
                            "drop one of them")
        if given:
            found.append((given, GEOMETRY_SOURCE_COLUMN))
        elif option:
            found.append((option, GEOMETRY_SOURCE_OPTION))
        else:
            blank = " (blank there)" if spectra.geometries is not None else ""
            raise UserError(f"{where}: geometry unknown: add a column geometry (emission or transmission){blank} "
                            "or pass --geometry emission|transmission")
    return found


def subset(spectra: ObservedSpectra, indices: Sequence[int]) -> ObservedSpectra:
    """The spectra ``indices`` of a validated table, as a table of their own (row descriptions kept)."""
    if list(indices) == list(range(len(spectra))):
        return spectra
    rows = [np.arange(spectra.offsets[i], spectra.offsets[i + 1]) for i in indices]
    take = np.concatenate(rows)
    pick = lambda values: [values[i] for i in indices]  # noqa: E731
    return ObservedSpectra(pick(spectra.names), np.concatenate([[0], np.cumsum([len(r) for r in rows])]),
                           spectra.wavelength_um[take], spectra.depth[take], spectra.depth_err[take],
                           spectra.bin_low_um[take], spectra.bin_high_um[take], spectra.source_rows[take],
                           pick(spectra.instruments), spectra.describe,
                           None if spectra.geometries is None else pick(spectra.geometries),
                           None if spectra.instrument_codes is None else spectra.instrument_codes[take])


def route(spectra: ObservedSpectra, source: str, option: str | None) -> list[Routed]:
    """A file's spectra grouped by geometry (in order of first appearance)."""
    geometries = spectrum_geometries(spectra, source, option)
    groups: dict[tuple[str, str], list[int]] = {}
    for index, key in enumerate(geometries):
        groups.setdefault(key, []).append(index)
    return [Routed(source, subset(spectra, members), geometry, given_by)
            for (geometry, given_by), members in groups.items()]


def model_uri(geometry: str, models: Mapping[str, str], override: str | None) -> str:
    """The registered model that reads spectra of ``geometry``: ``override`` (``--model``) or the configured one."""
    if override:
        return override
    if geometry not in models:
        raise UserError(f"predict.models in conf/predict.yaml names no model for {geometry} spectra "
                        f"(it has: {', '.join(models) or 'none'}); add one or pass --model")
    return str(models[geometry])


__all__ = ["GEOMETRY_SOURCE_COLUMN", "GEOMETRY_SOURCE_OPTION", "Routed", "model_uri", "route",
           "spectrum_geometries", "subset"]
