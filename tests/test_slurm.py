"""Running on a SLURM cluster gives the same derivatives as a local run.

Both ways are checked on a two-participant synthetic dataset against a local MultiProc run:
nipype's SLURM plugin through ``--use-plugin`` (every node a batch job), and
``scripts/slurm-array.sbatch`` (one array task per participant, then the group level).
Needs a running SLURM (e.g. ``source <(../shared/tools/slurm-setup.sh)``); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = [sys.executable, "-m", "tspo_bidsapp"]
# Supplied anatomy (the synthetic truth) instead of SAMSEG, no motion correction: minutes, not
# an hour; every other step runs as in production.
OPTIONS = ["--omp-nthreads", "1", "--hmc-off"]


def _slurm_ready() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        states = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states)


pytestmark = [
    pytest.mark.skipif(not _slurm_ready(), reason="no running SLURM cluster (sbatch/sinfo)"),
    pytest.mark.slow,
]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.setdefault("LOGNAME", os.environ.get("USER") or "root")  # nipype's SLURM plugin needs it
    return env


def _run(args: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=timeout)
    assert result.returncode == 0, (
        f"{shlex.join(args)}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    )
    return result


def compare_derivatives(a: Path, b: Path, *, rtol: float = 1e-6) -> int:
    """Assert two derivative trees hold the same participant files with the same numbers.

    Images are compared voxel by voxel, tables column by column, JSON sidecars and transforms
    as values; figures (PNG/SVG renderings of the same numbers) must exist in both.
    """

    def files(root: Path) -> set[Path]:
        return {
            p.relative_to(root)
            for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0].startswith("sub-")
        }

    names = files(a)
    assert names and names == files(b)
    for rel in sorted(names):
        fa, fb = a / rel, b / rel
        if rel.name.endswith(".tsv"):
            ta, tb = pd.read_csv(fa, sep="\t"), pd.read_csv(fb, sep="\t")
            assert list(ta.columns) == list(tb.columns), rel
            for column in ta.columns:
                if pd.api.types.is_numeric_dtype(ta[column]):
                    np.testing.assert_allclose(ta[column], tb[column], rtol=rtol, err_msg=str(rel))
                else:
                    assert ta[column].equals(tb[column]), rel
        elif rel.name.endswith((".nii", ".nii.gz")):
            ia, ib = nib.load(fa), nib.load(fb)
            np.testing.assert_allclose(ia.affine, ib.affine, rtol=rtol, err_msg=str(rel))
            np.testing.assert_allclose(
                np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj), rtol=rtol, err_msg=str(rel)
            )
        elif rel.suffix == ".json":
            assert json.loads(fa.read_text()) == json.loads(fb.read_text()), rel
        elif rel.suffix == ".txt":
            np.testing.assert_allclose(_numbers(fa), _numbers(fb), rtol=rtol, err_msg=str(rel))
    return len(names)


def _numbers(path: Path) -> np.ndarray:
    return np.array(
        [float(x) for x in re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", path.read_text())]
    )


@pytest.fixture(scope="module")
def study(synthetic_study, tmp_path_factory) -> dict[str, Path]:
    """The shared two-participant dataset and its derivatives from a local MultiProc run."""
    base = tmp_path_factory.mktemp("slurm")
    bids = synthetic_study.bids
    _run([*APP, str(bids), str(base / "local"), "participant", "-w", str(base / "work-local"),
          "--nprocs", "2", *OPTIONS, "--derivatives", str(synthetic_study.anat_derivatives)])  # fmt: skip
    _run([*APP, str(bids), str(base / "local"), "group", "-w", str(base / "work-local")])
    return {"base": base, "bids": bids, "local": base / "local",
            "anat": synthetic_study.anat_derivatives}  # fmt: skip


def test_nipype_slurm_plugin_matches_local_run(study):
    base = study["base"]
    plugin = base / "slurm-plugin.yml"
    plugin.write_text(
        "plugin: SLURM\n"
        "plugin_args:\n"
        "  sbatch_args: '--cpus-per-task=1 --mem=3G --time=00:30:00'\n"
        "  poll_sleep_duration: 1\n"
        "  max_jobs: 8\n"
    )
    out, work = base / "slurm-plugin", base / "work-slurm-plugin"
    _run([*APP, str(study["bids"]), str(out), "participant", "-w", str(work), *OPTIONS,
          "--derivatives", str(study["anat"]), "--use-plugin", str(plugin)])  # fmt: skip
    # The nodes really went through the scheduler: one batch script per submitted node.
    scripts = list(work.rglob("batchscript_*.sh"))
    assert len(scripts) >= 2, "no SLURM batch scripts: the plugin did not submit jobs"
    assert compare_derivatives(study["local"], out) >= 20


def test_sbatch_array_one_task_per_participant_matches_local_run(study):
    base = study["base"]
    out, work = base / "slurm-array", base / "work-array"
    env_cmd = {"TSPO_BIDSAPP_CMD": shlex.join(APP), "TSPO_WORK": str(work)}
    os.environ.update(env_cmd)
    try:
        sbatch = ["sbatch", "--wait", "--cpus-per-task=1", "--mem=3G", "--time=00:30:00"]
        _run([*sbatch, "--array=1-2", f"--output={base}/array_%A_%a.log",
              str(ROOT / "scripts" / "slurm-array.sbatch"), str(study["bids"]), str(out),
              *OPTIONS, "--derivatives", str(study["anat"])])  # fmt: skip
        _run([*sbatch, f"--output={base}/group_%j.log",
              str(ROOT / "scripts" / "slurm-array.sbatch"), str(study["bids"]), str(out)])  # fmt: skip
    finally:
        for key in env_cmd:
            os.environ.pop(key, None)
    # One work folder per participant, one log per array task.
    assert sorted(p.name for p in work.iterdir() if p.name.startswith("sub-")) == [
        "sub-01",
        "sub-02",
    ]
    assert len(list(base.glob("array_*_*.log"))) == 2
    assert compare_derivatives(study["local"], out) >= 20
    local_group = pd.read_csv(study["local"] / "group" / "participants.tsv", sep="\t")
    array_group = pd.read_csv(out / "group" / "participants.tsv", sep="\t")
    pd.testing.assert_frame_equal(local_group, array_group)
