"""Derivatives made from a synthetic participant's ground truth, for the report tests.

The stage workflows write these files; here they are written from the truth (known motion,
PET->T1w transform, tissue classes, kinetics and lesions) under their documented names, so the
report can be checked against known values.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

import nibabel as nib
import numpy as np
import pandas as pd

from tspo_bidsapp.anat.labels import TSPOMS_LABELS
from tspo_bidsapp.interfaces.bids import write_dseg_tsv
from tspo_bidsapp.kinetics.kinpar import KINPAR_COLUMNS
from tspo_bidsapp.quant.phenotypes import LESION_COLUMNS
from tspo_bidsapp.registration.confounds import confounds_description
from tspo_bidsapp.synthetic import load_truth

PREFIX = "sub-01_trc-PBR28"
#: FD threshold (mm) the motion correction recorded for this run (not the default, on purpose).
RECORDED_FD_THRESHOLD_MM = 0.7
# Truth tissue class -> TSPO-MS region index.
TSPOMS_OF_CLASS = {
    "csf": 19, "gm": 5, "nawm": 4, "cerebellar_gm": 12, "thalamus": 6, "choroid_plexus": 16,
    "perilesional_wm": 2,
}  # fmt: skip
FD_RADIUS_MM = 50.0  # Power et al. 2012


def synthetic_dataset(study) -> tuple[Path, Path]:
    """BIDS and truth folders of the shared synthetic dataset (``synthetic_study`` fixture)."""
    return study.bids, study.truth_dir


def framewise_displacement(params: np.ndarray) -> np.ndarray:
    """Power et al. (2012) FD (mm) of (n, 6) trans (mm) / rot (rad) parameters; 0 for frame 1."""
    diff = np.abs(np.diff(params, axis=0))
    return np.r_[0.0, diff[:, :3].sum(axis=1) + FD_RADIUS_MM * diff[:, 3:].sum(axis=1)]


def _save(data, like, path: Path, dtype=np.float32, **meta) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.asarray(data, dtype), like.affine)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)
    meta = {"Sources": ["bids:raw:sub-01/anat/sub-01_T1w.nii.gz"], **meta}
    path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(meta) + "\n")
    return path


def _tsv(table: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
    return path


def write_truth_derivatives(bids: Path, truth_dir: Path, out: Path) -> dict:
    """Write the documented derivatives of sub-01 from its truth; return the expected values."""
    from nilearn.image import resample_to_img

    truth = load_truth(truth_dir, "01")
    anat, pet = out / "sub-01" / "anat", out / "sub-01" / "pet"
    t1 = nib.load(truth.t1w)
    tissue = np.asarray(nib.load(truth.tissue).dataobj).astype(np.int16)
    lesion_ids = np.asarray(nib.load(truth.lesion_ids).dataobj).astype(np.int32)
    names = dict(zip(truth.tissues["label"], truth.tissues["name"], strict=True))
    # anat/
    _save(np.asarray(t1.dataobj), t1, anat / "sub-01_desc-preproc_T1w.nii.gz", SkullStripped=True)
    _save(tissue > 0, t1, anat / "sub-01_desc-brain_mask.nii.gz", np.uint8)
    dseg = _save(tissue, t1, anat / "sub-01_dseg.nii.gz", np.int16)
    write_dseg_tsv(dseg, names)
    _save(lesion_ids > 0, t1, anat / "sub-01_label-lesion_mask.nii.gz", np.uint8)
    _save(lesion_ids, t1, anat / "sub-01_desc-lesions_dseg.nii.gz", np.int32)
    tspoms = np.zeros_like(tissue, dtype=np.uint8)
    for label, name in names.items():
        index = TSPOMS_OF_CLASS.get(name, 1 if name.startswith("lesion_") else 0)
        tspoms[tissue == label] = index
    write_dseg_tsv(_save(tspoms, t1, anat / "sub-01_seg-tspoms_dseg.nii.gz", np.uint8),
                   TSPOMS_LABELS)  # fmt: skip
    voxel_ml = float(np.prod(t1.header.get_zooms()[:3])) / 1000.0
    counts = np.bincount(tspoms.ravel(), minlength=len(TSPOMS_LABELS) + 1)
    morph = pd.DataFrame({"index": list(TSPOMS_LABELS), "name": list(TSPOMS_LABELS.values()),
                          "volume_ml": [counts[i] * voxel_ml for i in TSPOMS_LABELS]})  # fmt: skip
    _tsv(morph, anat / "sub-01_seg-tspoms_morph.tsv")
    # pet/: motion, references
    params = truth.motion_params
    confounds = pd.DataFrame(params, columns=["trans_x", "trans_y", "trans_z",
                                              "rot_x", "rot_y", "rot_z"])  # fmt: skip
    confounds["framewise_displacement"] = framewise_displacement(params)
    _tsv(confounds, pet / f"{PREFIX}_desc-confounds_timeseries.tsv")
    (pet / f"{PREFIX}_desc-confounds_timeseries.json").write_text(json.dumps(
        confounds_description(np.zeros(3), RECORDED_FD_THRESHOLD_MM)))  # fmt: skip
    noisefree = nib.load(truth.pet_noisefree)
    late = np.asarray(noisefree.dataobj, dtype=np.float32)[..., -8:].mean(axis=-1)
    petref = _save(late, noisefree, pet / f"{PREFIX}_desc-hmc_petref.nii.gz")
    in_t1 = nib.Nifti1Image(late, truth.pet_to_t1w @ noisefree.affine)
    pet_t1 = resample_to_img(in_t1, t1, interpolation="linear", force_resample=True,
                             copy_header=True)  # fmt: skip
    _save(pet_t1.get_fdata(), t1, pet / f"{PREFIX}_space-T1w_desc-hmc_petref.nii.gz")
    assert petref.exists()
    # TACs (noise-free truth curves) and kinetics (true parameters)
    timing = truth.class_tacs[["frame_start", "frame_end"]]
    region_tacs = timing.copy()
    by_region = {TSPOMS_LABELS[i]: n for n, i in TSPOMS_OF_CLASS.items()}
    for region, name in by_region.items():
        region_tacs[region] = truth.class_tacs[name]
    region_tacs["WM-lesions"] = truth.class_tacs["lesion_overall_active_core"]
    _tsv(region_tacs, pet / f"{PREFIX}_seg-tspoms_desc-preproc_tacs.tsv")
    ref = timing.assign(cerebellum=truth.class_tacs["cerebellar_gm"])
    _tsv(ref, pet / f"{PREFIX}_ref-cerebellum_desc-preproc_tacs.tsv")
    _save(tspoms == 12, t1, pet / f"{PREFIX}_ref-cerebellum_desc-ref_mask.nii.gz", np.uint8)
    tissues = truth.tissues.set_index("name")
    rows = []
    for region, name in [*by_region.items(), ("WM-lesions", "lesion_overall_active_core")]:
        r1, k2, bpnd = tissues.loc[name, ["R1", "k2", "BPND"]]
        rows.append({"region": region, "model": "SRTM", "BPND": bpnd, "DVR": 1 + bpnd, "R1": r1,
                     "k2": k2, "n_frames": len(timing), "n_params": 3, "success": True,
                     "edge": region == "CSF-extracerebral"})  # fmt: skip
    kinpar = pd.DataFrame(rows, columns=list(KINPAR_COLUMNS))
    kinpar.insert(1, "volume_ml", [morph.set_index("name").loc[r, "volume_ml"] for r in
                                   kinpar["region"]])  # fmt: skip
    _tsv(kinpar, pet / f"{PREFIX}_model-SRTM_ref-cerebellum_kinpar.tsv")
    bpnd_map = np.full(tissue.shape, np.nan, np.float32)
    for label, name in names.items():
        bpnd_map[tissue == label] = tissues.loc[name, "BPND"]
    for meas, values in (("BPND", bpnd_map), ("DVR", bpnd_map + 1)):
        path = _save(values, t1, pet / f"{PREFIX}_space-T1w_model-SRTM_ref-cerebellum_meas-"
                     f"{meas}_mimap.nii.gz")  # fmt: skip
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(
            {"Units": "1", "FitInfo": {"SRTM": {"n_voxels": 1000, "n_edge": 25}}}))  # fmt: skip
    lesions = truth.lesions
    table = pd.DataFrame({
        "lesion_id": lesions["id"], "volume_ml": lesions["volume_ml"],
        "core_DVR": 1 + lesions["core_bpnd"], "rim_DVR": 1 + lesions["rim_bpnd"],
        "phenotype": lesions["phenotype"],
    }).reindex(columns=list(LESION_COLUMNS))  # fmt: skip
    _tsv(table, pet / f"{PREFIX}_model-SRTM_ref-cerebellum_desc-lesions_kinpar.tsv")
    fd = confounds["framewise_displacement"].to_numpy()
    return {
        "fd": fd,
        "n_lesions": len(lesions),
        "phenotypes": lesions["phenotype"].value_counts().to_dict(),
        "bpnd": dict(zip(kinpar["region"], kinpar["BPND"], strict=True)),
    }
