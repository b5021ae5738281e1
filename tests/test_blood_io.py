"""Reading BIDS blood recordings and processed input functions; every bad input is exit 16."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tspo_bidsapp.blood.find import find_blood_recordings, find_input_function
from tspo_bidsapp.blood.inputfunction import InputFunction
from tspo_bidsapp.blood.process import check_coverage
from tspo_bidsapp.blood.recordings import read_blood_recording, read_input_function
from tspo_bidsapp.blood.units import BloodDataError, bq_per_ml, conversion_factor
from tspo_bidsapp.exitcodes import EX_INVALID_BIDS

MANUAL = "time\twhole_blood_radioactivity\tplasma_radioactivity\tmetabolite_parent_fraction\n"


def _write(tmp_path, name, text, sidecar):
    tsv = tmp_path / name
    tsv.write_text(text)
    if sidecar is not None:
        tsv.with_suffix(".json").write_text(json.dumps(sidecar))
    return tsv


def _manual(tmp_path, rows, units="kBq/mL", name="sub-01_recording-manual_blood.tsv", **extra):
    sidecar = {
        "time": {"Units": "s"},
        "whole_blood_radioactivity": {"Units": units},
        "plasma_radioactivity": {"Units": units},
        "metabolite_parent_fraction": {"Units": "unitless"},
        "DispersionCorrected": False,
        **extra,
    }
    return _write(tmp_path, name, MANUAL + "".join(rows), sidecar)


ROWS = ["30\t10\t11\t1.0\n", "90\tn/a\t9\t0.9\n", "600\t5\t6.5\t0.5\n"]


def test_units_are_converted_and_times_put_after_injection(tmp_path):
    """Bq/mL blood into a kBq/mL PET: values / 1000; time 30 s with injection at 20 s -> 1/6 min."""
    assert bq_per_ml("kBq/mL") == 1e3 and bq_per_ml("nCi/cc") == 37.0
    assert conversion_factor("Bq/mL", "kBq/mL", path=tmp_path, field="x") == pytest.approx(1e-3)
    rec = read_blood_recording(
        _manual(tmp_path, ROWS, units="Bq/mL"), pet_units="kBq/mL", injection_offset_s=20.0
    )
    assert rec.label == "manual" and not rec.continuous
    np.testing.assert_allclose(rec.time_min, [10 / 60, 70 / 60, 580 / 60])
    np.testing.assert_allclose(rec.columns["plasma_radioactivity"], [0.011, 0.009, 0.0065])
    t, wb = rec.column("whole_blood_radioactivity")  # the n/a sample is left out
    np.testing.assert_allclose(wb, [0.010, 0.005])
    assert rec.units == "kBq/mL"


def _raises(call, path, field):
    with pytest.raises(BloodDataError) as info:
        call()
    err = info.value
    assert err.exit_code == EX_INVALID_BIDS == 16
    assert err.path is not None and err.path.name == path.name
    assert err.field == field
    return err


def test_blood_without_time_column(tmp_path):
    tsv = _write(
        tmp_path, "sub-01_recording-manual_blood.tsv", "t\tplasma_radioactivity\n1\t2\n", {}
    )
    _raises(lambda: read_blood_recording(tsv), tsv, "time")


def test_non_increasing_time(tmp_path):
    tsv = _manual(tmp_path, ["30\t10\t11\t1\n", "30\t9\t9\t0.9\n", "20\t5\t6\t0.5\n"])
    err = _raises(lambda: read_blood_recording(tsv), tsv, "time")
    assert "data row 2" in err.message  # the first repeated time


def test_parent_fraction_outside_unit_interval(tmp_path):
    tsv = _manual(tmp_path, ["30\t10\t11\t1.0\n", "90\t9\t9\t1.2\n"])
    err = _raises(lambda: read_blood_recording(tsv), tsv, "metabolite_parent_fraction")
    assert "1.2" in err.message


def test_unit_mismatch_and_unknown_units(tmp_path):
    tsv = _manual(tmp_path, ROWS, units="counts")
    _raises(lambda: read_blood_recording(tsv, pet_units="kBq/mL"), tsv.with_suffix(".json"),
            "whole_blood_radioactivity")  # fmt: skip
    tsv = _manual(tmp_path, ROWS, units="kBq/mL")
    _raises(lambda: read_blood_recording(tsv, pet_units="SUV"), tsv.with_suffix(".json"),
            "whole_blood_radioactivity")  # fmt: skip


def test_non_numeric_value_and_missing_sidecar(tmp_path):
    tsv = _manual(tmp_path, ["30\t10\t11\t1.0\n", "90\tten\t9\t0.9\n"])
    _raises(lambda: read_blood_recording(tsv), tsv, "whole_blood_radioactivity")
    bare = _write(tmp_path, "sub-02_recording-manual_blood.tsv", MANUAL + "".join(ROWS), None)
    _raises(lambda: read_blood_recording(bare), bare.with_suffix(".json"), None)


def test_autosampler_metadata(tmp_path):
    tsv = _write(
        tmp_path,
        "sub-01_recording-autosampler_blood.tsv",
        "time\twhole_blood_radioactivity\n1\t0\n2\t5\n3\t9\n",
        {"DispersionCorrected": False, "DispersionConstant": 2.6, "WithdrawalRate": 5,
         "time": {"Units": "s"}, "whole_blood_radioactivity": {"Units": "kBq/mL"}},
    )  # fmt: skip
    rec = read_blood_recording(tsv)
    assert rec.continuous and rec.dispersion_corrected is False
    assert rec.dispersion_constant_s == 2.6 and rec.withdrawal_rate_ml_min == 5.0


def test_processed_input_function(tmp_path):
    """AIF in Bq/mL with a sidecar -> kBq/mL; without sidecar the PET's units are assumed."""
    text = "time\tAIF\twhole_blood_radioactivity\n0\t0\t0\n60\t2000\t1800\n120\t1000\t1100\n"
    units = {"Units": "Bq/mL"}
    tsv = _write(tmp_path, "sub-01_inputfunction.tsv", text, {"AIF": units,
                 "whole_blood_radioactivity": units, "time": {"Units": "s"}})  # fmt: skip
    inp = read_input_function(tsv, pet_units="kBq/mL")
    np.testing.assert_allclose(inp.time_min, [0, 1, 2])
    np.testing.assert_allclose(inp.aif, [0, 2.0, 1.0])
    np.testing.assert_allclose(inp.whole_blood, [0, 1.8, 1.1])
    assert inp.provenance["UnitsFromSidecar"]
    bare = _write(tmp_path, "sub-02_inputfunction.tsv", text, None)
    inp = read_input_function(bare, pet_units="kBq/mL")
    assert inp.aif[1] == 2000.0 and not inp.provenance["UnitsFromSidecar"]
    no_aif = _write(tmp_path, "sub-03_inputfunction.tsv", "time\tplasma\n0\t1\n1\t2\n", None)
    _raises(lambda: read_input_function(no_aif), no_aif, "AIF")


