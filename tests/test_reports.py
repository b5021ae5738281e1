"""The participant report, built from derivatives written from a synthetic participant's truth."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")

import numpy as np
import pytest
from test_reports_data import PREFIX, synthetic_dataset, write_truth_derivatives

from tspo_bidsapp.reports import WarningCollector, build_participant_report
from tspo_bidsapp.reports.__main__ import main as report_main
from tspo_bidsapp.reports.figures import flagged_frames, plot_kinetic_fits

SECTION_IDS = ("summary", "motion", "coregistration", "anatomy", "reference", "kinetics",
               "lesions", "methods")  # fmt: skip


def built_report(tmp_path_factory, study) -> tuple[Path, dict]:
    """The full report of sub-01 (built once per session); returns (OUTPUT_DIR, expected)."""
    bids, truth = synthetic_dataset(study)
    out = tmp_path_factory.getbasetemp() / "report-full" / "derivatives"
    if not (out / "sub-01.html").exists():
        expected = write_truth_derivatives(bids, truth, out)
        build_participant_report(out, "01", config={"bids_dir": str(bids), "nprocs": 1},
                                 warnings=["tspo_bidsapp: a logged warning"])  # fmt: skip
        np.save(out.parent / "fd.npy", expected["fd"])
    return out, {"fd": np.load(out.parent / "fd.npy")}


@pytest.fixture(scope="module")
def report(tmp_path_factory, synthetic_study):
    out, expected = built_report(tmp_path_factory, synthetic_study)
    return out, (out / "sub-01.html").read_text(), expected


def section(html: str, key: str) -> str:
    match = re.search(rf'<section id="{key}" data-status="([^"]+)">(.*?)</section>', html, re.S)
    assert match, f"section {key} missing"
    return match.group(1) + "|" + match.group(2)


def test_sections_in_order_and_all_ok(report):
    _, html, _ = report
    positions = [html.index(f'<section id="{key}"') for key in SECTION_IDS]
    assert positions == sorted(positions)
    for key in SECTION_IDS:
        assert section(html, key).startswith("ok|"), key


def test_every_figure_exists_and_is_light(report):
    out, html, _ = report
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) >= 12
    total = 0
    for src in sources:
        path = out / src
        assert path.parent == out / "sub-01" / "figures" and path.stat().st_size > 1000, src
        assert path.suffix in (".svg", ".png")
        total += path.stat().st_size
    assert total < 3_000_000  # a few MB at most for a whole participant
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_motion_flags_the_frames_the_truth_moves(report):
    """Frames (numbered from 1) above the threshold the run recorded, not a report default."""
    out, html, expected = report
    fd = expected["fd"]
    meta = json.loads(next(out.rglob("*_desc-confounds_timeseries.json")).read_text())
    recorded = meta["motion_outlier"]["Threshold"]
    truth_flags = [i + 1 for i in np.flatnonzero(fd > recorded)]
    assert truth_flags, "the synthetic motion should exceed the threshold"
    text = section(html, "motion")
    assert f"(FD &gt; {recorded:g} mm)</dt><dd>{', '.join(map(str, truth_flags))}</dd>" in text
    assert f"{fd.max():.2f} mm" in text
    assert flagged_frames(np.array([0.0, 0.6, np.nan, 0.4]), 0.5) == [1]


def test_kinetic_fits_of_true_parameters_match_the_truth_curves(report, tmp_path):
    """With the true R1, k2, BPND the SRTM curves reproduce the noise-free TACs (< 1 % RMS)."""
    out, html, _ = report
    pet = out / "sub-01" / "pet"
    residuals = plot_kinetic_fits(
        pet / f"{PREFIX}_seg-tspoms_desc-preproc_tacs.tsv",
        pet / f"{PREFIX}_ref-cerebellum_desc-preproc_tacs.tsv",
        pet / f"{PREFIX}_model-SRTM_ref-cerebellum_kinpar.tsv",
        tmp_path / "fits.svg", model="SRTM",
    )  # fmt: skip
    assert set(residuals) >= {"thalamus", "cortical-GM", "NAWM", "WM-lesions"}
    assert max(residuals.values()) < 0.01
    # a wrong BPND is visible in the residuals
    kinpar = (pet / f"{PREFIX}_model-SRTM_ref-cerebellum_kinpar.tsv").read_text()
    wrong = tmp_path / "wrong_kinpar.tsv"
    lines = kinpar.splitlines()
    header = lines[0].split("\t")
    rows = [ln.split("\t") for ln in lines[1:]]
    for row in rows:
        if row[0] == "thalamus":
            row[header.index("BPND")] = "0.8"
    wrong.write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in rows]) + "\n")
    bad = plot_kinetic_fits(
        pet / f"{PREFIX}_seg-tspoms_desc-preproc_tacs.tsv",
        pet / f"{PREFIX}_ref-cerebellum_desc-preproc_tacs.tsv", wrong, tmp_path / "bad.svg",
        model="SRTM",
    )  # fmt: skip
    assert bad["thalamus"] > 0.05
    assert "voxels at grid edges</dt><dd>2.50%" in section(html, "kinetics")


def test_lesion_table_and_summary(report):
    out, html, _ = report
    lesions = section(html, "lesions")
    import pandas as pd

    table = pd.read_csv(out / "sub-01/pet" / f"{PREFIX}_model-SRTM_ref-cerebellum_desc-lesions_kinpar.tsv",
                        sep="\t")  # fmt: skip
    assert lesions.count("<tr>") - 1 == len(table)  # header row + one row per lesion
    for phenotype, count in table["phenotype"].value_counts().items():
        assert f"{phenotype}: {count}" in lesions
    summary = section(html, "summary")
    assert "a logged warning" in summary and "PBR28" in summary and "RRMS" in summary
    assert "sub-01/anat/sub-01_FLAIR.nii.gz" in summary
    methods = section(html, "methods")
    for ref in ("Lammertsma", "Gunn", "Cerri", "Avants", "Gorgolewski", "Yarkoni"):
        assert ref in methods


def test_missing_and_failed_stages_are_reported(report, tmp_path):
    """Only motion outputs plus a crash file of the kinetics stage: the report says so."""
    out, _, _ = report
    partial = tmp_path / "derivatives"
    (partial / "sub-01" / "pet").mkdir(parents=True)
    for name in (f"{PREFIX}_desc-confounds_timeseries.tsv", f"{PREFIX}_desc-hmc_petref.nii.gz"):
        shutil.copy(out / "sub-01" / "pet" / name, partial / "sub-01" / "pet" / name)
    crash = partial / "logs" / "crash-run1" / "crash-20260101-120000-user-fit_srtm-abc.txt"
    crash.parent.mkdir(parents=True)
    crash.write_text("Node: tspo_bidsapp_wf.sub_01_wf.pet_x_wf.fit_srtm\n\nTraceback (most "
                     "recent call last):\n  File x\nValueError: reference TAC is empty\n")  # fmt: skip
    other = crash.with_name("crash-20260101-120000-user-hmc-def.txt")
    other.write_text("Node: tspo_bidsapp_wf.sub_02_wf.pet_y_wf.hmc\nRuntimeError: other subject\n")
    handler = WarningCollector()
    import logging

    logger = logging.getLogger("tspo_bidsapp.test")
    logger.addHandler(handler)
    logger.warning("frame 3 has no counts")
    logger.removeHandler(handler)
    html = build_participant_report(partial, "sub-01", warnings=handler.warnings).read_text()
    assert section(html, "motion").startswith("ok|")
    kinetics = section(html, "kinetics")
    assert kinetics.startswith("failed|") and "ValueError: reference TAC is empty" in kinetics
    for key in ("coregistration", "anatomy", "reference", "lesions"):
        assert section(html, key).startswith("not run|"), key
    assert "frame 3 has no counts" in section(html, "summary")
    assert "other subject" not in html


def test_cli_rebuilds_the_report(report, capsys):
    out, _, _ = report
    before = (out / "sub-01.html").stat().st_mtime_ns
    assert report_main([str(out), "--participant-label", "01"]) == 0
    assert (out / "sub-01.html").stat().st_mtime_ns >= before
    assert capsys.readouterr().out.strip().endswith("sub-01.html")
    assert report_main([str(out / "nothing")]) == 2
