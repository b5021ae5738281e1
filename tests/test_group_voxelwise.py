"""Voxel-wise group model: a planted group difference and EDSS effect on tiny images already in
template space (registration bypassed), and real ANTsPy SyN to the MNI152 template (slow)."""

from __future__ import annotations

import time

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.group import voxelwise

SHAPE = (10, 10, 10)
BLOCK = (slice(3, 6), slice(3, 6), slice(3, 6))


def _images(rng, n, shift=0.0, edss=None):
    out = []
    for i in range(n):
        data = rng.normal(1.2, 0.05, SHAPE)
        data[BLOCK] += shift + (0.0 if edss is None else 0.08 * edss[i])
        out.append(nib.Nifti1Image(data.astype(np.float32), np.diag([4.0, 4, 4, 1])))
    return out


def test_planted_group_difference_and_edss():
    rng = np.random.default_rng(7)
    mask = nib.Nifti1Image(np.ones(SHAPE, np.uint8), np.diag([4.0, 4, 4, 1]))
    info = pd.DataFrame({"group": ["HC"] * 12 + ["SPMS"] * 12,
                         "age": rng.uniform(30, 60, 24), "sex": ["F", "M"] * 12})  # fmt: skip
    images = _images(rng, 12) + _images(rng, 12, shift=0.3)
    design = voxelwise.group_design(info, adjust_genotype=False)
    assert list(design.columns) == ["HC", "SPMS", "age", "sex_M"]
    vec = voxelwise.contrast_vector(design, "HC", "SPMS")
    z, thr, level = voxelwise.second_level(images, design, vec, mask, alpha=0.05)
    z, thr = z.get_fdata(), thr.get_fdata()
    inside = np.zeros(SHAPE, bool)
    inside[BLOCK] = True
    assert (z[inside] > 5).all() and level > 2  # FDR z threshold
    assert (thr[inside] > 0).all()
    assert (thr[~inside] != 0).mean() < 0.01  # at most ~FDR-level false positives
    # EDSS: block binding rises 0.08 per point in patients, nothing elsewhere
    edss = np.linspace(1, 7, 15)
    pts = _images(rng, 15, edss=edss)
    dinfo = pd.DataFrame({"edss": edss, "age": rng.uniform(30, 60, 15), "sex": ["F", "M", "F"] * 5,
                          "tspo_genotype": ["HAB", "MAB"] * 7 + ["HAB"]})  # fmt: skip
    ddesign = voxelwise.edss_design(dinfo, adjust_genotype=True)
    assert list(ddesign.columns) == ["intercept", "edss", "age", "sex_M", "tspo_genotype_MAB"]
    z, thr, _ = voxelwise.second_level(pts, ddesign, (ddesign.columns == "edss").astype(float),
                                       mask)  # fmt: skip
    assert (thr.get_fdata()[inside] > 3).all() and (thr.get_fdata()[~inside] != 0).mean() < 0.01


def test_nan_voxels_leave_the_mask():
    rng = np.random.default_rng(1)
    mask = nib.Nifti1Image(np.ones(SHAPE, np.uint8), np.diag([4.0, 4, 4, 1]))
    images = _images(rng, 4) + _images(rng, 4, shift=0.3)
    images[0].get_fdata()  # cached array is not used by second_level
    data = np.asarray(images[0].dataobj).copy()
    data[0, 0, 0] = np.nan
    images[0] = nib.Nifti1Image(data, images[0].affine)
    info = pd.DataFrame({"group": ["HC"] * 4 + ["SPMS"] * 4, "age": np.nan, "sex": "F"})
    design = voxelwise.group_design(info, adjust_genotype=False)
    z, _, _ = voxelwise.second_level(
        images, design, voxelwise.contrast_vector(design, "HC", "SPMS"), mask
    )
    assert z.get_fdata()[0, 0, 0] == 0 and z.get_fdata()[4, 4, 4] > 3


