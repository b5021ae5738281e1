"""TSPO-MS regions on small arrays: lesion components, exact shells, NAWM, cerebellar reference."""

from __future__ import annotations

import numpy as np
import pytest

from tspo_bidsapp.anat import labels as L
from tspo_bidsapp.anat.regions import (
    RegionParams,
    build_tspoms,
    erode_mm,
    label_lesions,
    perilesional_shells,
    region_volumes_ml,
)


def _brute_distance(lesion: np.ndarray, zooms) -> np.ndarray:
    """Distance (mm) to the nearest lesion voxel by brute force over all pairs."""
    pts = np.argwhere(np.ones(lesion.shape, bool)) * np.asarray(zooms)
    les = np.argwhere(lesion) * np.asarray(zooms)
    d = np.sqrt(((pts[:, None, :] - les[None, :, :]) ** 2).sum(-1)).min(1)
    return d.reshape(lesion.shape)


def test_shells_are_exact_distance_bands_within_wm():
    rng = np.random.default_rng(0)
    zooms = (1.0, 1.5, 2.0)
    lesion = np.zeros((14, 12, 10), bool)
    lesion[4:6, 5:7, 4:6] = True
    lesion[10, 2, 7] = True
    wm = rng.uniform(size=lesion.shape) < 0.8
    shells = perilesional_shells(lesion, wm, zooms, (0.0, 3.0, 6.0))
    d = _brute_distance(lesion, zooms)
    np.testing.assert_array_equal(shells[0], wm & ~lesion & (d > 0) & (d <= 3.0))
    np.testing.assert_array_equal(shells[1], wm & ~lesion & (d > 3.0) & (d <= 6.0))
    assert not (shells[0] & shells[1]).any()
    assert shells[0].sum() > 0 and shells[1].sum() > 0


def test_lesion_components_connectivity_size_and_order():
    mask = np.zeros((10, 10, 10), bool)
    mask[1:4, 1:4, 1:4] = True  # 27 voxels
    mask[6, 6, 6] = mask[7, 7, 7] = True  # corner neighbours: one component only with 26-conn.
    mask[8, 1, 1] = True  # single voxel
    ids26 = label_lesions(mask, (1, 1, 1), min_volume_mm3=0.0, connectivity=26)
    ids6 = label_lesions(mask, (1, 1, 1), min_volume_mm3=0.0, connectivity=6)
    assert ids26.max() == 3 and ids6.max() == 4
    assert (ids26 == 1).sum() == 27  # largest first
    assert (ids26 == 2).sum() == 2
    big = label_lesions(mask, (1, 1, 1), min_volume_mm3=2.0, connectivity=26)
    assert big.max() == 2 and not big[8, 1, 1]
    # minimum size is in mm^3: 2x2x2 mm voxels make the single voxel 8 mm^3
    assert label_lesions(mask, (2, 2, 2), min_volume_mm3=8.0).max() == 3
    with pytest.raises(ValueError, match="connectivity"):
        label_lesions(mask, (1, 1, 1), connectivity=4)


def test_erode_mm_matches_distance_to_outside():
    mask = np.zeros((20, 20, 20), bool)
    mask[2:18, 2:18, 2:18] = True
    er = erode_mm(mask, (1.0, 1.0, 1.0), 2.0)
    # centre-to-centre distance to the nearest outside voxel must exceed 2 mm: the two outer
    # layers (1 mm and 2 mm from outside) of the 16-wide cube go
    assert er.sum() == 12**3
    assert erode_mm(mask, (1.0, 1.0, 1.0), 0.0).sum() == mask.sum()
    full = np.ones((6, 6, 6), bool)  # the image border counts as outside
    assert erode_mm(full, (1.0, 1.0, 1.0), 1.0).sum() == 4**3


def _toy_dseg() -> np.ndarray:
    d = np.zeros((40, 40, 40), np.int16)
    d[5:35, 5:35, 15:35] = 2  # cerebral WM
    d[5:35, 5:35, 33:35] = 3  # cortex
    d[15:25, 15:25, 20:25] = 10  # thalamus
    d[18:22, 18:22, 26:28] = 4  # ventricle
    d[10:30, 10:30, 3:13] = 8  # cerebellar cortex
    d[17:23, 17:23, 6:10] = 7  # cerebellar WM
    d[19:21, 19:21, 13:15] = 16  # brainstem
    d[30, 30, 25] = 99  # a SAMSEG lesion voxel not in the final mask -> WM
    return d


