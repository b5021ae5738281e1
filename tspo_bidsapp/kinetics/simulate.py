"""Forward models for time-activity curves (TACs): the ground truth of the synthetic data.

All times are in **minutes**, rate constants in **1/min**, activity in kBq/mL.

Curves are evaluated on a fine uniform grid and averaged over each frame, the way a
PET scanner integrates counts, so irregular frame schedules are handled exactly
(up to the grid step) rather than by sampling at frame mid-times.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

DEFAULT_STEP_MIN = 1.0 / 60.0  # 1 s


def fine_grid(end_min: float, step_min: float = DEFAULT_STEP_MIN) -> np.ndarray:
    """Uniform grid 0, step, ..., >= end_min (minutes)."""
    n = int(np.ceil(end_min / step_min - 1e-9)) + 1
    return np.arange(n) * step_min


def exp_conv(signal: np.ndarray, step_min: float, rate: float) -> np.ndarray:
    """``∫_0^t signal(u) exp(-rate (t-u)) du`` on a uniform grid, exact for piecewise-linear signals.

    ``signal`` has time on its last axis and must start at t = 0 with the grid step
    ``step_min``. ``rate`` in 1/min (>= 0). Vectorised over leading axes.
    """
    h = float(step_min)
    if rate * h < 1e-8:  # pure integration (trapezoid rule is exact for linear pieces)
        a_coef, b_coef, decay = h, h * h / 2.0, 1.0
    else:
        decay = np.exp(-rate * h)
        a_coef = (1.0 - decay) / rate
        b_coef = h / rate - (1.0 - decay) / rate**2
    # y[n] = decay*y[n-1] + (A - B/h) s[n-1] + (B/h) s[n]
    num = [b_coef / h, a_coef - b_coef / h]
    y = lfilter(num, [1.0, -decay], signal, axis=-1)
    # lfilter assumes s[-1] = 0 and y[-1] = 0, so y[0] = (B/h) s[0]; the integral at t=0 is 0.
    first = np.take(signal, [0], axis=-1) * (b_coef / h)
    corr = first * decay ** np.arange(signal.shape[-1])
    return y - corr


def feng_input(
    t_min: np.ndarray,
    a: tuple[float, float, float] = (851.1, 21.9, 20.8),
    lam: tuple[float, float, float] = (4.134, 0.1191, 0.01043),
    delay_min: float = 0.0,
) -> np.ndarray:
    """Feng et al. (1993, Int J Biomed Comput 32:95-110) plasma input function, kBq/mL.

    ``Cp(t) = (A1 t - A2 - A3) e^{-l1 t} + A2 e^{-l2 t} + A3 e^{-l3 t}`` for t > delay.
    Default constants are Feng's FDG values (A in kBq/mL/min and kBq/mL).
    """
    t = np.clip(np.asarray(t_min, dtype=float) - delay_min, 0.0, None)
    a1, a2, a3 = a
    l1, l2, l3 = lam
    cp = (a1 * t - a2 - a3) * np.exp(-l1 * t) + a2 * np.exp(-l2 * t) + a3 * np.exp(-l3 * t)
    return np.where(t > 0, cp, 0.0)


def one_tissue_tac(
    t_min: np.ndarray, cp: np.ndarray, k1: float, k2: float, vb: float = 0.05
) -> np.ndarray:
    """One-tissue compartment tissue curve plus blood volume fraction (kBq/mL)."""
    step = float(t_min[1] - t_min[0])
    return (1.0 - vb) * k1 * exp_conv(cp, step, k2) + vb * cp


def reference_tac(t_min: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A plausible TSPO cerebellar-grey-matter reference TAC (kBq/mL) on a uniform grid.

    One-tissue response (K1 = 0.30 mL/cm3/min, k2 = 0.35 1/min, vB = 5 %) to a scaled Feng
    input: the curve peaks at about 5 min near 15 kBq/mL and washes out to about 40 % of
    its peak by 60 min, the shape of [11C]PK11195 / [11C]PBR28 cerebellar curves.
    """
    cp = 0.6 * feng_input(t_min, delay_min=0.25)
    return scale * one_tissue_tac(t_min, cp, k1=0.30, k2=0.35, vb=0.05)


def srtm_tissue(
    t_min: np.ndarray,
    cref: np.ndarray,
    r1: float | np.ndarray,
    k2: float | np.ndarray,
    bpnd: float | np.ndarray,
) -> np.ndarray:
    """SRTM target curve (Lammertsma & Hume 1996, NeuroImage 4:153-158) on a uniform grid.

    ``C_T(t) = R1 C_R(t) + (k2 - R1 k2a) [C_R ⊗ e^{-k2a t}](t)``, ``k2a = k2 / (1 + BPND)``.
    Parameters may be arrays of equal shape (one curve each); time is the last output axis.
    """
    r1, k2, bpnd = np.broadcast_arrays(
        np.asarray(r1, float), np.asarray(k2, float), np.asarray(bpnd, float)
    )
    out = np.empty(r1.shape + (cref.size,))
    step = float(t_min[1] - t_min[0])
    for idx in np.ndindex(r1.shape):
        k2a = k2[idx] / (1.0 + bpnd[idx])
        conv = exp_conv(cref, step, k2a)
        out[idx] = r1[idx] * cref + (k2[idx] - r1[idx] * k2a) * conv
    return out


def frame_average(
    t_min: np.ndarray, curve: np.ndarray, start_min: np.ndarray, end_min: np.ndarray
) -> np.ndarray:
    """Mean of a piecewise-linear curve over each frame ``[start, end)`` (time on last axis).

    Exact for piecewise-linear curves whose knots are the grid points.
    """
    t = np.asarray(t_min, dtype=float)
    step = t[1] - t[0]
    # Cumulative integral at grid points (trapezoid), then linear interpolation of the
    # integral's quadratic pieces is not exact; integrate exactly with the local slope.
    cum = np.concatenate(
        [
            np.zeros(curve.shape[:-1] + (1,)),
            np.cumsum(0.5 * (curve[..., 1:] + curve[..., :-1]) * step, axis=-1),
        ],
        axis=-1,
    )

    def integral_to(x: np.ndarray) -> np.ndarray:
        i = np.clip(np.floor(x / step).astype(int), 0, t.size - 2)
        dx = x - t[i]
        c0 = curve[..., i]
        slope = (curve[..., i + 1] - c0) / step
        return cum[..., i] + c0 * dx + 0.5 * slope * dx**2

    start = np.asarray(start_min, float)
    end = np.asarray(end_min, float)
    return (integral_to(end) - integral_to(start)) / (end - start)


def decay_factor(t_min: np.ndarray, half_life_min: float) -> np.ndarray:
    """``exp(-ln2 t / T_half)``: fraction of activity left after ``t_min`` minutes."""
    return np.exp(-np.log(2.0) * np.asarray(t_min, float) / half_life_min)
