"""The same synthetic [11C]PBR28 PET written (a) decay-corrected to injection, (b) not decay-
corrected, (c) decay-corrected to the scan start with injection 120 s earlier, through the
command line: regional SRTM BPND and the brain median of the BPND map of (b) and (c) within
1 % of (a). Three participant-level runs (about 4 min each on 2 shared cores)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.slow
def test_decay_modes_give_the_same_bpnd_through_the_cli(tmp_path):
    from decay_time_axis import MODES, REGIONS, run_one

    res = {mode: run_one(tmp_path / mode, "PBR28", mode) for mode in MODES}
    a = res["injection"]
    brain = np.isfinite(a["map"]) & (a["map"] != 0)
    for mode in MODES[1:]:
        for region in REGIONS:
            assert res[mode]["regional"][region] == pytest.approx(
                a["regional"][region], rel=0.01
            ), (mode, region)
        ok = brain & np.isfinite(res[mode]["map"])
        assert np.median(res[mode]["map"][ok]) == pytest.approx(np.median(a["map"][ok]), rel=0.01)
