"""Derivatives dataset files: dataset_description.json (concurrent runs), .bidsignore, dseg.tsv,
and the provenance fields of the datasink's sidecars."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

import nibabel as nib
import numpy as np

from tspo_bidsapp.cli.run import write_dataset_description
from tspo_bidsapp.config import Config
from tspo_bidsapp.interfaces.bids import (
    BIDSIGNORE_PATTERNS,
    DerivativesDataSink,
    bids_uri,
    write_bidsignore,
    write_dseg_tsv,
)

SRC = "/data/bids/sub-01/pet/sub-01_trc-PBR28_pet.nii.gz"


def _config(tmp_path: Path) -> Config:
    bids = tmp_path / "bids"
    if not bids.is_dir():
        bids.mkdir()
        (bids / "dataset_description.json").write_text('{"Name": "x", "DatasetDOI": "doi:10.1/x"}')
    return Config(bids, tmp_path / "out", "participant", tmp_path / "work")


def _write(args) -> str:
    root, i = args
    os.environ["TSPO_BIDSAPP_CONTAINER"] = "docker://tspo-bidsapp:0.1.0"
    return str(write_dataset_description(_config(Path(root))))


def test_dataset_description_concurrent_writers(tmp_path):
    _config(tmp_path)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        paths = pool.map(_write, [(str(tmp_path), i) for i in range(16)])
    target = tmp_path / "out" / "dataset_description.json"
    assert set(paths) == {str(target)}
    meta = json.loads(target.read_text())  # complete, parseable JSON
    assert meta["DatasetType"] == "derivative"
    assert meta["GeneratedBy"][0]["Container"] == {"Type": "docker",
                                                    "Tag": "docker://tspo-bidsapp:0.1.0"}  # fmt: skip
    assert meta["SourceDatasets"][0]["DOI"] == "doi:10.1/x"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temporaries


def test_dataset_description_repairs_invalid_file(tmp_path, monkeypatch):
    monkeypatch.delenv("TSPO_BIDSAPP_CONTAINER", raising=False)
    config = _config(tmp_path)
    config.output_dir.mkdir()
    (config.output_dir / "dataset_description.json").write_text('{"Name": "trunc')
    meta = json.loads(write_dataset_description(config).read_text())
    assert meta["DatasetType"] == "derivative" and "Container" not in meta["GeneratedBy"][0]


def test_bidsignore_keeps_user_lines_and_is_idempotent(tmp_path):
    (tmp_path / ".bidsignore").write_text("extra/\n*_tacs.tsv\n")
    write_bidsignore(tmp_path)
    write_bidsignore(tmp_path)
    lines = (tmp_path / ".bidsignore").read_text().splitlines()
    assert lines[:2] == ["extra/", "*_tacs.tsv"]
    assert sorted(lines) == sorted(set(lines)) and set(BIDSIGNORE_PATTERNS) <= set(lines)


def test_dseg_tsv_beside_segmentation(tmp_path):
    path = write_dseg_tsv(tmp_path / "sub-01_seg-tspoms_dseg.nii.gz", {0: "bg", 2: "b", 1: "a"})
    assert path.name == "sub-01_seg-tspoms_dseg.tsv"
    assert path.read_text() == "index\tname\n1\ta\n2\tb\n"


def test_bids_uris(tmp_path):
    assert bids_uri(tmp_path / "out/sub-01/anat/x.nii.gz", tmp_path / "out") == (
        "bids::sub-01/anat/x.nii.gz"
    )
    assert bids_uri("/d/bids/sub-01/ses-a/pet/y.nii.gz") == "bids:raw:sub-01/ses-a/pet/y.nii.gz"
    assert bids_uri("bids:raw:z") == "bids:raw:z"


def test_sink_provenance_fields(tmp_path):
    in_file = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)), in_file)
    out = tmp_path / "out"
    t1w = out / "sub-01/anat/sub-01_desc-preproc_T1w.nii.gz"
    result = DerivativesDataSink(
        base_directory=str(out), source_file=SRC, in_file=str(in_file), space="T1w",
        model="SRTM", meas="BPND", suffix="mimap", sources=[str(t1w)],
        spatial_reference="bids::sub-01/anat/sub-01_desc-preproc_T1w.nii.gz", provenance=True,
        meta_dict={"Units": "1"},
    ).run()  # fmt: skip
    meta = json.loads(Path(result.outputs.out_meta).read_text())
    assert meta["Sources"] == ["bids:raw:sub-01/pet/sub-01_trc-PBR28_pet.nii.gz",
                               "bids::sub-01/anat/sub-01_desc-preproc_T1w.nii.gz"]  # fmt: skip
    assert meta["SpatialReference"].endswith("desc-preproc_T1w.nii.gz")
    assert {"tspo-bidsapp", "nipype", "numpy"} <= set(meta["SoftwareVersions"])
