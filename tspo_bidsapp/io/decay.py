"""Radioactive decay of PET frames: bring every frame to "decay-corrected to injection".

Times are minutes after injection (the pipeline's one time axis, see
:mod:`tspo_bidsapp.io.timing`). A frame that is not decay-corrected holds the frame average
of ``C(t) exp(-λ t)``; dividing it by the frame average of ``exp(-λ t)`` (the
frame-integrated factor, not the mid-frame one) gives the average of ``C(t)`` exactly when
``C`` is constant over the frame (Bailey et al. 2005, *Positron Emission Tomography*, ch. 8).
A frame decay-corrected to time ``T`` differs from one corrected to injection by the
constant ``exp(-λ T)``.
"""

from __future__ import annotations

import numpy as np

LN2 = float(np.log(2.0))

# Plausibility of a frame schedule against the radionuclide: a scan that ends later than this
# many half-lives after injection keeps under 1/1000 of the activity; such a schedule is taken
# as a unit error (milliseconds, or frame end times in FrameDuration), not a measurement.
MAX_SCAN_HALF_LIVES = 10.0


def mean_frame_decay(start_min, end_min, half_life_min: float) -> np.ndarray:
    """Frame average of ``exp(-ln2 t / T½)`` over ``[start, end]`` (t from injection), unitless."""
    start, end = np.asarray(start_min, float), np.asarray(end_min, float)
    lam = LN2 / float(half_life_min)
    dur = end - start
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (np.exp(-lam * start) - np.exp(-lam * end)) / (lam * dur)
    return np.where(dur > 0, out, np.exp(-lam * start))


def factors_to_injection(
    start_min,
    end_min,
    half_life_min: float,
    *,
    decay_corrected: bool,
    correction_time_min: float = 0.0,
) -> np.ndarray:
    """Per-frame multipliers that make frames decay-corrected to injection (t = 0).

    ``decay_corrected``: the frames are already corrected to ``correction_time_min``
    (minutes after injection) -> ``exp(λ T)`` for every frame; otherwise
    ``1 / mean_frame_decay`` per frame.
    """
    start = np.asarray(start_min, float)
    if decay_corrected:
        return np.full(start.shape, np.exp(LN2 * float(correction_time_min) / half_life_min))
    return 1.0 / mean_frame_decay(start, end_min, half_life_min)


def correct_to_injection(data: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Scale frames (last axis) by ``factors``; float32 output (voxels vectorised)."""
    factors = np.asarray(factors, np.float32)
    if data.ndim == 3:
        data = data[..., np.newaxis]
    if data.shape[-1] != factors.size:
        raise ValueError(f"{data.shape[-1]} frames but {factors.size} decay factors")
    return np.asarray(data, np.float32) * factors


def implausible_schedule(end_min: float, longest_frame_min: float, half_life_min: float):
    """A message when a frame schedule cannot be real for this radionuclide, else None."""
    limit = MAX_SCAN_HALF_LIVES * half_life_min
    if end_min <= limit:
        return None
    message = (
        f"the scan would end {end_min:.4g} min after injection, {end_min / half_life_min:.3g} "
        f"half-lives of the radionuclide (T½ = {half_life_min:g} min; at most "
        f"{MAX_SCAN_HALF_LIVES:g} are plausible); the longest frame lasts "
        f"{longest_frame_min:.4g} min"
    )
    if end_min / 1000.0 <= limit:
        message += ". Are the times in milliseconds? BIDS frame times are in seconds"
    return message
