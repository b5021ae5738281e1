"""The official BIDS validator on a participant-level output of the synthetic test dataset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

import pytest
from test_reports_data import synthetic_dataset

deno_module = pytest.importorskip("deno", reason="bids-validator-deno is not installed")
validator = pytest.importorskip("bids_validator_deno", reason="bids-validator-deno not installed")


def run_validator(dataset: Path) -> dict:
    """Run the bundled validator with network access denied; return its JSON report."""
    bundle = Path(validator.__file__).with_name("bids-validator.js")
    argv = [os.fsdecode(deno_module.find_deno_bin()), "run", "--allow-read", "--allow-env",
            "--allow-write", "--allow-run=git", "--deny-net", str(bundle), str(dataset),
            "--format", "json"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert proc.stdout.strip(), proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def participant_output(pipeline_run) -> Path:
    """The real participant + group output of the shared pipeline run (conftest.py)."""
    assert pipeline_run.code == 0
    return pipeline_run.out


def issues(report: dict, severity: str) -> list[tuple[str, str]]:
    return [(i["code"], i.get("location", "")) for i in report["issues"]["issues"]
            if i["severity"] == severity]  # fmt: skip


def test_participant_output_validates(participant_output):
    report = run_validator(participant_output)
    assert issues(report, "error") == []
    # the validator did look at the tree: the derivative and report files exist
    assert (participant_output / "sub-01.html").exists()
    assert list((participant_output / "sub-01" / "pet").glob("*_tacs.tsv"))


def test_validator_catches_what_bidsignore_hides(participant_output, tmp_path):
    """Without .bidsignore the PET derivative suffixes are errors: the test can fail."""
    copy = tmp_path / "copy"
    shutil.copytree(participant_output, copy)
    (copy / ".bidsignore").unlink()
    located = {loc for _, loc in issues(run_validator(copy), "error")}
    assert "/sub-01.html" in located
    assert any(loc.endswith("_desc-imagemean_tacs.tsv") for loc in located)


def test_documented_derivative_names_validate(synthetic_study, tmp_path):
    """Every documented derivative name (written here from the truth) passes with .bidsignore."""
    from test_reports_data import write_truth_derivatives

    from tspo_bidsapp.cli.run import write_dataset_description
    from tspo_bidsapp.config import Config
    from tspo_bidsapp.interfaces.bids import write_bidsignore

    bids, truth = synthetic_dataset(synthetic_study)
    out = tmp_path / "derivatives"
    write_truth_derivatives(bids, truth, out)
    write_dataset_description(Config(bids, out, "participant", tmp_path / "work"))
    write_bidsignore(out)
    report = run_validator(out)
    assert issues(report, "error") == []
    assert (out / "sub-01" / "anat" / "sub-01_seg-tspoms_dseg.tsv").exists()
