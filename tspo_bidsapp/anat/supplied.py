"""User-supplied anatomical derivatives (``--derivatives DIR``): lesion masks and segmentations.

Recognised, per subject (and session when given; session-less files also match):
- lesion mask: ``sub-<p>[_ses-<s>][_space-T1w][_<key>-<value>...]_(label|desc)-lesion_mask.nii[.gz]``
- segmentation: ``sub-<p>[_ses-<s>][_space-T1w][_...]_dseg.nii[.gz]`` with its ``dseg.tsv`` (same
  stem, else a dataset-level ``dseg.tsv``), labelled with FreeSurfer aseg indices.
Files in a ``space-`` other than T1w are ignored. The first directory with a match wins.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

from tspo_bidsapp.anat import labels as L

LOGGER = logging.getLogger("tspo_bidsapp.anat")
_EXCLUDED_DSEG = ("seg-tspoms", "desc-lesions", "label-")


@dataclass(frozen=True)
class SuppliedAnat:
    lesion_mask: Path | None = None
    dseg: Path | None = None
    dseg_tsv: Path | None = None


def _prefix(subject: str, session: str | None) -> str:
    sub = subject.removeprefix("sub-")
    if session:
        return rf"sub-{re.escape(sub)}(_ses-{re.escape(session.removeprefix('ses-'))})?"
    return rf"sub-{re.escape(sub)}(_ses-[a-zA-Z0-9]+)?"


def _space_ok(name: str) -> bool:
    m = re.search(r"_space-([a-zA-Z0-9]+)", name)
    return m is None or m.group(1) == "T1w"


def _pick(found: list[Path], what: str, root: Path) -> Path | None:
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(str(p) for p in sorted(found))
        raise ValueError(f"{root}: several {what} files match ({names}); keep one")
    return found[0]


def _dseg_tsv_for(dseg: Path, root: Path) -> Path | None:
    stem = dseg.name.split(".nii")[0]
    candidates = [dseg.with_name(stem + ".tsv"), root / "dseg.tsv"]
    entities = [e for e in stem.split("_") if not e.startswith(("sub-", "ses-"))]
    candidates.append(root / "_".join(entities))
    candidates[-1] = candidates[-1].with_name(candidates[-1].name + ".tsv")
    return next((c for c in candidates if c.is_file()), None)


def find_supplied(
    derivatives: list[str | Path] | tuple[str | Path, ...], subject: str, session: str | None = None
) -> SuppliedAnat:
    """Look for a supplied lesion mask and segmentation of ``subject`` in the derivatives dirs."""
    prefix = _prefix(subject, session)
    lesion_re = re.compile(
        rf"^{prefix}(_[a-zA-Z0-9]+-[a-zA-Z0-9]+)*_(label|desc)-lesion_mask\.nii(\.gz)?$"
    )
    dseg_re = re.compile(rf"^{prefix}(_[a-zA-Z0-9]+-[a-zA-Z0-9]+)*_dseg\.nii(\.gz)?$")
    lesion = dseg = tsv = None
    for root in map(Path, derivatives):
        if not root.is_dir():
            raise FileNotFoundError(f"--derivatives {root}: not a directory")
        files = [p for p in root.rglob("sub-*") if p.is_file() and _space_ok(p.name)]
        if lesion is None:
            lesion = _pick([p for p in files if lesion_re.match(p.name)], "lesion mask", root)
        if dseg is None:
            hits = [
                p for p in files
                if dseg_re.match(p.name) and not any(x in p.name for x in _EXCLUDED_DSEG)
            ]  # fmt: skip
            dseg = _pick(hits, "segmentation (dseg)", root)
            if dseg is not None:
                tsv = _dseg_tsv_for(dseg, root)
                if tsv is None:
                    raise ValueError(
                        f"{dseg}: no dseg.tsv (index/name table) beside it or at {root}"
                    )
    return SuppliedAnat(lesion_mask=lesion, dseg=dseg, dseg_tsv=tsv)


def conform_to_reference(
    path: str | Path, reference: str | Path, *, order: int = 0
) -> nib.Nifti1Image:
    """Image at ``path`` on the grid of ``reference`` (resampled, nearest neighbour by default).

    Same-grid inputs are returned unchanged; 4D inputs or grids not overlapping the reference raise
    a ``ValueError`` naming the file.
    """
    img = nib.load(str(path))
    ref = nib.load(str(reference))
    if img.ndim != 3:
        raise ValueError(f"{path}: expected a 3D image, got shape {img.shape}")
    if img.shape == ref.shape[:3] and np.allclose(img.affine, ref.affine, atol=1e-3):
        return img
    LOGGER.warning("%s: grid differs from %s; resampling (order %d)", path, reference, order)
    out = resample_from_to(img, (ref.shape[:3], ref.affine), order=order)
    if not np.asarray(out.dataobj).any() and np.asarray(img.dataobj).any():
        raise ValueError(f"{path}: does not overlap the T1w {reference} (check its affine)")
    return out


def load_supplied_lesion_mask(path: str | Path, reference: str | Path) -> np.ndarray:
    """Supplied lesion mask (any value > 0 is lesion) on the T1w grid."""
    return np.asarray(conform_to_reference(path, reference).dataobj) > 0


def load_supplied_dseg(path: str | Path, tsv: str | Path, reference: str | Path) -> np.ndarray:
    """Supplied FreeSurfer-labelled segmentation on the T1w grid, checked against its table."""
    table = L.read_dseg_tsv(tsv)
    L.check_freesurfer_table(table, tsv)
    data = np.rint(np.asarray(conform_to_reference(path, reference).dataobj)).astype(np.int16)
    unknown = sorted(set(np.unique(data).tolist()) - set(table) - {0})
    if unknown:
        raise ValueError(f"{path}: labels {unknown[:10]} are not listed in {tsv}")
    return data
