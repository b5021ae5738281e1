"""DerivativesDataSink: BIDS naming, folders, sidecars and atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")  # no version check over the network

import nibabel as nib
import numpy as np
import pytest

from tspo_bidsapp import writing
from tspo_bidsapp.interfaces import bids as bids_interfaces
from tspo_bidsapp.interfaces.bids import DerivativesDataSink, derivative_path, frame_means

SRC = "/data/bids/sub-01/ses-base/pet/sub-01_ses-base_task-rest_trc-PBR28_rec-OSEM_run-2_pet.nii.gz"


def test_naming_keeps_source_entities_in_bids_order():
    rel = derivative_path(
        SRC, space="T1w", desc="mc", meas="BPND", model="srtm", extension=".nii.gz"
    )
    assert rel == Path(
        "sub-01/ses-base/pet/sub-01_ses-base_task-rest_trc-PBR28_rec-OSEM_run-2"
        "_space-T1w_model-srtm_meas-BPND_desc-mc_pet.nii.gz"
    )
    rel = derivative_path(
        "/x/sub-02/anat/sub-02_T1w.nii.gz", seg="samseg", label="lesion", suffix="mask",
        extension="nii.gz",
    )  # fmt: skip
    assert rel == Path("sub-02/anat/sub-02_seg-samseg_label-lesion_mask.nii.gz")
    rel = derivative_path("/x/sub-02/pet/sub-02_trc-PBR28_pet.nii.gz", ref="cbgm", suffix="tacs",
                          extension=".tsv", datatype="pet")  # fmt: skip
    assert rel == Path("sub-02/pet/sub-02_trc-PBR28_ref-cbgm_tacs.tsv")


def test_naming_rejects_bad_values():
    with pytest.raises(ValueError, match="entity 'desc' must be alphanumeric"):
        derivative_path(SRC, desc="motion_corrected", extension=".nii.gz")
    with pytest.raises(ValueError, match="unknown derivative entities"):
        derivative_path(SRC, hemi="L", extension=".nii.gz")
    with pytest.raises(ValueError, match="no sub- entity"):
        derivative_path("/x/T1w.nii.gz", extension=".nii.gz")


def test_sink_writes_file_and_sidecar(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    in_file = tmp_path / "in.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), in_file)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    sink = DerivativesDataSink(
        base_directory=str(out_dir), source_file=SRC, in_file=str(in_file), space="T1w",
        desc="mc", extension=".nii.gz", meta_dict={"Units": "kBq/mL", "Frames": np.int64(22)},
    )  # fmt: skip
    result = sink.run()
    out_file = Path(result.outputs.out_file)
    expected = "sub-01_ses-base_task-rest_trc-PBR28_rec-OSEM_run-2_space-T1w_desc-mc_pet"
    assert out_file == out_dir / "sub-01/ses-base/pet" / f"{expected}.nii.gz"
    np.testing.assert_array_equal(nib.load(out_file).get_fdata(), data)  # re-saved compressed
    assert out_file.read_bytes()[:2] == b"\x1f\x8b"
    meta = json.loads(Path(result.outputs.out_meta).read_text())
    assert meta == {
        "Units": "kBq/mL",
        "Frames": 22,
        "Sources": [
            "bids:raw:sub-01/ses-base/pet/"
            "sub-01_ses-base_task-rest_trc-PBR28_rec-OSEM_run-2_pet.nii.gz"
        ],
    }
    assert sorted(p.name for p in out_file.parent.iterdir()) == [f"{expected}.json", out_file.name]
    assert oct(out_file.stat().st_mode & 0o777) == oct(0o666 & ~writing.current_umask())


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "sub-01/pet/sub-01_desc-x_tacs.tsv"
    bids_interfaces._atomic_write(target, lambda tmp: tmp.write_text("old\n"))

    def broken(tmp: Path) -> None:
        tmp.write_text("half-writ")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        bids_interfaces._atomic_write(target, broken)
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary left


def test_atomic_write_replaces_via_rename(tmp_path, monkeypatch):
    """The target only ever appears complete: it is the result of one os.replace."""
    target = tmp_path / "a.tsv"
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((Path(src).read_text(), Path(dst)))
        assert not Path(dst).exists()
        real_replace(src, dst)

    monkeypatch.setattr(writing.os, "replace", spy)
    bids_interfaces._atomic_write(target, lambda tmp: tmp.write_text("complete\n"))
    assert calls == [("complete\n", target)]


def test_frame_means_ignores_non_finite_voxels():
    data = np.ones((2, 2, 1, 3))
    data[..., 1] = 4.0
    data[0, 0, 0, 1] = np.nan
    data[..., 2] = np.inf
    np.testing.assert_array_equal(frame_means(data), [1.0, 4.0, np.nan])
    assert frame_means(np.full((2, 2, 2), 3.0)).tolist() == [3.0]
