"""Rigid PET -> T1w co-registration (mutual information) and one-step resampling to T1w.

The transform is stored the ITK/ANTs way: it maps T1w (fixed) LPS points to petref
(moving) LPS points, so that ``ants.apply_transforms(fixed=T1w, moving=petref, [xfm])``
brings the PET reference into T1w space (the ``from-petref_to-T1w_mode-image`` file).
"""

from __future__ import annotations

import logging
import os
import tempfile

import nibabel as nib
import numpy as np
from scipy import ndimage

from .images import DEFAULT_SEED, ants_settings, ants_to_nifti, array_to_ants, nifti_to_ants
from .transforms import ants_transform_to_matrix, compose, matrix_to_ants_transform

LOGGER = logging.getLogger("tspo_bidsapp.registration")

#: Coarse-to-fine scheme of the PET -> T1w registration (shrink factors, sigmas in mm).
COREG_SHRINK_FACTORS = (8, 4, 2, 1)
COREG_SMOOTHING_SIGMAS_MM = (4, 2, 1, 0)
COREG_ITERATIONS = (500, 250, 100, 20)
#: The anatomical brain mask is dilated by this much (mm) before it restricts the metric.
MASK_DILATION_MM = 8.0


def coregister_pet_to_t1w(
    petref: nib.spatialimages.SpatialImage,
    t1w: nib.spatialimages.SpatialImage,
    *,
    brain_mask: nib.spatialimages.SpatialImage | None = None,
    omp_nthreads: int = 1,
    seed: int | None = DEFAULT_SEED,
    sampling_rate: float = 0.25,
) -> np.ndarray:
    """Rigid Mattes-MI registration of the PET reference to the T1w.

    The registration runs on the PET grid (fixed = petref, moving = T1w, 8x fewer
    samples than the 1 mm T1w grid for 2 mm PET) and is inverted exactly.
    ``brain_mask`` (T1w grid) restricts the metric to the brain when given.
    Returns the 4x4 LPS ITK matrix mapping T1w points to petref points.
    """
    import ants

    fixed = nifti_to_ants(petref)
    moving = nifti_to_ants(t1w)
    moving_mask = None
    if brain_mask is not None:
        mask_data = np.asanyarray(brain_mask.dataobj) > 0
        if mask_data.shape[:3] != t1w.shape[:3]:
            raise ValueError(
                f"brain mask shape {mask_data.shape[:3]} differs from T1w shape {t1w.shape[:3]}"
            )
        mask_data = mask_data[..., 0] if mask_data.ndim == 4 else mask_data
        # Dilate so that the brain edge, the strongest PET/T1w feature, stays in the metric.
        iterations = max(int(round(MASK_DILATION_MM / min(t1w.header.get_zooms()[:3]))), 1)
        dilated = ndimage.binary_dilation(mask_data, iterations=iterations)
        moving_mask = moving.new_image_like(dilated.astype(np.float32))
    with ants_settings(omp_nthreads, seed):
        result = ants.registration(
            fixed=fixed,
            moving=moving,
            type_of_transform="Rigid",
            aff_metric="mattes",
            aff_sampling=32,
            aff_random_sampling_rate=sampling_rate,
            aff_iterations=COREG_ITERATIONS,
            aff_shrink_factors=COREG_SHRINK_FACTORS,
            aff_smoothing_sigmas=COREG_SMOOTHING_SIGMAS_MM,
            smoothing_in_mm=True,
            moving_mask=moving_mask,
        )
        pet_to_t1w_itk = ants_transform_to_matrix(ants.read_transform(result["fwdtransforms"][0]))
    return np.linalg.inv(pet_to_t1w_itk)


def resample_to_t1w(
    image: nib.spatialimages.SpatialImage,
    t1w: nib.spatialimages.SpatialImage,
    coreg_itk: np.ndarray,
    *,
    interpolation: str = "linear",
) -> nib.Nifti1Image:
    """Resample a 3D PET-space image onto the T1w grid with the co-registration."""
    import ants

    out = ants.apply_ants_transform_to_image(
        matrix_to_ants_transform(coreg_itk),
        nifti_to_ants(image),
        nifti_to_ants(t1w),
        interpolation=interpolation,
    )
    return ants_to_nifti(out)


def resample_pet_to_t1w(
    pet_4d: nib.spatialimages.SpatialImage,
    hmc_itk: np.ndarray,
    coreg_itk: np.ndarray,
    t1w_ref: nib.spatialimages.SpatialImage,
    *,
    omp_nthreads: int = 1,
    use_transform_list: bool = True,
) -> nib.Nifti1Image:
    """Bring every (uncorrected) PET frame to T1w space in one interpolation.

    ``hmc_itk`` (n, 4, 4): petref -> frame ITK matrices; ``coreg_itk``: T1w -> petref.
    The T1w point ``y`` samples frame ``k`` at ``hmc_k @ coreg @ y``. With
    ``use_transform_list`` ANTs composes ``[coreg, hmc_k]`` itself (the first transform of
    the list acts first on the point); otherwise the product matrix is used. Both give the
    same single linear interpolation. Output: float32 4D image on the T1w grid.
    """
    import ants

    data = pet_4d.dataobj
    n_frames = pet_4d.shape[3] if len(pet_4d.shape) == 4 else 1
    hmc_itk = np.asarray(hmc_itk, dtype=float).reshape(-1, 4, 4)
    if hmc_itk.shape[0] != n_frames:
        raise ValueError(f"{hmc_itk.shape[0]} motion transforms for {n_frames} PET frames")
    fixed = nifti_to_ants(t1w_ref)
    out = np.empty(t1w_ref.shape[:3] + (n_frames,), dtype=np.float32)
    with ants_settings(omp_nthreads, None), tempfile.TemporaryDirectory() as tmp:
        coreg_file = os.path.join(tmp, "coreg.mat")
        ants.write_transform(matrix_to_ants_transform(coreg_itk), coreg_file)
        for k in range(n_frames):
            frame = np.asarray(data[..., k] if len(pet_4d.shape) == 4 else data, np.float32)
            moving = array_to_ants(frame, pet_4d.affine)
            if use_transform_list:
                hmc_file = os.path.join(tmp, f"hmc{k:04d}.mat")
                ants.write_transform(matrix_to_ants_transform(hmc_itk[k]), hmc_file)
                warped = ants.apply_transforms(fixed, moving, [coreg_file, hmc_file])
            else:
                warped = ants.apply_ants_transform_to_image(
                    matrix_to_ants_transform(compose(hmc_itk[k], coreg_itk)), moving, fixed
                )
            out[..., k] = warped.numpy()
    img = nib.Nifti1Image(out, t1w_ref.affine)
    img.header.set_xyzt_units("mm", "sec")
    return img
