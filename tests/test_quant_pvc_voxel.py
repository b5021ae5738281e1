"""Voxel-wise PVC (RBV, iterative Yang) on small lesion phantoms blurred by a known PSF."""

import numpy as np
import pytest
from scipy import ndimage

from tspo_bidsapp.quant.phenotypes import PhenotypeRule, lesion_phenotypes
from tspo_bidsapp.quant.pvc import FWHM_TO_SIGMA, fwhm_xyz, psf_sigma_vox
from tspo_bidsapp.quant.pvc_voxel import (
    iterative_yang,
    parent_tacs,
    pvc_regions,
    rbv_correct,
    voxel_pvc,
)

ZOOMS = (1.0, 1.0, 1.0)
WM, GM, LESION = 3, 2, 7  # segmentation indices of the phantom


def _phantom(radius=3.0, core=1.0, rim=1.5, wm=1.1, n_frames=2):
    """WM slab with a GM layer, one lesion of ``radius`` mm with a 2 mm rim; frames scale."""
    shape = (48, 40, 40)
    seg = np.zeros(shape, np.int32)
    seg[6:42, 6:34, 6:34] = WM
    seg[6:42, 6:34, 28:34] = GM
    r = np.sqrt(((np.indices(shape) - np.array([24, 20, 16])[:, None, None, None]) ** 2).sum(0))
    ids = (r <= radius).astype(np.int32)
    seg[ids > 0] = LESION
    regions = pvc_regions(seg, ids, np.isin(seg, [WM, LESION]), ZOOMS, extracerebral_mm=4.0)
    rim_mask = regions.labels == regions.lesion_rim[0]
    value = np.zeros(shape, np.float32)
    value[seg == WM], value[seg == GM], value[rim_mask], value[ids > 0] = wm, 1.4, rim, core
    scales = np.linspace(1.0, 2.0, n_frames, dtype=np.float32)
    truth = value[..., None] * scales
    return seg, ids, regions, truth


def _blur(truth, fwhm):
    sigma = psf_sigma_vox(fwhm, ZOOMS)
    return np.stack(
        [ndimage.gaussian_filter(truth[..., f], sigma, mode="nearest") for f in range(2)], -1
    )


def test_fwhm_is_one_or_three_positive_values():
    assert fwhm_xyz(5.0) == (5.0, 5.0, 5.0)
    assert fwhm_xyz([4.0, 5.0, 6.0]) == (4.0, 5.0, 6.0)
    assert psf_sigma_vox((4.0, 5.0, 6.0), (1.0, 2.0, 1.0))[1] == pytest.approx(2.5 * FWHM_TO_SIGMA)
    for bad in (0.0, [5.0, 5.0], [5.0, -1.0, 5.0], float("nan")):
        with pytest.raises(ValueError, match="FWHM"):
            fwhm_xyz(bad)


def test_regions_give_every_lesion_core_and_rim_its_own_label():
    seg, ids, regions, _ = _phantom()
    labels = regions.labels
    assert (labels[ids > 0] == regions.lesion_core[0]).all()
    rim = labels == regions.lesion_rim[0]
    d = ndimage.distance_transform_edt(ids == 0)
    # 2 mm from the lesion surface, half a voxel beyond the outer voxel centres
    assert rim.sum() == ((d > 0) & (d <= 2.5) & (seg == WM)).sum()
    # background split: a band of extra-cerebral tissue around the brain, the far field is 0
    band = labels == regions.extracerebral
    assert band.any() and (labels == 0).any() and not (band & (seg > 0)).any()
    assert regions.parent[regions.lesion_core[0]] == LESION
    assert regions.parent[regions.lesion_rim[0]] == WM


def test_rbv_restores_a_small_rim_active_lesion_under_an_anisotropic_psf():
    """Core 1.0 / rim 1.5 / WM 1.1, 6 mm lesion: blurred, the core reads above the rim."""
    seg, ids, regions, truth = _phantom()
    fwhm = (4.0, 5.0, 6.0)
    observed = _blur(truth, fwhm)
    rim = regions.labels == regions.lesion_rim[0]
    assert observed[ids > 0, 0].mean() > observed[rim, 0].mean()  # rim contrast lost
    res = rbv_correct(observed, regions.labels, ZOOMS, fwhm)
    np.testing.assert_allclose(res.image, truth, rtol=2e-3, atol=2e-3)
    tacs = parent_tacs(regions, res.regional)
    assert tacs[WM] == pytest.approx(
        [truth[np.isin(regions.labels, [WM, regions.lesion_rim[0]]), f].mean() for f in range(2)],
        rel=2e-3,
    )
    assert tacs[LESION] == pytest.approx([1.0, 2.0], rel=2e-3)


