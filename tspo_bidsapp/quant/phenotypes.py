"""TSPO phenotypes of MS lesions from a DVR map: rim-active, overall-active, inactive.

Nylund M et al. (2022) Brain Commun 4:fcab301; Polvinen E et al. (2023) Neurol Neuroimmunol
Neuroinflamm 10:e200062. A voxel is *active* when its DVR exceeds a threshold (given, or
mean + k SD of healthy controls' white-matter DVR, :func:`active_threshold`). Per lesion:
*core* = the lesion's voxels; *rim* = the shell ``0 < d <= rim_mm`` outside the lesion edge,
within white matter and outside every lesion, each rim voxel belonging to its nearest lesion
(exact Euclidean distance transform with the voxel sizes). Core or rim is active when the
fraction of its active voxels exceeds ``min_active_fraction``; the default 0.5 makes the rule
"the typical (median) voxel is active", which is insensitive to the 2-3 % of voxels that noise
alone pushes over a mean + 2 SD threshold. Phenotype: rim active and core not -> rim-active;
core active (whatever the rim) -> overall-active; neither -> inactive; no rim voxel and
inactive core -> unclassified. Everything is vectorised over lesions with ``np.bincount``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

PHENOTYPES = ("rim-active", "overall-active", "inactive")
UNCLASSIFIED = "unclassified"
LESION_COLUMNS = (
    "lesion_id", "volume_ml", "core_voxels", "core_DVR", "core_active_fraction", "core_active",
    "rim_voxels", "rim_DVR", "rim_active_fraction", "rim_active", "phenotype",
)  # fmt: skip


@dataclass(frozen=True)
class PhenotypeRule:
    """Parameters of the phenotype classification (recorded in the sidecar)."""

    threshold_dvr: float
    min_active_fraction: float = 0.5
    rim_mm: float = 2.0
    threshold_source: str = "user"  # "user" or "healthy-controls"
    threshold_k: float | None = None  # k of mean + k SD when derived from controls

    def as_dict(self) -> dict:
        return asdict(self)


def active_threshold(control_wm_dvr: np.ndarray, k: float = 2.0) -> tuple[float, dict]:
    """Voxel activity threshold ``mean + k SD`` of healthy controls' WM DVR values (pooled).

    Returns the threshold and its provenance (mean, sd, k, number of voxels).
    """
    values = np.asarray(control_wm_dvr, float).ravel()
    values = values[np.isfinite(values)]
    if values.size < 2:
        raise ValueError("need finite white-matter DVR values of healthy controls")
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    return mean + k * sd, {"mean": mean, "sd": sd, "k": float(k), "n_voxels": int(values.size)}


def rim_labels(
    lesion_ids: np.ndarray, wm_mask: np.ndarray, zooms, rim_mm: float = 2.0
) -> np.ndarray:
    """Label image of lesion rims: voxel -> id of the nearest lesion when ``0 < d <= rim_mm``."""
    ids = np.asarray(lesion_ids)
    out = np.zeros(ids.shape, np.int32)
    if not ids.any():
        return out
    pad = [int(np.ceil(rim_mm / z)) + 1 for z in zooms]
    nz = np.nonzero(ids)
    box = tuple(
        slice(max(0, int(c.min()) - p), min(n, int(c.max()) + p + 1))
        for c, p, n in zip(nz, pad, ids.shape, strict=True)
    )
    sub = ids[box]
    dist, idx = ndimage.distance_transform_edt(sub == 0, sampling=zooms, return_indices=True)
    nearest = sub[tuple(idx)]
    rim = (dist > 0) & (dist <= rim_mm + 1e-6) & np.asarray(wm_mask, bool)[box] & (sub == 0)
    out[box] = np.where(rim, nearest, 0)
    return out


def lesion_phenotypes(
    dvr: np.ndarray, lesion_ids: np.ndarray, wm_mask: np.ndarray, zooms, rule: PhenotypeRule
) -> pd.DataFrame:
    """One row per lesion (:data:`LESION_COLUMNS`), DVR map and labels on the same grid."""
    dvr = np.asarray(dvr, float)
    ids = np.asarray(lesion_ids).astype(np.int64)
    if dvr.shape != ids.shape or np.asarray(wm_mask).shape != ids.shape:
        raise ValueError(
            f"DVR map {dvr.shape}, lesion ids {ids.shape} and WM mask "
            f"{np.asarray(wm_mask).shape} must share one grid"
        )
    n = int(ids.max()) if ids.size else 0
    rims = rim_labels(ids, wm_mask, zooms, rule.rim_mm).astype(np.int64)
    finite = np.isfinite(dvr)
    val = np.where(finite, dvr, 0.0)
    act = (finite & (dvr > rule.threshold_dvr)).astype(float)
    voxel_ml = float(np.prod(zooms)) / 1000.0

    def stats(labels):
        lab = np.where(finite, labels, 0).ravel()
        count = np.bincount(lab, minlength=n + 1)[1:].astype(float)
        total = np.bincount(lab, weights=val.ravel(), minlength=n + 1)[1:]
        active = np.bincount(lab, weights=act.ravel(), minlength=n + 1)[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            return count, total / count, active / count

    volume = np.bincount(ids.ravel(), minlength=n + 1)[1:] * voxel_ml
    core_n, core_dvr, core_frac = stats(ids)
    rim_n, rim_dvr, rim_frac = stats(rims)
    core_active = core_frac > rule.min_active_fraction
    rim_active = rim_frac > rule.min_active_fraction
    phenotype = np.where(
        core_active,
        "overall-active",
        np.where(rim_active, "rim-active", np.where(rim_n > 0, "inactive", UNCLASSIFIED)),
    )
    phenotype = np.where(core_n > 0, phenotype, UNCLASSIFIED)
    table = pd.DataFrame(
        {
            "lesion_id": np.arange(1, n + 1),
            "volume_ml": volume,
            "core_voxels": core_n.astype(int),
            "core_DVR": core_dvr,
            "core_active_fraction": core_frac,
            "core_active": core_active,
            "rim_voxels": rim_n.astype(int),
            "rim_DVR": rim_dvr,
            "rim_active_fraction": rim_frac,
            "rim_active": rim_active,
            "phenotype": phenotype,
        },
        columns=list(LESION_COLUMNS),
    )
    return table[volume > 0].reset_index(drop=True)


def phenotype_summary(table: pd.DataFrame) -> dict:
    """Counts and proportions of each phenotype, and the Polvinen et al. (2023) predictor.

    Proportions are of classified lesions. Predictor of disability progression: more than 10 %
    rim-active lesions and at most 50 % inactive lesions (``None`` without classified lesions).
    """
    classified = table[table["phenotype"].isin(PHENOTYPES)]
    n = len(classified)
    out: dict = {"n_lesions": int(len(table)), "n_classified": n}
    for ph in PHENOTYPES:
        count = int((classified["phenotype"] == ph).sum())
        key = ph.replace("-", "_")
        out[f"n_{key}"] = count
        out[f"proportion_{key}"] = count / n if n else None
    if n:
        out["polvinen_predictor"] = bool(
            out["proportion_rim_active"] > 0.10 and out["proportion_inactive"] <= 0.50
        )
    else:
        out["polvinen_predictor"] = None
    return out
