"""Group HTML report: tables and matplotlib figures (PNG embedded; offline, one file).

Styled like the participant reports (shared stylesheet) and linked to them both ways; wide
tables scroll sideways; regional plots share a labelled y axis; the statistics section says why
a test was not run.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.config import write_text_atomic
from tspo_bidsapp.quant.quality import is_flagged
from tspo_bidsapp.reports.assemble import GROUP_REPORT, stylesheet

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


def _flagged(part: pd.DataFrame) -> np.ndarray:
    """Rows left out of the statistics: excluded participants or flagged fits."""
    out = part["excluded"].astype(bool).to_numpy() if "excluded" in part else np.zeros(len(part))
    if "fit_quality" in part:
        out = out | is_flagged(part["fit_quality"])
    return out.astype(bool)


def strip_plot(data: pd.DataFrame, title: str, measure: str = "DVR") -> str:
    """Per-region strip plots of the outcome by group (one shared, labelled y axis).

    Filled markers enter the statistics; hollow ones are excluded participants or flagged fits.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regions = [r for r in KEY_REGIONS if r in set(data["region"])]
    if not regions:
        return ""
    fig, axes = plt.subplots(1, len(regions), figsize=(2.4 * len(regions), 3.2), squeeze=False,
                             sharey=True, layout="constrained")  # fmt: skip
    rng = np.random.default_rng(0)
    for ax, region in zip(axes[0], regions, strict=True):
        part = data[data["region"] == region]
        groups = _groups(part["group"].dropna())
        for i, g in enumerate(groups):
            sel = part[part["group"] == g]
            v, out = sel["value"].to_numpy(float), _flagged(sel)
            x = i + rng.uniform(-0.15, 0.15, v.size)
            ax.plot(x[~out], v[~out], "o", ms=6, alpha=0.8, color=f"C{i}")
            ax.plot(x[out], v[out], "o", ms=6, mfc="none", color=f"C{i}")
            if (~out).any():
                ax.hlines(np.mean(v[~out]), i - 0.3, i + 0.3, color="k")
        ax.set_xticks(range(len(groups)), groups, fontsize=8)
        ax.set_xlim(-0.6, max(len(groups), 1) - 0.4)
        ax.set_title(region, fontsize=9)
        ax.grid(axis="y", color="0.9")
    axes[0][0].set_ylabel(measure)
    fig.suptitle(f"{title} (line: mean of included; hollow: excluded or flagged)", fontsize=9)
    return _png(fig)


def edss_plot(data: pd.DataFrame, title: str, measure: str = "DVR") -> str:
    import matplotlib.pyplot as plt

    pts = data[(data["group"] != "HC") & data["edss"].notna()]
    regions = [r for r in ("NAWM", "thalamus", "cortical-GM") if r in set(pts["region"])]
    if pts.empty or not regions:
        return ""
    fig, axes = plt.subplots(1, len(regions), figsize=(2.8 * len(regions), 2.8), squeeze=False,
                             sharey=True, layout="constrained")  # fmt: skip
    for ax, region in zip(axes[0], regions, strict=True):
        part = pts[pts["region"] == region]
        for g in _groups(part["group"]):
            sel = part[part["group"] == g]
            ax.plot(sel["edss"], sel["value"], "o", ms=6, label=g)
        ax.set_xlabel("EDSS", fontsize=8)
        ax.set_title(region, fontsize=9)
        ax.grid(color="0.9")
    axes[0][0].set_ylabel(measure)
    axes[0][0].legend(fontsize=7)
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
        label = col.removeprefix("proportion_").replace("_", "-")  # as in the lesion tables
        ax.bar(data.index, data[col], bottom=bottom, label=label)
        bottom += data[col].to_numpy()
    ax.set_ylabel("mean proportion of lesions", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return _png(fig)


def map_plot(z_file: Path, title: str) -> str:
    import matplotlib.pyplot as plt
    from nilearn import plotting

    fig = plt.figure(figsize=(7, 2.4))
    plotting.plot_stat_map(str(z_file), display_mode="z", cut_coords=5, figure=fig, title=title,
                           colorbar=True)  # fmt: skip
    return _png(fig)


def _table(df: pd.DataFrame, max_rows: int = 200) -> str:
    """A scrollable HTML table; missing values (NaN or None) as n/a."""
    if df is None or df.empty:
        return "<p>none</p>"
    shown = df.head(max_rows).astype(object).where(df.head(max_rows).notna(), "n/a")
    text = shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="n/a",
                         border=0)  # fmt: skip
    more = (
        f"<p>First {max_rows} of {len(df)} rows; all in the TSV.</p>" if len(df) > max_rows else ""
    )
    return f'<div class="scroll">{text}</div>{more}'


