"""Plasma-input V_T on real [11C]PBR28 test-retest data, against kinfitr 0.9.1's fits.

Run: ``OMP_NUM_THREADS=1 python benchmarks/validate_plasma_pbr28.py [DATA_DIR]``
(default ``../shared/data/kinfitr_pbr28``: 4 people x 2 scans, 6 regions, processed arterial
input; Matheson et al. 2017 EJNMMI Res 7:58; kinfitr, Matheson 2019 JOSS 4:1250).

kinfitr's settings: the delay from a 1TCM on ``WB`` with vB fitted, then held; 1TCM with vB
fitted; 2TCM, Logan and MA1 with vB 0.05; Logan/MA1 over the last 10 frames (t* = 33 min);
kinfitr's frame weights. Prints, per model, the median and largest |ΔV_T| against kinfitr
(2TCM: where kinfitr's fit is stable, i.e. within 20 % of its own MA1 V_T), then test-retest
absolute variability and ICC per model and region (also for the 2TCM-1K, which kinfitr does
not fit), and the HAB/MAB V_T ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.blood import read_input_function
from tspo_bidsapp.cli.fit import read_tacs
from tspo_bidsapp.kinetics.registry import FitData, FitOptions, fit_regional

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "kinfitr_pbr28"
MODELS = {"1TCM": "VT_1tcm", "2TCM": "VT_2tcm", "Logan-plasma": "VT_logan", "MA1": "VT_ma1"}
TSTAR_MIN, VB = 33.0, 0.05
STABLE_2TCM = 0.20  # kinfitr's 2TCM counts as stable within 20 % of its own MA1 V_T


def fit_scan(pet_dir: Path, delay_min: float | None = None, extra=()) -> pd.DataFrame:
    """Every model on one scan with kinfitr's settings; rows of region, model, VT, ...

    ``delay_min``: hold the delay fixed (default: fitted by the 1TCM on ``WB``); ``extra``:
    more models fitted like the 2TCM (vB 0.05), e.g. ``("2TCM1K",)``.
    """
    tacs = next(pet_dir.glob("*_desc-kinfitr_tacs.tsv"))
    timing, _, regions, w = read_tacs(tacs, None, "kinfitr_weights")
    inp = read_input_function(next(pet_dir.glob("*_desc-kinfitr_inputfunction.tsv")))
    data = FitData(timing.start_min, timing.end_min, regions, input_function=inp)
    one, info = fit_regional(["1TCM"], data, FitOptions(weights=w, delay_region="WB",
                                                         delay_min=delay_min))  # fmt: skip
    fixed = FitOptions(weights=w, vb=VB, tstar_min=TSTAR_MIN, delay_min=info["delay_min"])
    rest, _ = fit_regional(["2TCM", "Logan-plasma", "MA1", *extra], data, fixed)
    rows = [{"region": r.region, "model": name, "VT": r.VT, "identifiable": r.identifiable,
             "delay_min": info["delay_min"]}
            for name, results in {**one, **rest}.items() for r in results]  # fmt: skip
    return pd.DataFrame(rows)


def fit_all(root: Path, delays: dict[str, float] | None = None, extra=()) -> pd.DataFrame:
    """:func:`fit_scan` of every ``sub-*/ses-*`` with subject, session and genotype columns;
    ``delays``: fixed delays (minutes) by PET name (``cgyu_1``), default fitted."""
    people = pd.read_csv(root / "participants_sessions.tsv", sep="\t")
    frames = []
    for _, row in people.iterrows():
        pet = f"{row['participant_id'][4:]}_{row['session_id'][4:]}"
        pet_dir = root / row["participant_id"] / row["session_id"] / "pet"
        table = fit_scan(pet_dir, None if delays is None else delays[pet], extra)
        table.insert(0, "PET", pet)
        table["subject"], table["session"] = row["participant_id"][4:], row["session_id"][4:]
        table["genotype"] = row["tspo_genotype"]
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def compare(ours: pd.DataFrame, kinfitr: pd.DataFrame) -> pd.DataFrame:
    """Long table of our V_T beside kinfitr's, with the relative difference and 2TCM stability."""
    ref = kinfitr.assign(ma1_kinfitr=kinfitr["VT_ma1"]).melt(
        id_vars=["PET", "region", "ma1_kinfitr"], value_vars=list(MODELS.values()),
        var_name="column", value_name="VT_kinfitr")  # fmt: skip
    ref["model"] = ref["column"].map({v: k for k, v in MODELS.items()})
    both = ours.merge(ref, on=["PET", "region", "model"])
    both["rel_diff"] = both["VT"] / both["VT_kinfitr"] - 1.0
    both["kinfitr_stable"] = (both["model"] != "2TCM") | (
        (both["VT_kinfitr"] / both["ma1_kinfitr"] - 1.0).abs() < STABLE_2TCM
    )
    return both


