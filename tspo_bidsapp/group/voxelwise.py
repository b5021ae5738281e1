"""Voxel-wise group analysis in MNI152 space (optional: ``--group-voxelwise``).

1. Each participant's ``desc-preproc_T1w`` (masked by ``desc-brain_mask``) is registered to
   the MNI152 2009 template that nilearn ships (2 mm, offline) with ANTsPy: affine then SyN
   (``type_of_transform='SyN'``, SyN iterations (40, 20, 0) at shrink 4/2/1: the last, full-
   resolution level is skipped for speed). Transforms are cached in the work directory and
   reused while the T1w file is unchanged (path, size, mtime).
2. The participant's lesion voxels (``desc-lesions_dseg`` > 0) are set to NaN in the T1w-space
   DVR/BPND map, which is then warped with the forward transforms (linear). NaN voxels are
   handled by normalised interpolation: ``warp(x * valid) / warp(valid)``, NaN where
   ``warp(valid) < 0.5``. Optional Gaussian smoothing (``--group-smoothing-fwhm``) is NaN-aware
   the same way, so lesions and the outside of the brain do not leak into tissue.
3. OLS per voxel within the template brain mask, restricted to voxels valid in every
   participant (so the union of the participants' lesions is left out). Covariates as in the
   regional statistics: group model = one indicator column per group + centred age, sex (and
   genotype for second-generation tracers), contrasts ``B - A``; EDSS model = patients only,
   intercept + centred EDSS + the same covariates.
4. Inference: voxel-wise FDR (Benjamini-Hochberg, two-sided, ``threshold_stats_img``), and
   family-wise error by permutation (``nilearn.glm.second_level.non_parametric_inference``:
   the tested variable, orthogonalised to the covariates, is permuted; Anderson & Robinson
   2001 Aust N Z J Stat 43:75): the max-|t| voxel FWE and the cluster-size FWE of clusters
   formed at two-sided p < ``cluster_p`` (default 0.001). ``--group-permutations`` sets the
   number of permutations (default 5000).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

LOGGER = logging.getLogger("tspo_bidsapp.group")
SYN_ITERATIONS = (40, 20, 0)
#: Permutations of the family-wise tests (``--group-permutations``).
DEFAULT_PERMUTATIONS = 5000
#: Two-sided voxel p-value that forms clusters for the cluster-size FWE test.
CLUSTER_FORMING_P = 0.001


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
    map_file: Path | nib.Nifti1Image, transforms: list[str], template: nib.Nifti1Image
) -> nib.Nifti1Image:
    """A T1w-space map on the template grid (linear; NaN-aware normalised interpolation)."""
    import ants

    img = map_file if isinstance(map_file, nib.Nifti1Image) else nib.load(str(map_file))
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


def mask_lesions(map_file: Path, lesions: Path | None) -> nib.Nifti1Image:
    """The map with the participant's lesion voxels (label > 0) set to NaN (same grid needed)."""
    img = nib.load(str(map_file))
    data = np.asarray(img.dataobj, dtype=np.float32)
    if lesions is None:
        return nib.Nifti1Image(data, img.affine)
    lab = nib.load(str(lesions))
    if lab.shape[:3] != img.shape[:3] or not np.allclose(lab.affine, img.affine, atol=1e-3):
        raise ValueError(f"{map_file} and {lesions} are not on the same grid")
    data = np.where(np.asarray(lab.dataobj) > 0, np.nan, data).astype(np.float32)
    return nib.Nifti1Image(data, img.affine)


