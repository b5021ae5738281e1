"""Frame-wise head-motion correction of dynamic PET with ANTsPy rigid registrations.

Frames starting before ``start_time_s`` (perfusion-dominated, noisy in TSPO scans) are not
registered and take the transform of the first registered frame. The others are registered
rigidly (Mattes mutual information) to a reference: the frame-duration-weighted average of
the registered frames, rebuilt after each pass (two passes by default). Frames are lightly
smoothed before registration. Memory is one ``n_frames x volume`` float32 array plus one
reference-sized image per registered frame; nothing grows with ``n_frames**2``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import nibabel as nib
import numpy as np

from .images import DEFAULT_SEED, ants_settings, array_to_ants, smooth
from .transforms import ants_transform_to_matrix, lps_to_ras, matrix_to_ants_transform

LOGGER = logging.getLogger("tspo_bidsapp.registration")

#: Multi-resolution scheme of the frame registrations (coarse to fine).
#: Frames are already smoothed, so the finest level is half the PET resolution; on 2 mm
#: data this recovers known motion to < 0.15 mm (see tests/test_hmc.py).
HMC_SHRINK_FACTORS = (4, 2)
HMC_SMOOTHING_SIGMAS_VOX = (2, 1)
HMC_ITERATIONS = (100, 50)
HMC_ITERATIONS_FIRST_PASS = (50, 20)


@dataclass
class MotionCorrectionResult:
    """Per-frame transforms and motion-corrected data (all on the input PET grid)."""

    itk_matrices: np.ndarray  # (n_frames, 4, 4) LPS, petref point -> frame point
    registered: np.ndarray  # (n_frames,) bool: frame was registered (else copied)
    corrected: np.ndarray  # (X, Y, Z, n_frames) float32, frames resampled onto petref
    petref: np.ndarray  # (X, Y, Z) float32 reference image
    affine: np.ndarray  # RAS affine of the PET grid

    @property
    def head_motion_ras(self) -> np.ndarray:
        """(n, 4, 4) RAS maps: anatomy at ``x`` in petref is at ``M @ x`` in the frame."""
        return np.stack([lps_to_ras(m) for m in self.itk_matrices])


def registered_frames(frame_start_s: np.ndarray, start_time_s: float) -> np.ndarray:
    """Boolean mask of the frames that are registered: those starting at/after ``start_time_s``."""
    starts = np.asarray(frame_start_s, dtype=float)
    mask = starts >= float(start_time_s)
    if not mask.any():
        raise ValueError(
            f"no PET frame starts at or after the motion-correction start time "
            f"({start_time_s:g} s; last frame starts at {starts.max():g} s): "
            "lower --hmc-start-time or use --hmc-off"
        )
    return mask


def weighted_average(
    frames: np.ndarray, weights: np.ndarray, indices: np.ndarray | None = None
) -> np.ndarray:
    """Weighted mean of ``frames[..., indices]`` (weights: frame durations in s), no copy."""
    weights = np.asarray(weights, dtype=np.float64)
    indices = np.arange(frames.shape[-1]) if indices is None else np.asarray(indices)
    out = np.zeros(frames.shape[:-1], dtype=np.float64)
    for k, w in zip(indices, weights, strict=True):
        out += w * frames[..., k]
    return (out / weights.sum()).astype(np.float32)


def register_rigid_to_reference(
    reference,
    moving,
    *,
    initial_itk: np.ndarray | None = None,
    iterations: tuple[int, ...] = HMC_ITERATIONS,
    sampling_rate: float = 0.2,
) -> np.ndarray:
    """Rigid (MI) registration of ``moving`` to ``reference`` (``ants.ANTsImage``).

    Returns the 4x4 LPS ITK matrix mapping reference points to moving points.
    Threads and seed are taken from the enclosing :func:`ants_settings`.
    """
    import ants

    initial = "Identity"
    tmp = None
    if initial_itk is not None:
        import tempfile

        tmp = tempfile.NamedTemporaryFile(suffix=".mat", delete=False)
        tmp.close()
        ants.write_transform(matrix_to_ants_transform(initial_itk), tmp.name)
        initial = tmp.name
    try:
        result = ants.registration(
            fixed=reference,
            moving=moving,
            type_of_transform="Rigid",
            initial_transform=initial,
            aff_metric="mattes",
            aff_sampling=32,
            aff_random_sampling_rate=sampling_rate,
            aff_iterations=tuple(iterations),
            aff_shrink_factors=HMC_SHRINK_FACTORS,
            aff_smoothing_sigmas=HMC_SMOOTHING_SIGMAS_VOX,
        )
        return ants_transform_to_matrix(ants.read_transform(result["fwdtransforms"][0]))
    finally:
        if tmp is not None:
            import os

            os.unlink(tmp.name)


def resample_frame(frame, reference, itk_matrix: np.ndarray) -> np.ndarray:
    """Resample one ``ants.ANTsImage`` frame onto ``reference`` (linear) -> numpy array."""
    import ants

    if np.allclose(itk_matrix, np.eye(4)) and frame.shape == reference.shape:
        return frame.numpy()
    tx = matrix_to_ants_transform(itk_matrix)
    return ants.apply_ants_transform_to_image(tx, frame, reference, interpolation="linear").numpy()


#: Frames starting before this time (s) are not registered (too few counts to register).
DEFAULT_HMC_START_TIME_S = 120.0


def correct_motion(
    pet: nib.spatialimages.SpatialImage,
    frame_start_s: np.ndarray,
    frame_duration_s: np.ndarray,
    *,
    start_time_s: float = DEFAULT_HMC_START_TIME_S,
    smooth_fwhm_mm: float = 6.0,
    n_passes: int = 2,
    enabled: bool = True,
    omp_nthreads: int = 1,
    seed: int | None = DEFAULT_SEED,
) -> MotionCorrectionResult:
    """Estimate and apply frame-wise rigid motion correction of a 4D PET.

    ``frame_start_s`` / ``frame_duration_s`` are in seconds (BIDS sidecar).
    With ``enabled=False`` every transform is the identity and the reference is the
    time-weighted average of the frames starting after ``start_time_s``.
    """
    data = np.asanyarray(pet.dataobj, dtype=np.float32)
    if data.ndim == 3:
        data = data[..., None]
    n_frames = data.shape[3]
    starts = np.asarray(frame_start_s, dtype=float).reshape(-1)
    durations = np.asarray(frame_duration_s, dtype=float).reshape(-1)
    if starts.size != n_frames or durations.size != n_frames:
        raise ValueError(
            f"PET has {n_frames} frames but FrameTimesStart has {starts.size} and "
            f"FrameDuration {durations.size} values"
        )
    affine = pet.affine
    if enabled or np.any(starts >= start_time_s):
        late = registered_frames(starts, start_time_s)
    else:  # motion correction off and no late frame: the reference averages all frames
        late = np.ones(n_frames, bool)
    late_idx = np.flatnonzero(late)
    weights = durations[late_idx]
    matrices = np.tile(np.eye(4), (n_frames, 1, 1))

    if enabled:
        with ants_settings(omp_nthreads, seed):
            smoothed = [
                smooth(array_to_ants(data[..., k], affine), smooth_fwhm_mm) for k in late_idx
            ]
            reference = weighted_average(data, weights, late_idx)
            for pass_index in range(max(int(n_passes), 1)):
                ref_img = smooth(array_to_ants(reference, affine), smooth_fwhm_mm)
                final = pass_index + 1 == n_passes
                for j, k in enumerate(late_idx):
                    matrices[k] = register_rigid_to_reference(
                        ref_img,
                        smoothed[j],
                        iterations=HMC_ITERATIONS if final else HMC_ITERATIONS_FIRST_PASS,
                        sampling_rate=0.2 if final else 0.1,
                    )
                LOGGER.info(
                    "motion correction pass %d/%d done (%d frames)",
                    pass_index + 1,
                    n_passes,
                    late_idx.size,
                )
                if pass_index + 1 < n_passes:
                    reference = _corrected_average(data, affine, matrices, late_idx, weights)
        matrices[~late] = matrices[late_idx[0]]

    corrected = np.empty(data.shape, dtype=np.float32)
    with ants_settings(omp_nthreads, seed):
        ref_grid = array_to_ants(data[..., 0], affine)
        for k in range(n_frames):
            corrected[..., k] = resample_frame(
                array_to_ants(data[..., k], affine), ref_grid, matrices[k]
            )
    petref = weighted_average(corrected, weights, late_idx)
    return MotionCorrectionResult(
        itk_matrices=matrices,
        registered=late if enabled else np.zeros(n_frames, bool),
        corrected=corrected,
        petref=petref,
        affine=affine,
    )


def _corrected_average(data, affine, matrices, frame_idx, weights) -> np.ndarray:
    """Time-weighted average of frames ``frame_idx`` after resampling with ``matrices``."""
    ref_grid = array_to_ants(data[..., frame_idx[0]], affine)
    out = np.zeros(data.shape[:3], dtype=np.float64)
    for k, w in zip(frame_idx, weights, strict=True):
        out += w * resample_frame(array_to_ants(data[..., k], affine), ref_grid, matrices[k])
    return (out / np.sum(weights)).astype(np.float32)


def grid_center_ras(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """RAS world coordinates (mm) of the centre of a voxel grid."""
    centre_vox = (np.asarray(shape[:3], dtype=float) - 1.0) / 2.0
    return affine[:3, :3] @ centre_vox + affine[:3, 3]
