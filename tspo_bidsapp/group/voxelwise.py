"""Voxel-wise group analysis in MNI152 space (optional: ``--group-voxelwise``).

1. Each participant's ``desc-preproc_T1w`` (masked by ``desc-brain_mask``) is registered to
   the MNI152 2009 template that nilearn ships (2 mm, offline) with ANTsPy: affine then SyN
   (``type_of_transform='SyN'``, SyN iterations (40, 20, 0) at shrink 4/2/1: the last, full-
   resolution level is skipped for speed). Transforms are cached in the work directory and
   reused while the T1w file is unchanged (path, size, mtime).
2. The T1w-space DVR/BPND maps are warped with the forward transforms (linear). NaN voxels
   are handled by normalised interpolation: ``warp(x * valid) / warp(valid)``, NaN where
   ``warp(valid) < 0.5``.
3. nilearn ``SecondLevelModel`` (OLS per voxel) within the template brain mask, restricted to
   voxels valid in every participant. Group model: one indicator column per group (plus
   centred age, sex, genotype for second-generation tracers), contrasts ``B - A`` as in the
   regional statistics. EDSS model: patients only, intercept + centred EDSS (+ age).
4. Writes z-maps and thresholded z-maps: voxel-wise FDR q < alpha (Benjamini-Hochberg,
   two-sided; ``nilearn.glm.threshold_stats_img(height_control='fdr')``), no cluster extent.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

LOGGER = logging.getLogger("tspo_bidsapp.group")
SYN_ITERATIONS = (40, 20, 0)


def mni_template() -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """nilearn's MNI152 2009 T1 template and brain mask at 2 mm (shipped; no download)."""
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template

    return load_mni152_template(resolution=2), load_mni152_brain_mask(resolution=2)


def _stamp(path: Path) -> dict:
    st = Path(path).stat()
    return {"source": str(Path(path).resolve()), "size": st.st_size, "mtime": st.st_mtime}


def register_to_template(
    t1w: Path,
    brain_mask: Path | None,
    template: nib.Nifti1Image,
    cache_dir: Path,
    *,
    threads: int = 1,
) -> list[str]:
    """Forward transforms (warp, affine) T1w -> template, from the cache or ANTsPy SyN."""
    import ants

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(t1w).name.split(".")[0]
    record = cache_dir / f"{stem}_xfm.json"
    want = {"t1w": _stamp(t1w), "mask": _stamp(brain_mask) if brain_mask else None,
            "type_of_transform": "SyN", "reg_iterations": list(SYN_ITERATIONS)}  # fmt: skip
    if record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("input") == want and all(Path(p).is_file() for p in saved["fwd"]):
            return saved["fwd"]
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(threads)
    fixed_path = cache_dir / "tpl-MNI152_res-2_T1w.nii.gz"
    if not fixed_path.is_file():
        nib.save(template, str(fixed_path))
    fixed = ants.image_read(str(fixed_path))
    moving = ants.image_read(str(t1w))
    if brain_mask:
        moving = moving * ants.image_read(str(brain_mask))
    reg = ants.registration(
        fixed, moving, type_of_transform="SyN", reg_iterations=SYN_ITERATIONS,
        outprefix=str(cache_dir / f"{stem}_"),
    )  # fmt: skip
    fwd = [str(p) for p in reg["fwdtransforms"]]
    record.write_text(json.dumps({"input": want, "fwd": fwd}, indent=2))
    return fwd


