"""Synthetic anatomy from the MNI152 2009 template that nilearn ships offline.

The template, its GM/WM probability maps and brain mask are resampled onto a cropped
isotropic grid (the "T1w grid"); every voxel gets one integer tissue class. Structures
nilearn has no offline atlas for (thalamus, choroid plexus, cerebellum) are drawn as
ellipsoids in MNI millimetres (coordinates read off the MNI152 2009c template).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

# Tissue classes of the simulation (values of ``sub-XX_tissue.nii.gz``).
BACKGROUND = 0
CSF = 1
GM = 2
NAWM = 3
CEREBELLAR_GM = 4
THALAMUS = 5
CHOROID_PLEXUS = 6
PERILESIONAL_WM = 7
RIM_ACTIVE_CORE = 8
RIM_ACTIVE_RIM = 9
OVERALL_ACTIVE_CORE = 10
OVERALL_ACTIVE_RIM = 11
INACTIVE_CORE = 12
INACTIVE_RIM = 13

TISSUE_NAMES: dict[int, str] = {
    BACKGROUND: "background",
    CSF: "csf",
    GM: "gm",
    NAWM: "nawm",
    CEREBELLAR_GM: "cerebellar_gm",
    THALAMUS: "thalamus",
    CHOROID_PLEXUS: "choroid_plexus",
    PERILESIONAL_WM: "perilesional_wm",
    RIM_ACTIVE_CORE: "lesion_rim_active_core",
    RIM_ACTIVE_RIM: "lesion_rim_active_rim",
    OVERALL_ACTIVE_CORE: "lesion_overall_active_core",
    OVERALL_ACTIVE_RIM: "lesion_overall_active_rim",
    INACTIVE_CORE: "lesion_inactive_core",
    INACTIVE_RIM: "lesion_inactive_rim",
}
WHITE_MATTER_CLASSES = (NAWM, PERILESIONAL_WM) + tuple(range(RIM_ACTIVE_CORE, INACTIVE_RIM + 1))
# Lesion voxels (the FLAIR-visible lesion) carry a core class; the 2 mm rim classes lie just
# outside the lesion edge, in white matter.
LESION_CLASSES = (RIM_ACTIVE_CORE, OVERALL_ACTIVE_CORE, INACTIVE_CORE)
RIM_CLASSES = (RIM_ACTIVE_RIM, OVERALL_ACTIVE_RIM, INACTIVE_RIM)

# Ellipsoids in MNI152 2009c millimetres: centre (x, y, z), semi-axes (a, b, c).
THALAMUS_ELLIPSOIDS = (
    ((-11.0, -18.0, 7.0), (7.0, 13.0, 8.0)),
    ((11.0, -18.0, 7.0), (7.0, 13.0, 8.0)),
)
# Glomus of the choroid plexus in the trigone (atrium) of each lateral ventricle.
CHOROID_ELLIPSOIDS = (
    ((-27.0, -42.0, 13.0), (5.0, 7.0, 5.0)),
    ((27.0, -42.0, 13.0), (5.0, 7.0, 5.0)),
)
# Posterior fossa: the cerebellar hemispheres and vermis below the tentorium.
CEREBELLUM_ELLIPSOID = ((0.0, -62.0, -38.0), (52.0, 33.0, 25.0))
CEREBELLUM_TOP_Z_MM = -16.0

CROP_MARGIN_MM = 8.0


@dataclass
class Anatomy:
    """Template-derived anatomy on the T1w grid (probabilities in [0, 1])."""

    affine: np.ndarray  # 4x4 voxel -> RAS mm
    template: np.ndarray  # MNI152 T1 intensities, brain only
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray  # bool
    labels: np.ndarray  # uint8 tissue classes, lesions not yet planted

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.labels.shape)

    @property
    def voxel_mm(self) -> float:
        return float(abs(self.affine[0, 0]))

    def world_coords(self) -> np.ndarray:
        """RAS mm coordinates of every voxel centre, shape (3, X, Y, Z)."""
        return voxel_world_coords(self.affine, self.shape)


def voxel_world_coords(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """RAS mm coordinates (3, X, Y, Z) of the voxel centres of a grid."""
    ijk = np.indices(shape, dtype=np.float32).reshape(3, -1)
    xyz = affine[:3, :3].astype(np.float32) @ ijk + affine[:3, 3:4].astype(np.float32)
    return xyz.reshape((3,) + tuple(shape))


@lru_cache(maxsize=1)
def _mni_1mm() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=1)
    affine = template.affine.copy()
    arrays = [
        np.asarray(img.get_fdata(dtype=np.float32))
        for img in (
            template,
            datasets.load_mni152_gm_template(resolution=1),
            datasets.load_mni152_wm_template(resolution=1),
            datasets.load_mni152_brain_mask(resolution=1),
        )
    ]
    return (affine, *arrays)


def cropped_grid(voxel_mm: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Isotropic grid of ``voxel_mm`` covering the template brain plus a margin."""
    affine_1mm, _, _, _, mask = _mni_1mm()
    ijk = np.argwhere(mask > 0.5)
    lo = affine_1mm[:3, :3] @ ijk.min(0) + affine_1mm[:3, 3] - CROP_MARGIN_MM
    hi = affine_1mm[:3, :3] @ ijk.max(0) + affine_1mm[:3, 3] + CROP_MARGIN_MM
    shape = tuple(int(n) for n in np.ceil((hi - lo) / voxel_mm).astype(int) + 1)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = lo
    return affine, shape


