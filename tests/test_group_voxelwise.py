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
    dinfo = pd.DataFrame({"edss": edss, "age": rng.uniform(30, 60, 15)})
    ddesign = voxelwise.edss_design(dinfo)
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
