"""Static (single-frame) PET: SUV against hand computation, SUVR against the dynamic SUVR."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.exitcodes import EX_INVALID_BIDS, InvalidBIDSError
from tspo_bidsapp.interfaces.suv import StaticSUV
from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics.suvr import fit_suvr
from tspo_bidsapp.quant.suv import body_weight_kg, suv_inputs, suv_scale
from tspo_bidsapp.quant.tacs import write_tacs_tsv
from tspo_bidsapp.synthetic.pet import class_tacs
from tspo_bidsapp.synthetic.subject import static_frame

META = {"Units": "kBq/mL", "InjectedRadioactivity": 370.0, "InjectedRadioactivityUnits": "MBq"}


def test_suv_by_hand():
    """5 kBq/mL in a 70-kg person given 370 MBq: SUV = 5 x 70 000 g / 370 000 kBq = 0.9459."""
    assert 5.0 * suv_scale(70.0, 370_000.0) == pytest.approx(5.0 * 70_000 / 370_000, rel=1e-12)
    suv, _ = suv_inputs({**META, "Units": "Bq/mL", "InjectedRadioactivityUnits": "mCi",
                         "InjectedRadioactivity": 10.0}, "70")  # fmt: skip
    # Bq/mL -> kBq/mL is 1e-3; 10 mCi = 370 000 kBq.
    assert suv["injected_kbq"] == pytest.approx(370_000.0)
    assert 5000.0 * suv_scale(suv["weight_kg"], suv["injected_kbq"], 1e-3) == pytest.approx(
        0.945946, rel=1e-5
    )


def test_body_weight_sources():
    assert body_weight_kg("72.5", 80.0) == (72.5, "participants.tsv weight")
    assert body_weight_kg("n/a", 80.0) == (80.0, "sidecar BodyWeight")
    assert body_weight_kg(72500, None)[0] is None  # grams: not a plausible kg value
    suv, reason = suv_inputs(META, None)
    assert suv is None and "no body weight" in reason
    suv, reason = suv_inputs({**META, "InjectedRadioactivity": None}, "70")
    assert suv is None and "InjectedRadioactivity" in reason
    with pytest.raises(InvalidBIDSError) as info:
        suv_inputs({**META, "Units": "SUV"}, "70", path="x_pet.json")
    assert info.value.exit_code == EX_INVALID_BIDS and info.value.field == "Units"


def test_static_suv_interface(tmp_path):
    data = np.full((4, 4, 3, 1), 5.0, np.float32)
    data[0, 0, 0, 0] = 10.0
    pet, mask = tmp_path / "pet.nii.gz", tmp_path / "mask.nii.gz"
    nib.Nifti1Image(data, np.eye(4)).to_filename(pet)
    brain = np.ones((4, 4, 3), np.uint8)
    brain[3, 3, 2] = 0
    nib.Nifti1Image(brain, np.eye(4)).to_filename(mask)
    tacs = write_tacs_tsv(
        FrameTiming([3600.0], [1800.0]), {"NAWM": np.array([5.0])}, tmp_path / "t.tsv"
    )
    res = StaticSUV(pet_file=str(pet), tacs_tsv=str(tacs), brain_mask=str(mask), units="kBq/mL",
                    weight_kg=70.0, injected_kbq=370_000.0).run(cwd=str(tmp_path))  # fmt: skip
    suv = nib.load(res.outputs.out_map).get_fdata()
    assert suv[0, 0, 0] == pytest.approx(10 * 70_000 / 370_000, rel=1e-6)
    assert np.isnan(suv[3, 3, 2])
    table = pd.read_csv(res.outputs.out_tsv, sep="\t")
    assert table.loc[0, "SUV"] == pytest.approx(5 * 70_000 / 370_000, rel=1e-6)


def test_static_suvr_equals_dynamic_window_suvr():
    """A static 40-60 min frame made from the dynamic frames gives the dynamic 40-60 min SUVR."""
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    params = {1: (1.0, 0.1, 0.0), 2: (0.9, 0.09, 0.5), 3: (0.9, 0.09, 1.0)}
    ref, tacs = class_tacs(timing, params, 1.0)
    frames = np.vstack([ref, tacs[2], tacs[3]])
    static, static_timing = static_frame(frames, timing, (40.0, 60.0))
    assert static_timing.start_min.tolist() == [40.0] and static_timing.end_min.tolist() == [60.0]
    for row in (1, 2):
        dynamic = fit_suvr(timing.start_min, timing.end_min, ref, frames[row], window=(40, 60))
        single = fit_suvr(static_timing.start_min, static_timing.end_min, static[0, :],
                          static[row, :], window=(40, 60))  # fmt: skip
        assert single.SUVR == pytest.approx(dynamic.SUVR, rel=1e-6)
        assert dynamic.SUVR > 1.3  # a real binding signal, not a ratio of equal curves


def test_wholebrain_pseudo_reference_of_a_static_frame(tmp_path):
    """Brain minus lesions: the mean of the non-lesion brain voxels; no 'late peak' warning."""
    import json

    from tspo_bidsapp.interfaces.quant import ReferenceRegion

    data = np.full((6, 6, 4, 1), 4.0, np.float32)
    data[:2, :2, :2, 0] = 40.0  # a hot lesion
    lesion = np.zeros((6, 6, 4), np.uint8)
    lesion[:2, :2, :2] = 1
    brain = np.ones((6, 6, 4), np.uint8)
    files = {}
    for name, arr in (("pet", data), ("lesion", lesion), ("brain", brain)):
        files[name] = tmp_path / f"{name}.nii.gz"
        nib.Nifti1Image(arr, np.diag([10.0, 10.0, 10.0, 1.0])).to_filename(files[name])
    sidecar = tmp_path / "pet.json"
    sidecar.write_text(json.dumps({
        "InjectionStart": 0, "FrameTimesStart": [3600], "FrameDuration": [1800],
        "Units": "kBq/mL", "TracerName": "GE180", "TracerRadionuclide": "F18",
        "ImageDecayCorrected": True, "ImageDecayCorrectionTime": 0}))  # fmt: skip
    res = ReferenceRegion(method="wholebrain", pet_file=str(files["pet"]),
                          sidecar_file=str(sidecar), brain_mask=str(files["brain"]),
                          lesion_mask=str(files["lesion"])).run(cwd=str(tmp_path))  # fmt: skip
    table = pd.read_csv(res.outputs.out_tsv, sep="\t")
    assert table["reference"].tolist() == [pytest.approx(4.0)]
    assert not [w for w in res.outputs.warnings if "peaks" in w]


def test_static_run_workflow_has_suvr_and_suv(tmp_path):
    """A one-frame run is wired like a dynamic one with SUVR over its frame, plus SUV."""
    from test_input_data import make_dataset, pet_sidecar, write_pet

    from tspo_bidsapp.config import Config
    from tspo_bidsapp.io.bids_input import collect_data
    from tspo_bidsapp.workflows.base import init_pet_wf

    bids = make_dataset(tmp_path / "bids")
    meta = pet_sidecar(n_frames=1, FrameTimesStart=[2400], FrameDuration=[1200], **META)
    pet = bids / "sub-01/ses-base/pet/sub-01_ses-base_trc-PBR28_pet.nii.gz"
    write_pet(pet, 1, meta)
    (bids / "participants.tsv").write_text(
        "participant_id\tgroup\tweight\nsub-01\tRRMS\t72\nsub-02\tHC\tn/a\n"
    )
    subjects, _ = collect_data(bids, participant_label=("01",))
    config = Config(analysis_level="participant", bids_dir=bids, output_dir=tmp_path / "out",
                    work_dir=tmp_path / "work", ref_region="svca")  # fmt: skip
    (run,) = subjects[0].pet_runs
    wf = init_pet_wf(config=config, subject=subjects[0], run=run)
    kinetics = wf.get_node("pet_quant_wf.kinetics")
    assert kinetics.inputs.models == ["SUVR"]
    assert tuple(kinetics.inputs.suvr_window_min) == (40.0, 60.0)
    assert wf.get_node("pet_quant_wf.reference").inputs.method == "cerebellum"  # not svca
    suv = wf.get_node("pet_suv_wf.suv").inputs
    assert (suv.weight_kg, suv.weight_source) == (72.0, "participants.tsv weight")
    assert suv.injected_kbq == pytest.approx(370_000.0)
    assert wf.get_node("decay_correct") is not None


def test_wholebrain_reference_is_accepted_by_the_quantification_workflow():
    """``--ref-region wholebrain`` reaches the reference node (it was refused there before)."""
    from tspo_bidsapp.workflows.quant import init_pet_quant_wf

    wf = init_pet_quant_wf(ref_region="wholebrain", models=("SUVR",))
    assert wf.get_node("reference").inputs.method == "wholebrain"
    with pytest.raises(ValueError, match="--ref-region must be one of"):
        init_pet_quant_wf(ref_region="pons", models=("SUVR",))
