"""Read BIDS-PET blood recordings and already processed input functions.

BIDS blood (``*_recording-<label>_blood.tsv`` + ``.json``): ``time`` in seconds relative to
``TimeZero``; ``whole_blood_radioactivity``, ``plasma_radioactivity`` (activity units from the
sidecar) and ``metabolite_parent_fraction`` (0-1); ``n/a`` marks a missing value. Times are
brought onto the pipeline's axis, minutes after injection: ``(time - injection_offset_s) / 60``
where ``injection_offset_s`` is the injection time relative to ``TimeZero`` (BIDS
``InjectionStart``). Activities are converted to the PET's ``Units``. The blood is assumed to be
decay-corrected like the PET (to injection); no decay correction is applied here.

Every problem raises :class:`~tspo_bidsapp.blood.units.BloodDataError` (exit 16) naming the file
and the column.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tspo_bidsapp.blood.inputfunction import InputFunction
from tspo_bidsapp.blood.units import BloodDataError, conversion_factor, seconds_per_unit

WHOLE_BLOOD = "whole_blood_radioactivity"
PLASMA = "plasma_radioactivity"
PARENT_FRACTION = "metabolite_parent_fraction"
AIF = "AIF"
ACTIVITY_COLUMNS = (WHOLE_BLOOD, PLASMA)
# Recording labels read as continuous (autosampler) samples; any other label is discrete.
CONTINUOUS_LABELS = ("autosampler", "continuous")
_RECORDING = re.compile(r"_recording-([a-zA-Z0-9]+)_")


@dataclass(frozen=True)
class BloodRecording:
    """One blood recording on the pipeline's time axis, activities in the target units.

    time_min:  sample times, minutes after injection, strictly increasing.
    columns:   ``whole_blood_radioactivity`` / ``plasma_radioactivity`` (target units) and
               ``metabolite_parent_fraction`` (0-1) where recorded; NaN where ``n/a``.
    continuous: an autosampler (continuous) recording rather than manual samples.
    """

    path: Path
    label: str
    time_min: np.ndarray
    columns: dict[str, np.ndarray]
    units: str | None  # activity units after conversion (the PET's when given)
    continuous: bool
    dispersion_corrected: bool | None = None
    dispersion_constant_s: float | None = None
    withdrawal_rate_ml_min: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(times, values) of the non-missing samples of ``name``; None if not recorded."""
        values = self.columns.get(name)
        if values is None:
            return None
        keep = np.isfinite(values)
        return self.time_min[keep], values[keep]


def sidecar_of(tsv: Path) -> Path:
    """The JSON sidecar beside a ``.tsv`` file."""
    return tsv.with_name(tsv.name[: -len(".tsv")] + ".json")


def recording_label(path: Path) -> str | None:
    """The ``recording-<label>`` entity of a BIDS blood file name, or None."""
    match = _RECORDING.search(Path(path).name)
    return None if match is None else match.group(1)


def _read_sidecar(path: Path, *, required: bool) -> dict[str, Any] | None:
    json_path = sidecar_of(path)
    if not json_path.is_file():
        if required:
            raise BloodDataError(
                "sidecar is missing (units and corrections unknown)", path=json_path
            )
        return None
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        raise BloodDataError(f"cannot be read as JSON ({exc})", path=json_path) from exc
    if not isinstance(meta, dict):
        raise BloodDataError("must hold a JSON object", path=json_path)
    return meta


def _read_table(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise BloodDataError(f"cannot be read as a TSV table ({exc})", path=path) from exc
    if "time" not in table.columns:
        raise BloodDataError("has no 'time' column", path=path, field="time")
    return table


def _numeric(table: pd.DataFrame, name: str, path: Path, *, allow_missing: bool) -> np.ndarray:
    values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) & table[name].notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BloodDataError(
            f"data row {row + 1} is not a number: {table[name].iloc[row]!r}", path=path, field=name
        )
    if not allow_missing and not np.all(np.isfinite(values)):
        raise BloodDataError("has missing (n/a) or infinite values", path=path, field=name)
    return values


def _units_of(meta: dict[str, Any] | None, name: str) -> str | None:
    entry = (meta or {}).get(name)
    return entry.get("Units") if isinstance(entry, dict) else None


