"""Regional TAC extraction and the reference-region checks."""

import numpy as np
import pytest

from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics.simulate import fine_grid, frame_average, reference_tac
from tspo_bidsapp.quant.reference import ReferenceChecks, cerebellum_reference, check_reference
from tspo_bidsapp.quant.tacs import read_tacs_tsv, region_means, region_tacs, write_tacs_tsv


def test_region_means_match_explicit_means_and_skip_nan():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(6, 7, 8))
    data = rng.normal(10.0, 2.0, size=(6, 7, 8, 3))
    data[0, 0, 0, 1] = np.nan
    means, counts = region_means(data, labels, 6)
    assert means.shape == (7, 3)
    for lab in range(1, 5):
        sel = labels == lab
        assert counts[lab] == sel.sum()
        np.testing.assert_allclose(means[lab], np.nanmean(data[sel], axis=0), rtol=1e-12)
    assert counts[5] == 0 and counts[6] == 0 and np.all(np.isnan(means[6]))


def test_region_tacs_volumes_and_tsv_roundtrip(tmp_path):
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    labels = np.zeros((4, 4, 4), int)
    labels[:2] = 1
    labels[2:, :1] = 3
    tac = np.linspace(1.0, 2.0, timing.n_frames)
    data = np.broadcast_to(tac, (4, 4, 4, timing.n_frames)) * (1 + labels[..., None])
    tacs, volumes = region_tacs(data, labels, {1: "a", 2: "absent", 3: "c"}, voxel_ml=0.008)
    assert set(tacs) == {"a", "c"}
    assert volumes["a"] == pytest.approx(32 * 0.008) and volumes["c"] == pytest.approx(8 * 0.008)
    np.testing.assert_allclose(tacs["c"], 4 * tac)
    path = write_tacs_tsv(timing, tacs, tmp_path / "x_tacs.tsv")
    header = path.read_text().splitlines()[0].split("\t")
    assert header == ["frame_start", "frame_end", "a", "c"]
    timing2, back = read_tacs_tsv(path)
    np.testing.assert_allclose(timing2.end_s, timing.end_s)
    np.testing.assert_allclose(back["a"], 2 * tac, rtol=1e-5)


def _timing_and_ref():
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    t = fine_grid(float(timing.end_min[-1]))
    ref = frame_average(t, reference_tac(t), timing.start_min, timing.end_min)
    return timing, ref


def test_plausible_reference_passes_and_bad_ones_are_flagged():
    timing, ref = _timing_and_ref()
    assert check_reference(ref, timing, 20.0) == []
    small = check_reference(ref, timing, 2.0)
    assert len(small) == 1 and "2.00 mL" in small[0]
    neg = ref.copy()
    neg[3] = -0.5
    assert any("negative in 1 frame (" in w for w in check_reference(neg, timing, 20.0))
    late = np.cumsum(ref)  # rises all scan long: peaks in the last frame (55 min)
    msgs = check_reference(late, timing, 20.0)
    assert any("peaks at 55.0 min" in w for w in msgs)
    lesions = check_reference(ref, timing, 20.0, cerebellar_lesion_ml=0.4)
    assert len(lesions) == 1 and "0.40 mL of lesion" in lesions[0]
    svca = check_reference(ref, timing, 20.0, cerebellar_lesion_ml=0.4, ref_region="svca")
    assert svca == []
    strict = ReferenceChecks(max_peak_min=2.0)
    assert any("later than 2 min" in w for w in check_reference(ref, timing, 20.0, limits=strict))


def test_cerebellum_reference_drops_lesions_from_the_mask():
    timing, ref = _timing_and_ref()
    data = np.zeros((5, 5, 5, timing.n_frames))
    cand = np.zeros((5, 5, 5), bool)
    cand[1:4, 1:4, 1:4] = True
    data[cand] = ref
    lesion = np.zeros_like(cand)
    lesion[2, 2, 2] = True
    data[2, 2, 2] = 10 * ref  # a hot lesion must not leak into the reference
    mask, tac = cerebellum_reference(data, cand, lesion)
    assert mask.sum() == 26
    np.testing.assert_allclose(tac, ref, rtol=1e-12)
