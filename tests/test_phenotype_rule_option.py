"""--phenotype-rule: chosen on the command line, recorded in the configuration and workflow."""

from __future__ import annotations

import json

from test_input_data import make_dataset

from tspo_bidsapp.cli.parser import parse_args
from tspo_bidsapp.cli.run import main
from tspo_bidsapp.config import Config
from tspo_bidsapp.exitcodes import EX_USAGE
from tspo_bidsapp.io.bids_input import collect_data


def _phenotypes_node(config: Config, bids):
    from tspo_bidsapp.workflows.base import init_pet_wf

    subjects, _ = collect_data(bids, participant_label=("01",))
    wf = init_pet_wf(config=config, subject=subjects[0], run=subjects[0].pet_runs[0])
    return wf.get_node("pet_quant_wf.phenotypes")


def test_rule_reaches_config_and_workflow(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    base = [str(bids), str(tmp_path / "out"), "participant"]
    # lesion rule on uncorrected maps: needs no threshold
    lesion = parse_args([*base, "--phenotype-rule", "lesion"])
    assert lesion.phenotype_rule == "lesion"
    assert Config.from_dict(json.loads(json.dumps(lesion.to_dict()))) == lesion
    node = _phenotypes_node(lesion, bids)
    assert (node.inputs.rule, node.inputs.correction) == ("lesion", "none")
    # the published voxel rule on RBV-corrected maps (default there: lesion)
    voxel = parse_args([*base, "--phenotype-rule", "voxel", "--active-threshold", "1.2",
                        "--pvc", "rbv", "--pet-fwhm", "4.5"])  # fmt: skip
    node = _phenotypes_node(voxel, bids)
    assert (node.inputs.rule, node.inputs.correction, node.inputs.threshold_dvr) == (
        "voxel", "rbv", 1.2)  # fmt: skip
    default = parse_args([*base, "--pvc", "rbv", "--pet-fwhm", "4.5"])
    assert default.phenotype_rule is None
    assert _phenotypes_node(default, bids).inputs.rule == "lesion"
    # without a rule, a threshold or voxel-wise PVC: no phenotypes (as before)
    assert _phenotypes_node(parse_args(base), bids) is None


def test_phenotype_values_reach_config_and_workflow(tmp_path, capsys):
    bids = make_dataset(tmp_path / "bids")
    base = [str(bids), str(tmp_path / "out"), "participant", "--pvc", "gtm", "--pet-fwhm", "4.5"]
    # with PVC: per-lesion corrected TACs and the lesion rule by default
    default = parse_args(base)
    assert default.phenotype_values is None
    node = _phenotypes_node(default, bids)
    assert (node.inputs.rule, node.inputs.correction) == ("lesion", "gtm")
    assert node.inputs.preference[0] == "SRTM2"  # SRTM runs: its per-lesion DVR fixes k2'
    # the map route stays selectable: the uncorrected map under gtm, with the voxel rule
    maps = parse_args([*base, "--phenotype-values", "map", "--active-threshold", "1.2"])
    assert Config.from_dict(json.loads(json.dumps(maps.to_dict()))) == maps
    node = _phenotypes_node(maps, bids)
    assert (node.inputs.rule, node.inputs.correction) == ("voxel", "none")
    assert not hasattr(node.inputs, "lesion_tsv")
    # a threshold that the default (lesion) rule would ignore is named in a warning
    from tspo_bidsapp.workflows.quant import unused_threshold_note

    ignored = parse_args([*base, "--active-threshold", "1.2"])
    assert "threshold is not used" in unused_threshold_note(ignored)
    assert unused_threshold_note(maps) is None and unused_threshold_note(default) is None
    assert unused_threshold_note(parse_args([*base, "--active-threshold", "1.2",
                                             "--phenotype-rule", "voxel"])) is None  # fmt: skip
    out = tmp_path / "out2"
    code = main([str(bids), str(out), "participant", "--phenotype-values", "regional"])
    assert code == EX_USAGE and "needs partial-volume correction" in capsys.readouterr().err
    assert not out.exists()


def test_voxel_rule_without_threshold_is_refused(tmp_path, capsys):
    bids = make_dataset(tmp_path / "bids")
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", "--phenotype-rule", "voxel"]) == EX_USAGE
    assert "--phenotype-rule voxel needs --active-threshold" in capsys.readouterr().err
    assert main([str(bids), str(out), "participant", "--phenotype-rule", "shell"]) == EX_USAGE
    assert "invalid choice" in capsys.readouterr().err
    assert not out.exists()
