"""The arterial input as a frame schedule sees it, and the result rows of plasma-input models.

All times in **minutes**. The input (an :class:`~tspo_bidsapp.blood.InputFunction` or anything
with its ``plasma_at``/``blood_at`` methods) is sampled on a fine uniform grid (1 s), shifted by
the blood-tissue delay, convolved there exactly (:func:`~tspo_bidsapp.kinetics.simulate.exp_conv`)
and averaged over each frame, so that model curves are frame integrals, not mid-frame samples.
Past its last sample the input is held constant.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Protocol

import numpy as np
import pandas as pd

from tspo_bidsapp.kinetics.frames import check_frames
from tspo_bidsapp.kinetics.simulate import DEFAULT_STEP_MIN, exp_conv, fine_grid

#: Rates (1/min) of the exponential basis used to initialise the compartment fits and by the
#: basis-function 1TCM: 0.002/min (a 6-h half-life, ~ an integrator over 90 min) to 3/min.
BASIS_RATES = np.geomspace(0.002, 3.0, 48)


class ArterialInput(Protocol):
    """What the plasma-input models need of an input function (times in minutes)."""

    def plasma_at(self, t_min: np.ndarray, delay_min: float = 0.0) -> np.ndarray: ...

    def blood_at(self, t_min: np.ndarray, delay_min: float = 0.0) -> np.ndarray: ...


def frame_average_matrix(grid: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Matrix ``A`` (frames x grid) with ``A @ c`` = frame means of the piecewise-linear ``c``.

    Exact for curves linear between the (uniform) grid points; the linear-algebra form of
    :func:`~tspo_bidsapp.kinetics.simulate.frame_average`.
    """
    step = float(grid[1] - grid[0])
    n = grid.size

    def integral_rows(x: np.ndarray) -> np.ndarray:
        i = np.clip(np.floor(x / step + 1e-9).astype(int), 0, n - 2)
        dx = x - grid[i]
        rows = np.where(np.arange(n)[None, :] <= i[:, None], step, 0.0)
        rows[:, 0] -= 0.5 * step
        rows[np.arange(x.size), i] += dx - 0.5 * step - 0.5 * dx * dx / step
        rows[np.arange(x.size), i + 1] += 0.5 * dx * dx / step
        return rows

    return (integral_rows(end) - integral_rows(start)) / (end - start)[:, None]


