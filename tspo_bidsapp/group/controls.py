"""Parameters derived from healthy controls for a second participant-level pass.

**SVCA kinetic classes** (Turkheimer et al. 2007, J Nucl Med 48:158-167; Yaqub et al. 2012,
J Cereb Blood Flow Metab 32:1600-1608), per tracer, from the controls' first sessions (LAB
excluded for second-generation tracers). Each control's region TACs
(``seg-tspoms_desc-preproc_tacs.tsv``) are normalised frame by frame with the brain *voxel*
mean and SD that the participant level wrote in the TACs' JSON sidecar
(``SVCANormalisation``, :func:`tspo_bidsapp.quant.svca.svca_normalisation`) - the scaling
:func:`tspo_bidsapp.quant.svca.normalise_frames` applies to voxels, so the mean normalised TAC
of a region's voxels equals its class curve exactly. Classes:

- ``grey_matter``: cortical-GM; ``white_matter``: NAWM;
- ``high_binding``: thalamus, the grey-matter structure of highest TSPO binding in the
  healthy brain;
- ``csf``: the ventricles (fluid without specific binding; the optional fifth class, which
  takes up the partial volume of grey-matter voxels at the CSF border; left out when a
  control's segmentation has no ventricles region);
- ``blood``: the participant level's vascular curve (early-peak voxels of the venous sinuses
  and large vessels near the brain surface), used only where its late frames passed the check
  that they carry no specific binding (below brain tissue, faster washout).

A control without these sidecar entries or without a usable vascular curve is skipped (the
reason is in the JSON); fewer than ``min_controls`` usable controls: nothing is written.
Curves of all controls are put on the first control's frame mid-times (linear interpolation,
NaN outside a control's scan) and averaged. Written as ``tracer-<T>_desc-svca_classes.tsv``
(``time`` in minutes + five classes; :func:`tspo_bidsapp.quant.svca.read_svca_classes`).

**Active-voxel threshold** (Nylund et al. 2022, Brain Commun 4:fcab301): mean + k SD of the
controls' NAWM voxel DVR values pooled over controls
(:func:`tspo_bidsapp.quant.phenotypes.active_threshold`), from the T1w-space DVR maps and the
``seg-tspoms`` NAWM label. Written as ``tracer-<T>_model-<M>_ref-<R>_desc-activethreshold.json``.
For second-generation tracers binding differs by rs6971 genotype (MAB about 30 % below HAB;
Owen et al. 2012 J Cereb Blood Flow Metab 32:1), so the threshold is derived per binding class
(:func:`class_thresholds`): the JSON lists ``binding_classes`` (HAB, MAB: threshold or the
reason it is missing) and has no pooled ``threshold_dvr``; each class with enough controls is
also written as ``..._desc-activethreshold<HAB|MAB>.json`` (``threshold_dvr`` at the top, for
``--active-threshold-file``).

Nothing is derived from fewer than ``min_controls`` controls (per class for the threshold): a
warning names the shortfall and no file is written.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from tspo_bidsapp.anat.labels import read_dseg_tsv
from tspo_bidsapp.config import write_text_atomic
from tspo_bidsapp.group.collect import read_json
from tspo_bidsapp.quant.phenotypes import active_threshold
from tspo_bidsapp.quant.svca import (
    CLASS_NAMES,
    OPTIONAL_CLASSES,
    normalise_curves,
    write_svca_classes,
)
from tspo_bidsapp.quant.tacs import read_tacs_tsv

LOGGER = logging.getLogger("tspo_bidsapp.group")
#: Region of the seg-tspoms set that stands for each tissue SVCA class (see the module
#: docstring); the blood class comes from vascular voxels, not from a region.
CLASS_REGIONS: dict[str, str] = {
    "grey_matter": "cortical-GM",
    "white_matter": "NAWM",
    "high_binding": "thalamus",
    "csf": "ventricles",
}
WM_REGION = "NAWM"
#: rs6971 binding classes with usable specific binding (LAB are excluded upstream).
BINDING_CLASSES = ("HAB", "MAB")


class TooFewControls(ValueError):
    """Fewer healthy controls than ``--min-controls``."""


def _check_n(n: int, min_controls: int, what: str) -> None:
    if n < min_controls:
        raise TooFewControls(
            f"{what}: {n} healthy control(s) usable, at least {min_controls} needed "
            "(--min-controls); nothing written"
        )


@dataclass(frozen=True)
class ControlTACs:
    participant_id: str
    tacs_file: Path
    volumes: dict[str, float]


def control_class_curves(c: ControlTACs) -> tuple[np.ndarray, np.ndarray | None, str]:
    """One control's normalised class curves ``(mid_min, (T, 4 or 5) or None, reason)``: the
    :data:`CLASS_NAMES`, then ``csf`` when the control has a ventricles TAC.

    Uses the participant level's ``SVCANormalisation`` (tacs sidecar): region TACs scaled per
    frame by the brain voxel mean and SD, and its vascular TAC as the blood class when that
    curve passed the no-specific-binding check.
    """
    timing, tacs = read_tacs_tsv(c.tacs_file)
    missing = [r for k, r in CLASS_REGIONS.items() if k not in OPTIONAL_CLASSES and r not in tacs]
    if missing:  # a segmentation without e.g. a thalamus: this control is skipped
        return timing.mid_min, None, f"{c.tacs_file.name}: no TAC of region(s) {missing}"
    # the optional classes (csf: ventricles) follow the four when their region is there
    names = CLASS_NAMES + tuple(k for k in OPTIONAL_CLASSES if CLASS_REGIONS[k] in tacs)
    sidecar = Path(str(c.tacs_file).removesuffix(".tsv") + ".json")
    norm = read_json(sidecar).get("SVCANormalisation") if sidecar.is_file() else None
    if not norm or "BrainVoxelMean" not in norm:
        return (
            timing.mid_min,
            None,
            f"{sidecar.name}: no SVCANormalisation (brain voxel statistics)",
        )
    mean, sd = np.asarray(norm["BrainVoxelMean"]), np.asarray(norm["BrainVoxelSD"])
    if mean.size != timing.n_frames or sd.size != timing.n_frames:
        raise ValueError(
            f"{sidecar}: SVCANormalisation has {mean.size} frames, not {timing.n_frames}"
        )
    check = norm.get("VascularCheck") or {}
    if "VascularTAC" not in norm or not check.get("passed"):
        why = check.get("reason") or "no vascular voxels found"
        return timing.mid_min, None, f"{sidecar.name}: vascular curve unusable ({why})"
    curves = {k: tacs[r] for k, r in CLASS_REGIONS.items() if r in tacs}
    curves["blood"] = np.asarray(norm["VascularTAC"], float)
    return (
        timing.mid_min,
        np.column_stack([normalise_curves(curves[k], mean, sd) for k in names]),
        "",
    )


def svca_classes(controls: list[ControlTACs], *, min_controls: int = 3):
    """Average normalised class curves of healthy controls: ``(time_min, (T, K), info)``; K = 5
    (with ``csf``) when every usable control has a ventricles TAC, else 4."""
    _check_n(len(controls), min_controls, "SVCA classes")
    grid, curves, used, skipped = None, [], [], {}
    for c in controls:
        mid, curve, reason = control_class_curves(c)
        if curve is None:
            skipped[c.participant_id] = reason
            continue
        grid = mid if grid is None else grid
        curves.append(np.column_stack([np.interp(grid, mid, curve[:, k], left=np.nan,
                                                 right=np.nan) for k in range(curve.shape[1])]))  # fmt: skip
        used.append(c.participant_id)
    if len(curves) < min_controls:
        detail = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise TooFewControls(f"SVCA classes: {len(curves)} healthy control(s) usable, at least "
                             f"{min_controls} needed (--min-controls); nothing written ({detail})")  # fmt: skip
    n_classes = min(curve.shape[1] for curve in curves)  # csf only if every control has it
    stack = np.stack([curve[:, :n_classes] for curve in curves])  # (controls, T, 4 or 5)
    names = (CLASS_NAMES + OPTIONAL_CLASSES)[:n_classes]
    keep = np.isfinite(stack).all(axis=2).sum(axis=0) >= min_controls
    classes = np.nanmean(stack[:, keep], axis=0)
    info = {
        "Controls": used,
        "SkippedControls": skipped,
        "Classes": list(names),
        "ClassRegions": {k: r for k, r in CLASS_REGIONS.items() if k in names}
        | {"blood": "early-peak vascular voxels (participant level, SVCANormalisation)"},
        "Normalisation": "per frame: brain voxel mean and SD written by the participant "
        "level (the normalisation SVCA applies to voxels)",
        "BetweenControlSD": np.nanstd(stack[:, keep], axis=0, ddof=1).round(4).tolist(),
        "DroppedTimes": int((~keep).sum()),
    }
    return grid[keep], classes, info


def write_classes(out_dir: Path, tracer: str, controls: list[ControlTACs], **kw) -> Path:
    """``tracer-<T>_desc-svca_classes.tsv`` (+ JSON provenance)."""
    time, classes, info = svca_classes(controls, **kw)
    path = write_svca_classes(time, classes, out_dir / f"tracer-{tracer}_desc-svca_classes.tsv")
    meta = {"Tracer": tracer, "TimeUnits": "min", **info,
            "Reference": "Turkheimer et al. 2007 J Nucl Med 48:158; Yaqub et al. 2012 "
            "J Cereb Blood Flow Metab 32:1600"}  # fmt: skip
    write_text_atomic(path.with_suffix(".json"), json.dumps(meta, indent=2) + "\n")
    return path


def nawm_values(dvr_map: Path, dseg: Path, dseg_tsv: Path | None) -> np.ndarray:
    """Finite DVR values of the NAWM voxels (same grid required; the error names both files)."""
    names = read_dseg_tsv(dseg_tsv) if dseg_tsv else {}
    index = next((i for i, n in names.items() if n == WM_REGION), None)
    if index is None:
        raise ValueError(f"{dseg_tsv}: no '{WM_REGION}' row in the seg-tspoms dseg.tsv")
    img, lab = nib.load(str(dvr_map)), nib.load(str(dseg))
    if img.shape[:3] != lab.shape[:3] or not np.allclose(img.affine, lab.affine, atol=1e-3):
        raise ValueError(f"{dvr_map} and {dseg} are not on the same grid")
    mask = np.asarray(lab.dataobj) == index
    values = np.asarray(img.dataobj, dtype=np.float32)[mask]
    return values[np.isfinite(values)]


def threshold_from_controls(
    items: list[tuple[str, Path, Path, Path | None]], *, k: float = 2.0, min_controls: int = 3
) -> dict:
    """Active threshold from ``(participant_id, dvr_map, dseg, dseg_tsv)`` of each control."""
    _check_n(len(items), min_controls, "active-voxel threshold")
    per, pooled = [], []
    for pid, dvr_map, dseg, tsv in items:
        values = nawm_values(dvr_map, dseg, tsv)
        pooled.append(values)
        per.append({"participant_id": pid, "mean": float(values.mean()) if values.size else None,
                    "sd": float(values.std(ddof=1)) if values.size > 1 else None,
                    "n_voxels": int(values.size), "source": str(dvr_map)})  # fmt: skip
    threshold, prov = active_threshold(np.concatenate(pooled), k)
    return {
        "threshold_dvr": threshold,
        "rule": f"mean + {k:g} SD of NAWM voxel DVR, pooled over healthy controls",
        **prov,
        "n_controls": len(items),
        "controls": per,
        "between_control_sd_of_means": float(pd.Series([p["mean"] for p in per]).std()),
        "reference": "Nylund et al. 2022 Brain Commun 4:fcab301",
    }


def class_thresholds(
    items: list[tuple[str, Path, Path, Path | None]],
    genotypes: list[str | None],
    *,
    k: float = 2.0,
    min_controls: int = 3,
) -> dict:
    """Active thresholds per binding class; a class with too few controls carries a reason.

    Raises :class:`TooFewControls` when no class has ``min_controls`` controls.
    """
    classes = {}
    for cls in BINDING_CLASSES:
        sel = [item for item, g in zip(items, genotypes, strict=True) if g == cls]
        try:
            classes[cls] = threshold_from_controls(sel, k=k, min_controls=min_controls)
            classes[cls]["binding_class"] = cls
        except TooFewControls as exc:
            classes[cls] = {"binding_class": cls, "n_controls": len(sel), "reason": str(exc)}
    if not any("threshold_dvr" in c for c in classes.values()):
        raise TooFewControls("; ".join(f"{c}: {v['reason']}" for c, v in classes.items()))
    other = sorted({str(g) for g in genotypes} - set(BINDING_CLASSES))
    return {
        "rule": f"mean + {k:g} SD of NAWM voxel DVR of healthy controls, per binding class",
        "binding_classes": classes,
        "pooled": "not used: binding differs between HAB and MAB (rs6971)",
        "ignored_genotypes": other,
        "reference": "Nylund et al. 2022 Brain Commun 4:fcab301; Owen et al. 2012 "
        "J Cereb Blood Flow Metab 32:1",
    }