@pytest.mark.slow
def test_syn_to_mni_recovers_a_shift(tmp_path):
    """The template itself, placed 8 mm off in world space with a blob 'map': after SyN and
    warping, the blob lands back on its template voxel and the T1w matches the template."""
    template, mask = voxelwise.mni_template()
    data = template.get_fdata().astype(np.float32)
    moved = template.affine.copy()
    moved[:3, 3] += (8.0, -6.0, 4.0)
    t1w = tmp_path / "sub-01_desc-preproc_T1w.nii.gz"
    nib.save(nib.Nifti1Image(data, moved), t1w)
    blob = np.full(data.shape, np.nan, np.float32)
    centre = np.array([30, 60, 45])
    ii, jj, kk = np.indices(data.shape)
    ball = (ii - centre[0]) ** 2 + (jj - centre[1]) ** 2 + (kk - centre[2]) ** 2 <= 9
    brain = np.asarray(mask.dataobj) > 0
    blob[brain] = 1.0
    blob[ball] = 2.0
    dvr = tmp_path / "dvr.nii.gz"
    nib.save(nib.Nifti1Image(blob, moved), dvr)
    start = time.perf_counter()
    fwd = voxelwise.register_to_template(t1w, None, template, tmp_path / "cache", threads=2)
    took = time.perf_counter() - start
    warped = voxelwise.warp_to_template(dvr, fwd, template).get_fdata()
    hot = np.argwhere(warped > 1.5)
    assert np.linalg.norm(hot.mean(axis=0) - centre) * 2.0 < 2.0  # mm
    ok = np.isfinite(warped) & brain
    assert ok.sum() > 0.95 * brain.sum()
    t0 = time.perf_counter()
    assert voxelwise.register_to_template(t1w, None, template, tmp_path / "cache") == fwd
    assert time.perf_counter() - t0 < 1.0  # cached
    print(f"SyN to MNI152 2 mm: {took:.1f} s")


