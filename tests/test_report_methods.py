"""The methods text says what the run's configuration and derivatives say was done."""

from __future__ import annotations

from tspo_bidsapp.config import Config
from tspo_bidsapp.reports.methods import RunFacts, methods_paragraphs


def _config(**changes) -> dict:
    return Config(bids_dir="/bids", output_dir="/out", analysis_level="participant",
                  work_dir="/work", **changes).to_dict()  # fmt: skip


def test_supplied_segmentation_gtm_and_settings_are_reported():
    cfg = _config(hmc_start_time_s=90.0, fd_threshold_mm=0.7, pvc="gtm", pet_fwhm_mm=6.5,
                  models=("SRTM", "Logan"), logan_tstar_min=25.0)  # fmt: skip
    facts = RunFacts(
        tracer="[11C]PBR28", n_frames=22, models=["SRTM", "Logan"], references=["cerebellum"],
        has_flair=True, segmentation="supplied: /d/sub-01_dseg.nii.gz (/d/sub-01_dseg.tsv)",
        lesion_source="supplied: /d/sub-01_label-lesion_mask.nii.gz", pvc_gtm=True,
        phenotype_rule={"threshold_dvr": 1.2345, "rim_mm": 2.0,
                        "threshold_source": "healthy-controls", "threshold_k": 2.0},
    )  # fmt: skip
    text, cited = methods_paragraphs(cfg, facts)
    body = " ".join(text)
    assert "segmentation was supplied by the user" in body and "SAMSEG" not in body
    assert "samseg" not in cited
    assert "at or after 90 s" in body and "above 0.7 mm" in body
    assert "geometric transfer matrix" in body and "6.5 mm FWHM" in body and "gtm" in cited
    assert "t* = 25 min" in body and "(22 frames)" in body
    assert "DVR > 1.23" in body and "mean + 2 SD of healthy controls" in body


def test_computed_segmentation_no_pvc_and_recorded_fd_wins():
    cfg = _config(hmc=False, fd_threshold_mm=1.0)
    facts = RunFacts(models=["SRTM"], segmentation="computed: SAMSEG (T1w only)",
                     lesion_source="none", fd_threshold_mm=0.9)  # fmt: skip
    body = " ".join(methods_paragraphs(cfg, facts)[0])
    assert "computed with SAMSEG [samseg] from the T1w" in body
    assert "lesions were not segmented" in body
    assert "motion correction" in body.lower() and "was off" in body
    assert "geometric transfer" not in body and "Logan" not in body and "phenotypes" not in body
    cfg = _config(fd_threshold_mm=1.0)
    body = " ".join(methods_paragraphs(cfg, facts)[0])
    assert "above 0.9 mm" in body  # the threshold the run recorded, not the configured one


def test_report_methods_follow_the_run_config_and_anatomy_record(tmp_path):
    """The participant report's methods: segmentation source from the anatomy record written
    by the anatomy workflow, thresholds from the saved configuration."""
    import json
    import re

    from tspo_bidsapp.anat.supplied import SuppliedAnat
    from tspo_bidsapp.io import derivatives as D
    from tspo_bidsapp.reports import build_participant_report
    from tspo_bidsapp.workflows.anat import anat_sources

    anat = tmp_path / "sub-01" / "anat"
    anat.mkdir(parents=True)
    supplied = SuppliedAnat(dseg=tmp_path / "d.nii.gz", dseg_tsv=tmp_path / "d.tsv",
                            lesion_mask=tmp_path / "l.nii.gz")  # fmt: skip
    sources, _ = anat_sources(supplied, has_flair=True)  # what the workflow records
    (anat / f"sub-01_{D.ANAT_SOURCES.tail()}").write_text(json.dumps(sources))
    cfg = _config(hmc_start_time_s=75.0, fd_threshold_mm=0.8)
    html = build_participant_report(tmp_path, "01", config=cfg).read_text()
    methods = re.search(r'<section id="methods".*?</section>', html, re.S).group(0)
    assert "segmentation was supplied by the user" in methods
    assert "lesion mask was supplied by the user" in methods and "SAMSEG" not in methods
    summary = re.search(r'<section id="summary".*?</section>', html, re.S).group(0)
    assert "fd_threshold_mm=0.8" in summary and "hmc_start_time_s=75.0" in summary


def test_rebuilt_report_takes_the_participant_run_settings_not_the_group_run(tmp_path):
    import json
    import os
    import time

    from tspo_bidsapp.reports.collect import latest_config

    logs = tmp_path / "logs"
    logs.mkdir()
    runs = [("participant", ["01"], "gtm"), ("participant", ["02"], "none"), ("group", [], "none")]
    for i, (level, labels, pvc) in enumerate(runs):
        path = logs / f"config-{i}.json"
        path.write_text(json.dumps({"analysis_level": level, "participant_label": labels,
                                    "pvc": pvc}))  # fmt: skip
        os.utime(path, (time.time() + i, time.time() + i))  # the group run is the newest
    assert latest_config(tmp_path, "01")["pvc"] == "gtm"
    assert latest_config(tmp_path, "02")["pvc"] == "none"
    assert latest_config(tmp_path, "03") == {}
