"""Plasma-input compartment models, regional fits by weighted non-linear least squares.

Measured frame average (all curves frame-integrated, see :class:`~.plasma.PlasmaFrames`):
``C(t) = (1 - vB) C_T(t) + vB C_b(t)``, with ``C_T = Cp ⊗ h`` and

- 1TCM: ``h = K1 e^{-k2 t}``; ``V_T = K1/k2``;
- 2TCM: ``h = K1/(a2-a1) [(k3+k4-a1) e^{-a1 t} + (a2-k3-k4) e^{-a2 t}]``,
  ``a1,2 = (k2+k3+k4 ∓ √((k2+k3+k4)² - 4 k2 k4))/2``; ``V_T = K1/k2 (1 + k3/k4)``
  (Gunn RN, Gunn SR, Cunningham VJ 2001, J Cereb Blood Flow Metab 21:635);
- 2TCM-1K: the 2TCM plus irreversible binding to the vascular endothelium,
  ``+ vB Kb ∫_0^t Cp`` (Rizzo G et al. 2014, J Cereb Blood Flow Metab 34:1060); V_T as 2TCM.

Times in minutes, rates in 1/min, K1 in mL/cm³/min, V_T in mL/cm³. Standard errors come from the
Jacobian at the optimum (``cov = s² (JᵀJ)⁻¹``, ``s² = WRSS/(n-p)``), V_T's by the delta method.
The 2TCM starts from the best feasible points of a grid over the two exponents (solved linearly
for the amplitudes and vB) and from a 1TCM-based guess, then keeps the lowest WRSS (multistart).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares, minimize_scalar

from tspo_bidsapp.kinetics.frames import frame_weights
from tspo_bidsapp.kinetics.kinpar import aic
from tspo_bidsapp.kinetics.plasma import BASIS_RATES, ArterialInput, PlasmaFrames, PlasmaResult

COMPARTMENT_MODELS = ("1tcm", "2tcm", "2tcm1k")
RATES = {"1tcm": ("K1", "k2"), "2tcm": ("K1", "k2", "k3", "k4"),
         "2tcm1k": ("K1", "k2", "k3", "k4", "Kb")}  # fmt: skip
#: Bounds of each parameter: wide for any brain region of any TSPO tracer, finite for stability.
#: k4 >= 0.005/min: a dissociation half-life over ~140 min cannot be told from irreversible
#: binding in a 60-120 min scan, and V_T = K1/k2 (1 + k3/k4) diverges as k4 -> 0; a fit that
#: ends on this bound is flagged (``identifiable`` False).
BOUNDS = {"K1": (1e-4, 2.0), "k2": (1e-4, 2.0), "k3": (1e-4, 1.0), "k4": (5e-3, 1.0),
          "Kb": (0.0, 1.0), "vB": (0.0, 0.15)}  # fmt: skip
#: A rate constant whose %COV exceeds this is reported as not identifiable.
MAX_RATE_COV_PCT = 50.0
#: Blood-tissue delay search range (minutes) and grid step of the search.
DEFAULT_DELAY_RANGE_MIN = (-0.5, 0.5)
_DELAY_STEP_MIN = 2.0 / 60.0
_N_GRID_STARTS = 2


def _vt(p: dict) -> float:
    vt = p["K1"] / p["k2"]
    return vt * (1.0 + p["k3"] / p["k4"]) if "k3" in p else vt


def _tissue(pf: PlasmaFrames, p: dict, jac: bool) -> tuple[np.ndarray, dict]:
    """Frame averages of ``C_T`` and (``jac``) its derivatives by K1, k2 (, k3, k4)."""
    k1, k2 = p["K1"], p["k2"]
    if "k3" not in p:
        if not jac:
            return k1 * pf.conv(k2), {}
        c, d = pf.conv_and_slope(k2)
        return k1 * c, {"K1": c, "k2": -k1 * d}
    k3, k4 = p["k3"], p["k4"]
    s, u = k2 + k3 + k4, k3 + k4
    r = max(np.sqrt(max(s * s - 4.0 * k2 * k4, 0.0)), 1e-7 * s)  # repeated root: nudge apart
    a1, a2 = 0.5 * (s - r), 0.5 * (s + r)
    if not jac:
        n = (u - a1) * pf.conv(a1) + (a2 - u) * pf.conv(a2)
        return k1 * n / r, {}
    (c1, d1), (c2, d2) = pf.conv_and_slope(a1), pf.conv_and_slope(a2)
    t = k1 * ((u - a1) * c1 + (a2 - u) * c2) / r
    t_u = k1 * (c1 - c2) / r
    t_a1 = k1 * (-c1 - (u - a1) * d1) / r + t / r
    t_a2 = k1 * (c2 - (a2 - u) * d2) / r - t / r
    a1_s, a2_s = 0.5 * (1 - s / r), 0.5 * (1 + s / r)  # d a / d s; d a1,2 / d(k2 k4) = ±1/r
    return t, {
        "K1": t / k1,
        "k2": t_a1 * (a1_s + k4 / r) + t_a2 * (a2_s - k4 / r),
        "k3": t_u + t_a1 * a1_s + t_a2 * a2_s,
        "k4": t_u + t_a1 * (a1_s + k2 / r) + t_a2 * (a2_s - k2 / r),
    }


def model_frames(pf: PlasmaFrames, p: dict) -> np.ndarray:
    """Frame-averaged measured curve ``(1 - vB) C_T + vB (C_b + Kb ∫Cp)`` (kBq/mL)."""
    t, _ = _tissue(pf, p, False)
    return (1.0 - p["vB"]) * t + p["vB"] * (pf.blood + p.get("Kb", 0.0) * pf.integral())


def model_jacobian(pf: PlasmaFrames, p: dict, names) -> tuple[np.ndarray, np.ndarray]:
    """:func:`model_frames` and its derivatives by ``names`` (frames x len(names))."""
    t, dt = _tissue(pf, p, True)
    vb, kb = p["vB"], p.get("Kb", 0.0)
    model = (1.0 - vb) * t + vb * (pf.blood + kb * pf.integral())
    cols = {k: (1.0 - vb) * v for k, v in dt.items()}
    cols["vB"] = -t + pf.blood + kb * pf.integral()
    cols["Kb"] = vb * pf.integral()
    return model, np.column_stack([cols[k] for k in names])


def _grid_starts(pf, y, sw, model, vb) -> list[dict]:
    """Best feasible parameter sets of a linear fit on every pair (1TCM: single) of basis rates."""
    basis = pf.basis() * sw
    yw, bw = y * sw, pf.blood * sw
    if vb is not None:  # fixed vB: fit (y - vB Cb)/(1 - vB) on the tissue columns only
        yw = (yw - vb * bw) / (1.0 - vb)
    n = BASIS_RATES.size
    if model == "1tcm":
        i, j = np.arange(n), None
    else:
        i, j = np.triu_indices(n, k=1)
    cols = [basis[i]] + ([] if j is None else [basis[j]]) + ([bw[None].repeat(i.size, 0)]
                                                              if vb is None else [])  # fmt: skip
    design = np.stack(cols, axis=-1)  # (pairs, frames, n_cols)
    gram = np.einsum("pfa,pfb->pab", design, design)
    rhs = np.einsum("pfa,f->pa", design, yw)
    gram += 1e-12 * np.trace(gram, axis1=1, axis2=2)[:, None, None] * np.eye(gram.shape[-1])
    theta = np.linalg.solve(gram, rhs[..., None])[..., 0]
    wrss = yw @ yw - np.einsum("pa,pa->p", theta, rhs)
    v = theta[:, -1] if vb is None else np.full(i.size, vb)
    amp = theta[:, : 1 if j is None else 2]  # amplitudes of C_T (fixed vB: already scaled)
    if vb is None:
        amp = amp / (1.0 - np.clip(v, 0, 0.99))[:, None]
    starts = []
    for idx in np.argsort(wrss):
        if len(starts) >= _N_GRID_STARTS:
            break
        if np.any(amp[idx] <= 0) or not BOUNDS["vB"][0] <= v[idx] <= BOUNDS["vB"][1]:
            continue
        if j is None:
            p = {"K1": amp[idx, 0], "k2": BASIS_RATES[i[idx]]}
        else:
            a1, a2, c1, c2 = BASIS_RATES[i[idx]], BASIS_RATES[j[idx]], amp[idx, 0], amp[idx, 1]
            k1 = c1 + c2
            k2 = (c1 * a1 + c2 * a2) / k1
            k4 = a1 * a2 / k2
            p = {"K1": k1, "k2": k2, "k3": a1 + a2 - k2 - k4, "k4": k4}
        p["vB"] = float(v[idx])
        if all(BOUNDS[k][0] <= val <= BOUNDS[k][1] for k, val in p.items()):
            starts.append(p)
    return starts


def _starts(pf, y, sw, model, vb) -> list[dict]:
    vb0 = 0.05 if vb is None else vb
    if model == "1tcm":
        return _grid_starts(pf, y, sw, model, vb)[:1] or [{"K1": 0.1, "k2": 0.1, "vB": vb0}]
    one = _grid_starts(pf, y, sw, "1tcm", vb)[:1] or [{"K1": 0.1, "k2": 0.1, "vB": vb0}]
    starts = _grid_starts(pf, y, sw, "2tcm", vb)
    starts += [dict(one[0], k2=1.5 * one[0]["k2"], k3=0.05, k4=0.05)]
    if model == "2tcm1k":
        starts = [dict(s, Kb=kb) for s in starts for kb in (0.01, 0.1)]
    return starts


def fit_compartment(
    pf: PlasmaFrames,
    tac,
    model: str,
    *,
    weights: np.ndarray | None = None,
    vb: float | None = None,
    region: str = "",
) -> PlasmaResult:
    """Fit a compartment model (``1tcm``, ``2tcm``, ``2tcm1k``) to one TAC (kBq/mL, per frame).

    ``vb``: fixed blood volume fraction, or None to fit it. ``weights``: relative frame
    weights (default frame durations). Non-finite frames are left out.
    """
    if model not in COMPARTMENT_MODELS:
        raise ValueError(f"unknown compartment model '{model}' (choose from {COMPARTMENT_MODELS})")
    y = np.asarray(tac, float).reshape(-1)
    if y.size != pf.n_frames:
        raise ValueError(f"TAC has {y.size} values for {pf.n_frames} frames")
    w = frame_weights(pf.start, pf.end) if weights is None else np.asarray(weights, float)
    use = np.isfinite(y) & (w > 0)
    names = RATES[model] + (("vB",) if vb is None else ())
    res = PlasmaResult(region=region, model=model, delay_min=pf.delay, n_params=len(names))
    res.n_frames = int(use.sum())
    if res.n_frames <= len(names) or not np.any(y[use] > 0):
        return res
    sw = np.sqrt(np.where(use, w, 0.0))
    y0 = np.where(use, y, 0.0)
    lo = np.array([BOUNDS[k][0] for k in names])
    hi = np.array([BOUNDS[k][1] for k in names])

    def params(x) -> dict:
        p = dict(zip(names, x, strict=True))
        if vb is not None:
            p["vB"] = vb
        return p

    memo: dict = {}

    def evaluate(x):
        key = x.tobytes()
        if key not in memo:
            memo.clear()
            memo[key] = model_jacobian(pf, params(x), names)
        return memo[key]

    def residuals(x):
        return sw * (evaluate(x)[0] - y0)

    def jacobian(x):
        return sw[:, None] * evaluate(x)[1]

    best = None
    for start in _starts(pf, y0, sw, model, vb):
        x0 = np.clip([start[k] for k in names], lo + 1e-6 * (hi - lo), hi - 1e-6 * (hi - lo))
        sol = least_squares(residuals, x0, jac=jacobian, bounds=(lo, hi), method="trf",
                            x_scale="jac",
                            ftol=1e-9, xtol=1e-9, gtol=1e-9, max_nfev=400)  # fmt: skip
        if best is None or sol.cost < best.cost:
            best = sol
    p = params(best.x)
    for k in names:
        setattr(res, k, float(p[k]))
    res.vB = float(p["vB"])
    res.VT = _vt(p)
    res.wrss = float(2.0 * best.cost)
    res.aic = aic(res.wrss, res.n_frames, len(names))
    res.success = bool(best.success)
    atol = 1e-5 * (hi - lo)
    at_bound = (np.abs(best.x - lo) < atol) | (np.abs(best.x - hi) < atol)
    res.edge = bool(np.any(at_bound[[i for i, k in enumerate(names) if k != "vB"]]))
    _standard_errors(res, best, names, params)
    if "k3" in names:
        k34 = [names.index("k3"), names.index("k4")]
        res.identifiable = bool(not np.any(at_bound[k34])
                                and max(res.k3_cov, res.k4_cov) <= MAX_RATE_COV_PCT)  # fmt: skip
    return res


def _standard_errors(res: PlasmaResult, sol, names, params) -> None:
    """%COV of every fitted parameter and of V_T (delta method) from the Jacobian at the optimum."""
    dof = res.n_frames - len(names)
    jac = np.asarray(sol.jac, float)
    if dof <= 0 or not np.all(np.isfinite(jac)):
        return
    cov = np.linalg.pinv(jac.T @ jac) * (res.wrss / dof)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    for k, s, x in zip(names, se, sol.x, strict=True):
        setattr(res, f"{k}_cov", float(100.0 * s / abs(x)) if x != 0 else np.inf)
    grad = np.zeros(len(names))
    for i, x in enumerate(sol.x):
        h = 1e-6 * max(abs(x), 1e-6)
        xp, xm = sol.x.copy(), sol.x.copy()
        xp[i], xm[i] = x + h, x - h
        grad[i] = (_vt(params(xp)) - _vt(params(xm))) / (2 * h)
    res.VT_cov = float(100.0 * np.sqrt(max(grad @ cov @ grad, 0.0)) / abs(res.VT))


def fit_delay(
    inp: ArterialInput,
    start_min,
    end_min,
    tac,
    *,
    weights: np.ndarray | None = None,
    vb: float | None = None,
    delay_range_min: tuple[float, float] = DEFAULT_DELAY_RANGE_MIN,
) -> tuple[float, PlasmaResult]:
    """Blood-tissue delay (minutes; > 0: the input reaches the tissue later) by a 1TCM fit.

    The WRSS of the 1TCM is scanned on a 2-s grid over ``delay_range_min``; the local minimum
    nearest to zero delay is refined by a bounded scalar search (the edge of the range only when
    the profile has no interior minimum). The nearest rather than the global minimum: on real
    data a far, lower minimum often trades delay against an implausibly large vB (a known
    degeneracy), and a catheter delay is seconds. Returns the delay and the 1TCM fit there.
    """
    lo, hi = (float(v) for v in delay_range_min)
    if not lo < hi:
        raise ValueError(f"delay range must be increasing, got {delay_range_min}")
    base = PlasmaFrames(inp, start_min, end_min)

    def fit(d: float) -> PlasmaResult:
        return fit_compartment(base.shifted(d), tac, "1tcm", weights=weights, vb=vb)

    grid = np.arange(lo, hi + 1e-9, _DELAY_STEP_MIN)
    cost = np.array([fit(d).wrss for d in grid])
    if not np.any(np.isfinite(cost)):
        raise ValueError("the 1TCM could not be fitted to the delay region at any delay")
    cost = np.where(np.isfinite(cost), cost, np.inf)
    inner = np.flatnonzero((cost[1:-1] <= cost[:-2]) & (cost[1:-1] <= cost[2:])) + 1
    i = int(inner[np.argmin(np.abs(grid[inner]))]) if inner.size else int(np.argmin(cost))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    sol = minimize_scalar(lambda d: fit(d).wrss, bounds=(a, b), method="bounded",
                          options={"xatol": 0.1 / 60.0})  # fmt: skip
    delay = float(sol.x) if sol.fun <= cost[i] else float(grid[i])
    return delay, fit(delay)
