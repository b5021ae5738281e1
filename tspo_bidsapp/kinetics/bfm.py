"""Voxel-wise SRTM and SRTM2 by the basis-function method.

SRTM basis functions (Gunn RN, Lammertsma AA, Hume SP, Cunningham VJ, 1997, NeuroImage
6:279-287): ``C_T = θ1 C_R + θ2 [C_R ⊗ e^{-θ3 t}]`` with ``θ1 = R1``, ``θ2 = k2 - R1 k2a``,
``θ3 = k2a = k2/(1+BPND)``. For each θ3 on a log-spaced grid the model is linear in (θ1, θ2);
the θ3 with the smallest weighted residual is kept and transformed back:
``R1 = θ1``, ``k2 = θ2 + θ1 θ3``, ``BPND = k2/θ3 - 1``.

SRTM2 (Wu Y, Carson RE, 2002, J Cereb Blood Flow Metab 22:1440-1452) fixes the reference
efflux ``k2' = k2/R1``: ``C_T = R1 {C_R + (k2' - k2a) [C_R ⊗ e^{-k2a t}]}``, one linear
parameter (R1) per basis function.

Computation: with sqrt-weights folded in, the reference column ``q0`` is orthonormalised once and
each basis column is orthogonalised against it, so the residual of basis b for voxel y is
``|y|² - (q0·y)² - (q_b·y)²`` and the best basis is ``argmax_b (q_b·y)²``. All voxels of a chunk
are handled by one (voxels x frames) @ (frames x n_basis) BLAS product. Times in minutes.

Default θ3 grid for TSPO tracers: 0.01-0.6 /min, 200 functions (log-spaced, 2.1 % apart).
TSPO ligands have k2 ≈ 0.05-0.3 /min and BPND ≈ 0.05-2 in brain, so k2a = k2/(1+BPND) spans
≈ 0.017-0.29 /min; the grid adds margin on both sides (lesions and choroid plexus with fast
efflux, noise). A lower bound of 0.01 /min (an exponential with a 69-min half-life) is about
the slowest rate a 60-90 min scan can tell apart from a pure integral of C_R; the common
0.06-0.6 /min grid of D2-receptor work would clip high-binding TSPO voxels to its lower edge.
"""

from __future__ import annotations

import numpy as np

from tspo_bidsapp.kinetics.frames import InterpolatedReference, frame_weights
from tspo_bidsapp.kinetics.simulate import DEFAULT_STEP_MIN
from tspo_bidsapp.kinetics.voxelwise import (
    DEFAULT_CHUNK_VOXELS,
    VoxelChunks,
    VoxelwiseResult,
    valid_tacs,
)

DEFAULT_THETA3_MIN = 0.01  # 1/min
DEFAULT_THETA3_MAX = 0.6  # 1/min
DEFAULT_N_BASIS = 200


def theta3_grid(theta3_min: float, theta3_max: float, n_basis: int) -> np.ndarray:
    """Log-spaced basis rates θ3 (1/min)."""
    if not (0 < theta3_min < theta3_max) or n_basis < 2:
        raise ValueError("need 0 < theta3_min < theta3_max and n_basis >= 2")
    return np.geomspace(theta3_min, theta3_max, int(n_basis))


