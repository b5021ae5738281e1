"""From raw BIDS blood recordings to the metabolite-corrected arterial input function.

1. Whole blood: the continuous (autosampler) curve, dispersion-corrected when the sidecar says
   it is not yet corrected and gives ``DispersionConstant``, is used up to its end (or up to
   ``continuous_until_min``); the discrete (manual) whole-blood samples after that. The blood is
   taken to be 0 at injection when the first sample comes later.
2. Plasma = whole blood x r(t), r the plasma-over-blood ratio model fitted to the discrete
   samples that have both (:data:`~tspo_bidsapp.blood.models.RATIO_MODELS`).
3. AIF = plasma x f(t), f the parent-fraction model fitted to the discrete samples
   (:data:`~tspo_bidsapp.blood.models.PARENT_FRACTION_MODELS`; or ``"interpolate"``: linear
   interpolation of the samples, f(0) = 1).
4. Everything on a fine uniform grid (``grid_step_s``); the curve is held at its last value after
   the last sample. Every choice goes into ``InputFunction.provenance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tspo_bidsapp.blood.dispersion import correct_dispersion
from tspo_bidsapp.blood.inputfunction import InputFunction
from tspo_bidsapp.blood.models import PARENT_FRACTION_MODELS, RATIO_MODELS, select_model
from tspo_bidsapp.blood.recordings import (
    PARENT_FRACTION,
    PLASMA,
    WHOLE_BLOOD,
    BloodRecording,
    read_blood_recording,
)
from tspo_bidsapp.blood.units import BloodDataError

GRID_STEP_S = 1.0  # step of the fine time grid of the input function (seconds)
INTERPOLATE = "interpolate"  # parent-fraction "model": linear interpolation of the samples
# The blood may end this long before the end of the scan (the last value is held).
MAX_TAIL_GAP_MIN = 5.0


def _continuous_whole_blood(recordings, smooth_s: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Merged continuous whole blood (dispersion-corrected where needed) and what was done."""
    times, values, notes = [], [], []
    for rec in recordings:
        samples = rec.column(WHOLE_BLOOD)
        if samples is None or samples[0].size < 2:
            continue
        t, y = samples
        note = {
            "Source": str(rec.path),
            "DispersionConstantSeconds": rec.dispersion_constant_s,
            "WithdrawalRateMlPerMin": rec.withdrawal_rate_ml_min,
        }
        if rec.dispersion_corrected is False and rec.dispersion_constant_s is not None:
            t, y = correct_dispersion(t, y, rec.dispersion_constant_s, smooth_s=smooth_s)
            note["DispersionCorrection"] = f"applied (Iida 1986), smoothing {smooth_s:g} s"
        elif rec.dispersion_corrected:
            note["DispersionCorrection"] = "already applied (DispersionCorrected true)"
        else:
            note["DispersionCorrection"] = "not applied: no DispersionConstant or flag unknown"
        times.append(t)
        values.append(y)
        notes.append(note)
    if not times:
        return np.empty(0), np.empty(0), {}
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")
    return t[order], np.concatenate(values)[order], {"Continuous": notes}