class PlasmaFrames:
    """Plasma and whole blood on a fine grid, delayed by ``delay_min``, and their frame averages."""

    def __init__(
        self,
        inp: ArterialInput,
        start_min,
        end_min,
        *,
        delay_min: float = 0.0,
        step_min: float = DEFAULT_STEP_MIN,
        _avg: np.ndarray | None = None,
    ):
        self.input = inp
        self.start, self.end = check_frames(start_min, end_min, what="frames")
        self.mid = 0.5 * (self.start + self.end)
        self.step = float(step_min)
        self.delay = float(delay_min)
        self.grid = fine_grid(float(self.end[-1]), self.step)
        self._avg = frame_average_matrix(self.grid, self.start, self.end) if _avg is None else _avg
        self.cp = np.asarray(inp.plasma_at(self.grid, self.delay), float)
        self.cb = np.asarray(inp.blood_at(self.grid, self.delay), float)
        self.blood = self.average(self.cb)

    @property
    def n_frames(self) -> int:
        return int(self.start.size)

    def shifted(self, delay_min: float) -> PlasmaFrames:
        """The same input and frames with another delay (reuses the averaging matrix)."""
        return PlasmaFrames(self.input, self.start, self.end, delay_min=delay_min,
                            step_min=self.step, _avg=self._avg)  # fmt: skip

    def average(self, curves: np.ndarray) -> np.ndarray:
        """Frame averages of curves on :attr:`grid` (time on the last axis)."""
        return np.asarray(curves) @ self._avg.T

    def conv(self, rate: float) -> np.ndarray:
        """Frame averages of ``∫_0^t Cp(u) e^{-rate (t-u)} du`` (rate in 1/min, >= 0)."""
        return self.average(exp_conv(self.cp, self.step, float(rate)))

    def conv_and_slope(self, rate: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`conv` and the frame averages of ``Cp ⊗ t e^{-rate t}`` (= -d conv / d rate)."""
        fine = exp_conv(self.cp, self.step, float(rate))
        both = self.average(np.stack([fine, exp_conv(fine, self.step, float(rate))]))
        return both[0], both[1]

    def integral(self) -> np.ndarray:
        """Frame averages of ``∫_0^t Cp`` (computed once)."""
        if getattr(self, "_integral", None) is None:
            self._integral = self.conv(0.0)
        return self._integral

    def conv_many(self, rates) -> np.ndarray:
        """:meth:`conv` for several rates: array (n_rates, n_frames)."""
        rates = np.asarray(rates, float).reshape(-1)
        fine = np.empty((rates.size, self.grid.size))
        for i, rate in enumerate(rates):  # one short recursive filter per rate
            fine[i] = exp_conv(self.cp, self.step, float(rate))
        return self.average(fine)

    def basis(self) -> np.ndarray:
        """:meth:`conv_many` of :data:`BASIS_RATES`, computed once per instance."""
        if getattr(self, "_basis", None) is None:
            self._basis = self.conv_many(BASIS_RATES)
        return self._basis

    def at_mid(self) -> tuple[np.ndarray, np.ndarray]:
        """Blood at the frame mid-times and ``∫_0^t Cp`` there (graphical methods)."""
        blood = np.asarray(self.input.blood_at(self.mid, self.delay), float)
        cum = np.cumsum(self.cp) * self.step - 0.5 * self.step * (self.cp + self.cp[0])
        return blood, np.interp(self.mid, self.grid, cum)


PLASMA_COLUMNS: tuple[str, ...] = (
    "region", "model", "VT", "K1", "k2", "k3", "k4", "Kb", "vB", "VT_cov", "K1_cov", "k2_cov",
    "k3_cov", "k4_cov", "Kb_cov", "vB_cov", "intercept", "delay_min", "tstar_min", "wrss", "aic",
    "n_frames", "n_params", "success", "edge", "identifiable", "fit_quality",
)  # fmt: skip


@dataclass
class PlasmaResult:
    """One plasma-input fit. Rates in 1/min (K1 in mL/cm³/min), V_T in mL/cm³, ``*_cov`` the
    coefficient of variation in % (SE/estimate, from the NLLS covariance), ``identifiable``
    False when a rate constant (k3/k4 of the 2TCM) is poorly determined or at a bound."""

    region: str = ""
    model: str = ""
    VT: float = math.nan
    K1: float = math.nan
    k2: float = math.nan
    k3: float = math.nan
    k4: float = math.nan
    Kb: float = math.nan
    vB: float = math.nan
    VT_cov: float = math.nan
    K1_cov: float = math.nan
    k2_cov: float = math.nan
    k3_cov: float = math.nan
    k4_cov: float = math.nan
    Kb_cov: float = math.nan
    vB_cov: float = math.nan
    intercept: float = math.nan
    delay_min: float = math.nan
    tstar_min: float = math.nan
    wrss: float = math.nan
    aic: float = math.nan
    n_frames: int = 0
    n_params: int = 0
    success: bool = False
    edge: bool = False
    identifiable: bool = True
    fit_quality: str = "ok"  # set by quant.quality.assess_fits

    def as_row(self) -> dict:
        return asdict(self)


assert tuple(f.name for f in fields(PlasmaResult)) == PLASMA_COLUMNS


def plasma_table(results: list[PlasmaResult], columns: tuple[str, ...] = PLASMA_COLUMNS):
    """Results as a DataFrame, one row per region, with ``columns`` (default: all)."""
    return pd.DataFrame([r.as_row() for r in results], columns=list(PLASMA_COLUMNS))[list(columns)]
