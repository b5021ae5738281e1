"""Transform conventions, ITK files, motion parameters and FD on exact, known transforms."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from tspo_bidsapp.interfaces.ants import frame_timing_from_metadata
from tspo_bidsapp.registration import (
    framewise_displacement,
    mean_displacement,
    motion_confounds,
    ras_to_lps,
    read_itk_transform,
    resample_pet_to_t1w,
    rigid_matrix,
    rigid_parameters,
    write_itk_transform,
)
from tspo_bidsapp.registration.evaluate import registration_errors
from tspo_bidsapp.registration.images import affine_from_geometry, array_to_ants
from tspo_bidsapp.registration.transforms import (
    ants_transform_to_matrix,
    itk_to_ras_world,
    lps_to_ras,
    ras_world_to_itk,
    read_itk_transform_list,
    write_itk_transform_list,
)


def _blob_image(shape=(40, 44, 36), voxel=2.0) -> nib.Nifti1Image:
    """Smooth asymmetric test volume with an oblique-free RAS affine."""
    grid = np.indices(shape, dtype=float)
    centre = np.array(shape, dtype=float)[:, None, None, None] / 2
    r2 = (((grid - centre) / np.array([5, 6, 4.5])[:, None, None, None]) ** 2).sum(0)
    data = np.exp(-r2) + 0.5 * np.exp(
        -(((grid[0] - 12) ** 2 + (grid[1] - 28) ** 2 + (grid[2] - 18) ** 2) / 12)
    )
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = [-40.0, -30.0, -20.0]
    return nib.Nifti1Image(data.astype(np.float32), affine)


def _resample_reference(data, affine_in, affine_out, shape_out, ras_map):
    """scipy resampling: output voxel v samples the input at ``ras_map @ world(v)``."""
    vox = np.linalg.inv(affine_in) @ ras_map @ affine_out
    return ndimage.affine_transform(data, vox[:3, :3], vox[:3, 3], output_shape=shape_out, order=1)


def test_ras_lps_round_trip_and_axis_flip():
    shift_ras = rigid_matrix([1.0, 2.0, 3.0], [0, 0, 0])
    shift_lps = ras_to_lps(shift_ras)
    np.testing.assert_allclose(shift_lps[:3, 3], [-1.0, -2.0, 3.0])
    m = rigid_matrix([3, -2, 5], [0.1, -0.2, 0.3], [10, 20, -5])
    np.testing.assert_allclose(lps_to_ras(ras_to_lps(m)), m, atol=1e-12)
    np.testing.assert_allclose(ras_world_to_itk(itk_to_ras_world(m)), m, atol=1e-12)


def test_rigid_parameters_round_trip():
    centre = np.array([2.0, -18.0, 20.0])
    t, r = np.array([1.5, -0.7, 2.2]), np.array([0.05, -0.03, 0.08])
    t_back, r_back = rigid_parameters(rigid_matrix(t, r, centre), centre)
    np.testing.assert_allclose(t_back, t, atol=1e-12)
    np.testing.assert_allclose(r_back, r, atol=1e-12)


def test_itk_text_files_are_exact_and_readable_by_ants(tmp_path):
    import ants

    m = ras_to_lps(rigid_matrix([3, -2, 5], [0.1, -0.2, 0.3], [10, 20, -5]))
    path = write_itk_transform(m, tmp_path / "xfm.txt")
    assert path.read_text().startswith("#Insight Transform File V1.0")
    np.testing.assert_allclose(read_itk_transform(path), m, atol=1e-12)
    np.testing.assert_allclose(
        ants_transform_to_matrix(ants.read_transform(str(path))), m, atol=1e-5
    )
    stack = np.stack([m, np.eye(4), np.linalg.inv(m)])
    np.testing.assert_allclose(
        read_itk_transform_list(write_itk_transform_list(stack, tmp_path / "all.txt")), stack
    )


def test_ants_geometry_matches_nifti_affine():
    img = _blob_image()
    ants_img = array_to_ants(img.get_fdata(), img.affine)
    np.testing.assert_allclose(
        affine_from_geometry(ants_img.origin, ants_img.spacing, ants_img.direction), img.affine
    )
    np.testing.assert_array_equal(ants_img.numpy(), img.get_fdata().astype(np.float32))


def test_itk_matrix_resamples_like_the_ras_map(tmp_path):
    """An ITK fixed->moving matrix built from a RAS map samples the moving image there."""
    import ants

    img = _blob_image()
    ras_map = rigid_matrix([4.0, -3.0, 2.0], [0.08, -0.05, 0.12], [0, 0, 10])
    write_itk_transform(ras_to_lps(ras_map), tmp_path / "x.txt")
    moving = array_to_ants(img.get_fdata(), img.affine)
    out = ants.apply_transforms(moving, moving, [str(tmp_path / "x.txt")]).numpy()
    ref = _resample_reference(img.get_fdata(), img.affine, img.affine, img.shape, ras_map)
    inner = (slice(4, -4),) * 3
    np.testing.assert_allclose(out[inner], ref[inner], atol=1e-4)


def test_one_step_resampling_composes_motion_then_coregistration():
    """Frame k -> T1w samples the frame at hmc_k @ coreg @ y, in one interpolation."""
    pet = _blob_image()
    t1w_affine = np.diag([1.5, 1.5, 1.5, 1.0])
    t1w_affine[:3, 3] = [-35.0, -25.0, -15.0]
    t1w = nib.Nifti1Image(np.zeros((48, 52, 40), np.float32), t1w_affine)
    coreg = ras_to_lps(rigid_matrix([2.0, 1.0, -3.0], [0.05, 0.0, -0.1]))
    hmc = np.stack(
        [
            ras_to_lps(rigid_matrix([0, 0, 0], [0, 0, 0])),
            ras_to_lps(rigid_matrix([3, 0, 1], [0, 0.1, 0])),
        ]
    )
    frames = np.stack([pet.get_fdata(), 2 * pet.get_fdata()], axis=-1).astype(np.float32)
    pet4d = nib.Nifti1Image(frames, pet.affine)
    via_list = resample_pet_to_t1w(pet4d, hmc, coreg, t1w).get_fdata()
    via_product = resample_pet_to_t1w(pet4d, hmc, coreg, t1w, use_transform_list=False).get_fdata()
    np.testing.assert_allclose(via_list, via_product, atol=1e-5)
    inner = (slice(3, -3),) * 3
    for k in range(2):
        ras_map = lps_to_ras(hmc[k] @ coreg)
        ref = _resample_reference(frames[..., k], pet.affine, t1w_affine, t1w.shape, ras_map)
        np.testing.assert_allclose(via_list[..., k][inner], ref[inner], atol=1e-4)


def test_framewise_displacement_power_2012():
    trans = np.array([[0, 0, 0], [1, -1, 0.5], [1, -1, 0.5]], dtype=float)
    rots = np.array([[0, 0, 0], [0.01, 0, -0.02], [0.01, 0, -0.02]])
    fd = framewise_displacement(trans, rots)
    assert np.isnan(fd[0])
    assert fd[1] == pytest.approx(2.5 + 50 * 0.03)
    assert fd[2] == pytest.approx(0.0)


def test_mean_displacement_of_translation_and_rotation():
    points = np.random.default_rng(0).normal(0, 40, (500, 3))
    assert mean_displacement(
        rigid_matrix([3, 0, 4], [0, 0, 0]), np.eye(4), points
    ) == pytest.approx(5)
    # rotation about z by a: displacement = 2 r sin(a/2) with r the distance to the axis
    rot = rigid_matrix([0, 0, 0], [0, 0, 0.1])
    expected = np.mean(2 * np.hypot(points[:, 0], points[:, 1]) * np.sin(0.05))
    assert mean_displacement(rot, np.eye(4), points) == pytest.approx(expected)


def test_registration_errors_are_zero_for_exact_estimates():
    rng = np.random.default_rng(1)
    points = rng.normal([0, -18, 18], 30, (300, 3))
    motion = np.stack([rigid_matrix(rng.normal(0, 2, 3), rng.normal(0, 0.03, 3)) for _ in range(5)])
    pose = rigid_matrix([0.5, 0.2, -0.3], [0.01, 0, 0])  # unknown pose of the reference
    pet_to_t1w = rigid_matrix([4, -4, 2], [0.05, 0.02, -0.06])
    hmc_itk = np.stack([ras_to_lps(np.linalg.inv(h) @ pose) for h in motion])
    coreg_itk = ras_to_lps(np.linalg.inv(pet_to_t1w @ pose))
    err = registration_errors(hmc_itk, coreg_itk, motion, pet_to_t1w, points)
    assert err.motion_mean < 1e-9 and err.coreg < 1e-9
    assert err.end_to_end_per_frame.max() < 1e-9
    bad = registration_errors(
        hmc_itk, ras_to_lps(np.linalg.inv(pet_to_t1w)), motion, pet_to_t1w, points
    )
    assert bad.coreg > 0.3


def test_confounds_flag_large_displacement(caplog):
    centre = np.array([0.0, -18.0, 18.0])
    hmc = [np.eye(4), np.eye(4), ras_to_lps(rigid_matrix([2.0, 0, 0], [0, 0, 0], centre))]
    with caplog.at_level(logging.WARNING, logger="tspo_bidsapp.registration"):
        table = motion_confounds(np.stack(hmc), centre, fd_threshold_mm=1.0, source="sub-01_pet")
    assert list(table.columns[:7]) == [
        "trans_x",
        "trans_y",
        "trans_z",
        "rot_x",
        "rot_y",
        "rot_z",
        "framewise_displacement",
    ]
    assert table["trans_x"].iloc[2] == pytest.approx(2.0)
    assert table["framewise_displacement"].iloc[2] == pytest.approx(2.0)
    assert table["motion_outlier"].tolist() == [0, 0, 1]
    assert "sub-01_pet: frame 3" in caplog.text  # numbered from 1


def test_missing_frame_timing_names_file_and_field():
    with pytest.raises(ValueError, match=r"sub-01_pet.nii.gz.*FrameDuration"):
        frame_timing_from_metadata({"FrameTimesStart": [0, 60]}, "sub-01_pet.nii.gz")
