"""Group level on a synthetic study with built-in effects: tables, statistics, controls,
longitudinal change and a voxel-wise model (ground truth known by construction)."""

from __future__ import annotations

import json
import logging

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.anat.labels import TSPOMS_LABELS, write_dseg_tsv
from tspo_bidsapp.group import GroupOptions, analyse
from tspo_bidsapp.group.collect import collect, parse_name
from tspo_bidsapp.group.controls import (
    ControlTACs,
    TooFewControls,
    class_thresholds,
    svca_classes,
)
from tspo_bidsapp.group.longitudinal import match_lesions
from tspo_bidsapp.io.participants import ParticipantInfo
from tspo_bidsapp.io.timing import FrameTiming
from tspo_bidsapp.kinetics.kinpar import KineticResult
from tspo_bidsapp.quant.regional import model_table
from tspo_bidsapp.quant.svca import CLASS_NAMES, OPTIONAL_CLASSES, read_svca_classes
from tspo_bidsapp.quant.tacs import write_tacs_tsv

BASE = {"NAWM": 1.20, "thalamus": 1.50, "cortical-GM": 1.30, "putamen": 1.35,
        "caudate": 1.30, "pallidum": 1.40, "choroid-plexus": 1.80,
        "cerebellar-GM-reference": 1.0, "ventricles": 1.0}  # fmt: skip
VOLUMES = {"NAWM": 400.0, "thalamus": 15.0, "cortical-GM": 500.0, "putamen": 10.0,
           "caudate": 8.0, "pallidum": 3.0, "choroid-plexus": 2.0,
           "cerebellar-GM-reference": 60.0, "ventricles": 20.0}  # fmt: skip
SPMS_NAWM = 0.15  # SPMS - HC, NAWM (adjusted)
RRMS_NAWM = 0.05
EDSS_SLOPE = 0.04  # thalamus DVR per EDSS point (all of the thalamic effect)
MAB = -0.10  # MAB - HAB, every region
AGE, FEMALE, NOISE = 0.002, 0.02, 0.04
SHAPE = (8, 8, 8)
NAWM_INDEX = next(i for i, n in TSPOMS_LABELS.items() if n == "NAWM")


def _people(rng):
    people = []
    for group, n in (("HC", 10), ("RRMS", 10), ("SPMS", 10)):
        for i in range(n):
            age = rng.uniform(45, 62) if group == "SPMS" else rng.uniform(25, 55)
            edss = {"HC": 0.0, "RRMS": rng.choice([1.0, 1.5, 2, 2.5, 3, 4]),
                    "SPMS": rng.choice([4.0, 5, 5.5, 6, 6.5, 7])}[group]  # fmt: skip
            geno = "HAB" if i % 2 == 0 else "MAB"
            people.append((group, float(round(age, 1)), "F" if i % 3 else "M", float(edss), geno))
    people += [("HC", 40.0, "F", 0.0, "LAB"), ("SPMS", 55.0, "M", 6.0, "LAB")]
    return {f"{k + 1:02d}": ParticipantInfo(f"{k + 1:02d}", *p) for k, p in enumerate(people)}


def true_dvr(info: ParticipantInfo, region: str) -> float:
    v = BASE[region] + AGE * (info.age - 40) + FEMALE * (info.sex == "F")
    if region == "cerebellar-GM-reference":
        return 1.0
    v += MAB * (info.tspo_genotype == "MAB")
    if info.tspo_genotype == "LAB":
        v = 1.02  # negligible specific binding: would bias everything if not excluded
    elif region == "NAWM":
        v += {"SPMS": SPMS_NAWM, "RRMS": RRMS_NAWM}.get(info.group, 0.0)
    elif region == "thalamus":
        v += EDSS_SLOPE * info.edss
    return v


def _kinpar(path, values: dict[str, float], genotype: str):
    rows = [KineticResult(region=r, model="srtm", DVR=v, BPND=v - 1, R1=1.0, success=True)
            for r, v in values.items()]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    model_table(rows, VOLUMES, {"tspo_genotype": genotype}).to_csv(
        path, sep="\t", index=False, na_rep="n/a", float_format="%.6g"
    )


