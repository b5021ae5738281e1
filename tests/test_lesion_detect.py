"""Lesion-wise metrics and the FLAIR-hyperintensity detection stage, on known ground truth.

The stage is checked on a 1.5 mm MS-like phantom (per-lesion contrasts, partial volume, realistic
FLAIR noise, ependymal band, bright choroid plexus) with SAMSEG's outputs emulated from the truth:
SAMSEG's lesion label and a posterior of 0.9 only on the lesions > 0.2 mL (SAMSEG finds the large
lesions and misses small ones on real data). Real SAMSEG runs are in ``test_samseg.py`` (slow).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tspo_bidsapp.anat import labels as L
from tspo_bidsapp.anat.lesion_detect import DetectParams, detect_lesions, nawm_zscore
from tspo_bidsapp.anat.metrics import detection_by_size, lesion_report

VOX = 1.5
ZOOMS = (VOX, VOX, VOX)


def _ball(shape, centre, radius_vox):
    grid = np.indices(shape).astype(np.float32)
    c = np.asarray(centre, np.float32).reshape(3, 1, 1, 1)
    return ((grid - c) ** 2).sum(0) <= radius_vox**2


def test_detection_by_size_counts_each_bin():
    shape = (60, 30, 30)
    ref = np.zeros(shape, bool)
    small = _ball(shape, (8, 15, 15), 1.0)  # 7 voxels of 1 mm^3 = 0.007 mL
    mid = _ball(shape, (25, 15, 15), 2.5)  # 81 voxels = 0.081 mL
    big = _ball(shape, (45, 15, 15), 4.5)  # 381 voxels = 0.381 mL
    ref = small | mid | big
    pred = big.copy()
    pred[25, 15, 15] = True  # one voxel of the middle lesion: detected (any overlap)
    pred[5:7, 2:4, 2:4] = True  # a false-positive lesion
    by = detection_by_size(pred, ref, (1.0, 1.0, 1.0))
    assert by["<0.05mL"] == {"n_reference": 1, "n_detected": 0, "tpr": 0.0}
    assert by["0.05-0.2mL"] == {"n_reference": 1, "n_detected": 1, "tpr": 1.0}
    assert by[">0.2mL"]["tpr"] == 1.0 and by[">=0.05mL"]["n_detected"] == 2
    rep = lesion_report(pred, ref, (1.0, 1.0, 1.0))
    assert rep["n_false_positive"] == 1 and rep["n_reference"] == 3
    assert rep["dice"] == pytest.approx(2 * (big.sum() + 1) / (ref.sum() + pred.sum()))
    assert rep["volume_error_ml"] == pytest.approx((pred.sum() - ref.sum()) / 1000)
    # voxel size enters the volume: at 2 mm the small lesion is 0.056 mL
    assert detection_by_size(pred, ref, (2.0, 2.0, 2.0))["<0.05mL"]["n_reference"] == 0


@pytest.fixture(scope="module")
def phantom():
    from tspo_bidsapp.synthetic.anatomy import build_anatomy
    from tspo_bidsapp.synthetic.lesions import plant_lesions
    from tspo_bidsapp.synthetic.ms_mri import (
        emulated_samseg,
        phantom_lesion_specs,
        synth_ms_contrasts,
    )

    rng = np.random.default_rng(7)
    anat = build_anatomy(VOX)
    labels, ids, _ = plant_lesions(anat, phantom_lesion_specs(rng, 20), rng)
    images = synth_ms_contrasts(anat, labels, ids, rng)
    dseg, posterior = emulated_samseg(labels, ids, anat.affine, found_above_ml=0.2)
    return dict(anat=anat, labels=labels, ids=ids, dseg=dseg, posterior=posterior, **images)


def test_flair_zscore_is_standard_in_nawm_despite_bias(phantom):
    nawm = L.in_labels(phantom["dseg"], L.CEREBRAL_WM) & (phantom["ids"] == 0)
    z = nawm_zscore(phantom["flair"], nawm, ZOOMS, 10.0)
    assert abs(float(np.median(z[nawm]))) < 0.05
    assert 0.8 < float(np.percentile(z[nawm], 84) - np.median(z[nawm])) < 1.25
    lesion_core = ndimage.binary_erosion(phantom["ids"] > 0, iterations=1)
    assert np.median(z[lesion_core]) > 3.0  # lesions 1.25-1.65x WM, noise ~6 %


def test_stage_finds_small_lesions_without_false_positives(phantom):
    ref = phantom["ids"] > 0
    samseg = phantom["dseg"] == 99
    mask = detect_lesions(
        phantom["dseg"], phantom["posterior"], phantom["flair"], ZOOMS,
        t1w=phantom["t1w"], t2w=phantom["t2w"],
    )  # fmt: skip
    before, after = lesion_report(samseg, ref, ZOOMS), lesion_report(mask, ref, ZOOMS)
    assert before["by_size"]["0.05-0.2mL"]["tpr"] == 0.0  # the emulated SAMSEG misses them
    assert after["by_size"][">=0.05mL"]["tpr"] >= 0.9
    assert after["by_size"][">0.2mL"]["tpr"] == 1.0
    assert after["n_false_positive"] <= 1
    assert after["dice"] >= 0.8 and abs(after["volume_error_rel"]) < 0.2
    assert not (mask & L.in_labels(phantom["dseg"], L.CORTEX + L.CHOROID_PLEXUS)).any()


def test_no_lesions_found_in_a_lesion_free_brain(phantom):
    """Ependymal FLAIR band, choroid plexus and noise alone must not make lesions."""
    from tspo_bidsapp.synthetic.ms_mri import synth_ms_contrasts

    rng = np.random.default_rng(11)
    anat = phantom["anat"]
    images = synth_ms_contrasts(anat, anat.labels, np.zeros(anat.shape, np.int64), rng)
    dseg = np.where(phantom["ids"] > 0, 2, phantom["dseg"])
    mask = detect_lesions(
        dseg, np.zeros(anat.shape, np.float32), images["flair"], ZOOMS,
        t1w=images["t1w"], t2w=images["t2w"],
    )  # fmt: skip
    assert mask.sum() * VOX**3 < 30.0  # < 30 mm^3 in the whole brain


def test_t2w_vetoes_a_flair_only_hyperintensity(phantom):
    """A FLAIR-bright spot that is not T2w-bright (e.g. an artefact) is kept only without T2w."""
    wm = L.in_labels(phantom["dseg"], L.CEREBRAL_WM)
    deep = ndimage.distance_transform_edt(wm) * VOX > 8.0
    deep &= ndimage.distance_transform_edt(phantom["ids"] == 0) * VOX > 10.0
    centre = np.argwhere(deep)[len(np.argwhere(deep)) // 2]
    spot = _ball(phantom["flair"].shape, centre, 2.0)
    flair = phantom["flair"].copy()
    flair[spot] *= 1.5
    args = (phantom["dseg"], phantom["posterior"], flair, ZOOMS)
    without = detect_lesions(*args, t1w=phantom["t1w"])
    with_t2 = detect_lesions(*args, t1w=phantom["t1w"], t2w=phantom["t2w"])
    assert without[spot].mean() > 0.8
    assert not with_t2[spot].any()


def test_bad_shapes_and_empty_white_matter_are_refused(phantom):
    dseg = phantom["dseg"]
    with pytest.raises(ValueError, match="flair shape"):
        detect_lesions(dseg, phantom["posterior"], phantom["flair"][:-1], ZOOMS)
    with pytest.raises(ValueError, match="white matter"):
        detect_lesions(
            np.zeros_like(dseg), phantom["posterior"], phantom["flair"], ZOOMS,
            params=DetectParams(),
        )  # fmt: skip


def test_interface_writes_the_stage_mask_and_its_record(phantom, tmp_path):
    import json

    import nibabel as nib

    from tspo_bidsapp.interfaces.anat import DetectLesions

    affine = phantom["anat"].affine
    paths = {}
    for key in ("dseg", "posterior", "flair", "t1w", "t2w"):
        paths[key] = str(tmp_path / f"{key}.nii.gz")
        nib.save(nib.Nifti1Image(np.asarray(phantom[key]), affine), paths[key])
    res = DetectLesions(
        dseg=paths["dseg"], lesion_probseg=paths["posterior"], flair=paths["flair"],
        t1w=paths["t1w"], t2w=paths["t2w"],
    ).run(cwd=str(tmp_path))  # fmt: skip
    mask = np.asarray(nib.load(res.outputs.lesion_mask).dataobj) > 0
    rep = lesion_report(mask, phantom["ids"] > 0, ZOOMS)
    assert rep["by_size"][">=0.05mL"]["tpr"] >= 0.9 and rep["n_false_positive"] <= 1
    record = json.loads(open(res.outputs.out_report).read())
    assert record["used_t2w"] is True
    assert record["lesion_ml"] == pytest.approx(mask.sum() * VOX**3 / 1000)


def test_workflow_and_cli_choose_the_detection_method():
    from tspo_bidsapp.cli.parser import build_parser
    from tspo_bidsapp.workflows.anat import init_anat_wf

    wf = init_anat_wf(subject="01", has_flair=True, has_t2w=True)
    assert "detect_lesions" in wf.list_node_names()
    edge = wf._graph.get_edge_data(wf.get_node("inputnode"), wf.get_node("detect_lesions"))
    assert ("t2w", "t2w") in edge["connect"]
    plain = init_anat_wf(subject="01", has_flair=True, lesion_detection="samseg")
    assert "detect_lesions" not in plain.list_node_names()
    assert "detect_lesions" not in init_anat_wf(subject="01", has_flair=False).list_node_names()
    with pytest.raises(ValueError, match="lesion_detection"):
        init_anat_wf(subject="01", lesion_detection="lst")
    opts = build_parser().parse_args(["bids", "out", "participant", "--lesion-detection", "samseg"])
    assert opts.lesion_detection == "samseg"
    assert build_parser().parse_args(["bids", "out", "participant"]).lesion_detection == (
        "samseg+flair"
    )
