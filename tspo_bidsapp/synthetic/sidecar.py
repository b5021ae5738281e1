"""BIDS PET sidecar of a synthetic scan (BIDS 1.9 PET: required and recommended fields)."""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.synthetic.pet import PetGeometry, mean_frame_decay
from tspo_bidsapp.tracers import Tracer

# Molecular weights (g/mol) from PubChem.
MOLECULAR_WEIGHT = {"PBR28": 348.4, "PK11195": 352.9, "DPA714": 398.5, "GE180": 376.5}
MOLAR_ACTIVITY_GBQ_PER_UMOL = 100.0  # typical at injection for [11C] TSPO ligands
SYNTHETIC_BODY_WEIGHT_KG = 70.0  # every synthetic participant (for SUV of static PET)


# How the synthetic PET is written: decay-corrected to injection (TimeZero = injection), not
# decay-corrected (TimeZero = injection), or decay-corrected to the scan start (TimeZero = scan
# start, InjectionStart < 0).
DECAY_MODES = ("injection", "none", "scan-start")


def frame_scale(timing: FrameTiming, half_life_min: float, mode: str) -> np.ndarray:
    """Per-frame factor from "decay-corrected to injection" to ``mode`` (times from injection)."""
    if mode == "injection":
        return np.ones(timing.n_frames)
    if mode == "none":
        return mean_frame_decay(timing, half_life_min)
    if mode == "scan-start":
        return np.full(timing.n_frames, 2.0 ** (-timing.start_min[0] / half_life_min))
    raise ValueError(f"decay correction must be one of {DECAY_MODES}, got {mode!r}")


def timing_fields(timing: FrameTiming, half_life_min: float, mode: str) -> dict:
    """The sidecar's time and decay fields for frames ``timing`` (seconds after injection)."""
    scan_start = float(timing.start_s[0])
    origin = scan_start if mode == "scan-start" else 0.0  # TimeZero on the injection axis
    fields = {
        "ScanStart": scan_start - origin,
        "InjectionStart": 0.0 - origin,
        "InjectionEnd": 10 - origin,
        "FrameTimesStart": [float(v) - origin for v in timing.start_s],
        "FrameDuration": [float(v) for v in timing.duration_s],
        "AcquisitionMode": "list mode",
        "ImageDecayCorrected": mode != "none",
        "ImageDecayCorrectionTime": 0,
    }
    if mode != "none":
        fields["DecayCorrectionFactor"] = [
            round(float(v), 6)
            for v in frame_scale(timing, half_life_min, mode)
            / mean_frame_decay(timing, half_life_min)
        ]
    return fields


def pet_sidecar(
    tracer: Tracer,
    timing: FrameTiming,
    injected_mbq: float,
    geometry: PetGeometry,
    rng: np.random.Generator,
    decay_mode: str = "injection",
) -> dict:
    """Sidecar dictionary; ``timing`` in seconds after injection (see :func:`timing_fields`)."""
    molar = float(np.round(MOLAR_ACTIVITY_GBQ_PER_UMOL * rng.uniform(0.6, 1.4), 1))
    weight = MOLECULAR_WEIGHT.get(tracer.name, 350.0)
    mass_ug = injected_mbq / (molar * 1000.0) * weight  # MBq / (MBq/umol) * ug/umol
    hour = int(rng.integers(8, 15))
    minute = int(rng.integers(0, 60))
    return {
        "Manufacturer": "Siemens",
        "ManufacturersModelName": "Biograph mCT",
        "InstitutionName": "Synthetic TSPO-MS imaging centre",
        "BodyPart": "Brain",
        "Units": "kBq/mL",
        "TracerName": tracer.name,
        "TracerRadionuclide": tracer.radionuclide,
        "TracerMolecularWeight": weight,
        "TracerMolecularWeightUnits": "g/mol",
        "InjectedRadioactivity": round(injected_mbq, 1),
        "InjectedRadioactivityUnits": "MBq",
        "BodyWeight": SYNTHETIC_BODY_WEIGHT_KG,
        "InjectedMass": round(mass_ug, 4),
        "InjectedMassUnits": "ug",
        "SpecificRadioactivity": round(injected_mbq / mass_ug, 2),
        "SpecificRadioactivityUnits": "MBq/ug",
        "MolarActivity": molar,
        "MolarActivityUnits": "GBq/umol",
        "ModeOfAdministration": "bolus",
        "TimeZero": f"{hour:02d}:{minute:02d}:00",
        **timing_fields(timing, tracer.half_life_min, decay_mode),
        "ReconMethodName": "3D OSEM with resolution modelling",
        "ReconMethodParameterLabels": ["subsets", "iterations"],
        "ReconMethodParameterUnits": ["none", "none"],
        "ReconMethodParameterValues": [21, 4],
        "ReconFilterType": "Gaussian",
        "ReconFilterSize": 2,
        "ReconFilterSizeUnits": "mm",
        "AttenuationCorrection": "CT-based attenuation correction",
        "ScatterCorrectionMethod": "single-scatter simulation",
        "RandomsCorrectionMethod": "delayed coincidences",
        "ImageResolution": f"{geometry.fwhm_mm} mm FWHM (effective)",
    }
