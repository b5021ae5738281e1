"""BIDS PET sidecar of a synthetic scan (BIDS 1.9 PET: required and recommended fields)."""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.synthetic.pet import PetGeometry, mean_frame_decay
from tspo_bidsapp.tracers import Tracer

# Molecular weights (g/mol) from PubChem.
MOLECULAR_WEIGHT = {"PBR28": 348.4, "PK11195": 352.9, "DPA714": 398.5, "GE180": 376.5}
MOLAR_ACTIVITY_GBQ_PER_UMOL = 100.0  # typical at injection for [11C] TSPO ligands


def pet_sidecar(
    tracer: Tracer,
    timing: FrameTiming,
    injected_mbq: float,
    geometry: PetGeometry,
    rng: np.random.Generator,
) -> dict:
    """Sidecar dictionary; times in seconds relative to TimeZero (= injection)."""
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
        "InjectedMass": round(mass_ug, 4),
        "InjectedMassUnits": "ug",
        "SpecificRadioactivity": round(injected_mbq / mass_ug, 2),
        "SpecificRadioactivityUnits": "MBq/ug",
        "MolarActivity": molar,
        "MolarActivityUnits": "GBq/umol",
        "ModeOfAdministration": "bolus",
        "TimeZero": f"{hour:02d}:{minute:02d}:00",
        "ScanStart": 0,
        "InjectionStart": 0,
        "InjectionEnd": 10,
        "FrameTimesStart": [float(v) for v in timing.start_s],
        "FrameDuration": [float(v) for v in timing.duration_s],
        "AcquisitionMode": "list mode",
        "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 0,
        "DecayCorrectionFactor": [
            round(float(v), 6) for v in 1.0 / mean_frame_decay(timing, tracer.half_life_min)
        ],
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
