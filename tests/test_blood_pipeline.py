"""Arterial input in the pipeline: the quantification workflow with BIDS blood recordings.

The PET is built from the synthetic generator's arterial-input kinetics (1TCM for the
reference class, 2TCM for classes with specific binding) and the blood recordings from the
same known input (:mod:`tspo_bidsapp.synthetic.blood`), written in Bq/mL while the PET is in
kBq/mL; V_T is checked against the known truth, and bad blood input against its messages.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.anat.labels import TSPOMS_INDEX, TSPOMS_LABELS, write_dseg_tsv
from tspo_bidsapp.blood import InputFunction, write_input_function
from tspo_bidsapp.exitcodes import InputProblems
from tspo_bidsapp.group.analysis import GroupOptions, statistics
from tspo_bidsapp.io.blood_input import (
    check_arterial_inputs,
    find_arterial_input,
    load_arterial_input,
)
from tspo_bidsapp.io.pet_sidecar import read_pet_sidecar
from tspo_bidsapp.io.timing import TSPO_60MIN_DURATIONS_S, FrameTiming
from tspo_bidsapp.kinetics.registry import model_entity
from tspo_bidsapp.quant.regional import models_for_run
from tspo_bidsapp.reports.blood import blood_section
from tspo_bidsapp.reports.collect import pet_runs
from tspo_bidsapp.reports.sections import FigureMaker, Section
from tspo_bidsapp.synthetic.blood import BloodTruth, write_blood_recordings
from tspo_bidsapp.synthetic.parameters import REFERENCE_K2_PER_MIN, plasma_parameters
from tspo_bidsapp.synthetic.pet import PetGeometry, plasma_class_tacs
from tspo_bidsapp.synthetic.sidecar import pet_sidecar
from tspo_bidsapp.tracers import lookup_tracer
from tspo_bidsapp.workflows.quant import init_pet_quant_wf

# (R1, k2, BPND) of each region, as the synthetic generator draws them.
REGIONS = {
    "cortical-GM": (0.90, 0.90 * REFERENCE_K2_PER_MIN, 0.14),
    "thalamus": (0.95, 0.95 * REFERENCE_K2_PER_MIN, 0.30),
    "NAWM": (0.65, 0.65 * REFERENCE_K2_PER_MIN, 0.10),
    "cerebellar-GM-reference": (1.0, REFERENCE_K2_PER_MIN, 0.0),
}
PREFIX = "sub-01_trc-PBR28"


def _save(data, path, dtype=np.float32) -> str:
    nib.save(nib.Nifti1Image(np.asarray(data, dtype), np.diag([2.0, 2.0, 2.0, 1.0])), str(path))
    return str(path)


@pytest.fixture()
def study(tmp_path):
    """A 14^3 four-region PET with its sidecar and blood recordings, in a BIDS pet folder."""
    timing = FrameTiming.from_durations_s(TSPO_60MIN_DURATIONS_S)
    truth = plasma_parameters({TSPOMS_INDEX[n]: p for n, p in REGIONS.items()})
    tacs = plasma_class_tacs(timing, truth, BloodTruth())
    labels = np.zeros((14, 14, 14), np.uint8)
    for i, name in enumerate(REGIONS):
        labels[1 + 3 * i : 4 + 3 * i, 1:13, 1:13] = TSPOMS_INDEX[name]
    pet_dir = tmp_path / "bids" / "sub-01" / "pet"
    pet_dir.mkdir(parents=True)
    pet = _save(tacs[labels], pet_dir / f"{PREFIX}_pet.nii.gz")
    geom = PetGeometry(np.eye(4), (14, 14, 14), 0, np.eye(4), 4.5)
    meta = pet_sidecar(lookup_tracer("PBR28"), timing, 400.0, geom, np.random.default_rng(0))
    sidecar = pet_dir / f"{PREFIX}_pet.json"
    sidecar.write_text(json.dumps(meta))
    blood = write_blood_recordings(pet_dir, PREFIX, BloodTruth(), units="Bq/mL")
    masks = tmp_path / "masks"
    masks.mkdir()
    ref = labels == TSPOMS_INDEX["cerebellar-GM-reference"]
    inputs = {
        "source_file": pet, "pet_t1w": pet, "pet_file": pet, "sidecar_file": str(sidecar),
        "tspoms_dseg": _save(labels, masks / "dseg.nii.gz", np.uint8),
        "tspoms_tsv": str(write_dseg_tsv(masks / "dseg.tsv", TSPOMS_LABELS)),
        "ref_candidate": _save(ref, masks / "ref.nii.gz", np.uint8),
        "brain_mask": _save(labels > 0, masks / "brain.nii.gz", np.uint8),
        "participant": {"tspo_genotype": "HAB"},
    }  # fmt: skip
    vt = {name: truth[TSPOMS_INDEX[name]]["VT"] for name in REGIONS}
    return SimpleNamespace(root=tmp_path, pet=pet_dir / f"{PREFIX}_pet.nii.gz", blood=blood,
                           sidecar=sidecar, inputs=inputs, labels=labels, vt=vt)  # fmt: skip


def test_quant_workflow_fits_plasma_models_from_blood_recordings(study):
    out = study.root / "out"
    source = find_arterial_input(study.pet)
    assert source.kind == "recordings" and len(source.files) == 2
    models = ("SRTM", "1TCM", "2TCM", "Logan-plasma", "MA1")
    wf = init_pet_quant_wf(output_dir=str(out), models=models, logan_tstar_min=20.0,
                           blood=source, plasma_vb=0.05)  # fmt: skip
    wf.base_dir = str(study.root / "work")
    for key, value in study.inputs.items():
        setattr(wf.inputs.inputnode, key, value)
    wf.run()
    pet_out = out / "sub-01" / "pet"
    (inp_tsv,) = pet_out.glob("*_inputfunction.tsv")
    inp_meta = json.loads(inp_tsv.with_suffix(".json").read_text())
    assert inp_meta["AIF"]["Units"] == "kBq/mL"
    assert inp_meta["Provenance"]["ParentFraction"]["Model"] == "hill"
    for model, tol in (("2TCM", 0.02), ("Logan-plasma", 0.02), ("MA1", 0.02)):
        (kinpar,) = pet_out.glob(f"*_model-{model_entity(model)}_*kinpar.tsv")
        table = pd.read_csv(kinpar, sep="\t", na_values="n/a").set_index("region")
        for region, vt in study.vt.items():
            assert table.loc[region, "VT"] == pytest.approx(vt, rel=tol), (model, region)
        sidecar = json.loads(kinpar.with_suffix(".json").read_text())
        assert sidecar["Units"]["VT"] == "mL/cm3" and "InputFunction" in sidecar
    (one,) = pet_out.glob("*_model-1TCM_*kinpar.tsv")
    one = pd.read_csv(one, sep="\t", na_values="n/a").set_index("region")
    ref = "cerebellar-GM-reference"  # the one-tissue class
    assert one.loc[ref, "VT"] == pytest.approx(study.vt[ref], rel=0.02)
    assert abs(one.loc[ref, "delay_min"]) < 3 / 60  # truth: blood and tissue see one input
    assert {"K1", "k2", "vB", "VT_cov"} <= set(one.columns)
    (srtm,) = pet_out.glob("*_model-SRTM_*kinpar.tsv")  # reference models still run
    assert len(pd.read_csv(srtm, sep="\t")) == len(REGIONS)
    checks = (("Logan-plasma", "VT", "thalamus", study.vt["thalamus"]),
              ("MA1", "VT", "thalamus", study.vt["thalamus"]),
              ("1TCM", "VT", ref, study.vt[ref]), ("1TCM", "K1", ref, 0.30))  # fmt: skip
    for model, meas, region, truth in checks:
        entity = model_entity(model)
        (path,) = pet_out.glob(f"*_space-T1w_model-{entity}_*meas-{meas}_mimap.nii.gz")
        values = np.asarray(nib.load(path).dataobj)[study.labels == TSPOMS_INDEX[region]]
        assert np.nanmedian(values) == pytest.approx(truth, rel=0.02), (model, meas)
    assert not list(pet_out.glob("*_model-2TCM_*mimap.nii.gz"))  # regional only
    # The report's arterial-input section: models chosen, delay, figure and V_T table.
    sec = Section("blood", "Arterial input")
    blood_section(sec, pet_runs(out, "01"), FigureMaker(out, "01"))
    assert not sec.errors and len(sec.figures) == 1
    assert (out / sec.figures[0][0]).stat().st_size > 10_000
    items = dict(sec.items)
    assert items["sub-01_trc-PBR28 parent-fraction model"] == "hill (AIC)"
    assert "1tcm-fit, cortical-GM" in items["sub-01_trc-PBR28 blood-tissue delay"]
    (table,) = sec.tables
    assert table.columns == ["region", "1TCM", "2TCM", "LoganPlasma", "MA1"]


def _run(study):
    return SimpleNamespace(pet_file=study.pet, sidecar=read_pet_sidecar(study.sidecar))


def _problems(study) -> str:
    with pytest.raises(InputProblems) as err:
        check_arterial_inputs([_run(study)])
    assert err.value.exit_code == 16
    return str(err.value)


def test_blood_input_checks(study):
    assert check_arterial_inputs([_run(study)])[study.pet].kind == "recordings"
    manual, auto = study.blood["manual"], study.blood["autosampler"]
    # Blood not covering the scan: manual samples end at 20 min, the scan runs 60 min.
    table = pd.read_csv(manual, sep="\t")
    table[table["time"] <= 1200].to_csv(manual, sep="\t", index=False)
    message = _problems(study)
    assert manual.name in message and "field 'time'" in message and "scan runs" in message
    # Units that cannot be converted to the PET's kBq/mL.
    table.to_csv(manual, sep="\t", index=False)
    meta = json.loads(auto.with_suffix(".json").read_text())
    auto.with_suffix(".json").write_text(
        json.dumps(meta | {"whole_blood_radioactivity": {"Units": "counts"}})
    )
    message = _problems(study)
    assert auto.with_suffix(".json").name in message and "'whole_blood_radioactivity'" in message
    auto.with_suffix(".json").write_text(json.dumps(meta))
    # A recording whose PET is not there.
    write_blood_recordings(study.pet.parent, "sub-01_trc-PK11195", BloodTruth())
    message = _problems(study)
    assert "sub-01_trc-PK11195_recording-manual_blood.tsv" in message
    assert "field 'recording'" in message


def test_models_for_runs_without_blood():
    assert models_for_run(("SRTM", "1TCM"), False) == ("SRTM",)
    assert models_for_run(("SRTM", "1TCM"), True) == ("SRTM", "1TCM")
    with pytest.raises(ValueError, match="arterial input"):
        models_for_run(("1TCM", "MA1"), False)


def test_group_statistics_take_vt_with_the_genotype_effect():
    """Plasma-input models are analysed on V_T; MAB carry half the HAB specific binding and
    LAB are excluded for [11C]PBR28 (flagged by the participant tables)."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(16):
        group = ("HC", "RRMS")[i % 2]
        genotype = ("HAB", "MAB")[(i // 2) % 2] if i < 14 else "LAB"
        vt = 2.0 * (1.0 + 0.5 * (group == "RRMS")) * (0.6 if genotype == "MAB" else 1.0)
        rows.append({
            "participant_id": f"sub-{i:02d}", "session": "", "tracer": "PBR28", "rec": "",
            "run": "", "model": model_entity("Logan-plasma"), "ref": "cerebellum",
            "region": "thalamus", "measure": "VT", "value": vt * (1 + 0.01 * rng.normal()),
            "group": group, "age": 40.0 + i, "sex": ("F", "M")[(i // 4) % 2], "edss": np.nan,
            "tspo_genotype": genotype, "excluded": genotype == "LAB",
        })  # fmt: skip
    table = statistics(pd.DataFrame(rows), GroupOptions(min_group_size=3))
    assert set(table["measure"]) == {"VT"}
    effect = table[table["contrast"] == "MAB-HAB"].iloc[0]
    hab = np.mean([r["value"] for r in rows if r["tspo_genotype"] == "HAB"])
    # additive model: the MAB-HAB difference is about -40 % of the HAB mean
    assert effect["estimate"] == pytest.approx(-0.4 * hab, rel=0.1)
    assert effect["n_a"] + effect["n_b"] == 14  # LAB left out


def test_a_supplied_input_function_takes_precedence(study):
    """An ``*_inputfunction.tsv`` under --derivatives is used instead of the raw recordings,
    read back in the PET's units (written here in Bq/mL)."""
    truth = BloodTruth()
    t = np.arange(0.0, 61.0, 1.0 / 60.0)
    supplied = InputFunction(t, truth.aif(t) * 1e3, truth.whole_blood(t) * 1e3)
    deriv = study.root / "deriv" / "sub-01" / "pet"
    deriv.mkdir(parents=True)
    write_input_function(supplied, deriv / f"{PREFIX}_inputfunction.tsv", units="Bq/mL")
    sources = check_arterial_inputs([_run(study)], [study.root / "deriv"])
    source = sources[study.pet]
    assert source.kind == "inputfunction"
    inp = load_arterial_input(source, read_pet_sidecar(study.sidecar))
    np.testing.assert_allclose(inp.plasma_at(t[::60]), truth.aif(t[::60]), rtol=1e-6, atol=1e-9)


def test_blood_times_follow_the_runs_injection_start(study):
    """Blood times are relative to TimeZero like FrameTimesStart: with the injection 45 s after
    TimeZero, both are shifted by InjectionStart onto one axis (minutes after injection)."""
    from tspo_bidsapp.io.blood_input import find_arterial_input, load_arterial_input

    reference = load_arterial_input(
        find_arterial_input(study.pet, ()), read_pet_sidecar(study.sidecar)
    )
    meta = json.loads(study.sidecar.read_text())
    meta["InjectionStart"] = 45.0
    meta["FrameTimesStart"] = [t + 45.0 for t in meta["FrameTimesStart"]]
    study.sidecar.write_text(json.dumps(meta))
    write_blood_recordings(study.pet.parent, PREFIX, BloodTruth(), units="Bq/mL",
                           injection_offset_s=45.0)  # fmt: skip
    sidecar = read_pet_sidecar(study.sidecar)
    assert sidecar.timing.start_min[0] == pytest.approx(0.0)
    shifted = load_arterial_input(find_arterial_input(study.pet, ()), sidecar)
    t = np.linspace(0.0, 60.0, 601)
    np.testing.assert_allclose(shifted.plasma_at(t), reference.plasma_at(t), rtol=1e-6, atol=1e-6)
    assert shifted.provenance["InjectionOffsetSeconds"] == 45.0
    # the sidecar rewritten on the injection axis (InjectionStart 0) keeps the run's own offset
    from tspo_bidsapp.interfaces.decay import injection_sidecar
    from tspo_bidsapp.io.blood_input import injection_offset_s

    moved = study.root / "moved_pet.json"
    moved.write_text(json.dumps(injection_sidecar(meta, sidecar)))
    assert read_pet_sidecar(moved).injection_start_s == 0.0
    assert injection_offset_s(read_pet_sidecar(moved)) == 45.0
