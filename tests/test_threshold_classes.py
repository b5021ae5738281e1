"""The active threshold of each participant's binding class, from the group level's per-class file."""

from __future__ import annotations

import json

import pytest
from nipype.interfaces.base import isdefined
from test_input_data import make_dataset
from test_quant_phenotypes import ZOOMS

from tspo_bidsapp.cli.run import main
from tspo_bidsapp.config import Config
from tspo_bidsapp.exitcodes import EX_INVALID_BIDS, InvalidBIDSError
from tspo_bidsapp.io.bids_input import collect_data
from tspo_bidsapp.io.thresholds import participant_threshold, read_threshold_file
from tspo_bidsapp.quant.phenotypes import PhenotypeRule, lesion_phenotypes

HAB, MAB = 1.30, 1.18  # DVR thresholds of the two classes' controls
STEM = "tracer-PBR28_model-SRTM_ref-cerebellum_desc-activethreshold"


def _combined(path, *, mab: bool = True):
    """The shape group/controls.class_thresholds writes (MAB: a reason when it has too few)."""
    mab_entry = (
        {"binding_class": "MAB", "threshold_dvr": MAB, "n_controls": 4}
        if mab
        else {"binding_class": "MAB", "n_controls": 2, "reason": "2 healthy control(s), need 3"}
    )
    classes = {"HAB": {"binding_class": "HAB", "threshold_dvr": HAB, "n_controls": 5},
               "MAB": mab_entry}  # fmt: skip
    path.write_text(json.dumps({"rule": "mean + 2 SD", "binding_classes": classes}))
    return path


def test_participant_gets_its_class_threshold(tmp_path):
    thr = read_threshold_file(_combined(tmp_path / f"{STEM}.json"))
    assert thr.threshold_dvr is None and thr.classes == {"HAB": HAB, "MAB": MAB}
    pick = {"participant": "sub-01", "sensitive": True}
    assert participant_threshold(thr, "MAB", **pick) == (MAB, "MAB")
    assert participant_threshold(thr, "HAB", **pick) == (HAB, "HAB")
    for genotype, field in (("LAB", "binding_classes.LAB.threshold_dvr"),
                            (None, "binding_classes")):  # fmt: skip
        with pytest.raises(InvalidBIDSError) as err:
            participant_threshold(thr, genotype, **pick)
        assert err.value.exit_code == EX_INVALID_BIDS and err.value.field == field
        assert err.value.path == thr.path


def test_class_without_threshold_and_single_class_mismatch(tmp_path):
    thr = read_threshold_file(_combined(tmp_path / f"{STEM}.json", mab=False))
    with pytest.raises(InvalidBIDSError, match="need 3") as err:
        participant_threshold(thr, "MAB", participant="sub-01", sensitive=True)
    assert err.value.field == "binding_classes.MAB.threshold_dvr"
    single = tmp_path / f"{STEM}MAB.json"
    single.write_text(json.dumps({"binding_class": "MAB", "threshold_dvr": MAB}))
    one = read_threshold_file(single)
    assert participant_threshold(one, "MAB", participant="sub-01", sensitive=True) == (MAB, "MAB")
    with pytest.raises(InvalidBIDSError, match="derived from MAB controls") as err:
        participant_threshold(one, "HAB", participant="sub-01", sensitive=True)
    assert err.value.field == "binding_class"
    # a genotype-insensitive tracer takes the single threshold whatever the genotype
    assert participant_threshold(one, "HAB", participant="sub-01", sensitive=False)[0] == MAB


def test_workflow_of_a_mab_participant_uses_the_mab_threshold(tmp_path):
    from tspo_bidsapp.workflows.base import init_pet_wf

    bids = make_dataset(tmp_path / "bids")
    (bids / "participants.tsv").write_text(
        "participant_id\tgroup\ttspo_genotype\nsub-01\tRRMS\tMAB\nsub-02\tRRMS\tHAB\n"
    )
    thr = _combined(tmp_path / f"{STEM}.json")
    config = Config(analysis_level="participant", bids_dir=bids, output_dir=tmp_path / "out",
                    work_dir=tmp_path / "work", active_threshold_file=thr)  # fmt: skip
    subjects, _ = collect_data(bids)
    got = {}
    for subject in subjects:
        run = subject.pet_runs[0]
        node = init_pet_wf(config=config, subject=subject, run=run).get_node(
            "pet_quant_wf.phenotypes"
        )
        got[subject.label] = (node.inputs.threshold_dvr, node.inputs.threshold_class)
        assert node.inputs.threshold_source == "healthy-controls"
    assert got == {"01": (MAB, "MAB"), "02": (HAB, "HAB")}


