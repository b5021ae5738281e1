"""Regional SRTM2: SRTM with the reference efflux ``k2' = k2/R1`` fixed (Wu Y, Carson RE 2002,
J Cereb Blood Flow Metab 22:1440-1452).

``C_T = R1 {C_R + (k2' - k2a) [C_R ⊗ e^{-k2a t}]}``: for a given ``k2a`` the model is linear in
R1, so the fit is a bounded 1-D search over ``log k2a`` with R1 solved by weighted least squares
(non-negative). ``BPND = R1 k2'/k2a - 1``. Times in minutes, rates in 1/min; the reference is
handled as in SRTM (:class:`~tspo_bidsapp.kinetics.frames.InterpolatedReference`).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from tspo_bidsapp.kinetics.frames import InterpolatedReference, frame_weights
from tspo_bidsapp.kinetics.kinpar import KineticResult, aic

#: Search range of k2a (1/min).
K2A_RANGE = (1e-3, 3.0)


def fit_srtm2(
    start_min,
    end_min,
    ref_tac,
    tac,
    k2prime: float,
    *,
    weights: np.ndarray | None = None,
    region: str = "",
) -> KineticResult:
    """Fit SRTM2 to one TAC; ``ref_tac`` may be an :class:`InterpolatedReference` to share."""
    if not (np.isfinite(k2prime) and k2prime > 0):
        raise ValueError(f"k2prime must be a positive rate in 1/min, got {k2prime}")
    ref = ref_tac if isinstance(ref_tac, InterpolatedReference) else None
    if ref is None:
        ref = InterpolatedReference(start_min, end_min, ref_tac)
    y = np.asarray(tac, float).reshape(-1)
    w = frame_weights(ref.start, ref.end) if weights is None else np.asarray(weights, float)
    res = KineticResult(region=region, model="srtm2", n_frames=int(y.size), n_params=2)
    res.k2prime = float(k2prime)
    if y.size != ref.n_frames or not np.all(np.isfinite(y)):
        return res

    def wrss_of(k2a: float) -> tuple[float, float]:
        basis = ref.values + (k2prime - k2a) * ref.conv_frames(k2a)
        r1 = max(float((w * basis) @ y) / float((w * basis) @ basis), 0.0)
        return float(w @ (y - r1 * basis) ** 2), r1

    lo, hi = np.log(K2A_RANGE[0]), np.log(K2A_RANGE[1])
    sol = minimize_scalar(lambda lk: wrss_of(np.exp(lk))[0], bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-8})  # fmt: skip
    k2a = float(np.exp(sol.x))
    wrss, r1 = wrss_of(k2a)
    res.R1, res.k2, res.k2a = r1, r1 * k2prime, k2a
    res.BPND = r1 * k2prime / k2a - 1.0
    res.DVR = 1.0 + res.BPND
    res.wrss, res.aic = wrss, aic(wrss, res.n_frames, 2)
    res.success = bool(sol.success)
    res.edge = bool(min(sol.x - lo, hi - sol.x) < 1e-6 * (hi - lo))
    return res
