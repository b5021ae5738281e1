"""Simplified reference tissue model, regional fit by weighted non-linear least squares.

Lammertsma AA, Hume SP (1996) NeuroImage 4:153-158:

``C_T(t) = R1 C_R(t) + (k2 - R1 k2a) [C_R ⊗ e^{-k2a t}](t)``,  ``k2a = k2 / (1 + BPND)``.

Times in minutes, rate constants in 1/min. Derived: ``k2' = k2 / R1`` (reference efflux),
``DVR = 1 + BPND``. The model is evaluated as frame averages: the ``R1 C_R`` term uses the
measured reference frame averages directly and the convolution term is computed on a 1-s grid
from the interpolated reference and averaged over each frame (see
:class:`~tspo_bidsapp.kinetics.frames.InterpolatedReference`).

Robust fit: the model is linear in ``(θ1, θ2) = (R1, k2 - R1 k2a)`` for fixed ``k2a``
(Gunn et al. 1997, NeuroImage 6:279-287), so every rate of a log-spaced grid is solved at once
(the basis is computed once per reference and cached). NLLS (TRF, analytic Jacobian) starts from
the best grid point that lies inside the bounds, and from other local minima of the grid
profile when the first solution sits on a bound; the lowest weighted residual wins, an interior
solution over a bound-stuck one at equal residual.
"""

from __future__ import annotations

import weakref

import numpy as np
from scipy.optimize import least_squares

from tspo_bidsapp.kinetics.bfm import DEFAULT_THETA3_MIN
from tspo_bidsapp.kinetics.frames import InterpolatedReference, frame_weights
from tspo_bidsapp.kinetics.kinpar import KineticResult, aic
from tspo_bidsapp.kinetics.simulate import DEFAULT_STEP_MIN, exp_conv

# Bounds of (R1, k2a [1/min], BPND) for the regional fit: values a TSPO tracer can take in brain.
# R1 ~0.5-2; BPND from ~-0.3 (regions below the reference) to ~5 (choroid plexus, lesions).
# k2a >= 0.01/min, the lower end of the voxel-wise basis grid (the slowest rate a 60-90 min scan
# tells apart from a pure integral of C_R): it keeps the fit out of the degenerate corner
# k2 -> 0, where the model collapses to R1 C_R and BPND is arbitrary. The fast end is benign
# (C_R ⊗ e^{-k2a t} -> C_R/k2a, BPND -> C_T/C_R - 1 stays determined) and is left wide: real
# [11C]PBR28 cortex with BPND ~ 0 fits k2a of 1-5/min.
DEFAULT_BOUNDS: tuple[tuple[float, float, float], tuple[float, float, float]] = (
    (0.05, DEFAULT_THETA3_MIN, -0.8),
    (5.0, 5.0, 10.0),
)
_N_START = 80  # log-spaced k2a values of the start-point grid search
_MAX_STARTS = 4  # at most this many starts (grid local minima, best first)

_BASIS_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def srtm_frames(ref: InterpolatedReference, r1: float, k2: float, bpnd: float) -> np.ndarray:
    """Frame-averaged SRTM target TAC (kBq/mL) for one parameter set."""
    k2a = k2 / (1.0 + bpnd)
    return r1 * ref.values + (k2 - r1 * k2a) * ref.conv_frames(k2a)


def start_basis(ref: InterpolatedReference, rates: np.ndarray) -> np.ndarray:
    """Frame-averaged ``C_R ⊗ e^{-rate t}`` for each rate (1/min), computed once per reference."""
    per_ref = _BASIS_CACHE.setdefault(ref, {})
    key = rates.tobytes()
    if key not in per_ref:
        per_ref[key] = ref.conv_frames_many(rates)
    return per_ref[key]


def grid_profile(ref: InterpolatedReference, y: np.ndarray, sw: np.ndarray, rates: np.ndarray):
    """Weighted LS of ``y`` on ``(C_R, C_R ⊗ e^{-k2a t})`` for every ``k2a`` in ``rates`` at once.

    ``sw``: square roots of the frame weights. Returns arrays (one value per rate) of R1, BPND
    and the weighted residual sum of squares (Gunn et al. 1997).
    """
    basis = start_basis(ref, rates) * sw
    r = ref.values * sw
    yw = y * sw
    rho = float(r @ r)
    alpha = basis @ r / rho  # each basis column's component along the reference column
    perp = basis - alpha[:, None] * r
    beta2 = np.einsum("ij,ij->i", perp, perp)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = float(yw @ r) / rho
        c = perp @ yw
        theta2 = np.where(beta2 > 0, c / beta2, 0.0)
        theta1 = a - theta2 * alpha
        rss = float(yw @ yw) - a * a * rho - np.where(beta2 > 0, c * c / beta2, 0.0)
        bpnd = theta2 / rates + theta1 - 1.0  # k2/k2a - 1 with k2 = θ2 + θ1 k2a
    return theta1, bpnd, rss


