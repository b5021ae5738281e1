"""The Brainlife wrapper (brainlife/main): stage single files as BIDS, run, map the outputs.

A one-participant synthetic dataset is handed to ``main`` the way Brainlife does (separate
files plus participant metadata in config.json); the staged dataset must point at those files,
the run must succeed, and the mapped tables must be the derivatives' own files, whose frame
means equal the means computed here from the input PET.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "brainlife" / "main"


def _run_main(task: Path, config: dict) -> subprocess.CompletedProcess:
    (task / "config.json").write_text(json.dumps(config))
    env = dict(os.environ, TSPO_BIDSAPP_CMD=shlex.join([sys.executable, "-m", "tspo_bidsapp"]))
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(MAIN)], cwd=task, env=env, capture_output=True, text=True, timeout=600
    )


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_sample_config_names_every_documented_key():
    sample = json.loads((ROOT / "brainlife" / "config.json.sample").read_text())
    assert {"t1", "flair", "pet", "pet_json", "participant", "group", "tspo_genotype"} <= set(
        sample
    )


def test_single_files_are_staged_run_and_mapped(synthetic_study, tmp_path):
    dataset = synthetic_study.bids
    anat, pet_dir = dataset / "sub-01" / "anat", dataset / "sub-01" / "pet"
    pet = next(pet_dir.glob("*_pet.nii.gz"))
    config = {
        "t1": str(anat / "sub-01_T1w.nii.gz"),
        "flair": str(anat / "sub-01_FLAIR.nii.gz"),
        "pet": str(pet),
        "pet_json": str(pet.with_name(pet.name.replace(".nii.gz", ".json"))),
        "tracer": "PBR28",
        "group": "RRMS",
        "tspo_genotype": "HAB",
        "edss": 2.5,
        "nprocs": 1,
        "omp_nthreads": 1,
        "run_group": True,
        # The true anatomy stands in for SAMSEG; no motion correction: about a minute.
        "derivatives": str(synthetic_study.anat_derivatives),
        "app_options": "--hmc-off --stop-on-first-crash",
        "_inputs": [{"id": "t1", "meta": {"subject": "01"}}],
    }
    result = _run_main(tmp_path, config)
    assert result.returncode == 0, result.stderr[-3000:]

    # Staged BIDS: the subject label comes from Brainlife's metadata, files link to the inputs.
    staged = tmp_path / "bids" / "sub-01"
    assert (staged / "anat" / "sub-01_T1w.nii.gz").resolve() == Path(config["t1"]).resolve()
    assert (staged / "pet" / "sub-01_trc-PBR28_pet.nii.gz").resolve() == pet.resolve()
    participants = _read_tsv(tmp_path / "bids" / "participants.tsv")
    assert participants == [
        {"participant_id": "sub-01", "group": "RRMS", "age": "n/a", "sex": "n/a",
         "edss": "2.5", "tspo_genotype": "HAB"}
    ]  # fmt: skip

    # Outputs: the derivatives dataset, flat tables, and product.json listing them.
    output = tmp_path / "output"
    settings = [json.loads(p.read_text()) for p in (output / "logs").glob("config-*.json")]
    participant_run = [c for c in settings if c["analysis_level"] == "participant"]
    assert len(participant_run) == 1 and participant_run[0]["participant_label"] == ["01"]
    assert participant_run[0]["stop_on_first_crash"] is True  # app_options reached the app
    assert participant_run[0]["hmc"] is False
    assert json.loads((output / "dataset_description.json").read_text())["DatasetType"] == (
        "derivative"
    )
    product = json.loads((tmp_path / "product.json").read_text())
    assert product["brainlife"][0]["type"] == "success"
    tables = sorted((tmp_path / "tacs").glob("*_tacs.tsv"))
    assert tables and [t.name for t in tables] == sorted(
        n for n in product["outputs"]["tacs"] if n.endswith(".tsv")
    )
    images = sorted(p.name for p in (output / "sub-01").rglob("*.nii.gz"))
    assert images and sorted(p.name for p in (tmp_path / "maps").iterdir()) == images
    reports = sorted(p.name for p in output.glob("sub-01*.html"))
    assert sorted(p.name for p in (tmp_path / "html").iterdir()) == reports
    for table in tables:
        originals = list((output / "sub-01").rglob(table.name))
        assert len(originals) == 1 and originals[0].read_bytes() == table.read_bytes()

    # The image-wide frame means reach the mapped table unchanged (closed form: np.mean).
    mean_table = tmp_path / "tacs" / "sub-01_trc-PBR28_desc-imagemean_tacs.tsv"
    rows = _read_tsv(mean_table)
    frames = np.asarray(nib.load(pet).dataobj, dtype=np.float64)
    expected = frames.reshape(-1, frames.shape[-1]).mean(axis=0)
    got = np.array([float(r["image_mean"]) for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())

    # Group level ran on this participant and kept its group from config.json.
    group_rows = _read_tsv(output / "group" / "participants.tsv")
    assert [(r["participant_id"], r["group"]) for r in group_rows] == [("sub-01", "RRMS")]


def test_bids_input_and_bad_config(tmp_path):
    missing = _run_main(
        tmp_path, {"t1": str(tmp_path / "nope.nii.gz"), "pet": "x", "pet_json": "y"}
    )
    assert missing.returncode == 64
    assert "field 't1'" in missing.stderr and "nope.nii.gz" in missing.stderr
    product = json.loads((tmp_path / "product.json").read_text())
    assert product["brainlife"][0]["type"] == "error"

    not_bids = _run_main(tmp_path, {"bids": str(tmp_path)})
    assert not_bids.returncode == 64 and "not a BIDS dataset" in not_bids.stderr
