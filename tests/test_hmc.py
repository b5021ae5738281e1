"""Motion correction + co-registration workflows on the synthetic dataset (known truth)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.registration import correct_motion
from tspo_bidsapp.registration.evaluate import registration_errors
from tspo_bidsapp.registration.hmc import registered_frames
from tspo_bidsapp.registration.transforms import read_itk_transform, read_itk_transform_list


def brain_points(truth, step: int = 4) -> np.ndarray:
    """RAS world coordinates of brain voxels (all tissue classes but CSF) of the T1w grid."""
    tissue = nib.load(truth.tissue)
    labels = np.asanyarray(tissue.dataobj)
    csf = truth.tissues.loc[truth.tissues["name"] == "csf", "label"].tolist()
    ijk = np.argwhere((labels > 0) & ~np.isin(labels, csf))[::step]
    return ijk @ tissue.affine[:3, :3].T + tissue.affine[:3, 3]


def brain_mask_file(truth, path) -> str:
    tissue = nib.load(truth.tissue)
    mask = (np.asanyarray(tissue.dataobj) > 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(mask, tissue.affine), path)
    return str(path)


@pytest.fixture(scope="module")
def synthetic(synthetic_study):
    """sub-01 of the shared ``size="test"`` dataset (conftest.py)."""
    return synthetic_study.root, synthetic_study.truth("01")


@pytest.fixture(scope="module")
def workflow_run(synthetic):
    """Run motion correction, co-registration and derivatives as one nipype graph."""
    from nipype.pipeline import engine as pe

    from tspo_bidsapp.workflows.pet import (
        init_pet_coreg_wf,
        init_pet_hmc_wf,
        init_pet_preproc_derivatives_wf,
    )

    root, truth = synthetic
    out_dir = root / "derivatives"
    hmc_wf = init_pet_hmc_wf(hmc_start_time=120.0, omp_nthreads=2)
    coreg_wf = init_pet_coreg_wf(omp_nthreads=2)
    ds_wf = init_pet_preproc_derivatives_wf(output_dir=str(out_dir))
    meta = json.loads(truth.pet_json.read_text())
    hmc_wf.inputs.inputnode.pet_file = str(truth.pet)
    hmc_wf.inputs.inputnode.pet_metadata = meta
    coreg_wf.inputs.inputnode.t1w_preproc = str(truth.t1w)
    coreg_wf.inputs.inputnode.t1w_mask = brain_mask_file(truth, root / "brain_mask.nii.gz")
    ds_wf.inputs.inputnode.source_file = str(truth.pet)
    wf = pe.Workflow(name="pet_preproc_test", base_dir=str(root / "work"))
    # fmt: off
    wf.connect([
        (hmc_wf, coreg_wf, [("outputnode.petref", "inputnode.petref")]),
        (hmc_wf, ds_wf, [
            ("outputnode.petref", "inputnode.petref"),
            ("outputnode.pet_mc", "inputnode.pet_mc"),
            ("outputnode.pet_metadata", "inputnode.pet_metadata"),
            ("outputnode.confounds", "inputnode.confounds"),
            ("outputnode.confounds_metadata", "inputnode.confounds_metadata"),
            ("outputnode.hmc_xforms", "inputnode.hmc_xforms"),
        ]),
        (coreg_wf, ds_wf, [
            ("outputnode.itk_pet_to_t1w", "inputnode.itk_pet_to_t1w"),
            ("outputnode.petref_t1w", "inputnode.petref_t1w"),
        ]),
    ])
    # fmt: on
    wf.config["execution"].update(
        {"crashdump_dir": str(root / "crash"), "stop_on_first_crash": True}
    )
    wf.run(plugin="Linear")
    return out_dir / f"sub-{truth.subject}" / "pet", truth


def test_derivatives_are_named_and_complete(workflow_run):
    pet_dir, truth = workflow_run
    stem = truth.pet.name.replace("_pet.nii.gz", "")
    expected = [
        "desc-hmc_petref.nii.gz",
        "desc-mc_pet.nii.gz",
        "desc-mc_pet.json",
        "desc-confounds_timeseries.tsv",
        "desc-confounds_timeseries.json",
        "from-petref_to-T1w_mode-image_xfm.txt",
        "from-orig_to-petref_mode-image_desc-hmc_xfm.txt",
        "space-T1w_desc-hmc_petref.nii.gz",
    ]
    for tail in expected:
        assert (pet_dir / f"{stem}_{tail}").is_file(), tail
    n_frames = truth.timing.n_frames
    mc = nib.load(pet_dir / f"{stem}_desc-mc_pet.nii.gz")
    assert mc.shape == nib.load(truth.pet).shape
    meta = json.loads((pet_dir / f"{stem}_desc-mc_pet.json").read_text())
    np.testing.assert_allclose(meta["FrameTimesStart"], truth.timing.start_s)
    np.testing.assert_allclose(meta["FrameDuration"], truth.timing.duration_s)
    table = pd.read_csv(pet_dir / f"{stem}_desc-confounds_timeseries.tsv", sep="\t")
    assert len(table) == n_frames
    for column in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"):
        assert column in table
    assert np.isnan(table["framewise_displacement"].iloc[0])
    desc = json.loads((pet_dir / f"{stem}_desc-confounds_timeseries.json").read_text())
    assert (
        desc["rot_x"]["Units"] == "rad" and "Power" in desc["framewise_displacement"]["Description"]
    )
    t1w_ref = nib.load(pet_dir / f"{stem}_space-T1w_desc-hmc_petref.nii.gz")
    np.testing.assert_allclose(t1w_ref.affine, nib.load(truth.t1w).affine, atol=1e-4)


def test_recovered_motion_and_coregistration_accuracy(workflow_run):
    """Mean displacement over brain voxels: motion < 0.5 mm, co-registration < 1 mm."""
    pet_dir, truth = workflow_run
    stem = truth.pet.name.replace("_pet.nii.gz", "")
    hmc = read_itk_transform_list(
        pet_dir / f"{stem}_from-orig_to-petref_mode-image_desc-hmc_xfm.txt"
    )
    coreg = read_itk_transform(pet_dir / f"{stem}_from-petref_to-T1w_mode-image_xfm.txt")
    late = truth.timing.start_s >= 120.0
    err = registration_errors(hmc, coreg, truth.motion, truth.pet_to_t1w, brain_points(truth), late)
    assert err.motion_mean < 0.5
    assert err.coreg < 1.0
    assert err.end_to_end_per_frame.max() < 1.0
    # early frames carry the transform of the first registered frame
    first = np.flatnonzero(late)[0]
    np.testing.assert_allclose(hmc[:first], np.broadcast_to(hmc[first], hmc[:first].shape))
    # the confounds reproduce the true frame-to-frame motion (FD of truth vs estimate)
    table = pd.read_csv(pet_dir / f"{stem}_desc-confounds_timeseries.tsv", sep="\t")
    true_fd = _fd_of_matrices(np.linalg.inv(truth.motion))
    est_fd = table["framewise_displacement"].to_numpy()
    assert np.nanmax(np.abs(est_fd[first + 1 :] - true_fd[first + 1 :])) < 1.0


def _fd_of_matrices(ras_maps: np.ndarray) -> np.ndarray:
    from tspo_bidsapp.registration import framewise_displacement, rigid_parameters

    params = [rigid_parameters(m) for m in ras_maps]
    return framewise_displacement([p[0] for p in params], [p[1] for p in params])


def test_hmc_off_keeps_identity_and_averages_late_frames():
    rng = np.random.default_rng(3)
    data = rng.uniform(0, 1, (12, 10, 8, 4)).astype(np.float32)
    pet = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    res = correct_motion(pet, [0, 60, 120, 300], [60, 60, 180, 300], enabled=False)
    np.testing.assert_allclose(res.itk_matrices, np.broadcast_to(np.eye(4), (4, 4, 4)))
    np.testing.assert_allclose(res.corrected, data)
    np.testing.assert_allclose(
        res.petref, (180 * data[..., 2] + 300 * data[..., 3]) / 480, rtol=1e-5
    )


def test_start_time_after_last_frame_is_a_clear_error():
    with pytest.raises(ValueError, match="--hmc-start-time"):
        registered_frames(np.array([0.0, 60.0, 120.0]), 600.0)
    np.testing.assert_array_equal(registered_frames(np.array([0, 60, 120, 180]), 120), [0, 0, 1, 1])


def test_one_step_resampling_to_t1w_matches_true_transforms(workflow_run):
    """Frames brought to T1w with the estimated transforms match those brought with the truth."""
    from tspo_bidsapp.registration import resample_pet_to_t1w
    from tspo_bidsapp.registration.transforms import ras_world_to_itk

    pet_dir, truth = workflow_run
    stem = truth.pet.name.replace("_pet.nii.gz", "")
    hmc = read_itk_transform_list(
        pet_dir / f"{stem}_from-orig_to-petref_mode-image_desc-hmc_xfm.txt"
    )
    coreg = read_itk_transform(pet_dir / f"{stem}_from-petref_to-T1w_mode-image_xfm.txt")
    pet = nib.load(truth.pet)
    frames = [8, truth.timing.n_frames - 1]
    sub = nib.Nifti1Image(np.asanyarray(pet.dataobj)[..., frames], pet.affine)
    t1w = nib.load(truth.t1w)
    est = resample_pet_to_t1w(sub, hmc[frames], coreg, t1w).get_fdata()
    # true frame -> T1w world map is M @ H_k; its ITK (T1w -> frame) form is the inverse in LPS
    true_itk = np.stack([ras_world_to_itk(truth.pet_to_t1w @ truth.motion[k]) for k in frames])
    ref = resample_pet_to_t1w(sub, true_itk, np.eye(4), t1w).get_fdata()
    brain = np.asanyarray(nib.load(truth.tissue).dataobj) > 1
    for j in range(len(frames)):
        a, b = est[..., j][brain], ref[..., j][brain]
        assert np.corrcoef(a, b)[0, 1] > 0.98
        assert np.abs(a - b).mean() < 0.1 * np.abs(b).mean()


def test_transform_names_keep_source_entities(tmp_path):
    from tspo_bidsapp.workflows.pet.outputs import copy_beside

    anchor = tmp_path / "sub-01_ses-base_trc-PBR28_rec-acdyn_run-2_desc-hmc_petref.nii.gz"
    anchor.write_bytes(b"")
    xfm = tmp_path / "x.txt"
    xfm.write_text("#Insight Transform File V1.0\n")
    out = copy_beside(
        str(anchor), str(xfm), "_desc-hmc_petref.nii.gz", "_from-petref_to-T1w_mode-image_xfm.txt"
    )
    assert out.endswith(
        "sub-01_ses-base_trc-PBR28_rec-acdyn_run-2_from-petref_to-T1w_mode-image_xfm.txt"
    )
    assert open(out).read() == xfm.read_text()


def test_hmc_off_with_only_early_frames_uses_all_frames():
    data = np.ones((6, 6, 6, 2), np.float32) * np.array([1.0, 3.0], np.float32)
    res = correct_motion(nib.Nifti1Image(data, np.eye(4)), [0, 30], [30, 90], enabled=False)
    np.testing.assert_allclose(res.petref, 2.5)
