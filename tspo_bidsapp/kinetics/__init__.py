"""Kinetic models for reference-tissue TSPO PET. Times are in minutes throughout.

Regional: :func:`fit_srtm` (NLLS), :func:`fit_logan`, :func:`fit_mrtm`, :func:`fit_mrtm2`,
:func:`fit_suvr`, all returning :class:`KineticResult` rows (:data:`KINPAR_COLUMNS`).
Voxel-wise (vectorised, chunked): :func:`fit_srtm_bfm`, :func:`fit_srtm2_bfm`,
:func:`logan_dvr_map`, :func:`mrtm2_dvr_map`, :func:`suvr_map`.
"""

from tspo_bidsapp.kinetics.bfm import fit_srtm2_bfm, fit_srtm_bfm, reliable_k2prime
from tspo_bidsapp.kinetics.frames import InterpolatedReference, frame_weights, nonempty_frames
from tspo_bidsapp.kinetics.kinpar import KINPAR_COLUMNS, KineticResult, kinpar_table
from tspo_bidsapp.kinetics.logan import fit_logan, logan_dvr_map
from tspo_bidsapp.kinetics.mrtm import fit_mrtm, fit_mrtm2, mrtm2_dvr_map
from tspo_bidsapp.kinetics.srtm import fit_srtm, fit_srtm_regions
from tspo_bidsapp.kinetics.suvr import fit_suvr, suvr_map
from tspo_bidsapp.kinetics.voxelwise import VoxelwiseResult

__all__ = [
    "KINPAR_COLUMNS",
    "InterpolatedReference",
    "KineticResult",
    "VoxelwiseResult",
    "fit_logan",
    "fit_mrtm",
    "fit_mrtm2",
    "fit_srtm",
    "fit_srtm2_bfm",
    "fit_srtm_bfm",
    "fit_srtm_regions",
    "fit_suvr",
    "frame_weights",
    "kinpar_table",
    "logan_dvr_map",
    "mrtm2_dvr_map",
    "nonempty_frames",
    "reliable_k2prime",
    "suvr_map",
]
