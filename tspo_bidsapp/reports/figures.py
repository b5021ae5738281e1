"""Line and bar plots of the report (SVG): motion, TACs, model fits, region volumes.

Each function reads derivative files by path, writes one figure and returns what the report
needs to say about it (flagged frames, residuals). Times are shown in minutes (files carry
seconds); activity in the units of the TAC file (kBq/mL for tspo-bidsapp outputs).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tspo_bidsapp.io.timing import FrameTiming  # noqa: E402
from tspo_bidsapp.kinetics.frames import InterpolatedReference  # noqa: E402
from tspo_bidsapp.kinetics.srtm import srtm_frames  # noqa: E402
from tspo_bidsapp.quant.tacs import read_tacs_tsv  # noqa: E402
from tspo_bidsapp.writing import atomic_write  # noqa: E402

#: Regions shown in the kinetics figure when present (TSPO-MS names), in this order.
KEY_REGIONS = (
    "thalamus", "cortical-GM", "NAWM", "WM-lesions", "perilesional-WM-0-3mm", "choroid-plexus",
)  # fmt: skip
#: Candidates for the high-binding curve of the reference-region figure.
HIGH_BINDING = ("thalamus", "choroid-plexus", "WM-lesions")
TRANSLATIONS = ("trans_x", "trans_y", "trans_z")
ROTATIONS = ("rot_x", "rot_y", "rot_z")


def save_figure(fig, out: Path, **kwargs) -> Path:
    """Write a matplotlib figure atomically (format from ``out``'s suffix) and close it."""
    fmt = out.suffix.lstrip(".")
    meta = {"Date": None} if fmt == "svg" else {}
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, format=fmt, metadata=meta, **kwargs))
    finally:
        plt.close(fig)
    return out


def _save(fig, out: Path) -> Path:
    return save_figure(fig, out, bbox_inches="tight")


def flagged_frames(fd_mm: np.ndarray, threshold_mm: float) -> list[int]:
    """Frame indices (0-based) whose framewise displacement exceeds ``threshold_mm``."""
    fd = np.nan_to_num(np.asarray(fd_mm, float), nan=0.0)
    return [int(i) for i in np.flatnonzero(fd > threshold_mm)]


def plot_motion(confounds_tsv: Path, out: Path, *, threshold_mm: float) -> dict:
    """Translations (mm), rotations (degrees) and framewise displacement (mm) per frame.

    Returns ``flagged`` (0-based frames with FD > threshold), ``max_fd_mm``,
    ``max_trans_mm`` and ``max_rot_deg``.
    """
    table = pd.read_csv(confounds_tsv, sep="\t", na_values=["n/a"])
    missing = [c for c in (*TRANSLATIONS, *ROTATIONS) if c not in table.columns]
    if missing:
        raise ValueError(f"{confounds_tsv}: missing columns {missing}")
    frames = np.arange(1, len(table) + 1)
    if "framewise_displacement" in table.columns:
        fd = table["framewise_displacement"].to_numpy(float)
    else:
        fd = np.full(len(table), np.nan)
    flags = flagged_frames(fd, threshold_mm)
    fig, axes = plt.subplots(3, 1, figsize=(8, 5.6), sharex=True)
    for ax, cols, scale, unit in (
        (axes[0], TRANSLATIONS, 1.0, "mm"),
        (axes[1], ROTATIONS, 180.0 / np.pi, "degrees"),
    ):
        for col, colour in zip(cols, ("tab:red", "tab:green", "tab:blue"), strict=True):
            ax.plot(frames, table[col].to_numpy(float) * scale, marker=".", color=colour, label=col)
        ax.set_ylabel(unit)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.axhline(0, color="0.7", lw=0.5)
    axes[0].set_title("Head motion per frame (relative to the reference frame)")
    axes[2].plot(frames, fd, marker=".", color="k", label="framewise displacement")
    axes[2].axhline(threshold_mm, color="tab:red", ls="--", lw=1, label=f"{threshold_mm:g} mm")
    if flags:
        axes[2].plot(frames[flags], fd[flags], "o", mfc="none", mec="tab:red", ms=9,
                     label="flagged")  # fmt: skip
    axes[2].set_ylabel("FD (mm)")
    axes[2].set_xlabel("frame")
    axes[2].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    _save(fig, out)
    rot = table[list(ROTATIONS)].to_numpy(float)
    return {
        "flagged": flags,
        "max_fd_mm": float(np.nanmax(fd)) if np.isfinite(fd).any() else float("nan"),
        "max_trans_mm": float(np.nanmax(np.abs(table[list(TRANSLATIONS)].to_numpy(float)))),
        "max_rot_deg": float(np.degrees(np.nanmax(np.abs(rot)))),
        "n_frames": len(table),
    }


def whole_brain_tac(tacs: dict[str, np.ndarray], volumes: dict[str, float]) -> np.ndarray:
    """Volume-weighted mean of the brain-tissue regional TACs (CSF and ventricles excluded)."""
    if "whole-brain" in tacs:
        return tacs["whole-brain"]
    skip = ("ventricles", "CSF-extracerebral")
    names = [n for n in tacs if n not in skip and volumes.get(n, 0) > 0]
    if not names:
        raise ValueError("no regional TAC with a volume to build a whole-brain TAC")
    weights = np.array([volumes[n] for n in names])
    return (
        np.sum([tacs[n] * w for n, w in zip(names, weights, strict=True)], axis=0) / weights.sum()
    )


def read_volumes(morph_tsv: Path | None) -> dict[str, float]:
    """Region name -> volume (mL) from a ``_morph.tsv`` (``{}`` when absent)."""
    if morph_tsv is None or not Path(morph_tsv).exists():
        return {}
    table = pd.read_csv(morph_tsv, sep="\t")
    return dict(zip(table["name"], table["volume_ml"].astype(float), strict=True))


