"""The command line: parsing, exit codes, and a participant + group run on a tiny dataset."""

from __future__ import annotations

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


def test_group_before_participant_level(bids, tmp_path):
    """Nothing to collect yet: exit 66 and nothing written (the full participant + group
    run is exercised on the synthetic dataset in test_pipeline_e2e.py)."""
    out, work = tmp_path / "derivatives", tmp_path / "work"
    before = snapshot(bids)
    assert main([str(bids), str(out), "group", "-w", str(work)]) == 66
    assert not out.exists()
    assert snapshot(bids) == before


def test_run_summary_matches_the_sidecar(bids, tmp_path):
    """The per-run check of the image against its validated sidecar (image-wide mean TAC)."""
    from tspo_bidsapp.interfaces.bids import SummarizePETRun

    for run, n in ((1, 6), (2, 4)):
        stem = bids / f"sub-02/pet/sub-02_trc-PBR28_run-{run}_pet"
        node = SummarizePETRun(
            pet_file=str(stem.with_suffix(".nii.gz")),
            sidecar_file=str(stem.with_suffix(".json")),
            metadata={"TSPOGenotype": "LAB"},
        )
        cwd = tmp_path / f"run{run}"
        cwd.mkdir()
        result = node.run(cwd=str(cwd))
        table = np.genfromtxt(result.outputs.out_tsv, delimiter="\t", names=True)
        timing = pet_sidecar(n)
        np.testing.assert_allclose(table["frame_start"], timing["FrameTimesStart"])
        np.testing.assert_allclose(table["frame_duration"], timing["FrameDuration"])
        np.testing.assert_allclose(table["frame_end"], np.add(timing["FrameTimesStart"],
                                                              timing["FrameDuration"]))  # fmt: skip
        np.testing.assert_allclose(table["image_mean"], frame_values(n), rtol=1e-6)
        meta = result.outputs.out_meta
        assert meta["NumberOfFrames"] == n and meta["Tracer"] == "PBR28"
        assert meta["TSPOGenotype"] == "LAB"


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


def test_quantification_options_build_config(bids, tmp_path):
    classes = tmp_path / "classes.tsv"
    classes.write_text("time\tgrey_matter\twhite_matter\tblood\thigh_binding\n"
                       "0.5\t1\t0.5\t3\t1\n60\t0.8\t0.7\t0.1\t1.2\n")  # fmt: skip
    thr = tmp_path / "threshold.json"
    thr.write_text(json.dumps({"threshold_dvr": 1.23, "k": 2}))
    deriv = tmp_path / "lesions"
    deriv.mkdir()
    config = parse_args([
        str(bids), str(tmp_path / "out"), "participant", "--ref-region", "svca",
        "--svca-classes", str(classes), "--models", "srtm", "Logan", "SUVR,mrtm2",
        "--suvr-window", "40", "60", "--logan-tstar", "20", "--k2prime", "0.35",
        "--active-threshold-file", str(thr), "--active-k", "2.5", "--pvc", "gtm",
        "--pet-fwhm", "4.5", "--hmc-start-time", "60", "--hmc-off", "--fd-threshold", "0.5",
        "--derivatives", str(deriv), "--min-lesion-size", "20", "--lesion-threshold", "0.4",
    ])  # fmt: skip
    assert config.ref_region == "svca" and config.svca_classes == classes
    assert config.models == ("SRTM", "Logan", "SUVR", "MRTM2")
    assert config.suvr_window_min == (40.0, 60.0) and config.logan_tstar_min == 20.0
    assert config.k2prime == 0.35 and config.active_threshold == 1.23
    assert config.active_threshold_file == thr and config.active_k == 2.5
    assert (config.pvc, config.pet_fwhm_mm) == ("gtm", 4.5)
    assert (config.hmc, config.hmc_start_time_s, config.fd_threshold_mm) == (False, 60.0, 0.5)
    assert config.derivatives == (deriv,) and config.min_lesion_volume_mm3 == 20.0
    assert config.lesion_threshold == 0.4
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    rbv = parse_args([str(bids), str(tmp_path / "out"), "participant", "--pvc", "rbv",
                      "--pet-fwhm", "4.5", "4.5", "5.5"])  # fmt: skip
    assert (rbv.pvc, rbv.pet_fwhm_mm) == ("rbv", (4.5, 4.5, 5.5))
    assert Config.from_dict(json.loads(json.dumps(rbv.to_dict()))) == rbv
    default = parse_args([str(bids), str(tmp_path / "out"), "participant"])
    assert (default.ref_region, default.models, default.pvc) == ("cerebellum", ("SRTM",), "none")
    assert default.suvr_window_min is None and default.hmc and default.hmc_start_time_s == 120.0
    assert default.active_threshold is None and default.active_k == 2.0


@pytest.mark.parametrize(
    ("extra", "code", "text"),
    [
        (["--ref-region", "pons"], 64, "--ref-region must be one of"),
        (["--ref-region", "svca"], 66, "--svca-classes"),
        (["--ref-region", "svca", "--svca-classes", "{bad}"], 66, "--svca-classes"),
        (["--models", "srtm", "3tcm"], 64, "unknown model '3tcm'"),
        (["--models", "1tcm", "ma1"], 16, "need an arterial input"),
        (["--models", "srtm", "1tcm", "--vb", "1.5"], 64, "--vb must be a fraction"),
        (["--suvr-window", "60", "40"], 64, "--suvr-window"),
        (["--logan-tstar", "-5"], 64, "--logan-tstar must be at least 0"),
        (["--k2prime", "0"], 64, "--k2prime must be positive"),
        (["--pvc", "gtm"], 64, "--pet-fwhm"),
        (["--pvc", "mg"], 64, "--pvc must be one of"),
        (["--pvc", "rbv"], 64, "--pvc rbv needs the PET resolution"),
        (["--pet-fwhm", "4", "5"], 64, "--pet-fwhm takes one value or three"),
        (["--pet-fwhm", "4", "5", "0"], 64, "--pet-fwhm must be positive"),
        (["--pet-fwhm", "-1"], 64, "--pet-fwhm must be positive"),
        (["--active-threshold", "1.2", "--active-threshold-file", "{bad}"], 64, "not allowed"),
        (["--active-threshold-file", "{missing}"], 66, "--active-threshold-file"),
        (["--active-threshold-file", "{bad}"], 64, "threshold_dvr"),
        (["--active-k", "0"], 64, "--active-k"),
        (["--fd-threshold", "0"], 64, "--fd-threshold"),
        (["--hmc-start-time", "x"], 64, "invalid float"),
        (["--derivatives", "{missing}"], 66, "--derivatives"),
        (["--lesion-threshold", "1.5"], 64, "--lesion-threshold"),
    ],
)
def test_quantification_option_errors(bids, tmp_path, capsys, extra, code, text):
    bad = tmp_path / "bad.tsv"
    bad.write_text("time\tgm\n1\t2\n")
    paths = {"bad": bad, "missing": tmp_path / "nope"}
    args = [str(bids), str(tmp_path / "out"), "participant"] + [a.format(**paths) for a in extra]
    assert main(args) == code
    assert text in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_help_shows_only_real_defaults(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "default: all (default" not in text
    assert "flagged (default: 1.0)" in text  # --fd-threshold: the motion-correction default
