"""Supervised cluster analysis (SVCA) of dynamic TSPO PET for a reference region.

Turkheimer FE et al. (2007) J Nucl Med 48:158-167; Yaqub M et al. (2012) J Cereb Blood Flow
Metab 32:1600-1608 (the four-class variant). Each frame is normalised over the brain mask
(mean 0, SD 1 per frame); every brain voxel's normalised TAC is modelled as a non-negative
mixture of four kinetic classes (grey matter without specific binding, white matter, blood,
high-binding grey matter) and optionally a fifth, CSF, which takes up the partial volume
of grey-matter voxels at the CSF border; voxels whose grey-matter fraction ``c_GM / sum(c)``
exceeds 0.9 within a GM mask form the reference region, whose TAC is the mean of their
*un-normalised* TACs. Classes are read from a TSV the user gives (time in minutes + four or
five columns) or derived
from healthy controls (:func:`kinetic_classes_from_masks`, averaged at the group level);
none are shipped.

The non-negative least-squares fit is exact and vectorised over voxels: with K = 4 classes
the solution is the unconstrained least-squares fit on one of the 2^K - 1 class subsets (the
support of the NNLS solution, by the KKT conditions); every subset is solved for all voxels
at once, infeasible (negative) solutions are discarded and the smallest residual is kept.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tspo_bidsapp.kinetics.voxelwise import DEFAULT_CHUNK_VOXELS
from tspo_bidsapp.quant.tacs import mask_mean_tac

CLASS_NAMES: tuple[str, ...] = ("grey_matter", "white_matter", "blood", "high_binding")
#: Optional fifth class: fluid spaces without specific binding (CSF), which absorbs the
#: partial volume of grey-matter voxels at the CSF border.
OPTIONAL_CLASSES: tuple[str, ...] = ("csf",)
_ALIASES: dict[str, tuple[str, ...]] = {
    "csf": ("csf", "fluid", "ventricles"),
    "time": ("time", "time_min", "mid_time", "t"),
    "grey_matter": ("grey_matter", "gray_matter", "gm", "grey", "gray"),
    "white_matter": ("white_matter", "wm", "white"),
    "blood": ("blood", "bl", "vascular"),
    "high_binding": ("high_binding", "hsb", "high_binding_gm", "tspo_high", "specific"),
}
DEFAULT_GM_FRACTION = 0.9
#: Vascular voxels: within this distance of the brain mask (mm), peak by this time (min), and
#: the top fraction of early activity.
VASCULAR_MARGIN_MM = 10.0
VASCULAR_PEAK_MAX_MIN = 3.0
VASCULAR_TOP_FRACTION = 0.002
#: Smallest connected group of vascular voxels kept (face connectivity).
VASCULAR_MIN_VOXELS = 5


@dataclass
class SVCAResult:
    """Maps (spatial shape; NaN outside the brain mask), reference mask and TAC, warnings."""

    coefficients: np.ndarray  # (..., K) non-negative class coefficients
    gm_fraction: np.ndarray  # c_GM / sum(c)
    reference_mask: np.ndarray  # bool
    reference_tac: np.ndarray  # (n_frames,), input units
    warnings: list[str] = field(default_factory=list)


def read_svca_classes(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``--svca-classes``: ``(time_min (T,), classes (T, K))`` in :data:`CLASS_NAMES` order,
    followed by the :data:`OPTIONAL_CLASSES` present (K = 4 or 5).

    Columns (case-insensitive): ``time`` in minutes and one column per class; errors name the
    file and the missing or bad column.
    """
    path = Path(path)
    table = pd.read_csv(path, sep="\t")
    lower = {c.strip().lower(): c for c in table.columns}
    cols = []
    for key in ("time", *CLASS_NAMES):
        found = next((lower[a] for a in _ALIASES[key] if a in lower), None)
        if found is None:
            raise ValueError(
                f"{path}: SVCA class table has no '{key}' column (accepted names: "
                f"{', '.join(_ALIASES[key])}; found {list(table.columns)})"
            )
        cols.append(found)
    for key in OPTIONAL_CLASSES:
        found = next((lower[a] for a in _ALIASES[key] if a in lower), None)
        if found is not None:
            cols.append(found)
    values = table[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    for j, col in enumerate(cols):
        if not np.all(np.isfinite(values[:, j])):
            raise ValueError(f"{path}: column '{col}' has missing or non-numeric values")
    time = values[:, 0]
    if time.size < 2 or np.any(np.diff(time) <= 0):
        raise ValueError(f"{path}: column '{cols[0]}' (minutes) must increase strictly")
    return time, values[:, 1:]


def resample_classes(
    time_min: np.ndarray, classes: np.ndarray, mid_min: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Class curves (T, K) at the frame mid-times (minutes) by linear interpolation.

    Mid-times outside the class time range take the nearest end value; that is reported.
    """
    time_min, classes = np.asarray(time_min, float), np.asarray(classes, float)
    mid = np.asarray(mid_min, float)
    out = np.column_stack(
        [np.interp(mid, time_min, classes[:, k]) for k in range(classes.shape[1])]
    )
    warnings = []
    outside = (mid < time_min[0]) | (mid > time_min[-1])
    if outside.any():
        warnings.append(
            f"SVCA: {int(outside.sum())} frame mid-times lie outside the class curves "
            f"({time_min[0]:g}-{time_min[-1]:g} min); the nearest class value was used"
        )
    return out, warnings


def brain_frame_statistics(data: np.ndarray, brain_mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """Brain voxels' TACs (voxels, frames) and the per-frame voxel mean and SD over the brain.

    The one definition of the SVCA frame normalisation: the participant level writes these
    mean and SD curves with the region TACs, so that the group level scales the controls'
    classes exactly as :func:`normalise_frames` scales voxels.
    """
    mask = np.asarray(brain_mask, bool)
    if mask.shape != np.asarray(data).shape[:3]:
        raise ValueError(f"brain mask shape {mask.shape} != PET shape {data.shape[:3]}")
    tacs = np.asarray(data)[mask].astype(np.float64)
    return tacs, *frame_mean_sd(data, mask)


def frame_mean_sd(data: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame mean and SD (ddof 0, NaN ignored) of the voxels of ``mask``, frame by frame
    (memory of one frame)."""
    mask = np.asarray(mask, bool)
    frames = [np.asarray(data[..., k])[mask].astype(np.float64) for k in range(data.shape[-1])]
    return np.array([np.nanmean(f) for f in frames]), np.array([np.nanstd(f) for f in frames])


def normalise_curves(tacs: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``(tacs - mean) / sd`` per frame; frames without contrast (SD 0) become 0."""
    mean, sd = np.asarray(mean, float), np.asarray(sd, float)
    flat = ~(sd > 0)
    return np.where(flat, 0.0, (np.asarray(tacs, float) - mean) / np.where(flat, 1.0, sd))


def normalise_frames(data: np.ndarray, brain_mask: np.ndarray) -> np.ndarray:
    """Brain voxels' TACs (voxels, frames), each frame scaled to mean 0, SD 1 over the brain.

    Frames that are constant over the brain (no contrast) become 0.
    """
    tacs, mean, sd = brain_frame_statistics(data, brain_mask)
    if not (sd > 0).any():
        raise ValueError("every PET frame is constant over the brain mask; SVCA cannot run")
    # Frames without contrast (e.g. before the bolus arrives) carry no class information: 0.
    return normalise_curves(tacs, mean, sd)


def nnls_all_subsets(design: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact NNLS ``min |A c - y|, c >= 0`` for every row ``y`` of ``targets`` (voxels, T).

    ``design`` A is (T, K) with small K (<= 6): all 2^K - 1 subsets are solved by least squares
    for all rows at once. Returns coefficients (voxels, K) and residual sums of squares.
    """
    a = np.asarray(design, float)
    y = np.asarray(targets, float)
    k = a.shape[1]
    if k > 6:
        raise ValueError("nnls_all_subsets enumerates subsets; use at most 6 classes")
    yy = np.einsum("ij,ij->i", y, y)
    best_rss = yy.copy()
    best = np.zeros((y.shape[0], k))
    aty = y @ a  # (voxels, K)
    for size in range(1, k + 1):
        for subset in itertools.combinations(range(k), size):
            s = list(subset)
            gram = a[:, s].T @ a[:, s]
            coef = aty[:, s] @ np.linalg.pinv(gram).T
            rss = yy - np.einsum("ij,ij->i", coef, aty[:, s])
            better = np.all(coef >= 0, axis=1) & (rss < best_rss - 1e-12 * (1.0 + yy))
            if better.any():
                best_rss[better] = rss[better]
                best[better] = 0.0
                best[np.ix_(better, s)] = coef[better]
    return best, np.clip(best_rss, 0.0, None)


def svca_reference(
    data: np.ndarray,
    brain_mask: np.ndarray,
    gm_mask: np.ndarray,
    classes: np.ndarray,
    *,
    gm_fraction_min: float = DEFAULT_GM_FRACTION,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
) -> SVCAResult:
    """SVCA reference region of a 4-D PET (X, Y, Z, frames) given class curves (frames, K).

    ``classes`` are the kinetic classes at the frame mid-times (:func:`resample_classes`),
    grey matter first. The reference mask is ``gm_fraction > gm_fraction_min`` within
    ``gm_mask`` (and the brain mask); its TAC is the mean of the original voxel TACs.
    """
    data = np.asarray(data)
    brain = np.asarray(brain_mask, bool)
    classes = np.asarray(classes, float)
    if classes.shape[0] != data.shape[-1]:
        raise ValueError(f"{classes.shape[0]} class samples for {data.shape[-1]} PET frames")
    norm = normalise_frames(data, brain)
    k = classes.shape[1]
    coef = np.empty((norm.shape[0], k))
    for lo in range(0, norm.shape[0], chunk_voxels):
        block = np.nan_to_num(norm[lo : lo + chunk_voxels])
        coef[lo : lo + chunk_voxels], _ = nnls_all_subsets(classes, block)
    total = coef.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(total > 0, coef[:, 0] / total, 0.0)
    coef_map = np.full(brain.shape + (k,), np.nan)
    coef_map[brain] = coef
    frac_map = np.full(brain.shape, np.nan)
    frac_map[brain] = frac
    ref = brain & np.asarray(gm_mask, bool) & (np.nan_to_num(frac_map) > gm_fraction_min)
    warnings = []
    if ref.any():
        tac = mask_mean_tac(data, ref)
    else:
        tac = np.full(data.shape[-1], np.nan)
        warnings.append(
            f"SVCA: no grey-matter voxel has a grey-matter fraction above {gm_fraction_min:g}; "
            "no reference region"
        )
    return SVCAResult(coef_map, frac_map, ref, tac, warnings)


def kinetic_classes_from_masks(
    data: np.ndarray, brain_mask: np.ndarray, class_masks: list[np.ndarray]
) -> np.ndarray:
    """Mean normalised TAC (frames, K) of each class mask (e.g. in a healthy control).

    The group level averages these over controls (after resampling to a common time grid)
    to build the classes of a dataset.
    """
    brain = np.asarray(brain_mask, bool)
    norm = normalise_frames(data, brain)
    out = []
    for i, m in enumerate(class_masks):
        sel = np.asarray(m, bool)[brain]
        if not sel.any():
            raise ValueError(f"SVCA class mask {i} has no voxel inside the brain mask")
        out.append(np.nanmean(norm[sel], axis=0))
    return np.column_stack(out)


def vascular_voxels(
    data: np.ndarray,
    mid_min: np.ndarray,
    brain_mask: np.ndarray,
    zooms: tuple[float, float, float],
    *,
    margin_mm: float = VASCULAR_MARGIN_MM,
    peak_max_min: float = VASCULAR_PEAK_MAX_MIN,
    top_fraction: float = VASCULAR_TOP_FRACTION,
) -> np.ndarray:
    """Early-peak voxels of the large vessels and venous sinuses (a mask).

    Searched within ``margin_mm`` of the brain mask (the sinuses lie on its surface): voxels
    whose TAC peaks at or before ``peak_max_min`` and whose mean over those early frames is in
    the top ``top_fraction`` of the search region, in connected groups of at least
    :data:`VASCULAR_MIN_VOXELS` voxels. Image-derived blood curves: Zanotti-
    Fregonara et al. 2011 J Cereb Blood Flow Metab 31:1986.
    """
    from scipy import ndimage

    brain = np.asarray(brain_mask, bool)
    search = ndimage.distance_transform_edt(~brain, sampling=zooms) <= margin_mm
    early = np.asarray(mid_min, float) <= peak_max_min
    if not early.any():
        return np.zeros(brain.shape, bool)
    n = int(search.sum())
    level, peak_early, peak_late = np.zeros(n), np.full(n, -np.inf), np.full(n, -np.inf)
    for k in range(data.shape[-1]):  # one frame at a time: the search region is large
        frame = np.nan_to_num(np.asarray(data[..., k], np.float64)[search])
        if early[k]:
            level += frame / early.sum()
            peak_early = np.maximum(peak_early, frame)
        else:
            peak_late = np.maximum(peak_late, frame)
    peaks_early = peak_early >= peak_late
    cut = np.quantile(level, 1.0 - top_fraction)
    out = np.zeros(brain.shape, bool)
    out[search] = peaks_early & (level >= cut) & (level > 0)
    # vessels are connected structures; isolated noisy voxels are not
    labels, n = ndimage.label(out)
    sizes = ndimage.sum_labels(out, labels, np.arange(1, n + 1))
    return np.isin(labels, 1 + np.flatnonzero(sizes >= VASCULAR_MIN_VOXELS))


def vascular_check(
    vascular_tac: np.ndarray, brain_mean: np.ndarray, mid_min: np.ndarray
) -> dict[str, float | bool | str]:
    """Does a vascular curve carry specific binding? Blood peaks first and washes out, while
    tissue with specific binding retains tracer: the curve must peak no later than the brain
    mean and keep, over the last third of the scan, a smaller fraction of its peak than the
    brain mean does (``late_to_peak < brain_late_to_peak``). ``late_to_brain`` is reported."""
    mid = np.asarray(mid_min, float)
    late = mid >= mid[0] + 2.0 * (mid[-1] - mid[0]) / 3.0
    vasc, brain = np.asarray(vascular_tac, float), np.asarray(brain_mean, float)
    retain_v = float(vasc[late].mean() / vasc.max())
    retain_b = float(brain[late].mean() / brain.max())
    early = mid[np.argmax(vasc)] <= mid[np.argmax(brain)]
    ok = bool(early and retain_v < retain_b)
    return {"late_to_brain": float(vasc[late].mean() / brain[late].mean()),
            "late_to_peak": retain_v, "brain_late_to_peak": retain_b,
            "peak_min": float(mid[np.argmax(vasc)]), "passed": ok,
            "reason": "" if ok else "no early peak and washout faster than the brain: not a "
            "blood curve (specific binding or spill-in)"}  # fmt: skip


def svca_normalisation(
    data: np.ndarray, mid_min: np.ndarray, brain_mask: np.ndarray, zooms
) -> dict[str, object]:
    """What the group level needs to build classes as this level normalises voxels: the
    per-frame brain voxel mean and SD, and the vascular (early-peak) TAC and its check."""
    mean, sd = frame_mean_sd(data, brain_mask)
    vessels = vascular_voxels(data, mid_min, brain_mask, zooms)
    out: dict[str, object] = {"BrainVoxelMean": mean.tolist(), "BrainVoxelSD": sd.tolist(),
                              "VascularVoxels": int(vessels.sum())}  # fmt: skip
    if vessels.any():
        tac = mask_mean_tac(data, vessels)
        out["VascularTAC"] = tac.tolist()
        out["VascularCheck"] = vascular_check(tac, mean, mid_min)
    return out


def write_svca_classes(time_min: np.ndarray, classes: np.ndarray, path: str | Path) -> Path:
    """Write class curves as the TSV :func:`read_svca_classes` reads (time in minutes)."""
    classes = np.asarray(classes, float)
    names = (CLASS_NAMES + OPTIONAL_CLASSES)[: classes.shape[1]]
    table = pd.DataFrame(classes, columns=list(names))
    table.insert(0, "time", np.asarray(time_min, float))
    path = Path(path)
    table.to_csv(path, sep="\t", index=False, float_format="%.6g")
    return path
