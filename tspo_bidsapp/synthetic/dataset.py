"""Write a whole synthetic TSPO-MS BIDS dataset, with its ground truth beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.synthetic.anatomy import build_anatomy
from tspo_bidsapp.synthetic.subject import SimulationOptions, SubjectSpec, simulate_subject
from tspo_bidsapp.tracers import lookup_tracer

# Group of participant i (cycled when more participants are asked for); sub-01 is a patient.
SIZES: dict[str, dict] = {
    "test": {"groups": ("RRMS", "HC"), "t1w_voxel_mm": 1.5},
    "demo": {"groups": ("RRMS", "SPMS", "HC", "HC"), "t1w_voxel_mm": 1.5},
    "full": {"groups": ("RRMS", "SPMS", "HC"), "n_subjects": 12, "t1w_voxel_mm": 1.0},
}
PARTICIPANT_COLUMNS = ("participant_id", "group", "age", "sex", "edss", "tspo_genotype")
AGE_RANGE = {"HC": (25, 60), "RRMS": (22, 50), "SPMS": (42, 68)}
EDSS_RANGE = {"RRMS": (1.0, 4.0), "SPMS": (4.0, 7.0)}
FEMALE_SHARE = {"HC": 0.5, "RRMS": 0.7, "SPMS": 0.65}
MAB_SHARE = 0.4  # Caucasian rs6971 frequencies without LAB (Owen et al. 2012)


def draw_participant(label: str, group: str, tracer: str, rng: np.random.Generator) -> SubjectSpec:
    """Demographics, EDSS and TSPO genotype of one participant."""
    lo, hi = AGE_RANGE[group]
    age = int(rng.integers(lo, hi + 1))
    sex = "F" if rng.uniform() < FEMALE_SHARE[group] else "M"
    edss = None
    if group in EDSS_RANGE:
        lo_e, hi_e = EDSS_RANGE[group]
        edss = float(rng.integers(int(2 * lo_e), int(2 * hi_e) + 1) / 2.0)
    genotype = "MAB" if rng.uniform() < MAB_SHARE else "HAB"
    return SubjectSpec(label, group, age, sex, edss, genotype, tracer)


def _write_dataset_files(bids_dir: Path, specs: list[SubjectSpec], tracer: str, seed: int) -> None:
    rows = [
        {
            "participant_id": f"sub-{s.label}",
            "group": s.group,
            "age": s.age,
            "sex": s.sex,
            "edss": "n/a" if s.edss is None else f"{s.edss:.1f}",
            "tspo_genotype": s.genotype,
        }
        for s in specs
    ]
    pd.DataFrame(rows, columns=list(PARTICIPANT_COLUMNS)).to_csv(
        bids_dir / "participants.tsv", sep="\t", index=False
    )
    participants_json = {
        "group": {
            "Description": "Diagnostic group",
            "Levels": {
                "HC": "healthy control",
                "RRMS": "relapsing-remitting multiple sclerosis",
                "SPMS": "secondary progressive multiple sclerosis",
            },
        },
        "age": {"Description": "Age at the PET scan", "Units": "year"},
        "sex": {"Description": "Sex", "Levels": {"F": "female", "M": "male"}},
        "edss": {
            "Description": "Expanded Disability Status Scale (Kurtzke 1983); n/a for controls"
        },
        "tspo_genotype": {
            "Description": "TSPO rs6971 binding-affinity class",
            "Levels": {
                "HAB": "high-affinity binder (C/C)",
                "MAB": "mixed-affinity binder (C/T)",
                "LAB": "low-affinity binder (T/T)",
            },
        },
    }
    (bids_dir / "participants.json").write_text(json.dumps(participants_json, indent=2) + "\n")
    description = {
        "Name": f"Synthetic TSPO-MS dataset ([11C]{tracer} PET, T1w, FLAIR)",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["tspo-bidsapp developers"],
        "GeneratedBy": [
            {
                "Name": "tspo-bidsapp-synth",
                "Description": f"tspo_bidsapp.synthetic, seed {seed}",
            }
        ],
    }
    (bids_dir / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    (bids_dir / "README").write_text(
        "Synthetic dynamic TSPO PET with T1w and FLAIR MRI of healthy controls and people with\n"
        "multiple sclerosis, simulated by tspo_bidsapp.synthetic from the MNI152 2009 template.\n"
        "Known kinetics (SRTM), lesions, PET->T1w transform and head motion are stored outside\n"
        "this tree (truth directory). Not real data: for testing and demonstration only.\n"
    )


def generate_dataset(
    bids_dir: str | Path,
    truth_dir: str | Path,
    *,
    size: str = "test",
    seed: int = 42,
    n_subjects: int | None = None,
    noise: bool = True,
    motion: bool = True,
    fov_cut_mm: float = 0.0,
    tracer: str = "PBR28",
    large_offset: bool = False,
    noise_level: float = 1.0,
    t1w_voxel_mm: float | None = None,
    pet_fwhm_mm: float = 4.5,
    pet_voxel_mm: float = 2.0,
    groups: list[str] | None = None,
    decay_correction: str = "injection",
    injection_before_scan_s: float = 0.0,
    static_window_min: tuple[float, float] | None = None,
    kinetics: str = "srtm",
) -> list[str]:
    """Write a synthetic BIDS dataset to ``bids_dir`` and its truth to ``truth_dir``.

    ``size``: "test" (2 participants, 1.5 mm T1w), "demo" (4: RRMS, SPMS, 2 HC; 1.5 mm) or
    "full" (12, 1 mm). ``large_offset`` makes the PET->T1w transform 10 deg + 10 mm (instead
    of 4 deg + 4 mm). ``decay_correction`` ("injection", "none", "scan-start") and
    ``injection_before_scan_s`` choose how the same PET is written (see synthetic/sidecar.py);
    ``static_window_min`` writes one static frame, the mean of the frames in that window.
    ``kinetics="plasma"``: 1TCM/2TCM tissue from a known arterial input, written as BIDS blood
    recordings next to each PET (default "srtm": no blood). Returns the participant labels ('01', '02', ...). The same seed gives
    the same data; participant i uses the random stream ``(seed, i)``.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    if lookup_tracer(tracer) is None:
        raise ValueError(f"unknown tracer {tracer!r}")
    bids_dir, truth_dir = Path(bids_dir), Path(truth_dir)
    bids_res, truth_res = bids_dir.resolve(), truth_dir.resolve()
    if truth_res == bids_res or bids_res in truth_res.parents:
        raise ValueError(f"truth_dir {truth_dir} must not be inside the BIDS tree {bids_dir}")
    config = SIZES[size]
    pattern = tuple(groups) if groups else config["groups"]
    n = n_subjects or config.get("n_subjects", len(pattern))
    opts = SimulationOptions(
        t1w_voxel_mm=t1w_voxel_mm or config["t1w_voxel_mm"],
        pet_fwhm_mm=pet_fwhm_mm,
        pet_voxel_mm=pet_voxel_mm,
        noise=noise,
        noise_level=noise_level,
        motion=motion,
        fov_cut_mm=fov_cut_mm,
        pet_to_t1w_mm=10.0 if large_offset else 4.0,
        pet_to_t1w_deg=10.0 if large_offset else 4.0,
        decay_correction=decay_correction,
        injection_before_scan_s=injection_before_scan_s,
        static_window_min=static_window_min,
        kinetics=kinetics,
    )
    canonical = lookup_tracer(tracer).name
    specs = []
    for i in range(n):
        rng = np.random.default_rng([seed, i, 0])
        specs.append(draw_participant(f"{i + 1:02d}", pattern[i % len(pattern)], canonical, rng))
    bids_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    _write_dataset_files(bids_dir, specs, canonical, seed)
    anatomy = build_anatomy(opts.t1w_voxel_mm)
    for i, spec in enumerate(specs):
        rng = np.random.default_rng([seed, i, 1])
        simulate_subject(spec, anatomy, opts, rng, bids_dir, truth_dir)
    return [s.label for s in specs]
