"""PET sidecar validation: every error names the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_input_data import make_dataset, pet_sidecar

from tspo_bidsapp.exitcodes import EX_INVALID_BIDS, EX_MISSING_INPUT, InputProblems
from tspo_bidsapp.io.bids_input import collect_data, pet_frame_count
from tspo_bidsapp.io.pet_sidecar import read_pet_sidecar
from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming


def _write(tmp_path: Path, meta: dict) -> Path:
    path = tmp_path / "sub-01_trc-PBR28_pet.json"
    path.write_text(json.dumps(meta))
    return path


def _problems(path: Path, **kwargs) -> list[tuple[str, str]]:
    with pytest.raises(InputProblems) as info:
        read_pet_sidecar(path, **kwargs)
    assert info.value.exit_code == EX_INVALID_BIDS
    assert all(p == path for p, _, _ in info.value.problems)
    assert str(path) in str(info.value)
    return [(field, message) for _, field, message in info.value.problems]


@pytest.mark.parametrize(
    "field",
    ["FrameTimesStart", "FrameDuration", "Units", "TracerName", "TracerRadionuclide"],
)  # fmt: skip
def test_missing_required_field(tmp_path, field):
    path = _write(tmp_path, pet_sidecar(**{field: None}))
    problems = _problems(path)
    assert (field, "required field is missing") in problems


@pytest.mark.parametrize("field", ["TimeZero", "ScanStart"])
def test_time_zero_and_scan_start_are_not_needed(tmp_path, field):
    sidecar = read_pet_sidecar(_write(tmp_path, pet_sidecar(**{field: None})))
    assert any(f"{field} is absent" in w for w in sidecar.warnings)
    assert sidecar.timing.start_s[0] == 0.0


def test_missing_injection_start_needs_the_option(tmp_path):
    path = _write(tmp_path, pet_sidecar(InjectionStart=None))
    ((field, message),) = _problems(path)
    assert field == "InjectionStart" and "--injection-time-offset" in message
    sidecar = read_pet_sidecar(path, injection_start_s=-120.0)
    assert sidecar.timing.start_s.tolist()[:2] == [120.0, 135.0]  # seconds after injection
    assert sidecar.injection_source == "--injection-time-offset"
    assert any("--injection-time-offset -120 s is used" in w for w in sidecar.warnings)
    # The option also overrides a (wrong) InjectionStart, with a warning.
    sidecar = read_pet_sidecar(_write(tmp_path, pet_sidecar()), injection_start_s=-30.0)
    assert sidecar.timing.start_s[0] == 30.0 and "overridden" in sidecar.warnings[0]


def test_time_axis_counts_from_injection(tmp_path):
    """FrameTimesStart relative to TimeZero (scan start), injection 120 s before it."""
    meta = pet_sidecar(InjectionStart=-120, ImageDecayCorrectionTime=0)
    sidecar = read_pet_sidecar(_write(tmp_path, meta))
    assert sidecar.timing.start_s.tolist() == [s + 120 for s in meta["FrameTimesStart"]]
    assert sidecar.frame_times_start_s.tolist() == meta["FrameTimesStart"]
    # Corrected to 120 s after injection: every frame scaled by 2^(2 min / 20.364 min).
    np.testing.assert_allclose(sidecar.decay_factors(), 2 ** (2.0 / 20.364))
    assert any("shifted to count from injection" in w for w in sidecar.warnings)
    assert any("rescaled to injection (× 1.07" in w for w in sidecar.warnings)
    record = sidecar.summary()
    assert record["InjectionStart"] == -120.0
    assert record["DecayCorrection"]["Reference"] == "injection"


def test_negative_frame_times_are_allowed(tmp_path):
    """BIDS allows frames before TimeZero; a frame straddling injection is kept."""
    meta = pet_sidecar(FrameTimesStart=[-10, 0, 15, 30, 45, 60], FrameDuration=[10] + [15] * 5)
    sidecar = read_pet_sidecar(_write(tmp_path, meta))
    assert sidecar.timing.start_s[0] == -10.0
    ((field, message),) = _problems(
        _write(tmp_path, pet_sidecar(InjectionStart=200)), n_frames=None
    )
    assert field == "FrameTimesStart" and "every frame ends before the injection" in message


def test_milliseconds_are_implausible(tmp_path):
    """Frame times x 1000 (a 1000-hour 11C scan) name the field and suggest milliseconds."""
    good = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    meta = pet_sidecar(
        FrameTimesStart=(1000 * good.start_s).tolist(),
        FrameDuration=(1000 * good.duration_s).tolist(),
    )
    ((field, message),) = _problems(_write(tmp_path, meta))
    assert field == "FrameTimesStart"
    assert "half-lives" in message and "in milliseconds?" in message
    # A 6-h 18F scan is fine, a 27-h one (pet006's 98000 s frame) is not.
    read_pet_sidecar(
        _write(tmp_path, pet_sidecar(
            n_frames=1, TracerName="GE180", TracerRadionuclide="F18",
            FrameTimesStart=[0], FrameDuration=[21600]))
    )  # fmt: skip
    ((field, _),) = _problems(
        _write(tmp_path, pet_sidecar(
            n_frames=1, TracerName="GE180", TracerRadionuclide="F18",
            FrameTimesStart=[0], FrameDuration=[98000]))
    )  # fmt: skip
    assert field == "FrameDuration"


def test_decay_correction_time_after_the_scan(tmp_path):
    ((field, message),) = _problems(_write(tmp_path, pet_sidecar(ImageDecayCorrectionTime=99999)))
    assert field == "ImageDecayCorrectionTime" and "after the scan" in message


def test_all_problems_reported_together(tmp_path):
    path = _write(tmp_path, pet_sidecar(Units=None, TracerName=None, ScanStart="zero"))
    fields = [f for f, _ in _problems(path)]
    assert fields == ["Units", "TracerName", "ScanStart"]


def test_length_mismatch(tmp_path):
    path = _write(tmp_path, pet_sidecar(FrameDuration=[15, 15, 15]))
    ((field, message),) = _problems(path)
    assert field == "FrameDuration"
    assert "FrameTimesStart has 6 values but FrameDuration has 3" in message


def test_frame_count_against_image(tmp_path):
    path = _write(tmp_path, pet_sidecar())
    ((field, message),) = _problems(path, n_frames=22)
    assert field == "FrameTimesStart" and message == "lists 6 frames but the PET image has 22"
    assert read_pet_sidecar(path, n_frames=6).n_frames == 6


def test_non_positive_durations(tmp_path):
    path = _write(tmp_path, pet_sidecar(FrameDuration=[15, 0, 15, 15, 30, -30]))
    problems = dict(_problems(path))
    assert "frame(s) [2, 6] have [0.0, -30.0] s" in problems["FrameDuration"]


def test_start_times_must_increase(tmp_path):
    path = _write(tmp_path, pet_sidecar(FrameTimesStart=[0, 15, 30, 30, 60, 90]))
    ((field, message),) = _problems(path)
    assert field == "FrameTimesStart"
    assert "frame 4 starts at 30 s, not after frame 3 at 30 s" in message


def test_overlapping_frames(tmp_path):
    path = _write(tmp_path, pet_sidecar(FrameDuration=[15, 15, 20, 15, 30, 30]))
    ((field, message),) = _problems(path)
    assert field == "FrameDuration"
    assert "frame 3 starts at 30 s and lasts 20 s, so it ends at 50 s" in message
    assert "end times" not in message


def test_gaps_between_frames_are_allowed(tmp_path):
    sidecar = read_pet_sidecar(
        _write(tmp_path, pet_sidecar(FrameTimesStart=[0, 20, 40, 60, 90, 150]))
    )
    assert sidecar.timing.end_s[-1] == pytest.approx(180.0)


def test_unknown_radionuclide_and_mismatch(tmp_path):
    problems = _problems(_write(tmp_path, pet_sidecar(TracerRadionuclide="Xx99")))
    assert (
        problems[0][0] == "TracerRadionuclide" and "unknown radionuclide 'Xx99'" in problems[0][1]
    )
    problems = _problems(_write(tmp_path, pet_sidecar(TracerRadionuclide="F18")))
    assert "does not match tracer PBR28, which is labelled with C11" in problems[0][1]


def test_decay_fields_are_carried(tmp_path):
    sidecar = read_pet_sidecar(_write(tmp_path, pet_sidecar(ImageDecayCorrectionTime=-120)))
    assert sidecar.decay_corrected is True and sidecar.decay_correction_time_s == -120.0
    problems = _problems(
        _write(tmp_path, pet_sidecar(ImageDecayCorrected=None, ImageDecayCorrectionTime=None))
    )
    assert problems[0][0] == "ImageDecayCorrected" and "missing" in problems[0][1]
    sidecar = read_pet_sidecar(
        _write(tmp_path, pet_sidecar(ImageDecayCorrected=False, ImageDecayCorrectionTime=None))
    )
    # Not decay-corrected: frame k is divided by its mean decay factor (first frame 0-15 s).
    lam = np.log(2) / 20.364
    expected = lam * 0.25 / (1 - np.exp(-lam * 0.25))
    assert sidecar.decay_factors()[0] == pytest.approx(expected, rel=1e-12)
    assert any("ImageDecayCorrected is false: every frame" in w for w in sidecar.warnings)
    problems = _problems(_write(tmp_path, pet_sidecar(ImageDecayCorrected="yes")))
    assert problems[0][0] == "ImageDecayCorrected"


def test_unknown_tracer_is_a_warning(tmp_path):
    sidecar = read_pet_sidecar(_write(tmp_path, pet_sidecar(TracerName="raclopride")))
    assert sidecar.tracer is None
    assert any("'raclopride' is not a TSPO tracer known" in w for w in sidecar.warnings)


def test_bad_dataset_names_file_and_field(tmp_path):
    bids = make_dataset(tmp_path / "bids", meta=pet_sidecar(Units=None))
    with pytest.raises(InputProblems) as info:
        collect_data(bids)
    assert info.value.exit_code == EX_INVALID_BIDS
    ((path, field, _),) = info.value.problems
    assert path.name == "sub-01_ses-base_trc-PBR28_pet.json" and field == "Units"


def test_missing_t1w_is_a_missing_input(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    (bids / "sub-02/anat/sub-02_T1w.nii.gz").unlink()
    with pytest.raises(InputProblems) as info:
        collect_data(bids)
    assert info.value.exit_code == EX_MISSING_INPUT
    assert "sub-02: no T1w image found" in str(info.value)


# Real sidecars from the BIDS PET examples. pet001, pet003 and pet004 store each frame's *end*
# time in FrameDuration (FrameDuration[i] == FrameTimesStart[i+1]), so their frames overlap;
# pet002 and pet005 are consistent; pet006 is a single-frame (static) [18F]FDG scan of 98000 s
# (27 h, 15 half-lives), an implausible FrameDuration.
EXAMPLES = {
    "pet001/sub-01/ses-01/pet/sub-01_ses-01_trc-CIMBI36_pet.json": (False, 45),
    "pet002/sub-01/ses-baseline/pet/sub-01_ses-baseline_pet.json": (True, 32),
    "pet002/sub-01/ses-rescan/pet/sub-01_ses-rescan_pet.json": (True, 36),
    "pet002/sub-02/ses-baseline/pet/sub-02_ses-baseline_pet.json": (True, 36),
    "pet002/sub-02/ses-rescan/pet/sub-02_ses-rescan_pet.json": (True, 36),
    "pet003/sub-01/ses-01/pet/sub-01_ses-01_pet.json": (False, 21),
    "pet004/sub-01/pet/sub-01_pet.json": (False, 45),
    "pet005/sub-01/ses-baseline/pet/sub-01_ses-baseline_pet.json": (True, 48),
    "pet005/sub-01/ses-intervention/pet/sub-01_ses-intervention_task-eyes_pet.json": (True, 48),
    "pet006/sub-01/pet/sub-01_pet.json": (False, 1),
}


def test_bids_pet_examples(shared_data):
    root = shared_data / "bids_examples_pet"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*_pet.json")) == sorted(EXAMPLES)
    for rel, (valid, n_frames) in EXAMPLES.items():
        path = root / rel
        if valid:
            sidecar = read_pet_sidecar(path)
            assert sidecar.n_frames == n_frames
            assert sidecar.is_static == (n_frames == 1)
            assert sidecar.tracer is None  # none of them is a TSPO tracer
            continue
        ((field, message),) = _problems(path)
        assert field == "FrameDuration"
        if n_frames == 1:
            assert "14.9 half-lives" in message
            continue
        assert message.startswith("FrameDuration is inconsistent with FrameTimesStart")
        assert f"{n_frames - 2} frame(s) overlap" in message
        assert "FrameDuration holds the frame end times" in message


def test_bids_pet_example_frame_count(shared_data):
    """pet001's image has 21 frames; its sidecar lists 45."""
    pet = shared_data / "bids_examples_pet/pet001/sub-01/ses-01/pet/sub-01_ses-01_trc-CIMBI36_pet"
    n_frames = pet_frame_count(Path(f"{pet}.nii.gz"))
    assert n_frames == 21
    problems = _problems(Path(f"{pet}.json"), n_frames=n_frames)
    assert ("FrameTimesStart", "lists 45 frames but the PET image has 21") in problems


