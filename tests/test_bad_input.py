"""Every row of the bad-input table in docs/usage.md: the exit code, a message naming the file
and the cause, no output folder, and the input dataset untouched."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from test_input_data import AFFINE, make_dataset, pet_sidecar, snapshot, write_pet

from tspo_bidsapp.cli.run import main

ROOT = Path(__file__).resolve().parents[1]
PET = "sub-01/ses-base/pet/sub-01_ses-base_trc-PBR28_pet.nii.gz"
T1W = "sub-01/ses-base/anat/sub-01_ses-base_T1w.nii.gz"
FLAIR = "sub-01/ses-base/anat/sub-01_ses-base_FLAIR.nii.gz"


def _truncate(path: Path) -> None:
    data = gzip.compress(nib.load(path).to_bytes(), compresslevel=0)  # data well past the header
    path.write_bytes(data[: len(data) // 2])


def _replace_data(path: Path, change) -> None:
    img = nib.load(path)
    data = img.get_fdata(dtype=np.float32)
    change(data)
    nib.save(nib.Nifti1Image(data, AFFINE), path)


def _not_nifti(path: Path) -> None:
    path.write_bytes(gzip.compress(b"this is not an image\n"))


def _nan(data: np.ndarray) -> None:
    data[0, 0, 0, ...] = np.nan


def _inf(data: np.ndarray) -> None:
    data[1, 1, 1, ...] = np.inf


def _zero(data: np.ndarray) -> None:
    data[...] = 0.0


def _frames_mismatch(bids: Path) -> None:
    write_pet(bids / PET, 5, pet_sidecar(6))


def _no_t1w(bids: Path) -> None:
    (bids / T1W).unlink()


# row of docs/usage.md -> (change to the tiny dataset, exit code, words of the message)
CASES = {
    "PET `.nii.gz` truncated": (lambda b: _truncate(b / PET), 16, (PET, "truncated")),
    "PET not a NIfTI image": (lambda b: _not_nifti(b / PET), 16, (PET, "NIfTI")),
    "PET with NaN voxels": (lambda b: _replace_data(b / PET, _nan), 16, (PET, "NaN")),
    "PET with infinite voxels": (lambda b: _replace_data(b / PET, _inf), 16, (PET, "infinite")),
    "PET all zero": (lambda b: _replace_data(b / PET, _zero), 16, (PET, "no positive value")),
    "PET frames differ from the sidecar": (_frames_mismatch, 16, (PET[:-7] + ".json", "5")),
    "T1w `.nii.gz` truncated": (lambda b: _truncate(b / T1W), 16, (T1W, "truncated")),
    "T1w with NaN voxels": (lambda b: _replace_data(b / T1W, _nan), 16, (T1W, "NaN")),
    "FLAIR not a NIfTI image": (lambda b: _not_nifti(b / FLAIR), 16, (FLAIR, "NIfTI")),
    "no T1w": (_no_t1w, 66, ("sub-01", "no T1w")),
}


def _documented_rows() -> dict[str, int]:
    text = (ROOT / "docs" / "usage.md").read_text()
    section = text.split("### Bad input", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| (.+?) \| (\d+) \|", section, re.M)
    return {name: int(code) for name, code in rows}


def test_the_table_lists_every_case():
    documented = _documented_rows()
    tested = {name: code for name, (_, code, _) in CASES.items()}
    assert {k: v for k, v in documented.items() if k in tested} == tested
    untested = set(documented) - set(tested) - {"OUTPUT_DIR not writable", "work dir not writable"}
    assert not untested  # the writability rows are run in test_run_safety.py


def _never(**_):
    raise AssertionError("the workflow must not be built for bad input")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_row(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("tspo_bidsapp.workflows.base.init_tspo_wf", _never)
    change, code, words = CASES[name]
    bids = make_dataset(tmp_path / "bids")
    change(bids)
    before = snapshot(bids)
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", "--participant-label", "01"]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    assert not out.exists() and not (tmp_path / "work").exists()
    assert snapshot(bids) == before
