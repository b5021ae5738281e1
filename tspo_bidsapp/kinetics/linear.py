"""Weighted linear least squares for many small regressions at once (one per voxel)."""

from __future__ import annotations

import numpy as np


def weighted_lstsq(design: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Solve ``min Σ w (y - design @ beta)²`` for one TAC; returns (beta, weighted RSS)."""
    sw = np.sqrt(w)
    beta, *_ = np.linalg.lstsq(design * sw[:, None], y * sw, rcond=None)
    resid = (y - design @ beta) * sw
    return beta, float(resid @ resid)


def weighted_line_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and intercept of ``y = slope x + b`` for each row of x, y (voxels, frames); weights w.

    Rows with a degenerate x (zero weighted variance) get NaN.
    """
    sw = w.sum()
    sx, sy = x @ w, y @ w
    sxx, sxy = (x * x) @ w, (x * y) @ w
    den = sw * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(den > 0, (sw * sxy - sx * sy) / den, np.nan)
    return slope, (sy - slope * sx) / sw


def weighted_two_regressors(
    x1: np.ndarray, x2: np.ndarray, y: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y = g1 x1 + g2 x2`` (no intercept) per row, weights w over the last axis.

    x1, x2, y broadcast to (voxels, frames). Returns (g1, g2, weighted RSS); singular rows NaN.
    """
    s11 = (x1 * x1) @ w
    s12 = (x1 * x2) @ w
    s22 = (x2 * x2) @ w
    s1y = (x1 * y) @ w
    s2y = (x2 * y) @ w
    det = s11 * s22 - s12 * s12
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = det > 1e-12 * np.abs(s11 * s22)
        g1 = np.where(ok, (s22 * s1y - s12 * s2y) / det, np.nan)
        g2 = np.where(ok, (s11 * s2y - s12 * s1y) / det, np.nan)
    resid = y - g1[..., None] * x1 - g2[..., None] * x2
    return g1, g2, (resid * resid) @ w
