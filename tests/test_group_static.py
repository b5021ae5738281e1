"""Static (single-frame) runs at the group level: SUVR and SUV tables reach the study table,
SUVR is the outcome of the SUVR model's statistics, and the active threshold of the second
pass comes from the controls' static SUVR maps."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.anat.labels import TSPOMS_INDEX, TSPOMS_LABELS, write_dseg_tsv
from tspo_bidsapp.group import GroupOptions, analyse
from tspo_bidsapp.group.collect import collect
from tspo_bidsapp.io.participants import ParticipantInfo
from tspo_bidsapp.io.thresholds import read_threshold_file

SUVR = {"NAWM": 1.10, "thalamus": 1.40, "cortical-GM": 1.20, "cerebellar-GM-reference": 1.0}
VOLUMES = {"NAWM": 400.0, "thalamus": 15.0, "cortical-GM": 500.0, "cerebellar-GM-reference": 60.0}
SPMS_NAWM = 0.20  # SPMS - HC, NAWM SUVR
REF_SUV = 1.5  # cerebellar SUV: SUV = SUVR x 1.5
NOISE, VOXEL_SD = 0.03, 0.05
SHAPE = (6, 6, 6)


def _write(out, label, group, rng):
    pet, anat = out / f"sub-{label}/pet", out / f"sub-{label}/anat"
    pet.mkdir(parents=True)
    anat.mkdir(parents=True)
    stem = f"sub-{label}_trc-GE180"
    values = {r: v + (rng.normal(0, NOISE) if r != "cerebellar-GM-reference" else 0.0)
              for r, v in SUVR.items()}  # fmt: skip
    values["NAWM"] += SPMS_NAWM * (group == "SPMS")
    rows = pd.DataFrame({"region": list(values), "SUVR": list(values.values()),
                         "volume_ml": [VOLUMES[r] for r in values], "tspo_genotype": "HAB",
                         "fit_quality": "ok"})  # fmt: skip
    rows.to_csv(pet / f"{stem}_model-SUVR_ref-cerebellum_kinpar.tsv", sep="\t", index=False)
    rows.assign(SUV=rows["SUVR"] * REF_SUV)[["region", "SUV"]].to_csv(
        pet / f"{stem}_model-SUV_kinpar.tsv", sep="\t", index=False
    )
    dseg = np.zeros(SHAPE, np.uint8)
    dseg[1:5, 1:5, 1:5] = TSPOMS_INDEX["NAWM"]
    dseg[2:4, 2:4, 2:4] = TSPOMS_INDEX["thalamus"]  # must not enter the threshold
    nawm = dseg == TSPOMS_INDEX["NAWM"]
    suvr = np.where(nawm, rng.normal(values["NAWM"], VOXEL_SD, SHAPE), 2.5).astype(np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    name = f"{stem}_space-T1w_model-SUVR_ref-cerebellum_meas-SUVR_mimap.nii.gz"
    nib.save(nib.Nifti1Image(suvr, affine), pet / name)
    nib.save(nib.Nifti1Image(dseg, affine), anat / f"sub-{label}_seg-tspoms_dseg.nii.gz")
    write_dseg_tsv(anat / f"sub-{label}_seg-tspoms_dseg.tsv", TSPOMS_LABELS)
    return values, suvr[nawm]


@pytest.fixture(scope="module")
def static_study(tmp_path_factory):
    rng = np.random.default_rng(7)
    out = tmp_path_factory.mktemp("static") / "derivatives"
    people, values, hc_voxels = {}, {}, []
    for k, group in enumerate(["HC"] * 6 + ["SPMS"] * 6):
        label = f"{k + 1:02d}"
        people[label] = ParticipantInfo(label, group, 40.0 + (5 * k) % 12, "F" if k % 2 else "M",
                                        0.0 if group == "HC" else 5.0, "HAB")  # fmt: skip
        values[label], voxels = _write(out, label, group, rng)
        if group == "HC":
            hc_voxels.append(voxels)
    group_dir = out / "group"
    group_dir.mkdir()
    tables = analyse(collect(out), people, group_dir, GroupOptions(min_controls=3))
    return group_dir, tables, values, np.concatenate(hc_voxels).astype(np.float64)


def test_static_suvr_and_suv_in_the_study_table(static_study):
    _, tables, values, _ = static_study
    study = tables["study"].set_index(["participant_id", "model"])
    for label in ("01", "12"):
        assert study.loc[(f"sub-{label}", "SUVR"), "NAWM_SUVR"] == pytest.approx(
            values[label]["NAWM"], rel=1e-5
        )
        assert study.loc[(f"sub-{label}", "SUV"), "NAWM_SUV"] == pytest.approx(
            values[label]["NAWM"] * REF_SUV, rel=1e-5
        )
    assert study.loc[("sub-01", "SUVR"), "ref"] == "cerebellum"


def test_static_suvr_is_the_outcome_of_the_statistics(static_study):
    _, tables, values, _ = static_study
    stats = tables["statistics"]
    suvr = stats[(stats["model"] == "SUVR") & (stats["region"] == "NAWM")
                 & (stats["contrast"] == "SPMS-HC")]  # fmt: skip
    assert len(suvr) == 1 and (suvr["measure"] == "SUVR").all()
    # observed group difference of the written values; the planted one within 3 SE
    nawm = {k: v["NAWM"] for k, v in values.items()}
    observed = np.mean([nawm[f"{k:02d}"] for k in range(7, 13)]) - np.mean(
        [nawm[f"{k:02d}"] for k in range(1, 7)]
    )
    row = suvr.iloc[0]
    assert row["estimate"] == pytest.approx(observed, abs=0.02)  # age/sex adjusted
    assert row["estimate"] == pytest.approx(SPMS_NAWM, abs=3 * NOISE * np.sqrt(2 / 6) + 0.02)
    assert row["q"] < 0.001
    suv = stats[(stats["model"] == "SUV") & (stats["region"] == "NAWM")]
    assert suv.empty or (suv["measure"] == "SUV").all()


def test_active_threshold_from_controls_static_suvr(static_study):
    """mean + 2 SD of the controls' NAWM SUVR voxels; readable by --active-threshold-file."""
    group_dir, _, _, voxels = static_study
    path = group_dir / "tracer-GE180_model-SUVR_ref-cerebellum_desc-activethresholdHAB.json"
    part = json.loads(path.read_text())
    expect = voxels.mean() + 2.0 * voxels.std(ddof=1)
    assert part["threshold_dvr"] == pytest.approx(expect, rel=1e-5)
    assert part["n_controls"] == 6 and part["n_voxels"] == voxels.size
    assert part["measure"] == "SUVR"
    assert read_threshold_file(path).threshold_dvr == pytest.approx(expect, rel=1e-5)


