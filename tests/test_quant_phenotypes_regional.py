"""Lesion phenotypes from per-lesion GTM-corrected TACs: a noise-free dynamic phantom blurred by
a known PSF, SRTM kinetics of known BPND in every lesion core and rim."""

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.quant.phenotypes import PhenotypeRule
from tspo_bidsapp.quant.phenotypes_regional import (
    SHELL_REGION,
    dvr_of_tacs,
    lesion_column,
    lesion_tac_columns,
    regional_lesion_phenotypes,
)
from tspo_bidsapp.quant.pvc import gtm_correct, psf_sigma_vox
from tspo_bidsapp.quant.pvc_voxel import lesion_tacs, parent_tacs, pvc_regions
from tspo_bidsapp.quant.regional import ModelSettings
from tspo_bidsapp.synthetic.pet import class_tacs

ZOOMS = (1.0, 1.0, 1.0)
FWHM = 4.5
NAMES = {1: "WM-lesions", 2: "perilesional-WM-0-3mm", 3: SHELL_REGION, 4: "NAWM",
         5: "cortical-GM", 6: "thalamus", 7: "reference"}  # fmt: skip
K2PRIME = 0.3  # 1/min, every tissue: k2 = R1 k2'
NAWM_BP, GM_BP, THAL_BP = 0.10, 0.15, 0.25
# (centre, radius mm, core BPND, rim BPND, phenotype): sizes 6-10 mm, as real MS lesions
LESIONS = [
    ((16, 16, 14), 3.0, 0.05, 0.50, "rim-active"),
    ((34, 16, 14), 3.0, 0.50, 0.45, "overall-active"),
    ((52, 16, 14), 3.0, 0.02, 0.10, "inactive"),
    ((16, 36, 14), 5.0, 0.05, 0.50, "rim-active"),
    ((36, 36, 14), 4.0, 0.02, 0.10, "inactive"),
    ((54, 36, 14), 5.0, 0.50, 0.45, "overall-active"),
]


@pytest.fixture(scope="module")
def phantom():
    """Blurred noise-free dynamic PET (kBq/mL), PVC regions, truth per lesion, frame timing."""
    shape = (70, 52, 40)
    grid = np.indices(shape).astype(float)
    seg = np.zeros(shape, np.int32)
    seg[4:66, 4:48, 4:28] = 4  # NAWM slab
    seg[4:66, 4:48, 28:34] = 5  # cortex above it
    seg[4:66, 4:12, 4:10] = 6  # a thalamus-like block
    seg[20:40, 40:48, 30:34] = 7  # reference inside the cortex layer
    ids = np.zeros(shape, np.int32)
    for k, (centre, radius, *_rest) in enumerate(LESIONS, start=1):
        dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)))
        ids[dist <= radius] = k
    wm = np.isin(seg, [4])
    near = ndimage.distance_transform_edt(ids == 0, sampling=ZOOMS)
    seg[wm & (near > 3) & (near <= 6)] = 3
    seg[wm & (near > 0) & (near <= 3)] = 2
    seg[ids > 0] = 1
    regions = pvc_regions(seg, ids, np.isin(seg, [1, 2, 3, 4]), ZOOMS)
    # true tissue classes: 1 NAWM (also the shells), 2 GM, 3 thalamus, 4 reference, then
    # 10 + k the core of lesion k, 20 + k its rim (the 2-mm PVC rim region, nearest lesion)
    tissue = np.zeros(shape, np.int32)
    tissue[np.isin(seg, [2, 3, 4])], tissue[seg == 5], tissue[seg == 6] = 1, 2, 3
    tissue[seg == 7] = 4
    params = {1: NAWM_BP, 2: GM_BP, 3: THAL_BP, 4: 0.0}
    for k, (_c, _r, core, rim, _p) in enumerate(LESIONS, start=1):
        tissue[regions.labels == regions.lesion_core[k - 1]] = 10 + k
        tissue[regions.labels == regions.lesion_rim[k - 1]] = 20 + k
        params[10 + k], params[20 + k] = core, rim
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    _, tacs = class_tacs(timing, {c: (1.0, K2PRIME, bp) for c, bp in params.items()}, 1.0)
    sigma = psf_sigma_vox(FWHM, ZOOMS)
    data = np.stack([ndimage.gaussian_filter(tacs[tissue, f], sigma, mode="nearest")
                     for f in range(timing.n_frames)], axis=-1)  # fmt: skip
    return data, regions, timing


