"""Input warnings: said once, worded for the case at hand, never blocking what is selected."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
from test_input_data import make_dataset

from tspo_bidsapp.cli.run import main
from tspo_bidsapp.io.bids_input import collect_data


def test_invalid_participant_folder_is_reported(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    (bids / "sub-0é2" / "anat").mkdir(parents=True)
    subjects, warnings = collect_data(bids)
    assert [s.label for s in subjects] == ["01", "02"]
    assert sum("sub-0é2" in w and "not a valid BIDS participant label" in w for w in warnings) == 1


def test_bad_value_of_an_unselected_participant_does_not_block(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    tsv = bids / "participants.tsv"
    tsv.write_text(
        tsv.read_text().replace("sub-02\tHC\t41\tM\tn/a\tLAB", "sub-02\tHC\told\tM\t12\tLAB")
    )
    subjects, warnings = collect_data(bids, participant_label=("01",))
    assert [s.label for s in subjects] == ["01"]
    assert subjects[0].participant.edss == 2.5
    ignored = [w for w in warnings if "sub-02 is not selected" in w]
    assert len(ignored) == 2 and any("'age'" in w for w in ignored)
    # Selected, the same values are errors (exit 16).
    assert (
        main([str(bids), str(tmp_path / "out"), "participant", "--participant-label", "02"]) == 16
    )
    assert not (tmp_path / "out").exists()


def test_missing_flair_is_worded_for_supplied_lesions(tmp_path):
    bids = make_dataset(tmp_path / "bids")
    _, warnings = collect_data(bids, participant_label=("02",))
    assert "sub-02: no FLAIR image; SAMSEG segments the lesions from the T1w alone" in warnings
    supplied = tmp_path / "derivatives" / "sub-02" / "anat"
    supplied.mkdir(parents=True)
    img = nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4))
    nib.save(img, supplied / "sub-02_desc-lesion_mask.nii.gz")
    _, warnings = collect_data(
        bids, participant_label=("02",), derivatives=(tmp_path / "derivatives",)
    )
    assert not any("FLAIR" in w for w in warnings)


def _same(x):
    return x


def test_input_warnings_are_logged_once(tmp_path, caplog, monkeypatch):
    """One record per warning (before, collect_data and the command line both logged them)."""
    from nipype.interfaces.utility import Function
    from nipype.pipeline import engine as pe

    def one_node(*, config, subjects):
        workflow = pe.Workflow(name="wf", base_dir=str(config.work_dir))
        node = pe.Node(Function(function=_same, input_names=["x"], output_names=["x"]), "same")
        node.inputs.x = 1
        workflow.add_nodes([node])
        return workflow

    monkeypatch.setattr("tspo_bidsapp.workflows.base.init_tspo_wf", one_node)
    bids = make_dataset(tmp_path / "bids")
    with caplog.at_level(logging.WARNING, logger="tspo_bidsapp"):
        code = main([str(bids), str(tmp_path / "out"), "participant", "--nprocs", "1"])
    assert code == 0
    flair = [r for r in caplog.records if "sub-02: no FLAIR" in r.getMessage()]
    assert len(flair) == 1


def test_matplotlib_folder_is_created_and_seeded(tmp_path, monkeypatch):
    from tspo_bidsapp.cli.run import prepare_matplotlib_dir

    seed = tmp_path / "image-cache"
    seed.mkdir()
    (seed / "fontlist-v390.json").write_text("{}")
    folder = tmp_path / "tmp" / "matplotlib"
    monkeypatch.setenv("MPLCONFIGDIR", str(folder))
    monkeypatch.setenv("TSPO_BIDSAPP_MPL_CACHE", str(seed))
    prepare_matplotlib_dir()
    assert (folder / "fontlist-v390.json").read_text() == "{}"