def _tacs(path, scale: float, vascular_ok: bool = True):
    """Region TACs: a common shape per region; controls differ by a global scale. The sidecar
    carries the participant level's brain voxel mean/SD per frame and the vascular curve."""
    timing = FrameTiming.from_durations_s([60.0] * 5 + [300.0] * 11)
    t = timing.mid_min
    tacs = {r: scale * (BASE[r] * (1 - np.exp(-0.3 * t)) * np.exp(-0.02 * t) + 0.5 * np.exp(-t))
            for r in VOLUMES}  # fmt: skip
    tacs["choroid-plexus"] = scale * (5 * np.exp(-0.8 * t) + 0.6)
    write_tacs_tsv(timing, tacs, path)
    norm = {"BrainVoxelMean": (scale * (1.1 * (1 - np.exp(-0.3 * t)) + 0.2)).tolist(),
            "BrainVoxelSD": (scale * (0.3 + 0.5 * np.exp(-0.5 * t))).tolist(),
            "VascularTAC": (scale * (8 * np.exp(-1.2 * t) + 0.1)).tolist(),
            "VascularCheck": {"passed": vascular_ok,
                              "reason": "" if vascular_ok else "late frames above tissue"}}  # fmt: skip
    path.with_suffix(".json").write_text(json.dumps({"SVCANormalisation": norm}))
    return timing, tacs, norm


def _maps(pet, anat, stem, rng, mean, sd):
    """A tiny T1w-space DVR map and seg-tspoms dseg; NAWM voxels ~ N(mean, sd)."""
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    dseg = np.zeros(SHAPE, np.uint8)
    dseg[1:7, 1:7, 1:7] = NAWM_INDEX
    dseg[3:5, 3:5, 3:5] = 6  # thalamus: must not enter the threshold
    dvr = np.where(dseg == NAWM_INDEX, rng.normal(mean, sd, SHAPE), 3.0).astype(np.float32)
    dvr[0, 0, 0] = np.nan
    anat.mkdir(parents=True, exist_ok=True)
    nib.save(
        nib.Nifti1Image(dvr, affine),
        pet / f"{stem}_space-T1w_model-SRTM_ref-cerebellum_meas-DVR_mimap.nii.gz",
    )
    nib.save(
        nib.Nifti1Image(dseg, affine), anat / f"{stem.split('_trc')[0]}_seg-tspoms_dseg.nii.gz"
    )
    write_dseg_tsv(anat / f"{stem.split('_trc')[0]}_seg-tspoms_dseg.tsv", TSPOMS_LABELS)
    return dvr[dseg == NAWM_INDEX]


