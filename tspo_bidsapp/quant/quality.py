"""Fit quality of regional kinetic fits: one ``fit_quality`` label per ``_kinpar.tsv`` row.

``ok`` or ``;``-joined flags:

- ``not-kinetic``: the region is not kinetically meaningful (CSF, ventricles, the excluded
  cerebellar grey matter, the reference itself); its numbers are kept but should not be used;
- ``at-bound``: the optimiser stopped on (or within 2 % of the log range of) a parameter bound;
- ``k2-near-zero``: ``k2`` below :attr:`QualityLimits.k2_min` (the tissue never clears: a
  degenerate SRTM solution, not a tracer property);
- ``BPND-negative`` / ``BPND-implausible`` / ``R1-implausible``: outside the ranges a TSPO
  tracer takes in brain (:class:`QualityLimits`);
- ``poor-fit``: weighted residuals larger than the frame noise (ratio > 2), where noise is
  estimated from the TAC alone by Gasser pseudo-residuals (Gasser T, Sroka L, Jennen-Steinmetz
  C, Biometrika 73:625-633, 1986);
- ``residual-runs``: too few sign runs in the residuals (Wald-Wolfowitz runs test, one-sided
  p < 0.005): a systematic misfit;
- ``not-identifiable``: the parameter covariance of the SRTM fit is singular or the standard
  error of BPND exceeds :attr:`QualityLimits.se_bpnd_max`.

- ``VT-implausible`` (plasma-input models): V_T not positive or above
  :attr:`QualityLimits.vt_max`; plasma-input fits are also flagged ``not-identifiable`` when
  their k3/k4 are poorly determined or on a bound.

Residual tests are done for models that predict the TAC (SRTM, SRTM2); the others get the
bound and plausibility checks. Residual flags need a material misfit (relative RMS residual
above :attr:`QualityLimits.min_rel_rms`) so noiseless simulations are not flagged for
numerical wiggles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tspo_bidsapp.kinetics.frames import InterpolatedReference, frame_weights
from tspo_bidsapp.kinetics.kinpar import KineticResult
from tspo_bidsapp.kinetics.plasma import PlasmaResult
from tspo_bidsapp.kinetics.srtm import DEFAULT_BOUNDS, srtm_frames

OK = "ok"
#: TSPO-MS regions (``seg-tspoms``) whose kinetic values carry no biological meaning.
NON_KINETIC_REGIONS: frozenset[str] = frozenset(
    {"CSF-extracerebral", "ventricles", "cerebellar-GM-excluded", "cerebellar-GM-reference"}
)


@dataclass(frozen=True)
class QualityLimits:
    """Limits of a trustworthy regional TSPO fit (rates 1/min)."""

    bound_fraction: float = 0.02  # "near a bound": within this fraction of the (log) range
    k2_min: float = 0.005  # 1/min; TSPO tracers have k2 ~0.02-0.5 /min
    bpnd_min: float = -0.2  # below: more clearance than the reference, implausible
    bpnd_max: float = 5.0  # TSPO BPND in brain ~0-3
    r1_range: tuple[float, float] = (0.2, 3.0)
    noise_ratio_max: float = 2.0  # weighted RMS residual / estimated frame noise
    runs_z_max: float = -2.576  # runs-test z below this: systematic residuals
    min_rel_rms: float = 0.01  # residual flags need RMS residual > 1 % of the mean TAC
    se_bpnd_max: float = 0.5  # standard error of BPND above which it is not identifiable
    vt_max: float = 50.0  # mL/cm3; TSPO V_T in brain ~0.3-10 (PK11195 to PBR28 HAB)


DEFAULT_LIMITS = QualityLimits()


def _near_bound(value: float, lo: float, hi: float, fraction: float) -> bool:
    """True when ``value`` is within ``fraction`` of the range of a bound (log range if lo > 0)."""
    if not math.isfinite(value):
        return False
    if lo > 0 and value > 0:
        value, lo, hi = math.log(value), math.log(lo), math.log(hi)
    span = hi - lo
    return value <= lo + fraction * span or value >= hi - fraction * span


def plausibility_flags(res: KineticResult, limits: QualityLimits = DEFAULT_LIMITS) -> list[str]:
    """Flags from the parameter values alone (bounds, k2, BPND/DVR and R1 ranges)."""
    flags = []
    bpnd = res.BPND if math.isfinite(res.BPND) else res.DVR - 1.0
    if res.edge:
        flags.append("at-bound")
    elif res.model == "srtm":  # the NLLS fit runs in (R1, k2a, BPND)
        (lo_r1, lo_k2a, lo_bp), (hi_r1, hi_k2a, hi_bp) = DEFAULT_BOUNDS
        pairs = ((res.R1, lo_r1, hi_r1), (res.k2a, lo_k2a, hi_k2a), (res.BPND, lo_bp, hi_bp))
        if any(_near_bound(v, lo, hi, limits.bound_fraction) for v, lo, hi in pairs):
            flags.append("at-bound")
    if math.isfinite(res.k2) and res.k2 < limits.k2_min:
        flags.append("k2-near-zero")
    if math.isfinite(bpnd) and bpnd < limits.bpnd_min:
        flags.append("BPND-negative")
    if math.isfinite(bpnd) and bpnd > limits.bpnd_max:
        flags.append("BPND-implausible")
    lo, hi = limits.r1_range
    if math.isfinite(res.R1) and not lo <= res.R1 <= hi:
        flags.append("R1-implausible")
    return flags


def plasma_flags(res: PlasmaResult, limits: QualityLimits = DEFAULT_LIMITS) -> list[str]:
    """Flags of a plasma-input fit: bound, identifiability of k3/k4, V_T range."""
    flags = ["at-bound"] if res.edge else []
    if not res.identifiable:
        flags.append("not-identifiable")
    if math.isfinite(res.VT) and not 0.0 < res.VT <= limits.vt_max:
        flags.append("VT-implausible")
    return flags


def frame_noise(mid_min: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Noise SD of a unit-weight frame, from Gasser pseudo-residuals of the TAC (kBq/mL).

    Each interior frame is compared with the linear interpolation of its neighbours; the
    pseudo-residual is scaled to unit variance (``1 + a² + b²``) and by ``sqrt(w)``. The
    median absolute value (robust to the peak) / 0.6745 is returned.
    """
    t, y, w = (np.asarray(a, float) for a in (mid_min, y, w))
    keep = w > 0
    t, y, w = t[keep], y[keep], w[keep]
    if y.size < 3:
        return math.nan
    a = (t[2:] - t[1:-1]) / (t[2:] - t[:-2])
    b = 1.0 - a
    var = w[1:-1] * ((1.0 + a**2 * w[1:-1] / w[:-2] + b**2 * w[1:-1] / w[2:]) ** -1)
    eps = (y[1:-1] - a * y[:-2] - b * y[2:]) * np.sqrt(var)
    return float(np.median(np.abs(eps)) / 0.6745)


