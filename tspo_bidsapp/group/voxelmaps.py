"""Voxel-wise second-level runs of one study: warped maps in, z/FWE maps and cluster tables out.

Per tracer/model/ref and measure (DVR, BPND) of each participant's first session: the group
contrasts of :data:`tspo_bidsapp.group.stats.CONTRASTS` and the EDSS slope in patients, with
the covariates of the regional models (:mod:`tspo_bidsapp.group.voxelwise`). Written to
``group/voxelwise/``::

    <stem>_contrast-<C>_stat-z_statmap.nii.gz            unthresholded z
    <stem>_contrast-<C>_stat-z_desc-fdr_statmap.nii.gz   z where voxel FDR q < alpha
    <stem>_contrast-<C>_stat-z_desc-fwe_statmap.nii.gz   z where voxel max-|t| FWE p < alpha
    <stem>_contrast-<C>_stat-logp_desc-fwecluster_statmap.nii.gz   -log10 cluster FWE p
    <stem>_contrast-<C>_clusters.tsv                     clusters, peaks, FWE p
    <stem>_contrast-<C>_stat-z_statmap.json              design, n, thresholds, voxels used
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import stats as sps

from tspo_bidsapp.config import write_text_atomic
from tspo_bidsapp.group import voxelwise
from tspo_bidsapp.group.collect import FIT_KEYS, Collection
from tspo_bidsapp.group.stats import CONTRASTS
from tspo_bidsapp.group.tables import genotype_sensitive

LOGGER = logging.getLogger("tspo_bidsapp.group")
FAMILY = ("tracer", "model", "ref")


def run_voxelwise(coll: Collection, runs: pd.DataFrame, group_dir: Path, options) -> list[Path]:
    """Warp first-session maps (lesions masked) to MNI152 and fit the models; returns z-maps.

    ``runs``: one row per participant (first session/run) and region, excluded rows removed.
    """
    template, mask = voxelwise.mni_template()
    cache = Path(options.work_dir or group_dir.parent.parent / "work") / "group_mni"
    out_dir = group_dir / "voxelwise"
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = runs.drop_duplicates(list(FIT_KEYS))
    zmaps = []
    for (tracer, model, ref), part in runs.groupby(list(FAMILY)):
        for meas in ("DVR", "BPND"):
            images, rows = [], []
            for row in part.itertuples():
                key = (row.participant_id, row.session, tracer, row.rec, row.run, model, ref, meas)
                anat = coll.anat_for(row.participant_id, row.session)
                if key not in coll.maps or "t1w" not in anat:
                    continue
                fwd = voxelwise.register_to_template(anat["t1w"], anat.get("brain_mask"),
                                                     template, cache, threads=options.threads)  # fmt: skip
                masked = voxelwise.mask_lesions(coll.maps[key], anat.get("lesion_ids"))
                warped = voxelwise.warp_to_template(masked, fwd, template)
                images.append(voxelwise.smooth_nan(warped, options.smoothing_fwhm))
                rows.append(row)
            if len(images) < 3:
                continue
            info = pd.DataFrame([r._asdict() for r in rows]).reset_index(drop=True)
            stem = (
                f"tracer-{tracer}_model-{model}" + (f"_ref-{ref}" if ref else "") + f"_meas-{meas}"
            )
            zmaps += voxelwise_models(images, info, mask, out_dir, stem,
                                      genotype_sensitive(tracer), options)  # fmt: skip
    return zmaps


def voxelwise_models(images, info, mask, out_dir, stem, adjust_genotype, options) -> list[Path]:
    """Group contrasts and the patients' EDSS slope of template-space images in ``mask``."""
    out = []
    counts = info["group"].value_counts()
    keep = info["group"].map(counts) >= options.min_group_size
    sel = [img for img, k in zip(images, keep, strict=True) if k]
    design = voxelwise.group_design(info[keep].reset_index(drop=True),
                                    adjust_genotype=adjust_genotype)  # fmt: skip
    for a, b in CONTRASTS:
        if a in design.columns and b in design.columns:
            vec = voxelwise.contrast_vector(design, a, b)
            name = f"{stem}_contrast-{b}minus{a}"
            out.append(save_maps(sel, design, vec, mask, out_dir / name, options))
    pts = info[(info["group"] != "HC") & info["edss"].notna()].index
    if len(pts) >= 5 and info.loc[pts, "edss"].nunique() >= 3:
        design = voxelwise.edss_design(info.loc[pts].reset_index(drop=True),
                                       adjust_genotype=adjust_genotype)  # fmt: skip
        vec = (design.columns == "edss").astype(float)
        out.append(save_maps([images[i] for i in pts], design, vec, mask,
                             out_dir / f"{stem}_contrast-EDSS", options))  # fmt: skip
    return out


def _named(prefix: Path, suffix: str) -> Path:
    return prefix.with_name(prefix.name + "_" + suffix)


def save_maps(images, design, vec, mask, prefix: Path, options) -> Path:
    """FDR and permutation-FWE results of one contrast (files in the module docstring)."""
    z, thr, level = voxelwise.second_level(images, design, vec, mask, alpha=options.alpha)
    fwe = voxelwise.permutation_fwe(images, design, vec, mask, n_perm=options.n_perm,
                                    cluster_p=options.cluster_p, n_jobs=options.threads)  # fmt: skip
    zfile = _named(prefix, "stat-z_statmap.nii.gz")
    nib.save(z, str(zfile))
    nib.save(thr, str(_named(prefix, "stat-z_desc-fdr_statmap.nii.gz")))
    zdata = z.get_fdata()
    survive = fwe["logp_voxel"].get_fdata() > -np.log10(options.alpha)
    nib.save(nib.Nifti1Image(np.where(survive, zdata, 0.0).astype(np.float32), z.affine),
             str(_named(prefix, "stat-z_desc-fwe_statmap.nii.gz")))  # fmt: skip
    nib.save(
        fwe["logp_cluster"],
        str(_named(prefix, "stat-logp_desc-fwecluster_statmap.nii.gz")),
    )
    dof = len(images) - np.linalg.matrix_rank(design.to_numpy(float))
    t_cluster = float(sps.t.isf(options.cluster_p / 2, dof))
    clusters = voxelwise.cluster_table(fwe["t"], fwe["logp_cluster"], t_cluster, options.alpha)
    write_text_atomic(_named(prefix, "clusters.tsv"),
                      clusters.to_csv(sep="\t", index=False, float_format="%.6g"))  # fmt: skip
    n_vox = int(np.count_nonzero(voxelwise.analysis_mask(images, mask)[0].dataobj))
    meta = {"design_columns": list(design.columns), "contrast": list(map(float, vec)),
            "n": len(images), "alpha": options.alpha, "voxels_analysed": n_vox,
            "smoothing_fwhm_mm": options.smoothing_fwhm,
            "lesions": "each participant's lesion voxels masked; the union leaves the analysis",
            "fdr": {"threshold": "voxel-wise FDR (Benjamini-Hochberg), two-sided",
                    "z_threshold": level if np.isfinite(level) else "no voxel survives"},
            "fwe": {"method": "permutation (nilearn non_parametric_inference), two-sided",
                    "n_permutations": options.n_perm,
                    "voxel_fwe_significant": int(survive.sum()),
                    "cluster_forming_p": options.cluster_p, "cluster_forming_t": t_cluster,
                    "clusters_significant": int(clusters["significant"].sum())}}  # fmt: skip
    write_text_atomic(zfile.with_name(zfile.name.replace(".nii.gz", ".json")),
                      json.dumps(meta, indent=2) + "\n")  # fmt: skip
    return zfile
