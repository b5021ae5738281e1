"""Treatment monitoring: change between visits, tested per region and treatment arm.

Per tracer/model/ref, region and the primary measure (DVR; SUVR for SUVR), on the log of the
value (so that a change is a ratio and percent changes are symmetric):

- **paired t-test** of visit ``k`` against each participant's baseline (visit 0 = first
  session in natural order), per arm: ``percent_change = 100 (exp(mean log ratio) - 1)``
  with its 95 % t confidence interval;
- **linear mixed model** (statsmodels ``MixedLM``, REML, random intercept per participant)
  ``log(value) ~ C(visit)`` on all visits of an arm; with two visits and complete data it
  gives the paired estimate;
- with two or more arms, the **arm difference** of the change (each arm against the reference
  arm: ``control``/``placebo``/``untreated`` when present, else the first alphabetically):
  two-sample t-test of the log ratios and the mixed model ``log(value) ~ C(visit) * C(arm)``
  (the interaction term).

**Smallest detectable change** (SDC, 95 %): ``1.96 sqrt(2) CV_ws`` for one participant and
``/ sqrt(n)`` for the mean change of n participants, from the within-subject coefficient of
variation ``CV_ws``. Test-retest studies report the mean absolute test-retest variability
``TRV = |test - retest| / mean``; for normal errors ``E[TRV] = 2 CV_ws / sqrt(pi)``, so
``CV_ws = TRV sqrt(pi) / 2``. ``--test-retest-percent`` gives TRV (%); without it the
literature value of :data:`LITERATURE_TRV` is used, else SDC columns carry the reason.

Matched lesions (``longitudinal_lesions.tsv``): per arm and session, the paired t-test of each
participant's mean log ratio of core/rim DVR (participants are the unit) and a mixed model
``log ratio ~ 1`` over lesions with a random intercept per participant. Mixed-model CIs and
p-values are Wald (normal) intervals: narrower than t intervals with few participants.

The arm of each participant comes from ``sub-<label>_sessions.tsv`` (column ``arm`` or
``treatment``) of the input dataset; without it every participant is in arm ``all``.
Rows that cannot be computed are written with the reason in ``reason``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats as sps

from tspo_bidsapp.exitcodes import InvalidBIDSError
from tspo_bidsapp.group.tables import session_order

#: Mean absolute test-retest variability (%) per tracer and its source.
LITERATURE_TRV: dict[str, tuple[float, str]] = {
    "PBR28": (8.0, "Park et al. 2015 Eur J Nucl Med Mol Imaging 42:1081 (VT, 7-9 % in GM, "
                   "NAWM and MS lesions; midpoint)"),
}  # fmt: skip
ARM_COLUMNS = ("arm", "treatment")
REFERENCE_ARMS = ("control", "placebo", "untreated")
Z95 = float(sps.norm.ppf(0.975))
COLUMNS = (
    "tracer", "model", "ref", "measure", "region", "arm", "comparison", "test", "n",
    "percent_change", "ci_low", "ci_high", "p", "sdc_percent", "beyond_sdc", "trv_percent",
    "trv_source", "reason",
)  # fmt: skip


def within_subject_cv(trv_percent: float) -> float:
    """Within-subject CV (%) from the mean absolute test-retest variability (%)."""
    return float(trv_percent) * np.sqrt(np.pi) / 2.0


def smallest_detectable_change(trv_percent: float, n: int = 1) -> float:
    """95 % smallest detectable change (%) of one participant (n=1) or of a mean of n."""
    return Z95 * np.sqrt(2.0) * within_subject_cv(trv_percent) / np.sqrt(n)


def test_retest(tracer: str, user_percent: float | None) -> tuple[float | None, str]:
    """TRV (%) to use and its source (or None and why none is known)."""
    if user_percent is not None:
        return float(user_percent), "--test-retest-percent"
    found = LITERATURE_TRV.get(tracer.upper())
    if found is None:
        return (
            None,
            f"no literature test-retest value for tracer {tracer}; give --test-retest-percent",
        )
    return found


def read_arms(bids_dir: Path, labels) -> pd.DataFrame:
    """``participant_id``, ``arm`` from ``sub-<label>_sessions.tsv`` (one arm per participant)."""
    rows = []
    for label in sorted(labels):
        path = Path(bids_dir) / f"sub-{label}" / f"sub-{label}_sessions.tsv"
        if not path.is_file():
            continue
        try:
            table = pd.read_csv(path, sep="\t", dtype=str, na_values=["n/a"])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InvalidBIDSError(f"unreadable sessions table ({exc})", path=path) from exc
        col = next((c for c in ARM_COLUMNS if c in table.columns), None)
        if col is None:
            continue
        arms = sorted(set(table[col].dropna().str.strip()) - {""})
        if len(arms) > 1:
            raise InvalidBIDSError(
                f"participant in several arms ({', '.join(arms)}); one arm per participant",
                path=path, field=col,
            )  # fmt: skip
        if arms:
            rows.append({"participant_id": f"sub-{label}", "arm": arms[0]})
    return pd.DataFrame(rows, columns=["participant_id", "arm"])


def with_visits(data: pd.DataFrame) -> pd.DataFrame:
    """Add ``visit`` (0 = first session of the participant, natural order)."""
    order = data["session"].map(session_order)
    rank = data.assign(_o=order).sort_values("_o")
    rank["visit"] = rank.groupby("participant_id").cumcount()
    return rank.drop(columns="_o")


def _percent(x: float) -> float:
    return float(100.0 * np.expm1(x))


def _row(**kw) -> dict:
    return {c: kw.get(c, np.nan) for c in COLUMNS} | {"reason": kw.get("reason", "")}


def paired(ratios: np.ndarray) -> dict:
    """Paired t-test of log ratios (follow-up / baseline): percent change, 95 % CI, p."""
    n = ratios.size
    mean, se = ratios.mean(), ratios.std(ddof=1) / np.sqrt(n)
    half = sps.t.ppf(0.975, n - 1) * se
    p = float(sps.ttest_1samp(ratios, 0.0).pvalue)
    return {"n": n, "percent_change": _percent(mean), "ci_low": _percent(mean - half),
            "ci_high": _percent(mean + half), "p": p}  # fmt: skip


def _mixed(formula: str, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm(formula, data, groups=data["participant_id"]).fit(reml=True)


def _mixed_term(res, name: str, n: int) -> dict:
    est, (low, high) = res.params[name], res.conf_int().loc[name]
    return {"n": n, "percent_change": _percent(est), "ci_low": _percent(low),
            "ci_high": _percent(high), "p": float(res.pvalues[name])}  # fmt: skip


def reference_arm(arms) -> str:
    arms = sorted(arms)
    return next((a for a in arms if a.lower() in REFERENCE_ARMS), arms[0])


def _sdc(trv: float | None, pc: float, *ns: int) -> dict:
    if trv is None or not np.isfinite(pc):
        return {}
    sdc = Z95 * np.sqrt(2.0) * within_subject_cv(trv) * np.sqrt(sum(1.0 / n for n in ns))
    return {"sdc_percent": float(sdc), "beyond_sdc": bool(abs(pc) > sdc)}


def region_change_tests(data: pd.DataFrame, info: dict, trv, min_n: int = 3) -> list[dict]:
    """Paired, mixed-model and arm-difference rows of one region (columns of :data:`COLUMNS`).

    ``data``: participant_id, session, value, arm (one row per participant and session).
    """
    data = with_visits(data[data["value"] > 0]).assign(logv=lambda d: np.log(d["value"]))
    wide = data.pivot_table(index="participant_id", columns="visit", values="logv")
    arm_of = data.groupby("participant_id")["arm"].first()
    visits = [v for v in wide.columns if v > 0]
    rows = []
    arms = sorted(arm_of.unique())
    for arm in arms:
        members = arm_of.index[arm_of == arm]
        sub = data[data["participant_id"].isin(members)]
        fit = None
        for k in visits:
            ratios = (wide.loc[members, k] - wide.loc[members, 0]).dropna().to_numpy()
            common = info | {"arm": arm, "comparison": f"visit {k} vs baseline"}
            if ratios.size < min_n:
                why = f"{ratios.size} participant(s) with both visits; at least {min_n} needed"
                rows += [_row(**common, test=t, n=ratios.size, reason=why)
                         for t in ("paired t", "mixed model")]  # fmt: skip
                continue
            res = paired(ratios)
            rows.append(_row(**common, test="paired t", **res,
                             **_sdc(trv, res["percent_change"], ratios.size)))  # fmt: skip
            try:
                fit = fit or _mixed("logv ~ C(visit)", sub)
                res = _mixed_term(fit, f"C(visit)[T.{k}]", sub["participant_id"].nunique())
                rows.append(_row(**common, test="mixed model", **res,
                                 **_sdc(trv, res["percent_change"], ratios.size)))  # fmt: skip
            except (np.linalg.LinAlgError, ValueError, KeyError) as exc:
                rows.append(_row(**common, test="mixed model", reason=f"model failed: {exc}"))
    if len(arms) < 2:
        return rows
    ref = reference_arm(arms)
    for arm in (a for a in arms if a != ref):
        two = data[data["participant_id"].isin(arm_of.index[arm_of.isin((ref, arm))])]
        fit = None
        for k in visits:
            common = info | {"arm": f"{arm} vs {ref}", "comparison": f"visit {k} vs baseline"}
            change = [(wide.loc[arm_of.index[arm_of == a], k]
                       - wide.loc[arm_of.index[arm_of == a], 0]).dropna().to_numpy()
                      for a in (arm, ref)]  # fmt: skip
            if min(c.size for c in change) < min_n:
                why = (f"{change[0].size} ({arm}) and {change[1].size} ({ref}) participant(s) "
                       f"with both visits; at least {min_n} per arm needed")  # fmt: skip
                rows += [_row(**common, test=t, reason=why)
                         for t in ("two-sample t", "mixed model interaction")]  # fmt: skip
                continue
            diff = change[0].mean() - change[1].mean()
            test = sps.ttest_ind(change[0], change[1])
            half = sps.t.ppf(0.975, test.df) * diff / test.statistic if test.statistic else np.nan
            pc = _percent(diff)
            ns = tuple(c.size for c in change)
            rows.append(_row(**common, test="two-sample t", n=sum(ns), percent_change=pc,
                             ci_low=_percent(diff - abs(half)), ci_high=_percent(diff + abs(half)),
                             p=float(test.pvalue), **_sdc(trv, pc, *ns)))  # fmt: skip
            try:
                formula = f"logv ~ C(visit) * C(arm, Treatment(reference='{ref}'))"
                fit = fit or _mixed(formula, two)
                name = f"C(visit)[T.{k}]:C(arm, Treatment(reference='{ref}'))[T.{arm}]"
                res = _mixed_term(fit, name, two["participant_id"].nunique())
                rows.append(_row(**common, test="mixed model interaction", **res,
                                 **_sdc(trv, res["percent_change"], *ns)))  # fmt: skip
            except (np.linalg.LinAlgError, ValueError, KeyError) as exc:
                rows.append(_row(**common, test="mixed model interaction",
                                 reason=f"model failed: {exc}"))  # fmt: skip
    return rows


def change_statistics(
    values: pd.DataFrame,
    arms: pd.DataFrame,
    *,
    trv_percent: float | None = None,
    regions: tuple[str, ...],
    min_n: int = 3,
) -> pd.DataFrame:
    """All change tests. ``values``: long-table rows of the primary measure (one rec/run per
    participant and session, excluded rows removed): tracer, model, ref, measure, region,
    participant_id, session, value."""  # fmt: skip
    if values.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    values = values.merge(arms, on="participant_id", how="left")
    values["arm"] = values["arm"].fillna("all" if arms.empty else "no arm given")
    rows = []
    for (tracer, model, ref, measure), part in values.groupby(
        ["tracer", "model", "ref", "measure"], sort=True
    ):
        trv, source = test_retest(tracer, trv_percent)
        for region in [r for r in regions if r in set(part["region"])]:
            info = {"tracer": tracer, "model": model, "ref": ref, "measure": measure,
                    "region": region, "trv_percent": trv if trv is not None else np.nan,
                    "trv_source": source}  # fmt: skip
            sel = part[part["region"] == region]
            new = region_change_tests(sel, info, trv, min_n)
            if trv is None:
                for row in new:
                    row["reason"] = row["reason"] or f"smallest detectable change: {source}"
            rows += new
    return pd.DataFrame(rows, columns=list(COLUMNS))


def lesion_change_tests(
    lchange: pd.DataFrame, arms: pd.DataFrame, columns=("core_DVR", "rim_DVR"), min_n: int = 3
) -> pd.DataFrame:
    """Change of matched lesions (``longitudinal_lesions.tsv`` rows) per arm and session.

    Lesions of one participant are not independent: the paired t-test runs on each
    participant's mean log ratio (participants are the unit), the mixed model
    ``log ratio ~ 1`` on every lesion with a random intercept per participant.
    """
    if lchange.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    data = lchange.merge(arms, on="participant_id", how="left")
    data["arm"] = data["arm"].fillna("all" if arms.empty else "no arm given")
    rows = []
    keys = ["tracer", "model", "ref", "arm", "session"]
    for (tracer, model, ref, arm, ses), part in data.groupby(keys, sort=True):
        for col in (c for c in columns if f"baseline_{c}" in part.columns):
            ok = (part[col] > 0) & (part[f"baseline_{col}"] > 0)
            sel = part[ok].assign(lr=lambda d, c=col: np.log(d[c] / d[f"baseline_{c}"]))
            per = sel.groupby("participant_id")["lr"].mean().to_numpy()
            info = {"tracer": tracer, "model": model, "ref": ref, "measure": col, "arm": arm,
                    "region": "matched lesions", "comparison": f"session {ses} vs baseline"}  # fmt: skip
            if per.size < min_n:
                why = f"{per.size} participant(s) with matched lesions; at least {min_n} needed"
                rows += [_row(**info, test=t, n=per.size, reason=why)
                         for t in ("paired t (participant means)", "mixed model (lesions)")]  # fmt: skip
                continue
            rows.append(_row(**info, test="paired t (participant means)", **paired(per)))
            try:
                fit = _mixed("lr ~ 1", sel)
                rows.append(_row(**info, test="mixed model (lesions)",
                                 **_mixed_term(fit, "Intercept", len(sel))))  # fmt: skip
            except (np.linalg.LinAlgError, ValueError) as exc:
                rows.append(
                    _row(**info, test="mixed model (lesions)", reason=f"model failed: {exc}")
                )
    return pd.DataFrame(rows, columns=list(COLUMNS))