def _lesions(pet, anat, stem, ses_stem, phenos, dvr_shift=0.0, centre_shift=0.0):
    table = pd.DataFrame({
        "lesion_id": np.arange(1, len(phenos) + 1), "volume_ml": 0.5,
        "core_DVR": 1.3 + dvr_shift + 0.1 * np.arange(len(phenos)), "rim_DVR": 1.4,
        "core_active_fraction": 0.2, "rim_active_fraction": 0.6, "phenotype": phenos,
    })  # fmt: skip
    table.to_csv(pet / f"{stem}_model-SRTM_ref-cerebellum_desc-lesions_kinpar.tsv", sep="\t",
                 index=False)  # fmt: skip
    centres = pd.DataFrame({"lesion_id": table["lesion_id"], "volume_ml": 0.5,
                            "x_mm": 20.0 * table["lesion_id"] + centre_shift, "y_mm": 10.0,
                            "z_mm": 5.0})  # fmt: skip
    centres.to_csv(anat / f"{ses_stem}_desc-lesions_morph.tsv", sep="\t", index=False)
    return table


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Write participant-level-like outputs of 32 participants; return (out, people, truth)."""
    rng = np.random.default_rng(20240611)
    out = tmp_path_factory.mktemp("study") / "derivatives"
    people = _people(rng)
    truth = {"nawm_voxels": {"HAB": [], "MAB": []}, "lesions": {}}
    for label, info in people.items():
        ses = "01"
        pet, anat = out / f"sub-{label}/ses-{ses}/pet", out / f"sub-{label}/ses-{ses}/anat"
        stem = f"sub-{label}_ses-{ses}_trc-PBR28"
        values = {r: true_dvr(info, r) + (rng.normal(0, NOISE) if r != "cerebellar-GM-reference"
                                          else 0.0) for r in BASE}  # fmt: skip
        _kinpar(pet / f"{stem}_model-SRTM_ref-cerebellum_kinpar.tsv", values, info.tspo_genotype)
        if info.group == "HC":
            _tacs(pet / f"{stem}_seg-tspoms_desc-preproc_tacs.tsv", 1.0 + 0.1 * int(label),
                  vascular_ok=label != "03")  # fmt: skip
            if info.tspo_genotype != "LAB":
                truth["nawm_voxels"][info.tspo_genotype].append(
                    _maps(pet, anat, stem, rng, values["NAWM"], 0.08)
                )
            else:  # a LAB control's map must not enter the threshold
                _maps(pet, anat, stem, rng, 0.5, 0.01)
        else:
            anat.mkdir(parents=True, exist_ok=True)
            phenos = ["rim-active", "inactive", "overall-active", "inactive"][: 2 + int(label) % 3]
            truth["lesions"][label] = _lesions(pet, anat, stem, f"sub-{label}_ses-01", phenos)
    # a second session for sub-25 (SPMS): NAWM up by 0.06, lesions 1 mm apart, a new lesion
    label = "25"
    pet, anat = out / f"sub-{label}/ses-02/pet", out / f"sub-{label}/ses-02/anat"
    anat.mkdir(parents=True)
    base = pd.read_csv(out / f"sub-{label}/ses-01/pet/sub-{label}_ses-01_trc-PBR28_model-SRTM_"
                       "ref-cerebellum_kinpar.tsv", sep="\t")  # fmt: skip
    later = dict(zip(base["region"], base["DVR"], strict=True))
    later["NAWM"] += 0.06
    _kinpar(pet / f"sub-{label}_ses-02_trc-PBR28_model-SRTM_ref-cerebellum_kinpar.tsv", later,
            "HAB")  # fmt: skip
    n0 = len(truth["lesions"][label])
    truth["later_lesions"] = _lesions(pet, anat, f"sub-{label}_ses-02_trc-PBR28",
                                      f"sub-{label}_ses-02",
                                      ["inactive"] * (n0 + 1), dvr_shift=-0.2, centre_shift=1.0)  # fmt: skip
    truth["ses1_nawm"] = float(base.loc[base["region"] == "NAWM", "DVR"].iloc[0])
    return out, people, truth


@pytest.fixture(scope="module")
def results(study, tmp_path_factory):
    out, people, _ = study
    group_dir = out / "group"
    group_dir.mkdir()
    coll = collect(out)
    tables = analyse(coll, people, group_dir, GroupOptions(min_controls=3, active_k=2.0))
    return group_dir, tables


def _row(stats, region, contrast):
    sel = stats[(stats["region"] == region) & (stats["contrast"] == contrast)]
    assert len(sel) == 1, (region, contrast)
    return sel.iloc[0]


def test_parse_name():
    ent = parse_name("sub-01_ses-a_trc-PBR28_space-T1w_model-SRTM_ref-svca_meas-DVR_mimap.nii.gz")
    assert ent == {"sub": "01", "ses": "a", "trc": "PBR28", "space": "T1w", "model": "SRTM",
                   "ref": "svca", "meas": "DVR", "suffix": "mimap", "extension": ".nii.gz"}  # fmt: skip
    assert parse_name("dataset_description.json") is None


def test_study_table(results, study):
    group_dir, tables = results
    _, people, truth = study
    wide = pd.read_csv(group_dir / "study_table.tsv", sep="\t")
    assert len(wide) == len(people) + 1  # one extra session
    row = wide[(wide["participant_id"] == "sub-03") & (wide["session"] == 1)].iloc[0]
    assert row["group"] == "HC" and row["tspo_genotype"] == "HAB" and row["edss"] == 0
    # deep GM: volume-weighted mean of thalamus, caudate, putamen, pallidum
    vol = np.array([VOLUMES[r] for r in ("thalamus", "caudate", "putamen", "pallidum")])
    vals = np.array([row[f"{r}_DVR"] for r in ("thalamus", "caudate", "putamen", "pallidum")])
    assert row["deep-GM_DVR"] == pytest.approx(vals @ vol / vol.sum(), rel=1e-5)
    assert row["NAWM_BPND"] == pytest.approx(row["NAWM_DVR"] - 1, abs=1e-5)
    # lesion phenotypes: counts, proportions and the Polvinen predictor
    for label in ("14", "15", "16"):
        sel = wide[(wide["participant_id"] == f"sub-{label}") & (wide["session"] == 1)].iloc[0]
        ph = truth["lesions"][label]["phenotype"]
        n = len(ph)
        assert sel["n_lesions"] == n and sel["n_rim_active"] == (ph == "rim-active").sum()
        assert sel["proportion_inactive"] == pytest.approx((ph == "inactive").mean())
        expect = (ph == "rim-active").mean() > 0.1 and (ph == "inactive").mean() <= 0.5
        assert bool(sel["polvinen_predictor"]) == expect
    lab = wide[wide["tspo_genotype"] == "LAB"]
    assert len(lab) == 2 and lab["excluded"].all()
    long = pd.read_csv(group_dir / "study_table_long.tsv", sep="\t")
    assert set(long["measure"]) >= {"DVR", "BPND", "R1"}
    assert len(long[(long["measure"] == "DVR") & (long["region"] == "NAWM")]) == len(wide)


def test_group_effects(results, study):
    _, tables = results
    stats = tables["statistics"]
    # SPMS NAWM higher than HC by 0.15 (adjusted for age, sex, genotype), RRMS by 0.05
    se_tol = 3 * NOISE * np.sqrt(2 / 9)
    spms = _row(stats, "NAWM", "SPMS-HC")
    assert spms["estimate"] == pytest.approx(SPMS_NAWM, abs=se_tol)
    assert spms["q"] < 0.001 and spms["d_adjusted"] > 2
    assert _row(stats, "NAWM", "RRMS-HC")["estimate"] == pytest.approx(RRMS_NAWM, abs=se_tol)
    assert _row(stats, "NAWM", "SPMS-RRMS")["estimate"] == pytest.approx(
        SPMS_NAWM - RRMS_NAWM, abs=se_tol
    )
    # LAB participants excluded: 9 + 10 + 10 + ... per contrast
    assert spms["n_a"] == 10 and spms["n_b"] == 10 and spms["n"] == 30
    assert "tspo_genotype" in spms["covariates"] and "age" in spms["covariates"]
    # thalamus: SPMS-HC equals the slope times the SPMS mean EDSS
    _, people, _ = study
    edss = np.mean(
        [p.edss for p in people.values() if p.group == "SPMS" and p.tspo_genotype != "LAB"]
    )
    thal = _row(stats, "thalamus", "SPMS-HC")
    assert thal["estimate"] == pytest.approx(EDSS_SLOPE * edss, abs=se_tol) and thal["q"] < 0.001
    # MAB lower than HAB by 0.10
    for region in ("NAWM", "cortical-GM", "putamen"):
        geno = _row(stats, region, "MAB-HAB")
        assert geno["estimate"] == pytest.approx(MAB, abs=3 * NOISE * np.sqrt(4 / 30))
        assert geno["q"] < 0.01
    # the null region: no group contrast survives FDR
    null = stats[(stats["region"] == "putamen") & (stats["family"] == "group")]
    assert len(null) == 3 and not null["significant"].any()
    # EDSS: thalamic slope in patients, and no slope in the null region
    slope = _row(stats, "thalamus", "EDSS slope (patients)")
    assert slope["estimate"] == pytest.approx(EDSS_SLOPE, abs=0.015)
    assert slope["q"] < 0.001 and slope["spearman_rho"] > 0.5  # unadjusted: genotype adds scatter
    assert not _row(stats, "putamen", "EDSS slope (patients)")["significant"]


def test_active_threshold_per_binding_class(results, study):
    """PBR28: HAB and MAB controls bind differently (MAB 0.10 DVR lower): one threshold per
    class, each mean + 2 SD of that class's NAWM voxels; no pooled threshold."""
    group_dir, _ = results
    _, _, truth = study
    stem = "tracer-PBR28_model-SRTM_ref-cerebellum_desc-activethreshold"
    meta = json.loads((group_dir / f"{stem}.json").read_text())
    assert "threshold_dvr" not in meta and "not used" in meta["pooled"]
    means = {}
    for cls in ("HAB", "MAB"):
        voxels = np.concatenate(truth["nawm_voxels"][cls]).astype(np.float64)
        expect = voxels.mean() + 2.0 * voxels.std(ddof=1)
        part = json.loads((group_dir / f"{stem}{cls}.json").read_text())
        assert part["threshold_dvr"] == pytest.approx(expect, rel=1e-5)
        assert meta["binding_classes"][cls]["threshold_dvr"] == part["threshold_dvr"]
        assert part["n_controls"] == 5 and part["n_voxels"] == voxels.size
        means[cls] = part["mean"]
    # the planted class difference, within 3 SE of 5 + 5 controls' regional noise
    assert means["MAB"] - means["HAB"] == pytest.approx(MAB, abs=3 * NOISE * np.sqrt(2 / 5))


