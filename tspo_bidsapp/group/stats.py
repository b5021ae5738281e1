"""Group statistics per region: linear models, standardised effects, FDR, EDSS association.

Per region the outcome (DVR; SUVR for the SUVR model) of each participant's first session is
modelled by ordinary least squares (statsmodels)::

    value ~ C(group) + age + C(sex) [+ C(tspo_genotype)]

with healthy controls (HC) as the reference group. Terms are dropped when they do not vary
(one sex, one genotype) and rows with a missing covariate are dropped (counted in ``n``).
The genotype term (HAB reference) enters only for second-generation tracers, after LAB
participants are excluded (Owen et al. 2012, J Cereb Blood Flow Metab 32:1-5).

Contrasts are differences of adjusted group means, ``B - A`` (e.g. ``SPMS-HC``): estimate,
SE, t, p, 95 % CI; ``d_adjusted`` = estimate / residual SD of the model (a standardised
adjusted effect) and ``cohens_d`` = unadjusted difference of means / pooled SD. p-values are
corrected with Benjamini-Hochberg FDR (``q``) within each tracer/model/ref/measure across all
regions x contrasts of one family (``group``, ``genotype``, ``edss``).

EDSS: in patients (group not HC), the slope of value on EDSS adjusted for age, sex (and
genotype) by OLS (``estimate``, per EDSS point, ``p``, ``q``), plus the unadjusted Spearman
rank correlation (``spearman_rho``, ``spearman_p``). Disease subtype is not adjusted for.

Group x genotype (second-generation tracers, family ``interaction``): F-test of the
interaction terms ``C(group):C(genotype)`` against the additive model, on DVR and on log DVR
(``t`` holds F; groups with at least ``min_group_size`` HAB and MAB participants). A
significant interaction means the additive genotype adjustment does not fit; the group
contrasts should then be read per binding class.

``deep-GM`` is not tested (its parts are). Tests that cannot be computed are rows with the
reason in ``reason``.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

LOGGER = logging.getLogger("tspo_bidsapp.group")
CONTRASTS: tuple[tuple[str, str], ...] = (
    ("HC", "RRMS"), ("HC", "SPMS"), ("HC", "PPMS"), ("HC", "CIS"), ("RRMS", "SPMS"),
)  # fmt: skip
#: Regions tested by default (the reference region and CSF spaces are not). The derived
#: ``deep-GM`` (the volume-weighted mean of thalamus, caudate, putamen, pallidum) is left out:
#: its parts are tested, and a parent region would only enlarge the FDR family redundantly.
STAT_REGIONS: tuple[str, ...] = (
    "NAWM", "perilesional-WM-0-3mm", "perilesional-WM-3-6mm", "WM-lesions", "cortical-GM",
    "thalamus", "caudate", "putamen", "pallidum", "hippocampus", "amygdala",
    "brainstem", "cerebellar-WM", "choroid-plexus",
)  # fmt: skip
RESULT_COLUMNS = (
    "region", "family", "contrast", "n_a", "n_b", "mean_a", "mean_b", "estimate", "se", "t",
    "p", "ci_low", "ci_high", "d_adjusted", "cohens_d", "spearman_rho", "spearman_p", "n",
    "covariates", "q", "significant", "reason",
)  # fmt: skip


def _design(data: pd.DataFrame, adjust_genotype: bool) -> tuple[pd.DataFrame, list[str]]:
    """Rows with complete covariates and the covariate terms that vary."""
    terms = []
    cols = ["age", "sex"] + (["tspo_genotype"] if adjust_genotype else [])
    data = data.dropna(subset=[c for c in cols if data[c].notna().any()])
    if data["age"].notna().all() and data["age"].nunique() > 1:
        terms.append("age")
    if data["sex"].notna().all() and data["sex"].nunique() > 1:
        terms.append("C(sex)")
    if adjust_genotype and data["tspo_genotype"].nunique() > 1:
        terms.append("C(tspo_genotype, Treatment(reference='HAB'))")
    return data, terms


def _fit(formula: str, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.ols(formula, data=data).fit()


def _cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = a.size, b.size
    if na < 2 or nb < 2:
        return np.nan
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    return float((b.mean() - a.mean()) / pooled) if pooled > 0 else np.nan


def _test(res, weights: dict[str, float]) -> dict:
    names = list(res.params.index)
    vec = np.zeros(len(names))
    for name, w in weights.items():
        vec[names.index(name)] = w
    tt = res.t_test(vec)
    low, high = np.asarray(tt.conf_int()).ravel()
    est = float(np.asarray(tt.effect).ravel()[0])
    return {
        "estimate": est, "se": float(np.asarray(tt.sd).ravel()[0]),
        "t": float(np.asarray(tt.tvalue).ravel()[0]), "p": float(np.asarray(tt.pvalue).ravel()[0]),
        "ci_low": float(low), "ci_high": float(high),
        "d_adjusted": est / float(np.sqrt(res.scale)) if res.scale > 0 else np.nan,
    }  # fmt: skip


def region_group_tests(
    data: pd.DataFrame,
    *,
    adjust_genotype: bool,
    contrasts=CONTRASTS,
    min_group_size: int = 3,
) -> list[dict]:
    """Group contrasts (and the MAB-HAB genotype effect) of one region's ``value`` column."""
    data, terms = _design(data.dropna(subset=["value", "group"]), adjust_genotype)
    counts = data["group"].value_counts()
    groups = sorted(g for g, n in counts.items() if n >= min_group_size)
    data = data[data["group"].isin(groups)]
    if len(groups) < 2:
        return []
    ref = "HC" if "HC" in groups else groups[0]
    gterm = f"C(group, Treatment(reference='{ref}'))"
    res = _fit(f"value ~ {' + '.join([gterm, *terms])}", data)
    if res.df_resid < 1:
        return []
    covariates = ",".join(t.split(",")[0].removeprefix("C(").rstrip(")") for t in terms)
    out = []
    for a, b in contrasts:
        if a not in groups or b not in groups:
            continue
        weights = {}
        if b != ref:
            weights[f"{gterm}[T.{b}]"] = 1.0
        if a != ref:
            weights[f"{gterm}[T.{a}]"] = -1.0
        va = data.loc[data["group"] == a, "value"].to_numpy(float)
        vb = data.loc[data["group"] == b, "value"].to_numpy(float)
        out.append(
            {"family": "group", "contrast": f"{b}-{a}", "n_a": va.size, "n_b": vb.size,
             "mean_a": va.mean(), "mean_b": vb.mean(), **_test(res, weights),
             "cohens_d": _cohens_d(va, vb), "n": int(res.nobs), "covariates": covariates}
        )  # fmt: skip
    gname = "C(tspo_genotype, Treatment(reference='HAB'))[T.MAB]"
    if gname in res.params.index:
        va = data.loc[data["tspo_genotype"] == "HAB", "value"].to_numpy(float)
        vb = data.loc[data["tspo_genotype"] == "MAB", "value"].to_numpy(float)
        out.append(
            {"family": "genotype", "contrast": "MAB-HAB", "n_a": va.size, "n_b": vb.size,
             "mean_a": va.mean(), "mean_b": vb.mean(), **_test(res, {gname: 1.0}),
             "cohens_d": _cohens_d(va, vb), "n": int(res.nobs), "covariates": covariates}
        )  # fmt: skip
    return out


