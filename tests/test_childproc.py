"""An external program run by a step ends with the step's process on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

PARENT = textwrap.dedent(
    """
    import os, signal, subprocess, sys
    from pathlib import Path
    from tspo_bidsapp.childproc import run_child

    marker = Path(sys.argv[1])
    if sys.argv[2] == "chained":
        def before(signum, frame):
            marker.with_suffix(".handler").write_text("called")
            sys.exit(3)
        signal.signal(signal.SIGTERM, before)
    child = ["sh", "-c", f"echo $$ > {marker}; exec sleep 60"]
    run_child(child, stdout=subprocess.DEVNULL)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): read its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _start(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, Path]:
    marker = tmp_path / "child.pid"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", PARENT, str(marker), mode], env=env)
    for _ in range(200):
        if marker.exists() and marker.read_text().strip():
            return proc, marker
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the child program did not start")


@pytest.mark.parametrize("mode", ["default", "chained"])
def test_sigterm_stops_the_child_program(tmp_path, mode):
    proc, marker = _start(tmp_path, mode)
    child = int(marker.read_text())
    assert _alive(child)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    time.sleep(0.2)
    assert not _alive(child), "the child program outlived its parent"
    if mode == "default":  # the parent ends as SIGTERM asks
        assert code == -signal.SIGTERM
    else:  # the handler installed before (the run's own) still runs afterwards
        assert code == 3
        assert marker.with_suffix(".handler").read_text() == "called"


def test_exit_code_of_the_child_is_returned():
    from tspo_bidsapp.childproc import run_child

    assert run_child(["sh", "-c", "exit 7"]) == 7
    assert run_child(["true"]) == 0
