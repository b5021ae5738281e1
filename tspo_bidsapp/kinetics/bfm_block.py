"""Voxel-wise SRTM2 basis functions with a local k2a prior, in one pass over the image.

``k2'`` as in the two-pass fit (:func:`~tspo_bidsapp.kinetics.bfm_spatial.fit_srtm_bfm_two_pass`:
median of SRTM basis-function fits of the voxels on a lattice of ``pilot_spacing`` voxels, Gunn
et al. 1997; or the user's value), then SRTM2 basis functions (Wu & Carson 2002, J Cereb Blood Flow Metab 22:1440)
on every voxel, with a spatial prior in the spirit of Zhou et al. 2003 (NeuroImage 18:975):

- voxels are visited block by block (2 x 2 x 2 voxels), so each chunk's projection matrix
  ``P = Y U`` (voxels x basis functions) holds whole blocks; the sum of a block's rows is the
  projection of the block's summed TAC, and its argmax is the SRTM2 fit of the block mean: the
  prior ``k2a`` of the block's voxels, whose projections are read from the same ``P``;
- a voxel takes the prior's basis function (R1 refitted) unless its data reject it by a
  likelihood-ratio test, ``wrss(prior) - wrss(own) ≥ χ²₁(0.95) σ²``,
  ``σ² = wrss(own)/(n_frames - 2)``, as :func:`~tspo_bidsapp.kinetics.bfm_spatial.fit_srtm_bfm_spatial`.

No smoothing of a map and no second pass over the data: the prior costs a row sum and a gather
per chunk. With unit basis rows ``u_b`` and ``p_b = u_b·y`` (``R1 ≥ 0``: ``p ≥ 0``),
``wrss(b) = |y|² - p_b²``. Times in minutes, rates in 1/min.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.kinetics.bfm import (
    DEFAULT_THETA3_MAX,
    DEFAULT_THETA3_MIN,
    _setup,
    srtm2_basis,
    theta3_grid,
)
from tspo_bidsapp.kinetics.bfm_spatial import (
    CHI2_1_95,
    pilot_k2prime,
)
from tspo_bidsapp.kinetics.simulate import DEFAULT_STEP_MIN
from tspo_bidsapp.kinetics.voxelwise import (
    DEFAULT_CHUNK_VOXELS,
    VoxelChunks,
    VoxelwiseResult,
    valid_tacs,
)

#: θ3 functions of the block-prior fit (0.01-0.6/min, 6.7 % apart); docs/kinetics.md has the
#: error for 64/96/128 on the benchmark phantom.
BLOCK_N_BASIS = 64
BLOCK = 2  # voxels per block edge: the prior is the SRTM2 fit of the 2 x 2 x 2 block mean
#: pilot voxels for k2': the mask voxels on a lattice of spacing cbrt(mask voxels / PILOT_VOXELS)
#: (every voxel in small images): median k2' of the HRRT-sized benchmark phantom 0.1088/min from
#: every 8th voxel (two-pass), 0.1088-0.1089 from every 32nd/64th, at a third of the time.
PILOT_VOXELS = 50_000


def block_layout(
    mask: np.ndarray, block: int = BLOCK, transposed: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Voxels of every ``block``-cube of a C-ordered 3-D ``mask`` that holds a mask voxel, block
    after block, slab of ``block`` x-planes after slab: C-order flat indices (n_blocks x block³)
    and whether each is inside the mask (cubes cut by the image's edge are padded).

    ``transposed``: ``mask`` is the transpose of the image's (Fortran-ordered data); the voxels
    of a cube are then listed in the image's own C order, so that block sums add the same
    numbers in the same order whatever the memory order.
    """
    within = (1, 3, 4, 2, 0) if transposed else (1, 3, 0, 2, 4)
    nx, ny, nz = mask.shape
    pad_y, pad_z = -ny % block, -nz % block
    slab_shape = (block, (ny + pad_y) // block, block, (nz + pad_z) // block, block)
    plane = np.arange(ny * nz).reshape(ny, nz)
    local = np.stack([np.pad(plane + x * ny * nz, ((0, pad_y), (0, pad_z))) for x in range(block)])
    local = local.reshape(slab_shape).transpose(within).reshape(-1, block**3)
    padded = np.pad(np.asarray(mask, bool), ((0, -nx % block), (0, pad_y), (0, pad_z)))
    index, inside = [], []
    for x0 in range(0, nx, block):
        cubes = padded[x0 : x0 + block].reshape(slab_shape).transpose(within)
        cubes = cubes.reshape(-1, block**3)
        used = cubes.any(axis=1)
        index.append(np.minimum(local[used] + x0 * ny * nz, mask.size - 1).reshape(-1))
        inside.append(cubes[used].reshape(-1))
    return np.concatenate(index), np.concatenate(inside)


@np.errstate(divide="ignore", invalid="ignore")
def fit_srtm_bfm_block(
    start_min,
    end_min,
    ref_tac,
    data: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    k2prime: float | None = None,
    pilot_spacing: int | None = None,
    threshold: float = CHI2_1_95,
    n_basis: int = BLOCK_N_BASIS,
    theta3_min: float = DEFAULT_THETA3_MIN,
    theta3_max: float = DEFAULT_THETA3_MAX,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    step_min: float = DEFAULT_STEP_MIN,
) -> VoxelwiseResult:
    """SRTM maps of a 4-D ``data`` (x, y, z, frames) with the block k2a prior.

    Maps as :func:`~tspo_bidsapp.kinetics.bfm.fit_srtm2_bfm`; ``info["n_prior"]``: voxels that
    took the prior. Without a voxel with binding to take ``k2'`` from, the one-pass SRTM
    basis-function result (``info["k2prime_source"]`` says so).
    """
    data = np.asanyarray(data)
    if data.ndim != 4:
        raise ValueError("the block-prior fit needs a 4-D image (x, y, z, frames)")
    grid_kw = {"theta3_min": theta3_min, "theta3_max": theta3_max, "n_basis": n_basis,
               "chunk_voxels": chunk_voxels, "step_min": step_min}  # fmt: skip
    chunks = VoxelChunks(data, mask, chunk_voxels)  # its flat view and memory order
    full = np.ones(chunks.spatial_shape, bool) if mask is None else chunks.mask
    c_order = chunks.order == "C"
    index, inside = block_layout(full if c_order else full.T, transposed=not c_order)
    source = "user"
    if pilot_spacing is None:
        pilot_spacing = max(1, int(np.cbrt(np.count_nonzero(full) / PILOT_VOXELS)))
    if k2prime is None:
        lattice = (slice(None, None, pilot_spacing),) * 3  # the same voxels in C or F order
        pilot = data[lattice][full[lattice]]
        k2prime, fallback = pilot_k2prime(start_min, end_min, ref_tac, data, mask, weights, None,
                                          grid_kw, tacs=pilot)  # fmt: skip
        if fallback is not None:
            return fallback
        source = "median-voxel-srtm"
    ref, sw = _setup(start_min, end_min, ref_tac, weights, step_min)
    if chunks.n_frames != ref.n_frames:
        raise ValueError(f"PET data have {chunks.n_frames} frames, the reference {ref.n_frames}")
    grid = theta3_grid(theta3_min, theta3_max, n_basis)
    unit, norm = srtm2_basis(ref, sw, grid, k2prime)
    maps, n_invalid, n_prior, n_edge = _block_pass(
        chunks, index, inside, unit, norm, grid, k2prime, sw, ref.end - ref.start, threshold
    )
    shape = chunks.spatial_shape
    maps = {k: v.reshape(shape, order=chunks.order) for k, v in maps.items()}
    info = {"theta3_grid": grid, "model": "srtm_bfm_block", "k2prime": float(k2prime),
            "k2prime_source": source, "pilot_spacing": int(pilot_spacing), "block_voxels": BLOCK,
            "prior_threshold": float(threshold), "n_prior": n_prior,
            "n_edge": n_edge}  # fmt: skip
    return VoxelwiseResult(maps, int(full.sum()), n_invalid, info)


def _block_pass(chunks, index, inside, unit, norm, grid, k2prime, sw, durations, threshold):
    """One pass over the voxels block by block, chunks of whole blocks; flat maps (image order)
    and the counts of invalid voxels, voxels that took the prior and voxels on a grid edge."""
    n_vox = chunks.flat.shape[0]
    names = ("R1", "k2", "BPND", "k2a", "k2prime", "wrss")
    maps = {name: np.full(n_vox, np.nan, np.float32) for name in names}
    maps["edge"] = np.zeros(n_vox, bool)
    unit_t = np.ascontiguousarray(unit.T, dtype=np.float32)
    sw_t, norm_t = sw.astype(np.float32), norm.astype(np.float32)
    grid_t, k2p = grid.astype(np.float32), np.float32(k2prime)
    n_frames, n_basis = unit.shape[1], grid.size
    c = np.float32(threshold / max(n_frames - 2, 1))
    per_block = BLOCK**3
    step = max(chunks.chunk // per_block, 1) * per_block
    counts = np.zeros(3, np.int64)
    all_rows = np.arange(step)
    for lo in range(0, index.size, step):
        idx, ins = index[lo : lo + step], inside[lo : lo + step]
        y = chunks.flat[idx].astype(np.float32, copy=False)  # a gathered copy
        ok = valid_tacs(y, durations) & ins
        np.multiply(y, sw_t, out=y)
        all_ok = bool(ok.all())
        if not all_ok:
            y[~ok] = 0
        proj = y @ unit_t  # (voxels, n_basis)
        rows = all_rows[: idx.size]
        own = np.argmax(proj, axis=1)
        p_own = np.maximum(proj[rows, own], 0)
        block_sum = _block_sums(y.reshape(-1, per_block, n_frames)) @ unit_t
        prior = np.repeat(np.argmax(block_sum, axis=1), per_block)
        p_prior = np.maximum(proj[rows, prior], 0)
        yy = np.einsum("ij,ij->i", y, y)
        # wrss(prior) - wrss(own) < threshold * wrss(own) / (n_frames - 2)
        take = p_own * p_own * (1 + c) - p_prior * p_prior < c * yy
        best = np.where(take, prior, own)
        p = np.where(take, p_prior, p_own)
        if not all_ok:
            take &= ok
            best, p, yy, idx = best[ok], p[ok], yy[ok], idx[ok]
        r1 = p / norm_t[best]
        k2a = grid_t[best]
        on_edge = (best == 0) | (best == n_basis - 1)
        for name, value in (("R1", r1), ("k2", r1 * k2p), ("BPND", r1 * k2p / k2a - 1),
                            ("k2a", k2a), ("k2prime", k2p), ("wrss", np.maximum(yy - p * p, 0)),
                            ("edge", on_edge)):  # fmt: skip
            maps[name][idx] = value
        counts += (int(np.count_nonzero(ins & ~ok)), int(take.sum()), int(on_edge.sum()))
    return maps, *(int(c) for c in counts)


def _block_sums(y: np.ndarray) -> np.ndarray:
    """Sum over axis 1 (a power of 2 long) by halving: contiguous adds, no strided reduction."""
    while y.shape[1] > 1:
        half = y.shape[1] // 2
        y = y[:, :half] + y[:, half:]
    return y[:, 0]
