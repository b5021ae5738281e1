"""Dispersion correction of continuously sampled arterial blood.

The catheter disperses the true curve C(t) with a mono-exponential kernel of time constant tau:
measured g = C ⊗ exp(-t/tau)/tau, hence C(t) = g(t) + tau g'(t) (Iida et al. 1986, J Nucl Med
27:192). The derivative is a central difference on a uniform grid (the recording's own step),
which amplifies sample noise by about tau / (2 step); an optional moving average of
``smooth_s`` seconds before differentiating tames it. Integrals of the curve are preserved up to
the end-point term tau (g(end) - g(start)).
"""

from __future__ import annotations

import numpy as np

SECONDS_PER_MINUTE = 60.0


def correct_dispersion(
    time_min: np.ndarray, activity: np.ndarray, tau_s: float, *, smooth_s: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Dispersion-corrected continuous blood, (times in minutes, activity) on a uniform grid.

    time_min: sample times (minutes, increasing); activity: measured whole blood (any units);
    tau_s: dispersion time constant (seconds, BIDS ``DispersionConstant``); smooth_s: width of
    a moving average applied before differentiation (seconds, 0 for none).
    """
    t = np.asarray(time_min, float)
    g = np.asarray(activity, float)
    if tau_s < 0 or not np.isfinite(tau_s):
        raise ValueError(f"dispersion constant must be a finite number >= 0 s, got {tau_s}")
    step = float(np.median(np.diff(t)))
    grid = t[0] + step * np.arange(int(np.floor((t[-1] - t[0]) / step + 1e-9)) + 1)
    values = np.interp(grid, t, g)
    width = int(round(smooth_s / (step * SECONDS_PER_MINUTE)))
    if width > 1:
        kernel = np.ones(width) / width
        padded = np.pad(values, (width // 2, width - 1 - width // 2), mode="edge")
        values = np.convolve(padded, kernel, mode="valid")
    tau_min = tau_s / SECONDS_PER_MINUTE
    return grid, values + tau_min * np.gradient(values, grid)