def test_coverage_of_the_scan():
    inp = InputFunction(np.array([0.0, 1.0, 60.0]), np.array([0.0, 5.0, 1.0]),
                        provenance={"Source": "blood.tsv"})  # fmt: skip
    check_coverage(inp, np.array([1.0, 30.0, 63.0]))  # 3 min missing at the end: allowed
    with pytest.raises(BloodDataError) as info:
        check_coverage(inp, np.array([1.0, 30.0, 90.0]))
    assert info.value.field == "time" and info.value.path.name == "blood.tsv"
    late = InputFunction(np.array([2.0, 3.0, 90.0]), np.array([5.0, 4.0, 1.0]))
    with pytest.raises(BloodDataError):
        check_coverage(late, np.array([1.0, 30.0, 90.0]), path="x.tsv")


def test_find_blood_recordings_by_entities(tmp_path):
    pet = tmp_path / "sub-01_ses-01_trc-PBR28_run-1_pet.nii.gz"
    names = [
        "sub-01_ses-01_recording-manual_blood.tsv",  # inherits trc and run
        "sub-01_ses-01_run-1_recording-autosampler_blood.tsv",
        "sub-01_ses-01_run-2_recording-autosampler_blood.tsv",  # other run
        "sub-01_ses-02_recording-manual_blood.tsv",  # other session
        "sub-02_ses-01_recording-manual_blood.tsv",  # other subject
    ]
    for name in names:
        (tmp_path / name).write_text("time\n")
    found = find_blood_recordings(pet)
    assert {k: v.name for k, v in found.items()} == {"autosampler": names[1], "manual": names[0]}
    (tmp_path / "sub-01_ses-01_trc-PBR28_recording-manual_blood.tsv").write_text("time\n")
    assert find_blood_recordings(pet)["manual"].name.startswith("sub-01_ses-01_trc-PBR28")
    (tmp_path / "sub-01_ses-01_run-1_recording-manual_blood.tsv").write_text("time\n")
    with pytest.raises(BloodDataError):  # trc and run name two entities each: a tie
        find_blood_recordings(pet)
    deriv = tmp_path / "deriv" / "sub-01"
    deriv.mkdir(parents=True)
    (deriv / "sub-01_ses-01_desc-x_inputfunction.tsv").write_text("time\n")
    assert find_input_function(pet, tmp_path / "deriv").name.endswith("inputfunction.tsv")
    assert find_input_function(tmp_path / "sub-01_ses-02_pet.nii.gz", tmp_path / "deriv") is None