def test_per_lesion_gtm_recovers_core_and_rim_dvr_and_the_phenotypes(phantom):
    data, regions, timing = phantom
    res = gtm_correct(data, regions.labels, ZOOMS, FWHM)
    tacs = {NAMES[i]: tac for i, tac in parent_tacs(regions, res).items()}
    ref = tacs.pop("reference")
    les, voxels = lesion_tac_columns(lesion_tacs(regions, res))
    les[SHELL_REGION] = tacs[SHELL_REGION]
    voxels[SHELL_REGION] = int((regions.labels == 3).sum())
    dvr, info = dvr_of_tacs(timing, ref, les, tacs, "SRTM2", ModelSettings(("SRTM2",)))
    assert info["k2prime"] == pytest.approx(K2PRIME, rel=0.02)  # the regions' rule
    for k, (_c, _r, core, rim, _p) in enumerate(LESIONS, start=1):
        assert dvr[lesion_column(k, "core")] == pytest.approx(1 + core, rel=0.02)
        assert dvr[lesion_column(k, "rim")] == pytest.approx(1 + rim, rel=0.02)
    assert dvr[SHELL_REGION] == pytest.approx(1 + NAWM_BP, rel=0.01)
    shell = (dvr[SHELL_REGION], voxels[SHELL_REGION])
    lesion_rule = PhenotypeRule(method="lesion", values="regional", correction="gtm")
    table = regional_lesion_phenotypes(dvr, voxels, 0.001, shell, lesion_rule)
    assert table["phenotype"].tolist() == [p for *_x, p in LESIONS]
    assert (table["value_source"] == "regional").all() and (table["correction"] == "gtm").all()
    assert table["volume_ml"].iloc[3] == pytest.approx(4 / 3 * np.pi * 5**3 / 1000, rel=0.05)
    # the published voxel rule on the regional values: a threshold between NAWM and the rims
    voxel_rule = PhenotypeRule(1.2, method="voxel", values="regional")
    voxel = regional_lesion_phenotypes(dvr, voxels, 0.001, shell, voxel_rule)
    assert voxel["phenotype"].tolist() == [p for *_x, p in LESIONS]
    assert voxel["core_active_fraction"].isna().all()


def test_uncorrected_region_means_miss_the_rim_active_lesions(phantom):
    """Uncorrected lesion region means (corrected reference): core spill-in (why PVC)."""
    data, regions, timing = phantom
    res = gtm_correct(data, regions.labels, ZOOMS, FWHM)
    ref = parent_tacs(regions, res)[7]
    res.tacs = res.observed  # region means before correction
    tacs = {NAMES[i]: tac for i, tac in parent_tacs(regions, res).items()}
    les, voxels = lesion_tac_columns(lesion_tacs(regions, res))
    dvr, _ = dvr_of_tacs(timing, ref, les, tacs, "SRTM2", ModelSettings(("SRTM2",)))
    rule = PhenotypeRule(method="lesion", values="regional")
    table = regional_lesion_phenotypes(dvr, voxels, 0.001, (1 + NAWM_BP, 1000), rule)
    assert table["phenotype"].iloc[0] == "overall-active"  # the 6-mm rim-active lesion
    assert table["core_excess"].iloc[0] > 0.10  # true core: 1.05 / 1.10 - 1 = -5 %