PARTICIPANT_COLUMNS = ("participant_id", "session", "tracer", "model", "ref", "group", "age", "sex",
                       "edss", "tspo_genotype", "excluded", "exclusion_reason", "n_lesions",
                       "n_rim_active", "n_overall_active", "n_inactive", "flagged_regions")  # fmt: skip


def study_tables(study: pd.DataFrame) -> str:
    """The study table split into readable parts: participants (clinical, exclusions, lesion
    counts, flagged fits) and one table of regional values per measure."""
    if study is None or study.empty:
        return "<p>none</p>"
    keys = [c for c in ("participant_id", "session", "tracer", "model", "ref") if c in study]
    parts = [("Participants, lesion counts and flagged fits",
              study[[c for c in PARTICIPANT_COLUMNS if c in study]])]  # fmt: skip
    for measure in ("DVR", "BPND", "SUVR"):
        cols = [c for c in study.columns if c.endswith(f"_{measure}")]
        if cols:
            table = study[keys + cols].rename(columns={c: c.removesuffix(f"_{measure}")
                                                       for c in cols})  # fmt: skip
            parts.append((f"Regional {measure}", table.dropna(axis=0, how="all", subset=[
                c.removesuffix(f"_{measure}") for c in cols])))  # fmt: skip
    return "".join(f"<h3>{html.escape(t)}</h3>{_table(df)}" for t, df in parts)


def statistics_note(long: pd.DataFrame, stats: pd.DataFrame, min_group_size: int) -> str:
    """Why tests were or were not run: participants per group that enter the statistics, and
    the tests that need more (``--min-group-size``; EDSS association: 5 patients)."""
    if long is None or long.empty:
        return "<p>No regional values were found, so no statistics were run.</p>"
    used = long[~_flagged(long)]
    people = used.drop_duplicates("participant_id")
    counts = people["group"].value_counts()
    found = ", ".join(f"{g} {counts[g]}" for g in _groups(counts.index)) or "none"
    big = [g for g in counts.index if counts[g] >= min_group_size]
    lines = [f"Participants entering the statistics (not excluded, values not flagged): {found}."]
    if len(big) < 2:
        lines.append(f"Group comparisons were not run: they need at least two groups of "
                     f"{min_group_size} or more participants (--min-group-size).")  # fmt: skip
    n_edss = (
        int((people["group"].ne("HC") & people["edss"].notna()).sum()) if "edss" in people else 0
    )
    if n_edss < 5:
        lines.append(f"The EDSS association was not run: it needs 5 patients with an EDSS "
                     f"(found {n_edss}).")  # fmt: skip
    excluded = long[long.get("excluded", False).astype(bool)] if "excluded" in long else long[:0]
    for pid, reason in excluded[["participant_id", "exclusion_reason"]].drop_duplicates().values:
        lines.append(f"{pid} excluded: {reason}.")
    if "fit_quality" in long:
        bad = long[is_flagged(long["fit_quality"])].drop_duplicates(["participant_id", "region"])
        n = len(bad)
        if n:
            lines.append(f"{n} regional value(s) with a flagged fit were left out "
                         "(--group-include-flagged keeps them).")  # fmt: skip
    if stats is None or stats.empty:
        lines.append("No test could be run on these data.")
    return "".join(f'<div class="note">{html.escape(t)}</div>' for t in lines)


def write_report(path: Path, sections: list[tuple[str, str]]) -> Path:
    """Write ``sections`` (title, HTML body) as one self-contained HTML file, styled like the
    participant reports and linked to each of them (``OUTPUT_DIR/sub-<label>.html``)."""
    output_dir = path.parent.parent
    people = sorted(p.name for p in output_dir.glob("sub-*.html"))
    up = "../" * len(GROUP_REPORT.parent.parts)
    links = " ".join(f'<a href="{up}{html.escape(n)}">{html.escape(n[:-5])}</a>' for n in people)
    nav = "".join(f'<a href="#s{i}">{i}. {html.escape(t)}</a>'
                  for i, (t, _) in enumerate(sections, 1))  # fmt: skip
    body = "\n".join(f'<section id="s{i}"><h2>{i}. {html.escape(t)}</h2>\n{b}</section>'
                     for i, (t, b) in enumerate(sections, 1))  # fmt: skip
    write_text_atomic(
        path,
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>tspo-bidsapp group report</title><style>{stylesheet()}</style></head><body>"
        "<header><h1>tspo-bidsapp · group report</h1>"
        f"<div>Participant reports: {links or 'none found'}</div></header>"
        f"<nav>{nav}</nav><main>\n{body}\n</main>"
        "<footer>Built from the participant-level outputs in this folder; open offline, no "
        "external resources.</footer></body></html>\n",
    )
    return path


table_html = _table
