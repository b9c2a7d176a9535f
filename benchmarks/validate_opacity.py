"""Validate our cross-sections against the HELIOS-K/HITEMP k-tables (Wogan et al.; validation data only).

For H2O, CO, CO2, CH4, NH3 and C2H2 this builds sigma with the product's own builders
(:func:`robert.opacity.sources.cross_section_grid`, whatever source each conf/molecules/<NAME>.yaml
names) on the default wavenumber grid (conf/opacity/default.yaml) at T = 500, 1000, 1500 K and
P = 0.01, 0.1, 1 bar, averages it into the reference bins and compares with the g-weighted bin-mean
sigma of the reference. Checked bins: those wholly inside 1-20.2 um where the reference exceeds
1e-21 cm^2/molecule; the target is agreement within a factor 3. Molecules whose builder fails are
reported and skipped. The last line printed is one JSON object with the totals.

Line sources (line list, diatomic generator) sample sigma at the R = 3000 grid points; their lines
(Doppler widths ~0.01 cm-1, 0.01-bar Lorentz widths ~1e-3 cm-1) are far narrower than the grid
spacing, so the mean of those samples is a poor, heavy-tailed estimator of a bin mean. Where a
source's module provides ``bin_mean_cross_section`` (the exact integral of the same lines and
profiles over each bin), that is what is judged ("ours"), and the mean of the R = 3000 samples is
printed beside it ("sampled") to show the sampling effect. Band models are smooth, so averaging
their samples is exact and is what is used for them.

Usage: python benchmarks/validate_opacity.py [REFERENCE_DIR]   (default ../shared/reference/opacity-kdist)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from robert.errors import UserError, exit_on_user_error
from robert.opacity.grid import wavenumber_grid
from robert.opacity.reference import REFERENCE_MOLECULES, TOLERANCE, compare, default_reference_dir

ROOT = Path(__file__).resolve().parents[1]


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference_dir", nargs="?", type=Path, default=default_reference_dir(ROOT))
    args = parser.parse_args(argv)
    if not args.reference_dir.is_dir():
        raise UserError(f"reference directory {args.reference_dir} not found "
                        "(validation data, ../shared/reference)")
    start = time.perf_counter()
    grid = OmegaConf.load(ROOT / "conf" / "opacity" / "default.yaml")
    nu = wavenumber_grid(grid.wavelength_min_um, grid.wavelength_max_um, grid.resolution)
    rows: list[dict] = []
    summaries: list[str] = []
    print("# ours: exact bin mean for line sources (judged), mean of the samples for band models;"
          " sampled: mean of the R=3000 samples")
    print(f"{'mol':5} {'T_K':>6} {'P_bar':>6} {'bin_um':>13} {'ref':>9} {'ours':>9} {'ratio':>7} "
          f"{'sampled':>9} {'s_ratio':>7}")
    for molecule in REFERENCE_MOLECULES:
        try:
            spec = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "molecules" / f"{molecule}.yaml"),
                                          resolve=True)
            mol_rows = compare(molecule, spec, args.reference_dir, nu, ROOT / "data")
        except Exception as exc:  # noqa: BLE001 - report any builder failure and go on with the others
            first = (str(exc).splitlines() or [""])[0]
            summaries.append(f"{molecule}: FAILED to build ({type(exc).__name__}: {first})")
            continue
        for r in mol_rows:
            flag = "  OUTSIDE 3x" if r["factor"] > TOLERANCE else ""
            print(f"{molecule:5} {r['T']:6.0f} {r['P']:6.2f} {r['lo_um']:6.2f}-{r['hi_um']:6.2f} "
                  f"{r['ref']:9.2e} {r['ours']:9.2e} {r['ours'] / r['ref']:7.2f} "
                  f"{r['sampled']:9.2e} {r['sampled'] / r['ref']:7.2f}{flag}")
        within = sum(r["factor"] <= TOLERANCE for r in mol_rows)
        worst = max(mol_rows, key=lambda r: r["factor"]) if mol_rows else None
        where = (f" at {worst['lo_um']:.2f}-{worst['hi_um']:.2f} um, {worst['T']:.0f} K, {worst['P']:g} bar"
                 if worst else "")
        estimator = "exact bin mean" if mol_rows and mol_rows[0]["exact"] else "mean of samples"
        summaries.append(f"{molecule}: {len(mol_rows)} bins checked, {within} within 3x, worst factor "
                         f"{worst['factor'] if worst else float('nan'):.2f}{where} ({estimator})")
        if mol_rows and mol_rows[0]["exact"]:
            s_factor = [max(r["sampled"] / r["ref"], r["ref"] / r["sampled"]) if r["sampled"] > 0 else np.inf
                        for r in mol_rows]
            summaries.append(f"{molecule}:   (mean of the R=3000 samples instead: "
                             f"{sum(f <= TOLERANCE for f in s_factor)} within 3x, worst {max(s_factor):.2f})")
        rows += mol_rows
    print(f"# elapsed {time.perf_counter() - start:.1f} s")
    for line in summaries:
        print(line)
    worst_ratio = max((r["factor"] for r in rows), default=float("nan"))
    within = sum(r["factor"] <= TOLERANCE for r in rows)
    summary = {"bins_checked": len(rows), "bins_within_3x": within, "worst_ratio": round(worst_ratio, 3)}
    print(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
