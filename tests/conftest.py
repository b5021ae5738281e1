"""Shared pytest configuration: the ``slow`` marker and paths to the shared reference data."""

from __future__ import annotations

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
