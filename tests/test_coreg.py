"""PET -> T1w co-registration robustness on synthetic data with known transforms."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tspo_bidsapp.registration import coregister_pet_to_t1w, correct_motion
from tspo_bidsapp.registration.evaluate import registration_errors


def _run(tmp_path, **options):
    from tspo_bidsapp.synthetic import generate_dataset, load_truth

    (label,) = generate_dataset(
        tmp_path / "bids", tmp_path / "truth", size="test", n_subjects=1, **options
    )
    truth = load_truth(tmp_path / "truth", label)
    pet = nib.load(truth.pet)
    res = correct_motion(pet, truth.timing.start_s, truth.timing.duration_s, omp_nthreads=2)
    tissue = nib.load(truth.tissue)
    labels = np.asanyarray(tissue.dataobj)
    mask = nib.Nifti1Image((labels > 0).astype(np.uint8), tissue.affine)
    coreg = coregister_pet_to_t1w(
        nib.Nifti1Image(res.petref, pet.affine),
        nib.load(truth.t1w),
        brain_mask=mask,
        omp_nthreads=2,
    )
    csf = truth.tissues.loc[truth.tissues["name"] == "csf", "label"].tolist()
    ijk = np.argwhere((labels > 0) & ~np.isin(labels, csf))[::4]
    points = ijk @ tissue.affine[:3, :3].T + tissue.affine[:3, 3]
    late = truth.timing.start_s >= 120.0
    return registration_errors(
        res.itk_matrices, coreg, truth.motion, truth.pet_to_t1w, points, late
    )


@pytest.mark.slow
def test_large_initial_offset_is_recovered(tmp_path):
    """10 deg rotation + 10 mm translation between PET and T1w."""
    err = _run(tmp_path, large_offset=True)
    assert err.coreg < 1.0
    assert err.motion_mean < 0.5


@pytest.mark.slow
def test_fov_cutting_the_top_of_the_head(tmp_path):
    err = _run(tmp_path, fov_cut_mm=30.0)
    assert err.coreg < 1.0
    assert err.motion_mean < 0.5


@pytest.mark.slow
def test_coregistration_without_brain_mask(tmp_path):
    from tspo_bidsapp.synthetic import generate_dataset, load_truth

    (label,) = generate_dataset(
        tmp_path / "bids", tmp_path / "truth", size="test", n_subjects=1, motion=False
    )
    truth = load_truth(tmp_path / "truth", label)
    petref = nib.load(truth.pet_noisefree)
    data = np.asanyarray(petref.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data[..., -8:].mean(-1)
    coreg = coregister_pet_to_t1w(
        nib.Nifti1Image(data, petref.affine), nib.load(truth.t1w), omp_nthreads=2
    )
    tissue = nib.load(truth.tissue)
    ijk = np.argwhere(np.asanyarray(tissue.dataobj) > 1)[::4]
    points = ijk @ tissue.affine[:3, :3].T + tissue.affine[:3, 3]
    n = truth.timing.n_frames
    err = registration_errors(
        np.tile(np.eye(4), (n, 1, 1)),
        coreg,
        np.tile(np.eye(4), (n, 1, 1)),
        truth.pet_to_t1w,
        points,
    )
    assert err.coreg < 1.0
