"""Lesion phenotypes from a DVR map with planted lesions of known phenotype."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from tspo_bidsapp.quant.phenotypes import (
    PhenotypeRule,
    active_threshold,
    lesion_phenotypes,
    phenotype_summary,
    rim_labels,
)

ZOOMS = (1.0, 1.0, 1.0)


def _ball(shape, centre, radius):
    grid = np.indices(shape).astype(float)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2


def _scene():
    shape = (60, 40, 30)
    rng = np.random.default_rng(3)
    dvr = 1.05 + 0.03 * rng.standard_normal(shape)  # NAWM with noise
    wm = np.ones(shape, bool)
    ids = np.zeros(shape, np.int32)
    truth = {}
    grid = np.indices(shape).astype(float)
    # (centre, radius mm, core DVR, rim DVR, phenotype)
    specs = [
        ((12, 12, 15), 5, 1.05, 1.40, "rim-active"),
        ((30, 12, 15), 6, 1.45, 1.40, "overall-active"),
        ((48, 12, 15), 4, 1.03, 1.06, "inactive"),
        ((20, 30, 15), 3, 1.02, 1.45, "rim-active"),
    ]
    for i, (centre, radius, core, rim, phenotype) in enumerate(specs, start=1):
        dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)))
        ids[dist <= radius] = i
        dvr[dist <= radius] += core - 1.05
        shell = (dist > radius) & (dist <= radius + 2.0)
        dvr[shell] += rim - 1.05
        truth[i] = phenotype
    return dvr, ids, wm, truth


def test_threshold_from_controls_is_mean_plus_k_sd():
    values = np.random.default_rng(0).normal(1.1, 0.05, 100000)
    thr, info = active_threshold(values, k=2.0)
    assert thr == pytest.approx(1.2, abs=0.002)
    assert info["k"] == 2.0 and info["n_voxels"] == 100000


def test_rim_is_a_2mm_shell_outside_the_lesion_within_wm():
    shape = (41, 41, 41)
    ids = _ball(shape, (20, 20, 20), 8).astype(np.int32)
    wm = np.ones(shape, bool)
    wm[:, :, :20] = False  # only the upper half is white matter
    rims = rim_labels(ids, wm, ZOOMS, 2.0)
    assert not np.any(rims[ids > 0]) and not np.any(rims[~wm])
    full = rim_labels(ids, np.ones(shape, bool), ZOOMS, 2.0)
    # Brute force: outside voxels within 2 mm of the lesion surface, i.e. 2.5 mm of a lesion
    # voxel centre (the surface lies half a voxel beyond the outer centres; k-d tree).
    tree = cKDTree(np.argwhere(ids > 0))
    outside = np.argwhere(ids == 0)
    dist, _ = tree.query(outside)
    expected = np.zeros(shape, bool)
    expected[tuple(outside[dist <= 2.5].T)] = True
    np.testing.assert_array_equal(full > 0, expected)
    # ... which is close to the continuous shell 4/3 pi (10^3 - 8^3) = 2044 mm^3.
    assert full.sum() == pytest.approx(4 / 3 * np.pi * (10**3 - 8**3), rel=0.2)
    assert rims.sum() == pytest.approx(full.sum() / 2, rel=0.1)


def test_planted_lesions_get_their_phenotype_and_the_summary_counts_them():
    dvr, ids, wm, truth = _scene()
    thr, _ = active_threshold(1.05 + 0.03 * np.random.default_rng(9).standard_normal(50000))
    table = lesion_phenotypes(dvr, ids, wm, ZOOMS, PhenotypeRule(thr))
    assert list(table["lesion_id"]) == [1, 2, 3, 4]
    assert list(table["phenotype"]) == [truth[i] for i in range(1, 5)]
    assert table.loc[0, "volume_ml"] == pytest.approx(4 / 3 * np.pi * 125 / 1000, rel=0.05)
    assert table.loc[1, "core_active_fraction"] > 0.95
    assert table.loc[2, "rim_active_fraction"] < 0.2
    summary = phenotype_summary(table)
    assert summary["n_rim_active"] == 2 and summary["n_inactive"] == 1
    assert summary["proportion_rim_active"] == pytest.approx(0.5)
    assert summary["polvinen_predictor"] is True


def test_polvinen_predictor_rule():
    import pandas as pd

    def summary(phenotypes):
        return phenotype_summary(pd.DataFrame({"phenotype": phenotypes}))

    assert summary(["inactive"] * 6 + ["rim-active"] * 4)["polvinen_predictor"] is False
    assert summary(["inactive"] * 5 + ["rim-active"] * 2 + ["overall-active"] * 3)[
        "polvinen_predictor"
    ]
    assert (
        summary(["inactive"] * 5 + ["rim-active"] + ["overall-active"] * 4)["polvinen_predictor"]
        is False
    )  # exactly 10 % rim-active is not more than 10 %
    assert summary(["unclassified"])["polvinen_predictor"] is None


def test_lesion_rule_ignores_a_diffuse_rise_of_white_matter():
    """SPMS-like NAWM at DVR 1.20 against a controls' voxel threshold of 1.14: the voxel rule
    reads every rim as active; the lesion rule compares with the lesion's own 3-6 mm shell."""
    dvr, ids, wm, truth = _scene()
    dvr = dvr + 0.15  # NAWM 1.05 -> 1.20, lesions and rims shifted alike
    voxel = lesion_phenotypes(dvr, ids, wm, ZOOMS, PhenotypeRule(1.14))
    assert voxel.loc[2, "phenotype"] != "inactive"  # the inactive lesion turns active
    rule = PhenotypeRule(method="lesion", correction="rbv")
    table = lesion_phenotypes(dvr, ids, wm, ZOOMS, rule)
    assert list(table["phenotype"]) == [truth[i] for i in range(1, 5)]
    assert table["shell_DVR"].to_numpy() == pytest.approx(1.20, abs=0.01)
    # the measured rim holds the planted 2-mm rim and a thin layer of NAWM beyond it
    assert table.loc[0, "rim_excess"] == pytest.approx(0.85 * (1.55 / 1.20 - 1), abs=0.03)
    assert set(table["rule"]) == {"lesion"} and set(table["correction"]) == {"rbv"}
    assert set(table["threshold"]) == {rule.rim_excess}


def test_a_rule_must_be_known_and_the_voxel_rule_needs_a_threshold():
    with pytest.raises(ValueError, match="rule"):
        PhenotypeRule(1.1, method="fraction")
    with pytest.raises(ValueError, match="threshold_dvr"):
        PhenotypeRule(method="voxel")


def test_lesions_below_a_minimum_size_stay_unclassified():
    dvr, ids, wm, truth = _scene()
    rule = PhenotypeRule(method="lesion", min_size_mm=9.0)  # diameters 10, 12, 8, 6 mm
    table = lesion_phenotypes(dvr, ids, wm, ZOOMS, rule)
    assert list(table["phenotype"]) == [truth[1], truth[2], "unclassified", "unclassified"]