def test_iterative_yang_approaches_the_region_values():
    seg, ids, regions, truth = _phantom(radius=4.0)
    observed = _blur(truth, 5.0)
    res = iterative_yang(observed, regions.labels, ZOOMS, 5.0)
    ids_ = list(res.regional.region_ids)
    core = ids_.index(regions.lesion_core[0])
    rim = ids_.index(regions.lesion_rim[0])
    assert res.regional.observed[core, 0] > 1.15  # spill-in from the rim ...
    assert res.regional.tacs[core, 0] == pytest.approx(1.0, abs=0.05)  # ... removed
    assert res.regional.tacs[rim, 0] == pytest.approx(1.5, abs=0.08)
    wm = seg == WM
    assert res.image[wm & (regions.labels == WM), 1].mean() == pytest.approx(2.2, rel=0.01)
    with pytest.raises(ValueError, match="method"):
        voxel_pvc(observed, regions.labels, ZOOMS, 5.0, "pvc")


@pytest.mark.parametrize("method", ["rbv", "iy"])
def test_phenotype_of_a_6mm_rim_active_lesion_needs_correction(method):
    """Uncorrected at 5 mm FWHM the lesion reads overall-active; corrected, rim-active."""
    seg, ids, regions, truth = _phantom()
    observed = _blur(truth, 5.0)
    wm = np.isin(seg, [WM])
    rule = PhenotypeRule(method="lesion")
    before = lesion_phenotypes(observed[..., 0], ids, wm, ZOOMS, rule)
    assert before.loc[0, "phenotype"] != "rim-active"
    corrected = voxel_pvc(observed, regions.labels, ZOOMS, 5.0, method).image[..., 0]
    after = lesion_phenotypes(corrected, ids, wm, ZOOMS, rule)
    assert after.loc[0, "phenotype"] == "rim-active"
    assert after.loc[0, "rim_excess"] == pytest.approx(1.5 / 1.1 - 1, abs=0.1)


def test_gtm_interface_corrects_a_lesion_phantom_voxel_wise(tmp_path):
    """GTMCorrect (rbv) on NIfTI files: lesion-aware regions, corrected image and TACs."""
    import json

    import nibabel as nib

    from tspo_bidsapp.anat.labels import TSPOMS_INDEX, TSPOMS_LABELS, write_dseg_tsv
    from tspo_bidsapp.interfaces.pvc import GTMCorrect
    from tspo_bidsapp.io.timing import FrameTiming
    from tspo_bidsapp.quant.tacs import read_tacs_tsv
    from tspo_bidsapp.synthetic.pet import PetGeometry
    from tspo_bidsapp.synthetic.sidecar import pet_sidecar
    from tspo_bidsapp.tracers import lookup_tracer

    seg, ids, regions, truth = _phantom()
    tsp = np.zeros(seg.shape, np.uint8)
    tsp[seg == WM], tsp[seg == GM] = TSPOMS_INDEX["NAWM"], TSPOMS_INDEX["cortical-GM"]
    tsp[ids > 0] = TSPOMS_INDEX["WM-lesions"]
    ref = np.zeros(seg.shape, bool)
    ref[8:14, 8:14, 30:33] = True  # inside the GM layer, activity 1.4
    observed = _blur(truth, (4.0, 4.0, 6.0))

    def save(data, name, dtype=np.float32):
        nib.save(nib.Nifti1Image(np.asarray(data, dtype), np.eye(4)), str(tmp_path / name))
        return str(tmp_path / name)

    timing = FrameTiming.from_durations_s([300.0, 300.0])
    meta = pet_sidecar(lookup_tracer("PBR28"), timing, 400.0, PetGeometry(np.eye(4), seg.shape, 0,
                       np.eye(4), 4.5), np.random.default_rng(0))  # fmt: skip
    (tmp_path / "pet.json").write_text(json.dumps(meta))
    node = GTMCorrect(
        pet_file=save(observed, "pet.nii.gz"), sidecar_file=str(tmp_path / "pet.json"),
        dseg_file=save(tsp, "dseg.nii.gz", np.uint8), lesion_ids=save(ids, "ids.nii.gz", np.int32),
        dseg_tsv=str(write_dseg_tsv(tmp_path / "dseg.tsv", TSPOMS_LABELS)),
        ref_mask=save(ref, "ref.nii.gz", np.uint8), fwhm_mm=[4.0, 4.0, 6.0], method="rbv",
    )  # fmt: skip
    out = node.run(cwd=str(tmp_path)).outputs
    image = np.asarray(nib.load(out.out_pet).dataobj)
    np.testing.assert_allclose(image[ids > 0], truth[ids > 0], rtol=5e-3)
    _, tacs = read_tacs_tsv(out.out_tsv)
    _, reference = read_tacs_tsv(out.ref_tsv)
    assert tacs["WM-lesions"] == pytest.approx([1.0, 2.0], rel=5e-3)
    assert reference["reference"] == pytest.approx([1.4, 2.8], rel=5e-3)
    assert out.out_meta["LesionAwareRegions"] and out.out_meta["GTMFWHMmm"] == [4.0, 4.0, 6.0]
    # the lesion's own corrected core and rim TACs (1.0 and 1.5, frames scaled by 1 and 2)
    _, lesion = read_tacs_tsv(out.lesion_tsv)
    assert lesion["lesion-1-core"] == pytest.approx([1.0, 2.0], rel=5e-3)
    assert lesion["lesion-1-rim"] == pytest.approx([1.5, 3.0], rel=5e-3)
    n_rim, n_wm = int((regions.labels == regions.lesion_rim[0]).sum()), int((seg == WM).sum())
    pooled = (1.5 * n_rim + 1.1 * (n_wm - n_rim)) / n_wm  # NAWM with the rim carved from it
    assert lesion["NAWM"] == pytest.approx([pooled, 2 * pooled], rel=5e-3)
    assert out.voxel_counts["lesion-1-core"] == int((ids > 0).sum())
    assert out.voxel_counts["lesion-1-rim"] == n_rim
    assert out.lesion_meta["VoxelCounts"] == out.voxel_counts


