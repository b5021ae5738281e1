"""Voxel-wise parametric maps of every requested model, brain-masked, in the grid of the data.

SRTM/SRTM2 by basis functions (Gunn et al. 1997; Wu & Carson 2002; SRTM also two-pass or by
LRSC, Zhou et al. 2003: ``settings.voxelwise_estimator``), Logan DVR, MRTM2 DVR and SUVR, each model's voxel-wise fit taken from the kinetic-model registry
(:mod:`tspo_bidsapp.kinetics.registry`; vectorised, chunked). ``k2'`` for SRTM2/MRTM2 is
the regional value (:func:`tspo_bidsapp.quant.regional.fit_regions`) so that maps and tables
share it. Times in minutes.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics.registry import MEASURE_UNITS, MODELS, FitData, fit_voxelwise
from tspo_bidsapp.quant.regional import ModelSettings

#: Measures written for each model (``meas-`` entity of ``_mimap.nii.gz``).
MAP_MEASURES: dict[str, tuple[str, ...]] = {n: s.map_measures for n, s in MODELS.items()}
__all__ = ["MAP_MEASURES", "MEASURE_UNITS", "voxelwise_maps"]


def voxelwise_maps(
    timing: FrameTiming,
    ref_tac: np.ndarray,
    data: np.ndarray,
    mask: np.ndarray,
    settings: ModelSettings,
    *,
    k2prime: float | None = None,
    input_function=None,
    delay_min: float = 0.0,
) -> tuple[dict[tuple[str, str], np.ndarray], dict]:
    """``{(model, measure): map}`` (float32, NaN outside ``mask``) and per-model fit info.

    ``k2prime`` (1/min) is needed for SRTM2/MRTM2 (default: ``settings.k2prime``); plasma-input
    models need ``input_function`` and use ``delay_min`` (the regional fit's delay).
    """
    mask = np.asarray(mask, bool) & np.all(np.isfinite(data), axis=-1)
    k2p = settings.k2prime if k2prime is None else k2prime
    fit_data = FitData(timing.start_min, timing.end_min, {}, ref_tac, input_function)
    options = settings.fit_options()
    out: dict[tuple[str, str], np.ndarray] = {}
    info: dict = {}
    for model in settings.models:
        if MODELS[model].voxelwise is None:  # 2TCM, 2TCM-1K: regional only
            continue
        shared = {"k2prime": k2p, "delay_min": delay_min}
        res = fit_voxelwise(model, fit_data, data, mask, options, shared)
        maps = dict(res.maps)
        if "BPND" in maps and "DVR" not in maps:
            maps["DVR"] = maps["BPND"] + 1.0
        if (
            "edge" in MAP_MEASURES[model]
        ):  # 1 where the basis-function optimum is on the grid's edge
            first = maps[MAP_MEASURES[model][0]]
            maps["edge"] = np.where(np.isnan(first), np.nan, maps["edge"])
        for meas in MAP_MEASURES[model]:
            out[(model, meas)] = np.asarray(maps[meas], np.float32)
        info[model] = {
            **({"voxelwise_estimator": settings.voxelwise_estimator} if model == "SRTM" else {}),
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
