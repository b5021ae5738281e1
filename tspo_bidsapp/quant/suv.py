"""Standardised uptake value (SUV) of a PET image decay-corrected to injection.

``SUV = C / (A_inj / W)`` with ``C`` the tissue concentration (kBq/mL), ``A_inj`` the injected
radioactivity at injection (kBq) and ``W`` the body weight (g); tissue density is taken as
1 g/mL, so SUV is unitless (g/mL) (Thie 2004, J Nucl Med 45:1431-1434). The image must be
decay-corrected to the injection time, as the pipeline's first step makes it.
"""

from __future__ import annotations

import math

from tspo_bidsapp.exitcodes import InvalidBIDSError

# Radioactivity units -> kBq, and concentration units -> kBq/mL.
ACTIVITY_TO_KBQ = {"bq": 1e-3, "kbq": 1.0, "mbq": 1e3, "gbq": 1e6, "mci": 37e3, "uci": 37.0}
CONCENTRATION_TO_KBQ_PER_ML = {
    "bq/ml": 1e-3, "kbq/ml": 1.0, "mbq/ml": 1e3, "nci/ml": 0.037, "uci/ml": 37.0,
    "bq/cc": 1e-3, "kbq/cc": 1.0,
}  # fmt: skip
# Plausible adult/adolescent body weights (kg): outside, the value is taken as a unit error.
WEIGHT_RANGE_KG = (20.0, 300.0)


def _key(units: str) -> str:
    return units.replace(" ", "").replace("µ", "u").replace("μ", "u").lower()


def to_kbq(value: float, units: str, *, path=None, field="InjectedRadioactivityUnits") -> float:
    """Injected radioactivity in kBq; errors name the file and the field."""
    factor = ACTIVITY_TO_KBQ.get(_key(units or ""))
    if factor is None:
        raise InvalidBIDSError(
            f"unknown radioactivity units {units!r}; known: MBq, kBq, Bq, GBq, mCi, uCi",
            path=path,
            field=field,
        )
    return float(value) * factor


def concentration_factor(units: str, *, path=None) -> float:
    """Multiplier from the image's ``Units`` to kBq/mL."""
    factor = CONCENTRATION_TO_KBQ_PER_ML.get(_key(units or ""))
    if factor is None:
        raise InvalidBIDSError(
            f"SUV needs activity concentration units (kBq/mL, Bq/mL, ...), got {units!r}",
            path=path,
            field="Units",
        )
    return factor


def body_weight_kg(
    participants_weight: str | float | None, sidecar_weight: float | None
) -> tuple[float | None, str]:
    """Body weight (kg) and where it came from: participants.tsv ``weight``, then the sidecar's
    ``BodyWeight``; ``(None, reason)`` when neither holds a plausible number."""
    for value, source in ((participants_weight, "participants.tsv weight"),
                          (sidecar_weight, "sidecar BodyWeight")):  # fmt: skip
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number) and WEIGHT_RANGE_KG[0] <= number <= WEIGHT_RANGE_KG[1]:
            return number, source
    return None, "no body weight (participants.tsv 'weight' or sidecar 'BodyWeight', kg)"


def suv_scale(weight_kg: float, injected_kbq: float, units_factor: float = 1.0) -> float:
    """Multiplier from image values to SUV: ``units_factor * 1000 * W[kg] / A_inj[kBq]``."""
    if not injected_kbq > 0:
        raise ValueError("injected radioactivity must be positive")
    return units_factor * 1000.0 * float(weight_kg) / float(injected_kbq)


def suv_inputs(meta: dict, participants_weight, *, path=None) -> tuple[dict | None, str]:
    """Weight, dose and units for SUV from a sidecar ``meta``; ``(None, reason)`` if unknown.

    Unknown radioactivity units or non-concentration image units raise (exit 16).
    """
    weight, source = body_weight_kg(participants_weight, meta.get("BodyWeight"))
    if weight is None:
        return None, source
    dose = meta.get("InjectedRadioactivity")
    if not isinstance(dose, int | float) or isinstance(dose, bool) or not dose > 0:
        return None, "no positive InjectedRadioactivity in the sidecar"
    units = str(meta.get("Units", ""))
    concentration_factor(units, path=path)
    return {
        "weight_kg": weight,
        "weight_source": source,
        "injected_kbq": to_kbq(dose, str(meta.get("InjectedRadioactivityUnits", "")), path=path),
        "units": units,
    }, source
