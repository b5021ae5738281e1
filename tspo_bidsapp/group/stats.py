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
#: Regions tested by default (the reference region and CSF spaces are not).
STAT_REGIONS: tuple[str, ...] = (
    "NAWM", "perilesional-WM-0-3mm", "perilesional-WM-3-6mm", "WM-lesions", "cortical-GM",
    "thalamus", "caudate", "putamen", "pallidum", "deep-GM", "hippocampus", "amygdala",
    "brainstem", "cerebellar-WM", "choroid-plexus",
)  # fmt: skip
RESULT_COLUMNS = (
    "region", "family", "contrast", "n_a", "n_b", "mean_a", "mean_b", "estimate", "se", "t",
    "p", "ci_low", "ci_high", "d_adjusted", "cohens_d", "spearman_rho", "spearman_p", "n",
    "covariates", "q", "significant",
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
    participant and region; excluded rows already removed).
    """
    rows = []
    for region in [r for r in regions if r in set(data["region"])]:
        part = data[data["region"] == region]
        if part["value"].nunique() < 3:
            continue
        for row in region_group_tests(
            part, adjust_genotype=adjust_genotype, min_group_size=min_group_size
        ) + region_edss_test(part, adjust_genotype=adjust_genotype):
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
    return table