def test_threshold_class_with_too_few_controls(study):
    """A class below --min-controls carries the reason; no class usable -> refused."""
    out, people, _ = study
    coll = collect(out)
    items, genotypes = [], []
    for label, info in people.items():
        anat = coll.anat_for(f"sub-{label}", "01")
        key = (f"sub-{label}", "01", "PBR28", "", "", "SRTM", "cerebellum", "DVR")
        if info.group == "HC" and info.tspo_genotype != "LAB":
            items.append((label, coll.maps[key], anat["tspoms_dseg"], anat["tspoms_tsv"]))
            genotypes.append(info.tspo_genotype)
    keep = [i for i, g in enumerate(genotypes) if g == "HAB"] + [
        i for i, g in enumerate(genotypes) if g == "MAB"
    ][:2]
    result = class_thresholds([items[i] for i in keep], [genotypes[i] for i in keep],
                              min_controls=3)  # fmt: skip
    assert result["binding_classes"]["HAB"]["n_controls"] == 5
    mab = result["binding_classes"]["MAB"]
    assert "threshold_dvr" not in mab and "2 healthy control(s) usable" in mab["reason"]
    with pytest.raises(TooFewControls, match="HAB: .*5 healthy control.*MAB: "):
        class_thresholds(items, genotypes, min_controls=6)


