"""Logan reference-tissue graphical analysis (Logan J et al., 1996, J Cereb Blood Flow Metab
16:834-840).

For frames with mid-time ``t >= t*`` (minutes):

``∫_0^t C_T / C_T(t) = DVR [∫_0^t C_R + C_R(t)/k2'] / C_T(t) + b``

``k2'`` is the reference efflux rate (1/min). Without ``k2'`` the ``C_R/k2'`` term is dropped,
which is valid once ``C_R/C_T`` is constant (late t*). ``BPND = DVR - 1``. Integrals are the
exact integrals of the piecewise-linear curves through (0, 0) and the frame mid-times
(:func:`~tspo_bidsapp.kinetics.frames.cumulative_integral`), the same curve the other models use.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.kinetics.frames import (
    cumulative_integral,
    linear_phase,
)
from tspo_bidsapp.kinetics.kinpar import KineticResult, aic
from tspo_bidsapp.kinetics.linear import weighted_line_fit
from tspo_bidsapp.kinetics.voxelwise import (
    DEFAULT_CHUNK_VOXELS,
    VoxelChunks,
    VoxelwiseResult,
    float_type,
)

DEFAULT_TSTAR_MIN = 30.0


def _prepare(start_min, end_min, ref_tac, k2prime, tstar_min, weights):
    mid, ref, w, late = linear_phase(
        start_min, end_min, ref_tac, tstar_min, weights, min_frames=3, model="Logan"
    )
    x_ref = cumulative_integral(mid, ref)
    if k2prime is not None:
        if not k2prime > 0:
            raise ValueError(f"k2prime must be a positive rate in 1/min, got {k2prime}")
        x_ref = x_ref + ref / k2prime
    return mid, late, x_ref, w


def fit_logan(
    start_min,
    end_min,
    ref_tac,
    tac,
    *,
    k2prime: float | None = None,
    tstar_min: float = DEFAULT_TSTAR_MIN,
    weights: np.ndarray | None = None,
    region: str = "",
) -> KineticResult:
    """Regional Logan reference plot; frames and ``tstar_min`` in minutes, ``k2prime`` in 1/min."""
    mid, late, x_ref, w = _prepare(start_min, end_min, ref_tac, k2prime, tstar_min, weights)
    y = np.asarray(tac, float).reshape(-1)
    res = KineticResult(region=region, model="logan", tstar_min=float(tstar_min), n_params=2)
    res.k2prime = float(k2prime) if k2prime is not None else np.nan
    res.n_frames = int(late.sum())
    if not np.all(np.isfinite(y)) or np.any(y[late] <= 0):
        return res
    x = x_ref[late] / y[late]
    yy = cumulative_integral(mid, y)[late] / y[late]
    slope, icpt = weighted_line_fit(x[None], yy[None], w[late])
    dvr = float(slope[0])
    resid = yy - dvr * x - float(icpt[0])
    res.wrss = float((resid * resid) @ w[late])
    res.DVR, res.BPND = dvr, dvr - 1.0
    res.aic = aic(res.wrss, res.n_frames, 2)
    res.success = bool(np.isfinite(dvr))
    return res


def logan_dvr_map(
    start_min,
    end_min,
    ref_tac,
    data: np.ndarray,
    *,
    k2prime: float | None = None,
    tstar_min: float = DEFAULT_TSTAR_MIN,
    weights: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
) -> VoxelwiseResult:
    """Voxel-wise Logan DVR (maps ``DVR``, ``BPND``, ``intercept``), vectorised over voxels.

    Voxels with a non-finite frame or a non-positive value in a frame after t* are NaN
    (``n_invalid``).
    """
    mid, late, x_ref, w = _prepare(start_min, end_min, ref_tac, k2prime, tstar_min, weights)
    chunks = VoxelChunks(data, mask, chunk_voxels)
    if chunks.n_frames != mid.size:
        raise ValueError(f"PET data have {chunks.n_frames} frames, the reference {mid.size}")
    dvr, icpt = chunks.new_values(), chunks.new_values()
    wl = w[late]
    n_invalid = 0
    for sl, block in chunks:
        ok = np.all(np.isfinite(block), axis=1) & np.all(block[:, late] > 0, axis=1)
        n_invalid += int(np.count_nonzero(~ok))
        y = np.where(
            ok[:, None], block, float_type(block).type(1)
        )  # the data's float type: no float64 copy
        yl = y[:, late]
        x = x_ref[late] / yl
        yy = cumulative_integral(mid, y)[:, late] / yl
        slope, b = weighted_line_fit(x, yy, wl)
        dvr[sl] = np.where(ok, slope, np.nan)
        icpt[sl] = np.where(ok, b, np.nan)
    maps = {"DVR": chunks.to_map(dvr), "intercept": chunks.to_map(icpt)}
    maps["BPND"] = maps["DVR"] - 1.0
    info = {"model": "logan", "tstar_min": float(tstar_min), "k2prime": k2prime}
    return VoxelwiseResult(maps, chunks.n_voxels, n_invalid, info)
