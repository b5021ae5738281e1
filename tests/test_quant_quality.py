"""Fit-quality flags of regional fits against cases with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics import simulate as sim
from tspo_bidsapp.kinetics.frames import InterpolatedReference, frame_weights
from tspo_bidsapp.kinetics.kinpar import KineticResult
from tspo_bidsapp.kinetics.srtm import fit_srtm, srtm_frames
from tspo_bidsapp.quant.quality import OK, assess_fits, frame_noise, is_flagged, runs_z


@pytest.fixture(scope="module")
def gm_case():
    """A GM-like SRTM TAC (R1 1.0, k2 0.1 /min, BPND 0.5) and its reference, noise-free."""
    ft = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    start, end = ft.start_min, ft.end_min
    t = sim.fine_grid(end[-1])
    ref_tac = sim.frame_average(t, sim.reference_tac(t), start, end)
    ref = InterpolatedReference(start, end, ref_tac)
    return start, end, ref_tac, srtm_frames(ref, 1.0, 0.1, 0.5)


def _label(gm_case, result, region="cortical-GM", tac=None):
    start, end, ref_tac, y = gm_case
    assess_fits({"SRTM": [result]}, start, end, ref_tac, {region: y if tac is None else tac})
    return result.fit_quality


def test_a_good_fit_is_ok(gm_case):
    start, end, ref_tac, y = gm_case
    res = fit_srtm(start, end, ref_tac, y, region="cortical-GM")
    assert _label(gm_case, res) == OK


def test_bound_stuck_fit_is_flagged(gm_case):
    """The degenerate solution seen on real data: BPND -0.88, k2 = 0 for a clean GM TAC."""
    res = KineticResult(region="cortical-GM", model="srtm", R1=0.9, k2=1e-4, BPND=-0.88,
                        k2a=1e-4 / 0.12, n_frames=22, n_params=3, success=True, wrss=1.0)  # fmt: skip
    flags = _label(gm_case, res).split(";")
    assert {"at-bound", "k2-near-zero", "BPND-negative", "poor-fit"} <= set(flags)


def test_implausible_values_and_non_kinetic_regions(gm_case):
    start, end, ref_tac, y = gm_case
    res = fit_srtm(start, end, ref_tac, y, region="cerebellar-GM-excluded")
    assert _label(gm_case, res, "cerebellar-GM-excluded") == "not-kinetic"
    huge = KineticResult(region="NAWM", model="logan", DVR=7.5, BPND=6.5, success=True)
    assert _label(gm_case, huge, "NAWM") == "BPND-implausible"
    slow = KineticResult(region="NAWM", model="srtm2", R1=4.0, k2=0.0005, BPND=1.27,
                         success=True)  # fmt: skip
    assert {"k2-near-zero", "R1-implausible"} <= set(_label(gm_case, slow, "NAWM").split(";"))


def test_noisy_fit_is_ok_and_noise_estimate_matches_truth(gm_case):
    start, end, ref_tac, y = gm_case
    w = frame_weights(start, end)
    sigma = 0.02 * float(y.max())
    rng = np.random.default_rng(3)
    estimates = []
    for _ in range(20):
        noisy = y + rng.normal(0.0, sigma, y.size) / np.sqrt(w)
        estimates.append(frame_noise(0.5 * (start + end), noisy, w))
    assert np.median(estimates) == pytest.approx(sigma, rel=0.25)
    res = fit_srtm(start, end, ref_tac, noisy, region="thalamus")
    assert "poor-fit" not in _label(gm_case, res, "thalamus", noisy)


def test_runs_test_known_values():
    assert runs_z(np.array([1, -1] * 10)) > 3  # alternating: too many runs
    assert runs_z(np.array([1] * 10 + [-1] * 10)) < -3  # two blocks: too few
    assert math.isnan(runs_z(np.ones(5)))


def test_is_flagged():
    assert is_flagged(["ok", "at-bound", float("nan"), ""]).tolist() == [False, True, False, False]
