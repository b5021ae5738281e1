"""Adapters from the registry's ``(FitData, FitOptions)`` calls to each model's own functions.

Regional adapters return one result per TAC; voxel-wise adapters a
:class:`~tspo_bidsapp.kinetics.voxelwise.VoxelwiseResult`. No defaults are set here: they live
in the model modules (``tstar``), the registry's rules (``k2'``, delay) or :class:`FitOptions`.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.kinetics.bfm import fit_srtm2_bfm, fit_srtm_bfm
from tspo_bidsapp.kinetics.bfm_block import fit_srtm_bfm_block
from tspo_bidsapp.kinetics.bfm_spatial import fit_srtm_bfm_spatial, fit_srtm_bfm_two_pass
from tspo_bidsapp.kinetics.frames import InterpolatedReference
from tspo_bidsapp.kinetics.logan import DEFAULT_TSTAR_MIN, fit_logan, logan_dvr_map
from tspo_bidsapp.kinetics.lrsc import fit_srtm_lrsc
from tspo_bidsapp.kinetics.mrtm import DEFAULT_MRTM_TSTAR_MIN, fit_mrtm2, mrtm2_dvr_map
from tspo_bidsapp.kinetics.plasma import PlasmaFrames
from tspo_bidsapp.kinetics.plasma_bfm import one_tcm_bfm
from tspo_bidsapp.kinetics.plasma_compartment import fit_compartment
from tspo_bidsapp.kinetics.plasma_graphical import (
    DEFAULT_PLASMA_TSTAR_MIN,
    fit_graphical,
    graphical_vt_map,
)
from tspo_bidsapp.kinetics.srtm import fit_srtm_regions
from tspo_bidsapp.kinetics.srtm2 import fit_srtm2
from tspo_bidsapp.kinetics.suvr import fit_suvr
from tspo_bidsapp.kinetics.suvr import suvr_map as _suvr_map

__all__ = ["DEFAULT_MRTM_TSTAR_MIN", "DEFAULT_PLASMA_TSTAR_MIN", "DEFAULT_TSTAR_MIN"]


def srtm(d, o):
    return fit_srtm_regions(d.start_min, d.end_min, d.ref_tac, d.tacs, weights=o.weights)


def srtm2(d, o):
    ref = InterpolatedReference(d.start_min, d.end_min, d.ref_tac)
    return [fit_srtm2(ref.start, ref.end, ref, y, o.k2prime, weights=o.weights, region=n)
            for n, y in d.tacs.items()]  # fmt: skip


def logan(d, o):
    return [fit_logan(d.start_min, d.end_min, d.ref_tac, y, k2prime=o.k2prime,
                      tstar_min=o.tstar_min, weights=o.weights, region=n)
            for n, y in d.tacs.items()]  # fmt: skip


def mrtm2(d, o):
    return [fit_mrtm2(d.start_min, d.end_min, d.ref_tac, y, o.k2prime, tstar_min=o.tstar_min,
                      weights=o.weights, region=n)
            for n, y in d.tacs.items()]  # fmt: skip


def suvr(d, o):
    return [fit_suvr(d.start_min, d.end_min, d.ref_tac, y, window=o.suvr_window_min, region=n)
            for n, y in d.tacs.items()]  # fmt: skip


#: Voxel-wise SRTM estimators (``--voxelwise-estimator``): basis functions (Gunn 1997), two-pass
#: basis functions (voxel k2', then SRTM2; Wu & Carson 2002), the same with a spatial k2a prior,
#: LRSC (Zhou 2003). The last two need 4-D images (:mod:`~tspo_bidsapp.kinetics.bfm_spatial`).
SRTM_MAP_ESTIMATORS = ("bfm", "bfm-two-pass", "bfm-spatial", "bfm-block", "lrsc")
# bfm-block: half the brain-wide BPND error of bfm (0.036 vs 0.072), no voxel on the grid's edge, in
# 1.4x the GEMM floor, and lesion phenotypes as well over 20 synthetic participants (194 vs 191
# of 258): docs/kinetics.md.
DEFAULT_SRTM_MAP_ESTIMATOR = "bfm-block"
#: How each estimator is described in the report's methods (text, reference keys).
SRTM_MAP_METHODS = {
    "bfm": ("basis functions [bfm]", ("bfm",)),
    "bfm-two-pass": ("basis functions in two passes: k2' from a pilot SRTM fit, then SRTM2 "
                     "[bfm, srtm2]", ("bfm", "srtm2")),
    "bfm-spatial": ("two-pass basis functions with a spatially smoothed k2a prior, kept unless "
                    "a voxel's data reject it [bfm, srtm2]", ("bfm", "srtm2")),
    "bfm-block": ("SRTM2 basis functions with k2' from a pilot SRTM fit and the k2a of each "
                  "2x2x2-voxel block as a prior, kept unless a voxel's data reject it "
                  "(likelihood-ratio test) [bfm, srtm2]", ("bfm", "srtm2")),
    "lrsc": ("linear regression with spatial constraint [lrsc]", ("lrsc",)),
}  # fmt: skip


def srtm_map(d, data, mask, o):
    name = o.voxelwise_estimator or DEFAULT_SRTM_MAP_ESTIMATOR
    args = (d.start_min, d.end_min, d.ref_tac, data)
    if name == "lrsc":
        return fit_srtm_lrsc(*args, mask=mask, weights=o.weights)
    if name == "bfm-spatial" and np.ndim(data) == 4:
        return fit_srtm_bfm_spatial(*args, mask=mask, weights=o.weights, k2prime=o.k2prime)
    if name == "bfm-block" and np.ndim(data) == 4:
        return fit_srtm_bfm_block(*args, mask=mask, weights=o.weights, k2prime=o.k2prime)
    if name in ("bfm-spatial", "bfm-block"):  # no 3-D neighbourhood (a list of TACs): in info
        return fit_srtm_bfm_two_pass(*args, mask=mask, weights=o.weights, k2prime=o.k2prime)
    if name == "bfm-two-pass":
        return fit_srtm_bfm_two_pass(*args, mask=mask, weights=o.weights, k2prime=o.k2prime)
    if name != "bfm":
        raise ValueError(f"unknown voxel-wise estimator {name!r}; choose from "
                         f"{SRTM_MAP_ESTIMATORS}")  # fmt: skip
    return fit_srtm_bfm(*args, mask=mask, weights=o.weights)


def srtm2_map(d, data, mask, o):
    return fit_srtm2_bfm(d.start_min, d.end_min, d.ref_tac, data, float(o.k2prime), mask=mask,
                         weights=o.weights)  # fmt: skip


def logan_map(d, data, mask, o):
    return logan_dvr_map(d.start_min, d.end_min, d.ref_tac, data, k2prime=o.k2prime,
                         tstar_min=o.tstar_min, weights=o.weights, mask=mask)  # fmt: skip


def mrtm2_map(d, data, mask, o):
    return mrtm2_dvr_map(d.start_min, d.end_min, d.ref_tac, data, float(o.k2prime),
                         tstar_min=o.tstar_min, weights=o.weights, mask=mask)  # fmt: skip


def suvr_map(d, data, mask, o):
    return _suvr_map(d.start_min, d.end_min, d.ref_tac, data, mask=mask, window=o.suvr_window_min)


def _frames(d, o) -> PlasmaFrames:
    return PlasmaFrames(d.input_function, d.start_min, d.end_min, delay_min=o.delay_min)


def _compartment(model):
    def fit(d, o):
        pf = _frames(d, o)
        return [fit_compartment(pf, y, model, weights=o.weights, vb=o.vb, region=n)
                for n, y in d.tacs.items()]  # fmt: skip

    return fit


def _graphical(model):
    def fit(d, o):
        pf = _frames(d, o)
        vb = 0.0 if o.vb is None else o.vb
        return [fit_graphical(pf, y, model, tstar_min=o.tstar_min, weights=o.weights, vb=vb,
                              region=n) for n, y in d.tacs.items()]  # fmt: skip

    def voxelwise(d, data, mask, o):
        vb = 0.0 if o.vb is None else o.vb
        return graphical_vt_map(_frames(d, o), data, model, tstar_min=o.tstar_min,
                                weights=o.weights, vb=vb, mask=mask)  # fmt: skip

    return fit, voxelwise


def one_tcm_map(d, data, mask, o):
    return one_tcm_bfm(_frames(d, o), data, vb=o.vb, weights=o.weights, mask=mask)


one_tcm = _compartment("1tcm")
two_tcm = _compartment("2tcm")
two_tcm_1k = _compartment("2tcm1k")
logan_plasma, logan_plasma_map = _graphical("logan-plasma")
ma1, ma1_map = _graphical("ma1")
