"""Simplified reference tissue model, regional fit by weighted non-linear least squares.

Lammertsma AA, Hume SP (1996) NeuroImage 4:153-158:

``C_T(t) = R1 C_R(t) + (k2 - R1 k2a) [C_R ⊗ e^{-k2a t}](t)``,  ``k2a = k2 / (1 + BPND)``.

Times in minutes, rate constants in 1/min. Derived: ``k2' = k2 / R1`` (reference efflux),
``DVR = 1 + BPND``. The model is evaluated as frame averages: the ``R1 C_R`` term uses the
measured reference frame averages directly and the convolution term is computed on a 1-s grid
from the interpolated reference and averaged over each frame (see
:class:`~tspo_bidsapp.kinetics.frames.InterpolatedReference`).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from tspo_bidsapp.kinetics.frames import InterpolatedReference, frame_weights
from tspo_bidsapp.kinetics.kinpar import KineticResult, aic
from tspo_bidsapp.kinetics.simulate import DEFAULT_STEP_MIN

# Bounds of (R1, k2 [1/min], BPND) for the regional fit: wide enough for any brain region
# (TSPO tracers: R1 ~0.5-2, k2 ~0.02-0.5/min, BPND ~0-3), tight enough to keep it stable.
DEFAULT_BOUNDS: tuple[tuple[float, float, float], tuple[float, float, float]] = (
    (1e-3, 1e-4, -0.9),
    (10.0, 5.0, 20.0),
)
# Rates scanned to find a starting point (a coarse basis-function grid search), 1/min.
_START_RATES = np.geomspace(1e-3, 3.0, 80)


def srtm_frames(ref: InterpolatedReference, r1: float, k2: float, bpnd: float) -> np.ndarray:
    """Frame-averaged SRTM target TAC (kBq/mL) for one parameter set."""
    k2a = k2 / (1.0 + bpnd)
    return r1 * ref.values + (k2 - r1 * k2a) * ref.conv_frames(k2a)


def _start_point(ref: InterpolatedReference, y: np.ndarray, sw: np.ndarray, bounds) -> np.ndarray:
    """Best (R1, k2, BPND) of a coarse basis-function search (Gunn et al. 1997)."""
    basis = ref.conv_frames_many(_START_RATES)
    best, best_rss = None, np.inf
    for rate, b in zip(_START_RATES, basis, strict=True):
        design = np.column_stack([ref.values, b]) * sw[:, None]
        theta, *_ = np.linalg.lstsq(design, y * sw, rcond=None)
        rss = float(np.sum((design @ theta - y * sw) ** 2))
        if rss < best_rss and theta[0] > 0:
            k2 = theta[1] + theta[0] * rate
            best, best_rss = (theta[0], k2, k2 / rate - 1.0), rss
    if best is None:
        best = (1.0, 0.1, 0.5)
    lo, hi = np.asarray(bounds[0], float), np.asarray(bounds[1], float)
    span = hi - lo
    return np.clip(np.asarray(best, float), lo + 1e-6 * span, hi - 1e-6 * span)


def fit_srtm(
    start_min,
    end_min,
    ref_tac,
    tac,
    *,
    weights: np.ndarray | None = None,
    bounds=DEFAULT_BOUNDS,
    step_min: float = DEFAULT_STEP_MIN,
    region: str = "",
) -> KineticResult:
    """Fit SRTM to one target TAC by bounded weighted NLLS (scipy ``least_squares``, TRF).

    ``start_min``/``end_min``: frame schedule in **minutes**; ``ref_tac``/``tac``: frame
    averages (kBq/mL); ``weights``: relative frame weights (default: frame durations).
    Non-finite target frames are excluded. Returns a :class:`KineticResult` (model "srtm").
    """
    ref = ref_tac if isinstance(ref_tac, InterpolatedReference) else None
    if ref is None:
        ref = InterpolatedReference(start_min, end_min, ref_tac, step_min=step_min)
    y = np.asarray(tac, float).reshape(-1)
    if y.size != ref.n_frames:
        raise ValueError(f"target TAC has {y.size} values for {ref.n_frames} frames")
    w = frame_weights(ref.start, ref.end) if weights is None else np.asarray(weights, float)
    use = np.isfinite(y) & (w > 0)
    result = KineticResult(region=region, model="srtm", n_frames=int(use.sum()), n_params=3)
    if use.sum() < 4 or not np.any(y[use] != 0):
        return result
    sw = np.sqrt(np.where(use, w, 0.0))
    y0 = np.where(use, y, 0.0)

    def residuals(p: np.ndarray) -> np.ndarray:
        return sw * (srtm_frames(ref, p[0], p[1], p[2]) - y0)

    x0 = _start_point(ref, y0, sw, bounds)
    sol = least_squares(
        residuals, x0, bounds=bounds, method="trf", x_scale="jac",
        ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=2000,
    )  # fmt: skip
    r1, k2, bpnd = (float(v) for v in sol.x)
    wrss = float(np.sum(sol.fun**2))
    result.R1, result.k2, result.BPND = r1, k2, bpnd
    result.k2a = k2 / (1.0 + bpnd)
    result.k2prime = k2 / r1
    result.DVR = 1.0 + bpnd
    result.wrss = wrss
    result.aic = aic(wrss, result.n_frames, 3)
    result.success = bool(sol.success)
    lo, hi = np.asarray(bounds[0]), np.asarray(bounds[1])
    result.edge = bool(np.any(np.isclose(sol.x, lo, rtol=0, atol=1e-6 * (hi - lo)))) or bool(
        np.any(np.isclose(sol.x, hi, rtol=0, atol=1e-6 * (hi - lo)))
    )
    return result


def fit_srtm_regions(
    start_min,
    end_min,
    ref_tac,
    tacs: dict[str, np.ndarray],
    *,
    weights: np.ndarray | None = None,
    bounds=DEFAULT_BOUNDS,
    step_min: float = DEFAULT_STEP_MIN,
) -> list[KineticResult]:
    """:func:`fit_srtm` for each named TAC, sharing one interpolated reference."""
    ref = InterpolatedReference(start_min, end_min, ref_tac, step_min=step_min)
    return [
        fit_srtm(ref.start, ref.end, ref, tac, weights=weights, bounds=bounds, region=name)
        for name, tac in tacs.items()
    ]


def median_k2prime(results: list[KineticResult]) -> float:
    """Median ``k2' = k2/R1`` (1/min) over successful, non-edge SRTM fits (for SRTM2/MRTM2)."""
    vals = [
        r.k2prime
        for r in results
        if r.success and not r.edge and np.isfinite(r.k2prime) and r.k2prime > 0
    ]
    if not vals:
        raise ValueError("no reliable SRTM fit to estimate k2' from")
    return float(np.median(vals))
