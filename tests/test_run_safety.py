"""A run never hangs, never ends in a traceback and never writes outside its folders.

A dead worker process ends the run (exit 1) instead of leaving it waiting; SIGTERM leaves a
log line; an unwritable OUTPUT_DIR or work folder is refused (exit 64) before anything is
written; the default work folder falls back to the temporary folder where the output's
parent is read-only; atomic writes never follow a planted symlink and follow the umask.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_input_data import make_dataset

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534

# Runs the command line with the workflow replaced by one node (in a worker process).
FAKE_RUN = """
import sys
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe
import tspo_bidsapp.workflows.base as base

def step(action):
    import os, signal, time
    if action == "die":
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
    time.sleep(float(action))
    return action

def one_node(*, config, subjects):
    workflow = pe.Workflow(name="wf", base_dir=str(config.work_dir))
    node = pe.Node(niu.Function(function=step, input_names=["action"], output_names=["out"]),
                   name="fitting_step")
    node.inputs.action = sys.argv[1]
    workflow.add_nodes([node])
    return workflow

base.init_tspo_wf = one_node
from tspo_bidsapp.cli.run import main
sys.exit(main(sys.argv[2:]))
"""


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", NIPYPE_NO_ET="1")
    return env | extra


def _fake_run(action: str, bids: Path, out: Path, **kwargs) -> subprocess.Popen:
    argv = [str(bids), str(out), "participant", "--participant-label", "01", "--nprocs", "2",
            "--omp-nthreads", "1"]  # fmt: skip
    script = out.parent / "fake_run.py"  # nipype wants a function's source in a file
    script.write_text(FAKE_RUN)
    return subprocess.Popen(
        [sys.executable, str(script), action, *argv],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a hanging run can be killed with all its workers
        **kwargs,
    )


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the run still hangs after {timeout} s")
    return proc.returncode, err


def test_a_dead_worker_ends_the_run(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    start = time.monotonic()
    code, err = _finish(_fake_run("die", bids, tmp_path / "out"), timeout=90)
    assert code == 1, err
    assert "a worker process died" in err and "running at the time: wf.fitting_step" in err
    assert "memory" in err
    assert time.monotonic() - start < 60


def test_sigterm_is_logged(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    proc = _fake_run("60", bids, tmp_path / "out")
    deadline = time.monotonic() + 60
    while not list((tmp_path / "work").rglob("_node.pklz")) and time.monotonic() < deadline:
        time.sleep(0.2)  # until the node runs in its worker
    os.kill(proc.pid, signal.SIGTERM)
    code, err = _finish(proc, timeout=30)  # the worker is stopped too (it holds stderr open)
    assert code == -signal.SIGTERM
    assert err.count("received SIGTERM") == 1, err


# --- folders that cannot be written ---------------------------------------------------------


@pytest.fixture
def shared_tmp():
    """A folder every user can read (the runs below may go as an unprivileged user)."""
    folder = Path(tempfile.mkdtemp(prefix="tspo-safety-"))
    folder.chmod(0o755)
    yield folder
    for sub in folder.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _unprivileged(argv: list[str], **env) -> subprocess.CompletedProcess:
    """Run as a user without write access where permissions deny it (root writes anywhere)."""
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop privileges")
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
    return subprocess.run(argv, env=_env(HOME="/nonexistent", **env), capture_output=True,
                          text=True, timeout=120, cwd="/")  # fmt: skip


def _folders(root: Path) -> tuple[Path, Path, Path]:
    bids = make_dataset(root / "bids")
    locked = root / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    free = root / "free"
    free.mkdir()
    free.chmod(0o777)
    return bids, locked, free


@pytest.mark.parametrize("which", ["OUTPUT_DIR", "work dir"])
def test_unwritable_folder_is_refused_before_anything_is_written(shared_tmp, which):
    bids, locked, free = _folders(shared_tmp)
    out, work = (locked / "out", free / "work") if which == "OUTPUT_DIR" else (
        free / "out", locked / "work")  # fmt: skip
    app = [sys.executable, "-m", "tspo_bidsapp", str(bids), str(out), "participant"]
    result = _unprivileged([*app, "-w", str(work)])
    assert result.returncode == 64, result.stderr
    assert f"the {which} is not writable" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(free.iterdir()) == [] and list(locked.iterdir()) == []


def test_default_work_dir_goes_to_tmp_when_beside_is_read_only(shared_tmp):
    """As in the documented ``docker run``: only OUTPUT_DIR is writable, its parent is not."""
    bids, locked, free = _folders(shared_tmp)
    (locked / "out").parent.chmod(0o755)
    (locked / "out").mkdir()
    (locked / "out").chmod(0o777)
    locked.chmod(0o555)
    code = (
        "import sys; from tspo_bidsapp.cli.parser import parse_args; "
        "print(parse_args(sys.argv[1:]).work_dir)"
    )
    result = _unprivileged(
        [sys.executable, "-c", code, str(bids), str(locked / "out"), "participant"],
        TMPDIR=str(free),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(free / "tspo-bidsapp-work")
    # Where the parent is writable, the work folder stays beside OUTPUT_DIR.
    from tspo_bidsapp.config import default_work_dir

    assert default_work_dir(free / "out") == free / "work"


# --- atomic writes ----------------------------------------------------------------------------


def test_transform_copy_does_not_follow_a_planted_symlink(tmp_path):
    from tspo_bidsapp.workflows.pet.outputs import copy_beside

    anchor = tmp_path / "out" / "sub-01_desc-hmc_petref.nii.gz"
    anchor.parent.mkdir()
    anchor.write_bytes(b"")
    victim = tmp_path / "outside.txt"
    victim.write_text("keep me\n")
    target = anchor.with_name("sub-01_from-petref_to-T1w_mode-image_xfm.txt")
    target.with_name(target.name + ".tmp").symlink_to(victim)  # the old fixed temporary name
    xfm = tmp_path / "x.txt"
    xfm.write_text("#Insight Transform File V1.0\n")
    out = copy_beside(
        str(anchor), str(xfm), "_desc-hmc_petref.nii.gz", "_from-petref_to-T1w_mode-image_xfm.txt"
    )
    assert victim.read_text() == "keep me\n"
    assert Path(out).read_text() == xfm.read_text() and not Path(out).is_symlink()


def test_dataset_description_does_not_follow_a_planted_symlink(tmp_path):
    from test_input_data import make_dataset as _make

    from tspo_bidsapp.cli.parser import parse_args
    from tspo_bidsapp.cli.run import write_dataset_description

    config = parse_args([str(_make(tmp_path / "bids")), str(tmp_path / "out"), "participant"])
    config.output_dir.mkdir()
    victim = tmp_path / "outside.json"
    victim.write_text("{}")
    planted = config.output_dir / f".dataset_description.json.{os.getpid()}.tmp"
    planted.symlink_to(victim)  # the old predictable temporary name
    write_dataset_description(config)
    assert victim.read_text() == "{}"
    assert (
        '"DatasetType": "derivative"'
        in (config.output_dir / "dataset_description.json").read_text()
    )


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, umask):
    from tspo_bidsapp.config import write_text_atomic
    from tspo_bidsapp.interfaces.bids import DerivativesDataSink
    from tspo_bidsapp.workflows.pet.outputs import copy_beside

    source = tmp_path / "x.tsv"
    source.write_text("a\n1\n")
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "config.json", "{}\n")
        sink = DerivativesDataSink(
            base_directory=str(tmp_path / "out"),
            source_file="/d/sub-01/pet/sub-01_pet.nii.gz",
            in_file=str(source),
            desc="x",
            suffix="tacs",
        ).run()
        anchor = Path(sink.outputs.out_file)
        copied = copy_beside(str(anchor), str(source), "_desc-x_tacs.tsv", "_xfm.txt")
        plain = tmp_path / "plain.txt"
        plain.write_text("")  # what any other output gets
    finally:
        os.umask(old)
    files = [tmp_path / "config.json", anchor, Path(sink.outputs.out_meta), Path(copied), plain]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o666 & ~umask)}
