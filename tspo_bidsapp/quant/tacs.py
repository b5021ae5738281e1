"""Regional time-activity curves (TACs) as label-wise means, all frames in one sparse product.

TACs are extracted in T1w space: the motion-corrected PET is resampled *once* onto the T1w grid
(composite motion + PET->T1w transform) and averaged over the T1w-space label map. Regions are
defined at ~1 mm; mapping them onto the 2 mm PET grid instead would lose or distort the small
ones (lesions of a few voxels, 2 mm rims, choroid plexus) by nearest-neighbour rounding,
whereas one trilinear resampling of the PET only adds mild smoothing to an image whose own
resolution (4-5 mm FWHM) is far coarser than either grid.

Values keep the PET's units (BIDS ``Units``, usually kBq/mL); frame times in ``_tacs.tsv`` are
seconds (:class:`~tspo_bidsapp.io.timing.FrameTiming`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from tspo_bidsapp.io.derivatives import TSV_FORMAT
from tspo_bidsapp.io.timing import FrameTiming


def label_matrix(labels: np.ndarray, n_labels: int | None = None) -> sparse.csr_matrix:
    """Sparse (n_labels + 1, voxels) indicator matrix of an integer label image (C order)."""
    flat = np.asarray(labels).ravel()
    if flat.size and flat.min() < 0:
        raise ValueError("label image has negative values")
    top = int(flat.max()) if flat.size else 0
    n = top if n_labels is None else max(int(n_labels), top)
    keep = np.flatnonzero(flat > 0)
    ones = np.ones(keep.size, dtype=np.float64)
    return sparse.csr_matrix((ones, (flat[keep].astype(np.int64), keep)), shape=(n + 1, flat.size))


def region_means(
    data: np.ndarray, labels: np.ndarray, n_labels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of every label over the voxels of ``data`` (X, Y, Z[, frames]); frames in one matmul.

    Returns ``(means, counts)``: means (n_labels + 1, n_frames) (row 0 = background, unused) and
    the number of voxels per label. Non-finite values are left out of the mean frame by frame;
    a label without finite voxels in a frame gets NaN.
    """
    data = np.asarray(data)
    labels = np.asarray(labels)
    if data.shape[:3] != labels.shape:
        raise ValueError(f"PET shape {data.shape[:3]} does not match label shape {labels.shape}")
    flat = data.reshape(labels.size, -1)
    finite = np.isfinite(flat)
    mat = label_matrix(labels, n_labels)
    sums = mat @ np.where(finite, flat, 0.0).astype(np.float64, copy=False)
    counts = mat @ finite.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    voxels = np.asarray(mat.sum(axis=1)).ravel().astype(np.int64)
    return means, voxels


def mask_mean_tac(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean TAC (n_frames,) over the voxels of a boolean ``mask`` (non-finite values left out)."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("the mask is empty: no voxel to average")
    means, _ = region_means(data, mask.astype(np.uint8), 1)
    return means[1]


def region_tacs(
    data: np.ndarray,
    labels: np.ndarray,
    table: dict[int, str],
    voxel_ml: float,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """TACs and volumes (mL) of the regions of ``table`` (index -> name) present in ``labels``."""
    means, voxels = region_means(data, labels, max(table) if table else None)
    tacs, volumes = {}, {}
    for idx, name in sorted(table.items()):
        if idx < len(voxels) and voxels[idx] > 0:
            tacs[name] = means[idx]
            volumes[name] = float(voxels[idx]) * voxel_ml
    return tacs, volumes


def write_tacs_tsv(timing: FrameTiming, tacs: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write ``frame_start``, ``frame_end`` (seconds) and one column per TAC (BIDS PET TACs)."""
    table = pd.DataFrame({"frame_start": timing.start_s, "frame_end": timing.end_s})
    for name, values in tacs.items():
        values = np.asarray(values, float).reshape(-1)
        if values.size != timing.n_frames:
            raise ValueError(f"TAC {name!r} has {values.size} values for {timing.n_frames} frames")
        table[name] = values
    path = Path(path)
    table.to_csv(path, **TSV_FORMAT)
    return path


def read_tacs_tsv(path: str | Path) -> tuple[FrameTiming, dict[str, np.ndarray]]:
    """Read a ``_tacs.tsv`` written by :func:`write_tacs_tsv`; errors name the file and column."""
    path = Path(path)
    table = pd.read_csv(path, sep="\t", na_values=["n/a"])
    for column in ("frame_start", "frame_end"):
        if column not in table.columns:
            raise ValueError(f"{path}: no '{column}' column (seconds) in the TAC table")
    timing = FrameTiming.from_start_end_s(table["frame_start"], table["frame_end"])
    names = [c for c in table.columns if c not in ("frame_start", "frame_end")]
    return timing, {name: table[name].to_numpy(float) for name in names}
