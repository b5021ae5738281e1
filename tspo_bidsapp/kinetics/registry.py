"""The one registry of kinetic models: name → regional fit, voxel-wise fit, measures, inputs.

Every caller (the pipeline's regional tables and maps, ``tspo-bidsapp-fit``) looks a model up
here and runs it through :func:`fit_regional` / :func:`fit_voxelwise`, so that each model has
one implementation and each shared choice one rule:

- ``k2'`` (SRTM2, MRTM2; 1/min): the user's value, else the median over regions of the SRTM
  estimate from reliable fits (successful, not on a bound, BPND > 0) — :func:`resolve_k2prime`.
  Logan (reference) uses ``k2'`` only when the user gives it.
- Plasma-input models share one blood-tissue delay: the user's, else the 1TCM fit on the delay
  region (default: a whole-brain column, else cortical GM) — :func:`resolve_delay`.
- t*: the user's, else the model's default (``tstar_default``); the pipeline's ``--logan-tstar``
  applies to the Logan-type plots only (MRTM2 keeps its default of 0).

Times in minutes. Models needing ``"reference"`` take a reference-region TAC, models needing
``"input-function"`` an arterial input (:class:`~tspo_bidsapp.kinetics.plasma.ArterialInput`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tspo_bidsapp.kinetics import registry_models as rm
from tspo_bidsapp.kinetics.kinpar import KineticResult, kinpar_table
from tspo_bidsapp.kinetics.plasma import ArterialInput, PlasmaResult, plasma_table
from tspo_bidsapp.kinetics.plasma_compartment import DEFAULT_DELAY_RANGE_MIN, fit_delay
from tspo_bidsapp.kinetics.voxelwise import VoxelwiseResult

REFERENCE, INPUT_FUNCTION = "reference", "input-function"
#: Column names taken, in this order, for the delay fit when no region is named: a whole-brain
#: TAC, else the pipeline's cortical grey matter (a large region with a clear peak).
WHOLE_BRAIN_NAMES = ("WB", "whole-brain", "wholebrain", "whole_brain", "brain", "cortical-GM")


@dataclass(frozen=True)
class FitData:
    """What a fit sees: frames (minutes), region TACs and the reference TAC or arterial input."""

    start_min: np.ndarray
    end_min: np.ndarray
    tacs: dict[str, np.ndarray]
    ref_tac: np.ndarray | None = None
    input_function: ArterialInput | None = None


@dataclass(frozen=True)
class FitOptions:
    """User choices; None means the model's (or the rule's) default."""

    weights: np.ndarray | None = None  # relative frame weights; None: frame durations
    tstar_min: float | None = None  # start of the linear phase (graphical models), minutes
    tstar_logan_only: bool = False  # True: tstar_min only for the Logan-type plots (pipeline)
    k2prime: float | None = None  # reference efflux, 1/min
    suvr_window_min: tuple[float, float] | None = None
    vb: float | None = None  # blood volume fraction; None: fitted (compartment) / 0 (graphical)
    delay_min: float | None = None  # blood-tissue delay, minutes; None: fitted
    delay_region: str | None = None  # TAC the delay is fitted on; None: a whole-brain column
    voxelwise_estimator: str | None = None  # SRTM maps (rm.SRTM_MAP_ESTIMATORS); None: default


@dataclass(frozen=True)
class ModelSpec:
    """One kinetic model: how to fit it and what it produces."""

    name: str
    needs: str  # REFERENCE or INPUT_FUNCTION
    regional: Callable[[FitData, FitOptions], list]
    voxelwise: Callable[..., VoxelwiseResult] | None
    map_measures: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None  # table columns; None: the _kinpar.tsv columns
    needs_k2prime: bool = False
    tstar_default: float | None = None  # None: the model has no t*
    logan_type: bool = False  # a Logan-type plot (takes the pipeline's --logan-tstar)


_PLASMA_TAIL = ("delay_min", "wrss", "aic", "n_frames", "n_params", "success", "edge",
                "fit_quality")  # fmt: skip
_ONE = ("VT", "K1", "k2", "vB", "VT_cov", "K1_cov", "k2_cov", "vB_cov")
_TWO = ("VT", "K1", "k2", "k3", "k4", "vB", "VT_cov", "K1_cov", "k2_cov", "k3_cov", "k4_cov",
        "vB_cov")  # fmt: skip
_GRAPH = ("VT", "intercept", "vB", "tstar_min", "delay_min", "wrss", "aic", "n_frames", "success",
          "fit_quality")  # fmt: skip

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("SRTM", REFERENCE, rm.srtm, rm.srtm_map, ("BPND", "DVR", "R1", "k2", "edge")),
        ModelSpec("SRTM2", REFERENCE, rm.srtm2, rm.srtm2_map, ("BPND", "DVR", "R1", "k2", "edge"),
                  needs_k2prime=True),
        ModelSpec("Logan", REFERENCE, rm.logan, rm.logan_map, ("DVR", "BPND"),
                  tstar_default=rm.DEFAULT_TSTAR_MIN, logan_type=True),
        ModelSpec("MRTM2", REFERENCE, rm.mrtm2, rm.mrtm2_map, ("DVR", "BPND"),
                  needs_k2prime=True, tstar_default=rm.DEFAULT_MRTM_TSTAR_MIN),
        ModelSpec("SUVR", REFERENCE, rm.suvr, rm.suvr_map, ("SUVR",)),
        ModelSpec("1TCM", INPUT_FUNCTION, rm.one_tcm, rm.one_tcm_map, ("VT", "K1"),
                  ("region", "model") + _ONE + _PLASMA_TAIL),
        ModelSpec("2TCM", INPUT_FUNCTION, rm.two_tcm, None, (),
                  ("region", "model") + _TWO + _PLASMA_TAIL + ("identifiable",)),
        ModelSpec("2TCM1K", INPUT_FUNCTION, rm.two_tcm_1k, None, (),
                  ("region", "model") + _TWO + ("Kb", "Kb_cov") + _PLASMA_TAIL
                  + ("identifiable",)),
        ModelSpec("Logan-plasma", INPUT_FUNCTION, rm.logan_plasma, rm.logan_plasma_map, ("VT",),
                  ("region", "model") + _GRAPH, tstar_default=rm.DEFAULT_PLASMA_TSTAR_MIN,
                  logan_type=True),
        ModelSpec("MA1", INPUT_FUNCTION, rm.ma1, rm.ma1_map, ("VT",),
                  ("region", "model") + tuple(c for c in _GRAPH if c != "intercept"),
                  tstar_default=rm.DEFAULT_PLASMA_TSTAR_MIN, logan_type=True),
    )
}  # fmt: skip
MEASURE_UNITS = {"BPND": "1", "DVR": "1", "R1": "1", "k2": "1/min", "SUVR": "1",
                 "VT": "mL/cm3", "K1": "mL/cm3/min", "edge": "1"}  # fmt: skip


def get_model(name: str) -> ModelSpec:
    """The model called ``name`` (case-insensitive); ValueError listing the choices."""
    for key, spec in MODELS.items():
        if key.lower() == str(name).lower():
            return spec
    raise ValueError(f"unknown model '{name}'; choose from {tuple(MODELS)}")


def model_entity(name: str) -> str:
    """The BIDS ``model-`` label of a model (alphanumeric): ``Logan-plasma`` -> ``LoganPlasma``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


