"""Raw blood recordings -> AIF: recovery of a known input from synthetic BIDS recordings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.integrate import trapezoid

from tspo_bidsapp.blood.dispersion import correct_dispersion
from tspo_bidsapp.blood.find import find_blood_recordings
from tspo_bidsapp.blood.models import PARENT_FRACTION_MODELS, RATIO_MODELS, select_model
from tspo_bidsapp.blood.output import write_input_function
from tspo_bidsapp.blood.process import input_function_from_recordings, process_blood
from tspo_bidsapp.blood.recordings import read_blood_recording, read_input_function
from tspo_bidsapp.blood.units import BloodDataError
from tspo_bidsapp.synthetic.blood import BloodTruth, dispersed_whole_blood, write_blood_recordings

T = np.arange(0.0, 90.0, 0.001)  # minutes


def _auc(curve, t):
    return trapezoid(curve, t)


def _recover(tmp_path, truth, **kwargs):
    written = write_blood_recordings(tmp_path / "pet", "sub-01_ses-01", truth, **kwargs)
    found = find_blood_recordings(tmp_path / "pet" / "sub-01_ses-01_trc-PBR28_pet.nii.gz")
    assert found == written
    return input_function_from_recordings(
        list(found.values()),
        pet_units="kBq/mL",
        injection_offset_s=kwargs.get("injection_offset_s", 0.0),
    )


@pytest.mark.parametrize(("units", "offset_s"), [("kBq/mL", 0.0), ("Bq/mL", 45.0)])
def test_noise_free_recordings_recover_the_known_aif(tmp_path, units, offset_s):
    """Noise-free: AIF area within 0.5 %, late (10-90 min) area within 0.5 %, peak within 1 %,
    every point after 1 min within 3 % (linear interpolation between manual whole-blood samples),
    whole-blood area within 0.5 %; the true model families are chosen by AIC."""
    truth = BloodTruth()
    inp = _recover(tmp_path, truth, units=units, injection_offset_s=offset_s)
    late = T > 10
    assert _auc(inp.plasma_at(T), T) / _auc(truth.aif(T), T) == pytest.approx(1, abs=0.005)
    assert _auc(inp.plasma_at(T[late]), T[late]) / _auc(truth.aif(T[late]), T[late]) == (
        pytest.approx(1, abs=0.005)
    )
    assert inp.aif.max() / truth.aif(T).max() == pytest.approx(1, abs=0.01)
    after = T > 1
    np.testing.assert_allclose(inp.plasma_at(T[after]), truth.aif(T[after]), rtol=0.03)
    assert _auc(inp.blood_at(T), T) / _auc(truth.whole_blood(T), T) == pytest.approx(1, abs=0.005)
    prov = inp.provenance
    assert prov["ParentFraction"]["Model"] == "hill" and prov["ParentFraction"]["ChosenBy"] == "AIC"
    assert prov["PlasmaToBloodRatio"]["Model"] == "rise"
    np.testing.assert_allclose(
        list(prov["ParentFraction"]["Parameters"].values()), truth.parent, rtol=1e-3
    )
    assert prov["WholeBlood"]["Continuous"][0]["DispersionCorrection"].startswith("applied")
    assert prov["WholeBlood"]["SwitchToDiscreteMinutes"] == pytest.approx(10.0)
    assert prov["Units"] == "kBq/mL" and prov["InjectionOffsetSeconds"] == offset_s


def test_noisy_recordings_recover_the_aif_area(tmp_path):
    """3 % noise on every sample: AIF area and late area within 5 % of the truth."""
    truth = BloodTruth(delay_min=0.5, parent=(0.1, 2.2, 6.0))
    inp = _recover(tmp_path, truth, noise_cv=0.03, rng=np.random.default_rng(7))
    late = T > 10
    assert _auc(inp.plasma_at(T), T) / _auc(truth.aif(T), T) == pytest.approx(1, abs=0.05)
    assert _auc(inp.plasma_at(T[late]), T[late]) / _auc(truth.aif(T[late]), T[late]) == (
        pytest.approx(1, abs=0.05)
    )


def test_dispersion_correction_restores_the_true_curve():
    """A curve dispersed with tau 5 s is restored: peak within 3 % (uncorrected: 9 % low)."""
    truth = BloodTruth()
    t_s = np.arange(1.0, 301.0)
    measured = dispersed_whole_blood(truth, t_s, 5.0)
    grid, corrected = correct_dispersion(t_s / 60, measured, 5.0)
    peak = truth.whole_blood(np.arange(0, 5, 1e-4)).max()
    assert measured.max() < 0.93 * peak
    assert corrected.max() == pytest.approx(peak, rel=0.03)
    late = grid > 1.0
    np.testing.assert_allclose(corrected[late], truth.whole_blood(grid[late]), rtol=0.01)


def test_models_recover_their_parameters_and_aic_picks_the_family():
    t = np.array([1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90.0])
    exp1 = PARENT_FRACTION_MODELS["exp1"]
    y = exp1.func(t, np.array([0.08, 0.12]))
    fit, aics = select_model(PARENT_FRACTION_MODELS, t, y)
    assert fit.model.name == "exp1" and set(aics) == {"hill", "exp1", "exp2"}
    np.testing.assert_allclose(fit.params, [0.08, 0.12], rtol=1e-4)
    forced, aics = select_model(PARENT_FRACTION_MODELS, t, y, "hill")
    assert forced.model.name == "hill" and set(aics) == {"hill"}
    ratio, _ = select_model(RATIO_MODELS, t, 1.1 + 0.004 * t)
    assert ratio.model.name == "linear"
    np.testing.assert_allclose(ratio.params, [1.1, 0.004], rtol=1e-6)
    with pytest.raises(ValueError):
        select_model(RATIO_MODELS, t, t, "cubic")


def test_user_choices_are_applied_and_recorded(tmp_path):
    written = write_blood_recordings(tmp_path, "sub-01", BloodTruth())
    recordings = [read_blood_recording(p) for p in written.values()]
    inp = process_blood(recordings, parent_fraction_model="interpolate", ratio_model="constant",
                        continuous_until_min=5.0)  # fmt: skip
    prov = inp.provenance
    assert prov["ParentFraction"] == {"Model": "interpolate", "ChosenBy": "user"}
    assert prov["PlasmaToBloodRatio"]["Model"] == "constant"
    assert prov["PlasmaToBloodRatio"]["ChosenBy"] == "user"
    assert prov["WholeBlood"]["SwitchToDiscreteMinutes"] == 5.0
    # interpolated parent fraction is exact at a manual sample (10 min): AIF = WB x r x f there
    truth = BloodTruth()
    r = prov["PlasmaToBloodRatio"]["Parameters"]["a"]
    assert inp.plasma_at(10.0) == pytest.approx(
        truth.whole_blood(10.0) * r * truth.parent_fraction(10.0), rel=1e-5
    )


def test_recordings_without_plasma_or_parent_fraction_are_refused(tmp_path):
    written = write_blood_recordings(tmp_path, "sub-01", BloodTruth())
    auto = read_blood_recording(written["autosampler"])
    with pytest.raises(BloodDataError) as info:
        process_blood([auto])
    assert info.value.exit_code == 16 and info.value.field == "plasma_radioactivity"


def test_written_input_function_reads_back(tmp_path):
    """write_input_function -> read_input_function: same curves (8 digits), units converted."""
    written = write_blood_recordings(tmp_path, "sub-01", BloodTruth())
    inp = input_function_from_recordings(list(written.values()), injection_offset_s=30.0)
    out = write_input_function(inp, tmp_path / "sub-01_inputfunction.tsv", units="kBq/mL",
                               injection_offset_s=30.0)  # fmt: skip
    back = read_input_function(out, pet_units="Bq/mL", injection_offset_s=30.0)
    np.testing.assert_allclose(back.time_min, inp.time_min, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(back.aif, 1e3 * inp.aif, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(back.whole_blood, 1e3 * inp.whole_blood, rtol=1e-7, atol=1e-9)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["Provenance"]["ParentFraction"]["Model"] == "hill"


def test_too_few_parent_fraction_samples_is_bad_data(tmp_path):
    written = write_blood_recordings(tmp_path, "sub-01", BloodTruth(), manual_times_s=(60, 600))
    recordings = [read_blood_recording(p) for p in written.values()]
    with pytest.raises(BloodDataError) as info:
        process_blood(recordings)
    assert info.value.field == "metabolite_parent_fraction" and info.value.exit_code == 16
