"""The whole participant level on the synthetic dataset, through the command line.

Motion correction, co-registration, one resampling to T1w, regional TACs with GTM partial-
volume correction and SRTM run in the loop on noisy PET with head motion; the anatomy comes
from ``--derivatives`` (the true segmentation exported as a FreeSurfer-labelled dseg and a
lesion mask, as a previous SAMSEG run would be supplied), so SAMSEG's cost is not paid here.
The numbers are checked against the simulation's ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import snapshot_tree

from tspo_bidsapp.registration.evaluate import registration_errors
from tspo_bidsapp.registration.transforms import read_itk_transform, read_itk_transform_list


@pytest.fixture(scope="module")
def processed(pipeline_run, synthetic_study):
    """Participant level for sub-01 (RRMS, with lesions), then the group level (conftest.py)."""
    return {
        "out": pipeline_run.out, "code": pipeline_run.code,
        "group_code": pipeline_run.group_code, "before": pipeline_run.before,
        "truth": synthetic_study.truth("01"),
    }  # fmt: skip


def _pet(out: Path, name: str) -> Path:
    (path,) = (out / "sub-01" / "pet").glob(f"sub-01_trc-*_{name}")
    return path


def test_runs_and_leaves_the_input_untouched(processed, synthetic_study):
    assert processed["code"] == 0
    assert processed["group_code"] == 0
    assert snapshot_tree(synthetic_study.bids) == processed["before"]
    assert (processed["out"] / "sub-01.html").is_file()


def test_motion_and_coregistration_match_the_truth(processed):
    out, truth = processed["out"], processed["truth"]
    hmc = read_itk_transform_list(_pet(out, "from-orig_to-petref_mode-image_desc-hmc_xfm.txt"))
    coreg = read_itk_transform(_pet(out, "from-petref_to-T1w_mode-image_xfm.txt"))
    ids = nib.load(truth.tissue)
    brain = np.argwhere(np.asarray(ids.dataobj) > 0)[::7]
    points = brain @ ids.affine[:3, :3].T + ids.affine[:3, 3]
    registered = truth.timing.start_s >= 120.0
    errors = registration_errors(hmc, coreg, truth.motion, truth.pet_to_t1w, points, registered)
    assert errors.motion_mean < 0.5  # mm, frames after the motion-correction start time
    assert errors.coreg < 1.0  # mm
    confounds = pd.read_csv(_pet(out, "desc-confounds_timeseries.tsv"), sep="\t")
    assert len(confounds) == truth.timing.n_frames
    true_jerk = np.abs(np.diff(truth.motion_params[:, :3], axis=0)).sum(1).argmax() + 1
    assert np.nanargmax(confounds["framewise_displacement"].to_numpy()) == true_jerk


def test_regional_srtm_bpnd_matches_the_truth(processed):
    """Noisy PET with motion: within 10 % or 0.02 of the true BPND (GTM-corrected TACs)."""
    table = pd.read_csv(_pet(processed["out"], "model-SRTM_ref-cerebellum_kinpar.tsv"), sep="\t")
    fitted = dict(zip(table["region"], table["BPND"], strict=True))
    truth = processed["truth"].bpnd
    for region, name in (("NAWM", "nawm"), ("cortical-GM", "gm"), ("thalamus", "thalamus")):
        assert fitted[region] == pytest.approx(truth[name], rel=0.10, abs=0.02), region
    meta = json.loads(_pet(processed["out"], "model-SRTM_ref-cerebellum_kinpar.json").read_text())
    assert meta["PartialVolumeCorrection"] == "GTM"


def test_maps_in_pet_and_t1w_space_agree(processed):
    """Voxel-wise SRTM maps on the native PET grid and on the T1w grid: same brain mean DVR."""
    means = {}
    for space in ("pet", "T1w"):
        img = nib.load(
            _pet(processed["out"], f"space-{space}_model-SRTM_ref-cerebellum_meas-DVR_mimap.nii.gz")
        )
        means[space] = float(np.nanmean(np.asarray(img.dataobj)))
    assert means["pet"] == pytest.approx(means["T1w"], rel=0.05)
    assert 1.0 < means["T1w"] < 1.3


def test_reference_tac_matches_the_truth(processed):
    ref = pd.read_csv(_pet(processed["out"], "ref-cerebellum_desc-preproc_tacs.tsv"), sep="\t")
    true = processed["truth"].reference_tac
    late = processed["truth"].timing.start_s >= 600
    values = ref.iloc[:, 2].to_numpy()
    np.testing.assert_allclose(values[late], true[late], rtol=0.08)


def test_group_level_reports_the_missing_participant(processed):
    status = pd.read_csv(processed["out"] / "group" / "participants.tsv", sep="\t")
    rows = dict(zip(status["participant_id"], status["status"], strict=True))
    assert rows["sub-01"] == "complete"
    assert rows["sub-02"] == "missing"


def _phenotypes_vs_truth(processed) -> pd.DataFrame:
    """One row per pipeline lesion: its phenotype, the planted one it overlaps most, its size."""
    out, truth = processed["out"], processed["truth"]
    table = pd.read_csv(_pet(out, "ref-cerebellum_desc-lesions_kinpar.tsv"), sep="\t")
    found = np.asarray(nib.load(out / "sub-01/anat/sub-01_desc-lesions_dseg.nii.gz").dataobj)
    planted = np.asarray(nib.load(truth.lesion_ids).dataobj)
    planted_rows = truth.lesions.set_index("id")
    # lesion ids are renumbered by the pipeline: match each lesion to the planted one it overlaps
    rows = []
    for lesion_id, phenotype in zip(table["lesion_id"], table["phenotype"], strict=True):
        overlap = np.bincount(planted[found == lesion_id], minlength=planted.max() + 1)[1:]
        match = planted_rows.loc[int(overlap.argmax()) + 1]
        rows.append({"found": phenotype, "true": match["phenotype"], "size_mm": match["size_mm"]})
    assert len(rows) == len(truth.lesions)
    return pd.DataFrame(rows)


def test_lesion_phenotypes_match_the_truth(processed):
    """Inactive and overall-active lesions (every size) get their true phenotype (>= 80 %)."""
    rows = _phenotypes_vs_truth(processed)
    print(rows.assign(correct=rows["found"] == rows["true"]).to_string())
    plain = rows[rows["true"] != "rim-active"]
    assert len(plain) >= 5
    assert (plain["found"] == plain["true"]).mean() >= 0.8


def test_rim_active_lesions_are_found_in_the_loop(processed):
    """The target: >= 80 % of all lesions correct and >= 50 % of the rim-active ones found, with
    the default phenotypes of a --pvc run: the lesion rule on every lesion core's and rim's own
    GTM-corrected TAC (motion, co-registration, 4.5 mm FWHM and noise in the loop)."""
    rows = _phenotypes_vs_truth(processed)
    rows["correct"] = rows["found"] == rows["true"]
    rows["bin"] = pd.cut(rows["size_mm"], [0, 5, 10, np.inf], right=False,
                         labels=["<5 mm", "5-10 mm", ">10 mm"])  # fmt: skip
    print(rows.groupby("bin", observed=True)["correct"].agg(["sum", "count"]))
    print(rows.groupby("true")["correct"].agg(["sum", "count"]))
    rim = rows[rows["true"] == "rim-active"]
    assert len(rim) >= 1
    assert rows["correct"].mean() >= 0.8
    assert (rim["found"] == "rim-active").mean() >= 0.5
    table = pd.read_csv(_pet(processed["out"], "ref-cerebellum_desc-lesions_kinpar.tsv"), sep="\t")
    assert (table["value_source"] == "regional").all() and (table["correction"] == "gtm").all()


@pytest.mark.slow
def test_noise_free_bpnd_within_five_percent(tmp_path):
    """Noise-free PET with head motion, motion correction and co-registration in the loop:
    regional SRTM BPND (GTM) within 5 % or 0.02 of the truth."""
    from tspo_bidsapp.cli.run import main
    from tspo_bidsapp.synthetic import generate_dataset, load_truth
    from tspo_bidsapp.synthetic.derivatives import write_anat_derivatives

    bids, truth_dir, anat = tmp_path / "bids", tmp_path / "truth", tmp_path / "anat"
    subjects = generate_dataset(bids, truth_dir, size="test", seed=42, n_subjects=1, noise=False)
    write_anat_derivatives(truth_dir, subjects, anat)
    out = tmp_path / "derivatives"
    code = main([str(bids), str(out), "participant", "-w", str(tmp_path / "work"),
                 "--nprocs", "2", "--derivatives", str(anat), "--pvc", "gtm",
                 "--pet-fwhm", "4.5"])  # fmt: skip
    assert code == 0
    (kinpar,) = (out / "sub-01" / "pet").glob("*_model-SRTM_ref-cerebellum_kinpar.tsv")
    table = pd.read_csv(kinpar, sep="\t")
    fitted = dict(zip(table["region"], table["BPND"], strict=True))
    truth = load_truth(truth_dir, "01").bpnd
    for region, name in (("NAWM", "nawm"), ("cortical-GM", "gm"), ("thalamus", "thalamus")):
        print(f"{region}: fitted {fitted[region]:.4f}, true {truth[name]:.4f}")
        assert fitted[region] == pytest.approx(truth[name], rel=0.05, abs=0.02), region
