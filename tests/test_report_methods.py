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


def _pvc_run(out, label, *, regional, maps, rule):
    """A run's kinpar, DVR map and lesion table with the sidecars the workflow writes."""
    import json

    import nibabel as nib
    import numpy as np

    pet = out / f"sub-{label}" / "pet"
    pet.mkdir(parents=True)
    stem = f"sub-{label}_trc-PBR28"
    tag = "model-SRTM_ref-cerebellum"
    (pet / f"{stem}_{tag}_kinpar.tsv").write_text("region\tBPND\tDVR\nNAWM\t0.2\t1.2\n")
    (pet / f"{stem}_{tag}_kinpar.json").write_text(json.dumps(regional))
    dvr = pet / f"{stem}_space-T1w_{tag}_meas-DVR_mimap.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), dvr)
    dvr.with_name(dvr.name.replace(".nii.gz", ".json")).write_text(json.dumps(maps))
    (pet / f"{stem}_{tag}_desc-lesions_kinpar.tsv").write_text(
        "lesion_id\tvolume_ml\tcore_DVR\trim_DVR\tphenotype\n1\t0.3\t1.1\t1.4\trim-active\n"
    )
    (pet / f"{stem}_{tag}_desc-lesions_kinpar.json").write_text(
        json.dumps({"PhenotypeRule": rule.as_dict()})
    )


def _sections(html: str) -> dict:
    import re

    return {key: re.search(rf'<section id="{key}".*?</section>', html, re.S).group(0)
            for key in ("kinetics", "lesions", "methods")}  # fmt: skip


def test_report_says_which_correction_maps_fits_and_phenotypes_carry(tmp_path):
    """RBV run: fits GTM-regional (sidecar 'RBV'), maps RBV, lesion rule on the RBV map; the
    resolution in the methods is the sidecar's (4.5 mm), not the configuration's (5.5 mm)."""
    from tspo_bidsapp.quant.phenotypes import PhenotypeRule
    from tspo_bidsapp.reports import build_participant_report

    meta = {"PartialVolumeCorrection": "RBV", "PETFWHMmm": [4.5],
            "PartialVolumeCorrectionMethod": "RBV (Thomas et al. 2011) on the GTM"}  # fmt: skip
    _pvc_run(tmp_path, "01", regional=meta, maps=meta,
             rule=PhenotypeRule(method="lesion", correction="rbv"))  # fmt: skip
    cfg = _config(pvc="rbv", pet_fwhm_mm=5.5)
    html = build_participant_report(tmp_path, "01", config=cfg).read_text()
    sec = _sections(html)
    assert "regional fits" in sec["kinetics"] and "RBV-corrected (voxel-wise)" in sec["kinetics"]
    assert "lesion rule" in sec["lesions"] and "3-6 mm" in sec["lesions"]
    assert "DVR map RBV-corrected (voxel-wise)" in sec["lesions"]
    methods = sec["methods"]
    assert "region-based voxel-wise correction (RBV)" in methods and "4.5 mm FWHM" in methods
    assert "5.5" not in methods and "were not corrected" not in methods
    assert "RBV partial-volume-corrected DVR map" in methods and "3-6 mm" in methods
    assert "Thomas BA et al." in html and "Rousset OG" in html  # cited: RBV on the GTM


def test_report_says_phenotypes_come_from_per_lesion_corrected_tacs(tmp_path):
    """GTM run, lesion rule on the DVR of every lesion core's and rim's corrected TAC."""
    from tspo_bidsapp.quant.phenotypes import PhenotypeRule
    from tspo_bidsapp.reports import build_participant_report

    meta = {"PartialVolumeCorrection": "GTM", "PETFWHMmm": [4.5]}
    rule = PhenotypeRule(method="lesion", correction="gtm", values="regional")
    _pvc_run(tmp_path, "03", regional=meta, maps={"PartialVolumeCorrection": "none"}, rule=rule)
    html = build_participant_report(tmp_path, "03", config=_config(pvc="gtm")).read_text()
    sec = _sections(html)
    assert "per-lesion core and rim TACs, GTM-corrected (regional)" in sec["lesions"]
    assert "DVR map" not in sec["lesions"].split("phenotype rule")[1][:300]
    assert "own GTM partial-volume-corrected TAC" in sec["methods"]
    assert "partial-volume-corrected DVR map" not in sec["methods"]


def test_report_of_an_uncorrected_run_with_a_class_threshold(tmp_path):
    """No PVC, voxel rule with the MAB controls' threshold 1.18."""
    from tspo_bidsapp.quant.phenotypes import PhenotypeRule
    from tspo_bidsapp.reports import build_participant_report

    none = {"PartialVolumeCorrection": "none"}
    rule = PhenotypeRule(1.18, threshold_source="healthy-controls", threshold_k=2.0,
                         threshold_class="MAB")  # fmt: skip
    _pvc_run(tmp_path, "02", regional=none, maps=none, rule=rule)
    sec = _sections(build_participant_report(tmp_path, "02", config=_config()).read_text())
    assert "not partial-volume corrected" in sec["kinetics"]
    rule_item = "voxel rule (DVR &gt; 1.18, MAB controls); DVR map not partial-volume corrected"
    assert rule_item in sec["lesions"]
    assert "geometric transfer" not in sec["methods"]
    assert "uncorrected DVR map" in sec["methods"]
    assert "mean + 2 SD of MAB healthy controls" in sec["methods"]


def test_voxelwise_estimator_is_the_one_the_run_used():
    facts = RunFacts(models=["SRTM"], segmentation="computed: SAMSEG (T1w only)")
    body, cited = methods_paragraphs(_config(voxelwise_estimator="lrsc"), facts)
    assert "linear regression with spatial constraint [lrsc]" in " ".join(body)
    assert "lrsc" in cited and "bfm" not in cited
    body, cited = methods_paragraphs(_config(voxelwise_estimator="bfm"), facts)
    assert "voxel-wise basis functions [bfm]" in " ".join(body) and "srtm2" not in cited
    body, cited = methods_paragraphs(_config(), facts)  # unset: the default, bfm-block
    assert "2x2x2-voxel block" in " ".join(body) and {"bfm", "srtm2"} <= set(cited)