def _time_min(table: pd.DataFrame, meta, path: Path, injection_offset_s: float) -> np.ndarray:
    seconds = _numeric(table, "time", path, allow_missing=False)
    seconds = seconds * seconds_per_unit(_units_of(meta, "time"), path=sidecar_of(path))
    steps = np.diff(seconds)
    if seconds.size < 2 or np.any(steps <= 0):
        where = "" if seconds.size < 2 else f" (data row {int(np.argmax(steps <= 0)) + 2})"
        raise BloodDataError(
            f"must be strictly increasing with at least two samples{where}", path=path, field="time"
        )
    return (seconds - float(injection_offset_s)) / 60.0


def _activity(table, meta, name: str, path: Path, target_units, *, raw: bool):
    """Values of an activity column in ``target_units`` and the units they are now in.

    Raw recordings must state their units; a processed input without them is taken to be in
    the PET's units.
    """
    values = _numeric(table, name, path, allow_missing=raw)
    units = _units_of(meta, name)
    if units is None:
        if raw:
            raise BloodDataError(
                "the sidecar gives no Units for this column", path=sidecar_of(path), field=name
            )
        return values, target_units
    factor = conversion_factor(units, target_units, path=sidecar_of(path), field=name)
    return values * factor, (target_units or units)


def _optional_number(meta: dict[str, Any], name: str, path: Path) -> float | None:
    value = meta.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise BloodDataError(f"must be a number, got {value!r}", path=sidecar_of(path), field=name)
    return float(value)


def read_blood_recording(
    tsv: str | Path, *, pet_units: str | None = None, injection_offset_s: float = 0.0
) -> BloodRecording:
    """Read one BIDS blood recording (TSV + JSON), converted to ``pet_units`` (when given)."""
    path = Path(tsv)
    meta = _read_sidecar(path, required=True)
    table = _read_table(path)
    time_min = _time_min(table, meta, path, injection_offset_s)
    columns: dict[str, np.ndarray] = {}
    units = None
    for name in ACTIVITY_COLUMNS:
        if name in table.columns:
            columns[name], units = _activity(table, meta, name, path, pet_units, raw=True)
    if PARENT_FRACTION in table.columns:
        fraction = _numeric(table, PARENT_FRACTION, path, allow_missing=True)
        outside = np.isfinite(fraction) & ((fraction < 0.0) | (fraction > 1.0))
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            raise BloodDataError(
                f"must lie in [0, 1]; data row {row + 1} is {fraction[row]:g}",
                path=path,
                field=PARENT_FRACTION,
            )
        columns[PARENT_FRACTION] = fraction
    if not columns:
        raise BloodDataError(
            f"has none of the columns {', '.join((*ACTIVITY_COLUMNS, PARENT_FRACTION))}", path=path
        )
    label = recording_label(path) or ("autosampler" if "WithdrawalRate" in meta else "manual")
    corrected = meta.get("DispersionCorrected")
    if corrected is not None and not isinstance(corrected, bool):
        raise BloodDataError(
            f"must be true or false, got {corrected!r}",
            path=sidecar_of(path),
            field="DispersionCorrected",
        )
    return BloodRecording(
        path=path,
        label=label,
        time_min=time_min,
        columns=columns,
        units=units,
        continuous=label.lower() in CONTINUOUS_LABELS,
        dispersion_corrected=corrected,
        dispersion_constant_s=_optional_number(meta, "DispersionConstant", path),
        withdrawal_rate_ml_min=_optional_number(meta, "WithdrawalRate", path),
        metadata=meta,
    )


def read_input_function(
    tsv: str | Path, *, pet_units: str | None = None, injection_offset_s: float = 0.0
) -> InputFunction:
    """Read a processed input function: ``time`` (s), ``AIF`` and optional whole blood.

    The JSON sidecar (optional) gives the units; without it the values are taken to be in the
    PET's units, which the provenance records.
    """
    path = Path(tsv)
    meta = _read_sidecar(path, required=False)
    table = _read_table(path)
    if AIF not in table.columns:
        raise BloodDataError("has no 'AIF' column (parent plasma input)", path=path, field=AIF)
    time_min = _time_min(table, meta, path, injection_offset_s)
    aif, units = _activity(table, meta, AIF, path, pet_units, raw=False)
    whole_blood = None
    if WHOLE_BLOOD in table.columns:
        whole_blood, _ = _activity(table, meta, WHOLE_BLOOD, path, pet_units, raw=False)
    provenance = {
        "Source": str(path),
        "Type": "processed input function",
        "Units": units,
        "UnitsFromSidecar": meta is not None and _units_of(meta, AIF) is not None,
        "InjectionOffsetSeconds": float(injection_offset_s),
        "WholeBlood": "recorded" if whole_blood is not None else "absent (AIF used for vB)",
    }
    return InputFunction(time_min, aif, whole_blood, provenance)
