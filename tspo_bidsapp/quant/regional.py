"""Regional kinetic fits of every region TAC, one table per model (the ``_kinpar.tsv`` rows).

Models (``--models``): the reference-tissue models of the kinetic-model registry
(:mod:`tspo_bidsapp.kinetics.registry`): SRTM (Lammertsma & Hume 1996), SRTM2 (Wu & Carson
2002), Logan (Logan et al. 1996), MRTM2 (Ichise et al. 2003) and SUVR. SRTM2 and MRTM2 fix the
reference efflux ``k2'`` (1/min) by the registry's one rule (the user's value, else the median
over regions of reliable SRTM estimates), the usual two-step scheme. With an arterial input
the plasma-input models (1TCM, 2TCM, 2TCM-1K, Logan plasma, MA1) run as well. Times in minutes;
frame averages in the PET's units (kBq/mL).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics.kinpar import KineticResult
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN
from tspo_bidsapp.kinetics.registry import (
    MEASURE_UNITS,
    REFERENCE,
    FitData,
    FitOptions,
    fit_regional,
    model_names,
    results_table,
)
from tspo_bidsapp.kinetics.registry_models import DEFAULT_SRTM_MAP_ESTIMATOR, SRTM_MAP_ESTIMATORS
from tspo_bidsapp.quant.quality import assess_fits

MODELS = model_names()  # what --models offers; plasma models run where a run has blood
#: Units of the plasma-input models' table columns (kinpar sidecars).
PLASMA_UNITS = {"VT": MEASURE_UNITS["VT"], "K1": MEASURE_UNITS["K1"], "k3": "1/min",
                "k4": "1/min", "Kb": "mL/cm3/min", "vB": "1", "delay_min": "min",
                "tstar_min": "min"}  # fmt: skip


def models_for_run(models: tuple[str, ...], has_input_function: bool) -> tuple[str, ...]:
    """The requested models a PET run can fit: plasma-input models only with an arterial input.

    Raises ValueError when nothing is left (only plasma-input models and no blood).
    """
    if has_input_function:
        return tuple(models)
    keep = tuple(m for m in models if m in model_names(REFERENCE))
    if not keep:
        raise ValueError(f"--models {' '.join(models)} need an arterial input (BIDS blood "
                         "recordings or an *_inputfunction.tsv) and this run has none")  # fmt: skip
    return keep


@dataclass(frozen=True)
class ModelSettings:
    """Settings shared by the regional and voxel-wise fits (recorded in the JSON sidecars)."""

    models: tuple[str, ...] = ("SRTM",)
    tstar_min: float = DEFAULT_TSTAR_MIN  # Logan start of the linear phase, minutes
    suvr_window_min: tuple[float, float] | None = None  # default: last 20 min of the scan
    k2prime: float | None = None  # 1/min; None: median SRTM estimate over regions
    vb: float | None = None  # plasma-input models' blood volume; None: the registry's rule
    voxelwise_estimator: str = DEFAULT_SRTM_MAP_ESTIMATOR  # SRTM maps: SRTM_MAP_ESTIMATORS

    def __post_init__(self) -> None:
        if self.voxelwise_estimator not in SRTM_MAP_ESTIMATORS:
            raise ValueError(f"--voxelwise-estimator: unknown {self.voxelwise_estimator!r}; "
                             f"choose from {SRTM_MAP_ESTIMATORS}")  # fmt: skip
        unknown = [m for m in self.models if m not in model_names()]
        if unknown:
            raise ValueError(f"--models: unknown model(s) {unknown}; choose from {model_names()}")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["models"] = list(self.models)
        return out

    def fit_options(self) -> FitOptions:
        """The registry's options for these settings (t* for the Logan-type plots only)."""
        return FitOptions(tstar_min=self.tstar_min, tstar_logan_only=True,
                          k2prime=self.k2prime, suvr_window_min=self.suvr_window_min,
                          vb=self.vb, voxelwise_estimator=self.voxelwise_estimator)  # fmt: skip


def fit_regions(
    timing: FrameTiming,
    ref_tac: np.ndarray | None,
    tacs: dict[str, np.ndarray],
    settings: ModelSettings,
    *,
    input_function=None,
) -> tuple[dict[str, list[KineticResult]], dict]:
    """Fit every requested model to every region TAC; returns ``{model: results}`` and info.

    ``info`` holds the ``k2prime`` used by SRTM2/MRTM2 (and where it came from) and, for
    plasma-input models (``input_function``: a :class:`~tspo_bidsapp.blood.InputFunction`),
    the blood-tissue delay fitted on the whole-brain TAC.
    """
    data = FitData(timing.start_min, timing.end_min, tacs, ref_tac, input_function)
    out, info = fit_regional(settings.models, data, settings.fit_options())
    assess_fits(out, timing.start_min, timing.end_min, ref_tac, tacs)
    return out, info


def model_table(
    results: list[KineticResult],
    volumes_ml: dict[str, float],
    participant: dict | None = None,
) -> pd.DataFrame:
    """``_kinpar.tsv`` table: region, volume_ml, the kinetic columns, then participant columns
    (``tspo_genotype``, ``genotype_flag``, ...) carried into every row."""
    table = results_table(results)
    table.insert(1, "volume_ml", [volumes_ml.get(r, np.nan) for r in table["region"]])
    for key, value in (participant or {}).items():
        table[key] = value
    return table