def runs_z(residuals: np.ndarray) -> float:
    """Wald-Wolfowitz runs-test z of the residual signs (negative: too few runs)."""
    signs = np.sign(np.asarray(residuals, float))
    signs = signs[signs != 0]
    n_pos, n_neg = int((signs > 0).sum()), int((signs < 0).sum())
    n = n_pos + n_neg
    if n_pos == 0 or n_neg == 0 or n < 3:
        return math.nan
    runs = 1 + int(np.count_nonzero(np.diff(signs)))
    mean = 2.0 * n_pos * n_neg / n + 1.0
    var = (mean - 1.0) * (mean - 2.0) / (n - 1.0)
    return float((runs - mean) / math.sqrt(var)) if var > 0 else math.nan


def _se_bpnd(ref: InterpolatedReference, res: KineticResult, sw: np.ndarray) -> float:
    """Standard error of BPND from the SRTM Jacobian (finite differences), inf if singular."""
    p = np.array([res.R1, res.k2, res.BPND], float)
    base = srtm_frames(ref, *p)
    steps = 1e-5 * np.maximum(np.abs(p), 1e-3)
    jac = (
        np.column_stack(
            [(srtm_frames(ref, *(p + np.eye(3)[i] * steps[i])) - base) / steps[i] for i in range(3)]
        )
        * sw[:, None]
    )
    dof = max(res.n_frames - 3, 1)
    sigma2 = res.wrss / dof
    info = jac.T @ jac
    if not np.all(np.isfinite(info)) or np.linalg.cond(info) > 1e14:
        return math.inf
    return float(math.sqrt(max(sigma2 * np.linalg.inv(info)[2, 2], 0.0)))