def region_interaction_test(data: pd.DataFrame, *, min_group_size: int = 3) -> list[dict]:
    """Group x genotype (HAB/MAB) interaction, on DVR and on log DVR (F-test of the
    interaction terms against the additive model, both adjusted for age and sex).

    A multiplicative genotype effect (MAB binding a fraction of HAB binding) appears as an
    interaction on the DVR scale but not on the log scale.
    """
    data, terms = _design(data.dropna(subset=["value", "group"]), True)
    cells = data.groupby(["group", "tspo_genotype"]).size()
    groups = sorted(g for g in data["group"].unique()
                    if all(cells.get((g, c), 0) >= min_group_size for c in ("HAB", "MAB")))  # fmt: skip
    base = {"family": "interaction", "covariates": "age,sex"}
    if len(groups) < 2:
        why = (f"fewer than 2 groups with at least {min_group_size} HAB and {min_group_size} "
               "MAB participants")  # fmt: skip
        return [base | {"contrast": "group x genotype", "reason": why}]
    data = data[data["group"].isin(groups) & (data["value"] > 0)]
    data = data.assign(logvalue=np.log(data["value"]))
    rest = [t for t in terms if not t.startswith("C(tspo_genotype")]
    gterm, genoterm = "C(group)", "C(tspo_genotype, Treatment(reference='HAB'))"
    out = []
    for scale, y in (("DVR", "value"), ("log DVR", "logvalue")):
        small = _fit(f"{y} ~ {' + '.join([gterm, genoterm, *rest])}", data)
        full = _fit(f"{y} ~ {gterm} * {genoterm}" + "".join(f" + {t}" for t in rest), data)
        f, p, df = full.compare_f_test(small)
        out.append(base | {"contrast": f"group x genotype ({scale})", "t": float(f),
                           "p": float(p), "n": int(full.nobs),
                           "covariates": f"age,sex; F-test, {int(df)} df"})  # fmt: skip
    return out


