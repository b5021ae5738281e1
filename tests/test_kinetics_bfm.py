"""Voxel-wise SRTM / SRTM2 basis-function fits: recovery, grid quantisation, bad voxels, chunking."""

from __future__ import annotations

import numpy as np
import pytest

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics import simulate as sim
from tspo_bidsapp.kinetics.bfm import fit_srtm2_bfm, fit_srtm_bfm, reliable_k2prime, theta3_grid
from tspo_bidsapp.kinetics.frames import InterpolatedReference

R1 = np.array([0.6, 1.0, 1.4, 0.8, 1.2, 0.7])
K2 = np.array([0.05, 0.1, 0.3, 0.15, 0.2, 0.08])
BP = np.array([2.0, 0.5, 0.05, 1.0, 0.3, 1.5])


@pytest.fixture(scope="module")
def setup():
    ft = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    start, end = ft.start_min, ft.end_min
    t = sim.fine_grid(end[-1])
    ref_values = sim.frame_average(t, sim.reference_tac(t), start, end)
    return start, end, InterpolatedReference(start, end, ref_values)


def _targets(ref, r1, k2, bp):
    """Consistent SRTM curves (the fitter's own frame representation), one row each."""
    k2a = k2 / (1 + bp)
    conv = np.stack([ref.conv_frames(k) for k in k2a])
    return r1[:, None] * ref.values + (k2 - r1 * k2a)[:, None] * conv


def test_exact_on_grid(setup):
    start, end, ref = setup
    grid = theta3_grid(0.01, 0.6, 200)
    k2a = grid[[20, 60, 100, 150, 180, 40]]
    k2 = k2a * (1 + BP)
    data = _targets(ref, R1, k2, BP)
    res = fit_srtm_bfm(start, end, ref.values, data, dtype=np.float64)
    np.testing.assert_allclose(res["k2a"], k2a, rtol=1e-12)
    np.testing.assert_allclose(res["R1"], R1, rtol=1e-8)
    np.testing.assert_allclose(res["BPND"], BP, rtol=1e-7, atol=1e-8)
    assert np.all(res["wrss"] < 1e-16 * np.sum(data**2))
    assert res.n_invalid == 0 and not res["edge"].any()


def test_off_grid_within_quantisation(setup):
    start, end, ref = setup
    data = _targets(ref, R1, K2, BP).astype(np.float32)
    n_basis = 200
    res = fit_srtm_bfm(start, end, ref.values, data, n_basis=n_basis)
    step = np.log(0.6 / 0.01) / (n_basis - 1)
    k2a = K2 / (1 + BP)
    assert np.all(np.abs(np.log(res["k2a"] / k2a)) <= step)  # one of the two neighbours
    # BPND error bounded by what one grid step in k2a means for it (measured <= 1.2 % of DVR)
    assert np.all(np.abs(res["BPND"] - BP) <= 0.02 * (1 + BP))
    np.testing.assert_allclose(res["R1"], R1, rtol=0.01)


def test_bad_voxels_masks_and_chunks(setup):
    start, end, ref = setup
    good = _targets(ref, R1, K2, BP)
    data = np.zeros((4, 3, 2, ref.n_frames), dtype=np.float32)
    flat = data.reshape(-1, ref.n_frames)
    flat[:6] = good
    flat[6] = np.nan  # NaN voxel
    flat[7, 3] = np.inf
    flat[8] = -1.0  # negative signal
    flat[9] = good[1]
    flat[9, 2] = -0.5  # one noisy negative frame is allowed
    mask = np.ones(data.shape[:-1], bool)
    mask.reshape(-1)[-2:] = False
    res = fit_srtm_bfm(start, end, ref.values, data, mask=mask, chunk_voxels=5)
    bp = res["BPND"].reshape(-1)
    assert res.n_voxels == 22 and res.n_invalid == 22 - 7
    assert np.isnan(bp[6:9]).all() and np.isnan(bp[10:]).all()
    assert bp[9] == pytest.approx(BP[1], abs=0.05)
    # same answer whatever the memory layout and chunk size
    full = fit_srtm_bfm(start, end, ref.values, np.asfortranarray(data), mask=mask, chunk_voxels=64)
    np.testing.assert_array_equal(np.isnan(full["BPND"]), np.isnan(res["BPND"]))
    np.testing.assert_allclose(full["BPND"], res["BPND"], rtol=1e-5, equal_nan=True)
    holes = mask.copy()
    holes.reshape(-1)[[1, 4]] = False  # gathered (copied) chunks are weighted in place
    before = data.copy()
    gathered = fit_srtm_bfm(start, end, ref.values, data, mask=holes, chunk_voxels=5)
    np.testing.assert_array_equal(data, before)  # the input is never modified
    np.testing.assert_allclose(
        gathered["BPND"][holes], res["BPND"][holes], rtol=1e-5, equal_nan=True
    )


def test_edge_flag(setup):
    start, end, ref = setup
    data = _targets(ref, np.array([1.0]), np.array([0.9]), np.array([0.05]))  # k2a = 0.86 > 0.6
    res = fit_srtm_bfm(start, end, ref.values, data, theta3_max=0.6)
    assert res["edge"].all() and res.info["n_edge"] == 1


def test_srtm2_with_true_k2prime(setup):
    start, end, ref = setup
    k2p = 0.1
    k2 = R1 * k2p  # SRTM2 assumes one k2' for all voxels
    data = _targets(ref, R1, k2, BP)
    srtm = fit_srtm_bfm(start, end, ref.values, data, dtype=np.float64)
    est = reliable_k2prime(srtm)
    assert est == pytest.approx(k2p, rel=0.02)
    res = fit_srtm2_bfm(start, end, ref.values, data, k2p)
    assert np.all(np.abs(res["BPND"] - BP) <= 0.02 * (1 + BP))
    np.testing.assert_allclose(res["R1"], R1, rtol=0.01)
    assert np.all(res["k2prime"] == pytest.approx(k2p))
    with pytest.raises(ValueError, match="k2prime"):
        fit_srtm2_bfm(start, end, ref.values, data, -1.0)


def test_noisy_fit_is_the_exhaustive_best_and_wrss_is_the_residual(setup):
    """Noisy curves (one fit has a negative θ2): the projection shortcut picks the basis an
    explicit least-squares fit of every basis function would pick, and ``wrss`` is its residual."""
    start, end, ref = setup
    rng = np.random.default_rng(4)
    data = _targets(ref, R1, K2, BP)
    data = data * (1 + 0.2 * rng.standard_normal(data.shape))
    w = end - start
    w = w / w.max()
    res = fit_srtm_bfm(start, end, ref.values, data, n_basis=50, dtype=np.float64)
    grid = theta3_grid(0.01, 0.6, 50)
    basis = ref.conv_frames_many(grid)
    for i, y in enumerate(data):
        rss = []
        for b in basis:
            design = np.column_stack([ref.values, b]) * np.sqrt(w)[:, None]
            theta, *_ = np.linalg.lstsq(design, y * np.sqrt(w), rcond=None)
            rss.append(np.sum((design @ theta - y * np.sqrt(w)) ** 2))
        assert res["k2a"][i] == pytest.approx(grid[int(np.argmin(rss))])
        assert res["wrss"][i] == pytest.approx(min(rss), rel=1e-8)
