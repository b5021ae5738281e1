"""Group HTML report: tables and matplotlib figures (PNG embedded; offline, one file)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.config import write_text_atomic

GROUP_ORDER = ("HC", "CIS", "RRMS", "SPMS", "PPMS")
KEY_REGIONS = ("NAWM", "perilesional-WM-0-3mm", "cortical-GM", "thalamus", "deep-GM",
               "choroid-plexus", "WM-lesions")  # fmt: skip


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _groups(values) -> list[str]:
    present = [g for g in GROUP_ORDER if g in set(values)]
    return present + sorted(set(values) - set(present) - {None})


def strip_plot(data: pd.DataFrame, title: str) -> str:
    """Per-region strip plots of the outcome by group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regions = [r for r in KEY_REGIONS if r in set(data["region"])]
    if not regions:
        return ""
    fig, axes = plt.subplots(
        1, len(regions), figsize=(2.6 * len(regions), 2.8), squeeze=False, layout="constrained"
    )
    rng = np.random.default_rng(0)
    for ax, region in zip(axes[0], regions, strict=True):
        part = data[data["region"] == region]
        groups = _groups(part["group"].dropna())
        for i, g in enumerate(groups):
            v = part.loc[part["group"] == g, "value"].to_numpy(float)
            ax.plot(i + rng.uniform(-0.15, 0.15, v.size), v, "o", ms=3, alpha=0.7)
            if v.size:
                ax.hlines(np.mean(v), i - 0.3, i + 0.3, color="k")
        ax.set_xticks(range(len(groups)), groups, fontsize=7)
        ax.set_title(region, fontsize=8)
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def edss_plot(data: pd.DataFrame, title: str) -> str:
    import matplotlib.pyplot as plt

    pts = data[(data["group"] != "HC") & data["edss"].notna()]
    regions = [r for r in ("NAWM", "thalamus", "cortical-GM") if r in set(pts["region"])]
    if pts.empty or not regions:
        return ""
    fig, axes = plt.subplots(
        1, len(regions), figsize=(2.8 * len(regions), 2.6), squeeze=False, layout="constrained"
    )
    for ax, region in zip(axes[0], regions, strict=True):
        part = pts[pts["region"] == region]
        for g in _groups(part["group"]):
            sel = part[part["group"] == g]
            ax.plot(sel["edss"], sel["value"], "o", ms=3, label=g)
        ax.set_xlabel("EDSS", fontsize=7)
        ax.set_title(region, fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def phenotype_plot(study: pd.DataFrame) -> str:
    import matplotlib.pyplot as plt

    cols = ["proportion_rim_active", "proportion_overall_active", "proportion_inactive"]
    if not set(cols) <= set(study.columns):
        return ""
    data = study.dropna(subset=cols).groupby("group")[cols].mean()
    if data.empty:
        return ""
    fig, ax = plt.subplots(figsize=(4, 2.6))
    bottom = np.zeros(len(data))
    for col in cols:
        ax.bar(data.index, data[col], bottom=bottom, label=col.removeprefix("proportion_"))
        bottom += data[col].to_numpy()
    ax.set_ylabel("mean proportion of lesions", fontsize=7)
    ax.legend(fontsize=6)
    return _png(fig)


def map_plot(z_file: Path, title: str) -> str:
    import matplotlib.pyplot as plt
    from nilearn import plotting

    fig = plt.figure(figsize=(7, 2.4))
    plotting.plot_stat_map(str(z_file), display_mode="z", cut_coords=5, figure=fig, title=title,
                           colorbar=True)  # fmt: skip
    return _png(fig)


def _table(df: pd.DataFrame, max_rows: int = 200) -> str:
    if df is None or df.empty:
        return "<p>none</p>"
    return df.head(max_rows).to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="n/a")


def write_report(path: Path, sections: list[tuple[str, str]]) -> Path:
    """Write ``sections`` (title, HTML body) as one self-contained HTML file."""
    body = "\n".join(f"<h2>{html.escape(t)}</h2>\n{b}" for t, b in sections)
    write_text_atomic(
        path,
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>tspo-bidsapp group report"
        "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "font-size:11px}td,th{border:1px solid #ccc;padding:2px 5px}</style></head><body>"
        f"<h1>tspo-bidsapp group report</h1>\n{body}\n</body></html>\n",
    )
    return path


table_html = _table
