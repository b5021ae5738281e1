"""Simulate and write one synthetic participant: T1w, FLAIR, dynamic PET and its truth."""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.synthetic import anatomy as an
from tspo_bidsapp.synthetic import pet
from tspo_bidsapp.synthetic.blood import BloodTruth, write_blood_recordings
from tspo_bidsapp.synthetic.lesions import CORE_LABEL, draw_lesion_specs, plant_lesions
from tspo_bidsapp.synthetic.motion import (
    motion_trajectory,
    random_rigid_parameters,
    rigid_matrix,
)
from tspo_bidsapp.synthetic.mri import synth_flair, synth_t1w
from tspo_bidsapp.synthetic.parameters import plasma_parameters, tissue_parameters
from tspo_bidsapp.synthetic.sidecar import frame_scale, pet_sidecar
from tspo_bidsapp.synthetic.truth import TRANSFORM_CONVENTION, write_truth
from tspo_bidsapp.tracers import lookup_tracer

N_CLASSES = max(an.TISSUE_NAMES) + 1
REFERENCE_INJECTED_MBQ = 400.0  # reference_tac(scale=1) corresponds to this injection
BLOOD_NOISE_CV = 0.03  # relative noise of every blood sample when the PET is noisy


@dataclass(frozen=True)
class SubjectSpec:
    label: str  # without 'sub-'
    group: str  # HC, RRMS, SPMS
    age: int
    sex: str
    edss: float | None
    genotype: str  # HAB, MAB, LAB
    tracer: str = "PBR28"


@dataclass(frozen=True)
class SimulationOptions:
    t1w_voxel_mm: float = 1.0
    pet_voxel_mm: float = 2.0
    pet_fwhm_mm: float = 4.5
    noise: bool = True
    noise_level: float = 1.0
    motion: bool = True
    max_motion_mm: float = 3.0
    max_motion_deg: float = 2.5
    fov_cut_mm: float = 0.0
    pet_to_t1w_mm: float = 4.0  # length of the PET->T1w translation
    pet_to_t1w_deg: float = 4.0  # norm of the PET->T1w rotation angles
    frame_durations_s: tuple[float, ...] = TSPO_60MIN_DURATIONS_S
    decay_correction: str = "injection"  # one of sidecar.DECAY_MODES
    injection_before_scan_s: float = 0.0  # first frame starts this long after injection
    static_window_min: tuple[float, float] | None = None  # write one frame: this window's mean
    kinetics: str = "srtm"  # "plasma": 1TCM/2TCM from an arterial input + BIDS blood recordings


def _save(array: np.ndarray, affine: np.ndarray, path: Path, dtype, scaled: bool = False) -> None:
    """Write a gzipped NIfTI (mm, s units; reproducible bytes: gzip mtime 0).

    ``scaled``: store as ``dtype`` with a NIfTI slope/intercept chosen by nibabel (int16
    PET, as scanners export it); otherwise cast (rounding for integer types).
    """
    if scaled:
        img = nib.Nifti1Image(np.asarray(array, np.float32), affine)
        img.set_data_dtype(dtype)
    else:
        if np.issubdtype(np.dtype(dtype), np.integer):
            array = np.round(array)
        img = nib.Nifti1Image(np.asarray(array).astype(dtype), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(img.to_bytes(), compresslevel=4, mtime=0))


def static_frame(
    frames: np.ndarray, timing: FrameTiming, window_min: tuple[float, float] | None
) -> tuple[np.ndarray, FrameTiming]:
    """The duration-weighted mean of the frames inside ``window_min`` as one frame (4-D, 1)."""
    if window_min is None:
        return frames, timing
    inside = (timing.start_min >= window_min[0] - 1e-9) & (timing.end_min <= window_min[1] + 1e-9)
    if not inside.any():
        raise ValueError(f"no frame lies inside the static window {window_min} min")
    weights = timing.duration_s[inside] / timing.duration_s[inside].sum()
    static = np.tensordot(frames[..., inside], weights, axes=([-1], [0]))[..., np.newaxis]
    start, end = timing.start_s[inside][0], timing.end_s[inside][-1]
    return static.astype(np.float32), FrameTiming([start], [end - start])