def _study(rng, n=12, shift=0.3, genotype_effect=0.0):
    info = pd.DataFrame({"group": ["HC"] * n + ["SPMS"] * n, "age": rng.uniform(30, 60, 2 * n),
                         "sex": ["F", "M"] * n, "tspo_genotype": ["HAB", "HAB", "MAB"] * (2 * n // 3)})  # fmt: skip
    images = _images(rng, n) + _images(rng, n, shift=shift)
    for k, geno in enumerate(info["tspo_genotype"]):
        if geno == "MAB":  # genotype lowers binding everywhere
            images[k] = nib.Nifti1Image(images[k].get_fdata().astype(np.float32) + genotype_effect,
                                        images[k].affine)  # fmt: skip
    return info, images


def test_permutation_fwe_finds_the_block_and_nothing_else():
    rng = np.random.default_rng(3)
    mask = nib.Nifti1Image(np.ones(SHAPE, np.uint8), np.diag([4.0, 4, 4, 1]))
    info, images = _study(rng, genotype_effect=-0.2)
    design = voxelwise.group_design(info, adjust_genotype=True)
    assert "tspo_genotype_MAB" in design.columns
    vec = voxelwise.contrast_vector(design, "HC", "SPMS")
    fwe = voxelwise.permutation_fwe(images, design, vec, mask, n_perm=200, cluster_p=0.001)
    p_voxel = 10 ** -fwe["logp_voxel"].get_fdata()
    inside = np.zeros(SHAPE, bool)
    inside[BLOCK] = True
    assert (p_voxel[inside] < 0.05).all() and (p_voxel[~inside] >= 0.05).all()
    table = voxelwise.cluster_table(fwe["t"], fwe["logp_cluster"], 3.5, 0.05)
    top = table.iloc[0]
    assert top["n_voxels"] == 27 and top["significant"] and top["sign"] == "positive"
    assert top["p_fwe_cluster"] <= 1 / 200 + 1e-9
    assert (top[["peak_x_mm", "peak_y_mm", "peak_z_mm"]].to_numpy(float) >= 12).all()
    assert (top[["peak_x_mm", "peak_y_mm", "peak_z_mm"]].to_numpy(float) <= 20).all()
    assert table["significant"].sum() == 1
    # the same data without the group effect: no voxel survives
    info, images = _study(np.random.default_rng(4), shift=0.0, genotype_effect=-0.2)
    fwe = voxelwise.permutation_fwe(images, design, vec, mask, n_perm=200)
    assert (10 ** -fwe["logp_voxel"].get_fdata() >= 0.05).all()


def test_lesions_masked_and_smoothing_ignores_nan(tmp_path):
    affine = np.diag([2.0, 2, 2, 1])
    data = np.full(SHAPE, 1.0, np.float32)
    data[5:, :, :] = 2.0
    lesions = np.zeros(SHAPE, np.uint8)
    lesions[2:4, 2:4, 2:4] = 7
    data[lesions > 0] = 50.0  # a hot lesion must not leak into the map
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "dvr.nii.gz")
    nib.save(nib.Nifti1Image(lesions, affine), tmp_path / "les.nii.gz")
    masked = voxelwise.mask_lesions(tmp_path / "dvr.nii.gz", tmp_path / "les.nii.gz")
    out = voxelwise.smooth_nan(masked, 4.0).get_fdata()
    assert np.isnan(out[lesions > 0]).all() and np.isfinite(out[lesions == 0]).all()
    assert np.nanmax(out) <= 2.0 + 1e-5 and np.nanmin(out) >= 1.0 - 1e-5
    # far from the edge between 1 and 2 the values are unchanged; at the edge, mixed
    assert out[0, 5, 5] == pytest.approx(1.0, abs=1e-4) and 1.2 < out[4, 5, 5] < 1.8
    nib.save(nib.Nifti1Image(lesions[:-1], affine), tmp_path / "bad.nii.gz")
    with pytest.raises(ValueError, match="bad.nii.gz"):
        voxelwise.mask_lesions(tmp_path / "dvr.nii.gz", tmp_path / "bad.nii.gz")


def test_voxelwise_models_write_fdr_fwe_and_clusters(tmp_path):
    """The study-level driver: group contrast and patients' EDSS with the regional covariates."""
    import json

    from tspo_bidsapp.group.analysis import GroupOptions
    from tspo_bidsapp.group.voxelmaps import voxelwise_models

    rng = np.random.default_rng(11)
    mask = nib.Nifti1Image(np.ones(SHAPE, np.uint8), np.diag([4.0, 4, 4, 1]))
    info, images = _study(rng, genotype_effect=-0.2)
    info["edss"] = np.where(info["group"] == "HC", 0.0, np.tile([2.0, 4, 6], 8))
    options = GroupOptions(n_perm=100)
    zfiles = voxelwise_models(images, info, mask, tmp_path, "meas-DVR", True, options)
    assert [z.name for z in zfiles] == [
        "meas-DVR_contrast-SPMSminusHC_stat-z_statmap.nii.gz",
        "meas-DVR_contrast-EDSS_stat-z_statmap.nii.gz",
    ]
    meta = json.loads((tmp_path / "meas-DVR_contrast-SPMSminusHC_stat-z_statmap.json").read_text())
    assert meta["design_columns"] == ["HC", "SPMS", "age", "sex_M", "tspo_genotype_MAB"]
    assert meta["fwe"]["voxel_fwe_significant"] == 27 and meta["fwe"]["clusters_significant"] == 1
    edss = json.loads((tmp_path / "meas-DVR_contrast-EDSS_stat-z_statmap.json").read_text())
    assert edss["n"] == 12 and "tspo_genotype_MAB" in edss["design_columns"]
    assert edss["fwe"]["voxel_fwe_significant"] == 0  # no EDSS effect planted
    fwe = nib.load(tmp_path / "meas-DVR_contrast-SPMSminusHC_stat-z_desc-fwe_statmap.nii.gz")
    assert (fwe.get_fdata()[BLOCK] > 3).all()