def test_build_tspoms_partition_and_definitions():
    zooms = (1.0, 1.0, 1.0)
    dseg = _toy_dseg()
    lesion = np.zeros(dseg.shape, bool)
    lesion[8:12, 8:12, 20:24] = True  # 64 voxels in WM
    lesion[28, 8, 18] = True  # 1 voxel: dropped by the size filter
    lesion[0, 0, 0] = True  # outside the brain: ignored
    params = RegionParams(min_lesion_volume_mm3=5.0, cerebellum_erosion_mm=1.5)
    tsp, ids = build_tspoms(dseg, lesion, zooms, params)
    idx = L.TSPOMS_INDEX
    assert ids.max() == 1 and (ids == 1).sum() == 64
    np.testing.assert_array_equal(tsp == idx["WM-lesions"], ids > 0)
    # shells and NAWM: exactly the WM distance bands around the kept lesion
    wm = np.isin(dseg, (2, 99)) & (ids == 0)
    d = _brute_distance(ids > 0, zooms)
    np.testing.assert_array_equal(tsp == idx["perilesional-WM-0-3mm"], wm & (d > 0) & (d <= 3))
    np.testing.assert_array_equal(tsp == idx["perilesional-WM-3-6mm"], wm & (d > 3) & (d <= 6))
    np.testing.assert_array_equal(tsp == idx["NAWM"], wm & (d > 6))
    # every brain voxel gets exactly one region, nothing outside the brain
    np.testing.assert_array_equal(tsp > 0, dseg > 0)
    # the cerebellar reference is cerebellar cortex farther than 1.5 mm from anything else
    cgm = dseg == 8
    ref = tsp == idx["cerebellar-GM-reference"]
    np.testing.assert_array_equal(ref, erode_mm(cgm, zooms, 1.5))
    assert ((tsp == idx["cerebellar-GM-excluded"]) | ref).sum() == cgm.sum()
    assert (tsp == idx["thalamus"]).sum() == (dseg == 10).sum()
    vols = region_volumes_ml(tsp, zooms, L.TSPOMS_LABELS)
    assert vols["WM-lesions"] == pytest.approx(0.064)
    assert sum(vols.values()) == pytest.approx((dseg > 0).sum() / 1000.0)


def test_lesion_in_cerebellar_cortex_is_excluded_from_reference():
    dseg = _toy_dseg()
    lesion = np.zeros(dseg.shape, bool)
    lesion[14:18, 14:18, 5:9] = True
    tsp, ids = build_tspoms(dseg, lesion, (1.0, 1.0, 1.0), RegionParams(cerebellum_erosion_mm=0.0))
    ref = tsp == L.TSPOMS_INDEX["cerebellar-GM-reference"]
    assert not (ref & lesion).any()
    assert ref.sum() == ((dseg == 8) & ~lesion).sum()


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        build_tspoms(np.zeros((4, 4, 4), np.int16), np.zeros((4, 4, 5), bool), (1, 1, 1))


def test_freesurfer_wm_hypointensities_are_lesions_and_80_is_not_cortex(caplog):
    dseg = np.full((12, 12, 12), 2, np.int16)  # left cerebral WM
    dseg[:, :, :3] = 3  # cortex
    dseg[:, :, 3] = 80  # non-WM hypointensities
    dseg[4:7, 4:7, 6:9] = 77  # 27 mm^3 of WM hypointensities, no lesion mask given
    with caplog.at_level("WARNING"):
        tspoms, ids = build_tspoms(dseg, np.zeros(dseg.shape, bool), (1.0, 1.0, 1.0))
    assert ids.max() == 1 and (ids > 0).sum() == 27
    assert (tspoms[dseg == 77] == L.TSPOMS_INDEX["WM-lesions"]).all()
    assert not (tspoms[dseg == 77] == L.TSPOMS_INDEX["NAWM"]).any()
    assert (tspoms[dseg == 80] == L.TSPOMS_INDEX["other-subcortical"]).all()
    assert "0.03 mL" in caplog.text and "label 77" in caplog.text
