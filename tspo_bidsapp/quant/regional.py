"""Regional kinetic fits of every region TAC, one table per model (the ``_kinpar.tsv`` rows).

Models (``--models``): SRTM (Lammertsma & Hume 1996), SRTM2 (Wu & Carson 2002), Logan
(Logan et al. 1996), MRTM2 (Ichise et al. 2003) and SUVR. SRTM2 and MRTM2 fix the reference
efflux ``k2'`` (1/min) to the median over regions of the SRTM estimate (successful, non-edge
fits with BPND > 0), the usual two-step scheme. Times in minutes; frame averages in the
PET's units (kBq/mL).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics import (
    fit_logan,
    fit_mrtm2,
    fit_srtm_regions,
    fit_suvr,
    kinpar_table,
)
from tspo_bidsapp.kinetics.frames import InterpolatedReference, frame_weights
from tspo_bidsapp.kinetics.kinpar import KineticResult, aic
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN
from tspo_bidsapp.quant.quality import assess_fits

MODELS = ("SRTM", "SRTM2", "Logan", "MRTM2", "SUVR")


@dataclass(frozen=True)
class ModelSettings:
    """Settings shared by the regional and voxel-wise fits (recorded in the JSON sidecars)."""

    models: tuple[str, ...] = ("SRTM",)
    tstar_min: float = DEFAULT_TSTAR_MIN  # Logan / MRTM2 start of the linear phase, minutes
    suvr_window_min: tuple[float, float] | None = None  # default: last 20 min of the scan
    k2prime: float | None = None  # 1/min; None: median SRTM estimate over regions

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ValueError(f"--models: unknown model(s) {unknown}; choose from {MODELS}")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["models"] = list(self.models)
        return out


def regional_k2prime(srtm: list[KineticResult]) -> float:
    """Median SRTM ``k2' = k2/R1`` (1/min) over reliable regional fits with BPND > 0."""
    vals = [
        r.k2prime
        for r in srtm
        if r.success and not r.edge and np.isfinite(r.k2prime) and r.k2prime > 0 and r.BPND > 0
    ]
    if not vals:
        raise ValueError("no reliable regional SRTM fit to estimate k2' from")
    return float(np.median(vals))


def fit_regions(
    timing: FrameTiming, ref_tac: np.ndarray, tacs: dict[str, np.ndarray], settings: ModelSettings
) -> tuple[dict[str, list[KineticResult]], dict]:
    """Fit every requested model to every region TAC; returns ``{model: results}`` and info.

    ``info`` holds the ``k2prime`` used by SRTM2/MRTM2 (and where it came from).
    """
    start, end = timing.start_min, timing.end_min
    out: dict[str, list[KineticResult]] = {}
    info: dict = {}
    need_srtm = "SRTM" in settings.models or (
        settings.k2prime is None and {"SRTM2", "MRTM2"} & set(settings.models)
    )
    if need_srtm:
        out["SRTM"] = fit_srtm_regions(start, end, ref_tac, tacs)
    if {"SRTM2", "MRTM2"} & set(settings.models):
        if settings.k2prime is not None:
            info.update(k2prime=float(settings.k2prime), k2prime_source="user")
        else:
            info.update(k2prime=regional_k2prime(out["SRTM"]), k2prime_source="median-srtm")
    k2p = info.get("k2prime")
    for model in settings.models:
        if model == "SRTM2":
            out[model] = [
                _fit_srtm2(start, end, ref_tac, tac, k2p, name) for name, tac in tacs.items()
            ]
        elif model == "Logan":
            out[model] = [
                fit_logan(start, end, ref_tac, tac, tstar_min=settings.tstar_min, region=name)
                for name, tac in tacs.items()
            ]
        elif model == "MRTM2":
            out[model] = [
                fit_mrtm2(start, end, ref_tac, tac, k2p, tstar_min=0.0, region=name)
                for name, tac in tacs.items()
            ]
        elif model == "SUVR":
            out[model] = [
                fit_suvr(start, end, ref_tac, tac, window=settings.suvr_window_min, region=name)
                for name, tac in tacs.items()
            ]
    if "SRTM" not in settings.models:
        out.pop("SRTM", None)
    assess_fits(out, start, end, ref_tac, tacs)
    return out, info


def _fit_srtm2(start, end, ref_tac, tac, k2prime: float, region: str) -> KineticResult:
    """Regional SRTM2: SRTM with ``k2 = R1 k2'`` fixed, by a 1-D search over BPND via NLLS."""
    ref = InterpolatedReference(start, end, ref_tac)
    y = np.asarray(tac, float)
    w = frame_weights(ref.start, ref.end)
    res = KineticResult(region=region, model="srtm2", n_frames=int(y.size), n_params=2)
    res.k2prime = float(k2prime)
    if not np.all(np.isfinite(y)):
        return res

    def wrss_of(k2a: float) -> tuple[float, float]:
        basis = ref.values + (k2prime - k2a) * ref.conv_frames(k2a)
        r1 = max(float((w * basis) @ y) / float((w * basis) @ basis), 0.0)
        return float(w @ (y - r1 * basis) ** 2), r1

    sol = minimize_scalar(lambda lk: wrss_of(np.exp(lk))[0], bounds=(np.log(1e-3), np.log(3.0)),
                          method="bounded", options={"xatol": 1e-8})  # fmt: skip
    k2a = float(np.exp(sol.x))
    wrss, r1 = wrss_of(k2a)
    res.R1, res.k2, res.k2a = r1, r1 * k2prime, k2a
    res.BPND = r1 * k2prime / k2a - 1.0
    res.DVR = 1.0 + res.BPND
    res.wrss, res.aic = wrss, aic(wrss, res.n_frames, 2)
    res.success = bool(sol.success)
    return res


def model_table(
    results: list[KineticResult],
    volumes_ml: dict[str, float],
    participant: dict | None = None,
) -> pd.DataFrame:
    """``_kinpar.tsv`` table: region, volume_ml, the kinetic columns, then participant columns
    (``tspo_genotype``, ``genotype_flag``, ...) carried into every row."""
    table = kinpar_table(results)
    table.insert(1, "volume_ml", [volumes_ml.get(r, np.nan) for r in table["region"]])
    for key, value in (participant or {}).items():
        table[key] = value
    return table
