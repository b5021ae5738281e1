"""TSPO phenotypes of MS lesions from a DVR map: rim-active, overall-active, inactive.

Nylund M et al. (2022) Brain Commun 4:fcab301; Polvinen E et al. (2023) Neurol Neuroimmunol
Neuroinflamm 10:e200062. A voxel is *active* when its DVR exceeds a threshold (given, or
mean + k SD of healthy controls' white-matter DVR, :func:`active_threshold`). Per lesion:
*core* = the lesion's voxels; *rim* = the shell ``rim_mm`` wide outside the lesion surface (half a
voxel beyond the outer lesion voxels, :func:`rim_labels`),
within white matter and outside every lesion, each rim voxel belonging to its nearest lesion
(exact Euclidean distance transform with the voxel sizes). Core or rim is active when the
fraction of its active voxels exceeds ``min_active_fraction``; the default 0.5 makes the rule
"the typical (median) voxel is active", which is insensitive to the 2-3 % of voxels that noise
alone pushes over a mean + 2 SD threshold. Phenotype: rim active and core not -> rim-active;
core active (whatever the rim) -> overall-active; neither -> inactive; no rim voxel and
inactive core -> unclassified. Everything is vectorised over lesions with ``np.bincount``.

Lesion-level rule (``method="lesion"``): each lesion is compared with the participant's own
white matter around it, the perilesional shell ``3 < d <= 6`` mm (nearest lesion wins; NAWM
beyond 6 mm of every lesion when the shell has fewer than ``min_shell_voxels``). Core (rim)
is active when its mean DVR exceeds the shell's by more than ``core_excess`` (``rim_excess``)
as a fraction; a lesion with both active is rim-active when the rim exceeds the core by more
than ``rim_over_core``, overall-active otherwise. A diffuse elevation of white matter raises
the shell as much as the rim and does not turn lesions active; the thresholds need no
controls. Use it on partial-volume-corrected maps (at PET resolution, spill-in from the rim
raises small cores). ``min_size_mm`` leaves lesions smaller than that (equivalent-sphere
diameter, e.g. the PET FWHM) unclassified: correction amplifies their noise.

Both rules also run on per-lesion regional values (``values="regional"``: the DVR of each
lesion core's and rim's partial-volume-corrected TAC, :mod:`.phenotypes_regional`); the voxel
rule then compares the core's (rim's) DVR itself with the threshold. :func:`phenotype_table`
is the one classification both routes share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

PHENOTYPES = ("rim-active", "overall-active", "inactive")
RULES = ("voxel", "lesion")
VALUE_SOURCES = ("map", "regional")  # DVR map voxels, or per-lesion corrected regional TACs
UNCLASSIFIED = "unclassified"
LESION_COLUMNS = (
    "lesion_id", "volume_ml", "core_voxels", "core_DVR", "core_active_fraction", "core_active",
    "rim_voxels", "rim_DVR", "rim_active_fraction", "rim_active", "shell_voxels", "shell_DVR",
    "core_excess", "rim_excess", "phenotype", "rule", "threshold", "threshold_class",
    "correction", "value_source",
)  # fmt: skip


@dataclass(frozen=True)
class PhenotypeRule:
    """Parameters of the phenotype classification (recorded in the sidecar)."""

    threshold_dvr: float | None = None  # voxel rule: DVR threshold (needed for "voxel")
    min_active_fraction: float = 0.5
    rim_mm: float = 2.0
    threshold_source: str = "user"  # "user" or "healthy-controls"
    threshold_k: float | None = None  # k of mean + k SD when derived from controls
    method: str = "voxel"  # "voxel" (published voxel threshold) or "lesion" (own shell)
    shell_mm: tuple[float, float] = (3.0, 6.0)  # lesion rule: perilesional comparison shell
    core_excess: float = 0.10  # lesion rule: core DVR / shell DVR - 1 above this is active
    rim_excess: float = 0.10  # lesion rule: rim DVR / shell DVR - 1 above this is active
    # lesion rule: rim / core - 1 above this -> rim-active; midway between the contrasts of
    # rim-active (rim 1.50 / core 1.05: +43 %) and overall-active lesions (1.45 / 1.50: -3 %)
    rim_over_core: float = 0.20
    min_shell_voxels: int = 10  # fewer shell voxels: compare with NAWM instead
    correction: str = "none"  # partial-volume correction of the DVR map (recorded)
    min_size_mm: float = 0.0  # smaller lesions (equivalent-sphere diameter) stay unclassified
    threshold_class: str | None = None  # binding class (HAB/MAB) of the controls' threshold
    values: str = "map"  # VALUE_SOURCES: DVR map voxels or per-lesion regional (corrected) TACs

    def __post_init__(self):
        if self.method not in RULES:
            raise ValueError(f"phenotype rule must be one of {RULES}, got {self.method!r}")
        if self.values not in VALUE_SOURCES:
            raise ValueError(
                f"phenotype values must be one of {VALUE_SOURCES}, got {self.values!r}"
            )
        if self.method == "voxel" and self.threshold_dvr is None:
            raise ValueError("the voxel phenotype rule needs threshold_dvr (DVR)")

    @property
    def threshold(self) -> float:
        """The threshold the rule applies: DVR (voxel) or fractional rim excess (lesion)."""
        return float(self.threshold_dvr if self.method == "voxel" else self.rim_excess)

    def as_dict(self) -> dict:
        return asdict(self)


def values_for(values: str | None, pvc: str) -> str:
    """Where a run's lesion values come from: the chosen source, else "regional" (per-lesion
    corrected TACs) when partial-volume correction is on, else "map"."""
    return values or ("map" if pvc == "none" else "regional")


def rule_for(rule: str | None, corrected: bool) -> str:
    """The rule of a run: the chosen one, else "lesion" on corrected values (voxel-wise
    corrected maps or per-lesion corrected regional TACs), else "voxel"."""
    return rule or ("lesion" if corrected else "voxel")


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
    """Label image of lesion rims: voxel -> id of the nearest lesion within ``rim_mm`` of the
    lesion's surface, which lies half a voxel beyond the outer lesion voxels' centres
    (``0 < d <= rim_mm + v / 2``, ``d`` between voxel centres, ``v`` the mean voxel size)."""
    return shell_labels(lesion_ids, wm_mask, zooms, 0.0, rim_reach_mm(rim_mm, zooms))


def rim_reach_mm(rim_mm: float, zooms) -> float:
    """Largest centre distance (mm) from a lesion voxel of a rim ``rim_mm`` wide on this grid."""
    return float(rim_mm) + 0.5 * float(np.mean(zooms))


def shell_labels(
    lesion_ids: np.ndarray, wm_mask: np.ndarray, zooms, inner_mm: float, outer_mm: float
) -> np.ndarray:
    """Voxel -> id of the nearest lesion when ``inner_mm < d <= outer_mm``, within ``wm_mask``."""
    ids = np.asarray(lesion_ids)
    out = np.zeros(ids.shape, np.int32)
    if not ids.any():
        return out
    rim_mm = outer_mm
    pad = [int(np.ceil(rim_mm / z)) + 1 for z in zooms]
    nz = np.nonzero(ids)
    box = tuple(
        slice(max(0, int(c.min()) - p), min(n, int(c.max()) + p + 1))
        for c, p, n in zip(nz, pad, ids.shape, strict=True)
    )
    sub = ids[box]
    dist, idx = ndimage.distance_transform_edt(sub == 0, sampling=zooms, return_indices=True)
    nearest = sub[tuple(idx)]
    rim = (
        (dist > inner_mm + 1e-6)
        & (dist <= rim_mm + 1e-6)
        & np.asarray(wm_mask, bool)[box]
        & (sub == 0)
    )
    out[box] = np.where(rim, nearest, 0)
    return out


def lesion_phenotypes(
    dvr: np.ndarray, lesion_ids: np.ndarray, wm_mask: np.ndarray, zooms, rule: PhenotypeRule
) -> pd.DataFrame:
    """One row per lesion (:data:`LESION_COLUMNS`), DVR map and labels on the same grid."""
    dvr = np.asarray(dvr, float)
    ids = np.asarray(lesion_ids).astype(np.int64)
    wm = np.asarray(wm_mask, bool)
    if dvr.shape != ids.shape or wm.shape != ids.shape:
        raise ValueError(
            f"DVR map {dvr.shape}, lesion ids {ids.shape} and WM mask "
            f"{wm.shape} must share one grid"
        )
    n = int(ids.max()) if ids.size else 0
    rims = rim_labels(ids, wm, zooms, rule.rim_mm).astype(np.int64)
    near = shell_labels(ids, wm, zooms, 0.0, rule.shell_mm[1])
    shells = np.where(
        near > 0, shell_labels(ids, wm, zooms, rule.shell_mm[0], rule.shell_mm[1]), 0
    ).astype(np.int64)
    finite = np.isfinite(dvr)
    val = np.where(finite, dvr, 0.0)
    thr = rule.threshold_dvr if rule.threshold_dvr is not None else np.inf
    act = (finite & (dvr > thr)).astype(float)
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
    shell_n, shell_dvr, _ = stats(shells)
    nawm = wm & finite & (ids == 0) & (near == 0)
    nawm_dvr = float(dvr[nawm].mean()) if nawm.any() else np.nan
    shell_dvr = np.where(shell_n >= rule.min_shell_voxels, shell_dvr, nawm_dvr)
    table = phenotype_table(
        volume, (core_n, core_dvr, core_frac), (rim_n, rim_dvr, rim_frac),
        (shell_n, shell_dvr), rule,
    )  # fmt: skip
    return table[volume > 0].reset_index(drop=True)


def phenotype_table(volume_ml, core, rim, shell, rule: PhenotypeRule) -> pd.DataFrame:
    """Classify lesions 1..N from their values; one row each (:data:`LESION_COLUMNS`).

    ``core`` and ``rim``: ``(voxels, mean DVR, active fraction)``, arrays over lesions (the
    fraction is NaN for regional values); ``shell``: ``(voxels, DVR)`` of the comparison shell.
    Voxel rule: core (rim) active when its active fraction exceeds ``min_active_fraction``
    (``rule.values == "map"``) or its DVR exceeds ``threshold_dvr`` ("regional"). Lesion rule:
    see the module docstring. Lesions without a core, below ``min_size_mm``, or with a needed
    value that is not finite (core or rim DVR; the shell's for the lesion rule) are unclassified.
    """
    volume = np.asarray(volume_ml, float)
    core_n, core_dvr, core_frac = (np.asarray(v, float) for v in core)
    rim_n, rim_dvr, rim_frac = (np.asarray(v, float) for v in rim)
    shell_n, shell_dvr = (np.broadcast_to(np.asarray(v, float), volume.shape) for v in shell)
    with np.errstate(invalid="ignore", divide="ignore"):
        core_excess = core_dvr / shell_dvr - 1.0
        rim_excess = rim_dvr / shell_dvr - 1.0
        rim_over_core = rim_dvr / core_dvr - 1.0
    if rule.method == "voxel" and rule.values == "map":
        core_active = core_frac > rule.min_active_fraction
        rim_active = rim_frac > rule.min_active_fraction
        rim_wins = np.zeros(volume.shape, bool)
    elif rule.method == "voxel":
        core_active = core_dvr > rule.threshold_dvr
        rim_active = rim_dvr > rule.threshold_dvr
        rim_wins = np.zeros(volume.shape, bool)
    else:
        core_active = core_excess > rule.core_excess
        rim_active = rim_excess > rule.rim_excess
        rim_wins = rim_active & (rim_over_core > rule.rim_over_core)
    phenotype = np.where(
        core_active & ~rim_wins,
        "overall-active",
        np.where(rim_active, "rim-active", np.where(rim_n > 0, "inactive", UNCLASSIFIED)),
    )
    # a value the rule needs that is not finite (a failed fit, no comparison shell) leaves the
    # lesion unclassified instead of reading as "not active"
    rim_known = np.isfinite(rim_dvr) | (rim_n == 0)
    if rule.method == "lesion":
        known = np.isfinite(core_dvr) & rim_known & np.isfinite(shell_dvr)
    else:  # an active core makes the lesion overall-active whatever its rim
        known = np.isfinite(core_dvr) & (rim_known | core_active)
    size_mm = np.cbrt(6.0 * volume * 1000.0 / np.pi)
    classified = (core_n > 0) & (size_mm >= rule.min_size_mm) & known
    phenotype = np.where(classified, phenotype, UNCLASSIFIED)
    return pd.DataFrame(
        {
            "lesion_id": np.arange(1, volume.size + 1),
            "volume_ml": volume,
            "core_voxels": core_n.astype(int),
            "core_DVR": core_dvr,
            "core_active_fraction": core_frac,
            "core_active": core_active,
            "rim_voxels": rim_n.astype(int),
            "rim_DVR": rim_dvr,
            "rim_active_fraction": rim_frac,
            "rim_active": rim_active,
            "shell_voxels": shell_n.astype(int),
            "shell_DVR": shell_dvr,
            "core_excess": core_excess,
            "rim_excess": rim_excess,
            "phenotype": phenotype,
            "rule": rule.method,
            "threshold": rule.threshold,
            "threshold_class": rule.threshold_class if rule.method == "voxel" else None,
            "correction": rule.correction,
            "value_source": rule.values,
        },
        columns=list(LESION_COLUMNS),
    )


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