def test_svca_classes_from_controls(results):
    """Classes = region TACs (vascular TAC for blood) scaled per frame by the brain voxel mean
    and SD the participant level wrote; the control whose vascular curve failed is skipped."""
    group_dir, _ = results
    time, classes = read_svca_classes(group_dir / "tracer-PBR28_desc-svca_classes.tsv")
    timing = FrameTiming.from_durations_s([60.0] * 5 + [300.0] * 11)
    np.testing.assert_allclose(time, timing.mid_min, rtol=1e-5)
    # controls differ only by a global scale: classes = the normalised curves of any one
    _, tacs, norm = _tacs(group_dir / "tmp_tacs.tsv", 1.0)
    mean, sd = np.array(norm["BrainVoxelMean"]), np.array(norm["BrainVoxelSD"])
    curves = {"grey_matter": tacs["cortical-GM"], "white_matter": tacs["NAWM"],
              "blood": np.array(norm["VascularTAC"]), "high_binding": tacs["thalamus"],
              "csf": tacs["ventricles"]}  # fmt: skip
    assert classes.shape[1] == 5
    for k, name in enumerate(CLASS_NAMES + OPTIONAL_CLASSES):
        np.testing.assert_allclose(classes[:, k], (curves[name] - mean) / sd, rtol=1e-5, atol=1e-4)
    meta = json.loads((group_dir / "tracer-PBR28_desc-svca_classes.json").read_text())
    assert len(meta["Controls"]) == 9  # the LAB control is left out, sub-03 skipped
    assert "late frames above tissue" in meta["SkippedControls"]["sub-03"]
    assert classes[0, 2] == classes[:, 2].max()  # blood peaks early


