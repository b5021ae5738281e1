"""A participant run killed half-way resumes from its work folder.

The run is killed (SIGKILL to its whole process group, as a scheduler does at a time limit)
once a few processing nodes have stored their results; it is then started again with the
same work folder. Nodes that had finished must not run again (their result files are
untouched) and the derivatives must equal those of an uninterrupted run. Then OUTPUT_DIR is
deleted, or a new one given, with the same work folder: every derivative is written again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # three participant-level runs: about 2-3 min on 2 cores

APP = [sys.executable, "-m", "tspo_bidsapp"]
# One node at a time (a clean cut), one participant, supplied anatomy instead of SAMSEG.
OPTIONS = ["--nprocs", "1", "--omp-nthreads", "1", "--hmc-off", "--participant-label", "01"]
KILL_AFTER_NODES = 4


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def _results(work: Path) -> dict[Path, tuple[int, int]]:
    """Every processing node's stored result file: (mtime in ns, inode).

    Output nodes (``ds_*``) are left out: a datasink always runs again, copying results that
    already exist into OUTPUT_DIR, which is cheap and keeps the outputs complete.
    """
    return {
        p: (p.stat().st_mtime_ns, p.stat().st_ino)
        for p in work.rglob("result_*.pklz")
        if not any(part.startswith(("ds_", "_ds_")) for part in p.relative_to(work).parts)
    }


def _participant_files(root: Path) -> dict[Path, Path]:
    return {
        p.relative_to(root): p
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0].startswith("sub-")
    }


def test_killed_run_resumes_without_redoing_finished_nodes(synthetic_study, tmp_path):
    bids = synthetic_study.bids
    options = [*OPTIONS, "--derivatives", str(synthetic_study.anat_derivatives)]
    reference = tmp_path / "reference"
    subprocess.run([*APP, str(bids), str(reference), "participant", "-w",
                    str(tmp_path / "work-reference"), *options], env=_env(), check=True)  # fmt: skip

    out, work = tmp_path / "out", tmp_path / "work"
    command = [*APP, str(bids), str(out), "participant", "-w", str(work), *options]
    proc = subprocess.Popen(command, env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 600
    try:
        while (
            len(_results(work)) < KILL_AFTER_NODES
            and proc.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be interrupted"
    time.sleep(0.2)
    finished = _results(work)
    assert finished, "no node had finished when the run was killed"

    result = subprocess.run(command + ["-v"], env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]

    after = _results(work)
    # Finished nodes were reused: same result files, same modification times.
    for path, stamp in finished.items():
        assert after.get(path) == stamp, f"{path.parent.name} ran again after the restart"
    # The rest ran now, and the restart completed every node the reference ran.
    reference_nodes = {
        p.relative_to(tmp_path / "work-reference") for p in _results(tmp_path / "work-reference")
    }
    assert {p.relative_to(work) for p in after} == reference_nodes
    assert len(after) > len(finished), "nothing was left to do after the kill"

    # Identical derivatives: images voxel for voxel, tables and sidecars value for value.
    ref_files, out_files = _participant_files(reference), _participant_files(out)
    assert ref_files and set(ref_files) == set(out_files)
    for rel, path in ref_files.items():
        other = out_files[rel]
        if rel.suffix == ".json":
            assert json.loads(path.read_text()) == json.loads(other.read_text()), rel
        elif rel.name.endswith(".tsv"):
            a, b = pd.read_csv(path, sep="\t"), pd.read_csv(other, sep="\t")
            pd.testing.assert_frame_equal(a, b, check_exact=True, obj=str(rel))  # NaN == NaN
        elif rel.name.endswith((".nii", ".nii.gz")):
            ia, ib = nib.load(path), nib.load(other)
            np.testing.assert_array_equal(ia.affine, ib.affine, err_msg=str(rel))
            np.testing.assert_array_equal(
                np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj), err_msg=str(rel)
            )
        elif rel.suffix == ".txt":
            assert path.read_text() == other.read_text(), rel

    # The work folder's cache never stands in for a missing derivative: with OUTPUT_DIR
    # deleted, or a new one, the same work folder gives every file again.
    shutil.rmtree(out)
    rerun = subprocess.run(command, env=_env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert set(_participant_files(out)) == set(ref_files)
    elsewhere = tmp_path / "elsewhere"
    command[command.index(str(out))] = str(elsewhere)
    rerun = subprocess.run(command, env=_env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert set(_participant_files(elsewhere)) == set(ref_files)
