"""Anatomical workflow with supplied derivatives (no SAMSEG): discovery, import and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tspo_bidsapp.anat import labels as L
from tspo_bidsapp.anat.supplied import find_supplied, load_supplied_dseg
from tspo_bidsapp.workflows.anat import anat_sources, init_anat_wf

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _toy_subject(tmp_path: Path):
    """A 2 mm toy head: aseg-labelled dseg, T1w/FLAIR intensities, one 4x4x4-voxel lesion."""
    d = np.zeros((32, 32, 32), np.int16)
    d[4:28, 4:28, 12:28] = 2
    d[4:28, 4:28, 26:28] = 3
    d[12:20, 12:20, 16:20] = 10
    d[8:24, 8:24, 2:11] = 8
    d[14:18, 14:18, 4:8] = 7
    d[15:17, 15:17, 11:12] = 16
    lesion = np.zeros(d.shape, np.uint8)
    lesion[6:10, 6:10, 18:22] = 1
    t1 = np.where(d == 2, 110.0, np.where(d > 0, 70.0, 0.0)).astype(np.float32)
    t1 *= np.linspace(0.9, 1.1, 32)[:, None, None].astype(np.float32)
    raw = tmp_path / "bids" / "sub-01" / "anat"
    raw.mkdir(parents=True)
    nib.save(nib.Nifti1Image(t1, AFFINE), raw / "sub-01_T1w.nii.gz")
    nib.save(nib.Nifti1Image(t1, AFFINE), raw / "sub-01_FLAIR.nii.gz")
    deriv = tmp_path / "deriv"
    anat = deriv / "sub-01" / "anat"
    anat.mkdir(parents=True)
    nib.save(nib.Nifti1Image(d, AFFINE), anat / "sub-01_space-T1w_desc-aseg_dseg.nii.gz")
    L.write_dseg_tsv(anat / "sub-01_space-T1w_desc-aseg_dseg.tsv", L.FREESURFER_LABELS)
    nib.save(nib.Nifti1Image(lesion, AFFINE), anat / "sub-01_space-T1w_label-lesion_mask.nii.gz")
    # files that must be ignored: another subject, another space, our own outputs
    nib.save(nib.Nifti1Image(lesion, AFFINE), anat / "sub-01_space-MNI152_label-lesion_mask.nii.gz")
    nib.save(nib.Nifti1Image(d, AFFINE), anat / "sub-01_seg-tspoms_dseg.nii.gz")
    (deriv / "sub-02" / "anat").mkdir(parents=True)
    nib.save(
        nib.Nifti1Image(lesion, AFFINE),
        deriv / "sub-02" / "anat" / "sub-02_label-lesion_mask.nii.gz",
    )
    return raw, deriv, d, lesion


def test_find_supplied_and_errors(tmp_path):
    raw, deriv, d, _ = _toy_subject(tmp_path)
    found = find_supplied([deriv], "sub-01", session="1")
    assert found.lesion_mask.name == "sub-01_space-T1w_label-lesion_mask.nii.gz"
    assert found.dseg.name == "sub-01_space-T1w_desc-aseg_dseg.nii.gz"
    assert found.dseg_tsv.name == "sub-01_space-T1w_desc-aseg_dseg.tsv"
    assert find_supplied([deriv], "03").lesion_mask is None
    # a second matching mask is ambiguous: error names the directory and the files
    extra = deriv / "sub-01" / "anat" / "sub-01_desc-lesion_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), AFFINE), extra)
    with pytest.raises(ValueError, match="several lesion mask"):
        find_supplied([deriv], "01")
    extra.unlink()
    # a table without FreeSurfer names for the needed indices is refused, naming the file
    tsv = found.dseg_tsv
    tsv.write_text("index\tname\n2\tWM\n3\tGM\n8\tCB\n41\tR-WM\n42\tR-GM\n47\tRCB\n")
    with pytest.raises(ValueError, match="expected FreeSurfer"):
        load_supplied_dseg(found.dseg, tsv, raw / "sub-01_T1w.nii.gz")
    tsv.write_text("idx\tname\n")
    with pytest.raises(ValueError, match="no 'index' column"):
        load_supplied_dseg(found.dseg, tsv, raw / "sub-01_T1w.nii.gz")


def test_sources_and_warnings_without_flair(tmp_path):
    raw, deriv, *_ = _toy_subject(tmp_path)
    sources, warnings = anat_sources(find_supplied([deriv], "01"), has_flair=False)
    assert sources["lesion_mask"].startswith("supplied:")
    assert any("No FLAIR" in w for w in warnings)
    empty = find_supplied([tmp_path / "bids"], "01")
    sources, warnings = anat_sources(empty, has_flair=False)
    assert sources == {"segmentation": "computed: SAMSEG (T1w only)", "lesion_mask": "none"}
    assert any("NOT segmented" in w for w in warnings)
    wf = init_anat_wf(subject="01", has_flair=True, derivatives=[], omp_nthreads=2)
    assert "samseg" in wf.list_node_names()
    assert wf.get_node("samseg").inputs.threads == 2


def test_workflow_with_supplied_segmentation_runs_in_seconds(tmp_path):
    raw, deriv, d, lesion = _toy_subject(tmp_path)
    out = tmp_path / "out"
    wf = init_anat_wf(subject="01", has_flair=True, derivatives=[str(deriv)], output_dir=str(out))
    assert "samseg" not in wf.list_node_names()
    wf.base_dir = str(tmp_path / "work")
    wf.inputs.inputnode.t1w = str(raw / "sub-01_T1w.nii.gz")
    wf.inputs.inputnode.flair = str(raw / "sub-01_FLAIR.nii.gz")
    wf.run(plugin="Linear")
    anat = out / "sub-01" / "anat"
    names = {p.name for p in anat.iterdir()}
    for name in (
        "sub-01_desc-preproc_T1w.nii.gz",
        "sub-01_desc-brain_mask.nii.gz",
        "sub-01_dseg.nii.gz",
        "sub-01_dseg.tsv",
        "sub-01_label-lesion_mask.nii.gz",
        "sub-01_desc-lesions_dseg.nii.gz",
        "sub-01_seg-tspoms_dseg.nii.gz",
        "sub-01_seg-tspoms_dseg.tsv",
        "sub-01_seg-tspoms_morph.tsv",
    ):
        assert name in names, name
    assert "sub-01_label-lesion_probseg.nii.gz" not in names  # not computed
    meta = json.loads((anat / "sub-01_label-lesion_mask.json").read_text())
    assert meta["LesionMaskSource"].startswith("supplied:")
    tsp = np.asarray(nib.load(anat / "sub-01_seg-tspoms_dseg.nii.gz").dataobj)
    np.testing.assert_array_equal(tsp == 1, lesion > 0)
    rows = dict(
        (ln.split("\t")[1], float(ln.split("\t")[2]))
        for ln in (anat / "sub-01_seg-tspoms_morph.tsv").read_text().splitlines()[1:]
    )
    assert rows["WM-lesions"] == pytest.approx(64 * 8 / 1000)  # 64 voxels of 8 mm^3
    assert rows["thalamus"] == pytest.approx((d == 10).sum() * 8 / 1000)
    assert sum(rows.values()) == pytest.approx((d > 0).sum() * 8 / 1000)
    ids = np.asarray(nib.load(anat / "sub-01_desc-lesions_dseg.nii.gz").dataobj)
    assert ids.max() == 1
    pre = nib.load(anat / "sub-01_desc-preproc_T1w.nii.gz").get_fdata()
    wm = pre[d == 2]
    raw_wm = nib.load(raw / "sub-01_T1w.nii.gz").get_fdata()[d == 2]
    assert wm.std() / wm.mean() < raw_wm.std() / raw_wm.mean()  # N4 flattened the bias ramp
