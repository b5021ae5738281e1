"""Anatomy: SAMSEG whole-brain + MS-lesion segmentation and the TSPO-MS region set.

Plain numpy/nibabel functions; the nipype wrappers live in ``tspo_bidsapp.interfaces``.
"""