def plot_reference_tacs(
    ref_tsv: Path,
    regions_tsv: Path | None,
    out: Path,
    *,
    volumes: dict[str, float],
    ref_label: str | None = None,
) -> dict:
    """Reference TAC with the whole-brain TAC and a high-binding region (kBq/mL vs minutes).

    ``ref_label``: the reference's name (the ``ref-`` entity); default: the TSV column."""
    timing, ref = read_tacs_tsv(ref_tsv)
    ref_name, ref_tac = next(iter(ref.items()))
    mid = timing.mid_min
    fig, ax = plt.subplots(figsize=(7, 3.6))
    label = ref_label or ref_name
    ax.plot(mid, ref_tac, "o-", color="tab:blue", ms=3,
            label="reference" if label == "reference" else f"reference: {label}")  # fmt: skip
    info: dict = {"reference": ref_name}
    if regions_tsv is not None:
        _, tacs = read_tacs_tsv(regions_tsv)
        try:
            ax.plot(mid, whole_brain_tac(tacs, volumes), "s-", color="0.4", ms=3,
                    label="whole brain")  # fmt: skip
        except ValueError:
            pass
        high = next((n for n in HIGH_BINDING if n in tacs), None)
        if high is not None:
            ax.plot(mid, tacs[high], "^-", color="tab:red", ms=3, label=f"high binding ({high})")
            late = mid >= mid[-1] / 2
            info["late_ratio"] = float(np.mean(tacs[high][late]) / np.mean(ref_tac[late]))
            info["high_binding"] = high
    ax.set_xlabel("time (min)")
    ax.set_ylabel("activity (kBq/mL)")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Reference-region time-activity curve")
    _save(fig, out)
    return info


def srtm_fit_curve(timing: FrameTiming, ref_tac: np.ndarray, row: pd.Series) -> np.ndarray:
    """Frame-averaged SRTM curve of a ``_kinpar.tsv`` row (R1, k2 [1/min], BPND)."""
    ref = InterpolatedReference(timing.start_min, timing.end_min, ref_tac)
    return srtm_frames(ref, float(row["R1"]), float(row["k2"]), float(row["BPND"]))


def plot_kinetic_fits(
    regions_tsv: Path, ref_tsv: Path, kinpar_tsv: Path, out: Path, *, model: str
) -> dict[str, float]:
    """Key regional TACs, their model fits and residuals. Returns the relative RMS residual
    (RMS(data - fit) / mean(data)) of each region that has a fitted curve."""
    timing, tacs = read_tacs_tsv(regions_tsv)
    _, ref = read_tacs_tsv(ref_tsv)
    ref_tac = next(iter(ref.values()))
    table = pd.read_csv(kinpar_tsv, sep="\t", na_values=["n/a"]).set_index("region")
    regions = [r for r in KEY_REGIONS if r in tacs] or list(tacs)[:5]
    mid = timing.mid_min
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(8, 5.4), sharex=True, height_ratios=(3, 1.3))
    ax.plot(mid, ref_tac, "k--", lw=1, label="reference")
    residuals: dict[str, float] = {}
    fittable = model.upper() in ("SRTM", "SRTM2")
    for i, name in enumerate(regions):
        colour = f"C{i}"
        ax.plot(mid, tacs[name], "o", color=colour, ms=3, label=name)
        if not fittable or name not in table.index:
            continue
        row = table.loc[name]
        if not np.all(np.isfinite([row["R1"], row["k2"], row["BPND"]])):
            continue
        fit = srtm_fit_curve(timing, ref_tac, row)
        ax.plot(mid, fit, "-", color=colour, lw=1)
        res = tacs[name] - fit
        axr.plot(mid, res, ".-", color=colour, lw=0.8, ms=3)
        residuals[name] = float(np.sqrt(np.mean(res**2)) / np.mean(np.abs(tacs[name])))
    ax.set_ylabel("activity (kBq/mL)")
    ax.set_title(f"Regional TACs (points) and {model} fits (lines)")
    ax.legend(frameon=False, fontsize=7, ncol=2)
    axr.axhline(0, color="0.6", lw=0.6)
    axr.set_ylabel("residual")
    axr.set_xlabel("time (min)")
    _save(fig, out)
    return residuals


def plot_region_volumes(morph_tsv: Path, out: Path) -> dict[str, float]:
    """Horizontal bar chart of the TSPO-MS region volumes (mL)."""
    volumes = read_volumes(morph_tsv)
    names = [n for n, v in volumes.items() if v > 0]
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(names) + 1))
    ax.barh(names, [volumes[n] for n in names], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("volume (mL, log scale)")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title("TSPO-MS region volumes")
    _save(fig, out)
    return volumes


def plot_class_curves(classes_tsv: Path, out: Path) -> list[str]:
    """SVCA kinetic class curves (normalised activity vs minutes)."""
    table = pd.read_csv(classes_tsv, sep="\t", na_values=["n/a"])
    time_col = next(c for c in table.columns if c.lower().startswith(("time", "frame")))
    names = [c for c in table.columns if c not in (time_col, "frame_end", "frame_start")]
    t = table[time_col].to_numpy(float)
    if "frame_end" in table.columns and "frame_start" in table.columns:
        t = (table["frame_start"].to_numpy(float) + table["frame_end"].to_numpy(float)) / 120.0
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for name in names:
        ax.plot(t, table[name].to_numpy(float), label=name)
    ax.set_xlabel("time (min)")
    ax.set_ylabel("normalised activity")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("SVCA kinetic classes")
    _save(fig, out)
    return names
