"""Regional fits of every model and voxel-wise maps on TACs simulated with known parameters."""

import numpy as np
import pytest

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics.simulate import fine_grid, frame_average, reference_tac, srtm_tissue
from tspo_bidsapp.quant.maps import voxelwise_maps
from tspo_bidsapp.quant.regional import ModelSettings, fit_regions, model_table
from tspo_bidsapp.quant.tacs import region_means

K2PRIME = 0.35  # 1/min, efflux of reference_tac
TRUTH = {"NAWM": (0.65, 0.10), "cortical-GM": (0.9, 0.14), "thalamus": (0.95, 0.26)}


def _simulate():
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    t = fine_grid(float(timing.end_min[-1]))
    cref = reference_tac(t)
    r1 = np.array([v[0] for v in TRUTH.values()])
    bp = np.array([v[1] for v in TRUTH.values()])
    curves = srtm_tissue(t, cref, r1, r1 * K2PRIME, bp)
    tacs = frame_average(t, curves, timing.start_min, timing.end_min)
    ref = frame_average(t, cref, timing.start_min, timing.end_min)
    return timing, ref, dict(zip(TRUTH, tacs, strict=True))


def test_every_model_recovers_known_binding():
    timing, ref, tacs = _simulate()
    settings = ModelSettings(models=("SRTM", "SRTM2", "Logan", "MRTM2", "SUVR"), tstar_min=20.0)
    results, info = fit_regions(timing, ref, tacs, settings)
    assert info["k2prime"] == pytest.approx(K2PRIME, rel=0.03)
    for model in ("SRTM", "SRTM2", "MRTM2"):
        for res in results[model]:
            assert res.BPND == pytest.approx(TRUTH[res.region][1], abs=0.005), (model, res.region)
    for res in results["SRTM"]:
        assert res.R1 == pytest.approx(TRUTH[res.region][0], rel=0.01)
    for res in results["Logan"]:  # late-time graphical estimate without k2': a few % low
        assert res.DVR == pytest.approx(1 + TRUTH[res.region][1], rel=0.03)
    suvr = {r.region: r.SUVR for r in results["SUVR"]}
    assert suvr["thalamus"] > suvr["cortical-GM"] > suvr["NAWM"] > 0.5
    table = model_table(
        results["SRTM"], {"NAWM": 400.0}, {"tspo_genotype": "LAB", "genotype_flag": "LAB"}
    )
    assert list(table.columns[:3]) == ["region", "volume_ml", "model"]
    assert table.loc[0, "volume_ml"] == 400.0 and np.isnan(table.loc[1, "volume_ml"])
    assert (table["tspo_genotype"] == "LAB").all()


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="unknown model"):
        ModelSettings(models=("SRTM", "3TCM"))


def test_voxelwise_bpnd_averaged_over_regions_matches_the_regional_fit():
    timing, ref, tacs = _simulate()
    rng = np.random.default_rng(4)
    shape = (12, 12, 12)
    labels = np.zeros(shape, int)
    labels[:4] = 1
    labels[4:8] = 2
    labels[8:] = 3
    labels[:, :, :2] = 0  # outside the brain mask
    curves = np.stack([np.zeros(timing.n_frames), *tacs.values()])
    sd = 0.03 * curves.max(axis=1, keepdims=True)  # 3 % of the peak, white noise
    data = curves[labels] + sd[labels] * rng.standard_normal(shape + (timing.n_frames,))
    brain = labels > 0
    means, _ = region_means(data, labels)
    regional, info = fit_regions(
        timing, ref, dict(zip(TRUTH, means[1:], strict=True)), ModelSettings(models=("SRTM",))
    )
    settings = ModelSettings(models=("SRTM", "Logan", "SUVR"), tstar_min=20.0)
    maps, map_info = voxelwise_maps(timing, ref, data, brain, settings)
    assert set(maps) >= {("SRTM", "BPND"), ("SRTM", "DVR"), ("Logan", "DVR"), ("SUVR", "SUVR")}
    assert np.all(np.isnan(maps[("SRTM", "BPND")][~brain]))
    assert map_info["SRTM"]["n_voxels"] == brain.sum()
    vox, _ = region_means(maps[("SRTM", "BPND")][..., None], labels)
    for i, res in enumerate(regional["SRTM"], start=1):
        assert vox[i, 0] == pytest.approx(res.BPND, rel=0.05), res.region
        assert res.BPND == pytest.approx(TRUTH[res.region][1], abs=0.02)
    np.testing.assert_allclose(
        maps[("SRTM", "DVR")][brain], maps[("SRTM", "BPND")][brain] + 1, rtol=1e-6
    )
