"""Console progress of a participant-level run, from nipype's node events.

:class:`Progress` is a nipype ``status_callback``: it prints one line when a stage of a
participant starts and one when its last step ends (with the elapsed time), a line per
finished long step, and a heartbeat every :attr:`Progress.heartbeat_s` seconds for steps that
are still running (SAMSEG takes 10-15 min per participant). Lines go to the
``tspo_bidsapp.progress`` logger, shown at the default verbosity.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter

LOGGER = logging.getLogger("tspo_bidsapp.progress")
#: Workflow names (innermost first match) -> stage shown on the console.
STAGES: tuple[tuple[str, str], ...] = (
    ("anat_wf", "anatomy"),
    ("pet_hmc_wf", "motion correction"),
    ("pet_coreg_wf", "co-registration"),
    ("pet_quant_wf", "quantification"),
    ("pet_preproc_derivatives_wf", "outputs"),
)
_SUBJECT = re.compile(r"(?:^|\.)sub_([a-zA-Z0-9]+)_wf(?:\.|$)")
_RUN = re.compile(r"(?:^|\.)pet_([a-zA-Z0-9_-]+?)_wf(?:\.|$)")
LONG_STEP_S = 30.0  # steps longer than this get their own "finished" line


def describe(fullname: str) -> tuple[str, str]:
    """(participant label ``sub-X`` or ``""``, stage) of a node's full dotted name."""
    match = _SUBJECT.search(fullname)
    subject = f"sub-{match.group(1)}" if match else ""
    parts = fullname.split(".")
    for workflow, stage in STAGES:
        if workflow in parts:
            return subject, stage
    run = _RUN.search(fullname)
    return subject, "PET run set-up" if run else "regions"


def _label(subject: str, stage: str) -> str:
    return f"{subject}: {stage}" if subject else stage


class Progress:
    """nipype ``status_callback`` printing stage start/end lines and heartbeats."""

    def __init__(self, node_names=(), *, heartbeat_s: float = 120.0, clock=time.monotonic):
        keys = [describe(n) for n in node_names]
        self.total = Counter(keys) + Counter((s, "") for s, _ in keys if s)
        self.done: Counter = Counter()
        self.stage_start: dict[tuple[str, str], float] = {}
        self.running: dict[str, float] = {}
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __deepcopy__(self, memo) -> Progress:
        return self  # one shared callback: nipype deep-copies what it submits

    def __getstate__(self) -> dict:
        # nipype hands the plugin arguments to MapNodes, which are pickled to the workers;
        # a worker's copy reports nothing (the callbacks run in the main process)
        return {"heartbeat_s": self.heartbeat_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(heartbeat_s=state["heartbeat_s"])

    @classmethod
    def for_workflow(cls, workflow, **kw) -> Progress:
        """Count the steps of every stage from the workflow's flattened graph (identity nodes,
        which nipype removes before running, are not counted)."""
        from nipype.interfaces.utility import IdentityInterface

        try:
            nodes = workflow._create_flat_graph().nodes()
            names = [n.fullname for n in nodes if not isinstance(n.interface, IdentityInterface)]
        except Exception:  # counting is a nicety: without it, stage ends are not announced
            names = []
        return cls(names, **kw)

    def __call__(self, node, status: str) -> None:
        name = getattr(node, "fullname", str(node))
        if "." not in name:  # a MapNode's sub-node (``_name0``): its MapNode is reported
            return
        key = describe(name)
        now = self.clock()
        with self._lock:
            for k in ((key[0], ""), key) if key[0] else (key,):
                if k not in self.stage_start:  # run_without_submitting nodes only "end"
                    self.stage_start[k] = now
                    LOGGER.info("%s started", _label(*k) if k[1] else k[0])
            if status == "start":
                self.running[name] = now
                return
            started = self.running.pop(name, now)
            self.done[key] += 1
            if key[0]:
                self.done[(key[0], "")] += 1
            if status == "exception":
                LOGGER.error("%s: step %s failed after %s", _label(*key), node.name,
                             _elapsed(now - started))  # fmt: skip
            elif now - started >= LONG_STEP_S:
                LOGGER.info("%s: step %s finished in %s", _label(*key), node.name,
                            _elapsed(now - started))  # fmt: skip
            for k in (key, (key[0], "")) if key[0] else (key,):
                if self.total and self.done[k] == self.total[k]:
                    LOGGER.info("%s finished in %s", _label(*k) if k[1] else k[0],
                                _elapsed(now - self.stage_start.get(k, now)))  # fmt: skip

    def heartbeat(self) -> None:
        """One line per step that has been running longer than :attr:`heartbeat_s`."""
        now = self.clock()
        with self._lock:
            for name, started in self.running.items():
                if now - started >= self.heartbeat_s:
                    LOGGER.info("%s: %s still running (%s)", _label(*describe(name)),
                                name.rsplit(".", 1)[-1], _elapsed(now - started))  # fmt: skip

    def __enter__(self) -> Progress:
        def beat():
            while not self._stop.wait(self.heartbeat_s):
                self.heartbeat()

        self._thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)


def _elapsed(seconds: float) -> str:
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes} min {sec:02d} s"
