"""The arterial input function handed to plasma-input kinetic models.

Times are minutes after injection (the pipeline's one time axis); activities are in the PET's
units. The curve is the metabolite-corrected parent radioactivity in arterial plasma (AIF); the
whole-blood curve, when known, feeds the vascular term ``vB * Cb(t)`` of the compartment models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class InputFunction:
    """Metabolite-corrected arterial plasma input (and whole blood) on one time grid.

    time_min:    sample times, minutes after injection, strictly increasing.
    aif:         parent radioactivity in plasma at ``time_min`` (PET units, e.g. kBq/mL).
    whole_blood: whole-blood radioactivity at ``time_min`` (same units), or None.
    provenance:  how the curve was obtained (source files, models chosen, corrections applied);
                 written into the sidecars of every fit that uses it.
    """

    time_min: np.ndarray
    aif: np.ndarray
    whole_blood: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = np.asarray(self.time_min, dtype=float)
        aif = np.asarray(self.aif, dtype=float)
        if t.ndim != 1 or aif.shape != t.shape:
            raise ValueError("time_min and aif must be 1-D arrays of one length")
        if t.size < 2 or np.any(np.diff(t) <= 0):
            raise ValueError("time_min must be strictly increasing with at least two samples")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(aif))):
            raise ValueError("time_min and aif must be finite")
        object.__setattr__(self, "time_min", t)
        object.__setattr__(self, "aif", aif)
        if self.whole_blood is not None:
            wb = np.asarray(self.whole_blood, dtype=float)
            if wb.shape != t.shape or not np.all(np.isfinite(wb)):
                raise ValueError("whole_blood must be finite and match time_min")
            object.__setattr__(self, "whole_blood", wb)
        object.__setattr__(self, "provenance", dict(self.provenance))

    def plasma_at(self, t_min: np.ndarray, delay_min: float = 0.0) -> np.ndarray:
        """AIF at ``t_min`` (linear interpolation), shifted later by ``delay_min``; 0 before."""
        return np.interp(np.asarray(t_min, float) - delay_min, self.time_min, self.aif, left=0.0)

    def blood_at(self, t_min: np.ndarray, delay_min: float = 0.0) -> np.ndarray:
        """Whole blood at ``t_min`` (shifted like :meth:`plasma_at`); the AIF when unknown."""
        curve = self.aif if self.whole_blood is None else self.whole_blood
        return np.interp(np.asarray(t_min, float) - delay_min, self.time_min, curve, left=0.0)