def _discrete(recordings, name: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [rec.column(name) for rec in recordings if rec.column(name) is not None]
    if not pairs:
        return np.empty(0), np.empty(0)
    t = np.concatenate([p[0] for p in pairs])
    order = np.argsort(t, kind="stable")
    return t[order], np.concatenate([p[1] for p in pairs])[order]


def _ratio_samples(recordings) -> tuple[np.ndarray, np.ndarray]:
    t, ratio = [], []
    for rec in recordings:
        wb, plasma = rec.columns.get(WHOLE_BLOOD), rec.columns.get(PLASMA)
        if wb is None or plasma is None:
            continue
        keep = np.isfinite(wb) & np.isfinite(plasma) & (wb > 0)
        t.append(rec.time_min[keep])
        ratio.append(plasma[keep] / wb[keep])
    if not t:
        return np.empty(0), np.empty(0)
    return np.concatenate(t), np.concatenate(ratio)


def _first_path(recordings) -> Path:
    return recordings[0].path


def _select(models, t, y, choice, *, path: Path, field: str):
    """:func:`select_model`; too few samples for any model is bad blood data (exit 16)."""
    try:
        return select_model(models, t, y, choice)
    except ValueError as exc:
        if choice is not None:
            raise
        raise BloodDataError(str(exc), path=path, field=field) from exc


def process_blood(
    recordings: Sequence[BloodRecording],
    *,
    parent_fraction_model: str | None = None,
    ratio_model: str | None = None,
    continuous_until_min: float | None = None,
    dispersion_smooth_s: float = 0.0,
    grid_step_s: float = GRID_STEP_S,
) -> InputFunction:
    """Metabolite-corrected arterial input from raw recordings (see the module docstring).

    parent_fraction_model / ratio_model: a model name, or None to choose by AIC;
    ``parent_fraction_model="interpolate"`` interpolates the samples instead of fitting.
    """
    if not recordings:
        raise BloodDataError("no blood recordings were given")
    continuous = [r for r in recordings if r.continuous]
    discrete = [r for r in recordings if not r.continuous]
    where = _first_path(discrete or recordings)

    t_cont, wb_cont, blood_notes = _continuous_whole_blood(continuous, dispersion_smooth_s)
    t_disc, wb_disc = _discrete(discrete, WHOLE_BLOOD)
    if t_cont.size == 0 and t_disc.size == 0:
        raise BloodDataError(
            "no whole-blood samples in any recording", path=where, field=WHOLE_BLOOD
        )
    switch = t_cont[-1] if t_cont.size else -np.inf
    if continuous_until_min is not None and t_cont.size:
        switch = min(switch, float(continuous_until_min))
    keep = t_cont <= switch
    t_wb = np.concatenate([t_cont[keep], t_disc[t_disc > switch]])
    wb = np.concatenate([wb_cont[keep], wb_disc[t_disc > switch]])
    if t_wb[0] > 0:
        t_wb, wb = np.concatenate([[0.0], t_wb]), np.concatenate([[0.0], wb])
    blood_notes.update(
        SwitchToDiscreteMinutes=None if not np.isfinite(switch) else float(switch),
        DiscreteSamplesUsed=int(np.sum(t_disc > switch)),
        ZeroAtInjection=bool(t_wb[0] == 0.0 and wb[0] == 0.0),
    )

    t_ratio, ratio = _ratio_samples(discrete)
    if t_ratio.size == 0:
        raise BloodDataError(
            "no samples with both whole blood and plasma: the plasma-over-blood ratio is unknown",
            path=where,
            field=PLASMA,
        )
    ratio_fit, ratio_aics = _select(
        RATIO_MODELS, t_ratio, ratio, ratio_model, path=where, field=PLASMA
    )

    t_pf, pf = _discrete(discrete, PARENT_FRACTION)
    if t_pf.size == 0:
        raise BloodDataError(
            "no parent-fraction samples: the plasma cannot be corrected for metabolites",
            path=where,
            field=PARENT_FRACTION,
        )
    if parent_fraction_model == INTERPOLATE:
        pf_knots_t = np.concatenate([[0.0], t_pf]) if t_pf[0] > 0 else t_pf
        pf_knots = np.concatenate([[1.0], pf]) if t_pf[0] > 0 else pf

        def parent_fraction(t):
            return np.interp(t, pf_knots_t, pf_knots)

        pf_notes: dict[str, Any] = {"Model": INTERPOLATE, "ChosenBy": "user"}
    else:
        pf_fit, pf_aics = _select(
            PARENT_FRACTION_MODELS,
            t_pf,
            pf,
            parent_fraction_model,
            path=where,
            field=PARENT_FRACTION,
        )
        parent_fraction = pf_fit
        pf_notes = pf_fit.summary() | {
            "ChosenBy": "user" if parent_fraction_model else "AIC",
            "CandidateAIC": pf_aics,
        }

    step = grid_step_s / 60.0
    end = max(t_wb[-1], t_pf[-1])
    grid = t_wb[0] + step * np.arange(int(np.floor((end - t_wb[0]) / step)) + 1)
    grid = np.union1d(grid, [end])
    whole_blood = np.interp(grid, t_wb, wb)
    plasma = whole_blood * np.maximum(ratio_fit(grid), 0.0)
    aif = plasma * np.clip(parent_fraction(grid), 0.0, 1.0)
    provenance = {
        "Type": "processed from raw blood recordings",
        "Sources": [str(r.path) for r in recordings],
        "Units": next((r.units for r in recordings if r.units), None),
        "WholeBlood": blood_notes,
        "PlasmaToBloodRatio": ratio_fit.summary()
        | {"ChosenBy": "user" if ratio_model else "AIC", "CandidateAIC": ratio_aics},
        "ParentFraction": pf_notes,
        "GridStepSeconds": float(grid_step_s),
        "AfterLastSample": "held at the last value",
    }
    return InputFunction(grid, aif, whole_blood, provenance)


def input_function_from_recordings(
    paths: Sequence[str | Path],
    *,
    pet_units: str | None = None,
    injection_offset_s: float = 0.0,
    **options: Any,
) -> InputFunction:
    """Read BIDS blood recordings (TSV paths) and process them (``options``: of process_blood)."""
    recordings = [
        read_blood_recording(p, pet_units=pet_units, injection_offset_s=injection_offset_s)
        for p in paths
    ]
    result = process_blood(recordings, **options)
    result.provenance["InjectionOffsetSeconds"] = float(injection_offset_s)
    return result


def check_coverage(
    input_function: InputFunction,
    frame_end_min: np.ndarray,
    *,
    frame_start_min: np.ndarray | None = None,
    max_tail_gap_min: float = MAX_TAIL_GAP_MIN,
    path: str | Path | None = None,
) -> None:
    """Raise :class:`BloodDataError` when the blood does not cover the scan.

    The blood must start no later than the first frame starts (its end when starts are not
    given) and end no earlier than ``max_tail_gap_min`` before the last frame ends.
    """
    source = (
        path
        or input_function.provenance.get("Source")
        or next(iter(input_function.provenance.get("Sources", [])), None)
    )
    t = input_function.time_min
    ends = np.asarray(frame_end_min, float)
    first = ends[0] if frame_start_min is None else np.asarray(frame_start_min, float)[0]
    if t[0] > first + 1e-9:
        raise BloodDataError(
            f"blood starts at {t[0]:.2f} min, after the first frame ({first:.2f} min)",
            path=source,
            field="time",
        )
    if t[-1] < ends[-1] - max_tail_gap_min:
        raise BloodDataError(
            f"blood ends at {t[-1]:.2f} min but the scan runs to {ends[-1]:.2f} min "
            f"(at most {max_tail_gap_min:g} min may be missing at the end)",
            path=source,
            field="time",
        )
