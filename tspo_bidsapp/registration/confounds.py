"""Motion confounds table of the PET motion correction (parameters, FD, outlier flags)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from tspo_bidsapp.io.derivatives import FD_COLUMN, OUTLIER_COLUMN, THRESHOLD_KEY

from .transforms import FD_SPHERE_RADIUS_MM, framewise_displacement, lps_to_ras, rigid_parameters

LOGGER = logging.getLogger("tspo_bidsapp.registration")

#: Default FD threshold (mm) above which a frame is flagged as a motion outlier.
DEFAULT_FD_THRESHOLD_MM = 1.0


def motion_confounds(
    hmc_itk: np.ndarray,
    centre_ras_mm: np.ndarray,
    *,
    fd_threshold_mm: float = DEFAULT_FD_THRESHOLD_MM,
    source: str = "PET",
) -> pd.DataFrame:
    """One row per frame: trans_x/y/z (mm), rot_x/y/z (rad), framewise_displacement (mm),
    motion_outlier (0/1).

    Parameters describe where the head of each frame is relative to petref (RAS axes,
    rotation about ``centre_ras_mm``, see :data:`CONFOUNDS_DESCRIPTION`). Frames whose FD
    exceeds ``fd_threshold_mm`` are flagged and logged as warnings naming ``source``.
    """
    hmc_itk = np.asarray(hmc_itk, dtype=float).reshape(-1, 4, 4)
    params = np.array(
        [np.concatenate(rigid_parameters(lps_to_ras(m), centre_ras_mm)) for m in hmc_itk]
    )
    fd = framewise_displacement(params[:, :3], params[:, 3:])
    outlier = np.nan_to_num(fd, nan=0.0) > fd_threshold_mm
    table = pd.DataFrame(
        params, columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    )
    table[FD_COLUMN] = fd
    table[OUTLIER_COLUMN] = outlier.astype(int)
    for k in np.flatnonzero(outlier):  # frames are numbered from 1, as in the report
        LOGGER.warning(
            "%s: frame %d moved %.2f mm (framewise displacement) since the previous frame, "
            "above the %.2f mm threshold",
            source,
            k + 1,  # frames are numbered from 1 (log, report, error messages)
            fd[k],
            fd_threshold_mm,
        )
    return table


def confounds_description(centre_ras_mm: np.ndarray, fd_threshold_mm: float) -> dict:
    """JSON sidecar content describing the columns of :func:`motion_confounds`."""
    centre = [round(float(c), 3) for c in centre_ras_mm]
    convention = (
        "Rigid head position of each frame relative to the motion-correction reference "
        "(petref): the anatomy at RAS world point x (mm) in petref is at "
        f"R (x - c) + c + t in the frame, with c = {centre} mm (centre of the petref grid), "
        "t = (trans_x, trans_y, trans_z) and R = Rz(rot_z) Ry(rot_y) Rx(rot_x) about the "
        "RAS world axes. Frames not registered (before the motion-correction start time) "
        "carry the parameters of the first registered frame."
    )
    out = {
        name: {"Description": f"Translation along the {axis} axis. {convention}", "Units": "mm"}
        for name, axis in (("trans_x", "x (R)"), ("trans_y", "y (A)"), ("trans_z", "z (S)"))
    }
    for name, axis in (("rot_x", "x"), ("rot_y", "y"), ("rot_z", "z")):
        out[name] = {"Description": f"Rotation about the {axis} axis. {convention}", "Units": "rad"}
    out[FD_COLUMN] = {
        "Description": (
            "Framewise displacement between a frame and the previous one: sum of absolute "
            "translation differences plus rotation differences converted to arc length on a "
            f"sphere of radius {FD_SPHERE_RADIUS_MM:g} mm (Power et al., NeuroImage "
            "59:2142-2154, 2012). n/a for the first frame."
        ),
        "Units": "mm",
    }
    out[OUTLIER_COLUMN] = {
        "Description": f"1 when framewise_displacement exceeds {fd_threshold_mm:g} mm, else 0.",
        "Levels": {"0": "below threshold", "1": "motion outlier"},
        THRESHOLD_KEY: fd_threshold_mm,
    }
    return out
