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
    for variable in ("PYTHONDONTWRITEBYTECODE=1", "HOME=/tmp", "NIPYPE_NO_ET=1",
                     "MPLCONFIGDIR=/tmp/matplotlib", "TSPO_BIDSAPP_MPL_CACHE=/opt/matplotlib"):  # fmt: skip
        assert variable in dockerfile, variable
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*")] == "*", "the build context must be an allow-list"


def _documented_run(text: str) -> str:
    """The ``docker run ... participant`` command written in a file (comment marks removed)."""
    lines = [line.lstrip("# ").rstrip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("docker run"))
    command = []
    for line in lines[start:]:
        command.append(line.rstrip("\\").strip())
        if not line.endswith("\\"):
            break
    return " ".join(command)


def test_documented_docker_run_is_what_the_container_test_runs():
    """The Dockerfile's command mounts only the output (no work folder, no -w) on a read-only
    root: the container test runs the participant level the same way and checks that the work
    folder fell back into /tmp, and refuses a read-only OUTPUT_DIR with exit 64."""
    documented = _documented_run((ROOT / "Dockerfile").read_text())
    assert "--read-only" in documented and "--tmpfs /tmp" in documented
    assert " -w " not in documented and ":/work" not in documented
    script = (ROOT / "scripts" / "container-test.sh").read_text()
    participant = script.split('"$IMAGE" /bids /out participant', 1)[0].rsplit("if !", 1)[1]
    assert "/work" not in participant and '-v "$D:/out"' in participant
    assert '"work_dir": "/tmp/tspo-bidsapp-work"' in script
    assert '-v "$D:/out:ro"' in script and "OUTPUT_DIR is not writable" in script


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