def warp_to_template(
    map_file: Path, transforms: list[str], template: nib.Nifti1Image
) -> nib.Nifti1Image:
    """A T1w-space map on the template grid (linear; NaN-aware normalised interpolation)."""
    import ants

    img = nib.load(str(map_file))
    data = np.asarray(img.dataobj, dtype=np.float32)
    valid = np.isfinite(data)
    fixed = ants.from_numpy(np.zeros(template.shape, np.float32))
    fixed = _with_geometry(fixed, template)

    def warp(values):
        moving = _with_geometry(ants.from_numpy(values.astype(np.float32)), img)
        out = ants.apply_transforms(fixed, moving, transformlist=transforms,
                                    interpolator="linear")  # fmt: skip
        return out.numpy()

    weight = warp(valid.astype(np.float32))
    total = warp(np.where(valid, data, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(weight >= 0.5, total / weight, np.nan)
    return nib.Nifti1Image(out.astype(np.float32), template.affine)


def _with_geometry(image, nifti: nib.Nifti1Image):
    """Give an ANTs image the voxel-to-world geometry of a NIfTI (ANTs uses LPS)."""
    affine = nifti.affine
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    lps = np.diag([-1.0, -1.0, 1.0])
    image.set_origin(tuple(lps @ affine[:3, 3]))
    image.set_spacing(tuple(zooms))
    image.set_direction(lps @ (affine[:3, :3] / zooms))
    return image


def group_design(info: pd.DataFrame, *, adjust_genotype: bool) -> pd.DataFrame:
    """Design matrix: group indicators, centred age, sex and genotype (when they vary)."""
    design = pd.get_dummies(info["group"]).astype(float)
    if info["age"].notna().all() and info["age"].nunique() > 1:
        design["age"] = info["age"].to_numpy(float) - info["age"].mean()
    for col in ("sex",) + (("tspo_genotype",) if adjust_genotype else ()):
        levels = sorted(info[col].dropna().unique())
        if info[col].notna().all() and len(levels) > 1:
            for level in levels[1:]:
                x = (info[col] == level).to_numpy(float)
                design[f"{col}_{level}"] = x - x.mean()
    design.index = range(len(design))
    return design


def edss_design(info: pd.DataFrame) -> pd.DataFrame:
    """Patients' design: intercept, centred EDSS (and centred age when it varies)."""
    design = pd.DataFrame({"intercept": 1.0, "edss": info["edss"].to_numpy(float)})
    design["edss"] -= design["edss"].mean()
    if info["age"].notna().all() and info["age"].nunique() > 1:
        design["age"] = info["age"].to_numpy(float) - info["age"].mean()
    return design


def second_level(
    images: list[nib.Nifti1Image],
    design: pd.DataFrame,
    contrast: np.ndarray,
    mask: nib.Nifti1Image,
    *,
    alpha: float = 0.05,
) -> tuple[nib.Nifti1Image, nib.Nifti1Image, float]:
    """z-map of ``contrast`` and its FDR-thresholded version (and the z threshold).

    The analysis mask is ``mask`` restricted to voxels finite in every image.
    """
    from nilearn.glm import threshold_stats_img
    from nilearn.glm.second_level import SecondLevelModel

    data = np.stack([np.asarray(i.dataobj, dtype=np.float32) for i in images])
    keep = (np.asarray(mask.dataobj) > 0) & np.isfinite(data).all(axis=0)
    if not keep.any():
        raise ValueError("no voxel is valid in every participant's warped map")
    affine = images[0].affine
    mask_img = nib.Nifti1Image(keep.astype(np.uint8), affine)
    clean = [nib.Nifti1Image(np.nan_to_num(d), affine) for d in data]
    model = SecondLevelModel(mask_img=mask_img, smoothing_fwhm=None)
    model.fit(clean, design_matrix=design)
    z = model.compute_contrast(np.asarray(contrast, float), output_type="z_score")
    thresholded, threshold = threshold_stats_img(
        z, mask_img=mask_img, alpha=alpha, height_control="fdr", two_sided=True
    )
    return z, thresholded, float(threshold)


def contrast_vector(design: pd.DataFrame, a: str, b: str) -> np.ndarray:
    vec = np.zeros(design.shape[1])
    vec[list(design.columns).index(b)] = 1.0
    vec[list(design.columns).index(a)] = -1.0
    return vec