def model_names(needs: str | None = None) -> tuple[str, ...]:
    """Registered model names, optionally only those needing ``needs``."""
    return tuple(n for n, s in MODELS.items() if needs is None or s.needs == needs)


def reliable_srtm_k2prime(srtm: list[KineticResult]) -> float:
    """Median SRTM ``k2' = k2/R1`` (1/min) over successful, non-edge fits with BPND > 0."""
    vals = [r.k2prime for r in srtm if r.success and not r.edge and np.isfinite(r.k2prime)
            and r.k2prime > 0 and r.BPND > 0]  # fmt: skip
    if not vals:
        raise ValueError("no reliable regional SRTM fit to estimate k2' from")
    return float(np.median(vals))


def resolve_k2prime(user: float | None, srtm: list[KineticResult] | None) -> tuple[float, str]:
    """``(k2', source)``: the user's value, else :func:`reliable_srtm_k2prime` of ``srtm``."""
    if user is not None:
        if not (np.isfinite(user) and user > 0):
            raise ValueError(f"k2prime must be a positive rate in 1/min, got {user}")
        return float(user), "user"
    if srtm is None:
        raise ValueError("k2prime is needed: give it or fit SRTM first")
    return reliable_srtm_k2prime(srtm), "median-srtm"


def resolve_delay(data: FitData, options: FitOptions) -> tuple[float, dict]:
    """Blood-tissue delay (minutes) and how it was obtained (for the sidecars)."""
    if options.delay_min is not None:
        return float(options.delay_min), {"delay_min": float(options.delay_min),
                                          "delay_source": "user"}  # fmt: skip
    region = options.delay_region
    if region is None:
        region = next((n for n in WHOLE_BRAIN_NAMES if n in data.tacs), None)
        if region is None:
            raise ValueError(f"no whole-brain TAC ({', '.join(WHOLE_BRAIN_NAMES)}) to fit the "
                             "blood-tissue delay on: name a region or give the delay")  # fmt: skip
    if region not in data.tacs:
        raise ValueError(f"no TAC named '{region}' to fit the blood-tissue delay on")
    delay, fit = fit_delay(data.input_function, data.start_min, data.end_min, data.tacs[region],
                           weights=options.weights)  # fmt: skip
    return delay, {"delay_min": delay, "delay_source": "1tcm-fit", "delay_region": region,
                   "delay_range_min": list(DEFAULT_DELAY_RANGE_MIN), "delay_fit_vB": fit.vB}  # fmt: skip


