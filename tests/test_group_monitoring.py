"""Treatment monitoring on a synthetic trial with a planted effect: 32 patients, two arms,
NAWM DVR -10 % in the treated arm, nothing in the control arm (ground truth by construction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tspo_bidsapp.exitcodes import InvalidBIDSError
from tspo_bidsapp.group import GroupOptions, analyse
from tspo_bidsapp.group.collect import collect
from tspo_bidsapp.group.monitoring import (
    change_statistics,
    read_arms,
    smallest_detectable_change,
    within_subject_cv,
)
from tspo_bidsapp.io.participants import ParticipantInfo
from tspo_bidsapp.kinetics.kinpar import KineticResult
from tspo_bidsapp.quant.regional import model_table

EFFECT = -0.10  # treated: NAWM DVR x 0.9 at follow-up
CV_WS = 0.03  # within-subject (scan-to-scan) variability of log DVR
REGIONS = {"NAWM": 1.25, "thalamus": 1.45, "cortical-GM": 1.30}


def _trial(rng, n=32, visits=2):
    """Long rows: participant, session, region, value; arms alternate treated/control."""
    rows, arms = [], []
    for i in range(n):
        pid, arm = f"sub-{i + 1:02d}", ("treated" if i % 2 else "control")
        arms.append({"participant_id": pid, "arm": arm})
        level = {r: v * np.exp(rng.normal(0, 0.08)) for r, v in REGIONS.items()}
        for visit in range(visits):
            for region, v in level.items():
                drop = EFFECT if (arm == "treated" and region == "NAWM" and visit) else 0.0
                value = v * (1 + drop) * np.exp(rng.normal(0, CV_WS))
                rows.append({"participant_id": pid, "session": f"{visit + 1:02d}",
                             "region": region, "value": value})  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(arms)


def _stats(long, arms, **kw):
    values = long.assign(tracer="PBR28", model="SRTM", ref="cerebellum", measure="DVR")
    return change_statistics(values, arms, regions=tuple(REGIONS), **kw)


def _pick(stats, region, arm, test):
    sel = stats[(stats["region"] == region) & (stats["arm"] == arm) & (stats["test"] == test)]
    assert len(sel) == 1, (region, arm, test)
    return sel.iloc[0]


def test_planted_treatment_effect_recovered():
    long, arms = _trial(np.random.default_rng(5))
    stats = _stats(long, arms)
    treated = _pick(stats, "NAWM", "treated", "paired t")
    assert treated["n"] == 16
    assert treated["ci_low"] < 100 * EFFECT < treated["ci_high"] and treated["p"] < 1e-6
    mixed = _pick(stats, "NAWM", "treated", "mixed model")
    # two visits, complete data: the mixed model gives the paired estimate
    assert mixed["percent_change"] == pytest.approx(treated["percent_change"], abs=1e-6)
    assert mixed["ci_low"] == pytest.approx(treated["ci_low"], abs=0.5) and mixed["p"] < 1e-6
    control = _pick(stats, "NAWM", "control", "paired t")
    assert control["ci_low"] < 0 < control["ci_high"]
    diff = _pick(stats, "NAWM", "treated vs control", "two-sample t")
    inter = _pick(stats, "NAWM", "treated vs control", "mixed model interaction")
    assert diff["ci_low"] < 100 * EFFECT < diff["ci_high"] and diff["p"] < 1e-4
    assert inter["percent_change"] == pytest.approx(diff["percent_change"], abs=1e-6)
    assert inter["p"] < 1e-4
    # no effect in the other regions: paired and mixed agree on "not significant" (seeded)
    for region in ("thalamus", "cortical-GM"):
        for test in ("paired t", "mixed model"):
            assert _pick(stats, region, "treated", test)["p"] > 0.05
    # smallest detectable change from the literature TRV for PBR28 (8 %: Park et al. 2015)
    assert treated["trv_percent"] == 8.0 and "Park" in treated["trv_source"]
    sdc16 = 1.959964 * np.sqrt(2) * 8.0 * np.sqrt(np.pi) / 2 / 4
    assert treated["sdc_percent"] == pytest.approx(sdc16, rel=1e-5)
    assert treated["beyond_sdc"] and not control["beyond_sdc"]


def test_three_visits_mixed_model_and_reasons():
    long, arms = _trial(np.random.default_rng(9), n=20, visits=3)
    long = long[~((long["participant_id"] == "sub-02") & (long["session"] == "03"))]
    stats = _stats(long, arms, trv_percent=5.0)
    row = _pick(stats[stats["comparison"] == "visit 2 vs baseline"], "NAWM", "treated",
                "mixed model")  # fmt: skip
    assert row["n"] == 10 and row["ci_low"] < 100 * EFFECT < row["ci_high"]
    assert row["trv_source"] == "--test-retest-percent"
    # an arm with too few participants: rows with a reason, no numbers
    few = _stats(long[long["participant_id"].isin(["sub-01", "sub-02", "sub-03", "sub-05"])],
                 arms)  # fmt: skip
    row = _pick(few[few["comparison"] == "visit 1 vs baseline"], "NAWM", "treated", "paired t")
    assert np.isnan(row["percent_change"]) and "at least 3 needed" in row["reason"]
    # unknown tracer: SDC not computed, and the reason says why
    values = long.assign(tracer="XYZ", model="SRTM", ref="cerebellum", measure="DVR")
    other = change_statistics(values, arms, regions=("NAWM",))
    assert other["sdc_percent"].isna().all()
    assert other["reason"].str.contains("no literature test-retest value").all()


def test_sdc_formula():
    # TRV 8 % -> within-subject CV 7.09 % -> SDC of one participant 19.7 %
    assert within_subject_cv(8.0) == pytest.approx(7.0898, abs=1e-4)
    assert smallest_detectable_change(8.0) == pytest.approx(19.65, abs=0.01)
    rng = np.random.default_rng(0)  # E|d| / mean of two scans with CV_ws: TRV
    a, b = np.exp(rng.normal(0, 0.05, (2, 200000)))
    trv = 100 * np.mean(np.abs(a - b) / ((a + b) / 2))
    assert within_subject_cv(trv) == pytest.approx(5.0, rel=0.02)


def test_trial_through_the_group_level(tmp_path):
    """kinpar tables of two sessions + sessions.tsv with an arm column -> statistics file."""
    rng = np.random.default_rng(12)
    long, arms = _trial(rng)
    out, bids = tmp_path / "out", tmp_path / "bids"
    people = {}
    for pid, part in long.groupby("participant_id"):
        label = pid.removeprefix("sub-")
        people[label] = ParticipantInfo(label, "RRMS", 40.0, "F", 2.0, "HAB")
        (bids / pid).mkdir(parents=True)
        arm = arms.set_index("participant_id").at[pid, "arm"]
        (bids / pid / f"{pid}_sessions.tsv").write_text(
            f"session_id\tarm\nses-01\t{arm}\nses-02\t{arm}\n"
        )
        for ses, rows in part.groupby("session"):
            pet = out / pid / f"ses-{ses}" / "pet"
            pet.mkdir(parents=True)
            res = [KineticResult(region=r, model="srtm", DVR=v, BPND=v - 1, R1=1.0, success=True)
                   for r, v in zip(rows["region"], rows["value"], strict=True)]  # fmt: skip
            model_table(res, dict.fromkeys(REGIONS, 10.0), {"tspo_genotype": "HAB"}).to_csv(
                pet / f"{pid}_ses-{ses}_trc-PBR28_model-SRTM_ref-cerebellum_kinpar.tsv",
                sep="\t", index=False,
            )  # fmt: skip
    group = out / "group"
    group.mkdir()
    found = read_arms(bids, set(people))
    assert len(found) == 32 and set(found["arm"]) == {"treated", "control"}
    tables = analyse(collect(out), people, group, GroupOptions(), arms=found)
    stats = pd.read_csv(group / "longitudinal_statistics.tsv", sep="\t")
    row = _pick(stats, "NAWM", "treated vs control", "mixed model interaction")
    assert row["ci_low"] < 100 * EFFECT < row["ci_high"]
    change = tables["longitudinal"]
    assert {"arm", "sdc_percent", "beyond_sdc"} <= set(change.columns)
    assert change["sdc_percent"].iloc[0] == pytest.approx(19.65, abs=0.01)
    assert "Treatment monitoring" in (group / "report.html").read_text()
    # a participant listed in two arms is an input error naming the file and column
    (bids / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tarm\nses-01\tcontrol\nses-02\ttreated\n"
    )
    with pytest.raises(InvalidBIDSError, match="several arms") as err:
        read_arms(bids, {"01"})
    assert err.value.field == "arm"


def test_group_options_from_the_command_line(tmp_path):
    from test_input_data import make_dataset

    from tspo_bidsapp.cli.parser import parse_args
    from tspo_bidsapp.exitcodes import UsageError

    bids = make_dataset(tmp_path / "bids")
    out = str(tmp_path / "out")
    config = parse_args([str(bids), out, "group", "--group-smoothing-fwhm", "6",
                         "--group-permutations", "200", "--test-retest-percent", "5"])  # fmt: skip
    options = GroupOptions.from_config(config)
    assert (options.smoothing_fwhm, options.n_perm, options.trv_percent) == (6.0, 200, 5.0)
    assert GroupOptions.from_config(parse_args([str(bids), out, "group"])).n_perm == 5000
    with pytest.raises(UsageError, match="--test-retest-percent"):
        parse_args([str(bids), out, "group", "--test-retest-percent", "-1"])


def test_lesion_change_per_arm():
    """Matched lesions: treated -15 % core DVR; participants are the unit of the paired test."""
    from tspo_bidsapp.group.monitoring import lesion_change_tests

    rng = np.random.default_rng(21)
    rows, arms = [], []
    for i in range(16):
        pid, arm = f"sub-{i:02d}", ("treated" if i % 2 else "control")
        arms.append({"participant_id": pid, "arm": arm})
        person = rng.normal(0, 0.05)  # lesions of one participant move together
        for lesion in range(1 + i % 4):
            base = 1.4 * np.exp(rng.normal(0, 0.1))
            later = (
                base * (0.85 if arm == "treated" else 1.0) * np.exp(person + rng.normal(0, 0.03))
            )
            rows.append({"participant_id": pid, "tracer": "PBR28", "model": "SRTM",
                         "ref": "cerebellum", "session": "02", "lesion_id": lesion + 1,
                         "baseline_core_DVR": base, "core_DVR": later})  # fmt: skip
    stats = lesion_change_tests(pd.DataFrame(rows), pd.DataFrame(arms))
    treated = stats[stats["arm"] == "treated"].set_index("test")
    paired = treated.loc["paired t (participant means)"]
    mixed = treated.loc["mixed model (lesions)"]
    assert paired["n"] == 8 and mixed["n"] == 24  # 4 x 2 + 4 x 4 lesions
    assert paired["ci_low"] < -15 < paired["ci_high"] and paired["p"] < 0.001
    # the lesion-level mixed model agrees (its Wald CI is narrower with 8 participants)
    assert paired["ci_low"] < mixed["percent_change"] < paired["ci_high"] and mixed["p"] < 0.001
    control = stats[stats["arm"] == "control"].set_index("test")
    assert (control["ci_low"] < 0).all() and (control["ci_high"] > 0).all()