def test_second_pass_phenotypes_from_static_suvr(static_study, tmp_path):
    """The controls' SUVR threshold drives a static run's lesion phenotypes on its SUVR map."""
    from test_input_data import make_dataset, pet_sidecar, write_pet

    from tspo_bidsapp.config import Config
    from tspo_bidsapp.interfaces.pvc import LesionPhenotypes
    from tspo_bidsapp.io.bids_input import collect_data
    from tspo_bidsapp.workflows.base import init_pet_wf
    from tspo_bidsapp.workflows.quant import pick_dvr

    group_dir, _, _, voxels = static_study
    path = group_dir / "tracer-GE180_model-SUVR_ref-cerebellum_desc-activethresholdHAB.json"
    threshold = read_threshold_file(path).threshold_dvr
    bids = make_dataset(tmp_path / "bids")
    meta = pet_sidecar(n_frames=1, FrameTimesStart=[3600], FrameDuration=[1800])
    write_pet(bids / "sub-01/ses-base/pet/sub-01_ses-base_trc-PBR28_pet.nii.gz", 1, meta)
    subjects, _ = collect_data(bids, participant_label=("01",))
    config = Config(analysis_level="participant", bids_dir=bids, output_dir=tmp_path / "out",
                    work_dir=tmp_path / "work", active_threshold=threshold,
                    active_threshold_file=path)  # fmt: skip
    wf = init_pet_wf(config=config, subject=subjects[0], run=subjects[0].pet_runs[0])
    assert wf.get_node("pet_quant_wf.phenotypes").inputs.threshold_dvr == threshold
    assert pick_dvr(["a", "b"], ["SUVR", "SUVR"], ["SUVR", "SUV"], ["SUVR"]) == ("a", "SUVR")
    # a lesion whose core SUVR lies above the threshold, in NAWM at the controls' mean
    suvr = np.full((7, 7, 7), voxels.mean(), np.float32)
    suvr[3, 3, 3] = threshold + 0.1
    ids = np.zeros((7, 7, 7), np.int32)
    ids[3, 3, 3] = 1
    files = {}
    for name, arr in (("suvr", suvr), ("ids", ids), ("wm", np.ones((7, 7, 7), np.uint8))):
        files[name] = str(tmp_path / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(arr, np.diag([2.0, 2.0, 2.0, 1.0])), files[name])
    res = LesionPhenotypes(dvr_file=files["suvr"], lesion_ids=files["ids"], wm_mask=files["wm"],
                           threshold_dvr=threshold).run(cwd=str(tmp_path)).outputs  # fmt: skip
    assert pd.read_csv(res.out_tsv, sep="\t").loc[0, "phenotype"] == "overall-active"