def test_svca_classes_need_the_voxel_normalisation(study, tmp_path):
    out, _, _ = study
    tsv = next(out.glob("sub-01/ses-01/pet/*_tacs.tsv"))
    bare = tmp_path / tsv.name
    bare.write_text(tsv.read_text())  # no sidecar
    items = [ControlTACs(f"sub-{k}", bare, dict(VOLUMES)) for k in range(3)]
    with pytest.raises(TooFewControls, match="0 healthy control.*no SVCANormalisation"):
        svca_classes(items, min_controls=3)


def test_too_few_controls_refused(study, tmp_path, caplog):
    out, people, _ = study
    caplog.set_level(logging.WARNING)
    analyse(collect(out), people, tmp_path, GroupOptions(min_controls=11))
    assert not list(tmp_path.glob("tracer-*"))
    assert "10 healthy control(s) usable, at least 11 needed" in caplog.text  # SVCA classes
    assert (tmp_path / "statistics.tsv").is_file()


def test_longitudinal(results, study):
    group_dir, tables = results
    _, _, truth = study
    change = pd.read_csv(group_dir / "longitudinal_regions.tsv", sep="\t", dtype={"session": str})
    row = change[(change["region"] == "NAWM") & (change["measure"] == "DVR")].iloc[0]
    assert row["participant_id"] == "sub-25" and row["session"] == "02"
    assert row["change"] == pytest.approx(0.06, abs=2e-5)
    assert row["percent_change"] == pytest.approx(100 * 0.06 / truth["ses1_nawm"], rel=1e-3)
    assert change["participant_id"].unique().tolist() == ["sub-25"]
    les = tables["lesion_change"]
    n0 = len(truth["lesions"]["25"])
    assert len(les) == n0  # the new lesion has no baseline
    assert (les["baseline_lesion_id"] == les["lesion_id"]).all()
    np.testing.assert_allclose(les["centre_distance_mm"], 1.0)
    np.testing.assert_allclose(les["change_core_DVR"], -0.2, atol=1e-6)
    assert (les["phenotype"] == "inactive").all()


def test_match_lesions_one_to_one():
    a = np.array([[0.0, 0, 0], [10, 0, 0], [50, 0, 0]])
    b = np.array([[9.0, 0, 0], [1, 0, 0], [80, 0, 0]])
    assert match_lesions(a, b, 5.0) == [(0, 1, 1.0), (1, 0, 1.0)]


def test_report_written(results):
    group_dir, _ = results
    text = (group_dir / "report.html").read_text()
    assert "data:image/png;base64" in text and "SPMS-HC" in text


def test_families_and_reasons(results):
    group_dir, tables = results
    stats = tables["statistics"]
    assert "deep-GM" not in set(stats["region"])  # its parts are tested instead
    assert {"thalamus", "caudate", "putamen", "pallidum"} <= set(stats["region"])
    tested = stats[stats["reason"] == ""]
    assert tested["p"].notna().all()
    untested = stats[stats["reason"] != ""]
    assert untested["p"].isna().all()
    # the additive genotype effect of the study: no group x genotype interaction on DVR
    inter = stats[(stats["family"] == "interaction") & (stats["region"] == "NAWM")]
    assert list(inter["contrast"]) == ["group x genotype (DVR)", "group x genotype (log DVR)"]
    assert inter["p"].iloc[0] > 0.05
    wide = pd.read_csv(group_dir / "study_table.tsv", sep="\t")
    controls = wide[wide["group"] == "HC"]
    assert controls["polvinen_predictor"].isna().all()
    assert controls["polvinen_predictor_reason"].str.startswith("no lesion phenotype table").all()
    patients = wide[(wide["group"] != "HC") & wide["n_lesions"].notna()]
    assert patients["polvinen_predictor_reason"].isna().all()  # computed: empty reason


