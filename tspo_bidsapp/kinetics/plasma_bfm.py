"""Voxel-wise one-tissue compartment model by basis functions (plasma input).

``C = (1 - vB) K1 [Cp ⊗ e^{-k2 t}] + vB C_b`` is linear in ``((1 - vB) K1, vB)`` for each ``k2``
(Koeppe RA et al. 1985, J Cereb Blood Flow Metab 5:224; Gunn RN et al. 1997, NeuroImage 6:279).
For every ``k2`` of a log-spaced grid the frame-averaged basis ``Cp ⊗ e^{-k2 t}`` is
orthogonalised against the blood column; the best basis of a voxel has the largest positive
projection ``q_b · y`` (the smallest residual with K1 > 0), so a chunk of voxels is one float32
(voxels x frames) @ (frames x n_basis) product. With a fixed vB the single
basis column is fitted to ``(y - vB C_b)/(1 - vB)``. Maps: ``VT`` (= K1/k2, mL/cm³), ``K1``
(mL/cm³/min), ``k2`` (1/min), ``vB``, ``edge`` (best k2 on the first or last grid value).
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.kinetics.frames import frame_weights
from tspo_bidsapp.kinetics.plasma import PlasmaFrames
from tspo_bidsapp.kinetics.voxelwise import (
    DEFAULT_CHUNK_VOXELS,
    VoxelChunks,
    VoxelwiseResult,
    valid_tacs,
)

#: k2 grid of the basis functions (1/min): TSPO tracers have k2 ~ 0.02-0.3/min in brain.
DEFAULT_K2_RANGE = (0.005, 1.0)
DEFAULT_N_K2 = 200


@np.errstate(divide="ignore", invalid="ignore")
def one_tcm_bfm(
    pf: PlasmaFrames,
    data: np.ndarray,
    *,
    vb: float | None = None,
    weights: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    k2_range: tuple[float, float] = DEFAULT_K2_RANGE,
    n_k2: int = DEFAULT_N_K2,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
) -> VoxelwiseResult:
    """Basis-function 1TCM of every (masked) voxel of ``data`` (..., n_frames); ``vb`` None: fit."""
    w = frame_weights(pf.start, pf.end) if weights is None else np.asarray(weights, float)
    sw = np.sqrt(w)
    k2 = np.geomspace(k2_range[0], k2_range[1], int(n_k2))
    basis = pf.conv_many(k2) * sw  # (n_k2, frames)
    blood = pf.blood * sw
    if vb is None:
        q0 = blood / np.linalg.norm(blood)
        proj = basis @ q0
        resid = basis - proj[:, None] * q0[None, :]
        norm = np.linalg.norm(resid, axis=1)
    else:
        q0, proj, resid, norm = None, np.zeros(k2.size), basis, np.linalg.norm(basis, axis=1)
    q = (resid / norm[:, None]).T  # (frames, n_k2)
    chunks = VoxelChunks(data, mask, chunk_voxels)
    if chunks.n_frames != pf.n_frames:
        raise ValueError(f"PET data have {chunks.n_frames} frames, the input {pf.n_frames}")
    out = {name: chunks.new_values() for name in ("VT", "K1", "k2", "vB")}
    edge = chunks.new_values(bool)
    n_invalid = 0
    q32, sw32, blood32 = q.astype(np.float32), sw.astype(np.float32), blood.astype(np.float32)
    for sl, block in chunks:
        ok = valid_tacs(block, pf.end - pf.start)
        n_invalid += int(np.count_nonzero(~ok))
        y = np.where(ok[:, None], block, 0).astype(np.float32, copy=False) * sw32
        if vb is not None:
            y = (y - np.float32(vb) * blood32) / np.float32(1.0 - vb)
        scores = y @ q32  # projections on the basis; the best positive one has the largest
        best = np.argmax(scores, axis=1)
        beta = scores[np.arange(best.size), best].astype(np.float64) / norm[best]
        if vb is None:
            v = ((y @ q0.astype(np.float32)) - beta * proj[best]) / np.linalg.norm(blood)
            k1 = beta / (1.0 - v)
        else:
            v, k1 = np.full(best.size, vb), beta
        good = ok & (beta > 0)
        out["K1"][sl] = np.where(good, k1, np.nan)
        out["k2"][sl] = np.where(good, k2[best], np.nan)
        out["VT"][sl] = np.where(good, k1 / k2[best], np.nan)
        out["vB"][sl] = np.where(good, v, np.nan)
        edge[sl] = good & ((best == 0) | (best == k2.size - 1))
    maps = {name: chunks.to_map(vals) for name, vals in out.items()}
    maps["edge"] = chunks.to_map(edge)
    info = {"model": "1tcm-bfm", "k2_range_per_min": [float(k2[0]), float(k2[-1])],
            "n_basis": int(k2.size), "vB": vb, "delay_min": pf.delay}  # fmt: skip
    return VoxelwiseResult(maps, chunks.n_voxels, n_invalid, info)
