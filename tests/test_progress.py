"""Console progress lines from nipype node events (stage start/end, elapsed, heartbeat)."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("NIPYPE_NO_ET", "1")

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from tspo_bidsapp.cli.progress import Progress, describe

WF = "tspo_bidsapp_wf"


class FakeNode:
    def __init__(self, fullname):
        self.fullname, self.name = fullname, fullname.rsplit(".", 1)[-1]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_describe_names_participant_and_stage():
    assert describe(f"{WF}.sub_01_wf.anat_wf.samseg") == ("sub-01", "anatomy")
    assert describe(f"{WF}.sub_A2_wf.pet_trc-PBR28_wf.pet_hmc_wf.hmc") == (
        "sub-A2", "motion correction")  # fmt: skip
    assert describe(f"{WF}.sub_01_wf.pet_trc-PBR28_wf.summarize") == ("sub-01", "PET run set-up")


def test_stage_lines_with_elapsed_time_and_heartbeat(caplog):
    names = [f"{WF}.sub_01_wf.anat_wf.samseg", f"{WF}.sub_01_wf.anat_wf.ds_t1w",
             f"{WF}.sub_01_wf.pet_x_wf.pet_hmc_wf.hmc"]  # fmt: skip
    clock = Clock()
    progress = Progress(names, heartbeat_s=120.0, clock=clock)
    samseg, ds, hmc = (FakeNode(n) for n in names)
    with caplog.at_level(logging.INFO, logger="tspo_bidsapp.progress"):
        progress(samseg, "start")
        clock.now = 130.0
        progress.heartbeat()
        clock.now = 600.0
        progress(samseg, "end")
        progress(ds, "start")
        clock.now = 601.0
        progress(ds, "end")
        progress(hmc, "start")
        clock.now = 661.5
        progress(hmc, "end")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "sub-01 started",
        "sub-01: anatomy started",
        "sub-01: anatomy: samseg still running (2 min 10 s)",
        "sub-01: anatomy: step samseg finished in 10 min 00 s",
        "sub-01: anatomy finished in 10 min 01 s",
        "sub-01: motion correction started",
        "sub-01: motion correction: step hmc finished in 1 min 00 s",
        "sub-01: motion correction finished in 1 min 00 s",
        "sub-01 finished in 11 min 02 s",
    ]


def add_one(x):
    return x + 1


def test_nipype_reports_every_node(tmp_path, caplog):
    outer, sub, anat = pe.Workflow(WF, base_dir=str(tmp_path)), pe.Workflow("sub_07_wf"), \
        pe.Workflow("anat_wf")  # fmt: skip
    a = pe.Node(niu.Function(function=add_one, input_names=["x"], output_names=["y"]), "a")
    b = a.clone("b")
    a.inputs.x = 1
    anat.connect(a, "y", b, "x")
    sub.add_nodes([anat])
    outer.add_nodes([sub])
    progress = Progress.for_workflow(outer)
    with caplog.at_level(logging.INFO, logger="tspo_bidsapp.progress"), progress:
        outer.run(plugin="Linear", plugin_args={"status_callback": progress})
    lines = [r.getMessage() for r in caplog.records if r.name == "tspo_bidsapp.progress"]
    assert lines[:2] == ["sub-07 started", "sub-07: anatomy started"]
    assert lines[2].startswith("sub-07: anatomy finished in ")
    assert lines[3].startswith("sub-07 finished in ")


def test_map_node_and_unsubmitted_nodes_are_counted_once(tmp_path, caplog):
    """MapNode sub-nodes are not counted; nodes run without submitting only send 'end'."""
    top = pe.Workflow(WF, base_dir=str(tmp_path))
    sub, quant = pe.Workflow("sub_03_wf"), pe.Workflow("pet_quant_wf")
    a = pe.MapNode(niu.Function(function=add_one, input_names=["x"], output_names=["y"]),
                   name="a", iterfield=["x"])  # fmt: skip
    b = pe.Node(niu.Function(function=add_one, input_names=["x"], output_names=["y"]), "b",
                run_without_submitting=True)  # fmt: skip
    b.inputs.x = 0
    inputnode = pe.Node(niu.IdentityInterface(fields=["x"]), "inputnode")  # removed by nipype
    inputnode.inputs.x = [1, 2, 3]
    quant.connect(inputnode, "x", a, "x")
    quant.add_nodes([b])
    sub.add_nodes([quant])
    top.add_nodes([sub])
    progress = Progress.for_workflow(top)
    with caplog.at_level(logging.INFO, logger="tspo_bidsapp.progress"):
        top.run(plugin="MultiProc", plugin_args={"n_procs": 1, "status_callback": progress})
    lines = [r.getMessage() for r in caplog.records if r.name == "tspo_bidsapp.progress"]
    assert lines[:2] == ["sub-03 started", "sub-03: quantification started"]
    assert sum(ln.startswith("sub-03: quantification finished in") for ln in lines) == 1
    assert lines[-1].startswith("sub-03 finished in ")
    assert not any("set-up" in ln for ln in lines)
