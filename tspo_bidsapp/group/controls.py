"""Parameters derived from healthy controls for a second participant-level pass.

**SVCA kinetic classes** (Turkheimer et al. 2007, J Nucl Med 48:158-167; Yaqub et al. 2012,
J Cereb Blood Flow Metab 32:1600-1608), per tracer, from the controls' first sessions (LAB
excluded for second-generation tracers). Each control's region TACs
(``seg-tspoms_desc-preproc_tacs.tsv``) are normalised frame by frame over the brain, mean 0 and
SD 1, where the brain mean is the volume-weighted mean over all regions (exact: every brain
voxel belongs to one region) and the SD is the volume-weighted *between-region* SD (a lower
bound of the voxel SD the participant level uses, as no voxel PET is written). Classes:

- ``grey_matter``: cortical-GM; ``white_matter``: NAWM;
- ``high_binding``: thalamus, the grey-matter structure of highest TSPO binding in the
  healthy brain;
- ``blood``: no blood curve is written by the participant level (no arterial or image-derived
  input); the choroid plexus, the most vascular segmented region (early peak), stands in.
  Its late frames carry specific binding, so this class is a proxy, not a blood TAC.

Curves of all controls are put on the first control's frame mid-times (linear interpolation,
NaN outside a control's scan) and averaged. Written as ``tracer-<T>_desc-svca_classes.tsv``
(``time`` in minutes + four classes; :func:`tspo_bidsapp.quant.svca.read_svca_classes`).

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
from tspo_bidsapp.quant.phenotypes import active_threshold
from tspo_bidsapp.quant.svca import CLASS_NAMES, write_svca_classes
from tspo_bidsapp.quant.tacs import read_tacs_tsv

LOGGER = logging.getLogger("tspo_bidsapp.group")
#: Region of the seg-tspoms set that stands for each SVCA class (see the module docstring).
CLASS_REGIONS: dict[str, str] = {
    "grey_matter": "cortical-GM",
    "white_matter": "NAWM",
    "blood": "choroid-plexus",
    "high_binding": "thalamus",
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


def normalised_region_tacs(tacs: dict[str, np.ndarray], volumes: dict[str, float]) -> dict:
    """Region TACs normalised per frame to mean 0, SD 1 over the brain (volume-weighted).

    ``tacs``: region -> (frames,) activity; ``volumes``: region -> mL. Regions without a
    volume are left out of the brain statistics.
    """
    names = [r for r in tacs if volumes.get(r, 0) > 0 and np.all(np.isfinite(tacs[r]))]
    if len(names) < 3:
        raise ValueError("need at least 3 regions with volumes to normalise TACs over the brain")
    x = np.vstack([tacs[r] for r in names])  # (regions, frames)
    w = np.array([volumes[r] for r in names])[:, None] / sum(volumes[r] for r in names)
    mean = (w * x).sum(axis=0)
    sd = np.sqrt((w * (x - mean) ** 2).sum(axis=0))
    flat = ~(sd > 0)
    return {
        r: np.where(flat, 0.0, (np.asarray(tacs[r], float) - mean) / np.where(flat, 1.0, sd))
        for r in tacs
    }


@dataclass(frozen=True)
class ControlTACs:
    participant_id: str
    tacs_file: Path
    volumes: dict[str, float]


def svca_classes(controls: list[ControlTACs], *, min_controls: int = 3):
    """Average normalised class curves of healthy controls: ``(time_min, (T, 4), info)``."""
    _check_n(len(controls), min_controls, "SVCA classes")
    grid = None
    curves = []
    for c in controls:
        timing, tacs = read_tacs_tsv(c.tacs_file)
        missing = [r for r in CLASS_REGIONS.values() if r not in tacs]
        if missing:
            raise ValueError(f"{c.tacs_file}: no TAC column for region(s) {missing}")
        norm = normalised_region_tacs(tacs, c.volumes)
        mid = timing.mid_min
        if grid is None:
            grid = mid
        curves.append(
            np.column_stack(
                [
                    np.interp(grid, mid, norm[CLASS_REGIONS[k]], left=np.nan, right=np.nan)
                    for k in CLASS_NAMES
                ]
            )
        )
    stack = np.stack(curves)  # (controls, T, 4)
    keep = np.isfinite(stack).all(axis=2).sum(axis=0) >= min_controls
    classes = np.nanmean(stack[:, keep], axis=0)
    info = {
        "Controls": [c.participant_id for c in controls],
        "ClassRegions": CLASS_REGIONS,
        "Normalisation": "per frame over the brain: volume-weighted regional mean and "
        "between-region SD",
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