def test_lesions_without_a_rim_or_a_core_column():
    dvr = {lesion_column(1, "core"): 1.5, lesion_column(2, "core"): 1.05,
           lesion_column(3, "rim"): 1.4, lesion_column(1, "rim"): 1.45}  # fmt: skip
    voxels = dict.fromkeys(dvr, 30)
    rule = PhenotypeRule(method="lesion", values="regional")
    table = regional_lesion_phenotypes(dvr, voxels, 0.001, (1.1, 500), rule)
    assert table["lesion_id"].tolist() == [1, 2]  # lesion 3 has no core column
    assert table["phenotype"].tolist() == ["overall-active", "unclassified"]
    assert table["rim_voxels"].tolist() == [30, 0]
    with pytest.raises(ValueError, match="regional"):
        regional_lesion_phenotypes(dvr, voxels, 0.001, (1.1, 500), PhenotypeRule(method="lesion"))


def test_interface_writes_the_table_and_records_the_values(phantom, tmp_path):
    """RegionalLesionPhenotypes on TSV files: SRTM2, k2' by the regions' rule, sidecar."""
    from tspo_bidsapp.interfaces.pvc import RegionalLesionPhenotypes
    from tspo_bidsapp.quant.tacs import write_tacs_tsv

    data, regions, timing = phantom
    res = gtm_correct(data, regions.labels, ZOOMS, FWHM)
    tacs = {NAMES[i]: tac for i, tac in parent_tacs(regions, res).items()}
    ref = tacs.pop("reference")
    les, voxels = lesion_tac_columns(lesion_tacs(regions, res))
    les[SHELL_REGION], voxels[SHELL_REGION] = tacs[SHELL_REGION], int((regions.labels == 3).sum())
    node = RegionalLesionPhenotypes(
        lesion_tsv=str(write_tacs_tsv(timing, les, tmp_path / "lesions.tsv")),
        tacs_tsv=str(write_tacs_tsv(timing, tacs, tmp_path / "regions.tsv")),
        ref_tsv=str(write_tacs_tsv(timing, {"reference": ref}, tmp_path / "ref.tsv")),
        voxel_counts=voxels, voxel_ml=0.001, preference=["SRTM2", "Logan"], rule="lesion",
        correction="gtm", participant={"tspo_genotype": "HAB"},
    )  # fmt: skip
    out = node.run(cwd=str(tmp_path)).outputs
    table = pd.read_csv(out.out_tsv, sep="\t")
    assert table["phenotype"].tolist() == [p for *_x, p in LESIONS]
    assert (table["tspo_genotype"] == "HAB").all() and out.model == "SRTM2"
    assert out.out_meta["PhenotypeRule"]["values"] == "regional"
    values = out.out_meta["LesionValues"]
    assert values["Model"] == "SRTM2" and values["ShellRegion"] == SHELL_REGION
    assert values["k2prime"] == pytest.approx(K2PRIME, rel=0.02)
    assert out.summary["n_rim_active"] == 2


def test_a_value_that_is_not_finite_leaves_the_lesion_unclassified():
    """A failed per-lesion fit (NaN DVR) or a missing comparison shell must not read as an
    inactive lesion."""
    from tspo_bidsapp.quant.phenotypes import PhenotypeRule, phenotype_table

    nan = np.nan
    core = (np.array([50, 50, 50]), np.array([1.0, nan, 1.6]), np.full(3, nan))
    rim = (np.array([40, 40, 40]), np.array([1.0, 1.0, nan]), np.full(3, nan))
    lesion = PhenotypeRule(method="lesion", values="regional")
    table = phenotype_table(np.full(3, 0.1), core, rim, (500, 1.0), lesion)
    assert list(table["phenotype"]) == ["inactive", "unclassified", "unclassified"]
    table = phenotype_table(np.full(3, 0.1), core, rim, (500, nan), lesion)
    assert set(table["phenotype"]) == {"unclassified"}
    voxel = PhenotypeRule(1.2, method="voxel", values="regional")
    table = phenotype_table(np.full(3, 0.1), core, rim, (500, nan), voxel)  # needs no shell
    # the third lesion's active core makes it overall-active whatever its (unknown) rim
    assert list(table["phenotype"]) == ["inactive", "unclassified", "overall-active"]