def _resample(volume: np.ndarray, src_affine: np.ndarray, dst_affine, dst_shape) -> np.ndarray:
    """Linear resampling between axis-aligned grids (anti-aliased when downsampling)."""
    ratio = abs(dst_affine[0, 0] / src_affine[0, 0])
    if ratio > 1.0:
        volume = ndimage.gaussian_filter(volume, sigma=0.42 * np.sqrt(ratio**2 - 1.0))
    mapping = np.linalg.solve(src_affine, dst_affine)
    return ndimage.affine_transform(
        volume, mapping[:3, :3], offset=mapping[:3, 3], output_shape=dst_shape, order=1
    )


def _ellipsoid(xyz: np.ndarray, centre, radii) -> np.ndarray:
    c = np.asarray(centre, np.float32).reshape(3, 1, 1, 1)
    r = np.asarray(radii, np.float32).reshape(3, 1, 1, 1)
    return (((xyz - c) / r) ** 2).sum(0) <= 1.0


def build_anatomy(voxel_mm: float = 1.0) -> Anatomy:
    """Resample the MNI152 maps to a cropped ``voxel_mm`` grid and label the tissues."""
    affine_1mm, template, gm, wm, mask = _mni_1mm()
    affine, shape = cropped_grid(voxel_mm)
    template, gm, wm, mask = (
        _resample(v, affine_1mm, affine, shape) for v in (template, gm, wm, mask)
    )
    brain = mask > 0.5
    gm = np.clip(gm, 0.0, 1.0) * brain
    wm = np.clip(wm, 0.0, 1.0) * brain
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0) * brain
    template = np.clip(template, 0.0, None) * brain

    labels = np.zeros(shape, np.uint8)
    dominant = np.argmax(np.stack([csf, gm, wm]), axis=0)
    labels[brain] = np.array([CSF, GM, NAWM], np.uint8)[dominant[brain]]

    xyz = voxel_world_coords(affine, shape)
    cerebellum = _ellipsoid(xyz, *CEREBELLUM_ELLIPSOID) & (xyz[2] < CEREBELLUM_TOP_Z_MM)
    labels[cerebellum & (labels == GM)] = CEREBELLAR_GM
    for centre, radii in THALAMUS_ELLIPSOIDS:
        inside = _ellipsoid(xyz, centre, radii) & np.isin(labels, (GM, NAWM))
        labels[inside] = THALAMUS
    for centre, radii in CHOROID_ELLIPSOIDS:
        labels[_ellipsoid(xyz, centre, radii) & (labels == CSF)] = CHOROID_PLEXUS
    return Anatomy(affine, template, gm, wm, csf, brain, labels)
