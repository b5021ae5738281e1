"""The command line: parsing, exit codes, and a participant + group run on a tiny dataset."""

from __future__ import annotations

import csv
import json
import os

os.environ.setdefault("NIPYPE_NO_ET", "1")  # no version check over the network

import numpy as np
import pytest
from test_input_data import frame_values, make_dataset, pet_sidecar, snapshot

from tspo_bidsapp import __version__
from tspo_bidsapp.cli.parser import parse_args, parse_memory_gb
from tspo_bidsapp.cli.run import main, write_dataset_description
from tspo_bidsapp.config import Config
from tspo_bidsapp.exitcodes import UsageError


@pytest.fixture
def bids(tmp_path):
    return make_dataset(tmp_path / "bids")


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tspo-bidsapp {__version__}"


@pytest.mark.parametrize(
    ("value", "gb"),
    [("8G", 8.0), ("8GB", 8.0), ("16000MB", 16.0), ("1.5T", 1500.0), ("512", 0.512), ("4gib", 4.0)],
)
def test_memory_units(value, gb):
    assert parse_memory_gb(value) == pytest.approx(gb)


def test_memory_rejects_garbage():
    with pytest.raises(UsageError, match="--mem"):
        parse_memory_gb("lots")


def test_options_build_config(bids, tmp_path):
    plugin = tmp_path / "slurm.yml"
    plugin.write_text("plugin: SLURM\nplugin_args:\n  sbatch_args: --time=1:00:00\n  max_jobs: 4\n")
    config = parse_args([
        str(bids), str(tmp_path / "out"), "participant", "--participant_label", "sub-01", "02",
        "--participant-label", "01", "--session-label", "ses-base", "--tracer-label", "PBR28",
        "-w", str(tmp_path / "scratch"), "--nprocs", "4", "--omp-nthreads", "2", "--mem", "6GB",
        "--skip-bids-validation", "--stop-on-first-crash", "--use-plugin", str(plugin), "-vv",
    ])  # fmt: skip
    assert config.participant_label == ("01", "02")
    assert config.session_label == ("base",) and config.tracer_label == ("PBR28",)
    assert config.work_dir == tmp_path / "scratch"
    assert (config.nprocs, config.omp_nthreads, config.mem_gb) == (4, 2, 6.0)
    assert config.skip_bids_validation and config.stop_on_first_crash and config.verbosity == 2
    assert config.nipype_plugin() == ("SLURM", {"sbatch_args": "--time=1:00:00", "max_jobs": 4})
    with pytest.raises(AttributeError):
        config.nprocs = 8  # frozen
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_defaults(bids, tmp_path):
    config = parse_args([str(bids), str(tmp_path / "out"), "participant", "--nprocs", "3"])
    assert config.work_dir == tmp_path / "work"  # beside OUTPUT_DIR
    assert config.nipype_plugin() == ("MultiProc", {"n_procs": 3, "raise_insufficient": False})
    assert config.omp_nthreads == 2 and config.participant_label == ()


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["{bids}", "{out}", "participants"], 17, "analysis level must be one of"),
        (["{bids}", "{out}", "participant", "--participant-label", "03"], 18, "03 not found"),
        (["{bids}", "{out}", "participant", "--tracer-label", "DPA714"], 18, "no PET run matches"),
        (["{missing}", "{out}", "participant"], 66, "BIDS_DIR does not exist"),
        (["{bids}", "{bids}/derivatives/tspo", "participant"], 64, "inside the input dataset"),
        (["{bids}", "{out}", "participant", "-w", "{bids}/work"], 64, "inside the input dataset"),
        (["{bids}", "{out}", "participant", "--nprocs", "two"], 64, "invalid int value"),
        (["{bids}", "{out}", "participant", "--mem", "many"], 64, "--mem"),
        (["{bids}", "{out}", "participant", "--participant-label", "0_1"], 64, "not a valid"),
        (["{bids}", "{out}", "participant", "--use-plugin", "{missing}"], 66, "plugin file"),
        (["{bids}", "{out}", "participant", "--bogus"], 64, "unrecognized arguments"),
        (["{bids}"], 64, "required"),
    ],
)
def test_exit_codes(bids, tmp_path, capsys, args, code, text):
    paths = {"bids": bids, "out": tmp_path / "out", "missing": tmp_path / "nope"}
    before = snapshot(bids)
    assert main([a.format(**paths) for a in args]) == code
    assert text in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()
    assert snapshot(bids) == before


