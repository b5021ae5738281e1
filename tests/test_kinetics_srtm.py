"""Regional SRTM by weighted NLLS: noise-free recovery, irregular frames, kinfitr simulated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics import simulate as sim
from tspo_bidsapp.kinetics.frames import (
    InterpolatedReference,
    check_frames,
    frame_weights,
    nonempty_frames,
)
from tspo_bidsapp.kinetics.registry import reliable_srtm_k2prime
from tspo_bidsapp.kinetics.srtm import fit_srtm, fit_srtm_regions

TSPO_VALUES = [(0.6, 0.05, 2.0), (1.0, 0.1, 0.5), (1.4, 0.3, 0.05), (0.8, 0.15, 1.0)]


def _frames():
    ft = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    return ft.start_min, ft.end_min


def consistent_target(start, end, ref_values, r1, k2, bpnd):
    """SRTM target from the interpolated reference, as the fitter represents it.

    ``simulate.srtm_tissue`` on the fine grid, frame-averaged; its ``R1 C_R`` part is replaced by
    ``R1`` x the reference frame averages (the fitter uses the measured frame values there).
    """
    ref = InterpolatedReference(start, end, ref_values)
    tissue = sim.frame_average(
        ref.grid, sim.srtm_tissue(ref.grid, ref.curve, r1, k2, bpnd), start, end
    )
    return tissue - r1 * (ref.average(ref.curve) - ref_values)


@pytest.mark.parametrize("r1,k2,bpnd", TSPO_VALUES)
def test_nlls_recovers_parameters_noise_free(r1, k2, bpnd):
    start, end = _frames()
    t = sim.fine_grid(end[-1])
    ref = sim.frame_average(t, sim.reference_tac(t), start, end)
    res = fit_srtm(start, end, ref, consistent_target(start, end, ref, r1, k2, bpnd))
    assert res.success and not res.edge
    assert res.R1 == pytest.approx(r1, rel=5e-3)
    assert res.k2 == pytest.approx(k2, rel=5e-3)
    assert res.BPND == pytest.approx(bpnd, rel=5e-3)
    assert res.DVR == pytest.approx(1 + bpnd, rel=5e-3)
    assert res.k2prime == pytest.approx(k2 / r1, rel=5e-3)
    assert res.k2a == pytest.approx(k2 / (1 + bpnd), rel=5e-3)


@pytest.mark.parametrize("r1,k2,bpnd", TSPO_VALUES)
def test_nlls_frame_discretisation_bias_is_small(r1, k2, bpnd):
    """Truth from the continuous reference: the bias is that of the frame representation."""
    start, end = _frames()
    t = sim.fine_grid(end[-1])
    cr = sim.reference_tac(t)
    ref = sim.frame_average(t, cr, start, end)
    tac = sim.frame_average(t, sim.srtm_tissue(t, cr, r1, k2, bpnd), start, end)
    res = fit_srtm(start, end, ref, tac)
    assert abs(res.BPND - bpnd) < 0.01 * (1 + bpnd)  # measured: <= 0.3 % of DVR
    assert res.R1 == pytest.approx(r1, rel=0.01)


def test_irregular_frames_with_gap():
    start = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 7.0, 10.0, 15.0, 20.0, 40.0, 50.0, 62.0])
    end = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 7.0, 10.0, 15.0, 20.0, 30.0, 50.0, 60.0, 75.0])
    t = sim.fine_grid(end[-1])
    ref = sim.frame_average(t, sim.reference_tac(t), start, end)
    tac = consistent_target(start, end, ref, 0.9, 0.12, 1.2)
    res = fit_srtm(start, end, ref, tac)
    assert (res.R1, res.k2, res.BPND) == pytest.approx((0.9, 0.12, 1.2), rel=5e-3)


def test_frame_checks_and_weights():
    with pytest.raises(ValueError, match="out of order"):
        check_frames([0, 2, 1], [1, 3, 2])
    with pytest.raises(ValueError, match="zero or negative"):
        check_frames([0, 1], [1, 1])
    assert nonempty_frames([0, 0, 1], [0, 1, 2]).tolist() == [False, True, True]
    w = frame_weights([0, 1, 3], [1, 3, 7])
    assert w.tolist() == pytest.approx([0.25, 0.5, 1.0])
    wd = frame_weights([0, 20.364], [1, 21.364], scheme="decay", half_life_min=20.364)
    assert wd[1] / wd[0] == pytest.approx(0.5)


def test_kinfitr_simref(shared_data):
    """20 subjects x 3 regions simulated by kinfitr with known parameters."""
    folder = shared_data / "kinfitr_simref"
    tacs = pd.read_csv(folder / "simref_tacs.tsv", sep="\t")
    truth = pd.read_csv(folder / "simref_truth.tsv", sep="\t")
    rows = []
    for pet, g in tacs.groupby("PET", sort=False):
        start = g["StartTime"].to_numpy()
        end = start + g["Duration"].to_numpy()
        keep = nonempty_frames(start, end)  # drops the t = 0 row of zeros
        regions = {r: g[r].to_numpy()[keep] for r in ("ROI1", "ROI2", "ROI3")}
        weights = g["Weights"].to_numpy()[keep]
        fits = fit_srtm_regions(
            start[keep], end[keep], g["Reference"].to_numpy()[keep], regions, weights=weights
        )
        rows += [{"PET": pet, "region": f.region, "BPND": f.BPND, "R1": f.R1} for f in fits]
        assert reliable_srtm_k2prime(fits) > 0
    merged = pd.DataFrame(rows).merge(truth, on=["PET", "region"])
    assert len(merged) == 60
    r_bp = np.corrcoef(merged["BPND"], merged["BPND_true"])[0, 1]
    r_r1 = np.corrcoef(merged["R1"], merged["R1_true"])[0, 1]
    # measured with the file's weights: r(BPND) = 0.9986, r(R1) = 0.9983 (bias -0.0005).
    # A re-implementation of kinfitr's own srtm model (1024-point grid, rectangle-rule
    # convolution, mid-time sampling) gives r(R1) = 0.9984 on these curves: r(R1) ~ 0.999
    # needs the nominal noise level. The R1 error shared by a subject's regions is reference
    # noise along the curve's own shape, which no smoothing of the reference removes
    # (Feng-1TC-smoothed reference: r(R1) = 0.9983); see docs/kinetics.md.
    assert r_bp >= 0.998
    assert r_r1 >= 0.998
    assert abs((merged["BPND"] - merged["BPND_true"]).mean()) < 0.01
    assert abs((merged["R1"] - merged["R1_true"]).mean()) < 0.005


def _gm_tac_with_slow_drift():
    """A smooth GM-like TAC slightly off the model (a slow loss the reference lacks).

    SRTM (R1 1.019, k2 0.305/min, BPND 0.672) minus 0.0093 x (C_R ⊗ e^{-0.0035 t}). The
    previous fitter (start from an unconstrained grid, k2 >= 1e-4) ran into the corner
    k2 -> 0 on it: BPND -0.900, k2 0.0003/min (k2a 0.003/min, a residual 2 % lower than the
    interior optimum, reachable only because k2a was unbounded below).
    """
    start, end = _frames()
    t = sim.fine_grid(end[-1])
    ref = sim.frame_average(t, sim.reference_tac(t), start, end)
    interp = InterpolatedReference(start, end, ref)
    tac = consistent_target(start, end, ref, 1.019, 0.305, 0.672)
    return start, end, ref, tac - 0.0093 * interp.conv_frames(0.0035)


def test_robust_fit_matches_basis_functions_where_the_corner_attracts():
    from tspo_bidsapp.kinetics.bfm import fit_srtm_bfm

    start, end, ref, tac = _gm_tac_with_slow_drift()
    res = fit_srtm(start, end, ref, tac)
    bfm = fit_srtm_bfm(start, end, ref, tac[None], n_basis=4000, dtype=np.float64)
    assert not bfm["edge"][0] and not res.edge
    assert res.k2 > 0.1  # not the degenerate corner
    assert res.BPND == pytest.approx(float(bfm["BPND"][0]), rel=0.01)
    assert res.R1 == pytest.approx(float(bfm["R1"][0]), rel=0.01)
    assert res.wrss <= float(bfm["wrss"][0]) * (1 + 1e-6)  # at least as good as the grid


def test_fit_never_worse_than_the_best_in_bounds_grid_point():
    """Noisy TACs: the NLLS answer's residual is <= the best in-bounds start-grid residual."""
    from tspo_bidsapp.kinetics.srtm import DEFAULT_BOUNDS, grid_profile, start_basis

    start, end = _frames()
    t = sim.fine_grid(end[-1])
    ref_values = sim.frame_average(t, sim.reference_tac(t), start, end)
    ref = InterpolatedReference(start, end, ref_values)
    sw = np.sqrt(frame_weights(start, end))
    lo, hi = (np.asarray(b, float) for b in DEFAULT_BOUNDS)
    rates = np.geomspace(lo[1], hi[1], 400)
    rng = np.random.default_rng(3)
    for r1, k2, bpnd in TSPO_VALUES:
        tac = consistent_target(start, end, ref_values, r1, k2, bpnd)
        tac = tac * (1 + 0.1 * rng.standard_normal(tac.size))
        g_r1, g_bp, g_rss = grid_profile(ref, tac, sw, rates)
        inside = (g_r1 >= lo[0]) & (g_r1 <= hi[0]) & (g_bp >= lo[2]) & (g_bp <= hi[2])
        res = fit_srtm(start, end, ref, tac)
        assert res.wrss <= g_rss[inside].min() * (1 + 1e-9)
    assert start_basis(ref, rates) is start_basis(ref, rates)  # cached per reference
