"""Accuracy of estimated motion and co-registration against known (synthetic) transforms.

Truth conventions (RAS world mm, as in :mod:`tspo_bidsapp.synthetic`):
``H_k``: the frame-k image at ``p`` shows the motion-free PET at ``H_k @ p``;
``M``: PET world point ``p`` shows the anatomy at T1w world point ``M @ p``.

Estimates: ``T_k`` (RAS, from the ITK petref -> frame matrices): the anatomy at ``x`` in
petref is at ``T_k @ x`` in frame k; ``P`` (RAS): petref point -> T1w point.
A perfect estimate gives ``H_k @ T_k = R`` for all k, where ``R`` (petref -> motion-free
PET) is the unknown pose of the reference; ``R`` is estimated as the mean of ``H_k @ T_k``
over the registered frames, and the true petref -> T1w map is then ``M @ R``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .transforms import lps_to_ras, mean_displacement


@dataclass
class RegistrationErrors:
    """Mean displacements (mm) over brain voxels."""

    motion_per_frame: np.ndarray  # (n_frames,) relative-motion error
    motion_mean: float  # mean over the evaluated frames
    coreg: float  # petref -> T1w error
    end_to_end_per_frame: np.ndarray  # (n_frames,) frame -> T1w error, both steps together
    reference_pose: np.ndarray  # estimated R (4x4)


def registration_errors(
    hmc_itk: np.ndarray,
    coreg_itk: np.ndarray,
    true_motion: np.ndarray,
    true_pet_to_t1w: np.ndarray,
    brain_points_t1w: np.ndarray,
    frames: np.ndarray | None = None,
) -> RegistrationErrors:
    """Compare estimated ITK matrices with the true transforms.

    ``hmc_itk`` (n, 4, 4) LPS petref -> frame; ``coreg_itk`` LPS T1w -> petref;
    ``brain_points_t1w`` (N, 3) RAS mm; ``frames``: boolean mask of the frames averaged
    into ``motion_mean`` (default: all).
    """
    hmc_itk = np.asarray(hmc_itk, float).reshape(-1, 4, 4)
    true_motion = np.asarray(true_motion, float).reshape(-1, 4, 4)
    n = hmc_itk.shape[0]
    frames = np.ones(n, bool) if frames is None else np.asarray(frames, bool)
    estimated = np.stack([lps_to_ras(m) for m in hmc_itk])
    poses = np.einsum("kij,kjl->kil", true_motion, estimated)
    reference_pose = poses[frames].mean(axis=0)
    m_inv = np.linalg.inv(true_pet_to_t1w)
    points_pet = brain_points_t1w @ m_inv[:3, :3].T + m_inv[:3, 3]
    points_ref = _apply(np.linalg.inv(reference_pose), points_pet)
    motion = np.array([mean_displacement(poses[k], reference_pose, points_ref) for k in range(n)])
    petref_to_t1w = np.linalg.inv(lps_to_ras(coreg_itk))
    coreg = mean_displacement(petref_to_t1w, true_pet_to_t1w @ reference_pose, points_ref)
    # frame k -> T1w: estimated P @ inv(T_k); true M @ inv(H_k) ... evaluated at frame points
    end_to_end = np.empty(n)
    for k in range(n):
        points_frame = _apply(np.linalg.inv(true_motion[k]), points_pet)
        est = petref_to_t1w @ np.linalg.inv(estimated[k])
        true = true_pet_to_t1w @ true_motion[k]
        end_to_end[k] = mean_displacement(est, true, points_frame)
    return RegistrationErrors(
        motion_per_frame=motion,
        motion_mean=float(motion[frames].mean()),
        coreg=float(coreg),
        end_to_end_per_frame=end_to_end,
        reference_pose=reference_pose,
    )


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]