def _check_inputs(spec: ModelSpec, data: FitData) -> None:
    if spec.needs == REFERENCE and data.ref_tac is None:
        raise ValueError(f"{spec.name} needs a reference-region TAC")
    if spec.needs == INPUT_FUNCTION and data.input_function is None:
        raise ValueError(f"{spec.name} needs an arterial input function")


def _model_options(spec: ModelSpec, options: FitOptions, shared: dict) -> FitOptions:
    tstar = options.tstar_min
    if tstar is None or (options.tstar_logan_only and not spec.logan_type):
        tstar = spec.tstar_default
    opts = replace(options, tstar_min=tstar, delay_min=shared.get("delay_min", 0.0))
    if spec.needs_k2prime:
        opts = replace(opts, k2prime=shared["k2prime"])
    return opts


def fit_regional(
    names, data: FitData, options: FitOptions = FitOptions()
) -> tuple[dict[str, list], dict]:
    """Fit every model in ``names`` to every TAC of ``data``; ``({name: results}, info)``.

    ``info`` records the shared choices (``k2prime`` and its source; the delay).
    """
    specs = [get_model(n) for n in names]
    for spec in specs:
        _check_inputs(spec, data)
    out: dict[str, list] = {}
    info: dict = {}
    if any(s.needs_k2prime for s in specs):
        srtm = None
        if options.k2prime is None:
            srtm = MODELS["SRTM"].regional(data, options)
            if "SRTM" in [s.name for s in specs]:
                out["SRTM"] = srtm
        k2p, source = resolve_k2prime(options.k2prime, srtm)
        info.update(k2prime=k2p, k2prime_source=source)
    if any(s.needs == INPUT_FUNCTION for s in specs):
        delay, delay_info = resolve_delay(data, options)
        info.update(delay_info)
    for spec in specs:
        if spec.name not in out:
            out[spec.name] = spec.regional(data, _model_options(spec, options, info))
    return {s.name: out[s.name] for s in specs}, info


def fit_voxelwise(
    name: str,
    data: FitData,
    images: np.ndarray,
    mask: np.ndarray | None,
    options: FitOptions,
    shared: dict,
) -> VoxelwiseResult:
    """Voxel-wise fit of ``images`` (..., n_frames) with the ``shared`` choices of
    :func:`fit_regional` (``k2prime``, ``delay_min``)."""
    spec = get_model(name)
    _check_inputs(spec, data)
    if spec.voxelwise is None:
        raise ValueError(f"{spec.name} has no voxel-wise fit")
    if spec.needs_k2prime and shared.get("k2prime") is None:
        raise ValueError(f"{spec.name} maps need k2prime (1/min)")
    return spec.voxelwise(data, images, mask, _model_options(spec, options, shared))


def results_table(results: list) -> pd.DataFrame:
    """One row per region with the columns of the model (``_kinpar.tsv`` for reference models)."""
    if results and isinstance(results[0], PlasmaResult):
        return plasma_table(results, get_model(results[0].model).columns)
    return kinpar_table(results)