# What the input layer reports for each example dataset (their images are empty placeholders:
# unreadable, or all-zero as pet001's PET). (file name, field) of every problem; field None: the
# file as a whole.
EXAMPLE_DATASETS = {
    "pet001": {("sub-01_ses-01_trc-CIMBI36_pet.json", "FrameTimesStart"),
               ("sub-01_ses-01_trc-CIMBI36_pet.json", "FrameDuration"),
               ("sub-01_ses-01_trc-CIMBI36_pet.nii.gz", None), ("sub-01_ses-01_T1w.nii", None)},
    "pet002": {(f"sub-0{s}_ses-{ses}_pet.nii.gz", None) for s in (1, 2)
               for ses in ("baseline", "rescan")}
              | {(f"sub-0{s}_ses-baseline_T1w.nii", None) for s in (1, 2)},
    "pet003": {("sub-01_ses-01_pet.nii.gz", None), ("sub-01_ses-01_pet.json", "FrameDuration"),
               ("sub-01_ses-01_T1w.nii", None)},
    "pet004": {("sub-01", None), ("sub-01_pet.nii.gz", None), ("sub-01_pet.json", "FrameDuration")},
    "pet005": {("sub-01_ses-baseline_pet.nii.gz", None),
               ("sub-01_ses-intervention_task-eyes_pet.nii.gz", None)},
    "pet006": {("sub-01", None), ("sub-01_pet.nii.gz", None), ("sub-01_pet.json", "FrameDuration")},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXAMPLE_DATASETS))
