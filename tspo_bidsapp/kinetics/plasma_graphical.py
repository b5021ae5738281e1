"""Plasma-input graphical analyses: Logan plot and MA1, regional and voxel-wise (vectorised).

With the blood-corrected tissue curve ``C(t) = (C_meas - vB C_b)/(1 - vB)`` and frames whose
mid-time ``t >= t*`` (minutes):

- Logan plasma (Logan J et al. 1990, J Cereb Blood Flow Metab 10:740):
  ``∫_0^t C / C(t) = V_T ∫_0^t Cp / C(t) + b``;
- MA1 (Ichise M et al. 2002, J Cereb Blood Flow Metab 22:1271):
  ``C(t) = -(V_T/b) ∫_0^t Cp + (1/b) ∫_0^t C``, so ``V_T = -γ1/γ2``.

``∫ C`` is the integral of the piecewise-linear curve through (0, 0) and the frame mid-times
(:func:`~tspo_bidsapp.kinetics.frames.cumulative_integral`); ``∫ Cp`` and ``C_b`` are taken from
the (delayed) input at the mid-times. V_T in mL/cm³.

Weights: MA1 regresses the TAC itself and uses the frame weights. The Logan ordinate
``∫C/C(t)`` is a non-linear function of all frames up to ``t``; its variance follows from the
frame variances ``1/w`` by the delta method, and the plot is fitted with the inverse of it
(frames of zero weight contribute nothing), as kinfitr's Logan plot does with frame durations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tspo_bidsapp.kinetics.frames import cumulative_integral, frame_weights
from tspo_bidsapp.kinetics.kinpar import aic
from tspo_bidsapp.kinetics.linear import weighted_two_regressors
from tspo_bidsapp.kinetics.plasma import PlasmaFrames, PlasmaResult
from tspo_bidsapp.kinetics.voxelwise import DEFAULT_CHUNK_VOXELS, VoxelChunks, VoxelwiseResult

GRAPHICAL_MODELS = ("logan-plasma", "ma1")
#: Start of the linear phase (minutes) for [11C]PBR28-like tracers over 60-90 min scans.
DEFAULT_PLASMA_TSTAR_MIN = 30.0


@dataclass(frozen=True)
class _Plot:
    """Everything voxel-independent of a graphical fit, restricted to the frames after t*.

    ``a``: rows of the trapezoid matrix, ``∫_0^{t_i} C = Σ_j a_ij C_j`` for late ``i``.
    """

    late: np.ndarray
    w: np.ndarray
    blood: np.ndarray
    icp: np.ndarray
    a: np.ndarray
    ib: np.ndarray
    var: np.ndarray
    var_all: np.ndarray
    vb: float


def _setup(pf: PlasmaFrames, tstar_min: float, weights, vb: float) -> _Plot:
    if not 0.0 <= vb < 1.0:
        raise ValueError(f"vB must be in [0, 1), got {vb}")
    w = frame_weights(pf.start, pf.end) if weights is None else np.asarray(weights, float)
    if w.shape != (pf.n_frames,):
        raise ValueError(f"{w.size} frame weights for {pf.n_frames} frames")
    late = np.flatnonzero((pf.mid >= tstar_min) & (w > 0))
    if late.size < 3:
        raise ValueError(f"need >= 3 weighted frames after t* = {tstar_min} min")
    blood, icp = pf.at_mid()
    a = cumulative_integral(pf.mid, np.eye(pf.n_frames)).T[late]
    var = np.where(w > 0, 1.0 / np.where(w > 0, w, 1.0), 0.0)
    return _Plot(late, w[late], blood[late], icp[late], a, a @ blood, var[late], var, float(vb))


def logan_weights(p: _Plot, c: np.ndarray, ic: np.ndarray) -> np.ndarray:
    """Delta-method weights ``1/Var(∫C/C)`` of the Logan ordinate at the late frames.

    ``c``, ``ic``: corrected TAC and its integral at the late frames (voxels, late); frame
    variances ``v = 1/w``. With ``∫C(t_i) = Σ_j a_ij C_j`` and ``u = ∫C_i / C_i``:
    ``Var = (Σ_j a_ij² v_j - 2 a_ii v_i u + v_i u²) / C_i²``.
    """
    s = (p.a * p.a) @ p.var_all
    diag = p.a[np.arange(p.late.size), p.late] * p.var
    u = ic / c
    v = (s - 2.0 * diag * u + p.var * u * u) / (c * c)
    return np.where(v > 0, 1.0 / v, 0.0)


def _line_fit_rows(x, y, w):
    """Slope and intercept of ``y = slope x + b`` per row, with per-row weights ``w``."""
    sw, sx, sy = w.sum(1), (w * x).sum(1), (w * y).sum(1)
    sxx, sxy = (w * x * x).sum(1), (w * x * y).sum(1)
    den = sw * sxx - sx * sx
    slope = np.where(den > 0, (sw * sxy - sx * sy) / den, np.nan)
    return slope, (sy - slope * sx) / sw


@np.errstate(divide="ignore", invalid="ignore")
def _graphical(model: str, p: _Plot, y: np.ndarray):
    """V_T, intercept (Logan) and weighted RSS for rows of ``y`` (voxels, frames).

    Only the late frames and one (voxels x frames) @ (frames x late) product for the integrals
    are computed; ``y`` may be float32, the regressions run in float64.
    """
    scale = 1.0 / (1.0 - p.vb)
    ic = ((y @ p.a.T.astype(y.dtype)).astype(np.float64) - p.vb * p.ib) * scale
    c = (y[:, p.late].astype(np.float64) - p.vb * p.blood) * scale
    if model == "logan-plasma":
        wlog = logan_weights(p, c, ic)
        x, yy = p.icp / c, ic / c
        vt, b = _line_fit_rows(x, yy, wlog)
        r = yy - vt[:, None] * x - b[:, None]
        return vt, b, (r * r * wlog).sum(1)
    g1, g2, wrss = weighted_two_regressors(p.icp[None, :], ic, c, p.w)
    return -g1 / g2, np.full(g1.shape, np.nan), wrss


def fit_graphical(
    pf: PlasmaFrames,
    tac,
    model: str,
    *,
    tstar_min: float = DEFAULT_PLASMA_TSTAR_MIN,
    weights: np.ndarray | None = None,
    vb: float = 0.0,
    region: str = "",
) -> PlasmaResult:
    """Regional Logan plasma plot or MA1 of one TAC (kBq/mL per frame); ``vb`` fixed."""
    if model not in GRAPHICAL_MODELS:
        raise ValueError(f"unknown graphical model '{model}' (choose from {GRAPHICAL_MODELS})")
    plot = _setup(pf, tstar_min, weights, vb)
    y = np.asarray(tac, float).reshape(1, -1)
    res = PlasmaResult(region=region, model=model, vB=float(vb), delay_min=pf.delay,
                       tstar_min=float(tstar_min), n_frames=int(plot.late.size), n_params=2)  # fmt: skip
    if y.shape[1] != pf.n_frames or not np.all(np.isfinite(y)):
        return res
    if np.any(y[0, plot.late] - vb * plot.blood <= 0):
        return res
    vt, b, wrss = _graphical(model, plot, y)
    res.VT, res.intercept, res.wrss = float(vt[0]), float(b[0]), float(wrss[0])
    res.aic = aic(res.wrss, res.n_frames, 2)
    res.success = bool(np.isfinite(res.VT) and res.VT > 0)
    return res


def graphical_vt_map(
    pf: PlasmaFrames,
    data: np.ndarray,
    model: str,
    *,
    tstar_min: float = DEFAULT_PLASMA_TSTAR_MIN,
    weights: np.ndarray | None = None,
    vb: float = 0.0,
    mask: np.ndarray | None = None,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
) -> VoxelwiseResult:
    """Voxel-wise V_T (map ``VT``; Logan also ``intercept``) of ``data`` (..., n_frames).

    Chunked; float32 data stay float32 up to the regressions (float64). Voxels with a
    non-finite frame or a non-positive corrected value after t* are NaN (``n_invalid``).
    """
    if model not in GRAPHICAL_MODELS:
        raise ValueError(f"unknown graphical model '{model}' (choose from {GRAPHICAL_MODELS})")
    plot = _setup(pf, tstar_min, weights, vb)
    chunks = VoxelChunks(data, mask, chunk_voxels)
    if chunks.n_frames != pf.n_frames:
        raise ValueError(f"PET data have {chunks.n_frames} frames, the input {pf.n_frames}")
    vt_out, b_out = chunks.new_values(), chunks.new_values()
    n_invalid = 0
    for sl, block in chunks:
        y = np.asarray(block)
        if y.dtype not in (np.float32, np.float64):
            y = y.astype(np.float64)
        late = y[:, plot.late]
        ok = np.isfinite(y).all(axis=1) & (late - vb * plot.blood > 0).all(axis=1)
        n_invalid += int(np.count_nonzero(~ok))
        vt, b, _ = _graphical(model, plot, np.where(ok[:, None], y, 0) if not ok.all() else y)
        vt_out[sl] = np.where(ok, vt, np.nan)
        b_out[sl] = np.where(ok, b, np.nan)
    maps = {"VT": chunks.to_map(vt_out)}
    if model == "logan-plasma":
        maps["intercept"] = chunks.to_map(b_out)
    info = {"model": model, "tstar_min": float(tstar_min), "vB": float(vb), "delay_min": pf.delay}
    return VoxelwiseResult(maps, chunks.n_voxels, n_invalid, info)
