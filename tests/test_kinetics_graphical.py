"""Logan reference plot, MRTM/MRTM2 and SUVR against known DVR (noise-free SRTM curves)."""

from __future__ import annotations

import numpy as np
import pytest

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics import simulate as sim
from tspo_bidsapp.kinetics.logan import fit_logan, logan_dvr_map
from tspo_bidsapp.kinetics.mrtm import fit_mrtm, fit_mrtm2, mrtm2_dvr_map
from tspo_bidsapp.kinetics.suvr import fit_suvr, suvr_map

VALUES = [(0.6, 0.05, 2.0), (1.0, 0.1, 0.5), (1.4, 0.3, 0.05), (0.8, 0.15, 1.0), (1.2, 0.2, 0.3)]


@pytest.fixture(scope="module")
def curves():
    """Frame averages of continuous SRTM curves (no interpolation shortcut)."""
    ft = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    start, end = ft.start_min, ft.end_min
    t = sim.fine_grid(end[-1])
    cr = sim.reference_tac(t)
    ref = sim.frame_average(t, cr, start, end)
    r1, k2, bp = (np.array(v) for v in zip(*VALUES, strict=True))
    tacs = sim.frame_average(t, sim.srtm_tissue(t, cr, r1, k2, bp), start, end)
    return start, end, ref, tacs, r1, k2, bp


def test_logan_with_k2prime_within_2_percent(curves):
    start, end, ref, tacs, r1, k2, bp = curves
    for i in range(len(bp)):
        res = fit_logan(start, end, ref, tacs[i], k2prime=k2[i] / r1[i], tstar_min=10.0)
        assert res.DVR == pytest.approx(1 + bp[i], rel=0.02)
        assert res.BPND == pytest.approx(res.DVR - 1)


def test_logan_without_k2prime_needs_late_tstar(curves):
    start, end, ref, tacs, r1, k2, bp = curves
    res = fit_logan(start, end, ref, tacs[1], tstar_min=30.0)
    assert res.DVR == pytest.approx(1 + bp[1], rel=0.02)
    # slow kinetics (k2a = 0.017/min) are far from transient equilibrium: a real, large bias
    slow = fit_logan(start, end, ref, tacs[0], tstar_min=30.0)
    assert slow.DVR < 0.9 * (1 + bp[0])


def test_mrtm2_and_mrtm_within_2_percent(curves):
    start, end, ref, tacs, r1, k2, bp = curves
    for i in range(len(bp)):
        res = fit_mrtm2(start, end, ref, tacs[i], k2[i] / r1[i])
        assert res.DVR == pytest.approx(1 + bp[i], rel=0.02)
        assert res.R1 == pytest.approx(r1[i], rel=0.03)
        full = fit_mrtm(start, end, ref, tacs[i])
        assert full.DVR == pytest.approx(1 + bp[i], rel=0.02)
        assert full.k2prime == pytest.approx(k2[i] / r1[i], rel=0.05)


def test_voxelwise_maps_match_regional_and_flag_bad_voxels(curves):
    start, end, ref, tacs, r1, k2, bp = curves
    k2p = 0.1
    data = np.vstack(
        [tacs[[1, 3, 4]], np.zeros((1, tacs.shape[1])), np.full((1, tacs.shape[1]), np.nan)]
    )
    logan = logan_dvr_map(start, end, ref, data, k2prime=k2p, tstar_min=10.0, chunk_voxels=2)
    mrtm2 = mrtm2_dvr_map(start, end, ref, data, k2p, chunk_voxels=2)
    assert logan.n_invalid == 2 and mrtm2.n_invalid == 2
    assert np.isnan(logan["DVR"][3:]).all() and np.isnan(mrtm2["DVR"][3:]).all()
    for j, i in enumerate([1, 3, 4]):
        assert logan["DVR"][j] == pytest.approx(
            fit_logan(start, end, ref, tacs[i], k2prime=k2p, tstar_min=10.0).DVR, rel=1e-5
        )
        assert mrtm2["DVR"][j] == pytest.approx(
            fit_mrtm2(start, end, ref, tacs[i], k2p).DVR, rel=1e-5
        )
    # float32 images are fitted in their own type (no float64 copy): same DVR to float32 rounding
    data32 = data.astype(np.float32)
    logan32 = logan_dvr_map(start, end, ref, data32, k2prime=k2p, tstar_min=10.0, chunk_voxels=2)
    mrtm32 = mrtm2_dvr_map(start, end, ref, data32, k2p, chunk_voxels=2)
    np.testing.assert_allclose(logan32["DVR"], logan["DVR"], rtol=1e-5)
    np.testing.assert_allclose(mrtm32["DVR"], mrtm2["DVR"], rtol=1e-5)


def test_suvr_window_and_static():
    start, end = np.array([0.0, 10.0, 40.0, 50.0]), np.array([10.0, 40.0, 50.0, 60.0])
    ref = np.array([5.0, 4.0, 2.0, 1.0])
    tac = np.array([5.0, 6.0, 4.0, 3.0])
    res = fit_suvr(start, end, ref, tac, window=(45.0, 60.0))
    # overlaps 5 and 10 min: (4*5 + 3*10) / (2*5 + 1*10)
    assert res.SUVR == pytest.approx(50.0 / 20.0)
    static = suvr_map([40.0], [60.0], [2.0], np.array([[[3.0]], [[np.nan]]]), window=(40.0, 60.0))
    assert static["SUVR"][0, 0] == pytest.approx(1.5) and static.n_invalid == 1
    with pytest.raises(ValueError, match="does not overlap"):
        fit_suvr(start, end, ref, tac, window=(70.0, 80.0))
