"""Voxel-wise parametric maps of every requested model, brain-masked, in the grid of the data.

SRTM/SRTM2 by basis functions (Gunn et al. 1997; Wu & Carson 2002), Logan DVR, MRTM2 DVR and
SUVR, all from :mod:`tspo_bidsapp.kinetics` (vectorised, chunked). ``k2'`` for SRTM2/MRTM2 is
the regional value (:func:`tspo_bidsapp.quant.regional.fit_regions`) so that maps and tables
share it. Times in minutes.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics import (
    fit_srtm2_bfm,
    fit_srtm_bfm,
    logan_dvr_map,
    mrtm2_dvr_map,
    suvr_map,
)
from tspo_bidsapp.quant.regional import ModelSettings

#: Measures written for each model (``meas-`` entity of ``_mimap.nii.gz``).
MAP_MEASURES: dict[str, tuple[str, ...]] = {
    "SRTM": ("BPND", "DVR", "R1", "k2", "edge"),
    "SRTM2": ("BPND", "DVR", "R1", "k2", "edge"),
    "Logan": ("DVR", "BPND"),
    "MRTM2": ("DVR", "BPND"),
    "SUVR": ("SUVR",),
}
MEASURE_UNITS = {"BPND": "1", "DVR": "1", "R1": "1", "k2": "1/min", "SUVR": "1", "edge": "1"}


def voxelwise_maps(
    timing: FrameTiming,
    ref_tac: np.ndarray,
    data: np.ndarray,
    mask: np.ndarray,
    settings: ModelSettings,
    *,
    k2prime: float | None = None,
) -> tuple[dict[tuple[str, str], np.ndarray], dict]:
    """``{(model, measure): map}`` (float32, NaN outside ``mask``) and per-model fit info.

    ``k2prime`` (1/min) is needed for SRTM2/MRTM2 (default: ``settings.k2prime``).
    """
    start, end = timing.start_min, timing.end_min
    mask = np.asarray(mask, bool) & np.all(np.isfinite(data), axis=-1)
    k2p = settings.k2prime if k2prime is None else k2prime
    if {"SRTM2", "MRTM2"} & set(settings.models) and k2p is None:
        raise ValueError("SRTM2/MRTM2 maps need k2prime (1/min)")
    out: dict[tuple[str, str], np.ndarray] = {}
    info: dict = {}
    for model in settings.models:
        if model == "SRTM":
            res = fit_srtm_bfm(start, end, ref_tac, data, mask=mask)
        elif model == "SRTM2":
            res = fit_srtm2_bfm(start, end, ref_tac, data, float(k2p), mask=mask)
        elif model == "Logan":
            res = logan_dvr_map(start, end, ref_tac, data, mask=mask, tstar_min=settings.tstar_min)
        elif model == "MRTM2":
            res = mrtm2_dvr_map(start, end, ref_tac, data, float(k2p), mask=mask)
        else:
            res = suvr_map(start, end, ref_tac, data, mask=mask, window=settings.suvr_window_min)
        maps = dict(res.maps)
        if "BPND" in maps and "DVR" not in maps:
            maps["DVR"] = maps["BPND"] + 1.0
        if "edge" in maps:  # 1 where the basis-function optimum is on the grid's edge
            maps["edge"] = np.where(np.isnan(maps["BPND"]), np.nan, maps["edge"])
        for meas in MAP_MEASURES[model]:
            out[(model, meas)] = np.asarray(maps[meas], np.float32)
        info[model] = {
            "n_voxels": res.n_voxels,
            "n_invalid": res.n_invalid,
            **{k: _plain(v) for k, v in res.info.items() if k != "theta3_grid"},
        }
        if "theta3_grid" in res.info:
            grid = res.info["theta3_grid"]
            info[model]["theta3_range_per_min"] = [float(grid[0]), float(grid[-1])]
            info[model]["n_basis"] = int(grid.size)
    return out, info


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value
