"""PET registration with ANTsPy: motion correction, PET -> T1w co-registration, transforms.

Plain functions (numpy / nibabel / ANTsPy) that know nothing of nipype; the nipype
interfaces in :mod:`tspo_bidsapp.interfaces.ants` wrap them.
"""

from .confounds import DEFAULT_FD_THRESHOLD_MM, confounds_description, motion_confounds
from .coreg import coregister_pet_to_t1w, resample_pet_to_t1w, resample_to_t1w
from .hmc import MotionCorrectionResult, correct_motion, grid_center_ras
from .transforms import (
    framewise_displacement,
    itk_to_ras_world,
    mean_displacement,
    ras_to_lps,
    read_itk_transform,
    rigid_matrix,
    rigid_parameters,
    write_itk_transform,
)

__all__ = [
    "DEFAULT_FD_THRESHOLD_MM",
    "MotionCorrectionResult",
    "confounds_description",
    "coregister_pet_to_t1w",
    "correct_motion",
    "framewise_displacement",
    "grid_center_ras",
    "itk_to_ras_world",
    "mean_displacement",
    "motion_confounds",
    "ras_to_lps",
    "read_itk_transform",
    "resample_pet_to_t1w",
    "resample_to_t1w",
    "rigid_matrix",
    "rigid_parameters",
    "write_itk_transform",
]
