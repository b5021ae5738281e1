"""Two-pass and spatially constrained voxel-wise SRTM by basis functions.

Two-pass (``bfm-two-pass``): SRTM basis functions (Gunn et al. 1997) on every
``pilot_stride``-th voxel give the median reliable ``k2'``
(:func:`~tspo_bidsapp.kinetics.bfm.reliable_k2prime`), then SRTM2 basis functions (Wu & Carson
2002, J Cereb Blood Flow Metab 22:1440) with that ``k2'`` fit every voxel: one linear parameter
per basis instead of two, so less noise in BPND and no voxel on the θ3 grid's edge in our
phantom, in 0.85x the CPU time of one 200-function SRTM pass (128 functions here).

Spatial constraint (``bfm-spatial``): the SRTM2 ``log k2a`` map is smoothed within the mask
(Gaussian, ``fwhm_vox``) as a spatial prior, in the spirit of Zhou et al. 2003 (NeuroImage
18:975). A voxel takes the prior's basis function (R1 refitted, linear) unless its own data
reject it: ``wrss(prior) - wrss(own) ≥ χ²₁(0.95) σ²``, ``σ² = wrss(own)/(n_frames - 2)`` (a
likelihood-ratio test). Costs one smoothing of a 3-D map and one extra pass of
(voxels x frames) dot products, not a (voxels x basis) product: 1.5x the CPU time of one SRTM
basis-function pass, BPND error halved on the benchmark phantom (docs/kinetics.md).
Times in minutes; rates in 1/min.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.kinetics.bfm import (
    _setup,
    fit_srtm2_bfm,
    fit_srtm_bfm,
    reliable_k2prime,
    srtm2_basis,
)
from tspo_bidsapp.kinetics.lrsc import DEFAULT_FWHM_VOX, smooth_within_mask
from tspo_bidsapp.kinetics.simulate import DEFAULT_STEP_MIN
from tspo_bidsapp.kinetics.voxelwise import (
    DEFAULT_CHUNK_VOXELS,
    VoxelChunks,
    VoxelwiseResult,
)

DEFAULT_PILOT_STRIDE = 8  # first pass of the two-pass fit: every 8th brain voxel
#: θ3 functions of the two-pass fits (0.01-0.6/min, 3.3 % apart): on the benchmark phantom the
#: same BPND error as 200 (0.0349 vs 0.0349) in 0.75x the CPU time; noise dominates the grid step.
TWO_PASS_N_BASIS = 128
CHI2_1_95 = 3.841  # χ² (1 degree of freedom) 95 % point: the voxel's data reject the prior


def fit_srtm_bfm_two_pass(
    start_min,
    end_min,
    ref_tac,
    data: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    k2prime: float | None = None,
    pilot_stride: int = DEFAULT_PILOT_STRIDE,
    n_basis: int = TWO_PASS_N_BASIS,
    **grid,
) -> VoxelwiseResult:
    """Two-pass SRTM maps of ``data`` (..., n_frames); ``k2prime`` (1/min) given: no first pass.

    ``grid``: θ3 grid / chunk keywords of :func:`fit_srtm2_bfm`. Maps as :func:`fit_srtm2_bfm`
    (as :func:`fit_srtm_bfm` when no pilot voxel is reliable, ``info["k2prime_source"]``).
    """
    source, grid = "user", {**grid, "n_basis": n_basis}
    if k2prime is None:
        k2prime, fallback = pilot_k2prime(start_min, end_min, ref_tac, data, mask, weights,
                                          pilot_stride, grid)  # fmt: skip
        if fallback is not None:
            return fallback
        source = "median-voxel-srtm"
    res = fit_srtm2_bfm(start_min, end_min, ref_tac, data, k2prime, mask=mask, weights=weights,
                        **grid)  # fmt: skip
    res.info.update(model="srtm_bfm_two_pass", k2prime_source=source,
                    pilot_stride=int(pilot_stride))  # fmt: skip
    return res


def pilot_k2prime(start_min, end_min, ref_tac, data, mask, weights, pilot_stride, grid, tacs=None):
    """``(k2', None)``: median reliable SRTM ``k2'`` (1/min) of every ``pilot_stride``-th voxel
    (or of the pilot ``tacs`` (voxels, frames) if given);
    ``(None, one-pass SRTM result)`` when no pilot voxel is reliable (no binding to take it from).

    ``grid``: θ3 grid / chunk keywords of :func:`~tspo_bidsapp.kinetics.bfm.fit_srtm_bfm`.
    """
    data = np.asanyarray(data)
    if tacs is None:
        full = np.ones(data.shape[:-1], bool) if mask is None else np.asarray(mask, bool)
        pilot = np.zeros(full.shape, bool)
        pilot.flat[np.flatnonzero(full)[:: max(int(pilot_stride), 1)]] = True
        tacs = data[pilot]  # (pilot voxels, frames): maps of the pilot's size only
    first = fit_srtm_bfm(start_min, end_min, ref_tac, tacs, weights=weights, **grid)
    try:
        return reliable_k2prime(first), None
    except ValueError:
        res = fit_srtm_bfm(start_min, end_min, ref_tac, data, mask=mask, weights=weights, **grid)
        res.info["k2prime_source"] = "none: no reliable voxel, SRTM basis functions"
        return None, res


@np.errstate(divide="ignore", invalid="ignore")
def fit_srtm_bfm_spatial(
    start_min,
    end_min,
    ref_tac,
    data: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    k2prime: float | None = None,
    fwhm_vox: float = DEFAULT_FWHM_VOX,
    threshold: float = CHI2_1_95,
    n_basis: int = TWO_PASS_N_BASIS,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    step_min: float = DEFAULT_STEP_MIN,
    **grid,
) -> VoxelwiseResult:
    """Two-pass SRTM maps of a 4-D ``data`` (x, y, z, frames) with the spatial k2a prior.

    Maps as :func:`fit_srtm2_bfm`; ``info["n_prior"]``: voxels that took the prior.
    """
    data = np.asanyarray(data)
    if data.ndim != 4:
        raise ValueError("the spatially constrained fit needs a 4-D image (x, y, z, frames)")
    res = fit_srtm_bfm_two_pass(start_min, end_min, ref_tac, data, mask=mask, weights=weights,
                                k2prime=k2prime, n_basis=n_basis, chunk_voxels=chunk_voxels,
                                step_min=step_min,
                                **grid)  # fmt: skip
    if "k2prime" not in res.info:  # one-pass SRTM fallback: no k2' to build the prior on
        return res
    maps, k2p = res.maps, res.info["k2prime"]
    grid_k2a = res.info["theta3_grid"]
    ref, sw = _setup(start_min, end_min, ref_tac, weights, step_min)
    unit, norm = srtm2_basis(ref, sw, grid_k2a, k2p)
    unit, sw = unit.astype(np.float32), sw.astype(np.float32)
    fitted = np.isfinite(maps["k2a"])
    log_k2a = np.where(fitted, np.log(maps["k2a"]), 0.0).astype(np.float32)
    prior = smooth_within_mask(log_k2a[..., None], fitted, fwhm_vox)[..., 0]
    step = np.log(grid_k2a[1] / grid_k2a[0])
    chunks = VoxelChunks(data, mask, chunk_voxels)

    def per_voxel(m):
        return m.reshape(-1, order=chunks.order)[chunks.index]

    r1, k2a, wrss = (per_voxel(maps[n]).astype(np.float64) for n in ("R1", "k2a", "wrss"))
    prior_v = per_voxel(prior)
    own = np.rint(np.log(k2a / grid_k2a[0]) / step)
    p_own = r1 * norm[np.clip(np.nan_to_num(own), 0, grid_k2a.size - 1).astype(int)]
    idx = np.clip(np.rint((prior_v - np.log(grid_k2a[0])) / step), 0, grid_k2a.size - 1)
    idx = idx.astype(np.intp)
    p_prior = np.zeros(r1.shape, np.float64)
    for sl, block in chunks:  # voxels not fitted in the first pass (NaN R1) are not changed
        p_prior[sl] = np.einsum("ij,ij->i", np.multiply(block, sw, dtype=np.float32), unit[idx[sl]])
    p_prior = np.clip(p_prior, 0.0, None)
    gain = p_own.astype(np.float64) ** 2 - p_prior**2  # wrss(prior) - wrss(own) >= 0
    take = np.isfinite(r1) & (gain < threshold * wrss / max(ref.n_frames - 2, 1))
    new_r1 = np.where(take, p_prior / norm[idx], r1)
    new_k2a = np.where(take, grid_k2a[idx], k2a)
    values = {"R1": new_r1, "k2": new_r1 * k2p, "BPND": new_r1 * k2p / new_k2a - 1.0,
              "k2a": new_k2a, "wrss": np.where(take, wrss + gain, wrss)}  # fmt: skip
    edge = np.where(take, (idx == 0) | (idx == grid_k2a.size - 1), per_voxel(maps["edge"]))
    for name, v in (*values.items(), ("edge", edge)):  # in place where the map is a view
        flat = maps[name].reshape(-1, order=chunks.order)
        flat[chunks.index] = v
        if not np.shares_memory(flat, maps[name]):
            maps[name] = flat.reshape(maps[name].shape, order=chunks.order)
    res.info.update(model="srtm_bfm_spatial", fwhm_vox=float(fwhm_vox),
                    prior_threshold=float(threshold), n_prior=int(take.sum()),
                    n_edge=int(edge.sum()))  # fmt: skip
    return res