def smooth_nan(img: nib.Nifti1Image, fwhm_mm: float | None) -> nib.Nifti1Image:
    """Gaussian smoothing (FWHM, mm) that ignores NaN voxels; NaN voxels stay NaN."""
    if not fwhm_mm:
        return img
    from scipy.ndimage import gaussian_filter

    data = np.asarray(img.dataobj, dtype=np.float64)
    valid = np.isfinite(data)
    zooms = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    sigma = fwhm_mm / np.sqrt(8 * np.log(2)) / zooms
    total = gaussian_filter(np.where(valid, data, 0.0), sigma, mode="constant")
    weight = gaussian_filter(valid.astype(np.float64), sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(valid & (weight > 0), total / weight, np.nan)
    return nib.Nifti1Image(out.astype(np.float32), img.affine)


def covariates(info: pd.DataFrame, *, adjust_genotype: bool) -> pd.DataFrame:
    """Centred age, sex and (second-generation tracers) genotype columns, when they vary."""
    design = pd.DataFrame(index=range(len(info)))
    if info["age"].notna().all() and info["age"].nunique() > 1:
        design["age"] = info["age"].to_numpy(float) - info["age"].mean()
    for col in ("sex",) + (("tspo_genotype",) if adjust_genotype else ()):
        levels = sorted(info[col].dropna().unique())
        if info[col].notna().all() and len(levels) > 1:
            for level in levels[1:]:
                x = (info[col] == level).to_numpy(float)
                design[f"{col}_{level}"] = x - x.mean()
    return design


def group_design(info: pd.DataFrame, *, adjust_genotype: bool) -> pd.DataFrame:
    """Design matrix: group indicators, centred age, sex and genotype (when they vary)."""
    design = pd.get_dummies(info["group"]).astype(float)
    design.index = range(len(design))
    return pd.concat([design, covariates(info, adjust_genotype=adjust_genotype)], axis=1)


def edss_design(info: pd.DataFrame, *, adjust_genotype: bool = False) -> pd.DataFrame:
    """Patients' design: intercept, centred EDSS, and the covariates of :func:`covariates`."""
    design = pd.DataFrame({"intercept": 1.0, "edss": info["edss"].to_numpy(float)})
    design["edss"] -= design["edss"].mean()
    return pd.concat([design, covariates(info, adjust_genotype=adjust_genotype)], axis=1)


def analysis_mask(images: list[nib.Nifti1Image], mask: nib.Nifti1Image):
    """``mask`` restricted to voxels finite in every image, and the NaN-free images."""
    data = np.stack([np.asarray(i.dataobj, dtype=np.float32) for i in images])
    keep = (np.asarray(mask.dataobj) > 0) & np.isfinite(data).all(axis=0)
    if not keep.any():
        raise ValueError("no voxel is valid in every participant's warped map")
    affine = images[0].affine
    clean = [nib.Nifti1Image(np.nan_to_num(d), affine) for d in data]
    return nib.Nifti1Image(keep.astype(np.uint8), affine), clean


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

    mask_img, clean = analysis_mask(images, mask)
    model = SecondLevelModel(mask_img=mask_img, smoothing_fwhm=None)
    model.fit(clean, design_matrix=design)
    z = model.compute_contrast(np.asarray(contrast, float), output_type="z_score")
    with warnings.catch_warnings():  # nothing survives: nilearn warns of an infinite threshold
        warnings.simplefilter("ignore", UserWarning)
        thresholded, threshold = threshold_stats_img(
            z, mask_img=mask_img, alpha=alpha, height_control="fdr", two_sided=True
        )
    return z, thresholded, float(threshold)


def contrast_vector(design: pd.DataFrame, a: str, b: str) -> np.ndarray:
    vec = np.zeros(design.shape[1])
    vec[list(design.columns).index(b)] = 1.0
    vec[list(design.columns).index(a)] = -1.0
    return vec


def permutation_fwe(
    images: list[nib.Nifti1Image],
    design: pd.DataFrame,
    contrast: np.ndarray,
    mask: nib.Nifti1Image,
    *,
    n_perm: int = DEFAULT_PERMUTATIONS,
    cluster_p: float = CLUSTER_FORMING_P,
    random_state: int = 0,
    n_jobs: int = 1,
) -> dict[str, nib.Nifti1Image]:
    """Family-wise error by permutation: ``t``, ``logp_voxel`` (-log10 max-|t| FWE p) and
    ``logp_cluster`` (-log10 cluster-size FWE p, clusters at two-sided p < ``cluster_p``).

    The contrast's columns form the tested variable; the other columns and an intercept are
    nuisance regressors (an all-ones column of ``design`` is replaced by that intercept).
    """
    from nilearn.glm.second_level import non_parametric_inference

    mask_img, clean = analysis_mask(images, mask)
    contrast = np.asarray(contrast, float)
    constant = [c for c in design.columns if np.allclose(design[c], 1.0)]
    keep = [i for i, c in enumerate(design.columns) if c not in constant or contrast[i] != 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = non_parametric_inference(
            clean, design_matrix=design.iloc[:, keep].reset_index(drop=True),
            second_level_contrast=contrast[keep], mask=mask_img, n_perm=int(n_perm),
            two_sided_test=True, threshold=float(cluster_p), model_intercept=True,
            random_state=random_state, n_jobs=n_jobs,
        )  # fmt: skip
    return {"t": out["t"], "logp_voxel": out["logp_max_t"], "logp_cluster": out["logp_max_size"]}


def cluster_table(
    t_img: nib.Nifti1Image, logp_cluster: nib.Nifti1Image, t_threshold: float, alpha: float
) -> pd.DataFrame:
    """Clusters of ``|t| > t_threshold`` (one sign each): size, peak t and MNI mm, FWE p."""
    from scipy import ndimage

    t = np.nan_to_num(t_img.get_fdata())
    logp = logp_cluster.get_fdata()
    voxel_ml = abs(np.linalg.det(t_img.affine[:3, :3])) / 1000.0
    rows = []
    for sign in (1.0, -1.0):
        labels, n = ndimage.label(sign * t > t_threshold)
        if not n:
            continue
        ids = np.arange(1, n + 1)
        size = ndimage.sum_labels(np.ones_like(t), labels, ids)
        peaks = ndimage.maximum_position(sign * t, labels, ids)
        p_fwe = 10.0 ** -ndimage.maximum(logp, labels, ids)
        for k, peak in enumerate(peaks):
            xyz = t_img.affine[:3, :3] @ np.array(peak) + t_img.affine[:3, 3]
            rows.append({"sign": "positive" if sign > 0 else "negative",
                         "n_voxels": int(size[k]), "volume_ml": float(size[k] * voxel_ml),
                         "peak_t": float(t[peak]), "peak_x_mm": xyz[0], "peak_y_mm": xyz[1],
                         "peak_z_mm": xyz[2], "p_fwe_cluster": float(p_fwe[k])})  # fmt: skip
    table = pd.DataFrame(rows, columns=["sign", "n_voxels", "volume_ml", "peak_t", "peak_x_mm",
                                        "peak_y_mm", "peak_z_mm", "p_fwe_cluster"])  # fmt: skip
    table["significant"] = table["p_fwe_cluster"] < alpha
    return table.sort_values("p_fwe_cluster", kind="stable").reset_index(drop=True)