def test_group_by_genotype_interaction_detected():
    """MAB binding is half of HAB binding (BPND), so the SPMS-HC DVR difference is halved in
    MAB: an interaction on the DVR scale; an additive genotype shift gives none."""
    from tspo_bidsapp.group.stats import region_interaction_test

    rng = np.random.default_rng(4)
    rows = []
    for k in range(80):
        group, geno = ("HC", "SPMS")[k % 2], ("HAB", "MAB")[(k // 2) % 2]
        bp = (0.3 if group == "HC" else 0.6) * (1.0 if geno == "HAB" else 0.5)
        rows.append({"group": group, "tspo_genotype": geno, "age": rng.uniform(30, 60),
                     "sex": "FM"[k % 3 == 0], "bp": bp})  # fmt: skip
    data = pd.DataFrame(rows)
    noise = rng.normal(0, 0.04, len(data))
    multiplicative = data.assign(value=1 + data["bp"] + noise)
    additive = data.assign(value=1 + np.where(data["group"] == "HC", 0.3, 0.6)
                           - 0.1 * (data["tspo_genotype"] == "MAB") + noise)  # fmt: skip
    assert region_interaction_test(multiplicative)[0]["p"] < 1e-4
    assert region_interaction_test(additive)[0]["p"] > 0.05
    few = region_interaction_test(multiplicative[multiplicative["tspo_genotype"] == "HAB"])
    assert "at least 3 HAB and 3 MAB" in few[0]["reason"]


def test_flagged_fits_left_out_of_statistics(results):
    """A failed fit (absurd NAWM DVR, flagged) must not move the group effect unless asked."""
    from tspo_bidsapp.group.analysis import statistics

    _, tables = results
    long = tables["long"].copy()
    bad = (long["participant_id"] == "sub-22") & (long["region"] == "NAWM")
    long.loc[bad & (long["measure"] == "DVR"), "value"] = 5.0
    long["fit_quality"] = np.where(bad, "k2-near-zero", "ok")
    kept = _row(statistics(long, GroupOptions()), "NAWM", "SPMS-HC")
    assert kept["n_a"] + kept["n_b"] == 19  # sub-22 left out
    assert kept["estimate"] == pytest.approx(SPMS_NAWM, abs=3 * NOISE * np.sqrt(2 / 9))
    forced = _row(statistics(long, GroupOptions(include_flagged=True)), "NAWM", "SPMS-HC")
    assert forced["n_a"] + forced["n_b"] == 20 and forced["estimate"] > SPMS_NAWM + 0.2
    study = tables["study"]
    assert "flagged_regions" in study.columns


def test_statistics_note_explains_tests_not_run(results):
    """One patient per group (the demo's case): the report says why nothing was tested."""
    from tspo_bidsapp.group.report import statistics_note

    _, tables = results
    long = tables["long"]
    few = long[long["participant_id"].isin(["sub-01", "sub-02", "sub-11", "sub-21"])]
    note = statistics_note(few, pd.DataFrame(), min_group_size=3)
    assert "HC 2, RRMS 1, SPMS 1" in note
    assert "Group comparisons were not run" in note and "--min-group-size" in note
    assert "EDSS association was not run" in note and "(found 2)" in note
    assert "No test could be run" in note
    full = statistics_note(long, tables["statistics"], min_group_size=3)
    assert "Group comparisons were not run" not in full and "sub-31 excluded" in full