def _setup(start_min, end_min, ref_tac, weights, step_min):
    ref = InterpolatedReference(start_min, end_min, ref_tac, step_min=step_min)
    w = frame_weights(ref.start, ref.end) if weights is None else np.asarray(weights, float)
    if w.shape != (ref.n_frames,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("frame weights must be finite, non-negative, one per frame")
    return ref, np.sqrt(w)


@np.errstate(divide="ignore", invalid="ignore")
def fit_srtm_bfm(
    start_min,
    end_min,
    ref_tac,
    data: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    theta3_min: float = DEFAULT_THETA3_MIN,
    theta3_max: float = DEFAULT_THETA3_MAX,
    n_basis: int = DEFAULT_N_BASIS,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    dtype=np.float32,
    step_min: float = DEFAULT_STEP_MIN,
) -> VoxelwiseResult:
    """SRTM basis-function fit of every (masked) voxel of ``data`` (..., n_frames), frames in minutes.

    Maps: ``R1``, ``k2`` (1/min), ``BPND``, ``k2a`` (= θ3, 1/min), ``k2prime`` (= k2/R1, 1/min),
    ``wrss`` (weighted residual sum of squares) and ``edge`` (True where the best θ3 is the
    first or last grid value: the true optimum may lie outside the grid).
    """
    ref, sw = _setup(start_min, end_min, ref_tac, weights, step_min)
    grid = theta3_grid(theta3_min, theta3_max, n_basis)
    r = sw * ref.values
    rho = float(np.linalg.norm(r))
    if rho == 0:
        raise ValueError("reference TAC is zero in every weighted frame")
    q0 = r / rho
    basis = ref.conv_frames_many(grid) * sw
    alpha = basis @ q0
    perp = basis - alpha[:, None] * q0
    beta = np.linalg.norm(perp, axis=1)
    q = perp / beta[:, None]
    q0_t, qT = q0.astype(dtype), np.ascontiguousarray(q.T, dtype=dtype)

    def solve(yw):
        best, c = _best_projection(yw @ qT)  # (voxels, n_basis) projections, signed
        a = yw @ q0_t
        theta2 = c / beta[best]
        theta1 = (a - theta2 * alpha[best]) / rho
        theta3 = grid[best]
        k2 = theta2 + theta1 * theta3
        return best, {
            "R1": theta1,
            "k2": k2,
            "BPND": k2 / theta3 - 1.0,
            "k2a": theta3,
            "k2prime": k2 / theta1,
            "wrss": _wrss(yw, a, c),
        }

    return _fit_chunks(ref, sw, data, mask, chunk_voxels, dtype, grid, solve, {"model": "srtm_bfm"})


@np.errstate(divide="ignore", invalid="ignore")
def fit_srtm2_bfm(
    start_min,
    end_min,
    ref_tac,
    data: np.ndarray,
    k2prime: float,
    *,
    mask: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    theta3_min: float = DEFAULT_THETA3_MIN,
    theta3_max: float = DEFAULT_THETA3_MAX,
    n_basis: int = DEFAULT_N_BASIS,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    dtype=np.float32,
    step_min: float = DEFAULT_STEP_MIN,
) -> VoxelwiseResult:
    """SRTM2 basis-function fit with ``k2prime`` (1/min) fixed; frames in minutes.

    For each k2a on the grid the single basis ``C_R + (k2' - k2a)[C_R ⊗ e^{-k2a t}]`` is fitted
    with R1 >= 0; maps as :func:`fit_srtm_bfm` (``k2 = R1 k2'``, ``BPND = R1 k2'/k2a - 1``).
    """
    if not (np.isfinite(k2prime) and k2prime > 0):
        raise ValueError(f"k2prime must be a positive rate in 1/min, got {k2prime}")
    ref, sw = _setup(start_min, end_min, ref_tac, weights, step_min)
    grid = theta3_grid(theta3_min, theta3_max, n_basis)
    unit, norm = srtm2_basis(ref, sw, grid, k2prime)
    unitT = np.ascontiguousarray(unit.T, dtype=dtype)

    def solve(yw):
        best, p = _best_projection(yw @ unitT, signed=False)  # R1 >= 0: the positive part
        p = np.clip(p, 0, None)
        r1 = p / norm[best]
        k2a = grid[best]
        return best, {
            "R1": r1,
            "k2": r1 * k2prime,
            "BPND": r1 * k2prime / k2a - 1.0,
            "k2a": k2a,
            "k2prime": k2prime,  # a scalar: broadcast when stored
            "wrss": _wrss(yw, p),
        }

    info = {"model": "srtm2_bfm", "k2prime": float(k2prime)}
    return _fit_chunks(ref, sw, data, mask, chunk_voxels, dtype, grid, solve, info)


def srtm2_basis(ref: InterpolatedReference, sw: np.ndarray, grid: np.ndarray, k2prime: float):
    """Weighted SRTM2 basis ``sw (C_R + (k2' - k2a)[C_R ⊗ e^{-k2a t}])`` per ``grid`` rate, as
    unit rows (n_basis, n_frames) and their norms."""
    basis = (ref.values[None, :] + (k2prime - grid)[:, None] * ref.conv_frames_many(grid)) * sw
    norm = np.linalg.norm(basis, axis=1)
    return basis / norm[:, None], norm


def _best_projection(proj: np.ndarray, signed: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column of the largest projection (largest magnitude if ``signed``) and its value.

    Read-only reductions over ``proj``: no squared copy, no gather of basis vectors afterwards.
    """
    rows = np.arange(proj.shape[0])
    best = np.argmax(proj, axis=1)
    value = proj[rows, best]
    if signed:
        low = np.argmin(proj, axis=1)
        low_value = proj[rows, low]
        use_low = -low_value > value
        best = np.where(use_low, low, best)
        value = np.where(use_low, low_value, value)
    return best, value


def _wrss(yw: np.ndarray, *projections: np.ndarray) -> np.ndarray:
    """Weighted RSS from orthonormal projections: ``|y|² - Σ p²`` (clipped at 0 for round-off)."""
    out = np.einsum("ij,ij->i", yw, yw).astype(np.float64)
    for p in projections:
        out -= np.square(p, dtype=np.float64)
    return np.clip(out, 0.0, None)


def _fit_chunks(ref, sw, data, mask, chunk_voxels, dtype, grid, solve, info) -> VoxelwiseResult:
    """Run ``solve(weighted TACs) -> (best basis index, parameter values)`` chunk by chunk.

    Voxels with unusable TACs (:func:`valid_tacs`) get NaN and are counted; ``edge`` marks
    voxels whose best basis function is the first or last of ``grid``.
    """
    chunks = VoxelChunks(data, mask, chunk_voxels)
    if chunks.n_frames != ref.n_frames:
        raise ValueError(f"PET data have {chunks.n_frames} frames, the reference {ref.n_frames}")
    names = ("R1", "k2", "BPND", "k2a", "k2prime", "wrss")
    out = {n: chunks.new_values(dtype) for n in names}
    edge = chunks.new_values(bool)
    durations = ref.end - ref.start
    sw_t = sw.astype(dtype)
    n_invalid = 0
    for sl, block in chunks:
        ok = valid_tacs(block, durations)
        n_invalid += int(np.count_nonzero(~ok))
        if block.dtype == dtype and block.flags.owndata and block.flags.writeable:
            yw = np.multiply(block, sw_t, out=block)  # a gathered copy: weight it in place
        else:
            yw = np.multiply(block, sw_t, dtype=dtype)
        yw[~ok] = 0
        best, vals = solve(yw)
        for n in names:
            out[n][sl] = np.where(ok, vals[n], np.nan)
        edge[sl] = ok & ((best == 0) | (best == grid.size - 1))
    maps = {n: chunks.to_map(v) for n, v in out.items()}
    maps["edge"] = chunks.to_map(edge)
    info = {"theta3_grid": grid, **info, "n_edge": int(edge.sum())}
    return VoxelwiseResult(maps, chunks.n_voxels, n_invalid, info)


def reliable_k2prime(result: VoxelwiseResult, mask: np.ndarray | None = None) -> float:
    """Median SRTM ``k2'`` (1/min) over reliable voxels, to fix it in SRTM2 (Wu & Carson 2002).

    Reliable: finite, optimum not on a grid edge, R1 > 0, k2 > 0 and BPND > 0 (voxels without
    specific binding carry almost no information on k2'), inside ``mask`` if given.
    """
    m = result["k2prime"]
    keep = (
        np.isfinite(m)
        & ~result["edge"]
        & (result["R1"] > 0)
        & (result["k2"] > 0)
        & (result["BPND"] > 0)
    )
    if mask is not None:
        keep &= np.asarray(mask, bool)
    if not np.any(keep):
        raise ValueError("no reliable voxel to estimate k2' from")
    return float(np.median(m[keep]))