def region_edss_test(data: pd.DataFrame, *, adjust_genotype: bool, min_n: int = 5) -> list[dict]:
    """Slope of value on EDSS in patients (adjusted) and the Spearman correlation."""
    data = data[(data["group"] != "HC") & data["group"].notna()].dropna(subset=["value", "edss"])
    data, terms = _design(data, adjust_genotype)
    if len(data) < max(min_n, len(terms) + 3) or data["edss"].nunique() < 3:
        return []
    res = _fit(f"value ~ {' + '.join(['edss', *terms])}", data)
    rho, p_rho = sps.spearmanr(data["edss"], data["value"])
    covariates = ",".join(t.split(",")[0].removeprefix("C(").rstrip(")") for t in terms)
    return [
        {"family": "edss", "contrast": "EDSS slope (patients)", "n_a": 0, "n_b": len(data),
         "mean_a": np.nan, "mean_b": data["value"].mean(), **_test(res, {"edss": 1.0}),
         "spearman_rho": float(rho), "spearman_p": float(p_rho), "n": int(res.nobs),
         "covariates": covariates}
    ]  # fmt: skip


def family_statistics(
    data: pd.DataFrame,
    *,
    adjust_genotype: bool,
    regions: tuple[str, ...] = STAT_REGIONS,
    min_group_size: int = 3,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """All tests of one tracer/model/ref/measure (rows: one per region); FDR per family.

    ``data`` has columns region, value, group, age, sex, edss, tspo_genotype (one row per
    participant and region; excluded rows already removed). A test that cannot be computed
    is a row whose ``reason`` says why (``reason`` is empty otherwise).
    """
    rows = []
    for region in [r for r in regions if r in set(data["region"])]:
        part = data[data["region"] == region]
        if part["value"].nunique() < 3:
            rows.append({"region": region, "family": "group", "contrast": "all",
                         "reason": "fewer than 3 distinct values"})  # fmt: skip
            continue
        found = region_group_tests(
            part, adjust_genotype=adjust_genotype, min_group_size=min_group_size
        )
        edss = region_edss_test(part, adjust_genotype=adjust_genotype)
        inter = region_interaction_test(part, min_group_size=min_group_size) if (
            adjust_genotype
        ) else []  # fmt: skip
        for row in found + edss + inter + _not_tested(part, found, edss, min_group_size):
            rows.append({"region": region, **row})
    table = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS])
    table["q"] = np.nan
    for _, idx in table.groupby("family").groups.items():
        p = table.loc[idx, "p"].to_numpy(float)
        ok = np.isfinite(p)
        if ok.any():
            q = np.full(p.shape, np.nan)
            q[ok] = multipletests(p[ok], alpha=alpha, method="fdr_bh")[1]
            table.loc[idx, "q"] = q
    table["significant"] = table["q"] < alpha
    table["reason"] = table["reason"].fillna("")
    return table


def _not_tested(part: pd.DataFrame, found: list, edss: list, min_group_size: int) -> list[dict]:
    """Reason rows for the default contrasts and the EDSS slope that could not be tested."""
    counts = part.dropna(subset=["value", "group"])["group"].value_counts()
    done = {r["contrast"] for r in found}
    rows = []
    for a, b in CONTRASTS:
        if f"{b}-{a}" in done or a not in counts or b not in counts:
            continue
        small = [
            f"{g}: {int(counts.get(g, 0))}" for g in (a, b) if counts.get(g, 0) < min_group_size
        ]
        why = (f"group size below --min-group-size {min_group_size} ({', '.join(small)})"
               if small else "model could not be fitted")  # fmt: skip
        rows.append({"family": "group", "contrast": f"{b}-{a}", "reason": why})
    if not edss:
        pts = part[(part["group"] != "HC") & part["group"].notna()].dropna(subset=["edss"])
        rows.append({"family": "edss", "contrast": "EDSS slope (patients)",
                     "reason": f"{len(pts)} patient(s) with EDSS, {pts['edss'].nunique()} "
                     "distinct value(s): at least 5 and 3 needed"})  # fmt: skip
    return rows
