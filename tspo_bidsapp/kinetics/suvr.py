"""Standardised uptake value ratio over a time window (minutes), also for static PET.

``SUVR = mean_window(C_T) / mean_window(C_R)``, where each mean is the time-average over the
window ``[start, end]``: frames are weighted by their overlap with the window (a frame fully
inside counts by its duration). For a static scan (one frame) SUVR is ``C_T / C_R``.
SUVR approximates DVR only at transient equilibrium; it is not a kinetic estimate.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.kinetics.frames import check_frames
from tspo_bidsapp.kinetics.kinpar import KineticResult
from tspo_bidsapp.kinetics.voxelwise import DEFAULT_CHUNK_VOXELS, VoxelChunks, VoxelwiseResult


def default_window(start_min, end_min, length_min: float = 20.0) -> tuple[float, float]:
    """The last ``length_min`` minutes of the scan (the whole scan if shorter)."""
    start, end = check_frames(start_min, end_min)
    return max(float(start[0]), float(end[-1]) - length_min), float(end[-1])


def window_weights(start_min, end_min, window: tuple[float, float]) -> np.ndarray:
    """Overlap (minutes) of each frame with ``window`` = (start, end) in minutes."""
    start, end = check_frames(start_min, end_min)
    w0, w1 = float(window[0]), float(window[1])
    if not w1 > w0:
        raise ValueError(f"SUVR window end ({w1} min) must be after its start ({w0} min)")
    overlap = np.clip(np.minimum(end, w1) - np.maximum(start, w0), 0.0, None)
    if not np.any(overlap > 0):
        raise ValueError(
            f"SUVR window {w0:g}-{w1:g} min does not overlap the frames "
            f"({start[0]:g}-{end[-1]:g} min)"
        )
    return overlap


def fit_suvr(
    start_min, end_min, ref_tac, tac, *, window: tuple[float, float] | None = None,
    region: str = "",
) -> KineticResult:  # fmt: skip
    """Regional SUVR; ``window`` (minutes) defaults to :func:`default_window`."""
    window = default_window(start_min, end_min) if window is None else window
    ov = window_weights(start_min, end_min, window)
    ref = np.asarray(ref_tac, float).reshape(-1)
    y = np.asarray(tac, float).reshape(-1)
    res = KineticResult(region=region, model="suvr", n_frames=int(np.count_nonzero(ov)))
    ref_mean = float(ref @ ov)
    if ref_mean <= 0 or not np.isfinite(ref_mean):
        raise ValueError("reference activity in the SUVR window is not positive")
    if np.all(np.isfinite(y[ov > 0])):
        res.SUVR = float(np.where(ov > 0, y, 0.0) @ ov) / ref_mean
        res.success = True
    return res


def suvr_map(
    start_min,
    end_min,
    ref_tac,
    data: np.ndarray,
    *,
    window: tuple[float, float] | None = None,
    mask: np.ndarray | None = None,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
) -> VoxelwiseResult:
    """Voxel-wise SUVR map (``SUVR``); voxels with non-finite values in the window are NaN.

    ``data`` is (..., n_frames); a 3-D static image may be passed with a trailing axis of 1.
    """
    window = default_window(start_min, end_min) if window is None else window
    ov = window_weights(start_min, end_min, window)
    ref = np.asarray(ref_tac, float).reshape(-1)
    ref_mean = float(ref @ ov)
    if ref_mean <= 0 or not np.isfinite(ref_mean):
        raise ValueError("reference activity in the SUVR window is not positive")
    chunks = VoxelChunks(data, mask, chunk_voxels)
    if chunks.n_frames != ov.size:
        raise ValueError(f"PET data have {chunks.n_frames} frames, the reference {ov.size}")
    inside = ov > 0
    out = chunks.new_values()
    n_invalid = 0
    for sl, block in chunks:
        y = np.asarray(block, dtype=np.float64)[:, inside]
        ok = np.all(np.isfinite(y), axis=1)
        n_invalid += int(np.count_nonzero(~ok))
        out[sl] = np.where(ok, np.where(ok[:, None], y, 0.0) @ ov[inside] / ref_mean, np.nan)
    info = {"model": "suvr", "window_min": tuple(float(v) for v in window)}
    return VoxelwiseResult({"SUVR": chunks.to_map(out)}, chunks.n_voxels, n_invalid, info)