def test_command_line_refuses_a_class_without_threshold(tmp_path, capsys):
    bids = make_dataset(tmp_path / "bids")
    (bids / "participants.tsv").write_text(
        "participant_id\tgroup\ttspo_genotype\nsub-01\tRRMS\tMAB\nsub-02\tRRMS\tHAB\n"
    )
    thr = _combined(tmp_path / f"{STEM}.json", mab=False)
    out = tmp_path / "out"
    args = [str(bids), str(out), "participant", "--active-threshold-file", str(thr)]
    assert main(args) == EX_INVALID_BIDS
    err = capsys.readouterr().err
    assert str(thr) in err and "binding_classes.MAB.threshold_dvr" in err and "sub-01" in err
    assert not out.exists()


def test_lesion_table_records_class_and_threshold():
    """A rim of DVR 1.25 is active against the MAB threshold (1.18) and not the HAB one (1.30)."""
    import numpy as np

    shape = (30, 30, 30)
    grid = np.indices(shape).astype(float)
    dist = np.sqrt(sum((g - 15.0) ** 2 for g in grid))
    dvr = np.full(shape, 1.05)
    dvr[(dist > 5) & (dist <= 7)] = 1.25
    ids = (dist <= 5).astype(np.int32)
    wm = np.ones(shape, bool)
    rows = {}
    for cls, value in (("HAB", HAB), ("MAB", MAB)):
        rule = PhenotypeRule(value, threshold_source="healthy-controls", threshold_k=2.0,
                             threshold_class=cls)  # fmt: skip
        rows[cls] = lesion_phenotypes(dvr, ids, wm, ZOOMS, rule).iloc[0]
        assert (rows[cls]["threshold"], rows[cls]["threshold_class"]) == (value, cls)
        assert rule.as_dict()["threshold_class"] == cls
    assert rows["MAB"]["phenotype"] == "rim-active" and rows["HAB"]["phenotype"] == "inactive"


def test_lesion_rule_needs_no_class_threshold(tmp_path):
    """Under the lesion rule (chosen, or the default with voxel-wise PVC) a class without a
    threshold is no reason to refuse, and no threshold is handed to the phenotypes."""
    from tspo_bidsapp.io.thresholds import check_thresholds
    from tspo_bidsapp.workflows.base import init_pet_wf
    from tspo_bidsapp.workflows.quant import uses_threshold

    bids = make_dataset(tmp_path / "bids")
    (bids / "participants.tsv").write_text(
        "participant_id\tgroup\ttspo_genotype\nsub-01\tRRMS\tMAB\nsub-02\tRRMS\tHAB\n"
    )
    thr = _combined(tmp_path / f"{STEM}.json", mab=False)
    subjects, _ = collect_data(bids, participant_label=("01",))
    common = {"analysis_level": "participant", "bids_dir": bids, "output_dir": tmp_path / "out",
              "work_dir": tmp_path / "work", "active_threshold_file": thr}  # fmt: skip
    voxel = Config(**common)
    with pytest.raises(InvalidBIDSError):
        check_thresholds(voxel, subjects, needed=uses_threshold(voxel))
    for config in (Config(**common, phenotype_rule="lesion"),
                   Config(**common, pvc="rbv", pet_fwhm_mm=4.5)):  # fmt: skip
        assert not uses_threshold(config)
        check_thresholds(config, subjects, needed=uses_threshold(config))
        node = init_pet_wf(config=config, subject=subjects[0], run=subjects[0].pet_runs[0])
        inputs = node.get_node("pet_quant_wf.phenotypes").inputs
        assert inputs.rule == "lesion" and not isdefined(inputs.threshold_dvr)