def test_voxel_pvc_workflow_feeds_corrected_pet_and_reference_to_the_maps():
    from tspo_bidsapp.workflows.quant import init_pet_quant_wf

    wf = init_pet_quant_wf(models=("SRTM", "SRTM2"), pvc="rbv", pet_fwhm_mm=(4.0, 4.0, 5.0))
    edges = {(u.name, v.name): d["connect"] for u, v, d in wf._graph.edges(data=True)}
    assert ("out_pet", "pet_file") in edges[("gtm", "maps")]
    assert ("ref_tsv", "ref_tsv") in edges[("gtm", "maps")]
    assert ("ref_tsv", "ref_tsv") in edges[("gtm", "kinetics")]
    assert ("reference", "maps") not in edges
    phen = wf.get_node("phenotypes").inputs
    assert (phen.rule, phen.correction) == ("lesion", "rbv")  # no controls' threshold needed
    assert phen.preference[0] == "SRTM2"  # per-lesion corrected TACs, SRTM2 with k2' fixed
    assert ("lesion_tsv", "lesion_tsv") in edges[("gtm", "phenotypes")]
    assert ("ref_tsv", "ref_tsv") in edges[("gtm", "phenotypes")]
    maps_route = init_pet_quant_wf(models=("SRTM", "SRTM2"), pvc="rbv", pet_fwhm_mm=4.5,
                                   phenotype_values="map")  # fmt: skip
    assert maps_route.get_node("select_dvr").inputs.preference[0] == "SRTM2"
    assert maps_route.get_node("phenotypes").inputs.correction == "rbv"
    assert wf.get_node("maps").inputs.extra_meta["PartialVolumeCorrection"] == "RBV"
    with pytest.raises(ValueError, match="pet_fwhm_mm"):
        init_pet_quant_wf(pvc="iy")


def test_uncorrected_maps_take_k2prime_from_uncorrected_fits_under_regional_gtm():
    from tspo_bidsapp.workflows.quant import init_pet_quant_wf

    wf = init_pet_quant_wf(models=("SRTM2",), pvc="gtm", pet_fwhm_mm=5.0)
    edges = {(u.name, v.name): d["connect"] for u, v, d in wf._graph.edges(data=True)}
    assert ("k2prime", "k2prime") in edges[("kinetics_uncorrected", "maps")]
    assert ("out_tsv", "ref_tsv") in edges[("reference", "kinetics_uncorrected")]
    assert ("out_tsv", "ref_tsv") in edges[("reference", "maps")]
    assert ("kinetics", "maps") not in edges


def test_pet_space_maps_stay_uncorrected_and_say_so():
    from tspo_bidsapp.workflows.quant import init_pet_quant_wf

    wf = init_pet_quant_wf(pvc="rbv", pet_fwhm_mm=5.0, pet_space_maps=True)
    edges = {(u.name, v.name): d["connect"] for u, v, d in wf._graph.edges(data=True)}
    assert ("out_tsv", "ref_tsv") in edges[("reference", "maps_pet")]
    assert wf.get_node("maps_pet").inputs.extra_meta == {"PartialVolumeCorrection": "none"}
    assert wf.get_node("maps").inputs.extra_meta["PartialVolumeCorrection"] == "RBV"


def test_lesion_tacs_of_iterative_yang_and_of_a_lesion_without_rim():
    """Per-lesion TACs from the iterative-Yang region means; a rimless lesion gets NaN, 0 voxels."""
    from tspo_bidsapp.quant.pvc_voxel import lesion_tacs

    seg, ids, regions, truth = _phantom()
    res = iterative_yang(_blur(truth, 5.0), regions.labels, ZOOMS, 5.0).regional
    parts = lesion_tacs(regions, res)
    np.testing.assert_allclose(parts["core"][0][0], [1.0, 2.0], rtol=0.01)
    np.testing.assert_allclose(parts["rim"][0][0], [1.5, 3.0], rtol=0.01)
    assert parts["core"][1][0] == (ids > 0).sum()
    no_wm = pvc_regions(seg, ids, np.zeros(seg.shape, bool), ZOOMS)  # no white matter: no rim
    parts = lesion_tacs(no_wm, iterative_yang(truth, no_wm.labels, ZOOMS, 5.0).regional)
    assert np.isnan(parts["rim"][0]).all() and parts["rim"][1][0] == 0
