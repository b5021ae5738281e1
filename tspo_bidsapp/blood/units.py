"""Radioactivity-concentration units of blood data and their conversion to the PET's units.

BIDS PET gives units as strings (``"kBq/mL"``, ``"Bq/ml"``, ``"nCi/cc"``); blood values are
converted into the PET's ``Units`` so that the input function and the tissue curves share one
scale. Unknown units raise :class:`BloodDataError` (exit 16) naming the file and the column.
"""

from __future__ import annotations

import re
from pathlib import Path

from tspo_bidsapp.exitcodes import InvalidBIDSError

# Becquerel equivalent of each activity prefix-unit (1 Ci = 3.7e10 Bq).
_ACTIVITY_BQ = {
    "bq": 1.0,
    "kbq": 1e3,
    "mbq": 1e6,
    "gbq": 1e9,
    "nci": 37.0,
    "uci": 37e3,
    "µci": 37e3,
    "μci": 37e3,
    "mci": 37e6,
}
# Millilitre equivalent of each volume unit (cc = cm3 = mL).
_VOLUME_ML = {"ml": 1.0, "cc": 1.0, "cm3": 1.0, "cm^3": 1.0, "l": 1e3, "dl": 1e2}
_UNIT = re.compile(r"^\s*([^\s/]+)\s*/\s*([^\s/]+)\s*$")
# Time units of the ``time`` column and their length in seconds (BIDS: seconds).
TIME_UNITS_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "min": 60.0, "minutes": 60.0}


class BloodDataError(InvalidBIDSError):
    """Unusable blood data (missing column, bad times, unknown units...): exit code 16."""


def bq_per_ml(units: str) -> float | None:
    """Bq/mL in one unit of ``units`` (e.g. 1000 for ``"kBq/mL"``); None when not recognised."""
    match = _UNIT.match(str(units))
    if match is None:
        return None
    activity = _ACTIVITY_BQ.get(match.group(1).lower())
    volume = _VOLUME_ML.get(match.group(2).lower())
    if activity is None or volume is None:
        return None
    return activity / volume


def conversion_factor(units: str, target_units: str | None, *, path: Path, field: str) -> float:
    """Factor that turns values in ``units`` into ``target_units`` (1 when no target is given).

    Raises :class:`BloodDataError` naming ``path`` and ``field`` when either unit is unknown.
    """
    source = bq_per_ml(units)
    target = source if target_units is None else bq_per_ml(target_units)
    if source is None or target is None:
        problem = (
            f"unknown radioactivity units {units!r} (expected e.g. kBq/mL, Bq/mL, nCi/mL)"
            if source is None
            else f"blood in {units!r} cannot be converted to the PET's Units {target_units!r}"
        )
        raise BloodDataError(problem, path=path, field=field)
    return source / target


def seconds_per_unit(units: str | None, *, path: Path, field: str = "time") -> float:
    """Seconds in one unit of a time column (BIDS default: seconds when ``units`` is None)."""
    if units is None:
        return 1.0
    factor = TIME_UNITS_S.get(str(units).strip().lower())
    if factor is None:
        raise BloodDataError(f"unknown time units {units!r} (expected s)", path=path, field=field)
    return factor