def simulate_subject(
    spec: SubjectSpec,
    anatomy: an.Anatomy,
    opts: SimulationOptions,
    rng: np.random.Generator,
    bids_dir: Path,
    truth_dir: Path,
) -> None:
    """Simulate one participant and write its BIDS files and truth (see docs/synthetic.md)."""
    sub = f"sub-{spec.label}"
    tracer = lookup_tracer(spec.tracer)
    if tracer is None:
        raise ValueError(f"unknown tracer {spec.tracer!r}")

    # Anatomy and lesions (T1w grid).
    labels, lesion_ids, lesions = plant_lesions(anatomy, draw_lesion_specs(spec.group, rng), rng)
    params = tissue_parameters(spec.group, spec.genotype, tracer.name, rng)
    for lesion in lesions:
        core = CORE_LABEL[lesion.phenotype]
        lesion.core_bpnd, lesion.rim_bpnd = params[core][2], params[core + 1][2]

    # Kinetics.
    timing = FrameTiming.from_durations_s(opts.frame_durations_s, opts.injection_before_scan_s)
    injected = float(np.round(rng.uniform(300.0, 450.0), 1))
    ref_scale = injected / REFERENCE_INJECTED_MBQ
    if opts.kinetics == "plasma":
        blood = BloodTruth().scaled(ref_scale)
        plasma = plasma_parameters(params)
        tacs = pet.plasma_class_tacs(timing, plasma, blood)
        reference = tacs[an.CEREBELLAR_GM]
    elif opts.kinetics == "srtm":
        reference, tacs = pet.class_tacs(timing, params, ref_scale)
    else:
        raise ValueError(f"kinetics must be 'srtm' or 'plasma', got {opts.kinetics!r}")

    # Geometry: PET world -> T1w world.
    centre_t1w = (anatomy.affine[:3, :3] @ np.argwhere(anatomy.brain).mean(0)) + anatomy.affine[
        :3, 3
    ]
    pet_params = random_rigid_parameters(rng, opts.pet_to_t1w_mm, opts.pet_to_t1w_deg)
    pet_to_t1w = rigid_matrix(pet_params[:3], pet_params[3:], centre_t1w)
    geometry = pet.pet_geometry(
        anatomy.brain,
        anatomy.affine,
        pet_to_t1w,
        opts.pet_voxel_mm,
        opts.pet_fwhm_mm,
        opts.fov_cut_mm,
    )
    centre_pet = np.linalg.solve(pet_to_t1w, np.append(centre_t1w, 1.0))[:3]

    # PET: noise-free, then motion, FOV cut, noise.
    fractions = pet.class_fractions(labels, anatomy.affine, geometry, N_CLASSES)
    clean = pet.noise_free_pet(fractions, tacs, geometry)
    if opts.motion:
        motion_params = motion_trajectory(timing, rng, opts.max_motion_mm, opts.max_motion_deg)
    else:
        motion_params = np.zeros((timing.n_frames, 6))
    motion = np.stack([rigid_matrix(p[:3], p[3:], centre_pet) for p in motion_params])
    moved = pet.apply_motion(clean, motion, geometry.affine) if opts.motion else clean
    nz = geometry.out_shape[2]
    clean, moved = clean[:, :, :nz], moved[:, :, :nz]
    if opts.noise:
        sd = pet.noise_sd(moved, timing, tracer.half_life_min, opts.noise_level)
        noisy = moved + sd * pet.correlated_unit_noise(moved.shape, rng)
    else:
        noisy = moved

    # MRI.
    t1w = synth_t1w(anatomy, labels, rng, noise=opts.noise)
    flair = synth_flair(anatomy, labels, rng, noise=opts.noise)

    # Write BIDS.
    files = {
        "t1w": f"{sub}/anat/{sub}_T1w.nii.gz",
        "flair": f"{sub}/anat/{sub}_FLAIR.nii.gz",
        "pet": f"{sub}/pet/{sub}_trc-{tracer.name}_pet.nii.gz",
        "pet_json": f"{sub}/pet/{sub}_trc-{tracer.name}_pet.json",
        "tissue": f"{sub}_tissue.nii.gz",
        "lesions": f"{sub}_lesions.nii.gz",
        "pet_noisefree": f"{sub}_trc-{tracer.name}_desc-noisefree_pet.nii.gz",
    }
    _save(t1w, anatomy.affine, bids_dir / files["t1w"], np.int16)
    _save(flair, anatomy.affine, bids_dir / files["flair"], np.int16)
    written, pet_timing = static_frame(noisy, timing, opts.static_window_min)
    written = written * frame_scale(pet_timing, tracer.half_life_min, opts.decay_correction)
    if opts.noise:  # int16 + slope like scanner exports; exact float32 when noise-free
        _save(written, geometry.affine, bids_dir / files["pet"], np.int16, scaled=True)
    else:
        _save(written, geometry.affine, bids_dir / files["pet"], np.float32)
    sidecar = pet_sidecar(tracer, pet_timing, injected, geometry, rng, opts.decay_correction)
    (bids_dir / files["pet_json"]).write_text(json.dumps(sidecar, indent=2) + "\n")
    if opts.kinetics == "plasma":
        write_blood_recordings(bids_dir / sub / "pet", f"{sub}_trc-{tracer.name}", blood,
                               noise_cv=BLOOD_NOISE_CV if opts.noise else 0.0, rng=rng)  # fmt: skip

    # Write truth.
    out = truth_dir / sub
    _save(labels, anatomy.affine, out / files["tissue"], np.uint8)
    _save(lesion_ids, anatomy.affine, out / files["lesions"], np.uint16)
    _save(clean, geometry.affine, out / files["pet_noisefree"], np.float32)
    tissues = pd.DataFrame(
        [
            {"label": lab, "name": an.TISSUE_NAMES[lab], "R1": p[0], "k2": p[1], "BPND": p[2]}
            for lab, p in sorted(params.items())
        ]
    )
    if opts.kinetics == "plasma":  # the arterial-input truth, columns prefixed "plasma_"
        for key in ("K1", "k2", "k3", "k4", "vB", "VT"):
            tissues[f"plasma_{key}"] = [plasma[lab][key] for lab in tissues["label"]]
    lesion_rows = [
        {
            "id": les.id,
            "phenotype": les.phenotype,
            "diameter_mm": les.diameter_mm,
            "volume_ml": round(les.volume_ml, 6),
            "size_mm": round(les.size_mm, 3),
            "confluent": les.confluent,
            "centre_x": round(les.centre_mm[0], 3),
            "centre_y": round(les.centre_mm[1], 3),
            "centre_z": round(les.centre_mm[2], 3),
            "core_bpnd": les.core_bpnd,
            "rim_bpnd": les.rim_bpnd,
        }
        for les in lesions
    ]
    lesion_cols = [
        "id",
        "phenotype",
        "diameter_mm",
        "volume_ml",
        "size_mm",
        "confluent",
        "centre_x",
        "centre_y",
        "centre_z",
        "core_bpnd",
        "rim_bpnd",
    ]
    meta = {
        "subject": spec.label,
        "group": spec.group,
        "tspo_genotype": spec.genotype,
        "tracer": tracer.name,
        "half_life_min": tracer.half_life_min,
        "bids_dir": str(Path(bids_dir).resolve()),
        "files": files,
        "transform_convention": TRANSFORM_CONVENTION,
        "pet_to_t1w": pet_to_t1w.tolist(),
        "pet_to_t1w_parameters": {
            "names": ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"],
            "values": pet_params.tolist(),
            "centre_mm": centre_t1w.tolist(),
        },
        "motion": motion.tolist(),
        "motion_parameters": {
            "names": ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"],
            "values": motion_params.tolist(),
            "centre_mm": centre_pet.tolist(),
            "space": "PET world (RAS mm); matrices map frame-k world points to motion-free PET world points",
        },
        "pet_grid": {
            "affine": geometry.affine.tolist(),
            "shape": list(geometry.out_shape),
            "simulated_shape": list(geometry.shape),
            "fov_cut_mm": opts.fov_cut_mm,
            "fov_cut_slices": geometry.n_cut,
            "fwhm_mm": opts.pet_fwhm_mm,
            "subsample": pet.SUBSAMPLE,
        },
        "t1w_grid": {"affine": anatomy.affine.tolist(), "shape": list(anatomy.shape)},
        "kinetics": {
            "model": "SRTM (Lammertsma & Hume 1996), k2 = R1 * k2_ref",
            "reference_class": "cerebellar_gm",
            "reference_scale": ref_scale,
            "injected_radioactivity_mbq": injected,
            "units": "kBq/mL, decay-corrected to injection (t = 0); the BIDS image is written "
            f"as decay_correction={opts.decay_correction!r}",
            "injection_before_scan_s": opts.injection_before_scan_s,
        }
        if opts.kinetics == "srtm"
        else {
            "model": "1TCM (no specific binding) / 2TCM (BPND > 0) from the arterial input, "
            "V_T = K1_ref/k2' (1 + BPND); tissues.tsv plasma_* columns",
            "reference_class": "cerebellar_gm",
            "reference_scale": ref_scale,
            "injected_radioactivity_mbq": injected,
            "units": "kBq/mL, decay-corrected to injection (t = 0)",
            "injection_before_scan_s": opts.injection_before_scan_s,
            "blood": {**asdict(blood), "noise_cv": BLOOD_NOISE_CV if opts.noise else 0.0},
        },
        "noise": {
            "enabled": opts.noise,
            "noise_level": opts.noise_level,
            "scale": pet.NOISE_SCALE,
            "floor": pet.NOISE_FLOOR,
            "smooth_voxels": pet.NOISE_SMOOTH_VOXELS,
            "model": "SD = scale*level*sqrt((C + floor*mean_head(C)) / (duration_min*mean_decay))",
        },
        "motion_enabled": opts.motion,
        "lesion_rim": "2 mm white-matter shell just outside the lesion mask; perilesional WM = 2-5 mm outside",
    }
    write_truth(
        out,
        meta,
        tissues,
        pd.DataFrame(lesion_rows, columns=lesion_cols),
        timing,
        reference,
        {an.TISSUE_NAMES[lab]: tacs[lab] for lab in sorted(params)},
        motion_params,
    )