def test_bids_pet_example_datasets_name_file_and_field(shared_data, name):
    with pytest.raises(InputProblems) as info:
        collect_data(shared_data / "bids_examples_pet" / name, validate=False)
    assert info.value.exit_code == EX_INVALID_BIDS
    found = {(Path(path).name, field) for path, field, _ in info.value.problems}
    assert found == EXAMPLE_DATASETS[name]


def test_injection_time_offset_option_reaches_the_reader(tmp_path):
    """A dataset without InjectionStart stops (exit 16) unless --injection-time-offset says it."""
    from tspo_bidsapp.cli.parser import parse_args

    bids = make_dataset(tmp_path / "bids", meta=pet_sidecar(InjectionStart=None))
    with pytest.raises(InputProblems) as info:
        collect_data(bids)
    assert {f for _, f, _ in info.value.problems} == {"InjectionStart"}
    config = parse_args([str(bids), str(tmp_path / "out"), "participant",
                         "--injection-time-offset", "-30"])  # fmt: skip
    assert config.injection_time_offset_s == -30.0
    subjects, warnings = collect_data(bids, injection_start_s=config.injection_time_offset_s)
    run = subjects[0].pet_runs[0]
    assert run.sidecar.timing.start_s[0] == 30.0 and run.sidecar.injection_source.startswith("--")
    assert any("--injection-time-offset -30 s is used" in w for w in warnings)