def _starts(ref, y, sw, lo, hi) -> list[np.ndarray]:
    """Start points (R1, k2a, BPND), best first: the in-bounds local minima of the grid profile."""
    rates = np.geomspace(lo[1], hi[1], _N_START)
    r1, bp, rss = grid_profile(ref, y, sw, rates)
    p = np.stack([r1, rates, bp], axis=1)
    ok = np.all((p >= lo) & (p <= hi), axis=1) & np.isfinite(rss)
    if not np.any(ok):  # nothing in bounds on the grid: best positive-R1 point, clipped
        ok = r1 > 0
    masked = np.where(ok, rss, np.inf)
    padded = np.r_[np.inf, masked, np.inf]
    local = ok & (masked <= padded[:-2]) & (masked <= padded[2:])
    order = np.flatnonzero(local)[np.argsort(masked[local], kind="stable")][:_MAX_STARTS]
    if order.size == 0:
        return [np.clip(np.array([1.0, 0.1, 0.5]), lo, hi)]
    margin = 1e-6 * (hi - lo)
    return [np.clip(p[i], lo + margin, hi - margin) for i in order]


class _Model:
    """Weighted residuals and analytic Jacobian of SRTM in (R1, k2a, BPND) for one TAC."""

    def __init__(self, ref: InterpolatedReference, y: np.ndarray, sw: np.ndarray):
        self.ref, self.yw, self.sw = ref, y * sw, sw

    def evaluate(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``C_T = R1 C_R + k2a (1 + BPND - R1) X`` with ``X = C_R ⊗ e^{-k2a t}``.

        ``dX/dk2a = -C_R ⊗ t e^{-k2a t} = -X ⊗ e^{-k2a t}``: one more filter pass, no differences.
        """
        r1, k2a, bp = p
        ref = self.ref
        fine = exp_conv(ref.curve, ref.step, k2a)
        x, xx = ref.average(np.stack([fine, exp_conv(fine, ref.step, k2a)]))
        theta2 = k2a * (1.0 + bp - r1)
        resid = self.sw * (r1 * ref.values + theta2 * x) - self.yw
        jac = np.column_stack([ref.values - k2a * x, (1.0 + bp - r1) * x - theta2 * xx, k2a * x])
        return resid, jac * self.sw[:, None]


def _nlls(model: _Model, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    cache: dict = {}

    def both(p):
        key = p.tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = model.evaluate(p)
        return cache[key]

    return least_squares(
        lambda p: both(p)[0], x0, jac=lambda p: both(p)[1], bounds=(lo, hi), method="trf",
        x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=500,
    )  # fmt: skip


def _on_bound(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    tol = 1e-6 * (hi - lo)
    return bool(np.any(np.abs(x - lo) <= tol) or np.any(np.abs(x - hi) <= tol))


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
    Non-finite target frames are excluded. ``bounds``: ((R1, k2a, BPND) lower, upper), k2a in
    1/min. Starts from the basis-function grid; see the module docstring for the multistart
    rule. ``edge`` is True when the solution lies on a bound.
    Returns a :class:`KineticResult` (model "srtm").
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
    lo, hi = np.asarray(bounds[0], float), np.asarray(bounds[1], float)
    model = _Model(ref, y0, sw)
    starts = _starts(ref, y0, sw, lo, hi)
    best = _nlls(model, starts[0], lo, hi)
    best_wrss, best_edge = float(np.sum(best.fun**2)), _on_bound(best.x, lo, hi)
    for x0 in starts[1:]:  # multistart only when the first answer is stuck on a bound
        if not best_edge:
            break
        sol = _nlls(model, x0, lo, hi)
        wrss, edge = float(np.sum(sol.fun**2)), _on_bound(sol.x, lo, hi)
        if wrss < best_wrss * (1 - 1e-9) or (not edge and wrss <= best_wrss * (1 + 1e-6)):
            best, best_wrss, best_edge = sol, wrss, edge
    r1, k2a, bpnd = (float(v) for v in best.x)
    result.R1, result.k2a, result.BPND = r1, k2a, bpnd
    result.k2 = k2a * (1.0 + bpnd)
    result.k2prime = result.k2 / r1
    result.DVR = 1.0 + bpnd
    result.wrss = best_wrss
    result.aic = aic(best_wrss, result.n_frames, 3)
    result.success = bool(best.success)
    result.edge = best_edge
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
