"""Images between nibabel (RAS affines) and ANTsPy (LPS origin/direction), and ANTs settings."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np

from .transforms import LPS_FROM_RAS

#: Default seed for the random metric sampling of ANTs registrations (reproducible runs).
DEFAULT_SEED = 20120401

_THREAD_VARIABLES = ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS")


@contextlib.contextmanager
def ants_settings(omp_nthreads: int = 1, seed: int | None = DEFAULT_SEED) -> Iterator[None]:
    """Run ANTs with ``omp_nthreads`` threads and a fixed random seed, then restore both.

    ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` when its threading first starts in a
    process, so the thread count is only guaranteed when this is the first ANTs use of the
    process (a nipype node) or when the variable is exported before the run starts.
    """
    saved_env = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(max(int(omp_nthreads), 1))
    import ants

    saved_seed = ants.config._random_seed
    ants.config._random_seed = seed
    try:
        yield
    finally:
        ants.config._random_seed = saved_seed
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def geometry_from_affine(affine: np.ndarray) -> tuple[tuple, tuple, np.ndarray]:
    """ANTs ``(origin, spacing, direction)`` (LPS) of a NIfTI RAS affine."""
    affine = np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = LPS_FROM_RAS[:3, :3] @ (affine[:3, :3] / spacing)
    origin = LPS_FROM_RAS[:3, :3] @ affine[:3, 3]
    return tuple(origin), tuple(spacing), direction


def affine_from_geometry(origin, spacing, direction) -> np.ndarray:
    """NIfTI RAS affine of an ANTs image geometry (inverse of :func:`geometry_from_affine`)."""
    affine = np.eye(4)
    affine[:3, :3] = LPS_FROM_RAS[:3, :3] @ np.asarray(direction) * np.asarray(spacing)
    affine[:3, 3] = LPS_FROM_RAS[:3, :3] @ np.asarray(origin)
    return affine


def array_to_ants(data: np.ndarray, affine: np.ndarray):
    """3D ``ants.ANTsImage`` (float32) from a voxel array and its RAS affine."""
    import ants

    origin, spacing, direction = geometry_from_affine(affine)
    return ants.from_numpy(
        np.ascontiguousarray(data, dtype=np.float32),
        origin=origin,
        spacing=spacing,
        direction=direction,
    )


def nifti_to_ants(img: nib.spatialimages.SpatialImage):
    """3D ``ants.ANTsImage`` from a 3D nibabel image."""
    data = np.asanyarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"expected a 3D image, got shape {data.shape}")
    return array_to_ants(data, img.affine)


def ants_to_nifti(image, header: nib.Nifti1Header | None = None) -> nib.Nifti1Image:
    """float32 NIfTI image from a 3D ``ants.ANTsImage``."""
    affine = affine_from_geometry(image.origin, image.spacing, image.direction)
    out = nib.Nifti1Image(image.numpy().astype(np.float32), affine, header)
    out.header.set_data_dtype(np.float32)
    out.header.set_xyzt_units("mm", "sec")
    return out


def load_pet_4d(path: str | Path) -> nib.Nifti1Image:
    """Load a dynamic PET as a 4D image; a clear error names the file when it is not 4D."""
    path = Path(path)
    img = nib.load(str(path))
    if img.ndim == 3:
        img = nib.Nifti1Image(np.asanyarray(img.dataobj)[..., None], img.affine, img.header)
    if img.ndim != 4:
        raise ValueError(f"{path}: PET image must be 3D or 4D, got {img.ndim} dimensions")
    return img


def gaussian_sigma_mm(fwhm_mm: float) -> float:
    """Gaussian sigma (mm) of a kernel of full width at half maximum ``fwhm_mm``."""
    return float(fwhm_mm) / np.sqrt(8.0 * np.log(2.0))


def smooth(image, fwhm_mm: float):
    """Gaussian smoothing of an ``ants.ANTsImage`` (FWHM in mm; 0 returns the image)."""
    import ants

    if fwhm_mm <= 0:
        return image
    return ants.smooth_image(image, gaussian_sigma_mm(fwhm_mm), sigma_in_physical_coordinates=True)


def mask_world_points(mask_img: nib.spatialimages.SpatialImage, step: int = 1) -> np.ndarray:
    """RAS world coordinates (mm, N x 3) of the nonzero voxels of a mask (every ``step``-th)."""
    data = np.asanyarray(mask_img.dataobj)
    ijk = np.argwhere(data > 0)[::step]
    return ijk @ mask_img.affine[:3, :3].T + mask_img.affine[:3, 3]
