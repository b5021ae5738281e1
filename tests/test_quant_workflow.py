"""The quantification workflow run by nipype on the synthetic participant, inputs from the truth.

Registration and segmentation are bypassed (true transform, true tissue map turned into a
seg-tspoms-like label map); the pipeline test with both in the loop comes with those stages.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from test_quant_synthetic import REF, synthetic_quant  # noqa: F401  (session fixture)

from tspo_bidsapp.anat.labels import TSPOMS_INDEX, TSPOMS_LABELS, write_dseg_tsv
from tspo_bidsapp.quant.pvc import FWHM_TO_SIGMA
from tspo_bidsapp.synthetic import anatomy as an
from tspo_bidsapp.workflows.quant import init_pet_quant_wf

TISSUE_TO_TSPOMS = {
    an.CSF: "CSF-extracerebral", an.GM: "cortical-GM", an.NAWM: "NAWM",
    an.CEREBELLAR_GM: "cerebellar-GM-excluded", REF: "cerebellar-GM-reference",
    an.THALAMUS: "thalamus", an.CHOROID_PLEXUS: "choroid-plexus",
    an.PERILESIONAL_WM: "perilesional-WM-3-6mm",
    **{c: "WM-lesions" for c in an.LESION_CLASSES},
    **{c: "perilesional-WM-0-3mm" for c in an.RIM_CLASSES},
}  # fmt: skip


def _write_inputs(s, folder):
    """NIfTI inputs of the workflow on the T1w grid, from the truth."""
    folder.mkdir()
    lut = np.zeros(s.labels.max() + 1, np.uint8)
    for tissue, name in TISSUE_TO_TSPOMS.items():
        lut[tissue] = TSPOMS_INDEX[name]
    dseg = lut[s.labels]
    ids = np.asarray(nib.load(s.truth.lesion_ids).dataobj).astype(np.int32)
    images = {
        "pet_t1w": (s.noisy, np.float32), "tspoms_dseg": (dseg, np.uint8),
        "lesion_ids": (ids, np.int32), "lesion_mask": (ids > 0, np.uint8),
        "ref_candidate": (s.labels == REF, np.uint8), "brain_mask": (s.labels > 0, np.uint8),
        "gm_mask": (np.isin(s.tissue, (an.GM, an.THALAMUS, an.CEREBELLAR_GM)), np.uint8),
        "wm_mask": (np.isin(s.tissue, an.WHITE_MATTER_CLASSES), np.uint8),
    }  # fmt: skip
    out = {}
    for key, (data, dtype) in images.items():
        out[key] = str(folder / f"{key}.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(data, dtype), s.t1w.affine), out[key])
    out["tspoms_tsv"] = str(write_dseg_tsv(folder / "dseg.tsv", TSPOMS_LABELS))
    out.update(source_file=str(s.truth.pet), pet_file=str(s.truth.pet),
               sidecar_file=str(s.truth.pet_json))  # fmt: skip
    return out


def test_quant_workflow_writes_derivatives_close_to_truth(synthetic_quant, tmp_path):  # noqa: F811
    s = synthetic_quant
    inputs = _write_inputs(s, tmp_path / "inputs")
    voxel = float(np.mean(nib.load(s.truth.pet).header.get_zooms()[:3]))
    image_fwhm = float(np.sqrt(4.5**2 + voxel**2 / 12 / FWHM_TO_SIGMA**2))
    # threshold as in test_quant_synthetic: this participant's NAWM DVR, mean + 2 SD
    out = tmp_path / "derivatives"
    wf = init_pet_quant_wf(
        output_dir=str(out), models=("SRTM", "SUVR"), pvc="gtm", pet_fwhm_mm=image_fwhm,
        active_threshold=1.24, active_k=2.0,
    )  # fmt: skip
    wf.base_dir = str(tmp_path / "work")
    for key, value in inputs.items():
        setattr(wf.get_node("inputnode").inputs, key, value)
    wf.get_node("inputnode").inputs.participant = {"tspo_genotype": s.truth.genotype}
    wf.run(plugin="Linear")

    pet = out / "sub-01" / "pet"
    stem = "sub-01_trc-PBR28"
    names = sorted(p.name for p in pet.iterdir())
    for name in (
        "seg-tspoms_desc-preproc_tacs.tsv", "seg-tspoms_desc-gtm_tacs.tsv",
        "ref-cerebellum_desc-preproc_tacs.tsv", "ref-cerebellum_desc-ref_mask.nii.gz",
        "model-SRTM_ref-cerebellum_kinpar.tsv", "model-SRTM_ref-cerebellum_kinpar.json",
        "model-SUVR_ref-cerebellum_kinpar.tsv",
        "space-T1w_model-SRTM_ref-cerebellum_meas-BPND_mimap.nii.gz",
        "space-T1w_model-SRTM_ref-cerebellum_meas-DVR_mimap.json",
        "space-T1w_model-SUVR_ref-cerebellum_meas-SUVR_mimap.nii.gz",
        "model-SRTM2_ref-cerebellum_desc-lesions_kinpar.tsv", "seg-lesions_desc-gtm_tacs.tsv",
    ):  # fmt: skip
        assert f"{stem}_{name}" in names, name
    srtm = pd.read_csv(pet / f"{stem}_model-SRTM_ref-cerebellum_kinpar.tsv", sep="\t")
    srtm = srtm.set_index("region")
    truth = s.truth.bpnd
    for region, tissue in (("NAWM", "nawm"), ("cortical-GM", "gm"), ("thalamus", "thalamus")):
        print(f"\n{region}: GTM SRTM BPND {srtm.loc[region, 'BPND']:.4f} truth {truth[tissue]:.4f}")
        assert srtm.loc[region, "BPND"] == pytest.approx(truth[tissue], rel=0.10)
    assert (srtm["tspo_genotype"] == s.truth.genotype).all()
    meta = json.loads((pet / f"{stem}_model-SRTM_ref-cerebellum_kinpar.json").read_text())
    assert meta["Units"]["k2"] == "1/min" and meta["PartialVolumeCorrection"] == "GTM"
    ref = pd.read_csv(pet / f"{stem}_ref-cerebellum_desc-preproc_tacs.tsv", sep="\t")
    np.testing.assert_allclose(ref["reference"][-10:], s.truth.reference_tac[-10:], rtol=0.05)
    bp = nib.load(pet / f"{stem}_space-T1w_model-SRTM_ref-cerebellum_meas-BPND_mimap.nii.gz")
    thal = np.nanmean(np.asarray(bp.dataobj)[s.tissue == an.THALAMUS])
    assert 0.7 * truth["thalamus"] < thal < truth["thalamus"]  # no PVC in the maps
    # phenotypes: lesion rule on every lesion core's and rim's GTM-corrected TAC (SRTM2)
    lesions = pd.read_csv(pet / f"{stem}_model-SRTM2_ref-cerebellum_desc-lesions_kinpar.tsv",
                          sep="\t").merge(s.truth.lesions, left_on="lesion_id", right_on="id")  # fmt: skip
    print(lesions[["lesion_id", "size_mm", "core_DVR", "rim_DVR", "phenotype_x", "phenotype_y"]])
    assert (lesions["value_source"] == "regional").all() and (lesions["rule"] == "lesion").all()
    assert np.mean(lesions["phenotype_x"] == lesions["phenotype_y"]) >= 0.8
