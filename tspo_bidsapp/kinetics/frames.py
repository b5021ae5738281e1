"""Frame checks, frame weights, integrals of frame data and the continuous reference curve.

All times are in **minutes**. Frame data are frame *averages* (what a PET scanner reports).

The kinetic models see the reference region only through its frame averages. They
rebuild a continuous reference ``C_R(t)`` as the piecewise-linear curve through
``(0, 0)`` and ``(mid_i, C_R,i)``, held constant after the last mid-time (the
``rule = 2`` of R's ``approx``, as used by kinfitr), sample it on a fine uniform grid
and convolve it there exactly (:func:`tspo_bidsapp.kinetics.simulate.exp_conv`), then
average the result over each frame (:func:`~tspo_bidsapp.kinetics.simulate.frame_average`).
Irregular frames and gaps between frames are therefore handled exactly up to the grid step.

Time 0 is the injection (:mod:`tspo_bidsapp.io.timing`). Frames may start before it (BIDS
allows frames before ``TimeZero``; scans often start a few seconds before the injection):
the tracer curve is zero before injection, so such a frame averages the curve over its
post-injection part times the fraction of the frame after injection.

The fine grid holds at most :data:`MAX_GRID_POINTS` points: for scans longer than
``MAX_GRID_POINTS`` x 1 s (5.5 h) its step grows, so memory is bounded whatever the input.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.kinetics.simulate import DEFAULT_STEP_MIN, exp_conv, fine_grid, frame_average

WEIGHT_SCHEMES = ("duration", "uniform", "decay", "counts")
# Most points of the fine time grid (20 000 x 8 bytes = 160 kB per curve): 5.5 h at 1 s.
MAX_GRID_POINTS = 20_000


def grid_step(end_min: float, step_min: float = DEFAULT_STEP_MIN) -> float:
    """The fine-grid step (minutes): ``step_min``, or longer so the grid keeps <= MAX_GRID_POINTS."""
    return max(float(step_min), float(end_min) / (MAX_GRID_POINTS - 1))


def check_frames(start_min, end_min, *, what: str = "frames") -> tuple[np.ndarray, np.ndarray]:
    """Validate a frame schedule (minutes); return float arrays.

    Frames must be finite, have positive duration, be in chronological order and not
    overlap (gaps are allowed); they may start before injection (t < 0) but the last one
    must end after it. ``what`` names the source in error messages.
    """
    start = np.asarray(start_min, dtype=float).reshape(-1)
    end = np.asarray(end_min, dtype=float).reshape(-1)
    if start.shape != end.shape:
        raise ValueError(f"{what}: {start.size} frame starts but {end.size} frame ends")
    if start.size == 0:
        raise ValueError(f"{what}: no frames")
    if not (np.all(np.isfinite(start)) and np.all(np.isfinite(end))):
        raise ValueError(f"{what}: frame times must be finite numbers")
    if end[-1] <= 0:
        raise ValueError(f"{what}: every frame ends before the injection (time 0)")
    bad = np.flatnonzero(end <= start)
    if bad.size:
        raise ValueError(
            f"{what}: frame {int(bad[0]) + 1} has end <= start (zero or negative duration)"
        )
    tol = 1e-6 * max(1.0, float(end[-1]))
    bad = np.flatnonzero(start[1:] < end[:-1] - tol)
    if bad.size:
        i = int(bad[0]) + 1
        raise ValueError(
            f"{what}: frames out of order or overlapping at frame {i + 1} "
            f"(starts {start[i]:.4g} min, previous frame ends {end[i - 1]:.4g} min)"
        )
    return start, end


def nonempty_frames(start_min, end_min) -> np.ndarray:
    """Boolean mask of frames with a positive duration.

    Rule: a frame whose duration is <= 1e-9 min carries no counts (e.g. the ``t = 0`` row of
    zeros that kinfitr and PMOD tables start with) and is dropped before fitting.
    """
    dur = np.asarray(end_min, float) - np.asarray(start_min, float)
    return dur > 1e-9


def frame_weights(
    start_min,
    end_min,
    *,
    scheme: str = "duration",
    half_life_min: float | None = None,
    tac: np.ndarray | None = None,
) -> np.ndarray:
    """Relative frame weights (largest = 1), the inverse of the assumed frame variance.

    - ``duration``: ``w = Δt`` (counting noise of a constant-activity frame);
    - ``uniform``: ``w = 1``;
    - ``decay``: ``w = Δt · exp(-λ t_mid)`` for decay-corrected data (``half_life_min`` needed);
    - ``counts``: ``w = Δt · exp(-λ t_mid) / C(t_mid)``, the Poisson variance of the
      decay-corrected concentration ``tac`` (kBq/mL, non-positive values clipped).
    """
    start, end = np.asarray(start_min, float), np.asarray(end_min, float)
    dur = end - start
    mid = 0.5 * (start + end)
    if scheme == "duration":
        w = dur.copy()
    elif scheme == "uniform":
        w = np.ones_like(dur)
    elif scheme in ("decay", "counts"):
        if half_life_min is None or not half_life_min > 0:
            raise ValueError(f"frame weights '{scheme}' need a positive half_life_min")
        w = dur * np.exp(-np.log(2.0) * mid / half_life_min)
        if scheme == "counts":
            if tac is None:
                raise ValueError("frame weights 'counts' need the TAC")
            c = np.asarray(tac, float)
            floor = 1e-3 * np.nanmax(np.abs(c)) if np.any(np.isfinite(c)) else 1.0
            w = w / np.clip(np.nan_to_num(c, nan=floor), max(floor, 1e-12), None)
    else:
        raise ValueError(f"unknown frame weighting '{scheme}' (choose from {WEIGHT_SCHEMES})")
    w = np.clip(w, 0.0, None)
    if not np.any(w > 0):
        raise ValueError("all frame weights are zero")
    return w / w.max()


def linear_phase(start_min, end_min, ref_tac, tstar_min, weights, *, min_frames: int, model: str):
    """Shared set-up of the graphical/multilinear methods (Logan, MRTM).

    Returns frame mid-times (min), the reference TAC, the frame weights and the mask of the
    weighted frames at or after ``tstar_min``; raises when fewer than ``min_frames`` remain.
    """
    start, end = check_frames(start_min, end_min)
    mid = 0.5 * (start + end)
    ref = np.asarray(ref_tac, float).reshape(-1)
    if ref.size != start.size:
        raise ValueError(f"reference TAC has {ref.size} values for {start.size} frames")
    w = frame_weights(start, end) if weights is None else np.asarray(weights, float)
    use = (mid >= tstar_min) & (w > 0)
    if use.sum() < min_frames:
        raise ValueError(
            f"{model} needs >= {min_frames} weighted frames after t* = {tstar_min} min"
        )
    return mid, ref, w, use


def cumulative_integral(mid_min, values) -> np.ndarray:
    """``∫_0^{t_i} C(u) du`` at each mid-time for the piecewise-linear ``C`` through (0, 0).

    ``values`` has frames on its last axis (any leading shape); the result has its shape.
    This is the integral of exactly the curve :class:`InterpolatedReference` uses (frames
    whose mid-time is at or before injection count as 0).
    """
    mid = np.asarray(mid_min, float)
    t = np.concatenate([[0.0], np.maximum(mid, 0.0)])
    v = np.asarray(values)
    if np.any(mid <= 0):
        v = np.where(mid > 0, v, 0).astype(v.dtype, copy=False)
    v0 = np.concatenate([np.zeros(v.shape[:-1] + (1,), dtype=v.dtype), v], axis=-1)
    steps = 0.5 * (v0[..., 1:] + v0[..., :-1]) * np.diff(t).astype(v.dtype, copy=False)
    return np.cumsum(steps, axis=-1)


class InterpolatedReference:
    """A continuous reference curve rebuilt from frame averages, and its frame-averaged convolutions.

    ``start_min``/``end_min``: frame schedule (minutes); ``ref``: reference frame averages (kBq/mL);
    ``step_min``: fine-grid step (default 1 s; longer for long scans, see :func:`grid_step`).
    """

    def __init__(self, start_min, end_min, ref, *, step_min: float = DEFAULT_STEP_MIN):
        self.start, self.end = check_frames(start_min, end_min, what="reference frames")
        self.values = np.asarray(ref, dtype=float).reshape(-1)
        if self.values.size != self.start.size:
            raise ValueError(
                f"reference TAC has {self.values.size} values for {self.start.size} frames"
            )
        if not np.all(np.isfinite(self.values)):
            raise ValueError("reference TAC contains non-finite values")
        self.mid = 0.5 * (self.start + self.end)
        self.step = grid_step(float(self.end[-1]), step_min)
        self.grid = fine_grid(float(self.end[-1]), self.step)
        after = self.mid > 0  # the curve is 0 at injection and before it
        self.curve = np.interp(
            self.grid, np.r_[0.0, self.mid[after]], np.r_[0.0, self.values[after]]
        )
        # Fraction of each frame after injection (1 for frames that start after it).
        self._post = np.clip(self.end, 0.0, None) - np.clip(self.start, 0.0, None)
        self._post = self._post / (self.end - self.start)

    @property
    def n_frames(self) -> int:
        return int(self.values.size)

    def average(self, curve: np.ndarray) -> np.ndarray:
        """Frame averages of curves sampled on :attr:`grid` (time on the last axis)."""
        post = self._post > 0
        out = np.zeros(np.shape(curve)[:-1] + (self.start.size,))
        start = np.clip(self.start[post], 0.0, None)
        out[..., post] = frame_average(self.grid, curve, start, self.end[post]) * self._post[post]
        return out

    def conv_frames(self, rate: float) -> np.ndarray:
        """Frame averages of ``∫_0^t C_R(u) e^{-rate (t-u)} du`` (rate in 1/min)."""
        return self.average(exp_conv(self.curve, self.step, float(rate)))

    def conv_frames_many(self, rates) -> np.ndarray:
        """:meth:`conv_frames` for several rates: array (n_rates, n_frames)."""
        rates = np.asarray(rates, float).reshape(-1)
        fine = np.empty((rates.size, self.grid.size))
        for i, rate in enumerate(rates):  # one short 1-D filter per basis function
            fine[i] = exp_conv(self.curve, self.step, float(rate))
        return self.average(fine)

    def integral(self) -> np.ndarray:
        """``∫_0^{t_mid} C_R`` at each frame mid-time (see :func:`cumulative_integral`)."""
        return cumulative_integral(self.mid, self.values)
