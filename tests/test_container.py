"""The container image is reproducible and runs a dataset as an unprivileged, offline user.

The image installs the project's dependencies under constraints.txt, so every dependency must
be pinned there (else the image would resolve whatever is newest on the day it is built).
The slow test runs scripts/container-test.sh against an image that already exists.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_every_dependency_is_pinned_in_constraints():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, f"constraints.txt: {line!r} is not an exact pin"
            pins[_name(line)] = line
    missing = [d for d in project["dependencies"] if _name(d) not in pins]
    assert not missing, f"dependencies without a pin in constraints.txt: {missing}"


def test_image_build_context_and_runtime_settings():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{BASE_IMAGE\}", dockerfile, re.M)
    assert "ARG BASE_IMAGE=debian:bookworm-slim" in dockerfile
    assert "pip install -c constraints.txt ." in dockerfile
    assert 'ENTRYPOINT ["tspo-bidsapp"]' in dockerfile
    for variable in ("PYTHONDONTWRITEBYTECODE=1", "HOME=/tmp", "NIPYPE_NO_ET=1"):
        assert variable in dockerfile, variable
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*")] == "*", "the build context must be an allow-list"


def _engine() -> str | None:
    for engine in ("podman", "docker"):
        if shutil.which(engine):
            ok = subprocess.run([engine, "image", "inspect", "tspo-bidsapp:0.1.0"],
                                capture_output=True).returncode == 0  # fmt: skip
            if ok:
                return engine
    return None


@pytest.mark.slow
def test_container_runs_a_dataset_read_only_as_uid_1000():
    engine = _engine()
    if engine is None:
        pytest.skip("no podman/docker with the tspo-bidsapp:0.1.0 image (build it first)")
    result = subprocess.run(
        [str(ROOT / "scripts" / "container-test.sh"), "--no-build", "--engine", engine,
         "--size", "test"],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "OK: 2 participant(s)" in result.stdout
