"""Image content checks, run on every input image before anything is written.

A truncated ``.nii.gz``, NaN or infinite voxels, or a PET without any positive value would
otherwise only fail half-way through the workflow (motion correction, registration), with a
traceback that names neither the file nor the cause. Each image is read once, one frame at a
time (memory: one frame), straight from its file.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener

from tspo_bidsapp.exitcodes import InvalidBIDSError


@dataclass(frozen=True)
class ImageScan:
    """What one pass over an image's voxels found."""

    shape: tuple[int, ...]
    nonfinite_per_frame: np.ndarray  # NaN/inf voxels in each frame (one entry for a 3D image)
    max_per_frame: np.ndarray  # largest finite value of each frame (-inf when none)

    @property
    def n_frames(self) -> int:
        return len(self.max_per_frame)


def _why_unreadable(path: Path, exc: Exception) -> str:
    """The cause of a failed ``nib.load``: a truncated or damaged gzip stream, else nibabel's."""
    if path.name.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as handle:
                while handle.read(1 << 24):
                    pass
        except EOFError:
            return "the compressed file is truncated (incomplete copy or download?)"
        except (OSError, zlib.error) as gz_exc:
            return f"the compressed file is damaged ({gz_exc})"
    return f"cannot be read as a NIfTI image ({exc})"


def load_header(path: str | Path) -> nib.Nifti1Image:
    """The NIfTI image at ``path``, header only; :class:`InvalidBIDSError` naming the cause."""
    path = Path(path)
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise InvalidBIDSError(_why_unreadable(path, exc), path=path) from exc
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise InvalidBIDSError(f"not a NIfTI image ({type(img).__name__})", path=path)
    return img


def scan_image(path: str | Path) -> ImageScan:
    """Read every voxel of a 3D/4D NIfTI image, frame by frame, and summarise them.

    Raises :class:`InvalidBIDSError` (exit 16) when the file cannot be read: a bad header,
    an empty dimension, a data block cut short (truncated file) or a broken compressed stream.
    """
    path = Path(path)
    img = load_header(path)
    shape = tuple(int(n) for n in img.shape)
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise InvalidBIDSError(f"must be a 3D or 4D image, has shape {shape}", path=path)
    proxy = img.dataobj  # where the voxels start, their type and scaling, as nibabel reads them
    dtype = np.dtype(proxy.dtype)
    slope, inter = float(proxy.slope), float(proxy.inter)
    frame_voxels = int(np.prod(shape[:3]))
    n_frames = shape[3] if len(shape) == 4 else 1
    nonfinite = np.zeros(n_frames, dtype=np.int64)
    maxima = np.full(n_frames, -np.inf)
    nbytes = frame_voxels * dtype.itemsize
    try:
        with ImageOpener(str(path), "rb") as handle:
            handle.seek(int(proxy.offset))
            for k in range(n_frames):
                raw = handle.read(nbytes)
                if len(raw) < nbytes:
                    raise InvalidBIDSError(
                        f"the file ends inside frame {k + 1} of {n_frames}: it is truncated "
                        f"(incomplete copy or download?)",
                        path=path,
                    )
                values = np.frombuffer(raw, dtype=dtype)
                if (slope, inter) != (1.0, 0.0):
                    values = values * slope + inter
                finite = np.isfinite(values)
                nonfinite[k] = values.size - int(finite.sum())
                if finite.any():
                    maxima[k] = float(values[finite].max())
    except InvalidBIDSError:
        raise
    except (OSError, EOFError, ValueError) as exc:  # gzip/zlib errors of a damaged file
        raise InvalidBIDSError(
            f"the image data cannot be read ({type(exc).__name__}: {exc}); the file is damaged "
            "or truncated",
            path=path,
        ) from exc
    return ImageScan(shape, nonfinite, maxima)


def _frames(indices: np.ndarray) -> str:
    shown = ", ".join(str(int(i) + 1) for i in indices[:8])
    return shown + (f" and {len(indices) - 8} more" if len(indices) > 8 else "")


def _check_finite(scan: ImageScan, path: Path) -> None:
    bad = np.flatnonzero(scan.nonfinite_per_frame)
    if bad.size:
        where = f" in frame(s) {_frames(bad)}" if scan.n_frames > 1 else ""
        raise InvalidBIDSError(
            f"{int(scan.nonfinite_per_frame.sum())} voxel value(s) are NaN or infinite{where}; "
            "the pipeline needs finite values (replace them, e.g. by 0, in the image)",
            path=path,
        )


def check_pet_image(path: str | Path) -> ImageScan:
    """A PET image is readable, finite everywhere and holds some activity (a positive value)."""
    path = Path(path)
    scan = scan_image(path)
    _check_finite(scan, path)
    if not np.any(scan.max_per_frame > 0):
        raise InvalidBIDSError(
            "the PET image holds no positive value (every voxel is zero or negative)", path=path
        )
    return scan


def check_anat_image(path: str | Path) -> ImageScan:
    """An anatomical image (T1w, FLAIR) is a readable 3D image with finite values."""
    path = Path(path)
    scan = scan_image(path)
    if scan.n_frames > 1:
        raise InvalidBIDSError(f"must be a 3D image, has shape {scan.shape}", path=path)
    _check_finite(scan, path)
    return scan
