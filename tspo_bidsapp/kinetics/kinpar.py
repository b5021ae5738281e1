"""The common result format of every regional kinetic fit (the rows of ``_kinpar.tsv``).

Units: ``k2``, ``k2a``, ``k2prime`` in 1/min; ``R1``, ``BPND``, ``DVR``, ``SUVR`` unitless;
``tstar_min`` in minutes; ``wrss`` in the squared units of the TAC (kBq/mL)^2, weighted.
Parameters a model does not estimate are NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

KINPAR_COLUMNS: tuple[str, ...] = (
    "region",
    "model",
    "BPND",
    "DVR",
    "R1",
    "k2",
    "k2a",
    "k2prime",
    "SUVR",
    "tstar_min",
    "wrss",
    "aic",
    "n_frames",
    "n_params",
    "success",
    "edge",
    "fit_quality",
)


@dataclass
class KineticResult:
    """One fitted TAC. ``edge`` is True when a grid-search optimum sits on a bound."""

    region: str = ""
    model: str = ""
    BPND: float = math.nan
    DVR: float = math.nan
    R1: float = math.nan
    k2: float = math.nan
    k2a: float = math.nan
    k2prime: float = math.nan
    SUVR: float = math.nan
    tstar_min: float = math.nan
    wrss: float = math.nan
    aic: float = math.nan
    n_frames: int = 0
    n_params: int = 0
    success: bool = False
    edge: bool = False
    fit_quality: str = ""  # "ok" or ";"-joined flags (tspo_bidsapp.quant.quality)

    def as_row(self) -> dict:
        return asdict(self)


assert tuple(f.name for f in fields(KineticResult)) == KINPAR_COLUMNS


def aic(wrss: float, n_frames: int, n_params: int) -> float:
    """Akaike information criterion for weighted least squares: ``n ln(WRSS/n) + 2k``."""
    if not (n_frames > 0 and wrss > 0 and np.isfinite(wrss)):
        return math.nan
    return float(n_frames * math.log(wrss / n_frames) + 2 * n_params)


def kinpar_table(results: list[KineticResult]) -> pd.DataFrame:
    """Results as a DataFrame with exactly :data:`KINPAR_COLUMNS`, one row per region."""
    return pd.DataFrame([r.as_row() for r in results], columns=list(KINPAR_COLUMNS))