def residual_flags(
    ref: InterpolatedReference, y: np.ndarray, res: KineticResult, limits: QualityLimits
) -> list[str]:
    """Residual-based flags of an SRTM/SRTM2 fit (``y``: the fitted TAC, kBq/mL)."""
    if not all(math.isfinite(v) for v in (res.R1, res.k2, res.BPND)) or res.BPND <= -1:
        return []
    y = np.asarray(y, float)
    use = np.isfinite(y)
    w = frame_weights(ref.start, ref.end)
    resid = np.where(use, y - srtm_frames(ref, res.R1, res.k2, res.BPND), 0.0)
    flags = []
    scale = float(np.mean(np.abs(y[use]))) if use.any() else 0.0
    rel_rms = float(np.sqrt(np.mean(resid[use] ** 2))) / scale if scale > 0 else math.nan
    material = math.isfinite(rel_rms) and rel_rms > limits.min_rel_rms
    noise = frame_noise(ref.mid[use], y[use], w[use])
    wrms = float(np.sqrt(np.mean(w[use] * resid[use] ** 2)))
    if material and noise > 0 and wrms / noise > limits.noise_ratio_max:
        flags.append("poor-fit")
    z = runs_z(resid[use])
    if material and math.isfinite(z) and z < limits.runs_z_max:
        flags.append("residual-runs")
    if res.model == "srtm" and _se_bpnd(ref, res, np.sqrt(np.where(use, w, 0.0))) > (
        limits.se_bpnd_max
    ):
        flags.append("not-identifiable")
    return flags


def assess_fits(
    results: dict[str, list[KineticResult]],
    start_min: np.ndarray,
    end_min: np.ndarray,
    ref_tac: np.ndarray,
    tacs: dict[str, np.ndarray],
    limits: QualityLimits = DEFAULT_LIMITS,
) -> None:
    """Set ``fit_quality`` of every result (in place): ``ok`` or ``;``-joined flags."""
    ref = None if ref_tac is None else InterpolatedReference(start_min, end_min, ref_tac)
    for rows in results.values():
        for res in rows:
            flags = ["not-kinetic"] if res.region in NON_KINETIC_REGIONS else []
            if not res.success:
                flags.append("failed")
            if isinstance(res, PlasmaResult):
                flags += plasma_flags(res, limits)
                res.fit_quality = ";".join(dict.fromkeys(flags)) or OK
                continue
            flags += plausibility_flags(res, limits)
            if ref is not None and res.model in ("srtm", "srtm2") and res.region in tacs:
                flags += residual_flags(ref, tacs[res.region], res, limits)
            res.fit_quality = ";".join(dict.fromkeys(flags)) or OK


def is_flagged(labels) -> np.ndarray:
    """Boolean array: True where a ``fit_quality`` label is not ``ok`` (missing labels: False)."""
    values = np.asarray(labels, dtype=object)
    return np.array([isinstance(v, str) and v not in ("", OK) for v in values], dtype=bool)
