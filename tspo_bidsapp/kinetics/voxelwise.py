"""Chunked iteration over the voxels of a 4-D PET array, shared by every voxel-wise method.

The data are viewed as a (voxels x frames) matrix without copying the whole image
(C- or Fortran-ordered arrays, e.g. NIfTI data from nibabel, are both viewed in place),
the in-mask voxels are processed ``chunk_voxels`` at a time so that memory stays bounded,
and results are scattered back into maps of the image's spatial shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

DEFAULT_CHUNK_VOXELS = 8192  # (voxels x 200 basis) float32 projections: 6.5 MB, cache-sized


@dataclass
class VoxelwiseResult:
    """Parameter maps (spatial shape, NaN outside the mask and at invalid voxels).

    ``n_voxels``: in-mask voxels; ``n_invalid``: in-mask voxels set to NaN because their TAC
    had a non-finite value or no positive signal (see :func:`valid_tacs`).
    """

    maps: dict[str, np.ndarray]
    n_voxels: int
    n_invalid: int
    info: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.maps[name]


class VoxelChunks:
    """In-mask voxels of ``data`` (..., n_frames) as (chunk, n_frames) blocks, plus output maps."""

    def __init__(self, data: np.ndarray, mask: np.ndarray | None, chunk_voxels: int):
        data = np.asanyarray(data)
        if data.ndim < 1:
            raise ValueError("PET data must have frames on the last axis")
        self.spatial_shape = data.shape[:-1]
        self.n_frames = data.shape[-1]
        self.order = "F" if (data.flags.f_contiguous and not data.flags.c_contiguous) else "C"
        self.flat = data.reshape(-1, self.n_frames, order=self.order)
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != self.spatial_shape:
                raise ValueError(
                    f"mask shape {mask.shape} does not match PET spatial shape {self.spatial_shape}"
                )
        self.mask = mask
        self.chunk = max(1, int(chunk_voxels))

    @cached_property
    def index(self) -> np.ndarray:
        """Flat (memory-order) indices of the in-mask voxels, computed when first needed."""
        if self.mask is None:
            return np.arange(self.flat.shape[0])
        return np.flatnonzero(self.mask.ravel(order=self.order))

    @property
    def n_voxels(self) -> int:
        return int(self.index.size)

    def __iter__(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield (slice into the in-mask voxel list, data block)."""
        for lo in range(0, self.index.size, self.chunk):
            sl = slice(lo, min(lo + self.chunk, self.index.size))
            idx = self.index[sl]
            if idx.size and idx[-1] - idx[0] + 1 == idx.size:  # contiguous: a view, no gather
                yield sl, self.flat[idx[0] : idx[-1] + 1]
            else:
                yield sl, self.flat[idx]

    def new_values(self, dtype=np.float32) -> np.ndarray:
        """A per-in-mask-voxel output vector filled with NaN (or False for bool)."""
        if np.dtype(dtype) == np.bool_:
            return np.zeros(self.index.size, dtype=bool)
        return np.full(self.index.size, np.nan, dtype=dtype)

    def to_map(self, values: np.ndarray) -> np.ndarray:
        """Scatter in-mask values into a spatial map (NaN / False elsewhere)."""
        fill = False if values.dtype == np.bool_ else np.nan
        out = np.full(int(np.prod(self.spatial_shape)), fill, dtype=values.dtype)
        out[self.index] = values
        return out.reshape(self.spatial_shape, order=self.order)


def valid_tacs(block: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """Voxels that can be fitted: every frame finite and a positive time-integral of activity.

    Voxels with NaN/inf frames, all-zero TACs (outside the head, masked scanner gaps) or
    net-negative signal are not fitted; individual negative frames (noise) are allowed.
    One matrix-vector product in the block's own float type (no copy of the block): a NaN or
    inf frame makes the integral non-finite.
    """
    dtype = float_type(block)
    with np.errstate(invalid="ignore", over="ignore"):
        area = block @ np.asarray(durations, dtype)
    return np.isfinite(area) & (area > 0)


def float_type(block: np.ndarray) -> np.dtype:
    """The block's own float type (float64 for integer data): arithmetic without a float64 copy."""
    return block.dtype if np.issubdtype(block.dtype, np.floating) else np.dtype(np.float64)
