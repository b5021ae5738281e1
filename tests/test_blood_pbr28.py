"""Real [11C]PBR28 blood (kinfitr_pbr28, Matheson et al. 2017): raw recordings vs processed input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.blood.find import find_blood_recordings, find_input_function
from tspo_bidsapp.blood.process import check_coverage
from tspo_bidsapp.blood.recordings import read_blood_recording, read_input_function
from tspo_bidsapp.io.timing import FrameTiming


def _benchmark():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "blood_pbr28.py"
    spec = importlib.util.spec_from_file_location("blood_pbr28", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pbr28(shared_data):
    return shared_data / "kinfitr_pbr28"


def test_processed_input_equals_manual_samples_late(pbr28):
    """README: from ~6 min on the processed input is the manual whole blood (within 1.5 %)."""
    pet = pbr28 / "sub-cgyu" / "ses-1" / "pet"
    tacs = next(pet.glob("*_tacs.tsv"))
    manual = read_blood_recording(find_blood_recordings(tacs)["manual"], pet_units="kBq/mL")
    processed = read_input_function(find_input_function(tacs, pet), pet_units="kBq/mL")
    t, wb = manual.column("whole_blood_radioactivity")
    late = t > 10
    np.testing.assert_allclose(processed.blood_at(t[late]), wb[late], rtol=0.015)
    table = pd.read_csv(tacs, sep="\t")
    timing = FrameTiming.from_start_end_s(table["frame_start"], table["frame_end"])
    check_coverage(processed, timing.end_min, frame_start_min=timing.start_min)


def test_raw_recordings_give_the_processed_input_vt(pbr28):
    """All 8 scans: AIF area 0-90 min within 10 % of the processed input's, and the Logan-plasma
    V_T (kinfitr's delay, vB 0.05, last 10 frames) within 10 % in every region (measured:
    median +1.5 %, range -3.3 to +4.3 %)."""
    table = _benchmark().compare_all(pbr28)
    assert len(table) == 8
    assert np.all(np.abs(table["auc_0_90"] - 1) < 0.10)
    vt = table[[c for c in table.columns if c.startswith("VT_")]].to_numpy()
    assert vt.shape == (8, 6)
    assert np.all(np.abs(vt - 1) < 0.10)
    assert abs(np.median(vt) - 1) < 0.03
    assert set(table["pf_model"]) <= {"hill", "exp1", "exp2"}
