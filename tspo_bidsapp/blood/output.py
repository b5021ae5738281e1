"""Write an input function as ``*_inputfunction.tsv`` + ``.json`` (readable by the reader here).

Columns: ``time`` (seconds relative to ``TimeZero``, i.e. minutes after injection x 60 plus the
injection offset), ``AIF`` and, when known, ``whole_blood_radioactivity``; the sidecar gives the
units of each column and the input function's provenance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.blood.inputfunction import InputFunction
from tspo_bidsapp.blood.recordings import AIF, WHOLE_BLOOD, sidecar_of


def write_input_function(
    input_function: InputFunction,
    tsv: str | Path,
    *,
    units: str,
    injection_offset_s: float = 0.0,
) -> Path:
    """Write ``tsv`` and its JSON sidecar; returns the TSV path. ``units``: activity units."""
    tsv = Path(tsv)
    columns = {
        "time": input_function.time_min * 60.0 + float(injection_offset_s),
        AIF: input_function.aif,
    }
    if input_function.whole_blood is not None:
        columns[WHOLE_BLOOD] = input_function.whole_blood
    pd.DataFrame(columns).to_csv(tsv, sep="\t", index=False, float_format="%.8g")
    sidecar = {
        "Description": "Arterial input function: metabolite-corrected parent plasma (AIF) and "
        "whole blood",
        "time": {"Units": "s", "Description": "Time relative to TimeZero"},
        **{name: {"Units": units} for name in columns if name != "time"},
        "Provenance": _jsonable(input_function.provenance),
    }
    sidecar_of(tsv).write_text(json.dumps(sidecar, indent=2))
    return tsv


def _jsonable(value):
    """Provenance with numpy scalars and arrays turned into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
