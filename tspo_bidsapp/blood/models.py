"""Curve models for the discrete blood samples: parent fraction and plasma-over-blood ratio.

Parent fraction f(t) (t in minutes after injection; every model has f(0) = 1), after the
families reviewed by Tonietto et al. 2016 (J Cereb Blood Flow Metab 36:326):

- ``hill``: f = 1 - (1 - a) t^b / (c^b + t^b)  (a: late fraction, b: Hill slope, c: t50 min)
- ``exp1``: f = a + (1 - a) exp(-l t)  (mono-exponential to a plateau a)
- ``exp2``: f = A exp(-l1 t) + (1 - A) exp(-l2 t)  (bi-exponential)

Plasma-over-whole-blood ratio r(t): ``constant`` (r = a), ``linear`` (r = a + b t) and
``rise`` (r = a + b (1 - exp(-c t))).

Each model is fitted by bounded least squares from a few starting points; among several, the
one with the lowest AIC = n ln(RSS / n) + 2 k wins (Akaike 1974), fewer parameters on a tie.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

Curve = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CurveModel:
    """A named curve y = func(t, params) with bounds and starting points."""

    name: str
    func: Curve
    param_names: tuple[str, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    starts: tuple[tuple[float, ...], ...]

    @property
    def n_params(self) -> int:
        return len(self.param_names)


@dataclass(frozen=True)
class ModelFit:
    """A fitted :class:`CurveModel`: parameters, residual sum of squares and AIC."""

    model: CurveModel
    params: np.ndarray
    rss: float
    n_samples: int

    @property
    def aic(self) -> float:
        n = self.n_samples
        return float(n * np.log(max(self.rss, 1e-300) / n) + 2 * self.model.n_params)

    def __call__(self, t_min: np.ndarray) -> np.ndarray:
        return self.model.func(np.asarray(t_min, float), self.params)

    def summary(self) -> dict[str, Any]:
        return {
            "Model": self.model.name,
            "Parameters": dict(zip(self.model.param_names, map(float, self.params), strict=True)),
            "RSS": self.rss,
            "AIC": self.aic,
            "NumberOfSamples": self.n_samples,
        }


def _hill(t, p):
    a, b, c = p
    tb = np.power(np.maximum(t, 0.0), b)
    return 1.0 - (1.0 - a) * tb / (c**b + tb)


def _exp1(t, p):
    a, rate = p
    return a + (1.0 - a) * np.exp(-rate * np.maximum(t, 0.0))


def _exp2(t, p):
    amp, rate1, rate2 = p
    t = np.maximum(t, 0.0)
    return amp * np.exp(-rate1 * t) + (1.0 - amp) * np.exp(-rate2 * t)


PARENT_FRACTION_MODELS: dict[str, CurveModel] = {
    "hill": CurveModel(
        "hill", _hill, ("a", "b", "c"), (0.0, 0.3, 0.05), (1.0, 10.0, 300.0),
        ((0.1, 2.0, 10.0), (0.05, 1.0, 5.0), (0.3, 3.0, 30.0)),
    ),
    "exp1": CurveModel(
        "exp1", _exp1, ("a", "l"), (0.0, 1e-4), (1.0, 10.0), ((0.1, 0.1), (0.05, 0.02)),
    ),
    "exp2": CurveModel(
        "exp2", _exp2, ("A", "l1", "l2"), (0.0, 1e-4, 1e-5), (1.0, 10.0, 1.0),
        ((0.8, 0.1, 0.005), (0.5, 0.3, 0.02), (0.9, 0.05, 0.001)),
    ),
}  # fmt: skip

RATIO_MODELS: dict[str, CurveModel] = {
    "constant": CurveModel(
        "constant", lambda t, p: np.full(np.shape(t), p[0]), ("a",), (0.0,), (10.0,), ((1.0,),)
    ),
    "linear": CurveModel(
        "linear", lambda t, p: p[0] + p[1] * t, ("a", "b"), (0.0, -1.0), (10.0, 1.0),
        ((1.0, 0.0),),
    ),
    "rise": CurveModel(
        "rise", lambda t, p: p[0] + p[1] * (1.0 - np.exp(-p[2] * np.maximum(t, 0.0))),
        ("a", "b", "c"), (0.0, -5.0, 1e-3), (10.0, 5.0, 5.0), ((1.0, 0.3, 0.1), (1.0, 0.5, 0.02)),
    ),
}  # fmt: skip


def fit_curve(model: CurveModel, t_min: np.ndarray, y: np.ndarray) -> ModelFit:
    """Least-squares fit of ``model`` to samples (t in minutes); the best of its starting points."""
    t = np.asarray(t_min, float)
    y = np.asarray(y, float)
    best = None
    for start in model.starts:
        x0 = np.clip(start, model.lower, model.upper)
        result = least_squares(
            lambda p: model.func(t, p) - y, x0, bounds=(model.lower, model.upper), method="trf"
        )
        rss = float(np.sum(result.fun**2))
        if best is None or rss < best.rss:
            best = ModelFit(model, result.x, rss, int(t.size))
    return best


def select_model(
    models: dict[str, CurveModel], t_min: np.ndarray, y: np.ndarray, choice: str | None = None
) -> tuple[ModelFit, dict[str, float]]:
    """Fit ``choice`` (or every model, the lowest AIC winning) and return it with all AICs.

    Models with more parameters than samples are skipped; a ``choice`` not in ``models`` is a
    ValueError.
    """
    if choice is not None:
        if choice not in models:
            raise ValueError(f"unknown model {choice!r}; choose from {', '.join(models)}")
        fit = fit_curve(models[choice], t_min, y)
        return fit, {choice: fit.aic}
    fits = [fit_curve(m, t_min, y) for m in models.values() if m.n_params < np.size(t_min)]
    if not fits:
        raise ValueError(f"too few samples ({np.size(t_min)}) to fit any model")
    best = min(fits, key=lambda f: (round(f.aic, 6), f.model.n_params))
    return best, {f.model.name: f.aic for f in fits}
