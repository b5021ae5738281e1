"""Tiny BIDS datasets built in tmp_path, and the input layer on good datasets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tspo_bidsapp.io.bids_input import collect_data
from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming

DURATIONS_S = TSPO_60MIN_DURATIONS_S[:6]  # 4 x 15 s, 2 x 30 s
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def pet_sidecar(n_frames: int = len(DURATIONS_S), **overrides) -> dict:
    timing = FrameTiming.from_durations_s(DURATIONS_S[:n_frames])
    meta = {
        "TimeZero": "10:00:00",
        "ScanStart": 0,
        "InjectionStart": 0,
        "FrameTimesStart": timing.start_s.tolist(),
        "FrameDuration": timing.duration_s.tolist(),
        "Units": "kBq/mL",
        "TracerName": "PBR28",
        "TracerRadionuclide": "C11",
        "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 0,
    }
    meta.update(overrides)
    return {k: v for k, v in meta.items() if v is not None}


def frame_values(n_frames: int) -> np.ndarray:
    """Per-frame activity of the synthetic PET: frame k holds 1.5 * (k + 1) kBq/mL everywhere."""
    return 1.5 * (np.arange(n_frames) + 1.0)


def write_pet(path: Path, n_frames: int, meta: dict | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.ones((4, 4, 3, n_frames), np.float32) * frame_values(n_frames).astype(np.float32)
    if n_frames == 1:
        data = data[..., 0]
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    if meta is not None:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(json.dumps(meta))


def write_anat(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.float32), np.eye(4)), path)


PARTICIPANTS = (
    "participant_id\tgroup\tage\tsex\tedss\ttspo_genotype\n"
    "sub-01\tRRMS\t34\tF\t2.5\tHAB\n"
    "sub-02\tHC\t41\tM\tn/a\tLAB\n"
)


def make_dataset(root: Path, *, flair: bool = True, meta: dict | None = None) -> Path:
    """Two participants: sub-01 (one session, PBR28, FLAIR) and sub-02 (two runs, no session)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "tiny", "BIDSVersion": "1.9.0", "DatasetDOI": "10.0/tiny"})
    )
    (root / "participants.tsv").write_text(PARTICIPANTS)
    (root / "README").write_text("A tiny dataset.\n")
    write_anat(root / "sub-01/ses-base/anat/sub-01_ses-base_T1w.nii.gz")
    if flair:
        write_anat(root / "sub-01/ses-base/anat/sub-01_ses-base_FLAIR.nii.gz")
        write_anat(root / "sub-01/ses-base/anat/sub-01_ses-base_T2w.nii.gz")
    write_pet(
        root / "sub-01/ses-base/pet/sub-01_ses-base_trc-PBR28_pet.nii.gz", 6, meta or pet_sidecar()
    )
    write_anat(root / "sub-02/anat/sub-02_T1w.nii.gz")
    for run, n in ((1, 6), (2, 4)):
        write_pet(root / f"sub-02/pet/sub-02_trc-PBR28_run-{run}_pet.nii.gz", n, pet_sidecar(n))
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file (and folder) under root with a hash of its content."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "d"
        for p in sorted(root.rglob("*"))
    }


def test_collect_good_dataset(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    before = snapshot(bids)
    subjects, warnings = collect_data(bids)
    assert snapshot(bids) == before  # pybids wrote nothing into the dataset

    assert [s.label for s in subjects] == ["01", "02"]
    sub1, sub2 = subjects
    assert sub1.t1w.name == "sub-01_ses-base_T1w.nii.gz"
    assert sub1.flair.name == "sub-01_ses-base_FLAIR.nii.gz"
    assert sub2.flair is None
    assert sub1.t2w.name == "sub-01_ses-base_T2w.nii.gz" and sub2.t2w is None
    assert sub1.sessions == ("base",)
    (run,) = sub1.pet_runs
    assert run.entities == {"sub": "01", "ses": "base", "trc": "PBR28"}
    assert run.run_id == "ses_base_trc_PBR28"
    assert run.image_frames == 6
    np.testing.assert_allclose(run.sidecar.timing.start_min, [0, 0.25, 0.5, 0.75, 1.0, 1.5])
    np.testing.assert_allclose(run.sidecar.timing.end_min[-1], 2.0)
    assert run.sidecar.tracer.name == "PBR28"
    assert run.sidecar.half_life_min == pytest.approx(20.364)
    assert sub1.participant.group == "RRMS" and sub1.participant.edss == 2.5

    assert [r.run_id for r in sub2.pet_runs] == ["trc_PBR28_run_1", "trc_PBR28_run_2"]
    assert [r.image_frames for r in sub2.pet_runs] == [6, 4]
    # LAB with a second-generation tracer is flagged (once per run); no FLAIR is noted.
    assert sum("sub-02: low-affinity binder (LAB)" in w for w in sub2.warnings) == 2
    assert any("sub-02: no FLAIR" in w for w in warnings)
    assert not any("LAB" in w for w in sub1.warnings)


def test_collect_filters(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    subjects, _ = collect_data(bids, participant_label=("02",))
    assert [s.label for s in subjects] == ["02"]
    subjects, _ = collect_data(bids, session_label=("base",))
    assert [s.label for s in subjects] == ["01"]


def test_static_pet_is_accepted_and_reported(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    for old in (bids / "sub-01/ses-base/pet").iterdir():
        old.unlink()
    write_pet(bids / "sub-01/ses-base/pet/sub-01_ses-base_trc-PBR28_pet.nii.gz", 1, pet_sidecar(1))
    subjects, warnings = collect_data(bids, participant_label=("01",))
    (run,) = subjects[0].pet_runs
    assert run.sidecar.is_static and run.image_frames == 1
    assert any("static (single-frame) PET" in w and "only SUVR" in w for w in warnings)
