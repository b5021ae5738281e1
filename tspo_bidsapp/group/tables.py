"""Study tables: one row per participant/session/tracer/model (wide) and a long format.

Clinical columns come from the input ``participants.tsv`` (group, age, sex, EDSS, TSPO
genotype). For second-generation tracers (rs6971-sensitive, :mod:`tspo_bidsapp.tracers`) LAB
participants and participants of unknown genotype are kept in the tables but flagged
``excluded`` from statistics (Owen et al. 2012, J Cereb Blood Flow Metab 32:1-5).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tspo_bidsapp.group.collect import FIT_KEYS, MEASURES, RUN_KEYS
from tspo_bidsapp.io.participants import ParticipantInfo
from tspo_bidsapp.kinetics.registry import INPUT_FUNCTION, model_entity, model_names
from tspo_bidsapp.quant.quality import is_flagged
from tspo_bidsapp.tracers import lookup_tracer

CLINICAL = ("group", "age", "sex", "edss", "tspo_genotype")
PHENOTYPE_COLUMNS = (
    "n_lesions", "n_classified", "n_rim_active", "proportion_rim_active", "n_overall_active",
    "proportion_overall_active", "n_inactive", "proportion_inactive", "polvinen_predictor",
)  # fmt: skip


def primary_measure(model: str) -> str:
    """Outcome of the statistics for a model (its ``model-`` label): SUVR for SUVR, SUV for the
    static runs' SUV, V_T for the plasma-input models, DVR otherwise."""
    if model in {model_entity(m) for m in model_names(INPUT_FUNCTION)}:
        return "VT"
    return model.upper() if model.upper() in ("SUVR", "SUV") else "DVR"


def genotype_sensitive(tracer: str) -> bool:
    found = lookup_tracer(tracer)
    return bool(found is not None and found.genotype_sensitive)


def attach_participants(
    table: pd.DataFrame, participants: dict[str, ParticipantInfo]
) -> pd.DataFrame:
    """Add clinical columns and the ``excluded`` / ``exclusion_reason`` flags to any run table."""
    if table.empty:
        return table
    table = table.copy()
    labels = table["participant_id"].str.removeprefix("sub-")
    info = [participants.get(lab) for lab in labels]
    for col in ("group", "age", "sex", "edss"):
        table[col] = [getattr(i, col) if i else None for i in info]
    written = table["tspo_genotype"] if "tspo_genotype" in table.columns else None
    table["tspo_genotype"] = [
        (i.tspo_genotype if i and i.tspo_genotype else None)
        or (written.iloc[n] if written is not None and isinstance(written.iloc[n], str) else None)
        for n, i in enumerate(info)
    ]
    sensitive = table["tracer"].map(genotype_sensitive)
    reason = np.where(
        sensitive & (table["tspo_genotype"] == "LAB"),
        "LAB with a second-generation tracer",
        np.where(sensitive & table["tspo_genotype"].isna(), "genotype unknown", ""),
    )
    reason = np.where(table["group"].isna(), "group unknown", reason)
    table["genotype_sensitive"] = sensitive
    table["excluded"] = reason != ""
    table["exclusion_reason"] = reason
    for col in ("age", "edss"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def long_table(regional: pd.DataFrame) -> pd.DataFrame:
    """One row per run/model/ref/region/measure (DVR, BPND, SUVR, R1, V_T, SUV where estimated)."""
    if regional.empty:
        return regional
    measures = [m for m in MEASURES if m in regional.columns]
    id_cols = [c for c in (*FIT_KEYS, "region", "volume_ml", *CLINICAL, "excluded",
                           "exclusion_reason", "derived", "fit_quality")
               if c in regional.columns]  # fmt: skip
    long = regional.melt(id_vars=id_cols, value_vars=measures, var_name="measure")
    long = long[np.isfinite(pd.to_numeric(long["value"], errors="coerce"))]
    return long.sort_values([*FIT_KEYS, "region", "measure"]).reset_index(drop=True)


def study_table(regional: pd.DataFrame, phenotypes: pd.DataFrame) -> pd.DataFrame:
    """Wide table: one row per run/model/ref; ``<region>_<measure>`` columns; phenotypes."""
    if regional.empty:
        return regional
    long = long_table(regional)
    long = long[long["measure"].isin(("DVR", "BPND", "SUVR", "VT", "SUV"))]
    wide = long.pivot_table(
        index=list(FIT_KEYS), columns=["region", "measure"], values="value", aggfunc="first"
    )
    order = list(dict.fromkeys(regional["region"]))
    wide = wide.reindex(columns=sorted(wide.columns, key=lambda c: (order.index(c[0]), c[1])))
    wide.columns = [f"{r}_{m}" for r, m in wide.columns]
    wide = wide.reset_index()
    info_cols = [*CLINICAL, "genotype_sensitive", "excluded", "exclusion_reason"]
    info = regional[[*FIT_KEYS, *info_cols]].drop_duplicates(list(FIT_KEYS))
    wide = info.merge(wide, on=list(FIT_KEYS), how="right")
    wide = wide.merge(flagged_regions(regional), on=list(FIT_KEYS), how="left")
    if not phenotypes.empty:
        cols = [c for c in PHENOTYPE_COLUMNS if c in phenotypes.columns]
        wide = wide.merge(phenotypes[[*FIT_KEYS, *cols]], on=list(FIT_KEYS), how="left")
    wide["polvinen_predictor_reason"] = phenotype_reason(wide)
    return wide[[*FIT_KEYS, *[c for c in wide.columns if c not in FIT_KEYS]]]


def phenotype_reason(wide: pd.DataFrame) -> list[str]:
    """Why the Polvinen predictor (and the proportions) are missing; '' where computed."""
    n = wide["n_lesions"] if "n_lesions" in wide.columns else pd.Series(np.nan, wide.index)
    classified = wide.get("n_classified", pd.Series(np.nan, wide.index))
    out = []
    for total, done in zip(n, classified, strict=True):
        if pd.isna(total):
            out.append("no lesion phenotype table (participant level without an active threshold)")
        elif total == 0:
            out.append("no lesions")
        elif not done:
            out.append("no lesion could be classified")
        else:
            out.append("")
    return out


def flagged_regions(regional: pd.DataFrame) -> pd.DataFrame:
    """Per run/model/ref: ``flagged_regions``, the regions whose fit is not ``ok`` and why."""
    keys = regional[list(FIT_KEYS)].drop_duplicates()
    if "fit_quality" not in regional.columns:
        return keys.assign(flagged_regions="")
    bad = regional[is_flagged(regional["fit_quality"])]
    text = (bad["region"] + " (" + bad["fit_quality"] + ")").groupby(
        [bad[k] for k in FIT_KEYS], sort=False).agg("; ".join).rename("flagged_regions")  # fmt: skip
    out = keys.merge(text.reset_index(), on=list(FIT_KEYS), how="left")
    return out.fillna({"flagged_regions": ""})


def baseline_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of each participant's first session (natural order) per tracer/rec/run/model/ref."""
    if table.empty:
        return table
    first = (
        table[list(RUN_KEYS)]
        .drop_duplicates()
        .assign(_order=lambda t: t["session"].map(session_order))
        .sort_values("_order")
        .drop_duplicates(["participant_id", "tracer", "rec", "run"])
    )
    return table.merge(first[list(RUN_KEYS)], on=list(RUN_KEYS))


def session_order(label: str) -> tuple:
    """Natural sort key of a session label ('2' before '10'; 'base' before 'followup')."""
    parts = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", label or "") if p]
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in parts)
