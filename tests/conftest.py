"""Shared pytest configuration: the ``slow`` marker and paths to the shared reference data."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

# nipype asks the network for its latest version when an interface is created; never do that.
os.environ.setdefault("NIPYPE_NO_ET", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("TSPO_RUNSLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or TSPO_RUNSLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


class SyntheticStudy:
    """The ``size="test"`` synthetic dataset (seed 42): BIDS tree, truth and anatomy export."""

    def __init__(self, root: Path):
        from tspo_bidsapp.synthetic import generate_dataset
        from tspo_bidsapp.synthetic.derivatives import write_anat_derivatives

        self.root = root
        self.bids = root / "bids"
        self.truth_dir = root / "truth"
        self.anat_derivatives = root / "anat_derivatives"
        self.subjects = generate_dataset(self.bids, self.truth_dir, size="test", seed=42)
        write_anat_derivatives(self.truth_dir, self.subjects, self.anat_derivatives)

    def truth(self, label: str):
        from tspo_bidsapp.synthetic import load_truth

        return load_truth(self.truth_dir, label)


@pytest.fixture(scope="session")
def synthetic_study(tmp_path_factory) -> SyntheticStudy:
    """One synthetic dataset shared by every test that needs one (generated once, ~30 s)."""
    return SyntheticStudy(tmp_path_factory.mktemp("synthetic_study"))


def snapshot_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` (to prove an input tree was not modified)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class PipelineRun:
    """Participant level of sub-01 (RRMS, lesions) on the synthetic study with the true anatomy
    supplied (--derivatives), GTM partial-volume correction and a given active-voxel threshold,
    then the group level."""

    PET_FWHM_MM = 4.5  # the simulated PET resolution
    # A user-given active-voxel threshold (the demo derives 1.20 from its controls' NAWM).
    ACTIVE_THRESHOLD_DVR = 1.2

    def __init__(self, study: SyntheticStudy, root: Path):
        from tspo_bidsapp.cli.run import main

        self.out, self.work = root / "derivatives", root / "work"
        self.before = snapshot_tree(study.bids)
        common = [str(study.bids), str(self.out), "-w", str(self.work)]
        self.code = main(
            [*common, "participant", "--participant-label", "01", "--nprocs", "2",
             "--derivatives", str(study.anat_derivatives),
             "--pvc", "gtm", "--pet-fwhm", str(self.PET_FWHM_MM),
             "--active-threshold", str(self.ACTIVE_THRESHOLD_DVR)]
        )  # fmt: skip
        self.group_code = main([*common, "group"])


@pytest.fixture(scope="session")
def pipeline_run(synthetic_study, tmp_path_factory) -> PipelineRun:
    """The whole participant + group level once per test session (about 2 minutes)."""
    return PipelineRun(synthetic_study, tmp_path_factory.mktemp("pipeline_run"))
