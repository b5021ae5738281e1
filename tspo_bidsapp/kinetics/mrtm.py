"""Multilinear reference tissue models MRTM and MRTM2 (Ichise M et al., 2003, J Cereb Blood
Flow Metab 23:1096-1112).

Integrating the SRTM differential equation ``dC_T/dt = R1 dC_R/dt + k2 C_R - k2a C_T`` gives,
for frames with mid-time ``t >= t*`` (minutes):

- MRTM:  ``C_T(t) = γ1 ∫C_R + γ2 C_R(t) + γ3 ∫C_T``, so ``k2 = γ1``, ``R1 = γ2``,
  ``k2a = -γ3``, ``k2' = γ1/γ2`` and ``DVR = -γ1/γ3``;
- MRTM2 (k2' fixed, 1/min): ``C_T(t) = γ1 [∫C_R + C_R(t)/k2'] + γ3 ∫C_T``, ``DVR = -γ1/γ3``,
  ``R1 = γ1/k2'``.

Weighted linear least squares with the frame weights; ``BPND = DVR - 1``. Integrals use the
piecewise-linear curve through (0, 0) and the frame mid-times.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.kinetics.frames import (
    cumulative_integral,
    linear_phase,
)
from tspo_bidsapp.kinetics.kinpar import KineticResult, aic
from tspo_bidsapp.kinetics.linear import weighted_lstsq, weighted_two_regressors
from tspo_bidsapp.kinetics.voxelwise import (
    DEFAULT_CHUNK_VOXELS,
    VoxelChunks,
    VoxelwiseResult,
    float_type,
)

DEFAULT_MRTM_TSTAR_MIN = 0.0


def _prepare(start_min, end_min, ref_tac, tstar_min, weights, n_params):
    mid, ref, w, use = linear_phase(
        start_min, end_min, ref_tac, tstar_min, weights, min_frames=n_params + 1, model="MRTM"
    )
    return mid, ref, cumulative_integral(mid, ref), w, use


def fit_mrtm(
    start_min, end_min, ref_tac, tac, *, tstar_min: float = DEFAULT_MRTM_TSTAR_MIN,
    weights: np.ndarray | None = None, region: str = "",
) -> KineticResult:  # fmt: skip
    """Regional MRTM (3 parameters); also estimates ``k2'`` (1/min) for MRTM2/SRTM2."""
    mid, ref, int_ref, w, use = _prepare(start_min, end_min, ref_tac, tstar_min, weights, 3)
    y = np.asarray(tac, float).reshape(-1)
    res = KineticResult(region=region, model="mrtm", tstar_min=float(tstar_min), n_params=3)
    res.n_frames = int(use.sum())
    if not np.all(np.isfinite(y)):
        return res
    design = np.column_stack([int_ref, ref, cumulative_integral(mid, y)])[use]
    (g1, g2, g3), wrss = weighted_lstsq(design, y[use], w[use])
    res.k2, res.R1, res.k2a = g1, g2, -g3
    res.k2prime = g1 / g2 if g2 != 0 else np.nan
    res.DVR = -g1 / g3 if g3 != 0 else np.nan
    res.BPND = res.DVR - 1.0
    res.wrss, res.aic = wrss, aic(wrss, res.n_frames, 3)
    res.success = bool(np.isfinite(res.DVR) and g3 < 0)
    return res


def fit_mrtm2(
    start_min, end_min, ref_tac, tac, k2prime: float, *,
    tstar_min: float = DEFAULT_MRTM_TSTAR_MIN, weights: np.ndarray | None = None,
    region: str = "",
) -> KineticResult:  # fmt: skip
    """Regional MRTM2 with ``k2prime`` (1/min) fixed."""
    if not (np.isfinite(k2prime) and k2prime > 0):
        raise ValueError(f"k2prime must be a positive rate in 1/min, got {k2prime}")
    mid, ref, int_ref, w, use = _prepare(start_min, end_min, ref_tac, tstar_min, weights, 2)
    y = np.asarray(tac, float).reshape(-1)
    res = KineticResult(region=region, model="mrtm2", tstar_min=float(tstar_min), n_params=2)
    res.n_frames, res.k2prime = int(use.sum()), float(k2prime)
    if not np.all(np.isfinite(y)):
        return res
    x1 = (int_ref + ref / k2prime)[use]
    g1, g3, wrss = weighted_two_regressors(x1[None], cumulative_integral(mid, y)[use][None],
                                           y[use][None], w[use])  # fmt: skip
    g1, g3, wrss = float(g1[0]), float(g3[0]), float(wrss[0])
    res.k2, res.k2a, res.R1 = g1, -g3, g1 / k2prime
    res.DVR = -g1 / g3 if g3 != 0 else np.nan
    res.BPND = res.DVR - 1.0
    res.wrss, res.aic = wrss, aic(wrss, res.n_frames, 2)
    res.success = bool(np.isfinite(res.DVR) and g3 < 0)
    return res


def mrtm2_dvr_map(
    start_min,
    end_min,
    ref_tac,
    data: np.ndarray,
    k2prime: float,
    *,
    tstar_min: float = DEFAULT_MRTM_TSTAR_MIN,
    weights: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
) -> VoxelwiseResult:
    """Voxel-wise MRTM2 (maps ``DVR``, ``BPND``, ``R1``, ``k2``, ``k2a``, ``wrss``).

    Voxels with a non-finite frame or no positive signal are NaN (``n_invalid``).
    """
    if not (np.isfinite(k2prime) and k2prime > 0):
        raise ValueError(f"k2prime must be a positive rate in 1/min, got {k2prime}")
    mid, ref, int_ref, w, use = _prepare(start_min, end_min, ref_tac, tstar_min, weights, 2)
    chunks = VoxelChunks(data, mask, chunk_voxels)
    if chunks.n_frames != mid.size:
        raise ValueError(f"PET data have {chunks.n_frames} frames, the reference {mid.size}")
    x1 = (int_ref + ref / k2prime)[use]
    names = ("DVR", "R1", "k2", "k2a", "wrss")
    out = {n: chunks.new_values() for n in names}
    n_invalid = 0
    for sl, block in chunks:
        ok = np.all(np.isfinite(block), axis=1)
        y = np.where(
            ok[:, None], block, float_type(block).type(0)
        )  # the data's float type: no float64 copy
        ok &= y @ w.astype(y.dtype) > 0
        n_invalid += int(np.count_nonzero(~ok))
        g1, g3, wrss = weighted_two_regressors(
            x1[None, :], cumulative_integral(mid, y)[:, use], y[:, use], w[use]
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            vals = {"DVR": -g1 / g3, "R1": g1 / k2prime, "k2": g1, "k2a": -g3, "wrss": wrss}
        for n in names:
            out[n][sl] = np.where(ok, vals[n], np.nan)
    maps = {n: chunks.to_map(v) for n, v in out.items()}
    maps["BPND"] = maps["DVR"] - 1.0
    info = {"model": "mrtm2", "tstar_min": float(tstar_min), "k2prime": float(k2prime)}
    return VoxelwiseResult(maps, chunks.n_voxels, n_invalid, info)
