"""One time axis from injection and decay correction to injection, against known truth.

The same noise-free regional TACs (SRTM, true BPND 0.2/0.5/1.0) are written three ways, as the
synthetic generator writes them: (a) decay-corrected to injection, (b) not decay-corrected,
(c) decay-corrected to the scan start with injection 120 s before the first frame. Read back
through the sidecar reader and its decay factors, all three give the same BPND.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from tspo_bidsapp.interfaces.decay import DecayCorrectPET
from tspo_bidsapp.io.pet_sidecar import read_pet_sidecar
from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics.frames import MAX_GRID_POINTS, InterpolatedReference
from tspo_bidsapp.kinetics.srtm import fit_srtm
from tspo_bidsapp.synthetic.pet import class_tacs
from tspo_bidsapp.synthetic.sidecar import frame_scale, timing_fields

TRUE_BPND = (0.2, 0.5, 1.0)
PARAMS = {1: (1.0, 0.1, 0.0), 2: (0.9, 0.09, 0.2), 3: (0.9, 0.09, 0.5), 4: (0.9, 0.09, 1.0)}
TRACERS = {"PBR28": "C11", "GE180": "F18"}
OFFSET_S = 120.0  # injection 120 s before the first frame


def _write(tmp_path, tracer, mode, timing):
    nuclide = TRACERS[tracer]
    half_life = {"C11": 20.364, "F18": 109.77}[nuclide]
    meta = {"TimeZero": "10:00:00", "Units": "kBq/mL", "TracerName": tracer,
            "TracerRadionuclide": nuclide, **timing_fields(timing, half_life, mode)}  # fmt: skip
    path = tmp_path / f"{tracer}_{mode}_pet.json"
    path.write_text(json.dumps(meta))
    return path, frame_scale(timing, half_life, mode)


def _bpnd(start_min, end_min, ref, tacs):
    return np.array([fit_srtm(start_min, end_min, ref, tacs[lab]).BPND for lab in (2, 3, 4)], float)


@pytest.mark.parametrize("tracer", sorted(TRACERS))
def test_same_bpnd_however_the_data_are_written(tmp_path, tracer):
    truth = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S, OFFSET_S)
    ref, tacs = class_tacs(truth, {0: PARAMS[1], **PARAMS}, 1.0)
    tacs[0] = ref
    results = {}
    for mode in ("injection", "none", "scan-start"):
        path, scale = _write(tmp_path, tracer, mode, truth)
        sidecar = read_pet_sidecar(path)
        np.testing.assert_allclose(sidecar.timing.start_s, truth.start_s)  # from injection
        written = tacs * scale
        corrected = written * sidecar.decay_factors()
        t = sidecar.timing
        results[mode] = _bpnd(t.start_min, t.end_min, corrected[0], corrected)
        if mode == "injection":
            continue
        # What fitting the data as written, on the sidecar's own frame times, gives.
        raw = sidecar.frame_times_start_s / 60.0
        naive = _bpnd(raw - raw[0] + 1e-9, raw - raw[0] + t.duration_min, written[0], written)
        results[f"naive-{mode}"] = naive
    a = results["injection"]
    np.testing.assert_allclose(a, TRUE_BPND, rtol=0.02)
    np.testing.assert_allclose(results["none"], a, rtol=0.01)
    np.testing.assert_allclose(results["scan-start"], a, rtol=0.01)
    # Without the correction, 11C BPND is far off (the bug this guards against).
    if TRACERS[tracer] == "C11":
        assert np.all(np.abs(results["naive-none"] / a - 1) > 0.2)


def test_frames_before_injection_are_averaged_with_zero_activity():
    """A frame straddling injection averages C(t) = 0 before it: C(t) = t gives e^2 / 2 / dur."""
    start, end = np.array([-1.0, 0.5, 1.0, 2.0]), np.array([0.5, 1.0, 2.0, 4.0])
    ref = InterpolatedReference(start, end, [0.1, 0.75, 1.5, 3.0])
    out = ref.average(ref.grid)  # the identity curve C(t) = t on the fine grid
    np.testing.assert_allclose(out, [0.5**2 / 2 / 1.5, 0.75, 1.5, 3.0], rtol=1e-9)
    # A 30-s frame before injection (no tracer) does not disturb the fit.
    truth = FrameTiming.from_durations_s((30.0,) + TSPO_60MIN_DURATIONS_S, -30.0)
    ref_frames, tacs = class_tacs(
        FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S), {0: PARAMS[1], **PARAMS}, 1.0
    )
    pre = np.zeros((tacs.shape[0], 1))
    bp = _bpnd(truth.start_min, truth.end_min, np.r_[0.0, ref_frames], np.hstack([pre, tacs]))
    np.testing.assert_allclose(bp, TRUE_BPND, rtol=0.02)


def test_fine_grid_memory_is_bounded():
    """A 1000-hour schedule (frame times in ms read as s) keeps the grid at <= 20 000 points."""
    timing = FrameTiming.from_durations_s(1000.0 * np.asarray(TSPO_60MIN_DURATIONS_S))
    ref = InterpolatedReference(timing.start_min, timing.end_min, np.linspace(1, 2, 22))
    assert ref.grid.size <= MAX_GRID_POINTS and ref.grid[-1] >= timing.end_min[-1]
    assert ref.conv_frames_many(np.linspace(0.01, 1.0, 50)).shape == (50, 22)
    short = InterpolatedReference([0.0], [60.0], [1.0])
    assert short.step == pytest.approx(1.0 / 60.0)  # 1 s for ordinary scans


def test_decay_node_writes_injection_axis(tmp_path):
    """The workflow's first step: image x factors, sidecar re-read with unit factors."""
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S[:6], OFFSET_S)
    path, scale = _write(tmp_path, "PBR28", "none", timing)
    values = np.arange(1.0, 7.0, dtype=np.float32)
    pet = tmp_path / "pet.nii.gz"
    nib.Nifti1Image(np.ones((3, 3, 2, 6), np.float32) * values, np.eye(4)).to_filename(pet)
    res = DecayCorrectPET(pet_file=str(pet), sidecar_file=str(path)).run(cwd=str(tmp_path))
    out = res.outputs
    expected = values / scale  # not decay-corrected -> divided by the mean frame decay
    np.testing.assert_allclose(nib.load(out.out_file).get_fdata()[1, 1, 1], expected, rtol=1e-6)
    again = read_pet_sidecar(out.out_sidecar)
    np.testing.assert_allclose(again.decay_factors(), 1.0)
    np.testing.assert_allclose(again.timing.start_s, timing.start_s)
    record = again.time_axis_record()
    assert record["DecayCorrection"]["Applied"].startswith("input not decay-corrected")
    np.testing.assert_allclose(record["DecayCorrection"]["Factors"], 1 / scale, rtol=1e-5)