def test_invalid_bids_writes_nothing(tmp_path, capsys):
    bids = make_dataset(tmp_path / "bids", meta=pet_sidecar(FrameDuration=[15, 15, 15, 15, 30]))
    assert main([str(bids), str(tmp_path / "out"), "participant"]) == 16
    err = capsys.readouterr().err
    assert "sub-01_ses-base_trc-PBR28_pet.json: field 'FrameDuration'" in err
    assert not (tmp_path / "out").exists()
    (bids / "dataset_description.json").unlink()
    assert main([str(bids), str(tmp_path / "out"), "participant"]) == 16
    assert "dataset_description.json' is missing" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_t1w_exit_code(bids, tmp_path):
    (bids / "sub-02/anat/sub-02_T1w.nii.gz").unlink()
    assert main([str(bids), str(tmp_path / "out"), "participant"]) == 66
    assert not (tmp_path / "out").exists()


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_participant_then_group(bids, tmp_path, caplog):
    out, work = tmp_path / "derivatives", tmp_path / "work"
    before = snapshot(bids)
    common = [str(bids), str(out)]
    # group before participant level: nothing to collect
    assert main([*common, "group", "-w", str(work)]) == 66
    assert not out.exists()

    assert main([*common, "participant", "--participant-label", "02", "-w", str(work),
                 "--nprocs", "1"]) == 0  # fmt: skip
    assert snapshot(bids) == before
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0] == {"Name": "tspo-bidsapp", "Version": __version__}
    assert description["SourceDatasets"] == [{"URL": bids.as_uri(), "DOI": "10.0/tiny"}]
    (saved,) = (out / "logs").glob("config-*.json")
    assert json.loads(saved.read_text())["participant_label"] == ["02"]

    for run, n in ((1, 6), (2, 4)):
        stem = out / f"sub-02/pet/sub-02_trc-PBR28_run-{run}_desc-imagemean_tacs"
        table = np.genfromtxt(f"{stem}.tsv", delimiter="\t", names=True)
        timing = pet_sidecar(n)
        np.testing.assert_allclose(table["frame_start"], timing["FrameTimesStart"])
        np.testing.assert_allclose(table["frame_duration"], timing["FrameDuration"])
        np.testing.assert_allclose(table["frame_end"], np.add(timing["FrameTimesStart"],
                                                              timing["FrameDuration"]))  # fmt: skip
        np.testing.assert_allclose(table["image_mean"], frame_values(n), rtol=1e-6)
        meta = json.loads(stem.with_suffix(".json").read_text())
        assert meta["NumberOfFrames"] == n and meta["Tracer"] == "PBR28"
        assert meta["TSPOGenotype"] == "LAB" and meta["ExcludeFromGroupStatistics"] is True
        assert meta["Sources"] == [f"bids:raw:sub-02/pet/sub-02_trc-PBR28_run-{run}_pet.nii.gz"]

    # group level: sub-02 complete, sub-01 reported missing
    assert main([*common, "group", "-w", str(work)]) == 0
    rows = {r["participant_id"]: r for r in _rows(out / "group/participants.tsv")}
    assert rows["sub-02"]["status"] == "complete" and rows["sub-02"]["processed_runs"] == "2"
    assert rows["sub-02"]["tspo_genotype"] == "LAB" and rows["sub-02"]["group"] == "HC"
    assert rows["sub-01"]["status"] == "missing" and rows["sub-01"]["edss"] == "2.5"
    assert rows["sub-01"]["missing_runs"] == "sub-01_ses-base_trc-PBR28_pet.nii.gz"
    assert "sub-01: 1 of 1 PET run(s) have no participant-level outputs" in caplog.text
    assert len(list((out / "logs").glob("config-*.json"))) == 2
    assert snapshot(bids) == before


def test_dataset_description_is_not_overwritten(bids, tmp_path):
    config = parse_args([str(bids), str(tmp_path / "out"), "participant"])
    config.output_dir.mkdir()
    target = config.output_dir / "dataset_description.json"
    target.write_text(json.dumps({"DatasetType": "derivative", "GeneratedBy": [{"Name": "x"}]}))
    write_dataset_description(config)
    assert json.loads(target.read_text())["GeneratedBy"] == [{"Name": "x"}]
    target.write_text("{broken")
    write_dataset_description(config)
    assert json.loads(target.read_text())["Name"] == "tspo-bidsapp derivatives"
    assert sorted(p.name for p in config.output_dir.iterdir()) == ["dataset_description.json"]