def agreement(both: pd.DataFrame) -> pd.DataFrame:
    """Per model: n, median and max |ΔV_T| (%) where kinfitr is stable."""
    ok = both[both["kinfitr_stable"]]
    g = ok.groupby("model")["rel_diff"]
    return pd.DataFrame({"n": g.size(), "median_abs_pct": 100 * g.apply(lambda d: d.abs().median()),
                         "max_abs_pct": 100 * g.apply(lambda d: d.abs().max()),
                         "n_unstable_kinfitr": both.groupby("model")["kinfitr_stable"]
                         .apply(lambda s: int((~s).sum()))})  # fmt: skip


def icc_oneway(test: np.ndarray, retest: np.ndarray) -> float:
    """ICC(1,1), one-way random effects (Shrout & Fleiss 1979), for two sessions."""
    x = np.column_stack([test, retest])
    n, k = x.shape
    msb = k * np.sum((x.mean(1) - x.mean()) ** 2) / (n - 1)
    msw = np.sum((x - x.mean(1, keepdims=True)) ** 2) / (n * (k - 1))
    return float((msb - msw) / (msb + (k - 1) * msw))


def test_retest(values: pd.DataFrame, value: str = "VT") -> pd.DataFrame:
    """Absolute variability (mean of |test - retest| / mean, %) and ICC per model and region."""
    wide = values.pivot_table(index=["model", "region", "subject"], columns="session",
                              values=value)  # fmt: skip
    rows = []
    for (model, region), grp in wide.groupby(level=[0, 1]):
        t, r = grp["1"].to_numpy(), grp["2"].to_numpy()
        rows.append({"model": model, "region": region,
                     "absvar_pct": float(np.mean(200 * np.abs(t - r) / (t + r))),
                     "icc": icc_oneway(t, r)})  # fmt: skip
    return pd.DataFrame(rows)


def genotype_ratio(values: pd.DataFrame) -> pd.DataFrame:
    """Mean V_T of HAB scans over mean V_T of MAB scans, per model and region."""
    mean = values.pivot_table(index=["model", "region"], columns="genotype", values="VT")
    return (mean["HAB"] / mean["MAB"]).rename("HAB/MAB").reset_index()


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else DEFAULT_DIR
    t0 = time.perf_counter()
    ours = fit_all(root, extra=("2TCM1K",))
    elapsed = time.perf_counter() - t0
    kinfitr = pd.read_csv(root / "kinfitr_fits.tsv", sep="\t")
    both = compare(ours, kinfitr)
    pd.set_option("display.width", 140)
    print(f"fitted {ours['PET'].nunique()} scans x 6 regions x 5 models in {elapsed:.1f} s\n")
    delays = ours.groupby("PET")["delay_min"].first() * 60
    kin_delay = kinfitr.groupby("PET")["inpshift_min"].first() * 60
    print("delay (s), ours vs kinfitr:\n", pd.DataFrame({"ours": delays, "kinfitr": kin_delay})
          .round(2).T.to_string(), "\n")  # fmt: skip
    print("V_T agreement with kinfitr (2TCM: where kinfitr's fit is stable)")
    print(agreement(both).round(2).to_string(), "\n")
    same_delay = compare(fit_all(root, (kin_delay / 60).to_dict()), kinfitr)
    print("... with kinfitr's delays held fixed (the models alone)")
    print(agreement(same_delay).round(2).to_string(), "\n")
    kin_long = both.assign(VT=both["VT_kinfitr"])
    trt = test_retest(ours).merge(test_retest(kin_long), on=["model", "region"],
                                  suffixes=("", "_kinfitr"), how="left")  # fmt: skip
    print("test-retest: absolute variability (%) and ICC(1,1), ours beside kinfitr's")
    print(trt.round(3).to_string(index=False), "\n")
    for model in ("2TCM", "2TCM1K"):
        flagged = ~ours.loc[ours["model"] == model, "identifiable"]
        print(f"{model} fits flagged not identifiable (k3/k4 %COV > 50 or on a bound): "
              f"{int(flagged.sum())} of {flagged.size}")  # fmt: skip
    print("median V_T over scans and regions:",
          ours.groupby("model")["VT"].median().round(2).to_dict(), "\n")  # fmt: skip
    print("HAB / MAB mean V_T")
    print(genotype_ratio(ours).pivot(index="region", columns="model", values="HAB/MAB")
          .round(2).to_string())  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
